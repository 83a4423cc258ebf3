#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients for tests/integration/httpd/cold.sh: a cold tree fetched whole,
and a loop that must keep answering while the file lane is stalled.

  tree PORT ROOT CONNS       every file under ROOT fetched over CONNS
                             keep-alive connections at once, each body
                             compared with the file; missing paths get 404,
                             a directory's index is served
  stall PORT ROOT TIMEOUT_S PID
                             ROOT holds fifo0..fifo7 (the server runs with
                             PROA_HTTPD_FAULT_STALL_FIFO=1, so each lookup
                             of one blocks a file-lane worker): with every
                             worker stuck, a cached file is still answered
                             at once, an uncached one gets 503 after the
                             header timeout (its timer fires on time), and
                             once the FIFOs get a writer the lane serves
                             again
Every wait is bounded; exit status 0 when the server behaved.
"""
import os
import socket
import sys
import threading
import time


def request(s, path, timeout=10.0):
    """One GET on the keep-alive socket s: (status, body)."""
    s.settimeout(timeout)
    s.sendall(f"GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed before the head")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        d = s.recv(1 << 20)
        if not d:
            raise ConnectionError("closed in the body")
        rest += d
    return status, rest[:length]


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def tree(port, root, conns):
    files = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            files.append(os.path.relpath(os.path.join(dirpath, n), root))
    jobs = [(f, 200) for f in files] + [(f"missing/{i}", 404)
                                       for i in range(20)]
    jobs += [(f"dir{i}/", 200) for i in range(5)]
    bad = []
    lock = threading.Lock()

    def worker(k):
        s = connect(port)
        for path, want in jobs[k::conns]:
            try:
                st, body = request(s, path)
            except (OSError, ConnectionError) as e:
                with lock:
                    bad.append(f"{path}: {e}")
                s = connect(port)
                continue
            if st != want:
                with lock:
                    bad.append(f"{path}: status {st}, want {want}")
            elif want == 200:
                name = path + "index.html" if path.endswith("/") else path
                with open(os.path.join(root, name), "rb") as f:
                    if body != f.read():
                        with lock:
                            bad.append(f"{path}: wrong body")
        s.close()

    th = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in th:
        t.start()
    for t in th:
        t.join(120)
    print(f"tree: {len(jobs)} requests, {len(bad)} wrong")
    for b in bad[:10]:
        print("  " + b)
    return not bad and not any(t.is_alive() for t in th)


def blocked_names(pid):
    """The names of the threads of pid blocked in a FIFO's open."""
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                if f.read().strip() != "wait_for_partner":
                    continue
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


def blocked_workers(pid):
    return len(blocked_names(pid))


def stall(port, root, timeout_s, pid):
    ok = True
    s = connect(port)
    st, _ = request(s, "hot.txt")  # cached before the stall
    if st != 200:
        print(f"stall: warm-up got {st}")
        return False
    # Eight lookups that block: more than the file lane's workers.
    stuck = []
    for i in range(8):
        c = connect(port)
        c.sendall(f"GET /fifo{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        stuck.append(c)
    # Wait (bounded) until the file lane's four workers are blocked in
    # the FIFOs' open: the kernel says so in each thread's wchan.
    deadline = time.monotonic() + 15
    while blocked_workers(pid) < 4:
        if time.monotonic() > deadline:
            print(f"stall: only {blocked_workers(pid)} workers blocked")
            return False
        time.sleep(0.02)
    names = blocked_names(pid)
    # io_uring's workers (iou-wrk-N) where the ring runs the opens, else
    # the pool's file lane (proa-file-N).
    ring = all(n.startswith("iou-wrk") for n in names)
    print(f"stall: {len(names)} workers blocked "
          f"({'io_uring' if ring else 'the file lane'}: {sorted(set(names))})")
    worst = 0.0
    for _ in range(50):
        t0 = time.monotonic()
        st, body = request(s, "hot.txt", timeout=5)
        worst = max(worst, time.monotonic() - t0)
        if st != 200 or body != b"hot\n":
            print(f"stall: cached file got {st}")
            ok = False
            break
    print(f"stall: 50 cached answers, slowest {worst * 1000:.1f} ms")
    if worst > 0.5:
        ok = False
    # An uncached file waits for the stuck lane: 503 by its timer.  On
    # io_uring it waits only if the ring's workers for such work are all
    # stuck (their number is the kernel's: 4 per CPU); if one is left, it
    # is answered at once.
    c = connect(port)
    t0 = time.monotonic()
    body = b""
    try:
        st, body = request(c, "cold.txt", timeout=timeout_s + 10)
    except (OSError, ConnectionError) as e:
        st = f"error {e}"
    took = time.monotonic() - t0
    print(f"stall: uncached file got {st} after {took:.2f} s "
          f"(header timeout {timeout_s} s)")
    timed_out = st == 503 and timeout_s * 0.8 <= took <= timeout_s + 2
    served = ring and st == 200 and body == b"cold\n" and took < 0.5
    if not (timed_out or served):
        ok = False
    c.close()
    # The stuck requests got their 503 too, by the same timer.
    for i, c in enumerate(stuck):
        try:
            st = read_answer(c, timeout_s + 10)
        except (OSError, ConnectionError) as e:
            st = f"error {e}"
        if st != 503:
            print(f"stall: fifo{i} got {st}, want 503")
            ok = False
        c.close()
    # A writer unblocks each worker; the lane serves again.
    for i in range(8):
        fd = None
        deadline = time.monotonic() + 10
        while fd is None and time.monotonic() < deadline:
            try:
                fd = os.open(os.path.join(root, f"fifo{i}"),
                             os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: that lookup has not blocked yet
                time.sleep(0.05)
        if fd is None:
            print(f"stall: fifo{i} never got its reader")
            ok = False
        else:
            os.close(fd)
    t0 = time.monotonic()
    st, body = request(s, "cold.txt", timeout=10)
    print(f"stall: after release, uncached file got {st} in "
          f"{(time.monotonic() - t0) * 1000:.1f} ms")
    if st != 200 or body != b"cold\n":
        ok = False
    s.close()
    return ok


def read_answer(s, timeout):
    """The status of the answer already asked for on s."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed without an answer")
        buf += d
    return int(buf.split(b"\r\n")[0].split()[1])


def main():
    cmd = sys.argv[1]
    if cmd == "tree":
        return tree(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    if cmd == "stall":
        return stall(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]),
                     int(sys.argv[5]))
    print(__doc__)
    return False


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
