#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Start a program the way systemd's socket activation does: make the
listening socket(s), put them at descriptor 3 and up, set LISTEN_PID to
this process's pid and LISTEN_FDS to their count, and exec the program,
which keeps the pid (what systemd-socket-activate does too).

Usage: activate.py MODE PROGRAM ARGS...
MODE: tcp (127.0.0.1, a port the kernel picks), unix:PATH, two (two TCP
sockets), bad (LISTEN_FDS is not a number).
"""
import fcntl
import os
import socket
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode, argv = sys.argv[1], sys.argv[2:]
    socks = []
    if mode in ("tcp", "two", "bad"):
        for _ in range(2 if mode == "two" else 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
    elif mode.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(mode[5:])
        socks.append(s)
    else:
        sys.exit("activate.py: unknown mode " + mode)
    # Far above the range first, so that placing one cannot close
    # another; close-on-exec, so that only the placed copies are passed.
    high = []
    for s in socks:
        s.listen(128)
        high.append(fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100))
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i)  # inheritable, as systemd passes them
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDS"] = "2x" if mode == "bad" else str(len(socks))
    os.execv(argv[0], argv)


main()
