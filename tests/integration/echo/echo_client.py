#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""echo_client.py - a small, checking client for proa-echo's tests.

Opens --connections connections (TCP, UNIX stream, or connected UDP
sockets; TLS over TCP with --tls-ca), and sends messages of --size bytes,
--depth at a time per connection, until --count messages in all have come
back (or --duration seconds have passed).  Every byte that comes back is
checked: message k of connection c is the window of a fixed pattern that
starts at (c * 97 + k * size) % 251, so a lost, repeated, reordered or
corrupted byte is caught.  UDP datagrams lost on the way are sent again.

Prints one JSON line ({"connections", "size", "depth", "seconds",
"messages"}); exits 0 on success, 1 on a failure (with one line
"echo_client: ..." on stderr), 2 on bad arguments.  Measuring is
perf/echo/echo_load's job, not this one's.
"""
import argparse
import json
import socket
import ssl
import sys
import time

PERIOD = 251  # a prime: a shift by any power-of-two size shows up
UDP_RESEND_S = 0.25
IO_TIMEOUT_S = 20.0


def die(msg):
    print("echo_client: " + msg, file=sys.stderr)
    sys.exit(1)


def window(pattern, size, conn, k):
    off = (conn * 97 + k * size) % PERIOD
    return pattern[off:off + size]


def open_conn(args, target):
    if args.unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = args.unix
        if path.startswith("@"):
            path = "\0" + path[1:]
        s.settimeout(IO_TIMEOUT_S)
        s.connect(path)
        return s
    if args.udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((args.host, args.port))
        s.settimeout(UDP_RESEND_S)
        return s
    s = socket.create_connection((args.host, args.port), IO_TIMEOUT_S)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.tls_ca:
        ctx = ssl.create_default_context(cafile=args.tls_ca)
        s = ctx.wrap_socket(s, server_hostname=args.tls_name or args.host)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        part = s.recv(n - len(buf))
        if not part:
            raise ConnectionError("connection closed by the server")
        buf += part
    return bytes(buf)


def stream_round(s, args, pattern, conn, first, n):
    """Send @n messages, then read them all back and check them."""
    msgs = [window(pattern, args.size, conn, first + i) for i in range(n)]
    s.sendall(b"".join(msgs))
    got = recv_exact(s, args.size * n)
    for i, m in enumerate(msgs):
        if got[i * args.size:(i + 1) * args.size] != m:
            die("connection %d: message %d came back wrong" %
                (conn, first + i))


def udp_round(s, args, pattern, conn, first, n):
    """One datagram at a time (UDP may reorder), resent when lost."""
    for i in range(n):
        m = window(pattern, args.size, conn, first + i)
        for _ in range(int(IO_TIMEOUT_S / UDP_RESEND_S)):
            s.send(m)
            try:
                while True:
                    got = s.recv(65536)
                    if got == m:
                        break
            except socket.timeout:
                continue
            break
        else:
            die("connection %d: no echo of datagram %d" % (conn, first + i))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7007)
    ap.add_argument("--unix")
    ap.add_argument("--udp", action="store_true")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--tls-ca", help="TLS, verifying with this CA")
    ap.add_argument("--tls-name", help="the name to verify (--host)")
    args = ap.parse_args()
    if (args.connections < 1 or args.size < 1 or args.depth < 1 or
            (args.count <= 0) == (args.duration <= 0)):
        ap.error("need positive sizes and one of --count or --duration")
    if args.udp and args.size > 65507:
        ap.error("--size: a UDP message holds at most 65507 bytes")
    target = ("unix:" + args.unix if args.unix
              else "%s:%d" % (args.host, args.port))
    pattern = bytes(i % PERIOD for i in range(args.size + PERIOD))
    conns = []
    for _ in range(args.connections):
        try:
            conns.append(open_conn(args, target))
        except ssl.SSLError as e:
            die("TLS: %s" % (e.verify_message if
                             getattr(e, "verify_message", None) else e))
        except OSError as e:
            die("connect %s: %s" % (target, e.strerror or e))
    rnd = udp_round if args.udp else stream_round
    t0 = time.monotonic()
    done = 0
    k = 0
    try:
        while True:
            for c, s in enumerate(conns):
                if args.count and done >= args.count:
                    break
                n = args.depth
                if args.count:
                    n = min(n, args.count - done)
                rnd(s, args, pattern, c, k, n)
                done += n
            k += args.depth
            if args.count and done >= args.count:
                break
            if args.duration and time.monotonic() - t0 >= args.duration:
                break
    except (OSError, ConnectionError) as e:
        die("%s: %s after %d messages" % (target, e, done))
    secs = time.monotonic() - t0
    for s in conns:
        s.close()
    print(json.dumps({"connections": args.connections, "size": args.size,
                      "depth": args.depth, "seconds": round(secs, 3),
                      "messages": done}, separators=(",", ":")))


if __name__ == "__main__":
    main()
