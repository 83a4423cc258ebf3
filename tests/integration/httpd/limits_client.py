#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients that stop half-way, for tests/integration/httpd/limits.sh.

Each sub-command drives proa-httpd on 127.0.0.1:PORT and prints one line;
its exit status is 0 when the server behaved as the limits table of
docs/httpd.md says.  Every wait is bounded (socket timeouts, deadlines).

  pipeline PORT N [--tls]      N pipelined GETs in one send: N answers
  hold-pipeline PORT N SECS    N clients pipeline 2,000 GETs, never read,
                               leave after SECS (a server must free them)
  stall PORT KIND SECS [--tls] a client that stops: KIND is body, chunked,
                               head, hs (TLS: nothing), hspartial (TLS:
                               part of a ClientHello); prints how long the
                               server took to close it; fails past SECS
  served PORT N SECS           N connections at once, each GET / answered
                               within SECS (every slot free)
  mem PORT PID N1 N2           RSS slope (KiB per connection) of clients
                               that pipeline and never read
  halfclose PORT N [--tls]     N pipelined GETs, then shutdown(SHUT_WR)
                               (TLS: close_notify, on TLS 1.3): N answers,
                               then the close
  body-first PORT PATH SIZE    a GET of PATH (SIZE bytes) with a 1 MB
                               body, sent whole before reading, through
                               small socket buffers: the whole answer
  slow-read PORT PATH SIZE SECS  read PATH (SIZE bytes) over SECS through
                               a small receive buffer, then ask again on
                               the same connection: answered (the
                               keep-alive wait starts after the answer)
"""
import select
import socket
import ssl
import sys
import time

REQ = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"


def connect(port, tls=False, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s)
    return s


def count_answers(s, n, deadline):
    """Status lines received before the deadline, counted as they come:
    over TLS each answer may be a record of its own, and re-counting the
    whole of a growing buffer per record made the count quadratic (11 s
    of the client's own CPU for 5,000 answers, enough to miss the
    deadline on a loaded machine)."""
    mark = b"HTTP/1.1 200 OK\r\n"
    got, tail = 0, b""
    while got < n and time.time() < deadline:
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            break
        if not d:
            break
        # The tail keeps a mark cut between two receives.
        buf = tail + d
        got += buf.count(mark)
        tail = buf[-(len(mark) - 1):]
    return got


def pipeline(port, n, tls):
    s = connect(port, tls)
    s.sendall(REQ * n)
    got = count_answers(s, n, time.time() + 30)
    print(f"pipeline {n}{' tls' if tls else ''}: {got} answers")
    return got == n


def hold_pipeline(port, n, secs):
    """n clients each send 5,000 pipelined GETs, read what comes for
    secs, then leave (those still owed answers leave the server a
    connection it must notice is gone)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        socks.append([s, REQ * 5000, 0])
    end = time.time() + secs
    while time.time() < end:
        want_w = [c[0] for c in socks if c[1]]
        r, w, _ = select.select([c[0] for c in socks], want_w, [],
                                max(0.0, end - time.time()))
        for c in socks:
            if c[0] in w:
                try:
                    c[1] = c[1][c[0].send(c[1]):]
                except BlockingIOError:
                    pass
            if c[0] in r:
                try:
                    c[2] += len(c[0].recv(1 << 20))
                except (BlockingIOError, ConnectionError):
                    pass
    got = sum(c[2] for c in socks)
    for c in socks:
        c[0].close()
    print(f"hold-pipeline: {n} clients pipelined 5,000 GETs, read "
          f"{got} bytes in {secs} s, left")
    return True


def stall(port, kind, secs, tls):
    web = kind in ("body", "chunked", "head")
    s = connect(port, tls and web, secs + 10)
    t0 = time.time()
    if web:
        if kind == "body":
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100000\r\n\r\n" + b"x" * 1000)
        elif kind == "chunked":
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n10\r\n0123")
        else:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    elif kind == "hspartial":
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    closed = False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
    except (socket.timeout, ssl.SSLError, ConnectionError):
        closed = not isinstance(sys.exc_info()[1], socket.timeout)
    took = time.time() - t0
    print(f"stall {kind}{' tls' if tls else ''}: "
          f"{'closed' if closed else 'still open'} after {took:.2f} s")
    return closed and took <= secs


def served(port, n, secs):
    deadline = time.time() + secs
    socks = [connect(port, False, secs) for _ in range(n)]
    for s in socks:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    ok = sum(count_answers(s, 1, deadline) for s in socks)
    for s in socks:
        s.close()
    print(f"served: {ok} of {n} connections answered")
    return ok == n


def recv_until_close(s, deadline):
    data = []
    while time.time() < deadline:
        try:
            d = s.recv(1 << 16)
        except socket.timeout:
            break
        if not d:
            return b"".join(data), True
        data.append(d)
    return b"".join(data), False


def tls_halfclose(port, n, deadline):
    """Over TLS the half-close is our close_notify (TLS 1.3: one
    direction only), sent with OpenSSL's SSL_shutdown through memory BIOs
    (ssl.SSLSocket.unwrap() would wait for the server's at once); then
    read on until the server's close_notify.  Returns (data, closed):
    closed means the server's close_notify came."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)

    def pump(step):
        while True:
            try:
                return step()
            except ssl.SSLWantReadError:
                s.sendall(outb.read())
                d = s.recv(1 << 16)
                if not d:
                    raise ConnectionError("EOF")
                inb.write(d)

    pump(obj.do_handshake)
    obj.write(REQ * n)
    try:
        obj.unwrap()  # queues close_notify; wants the server's
    except ssl.SSLWantReadError:
        pass
    s.sendall(outb.read())
    data, closed = [], False
    while time.time() < deadline:
        try:
            data.append(pump(lambda: obj.read(1 << 16)))
        except ssl.SSLZeroReturnError:
            closed = True
            break
        except (ConnectionError, socket.timeout, ssl.SSLError):
            break
    s.close()
    return b"".join(data), closed


def halfclose(port, n, tls=False):
    if tls:
        data, closed = tls_halfclose(port, n, time.time() + 30)
    else:
        s = connect(port)
        s.sendall(REQ * n)
        s.shutdown(socket.SHUT_WR)
        data, closed = recv_until_close(s, time.time() + 30)
        s.close()
    got = data.count(b"HTTP/1.1 200 OK\r\n")
    print(f"halfclose {n}{' tls' if tls else ''}: {got} answers, "
          f"{'then closed' if closed else 'not closed'}")
    return got == n and closed


def small_socket(port, rcvbuf=None, sndbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(10.0)
    s.connect(("127.0.0.1", port))
    return s


def read_answer(s, deadline):
    """One answer: (status line, body bytes received) within the deadline."""
    buf = b""
    while b"\r\n\r\n" not in buf and time.time() < deadline:
        d = s.recv(1 << 16)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    size = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            size = int(v)
    got = len(body)
    while got < size and time.time() < deadline:
        d = s.recv(min(1 << 16, size - got))
        if not d:
            break
        got += len(d)
    return head.split(b"\r\n")[0], got, size


def body_first(port, path, size):
    s = small_socket(port, rcvbuf=16384, sndbuf=16384)
    body = b"x" * 1000000
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status, got, want = read_answer(s, time.time() + 30)
    print(f"body-first: {status.decode()}, {got} of {want} bytes")
    s.close()
    return status == b"HTTP/1.1 200 OK" and got == want == size


def slow_read(port, path, size, secs):
    s = small_socket(port, rcvbuf=65536)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    t0 = time.time()
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            print("slow-read: closed before the head")
            return False
        buf += d
    got = len(buf.partition(b"\r\n\r\n")[2])
    rate = size / secs
    while got < size:
        d = s.recv(min(1 << 16, size - got))
        if not d:
            break
        got += len(d)
        ahead = got / rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)  # the pace of a slow reader, not a sync
    took = time.time() - t0
    s.sendall(REQ)
    status, _, _ = read_answer(s, time.time() + 10)
    print(f"slow-read: {got} of {size} bytes in {took:.1f} s, "
          f"then {status.decode() or 'no answer'}")
    s.close()
    return got == size and status == b"HTTP/1.1 200 OK"


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def settle(pid):
    """Wait (bounded) until the server's RSS stops moving."""
    last, end = -1, time.time() + 10
    while time.time() < end:
        now = rss(pid)
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last


def mem(port, pid, n1, n2):
    socks = []

    def add(n):
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            try:
                s.send(REQ * 5000)
            except BlockingIOError:
                pass
            socks.append(s)
        return settle(pid)

    r1 = add(n1)
    r2 = add(n2)
    slope = (r2 - r1) / n2
    print(f"mem: {slope:.1f} KiB per connection that pipelines and never "
          f"reads (RSS {r1} KiB at {n1}, {r2} KiB at {n1 + n2})")
    for s in socks:
        s.close()
    return slope


def main(argv):
    cmd, port = argv[1], int(argv[2])
    tls = "--tls" in argv
    args = [a for a in argv[3:] if a != "--tls"]
    if cmd == "pipeline":
        ok = pipeline(port, int(args[0]), tls)
    elif cmd == "hold-pipeline":
        ok = hold_pipeline(port, int(args[0]), float(args[1]))
    elif cmd == "stall":
        ok = stall(port, args[0], float(args[1]), tls)
    elif cmd == "served":
        ok = served(port, int(args[0]), float(args[1]))
    elif cmd == "halfclose":
        ok = halfclose(port, int(args[0]), tls)
    elif cmd == "body-first":
        ok = body_first(port, args[0], int(args[1]))
    elif cmd == "slow-read":
        ok = slow_read(port, args[0], int(args[1]), float(args[2]))
    elif cmd == "mem":
        bound = float(args[3])
        ok = mem(port, int(args[0]), int(args[1]), int(args[2])) <= bound
    else:
        print(__doc__)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
