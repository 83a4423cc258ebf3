#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""soak_client.py - the hostile clients of tests/integration/httpd/soak.sh.

Python 3 standard library only.  Sub-commands:

  gen DIR                 make the served tree: FILES, each with its own
                          position-dependent pattern
  warm PORT DIR [--tls]   fetch every file once, whole, and check it
  soak PORT DIR [--tls] --seconds S [--cut-ms MS] [--header-ms MS]
                          run every client kind at once for S seconds
  fill PORT DIR [--tls] --conns N
                          open N connections at once, then get a checked
                          answer on every one of them

Every body byte is compared with the pattern of the requested file at its
offset; a byte that is not names the file and offset it looks like (one
client's file at the head of another's response is the leak this hunts).
Exit status: the number of failures (capped at 100), 0 = pass.
"""
import argparse
import hashlib
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time

# The served files: (name, size).  Two of each size, so that bytes of one
# file in a response for another name the culprit.  The sizes cross the
# send paths: tiny, a page, in the cache's memory (<= 64 KiB), and spliced
# through the 1 MiB pipe (over 64 KiB: 100 KiB, 1.1 MiB, 3 MiB).
SIZES = [13, 4096, 60 * 1024, 100 * 1024, 1153434, 3 * 1024 * 1024]
FILES = []
for _i, _s in enumerate(SIZES):
    for _j in range(2):
        _k = 2 * _i + _j
        FILES.append(("f%02d-%d.bin" % (_k, _s), _s))
BIG = [k for k, (_, s) in enumerate(FILES) if s == 1153434]
HUGE = [k for k, (_, s) in enumerate(FILES) if s > 2 * 1024 * 1024]
SMALLISH = [k for k, (_, s) in enumerate(FILES) if s <= 100 * 1024]


def pattern(k, size):
    """Byte i of file k: byte i % 64 of BLAKE2b("proa-soak k (i // 64)")."""
    out = bytearray()
    for blk in range((size + 63) // 64):
        out += hashlib.blake2b(b"proa-soak %d %d" % (k, blk),
                               digest_size=64).digest()
    return bytes(out[:size])


DATA = None  # the files' contents, made once


def load():
    global DATA
    if DATA is None:
        DATA = [pattern(k, s) for k, (_, s) in enumerate(FILES)]


def whose(chunk):
    """Name the file and offset @chunk (>= 16 bytes) comes from, if any."""
    if len(chunk) < 8:
        return "too short to tell"
    for k, d in enumerate(DATA):
        at = d.find(chunk)
        if at >= 0:
            return "bytes of %s at offset %d" % (FILES[k][0], at)
    if chunk.startswith(b"HTTP/1."):
        return "a response head %r" % chunk[:24]
    return "no file's bytes: %r" % chunk[:24]


# ---- shared counters and failure lines -------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}
        self.failures = 0
        self.lines = 0
        self.kinds = {}  # failures by kind: the first few of each shown
        self.max_cut = 0.0

    def add(self, name, n=1):
        with self.lock:
            self.c[name] = self.c.get(name, 0) + n

    def get(self, name):
        return self.c.get(name, 0)

    def fail(self, what, kind="other"):
        """A failure; the first 5 of each kind are printed, 60 in all."""
        with self.lock:
            self.failures += 1
            n = self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if n <= 5 and self.lines < 60:
                self.lines += 1
                print("FAIL: " + what, flush=True)

    def unshown(self):
        more = ["%d %s" % (n - 5, k) for k, n in sorted(self.kinds.items())
                if n > 5]
        if more:
            print("  (not shown: %s)" % ", ".join(more), flush=True)


ST = Stats()


class Bad(Exception):
    """A response that is wrong: counted and reported by the caller."""


class Leak(Bad):
    """Bytes that are not the requested file's at their offset."""


# ---- connections -------------------------------------------------------------

class Conn:
    """A client connection with a receive buffer."""

    def __init__(self, port, tls, timeout=10.0, handshake=True):
        self.t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.raw = s
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s, server_hostname="localhost",
                                do_handshake_on_connect=handshake)
        self.s = s
        self.tls = tls
        self.buf = bytearray()
        self.eof = False

    def send(self, b):
        self.s.sendall(b)

    def fill(self, want=65536):
        """Read once; False at EOF."""
        if self.eof:
            return False
        d = self.s.recv(want)
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def take(self, n):
        b = bytes(self.buf[:n])
        del self.buf[:n]
        return b

    def shut_wr(self):
        # Not SSLSocket.shutdown(): it drops the TLS state first.
        socket.socket.shutdown(self.s, socket.SHUT_WR)

    def reset(self):
        """Close with RST: SO_LINGER {on, 0}."""
        try:
            self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def req(k, rng=None, close=False):
    h = "GET /%s HTTP/1.1\r\nHost: soak\r\n" % FILES[k][0]
    if rng:
        h += "Range: bytes=%s\r\n" % rng
    if close:
        h += "Connection: close\r\n"
    return (h + "\r\n").encode()


def pick_range(size, r):
    """A Range value and the (first, last) it selects, or None: whole."""
    c = r.random()
    if c < 0.6 or size < 2:
        return None, (0, size - 1)
    if c < 0.8:
        a = r.randrange(size)
        b = r.randrange(a, size)
        return "%d-%d" % (a, b), (a, b)
    if c < 0.9:
        a = r.randrange(size)
        return "%d-" % a, (a, size - 1)
    n = r.randrange(1, size + 1)
    return "-%d" % n, (size - n, size - 1)


def read_head(c, where):
    """The next response head of @c, parsed: (status, headers dict)."""
    while True:
        i = c.buf.find(b"\r\n\r\n")
        if i >= 0:
            break
        if len(c.buf) > 16384 or (len(c.buf) >= 9 and
                                  not c.buf.startswith(b"HTTP/1.1 ")):
            ST.add("bad_bytes", len(c.buf))
            raise Leak("%s: a response starts with %s" %
                      (where, whose(bytes(c.buf[:32]))))
        if not c.fill():
            raise EOFError("%s: EOF before a response head (%d bytes)" %
                           (where, len(c.buf)))
    head = c.take(i + 4).decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1" or not parts[1].isdigit():
        raise Bad("%s: bad status line %r" % (where, lines[0]))
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            n, v = ln.split(":", 1)
            hdrs[n.strip().lower()] = v.strip()
    return int(parts[1]), hdrs


def check_body(k, first, got, where):
    """Compare @got with file k from offset @first; raise Bad if not."""
    want = DATA[k][first:first + len(got)]
    if got == want:
        return
    i = 0
    while got[i] == want[i]:
        i += 1
    nbad = sum(1 for a, b in zip(got[i:], want[i:]) if a != b)
    ST.add("bad_bytes", nbad)
    raise Leak("%s: %d bad bytes in %s from offset %d; at %d: %s" %
              (where, nbad, FILES[k][0], first + i, first + i,
               whose(got[i:i + 32])))


def read_response(c, k, span, where, ranged=False, budget=None, step=None,
                  pause=None):
    """Read and check the answer to a GET of file k for @span = (first,
    last), asked with a Range header if @ranged.  @budget: stop after this
    many body bytes (the rest is not read).  @step/@pause: read slowly.
    Return the body bytes read."""
    size = FILES[k][1]
    status, h = read_head(c, where)
    first, last = span
    exp = 206 if ranged else 200
    if status != exp:
        raise Bad("%s: status %d, want %d for %s" %
                  (where, status, exp, FILES[k][0]))
    n = last - first + 1
    if h.get("content-length") != str(n):
        raise Bad("%s: Content-Length %r, want %d" %
                  (where, h.get("content-length"), n))
    if exp == 206:
        cr = "bytes %d-%d/%d" % (first, last, size)
        if h.get("content-range") != cr:
            raise Bad("%s: Content-Range %r, want %r" %
                      (where, h.get("content-range"), cr))
    left = n if budget is None else min(n, budget)
    off = first
    while left > 0:
        if not c.buf:
            if pause:
                time.sleep(pause)
            if not c.fill(step or 262144):
                raise EOFError("%s: EOF %d bytes into a body of %d" %
                               (where, off - first, n))
        m = min(left, len(c.buf))
        check_body(k, off, c.take(m), where)
        ST.add("bytes", m)
        off += m
        left -= m
    if off - first == n:
        ST.add("responses")
    return off - first


# ---- the client kinds ---------------------------------------------------------

def run_kind(name, fn, port, tls, deadline, seed):
    """Call fn(r) in a loop until the deadline; count what it raises."""
    r = random.Random(seed)
    while time.monotonic() < deadline:
        who = name + ("/tls" if tls else "")
        try:
            fn(port, tls, deadline, r)
        except Leak as e:
            ST.fail("%s: %s" % (who, e), "bad bytes")
        except Bad as e:
            ST.add("protocol_errors")
            ST.fail("%s: %s" % (who, e), name + " wrong answer")
        except socket.timeout as e:
            ST.add("client_timeouts")
            ST.fail("%s: no progress in %.0f s (%s)" %
                    (who, CUT_BOUND if name == "staller" else 10.0, e),
                    name + " timeout")
        except (EOFError, OSError, ssl.SSLError) as e:
            ST.add("protocol_errors")
            ST.fail("%s: %s: %s" % (who, type(e).__name__, e),
                    name + " " + type(e).__name__)
        ST.add("loops_" + name)


def keepalive(port, tls, deadline, r):
    """Random files, whole and by range, on one kept-alive connection."""
    c = Conn(port, tls)
    try:
        for i in range(r.randrange(1, 40)):
            if time.monotonic() >= deadline:
                break
            k = r.randrange(len(FILES))
            if k in HUGE and r.random() < 0.7:
                k = r.choice(SMALLISH)
            rng, span = pick_range(FILES[k][1], r)
            c.send(req(k, rng))
            try:
                read_response(c, k, span, "keep-alive request %d" % i,
                              ranged=rng is not None)
            except EOFError as e:
                if i == 0 and header_cut(c, e):
                    return
                raise
    finally:
        c.close()


def pipeliner(port, tls, deadline, r):
    """50-500 GETs in one send; every answer read and checked."""
    n = r.randrange(50, 501)
    plan = []
    for _ in range(n):
        k = r.choice(SMALLISH) if r.random() < 0.97 else r.choice(BIG)
        rng, span = pick_range(FILES[k][1], r)
        plan.append((k, rng, span))
    c = Conn(port, tls, timeout=10.0)
    try:
        c.send(b"".join(req(k, rng) for k, rng, _ in plan))
        for i, (k, rng, span) in enumerate(plan):
            read_response(c, k, span, "pipelined %d of %d" % (i + 1, n),
                          ranged=rng is not None)
        ST.add("pipelines")
    finally:
        c.close()


def resetter(port, tls, deadline, r):
    """3 GETs of a 1.1 MiB file; read some of it; reset mid-body."""
    k = r.choice(BIG)
    size = FILES[k][1]
    c = Conn(port, tls)
    try:
        c.send(req(k) * 3)
        budget = r.randrange(100 * 1024, size + 600)
        got = read_response(c, k, (0, size - 1), "resetter", budget=budget)
        budget -= got
        if budget > 0:
            read_response(c, k, (0, size - 1), "resetter (2nd)",
                          budget=budget)
    finally:
        c.reset()
        ST.add("resets")


def half_closer(port, tls, deadline, r):
    """A request, then shutdown(SHUT_WR); the answer must still come."""
    k = r.randrange(len(FILES))
    rng, span = pick_range(FILES[k][1], r)
    c = Conn(port, tls)
    try:
        c.send(req(k, rng))
        c.shut_wr()
        read_response(c, k, span, "half-closed", ranged=rng is not None)
        while c.fill():
            pass
        if c.buf:
            raise Bad("half-closed: %d bytes after the answer: %s" %
                      (len(c.buf), whose(bytes(c.buf[:32]))))
    finally:
        c.close()


CUT_BOUND = 10.0  # set from --cut-ms
HEADER_S = 0.0  # set from --header-ms


def header_cut(c, e):
    """Whether EOF @e before the first answer of @c is the server's header
    timer: nothing came back, and the connection is older than the timer
    (a starved machine can take that long to hand-shake TLS and send the
    first request).  Anything sooner is a failure."""
    if HEADER_S <= 0 or c.buf or time.monotonic() - c.t0 < HEADER_S:
        return False
    ST.add("header_cuts")
    return True


def staller(port, tls, deadline, r):
    """Start something and stop: the server must cut it in time."""
    how = r.randrange(4)
    k = r.choice(SMALLISH)
    c = Conn(port, tls, timeout=CUT_BOUND, handshake=(how != 0))
    try:
        t0 = time.monotonic()
        if how == 0:
            # Nothing at all (under TLS: not even a ClientHello).
            pass
        elif how == 1:
            c.send(req(k)[:r.randrange(1, 30)])
        elif how == 2:
            c.send(req(k)[:-2])  # all of the head but its end
        else:
            h = ("GET /%s HTTP/1.1\r\nHost: soak\r\n"
                 "Content-Length: 100000\r\n\r\n" % FILES[k][0]).encode()
            c.send(h + b"x" * r.randrange(0, 5000))
        # Wait for the server to end it: EOF, or a reset.  A 408 or, for
        # the body, the answer to the GET may come first.
        try:
            while c.fill():
                pass
        except ConnectionResetError:
            pass
        except ssl.SSLError:
            pass  # the server's cut seen by the TLS layer
        dt = time.monotonic() - t0
        with ST.lock:
            ST.max_cut = max(ST.max_cut, dt)
        ST.add("stallers_cut")
        if how == 3 and c.buf:
            read_response(c, k, (0, FILES[k][1] - 1), "body staller")
    finally:
        c.close()


def slow_reader(port, tls, deadline, r):
    """A big file a few KiB at a time with pauses; every byte checked."""
    k = r.choice(BIG + HUGE)
    c = Conn(port, tls)
    try:
        c.send(req(k))
        # 4 KiB reads every 2 ms: about 2 MB/s, under a second per MiB.
        read_response(c, k, (0, FILES[k][1] - 1), "slow reader",
                      step=4096, pause=0.002)
        ST.add("slow_reads")
    finally:
        c.close()


def never_reader(port, tls, deadline, r):
    """Hundreds of requests for big files, never read, held, closed."""
    c = Conn(port, tls, timeout=2.0)
    try:
        n = r.randrange(100, 600)
        batch = b"".join(req(r.choice(BIG + HUGE)) for _ in range(n))
        try:
            c.send(batch)
        except socket.timeout:
            pass  # the server stopped reading: that is its right
        end = min(deadline, time.monotonic() + r.uniform(0.5, 3.0))
        while time.monotonic() < end:
            time.sleep(0.05)
        ST.add("never_read")
    finally:
        if r.random() < 0.5:
            c.reset()
        else:
            c.close()


KINDS = [  # name, function, threads, over TLS too
    ("keep-alive", keepalive, 4, True),
    ("pipeliner", pipeliner, 2, True),
    ("resetter", resetter, 3, True),
    ("half-closer", half_closer, 1, False),
    ("staller", staller, 2, True),
    ("slow-reader", slow_reader, 1, True),
    ("never-reader", never_reader, 1, True),
]


def soak(a):
    global CUT_BOUND, HEADER_S
    CUT_BOUND = a.cut_ms / 1000.0
    HEADER_S = a.header_ms / 1000.0
    deadline = time.monotonic() + a.seconds
    threads = []
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print("  soak: seed %d, %g s" % (seed, a.seconds), flush=True)
    n = 0
    for name, fn, count, tls_too in KINDS:
        if a.tls and not tls_too:
            continue
        for _ in range(count):
            n += 1
            t = threading.Thread(target=run_kind, daemon=True,
                                 args=(name, fn, a.port, a.tls, deadline,
                                       seed * 1000 + n))
            threads.append(t)
            t.start()
    # Every client kind's own waits are bounded (socket timeouts of at
    # most CUT_BOUND); this bounds the whole.
    hard = deadline + max(CUT_BOUND, 10.0) + 20.0
    for t in threads:
        t.join(max(0.0, hard - time.monotonic()))
        if t.is_alive():
            ST.fail("a client thread did not finish in time")
    ST.unshown()
    g = ST.get
    print("  soak%s: %d responses checked, %d body bytes checked, "
          "%d pipelines, %d resets, %d stallers cut (slowest %.1f s), "
          "%d slow reads, %d never-readers, %d client timeouts, "
          "%d protocol errors, %d bad bytes, %d first requests cut by the "
          "header timer" %
          (" over TLS" if a.tls else "", g("responses"), g("bytes"),
           g("pipelines"), g("resets"), g("stallers_cut"), ST.max_cut,
           g("slow_reads"), g("never_read"), g("client_timeouts"),
           g("protocol_errors"), g("bad_bytes"), g("header_cuts")),
          flush=True)
    # A header cut is the server keeping its word on a starved machine;
    # more than a few is a server that stopped answering.
    if g("header_cuts") > max(10, g("responses") // 100):
        ST.fail("%d first requests cut by the header timer" %
                g("header_cuts"))
    if g("bad_bytes"):
        ST.fail("%d body bytes were not the requested file's" %
                g("bad_bytes"))
    if ST.max_cut > CUT_BOUND:
        ST.fail("a staller was cut after %.1f s (bound %.1f s)" %
                (ST.max_cut, CUT_BOUND))
    for name, _, _, tls_too in KINDS:
        if (tls_too or not a.tls) and g("loops_" + name) == 0:
            ST.fail("%s: no round finished" % name)


def warm(a):
    c = Conn(a.port, a.tls)
    try:
        for k in range(len(FILES)):
            c.send(req(k))
            read_response(c, k, (0, FILES[k][1] - 1), "warm-up")
    except (Bad, EOFError, OSError) as e:
        ST.fail("warm-up: %s" % e)
    finally:
        c.close()


def fill(a):
    """Every slot: N connections at once, each answered correctly."""
    conns = []
    try:
        for i in range(a.conns):
            try:
                conns.append(Conn(a.port, a.tls, timeout=10.0))
            except (OSError, ssl.SSLError) as e:
                ST.fail("connection %d of %d: %s" % (i + 1, a.conns, e))
                return
        for i, c in enumerate(conns):
            c.send(req(i % len(FILES)))
        ok = 0
        for i, c in enumerate(conns):
            k = i % len(FILES)
            try:
                read_response(c, k, (0, FILES[k][1] - 1),
                              "slot %d of %d" % (i + 1, a.conns))
                ok += 1
            except (Bad, EOFError, OSError, ssl.SSLError) as e:
                ST.fail("slot %d of %d: %s: %s" %
                        (i + 1, a.conns, type(e).__name__, e),
                        "bad bytes" if isinstance(e, Leak) else "slot")
        ST.unshown()
        print("  %d of %d connections at once answered correctly "
              "(%d bad bytes)" % (ok, a.conns, ST.get("bad_bytes")),
              flush=True)
    finally:
        for c in conns:
            c.close()


def gen(a):
    os.makedirs(a.dir, exist_ok=True)
    for k, (name, _) in enumerate(FILES):
        with open(os.path.join(a.dir, name), "wb") as f:
            f.write(DATA[k])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["gen", "warm", "soak", "fill"])
    p.add_argument("port_or_dir")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--cut-ms", type=float, default=10000.0)
    p.add_argument("--header-ms", type=float, default=0.0)
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--seed", type=int)
    a = p.parse_args()
    load()
    if a.cmd == "gen":
        a.dir = a.port_or_dir
        gen(a)
        return 0
    a.port = int(a.port_or_dir)
    {"warm": warm, "soak": soak, "fill": fill}[a.cmd](a)
    return min(ST.failures, 100)


if __name__ == "__main__":
    sys.exit(main())
