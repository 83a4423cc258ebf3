#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients for proa-inetd's integration test (tests/integration/inetd/run.sh).

Each mode checks one promise of proa-inetd against a server run.sh started
with the matching command; it prints one line saying what it saw and
exits 0 if the promise held, 1 if not.  Every wait is bounded (socket
timeouts); a negative check ("nothing arrives") waits a fixed time, the
only way to see that nothing happens.

  stdio PORT          command: sh -c 'echo "hi $TCPREMOTEIP $PROTO";
                      read x; echo "got $x"; echo err >&2'
  many PORT N SIZE    command: cat; N clients at once, SIZE bytes each,
                      every byte checked
  eof PORT            the command cannot start: the connection closes,
                      empty
  hold PORT           print the command's first line, then read until EOF
  bound PORT PID      --max-children 2, command: sh -c 'echo start;
                      read x; echo "done $x"'; then SIGTERM to PID: the
                      listener closes, running commands finish
"""
import os
import signal
import socket
import sys
import threading
import time

TIMEOUT = 20.0


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return s


def read_all(s):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def read_line(s):
    out = b""
    while not out.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        out += b
    return out


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def mode_stdio(port):
    s = connect(port)
    s.sendall(b"abc\n")
    got = read_all(s)
    want = b"hi 127.0.0.1 TCP\ngot abc\nerr\n"
    if got != want:
        fail("stdio: got %r, want %r" % (got, want))
    print("stdin, stdout and stderr are the socket; env has TCPREMOTEIP")


def mode_many(port, n, size):
    errors = []

    def one(i):
        try:
            s = connect(port)
            data = bytes((i + j) % 251 for j in range(size))
            sender = threading.Thread(target=lambda: (s.sendall(data),
                                                      s.shutdown(socket.SHUT_WR)))
            sender.start()
            got = read_all(s)
            sender.join()
            s.close()
            if got != data:
                errors.append("client %d: %d bytes back, %d sent, %s" % (
                    i, len(got), len(data),
                    "equal prefix" if data.startswith(got) else "differ"))
        except OSError as e:
            errors.append("client %d: %s" % (i, e))

    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        fail("many: " + "; ".join(errors[:5]))
    print("%d clients at once, %d bytes each through cat, all equal (%.2f s)"
          % (n, size, time.monotonic() - t0))


def mode_wave(port, n):
    """N connections open at once, more than the server has descriptors
    for; then one after the other a line, its echo, and the close, which
    frees a command for the next.  A server that took and dropped what it
    could not start fails here (EOF instead of the echo)."""
    socks = [connect(port) for _ in range(n)]
    t0 = time.monotonic()
    for i, s in enumerate(socks):
        line = b"line %d\n" % i
        s.sendall(line)
        got = read_line(s)
        if got != line:
            fail("wave: client %d of %d got %r" % (i, n, got))
        s.close()
    print("%d clients waiting at once, each served in turn (%.2f s)"
          % (n, time.monotonic() - t0))


def mode_eof(port):
    s = connect(port)
    got = read_all(s)
    if got != b"":
        fail("eof: got %r" % got)
    print("a command that cannot start closes its connection, empty")


def quiet_for(s, secs):
    """True if nothing (not even EOF) arrives on @s within @secs."""
    s.settimeout(secs)
    try:
        s.recv(1)
    except socket.timeout:
        return True
    finally:
        s.settimeout(TIMEOUT)
    return False


def mode_bound(port, pid):
    c1, c2 = connect(port), connect(port)
    for c in (c1, c2):
        if read_line(c) != b"start\n":
            fail("bound: the first two connections got no command")
    c3 = connect(port)  # accepted by the kernel, not by proa-inetd
    if not quiet_for(c3, 1.0):
        fail("bound: a third command ran beside two at --max-children 2")
    c1.sendall(b"1\n")
    if read_all(c1) != b"done 1\n":
        fail("bound: c1 did not finish")
    if read_line(c3) != b"start\n":
        fail("bound: the third command did not start when one ended")
    # Drain: SIGTERM; new connections are refused, running ones finish.
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            x = socket.create_connection(("127.0.0.1", port), timeout=1.0)
            x.close()
        except ConnectionRefusedError:
            break
        except OSError:
            pass
        if time.monotonic() > deadline:
            fail("bound: still accepting %d s after SIGTERM" % TIMEOUT)
        time.sleep(0.05)
    for i, c in ((2, c2), (3, c3)):
        c.sendall(b"%d\n" % i)
        got = read_all(c)
        if got != b"done %d\n" % i:
            fail("bound: c%d got %r after SIGTERM" % (i, got))
    print("2 at a time, the third waits for a free slot; SIGTERM closes "
          "the listener and lets both running commands finish")


def mode_hold(port):
    s = connect(port)
    line = read_line(s)
    print(line.decode().strip())
    sys.stdout.flush()
    read_all(s)  # until the command is killed: EOF (or the timeout)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "stdio":
        mode_stdio(port)
    elif mode == "many":
        mode_many(port, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "wave":
        mode_wave(port, int(sys.argv[3]))
    elif mode == "eof":
        mode_eof(port)
    elif mode == "hold":
        mode_hold(port)
    elif mode == "bound":
        mode_bound(port, int(sys.argv[3]))
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
