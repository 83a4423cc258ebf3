#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-httpd never blocks a loop on the file system (docs/httpd.md):
#   1. strace -f of the server while it serves a cold tree (every file a
#      cache miss, directories, missing paths) shows no openat, openat2,
#      statx, newfstatat, stat, pread or read of a file from a loop
#      thread: those are io_uring operations (where the ring has the
#      opcodes: no system call at all) or run on the pool's file lane;
#   2. with the file lane stalled on purpose (every worker blocked in an
#      open; PROA_HTTPD_FAULT_STALL_FIFO: the pool's workers, or io_uring's
#      own where the ring opens), cached files are answered at once and an
#      uncached one is answered at once or gets 503 when its timer says
#      (io_uring may have a worker left for it), and the lane serves again
#      once unblocked; the server then shuts down cleanly;
#   3. SIGTERM with lookups still blocked: on io_uring the server cancels
#      them and exits at once (a file-lane job cannot be interrupted:
#      there it exits when the file system answers).
# Prints PASS or FAIL per check; exits with the number of failures.
#
# Usage: cold.sh PATH/TO/proa-httpd
set -u

bin=${1:?usage: cold.sh PATH/TO/proa-httpd}
here=$(cd "$(dirname "$0")" && pwd)
client=$here/cold_client.py
for tool in python3 strace; do
	command -v $tool >/dev/null || {
		echo "cold.sh: $tool is missing (scripts/setup.sh test)" >&2
		exit 2
	}
done
work=$(mktemp -d)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
lib_cleanup_on_exit

# A tree nobody has asked for yet: small files (read into the cache by the
# lookup), bigger ones (sent from the descriptor), directories with and
# without an index.
root=$work/www
mkdir -p "$root"
for d in $(seq 0 4); do
	mkdir -p "$root/dir$d/sub"
	printf '<h1>dir%s</h1>\n' "$d" >"$root/dir$d/index.html"
	for f in $(seq 0 39); do
		head -c $((100 + f * 37)) /dev/urandom >"$root/dir$d/s$f.bin"
	done
	for f in $(seq 0 3); do
		head -c $((100000 + f * 40000)) /dev/urandom >"$root/dir$d/sub/b$f.bin"
	done
done

port_of() {
	PORT=${SRV_LINE##*:}
	PORT=${PORT%/}
}

# Threads of PID that are loops: not the main thread, not a pool worker
# (named proa-LANE-N).
loop_tids() {
	local pid=$1 t
	for t in /proc/"$pid"/task/*; do
		t=${t##*/}
		[ "$t" = "$pid" ] && continue
		case $(cat /proc/"$pid"/task/"$t"/comm 2>/dev/null) in
		proa-cpu-* | proa-file-* | proa-dns-* | iou-*) ;;
		*) echo "$t" ;;
		esac
	done
}

# ---- 1. strace: no file-system call on a loop thread --------------------
trace=$work/strace
# LeakSanitizer cannot run under a tracer (it is one itself): off for this
# server only, when built with ASan; the second part checks leaks.
if ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	lib_start_server strace -f -qq -y -ttt -o "$trace" \
	-e trace=open,openat,openat2,stat,lstat,statx,newfstatat,fstat,read,pread64,readv,preadv,preadv2,io_uring_enter \
	"$bin" --port 0 --loops 2 "$root"; then
	port_of
	pid=$(pgrep -P "$(pgrep -P "$SRV_PID" | head -1)" | head -1)
	# What the loops do while they start (placing the pool's workers
	# reads /sys and /proc) is not serving: count from the ready line on.
	since=$(date +%s.%N)
	check "a cold tree is served whole (8 connections)" \
		run_limited 180 python3 "$client" tree "$PORT" "$root" 8
	tids=$(loop_tids "$pid")
	n=$(echo "$tids" | grep -c .)
	# Every traced call of a loop thread that names a path, or reads or
	# stats a descriptor that is a file (-y prints its path: "<" then
	# "/"); sockets, pipes and eventfds are fine.
	bad=$(for t in $tids; do
		grep -E "^$t +[0-9.]+ +((open|openat|openat2|stat|lstat|statx|newfstatat)\(|(read|pread64|readv|preadv|preadv2|fstat|newfstatat)\([0-9]+</)" "$trace" |
			grep -vE "newfstatat\([0-9]+<(socket|pipe|anon_inode):" |
			awk -v s="$since" '$2 >= s'
	done)
	if [ "$n" -ge 2 ] && [ -z "$bad" ]; then
		pass "no file-system call on the $n loop threads"
	else
		fail "file-system calls on a loop thread ($n loop threads found):"
		echo "$bad" | head -20 | sed 's/^/  | /'
	fi
	# The trace saw the lookups: as system calls on the pool's workers,
	# or, where the ring opens and stats (not on epoll), as io_uring
	# operations of the loop threads, which then entered the ring.
	workers=$(grep -cE "openat2\(.*RESOLVE_BENEATH" "$trace")
	enters=$(for t in $tids; do
		grep -E "^$t +[0-9.]+ +io_uring_enter\(" "$trace" |
			awk -v s="$since" '$2 >= s'
	done | grep -c .)
	if [ "$workers" -gt 200 ]; then
		pass "the lookups ran on the pool ($workers openat2 calls traced)"
	elif [ "${PROA_BACKEND:-auto}" != epoll ] && [ "$workers" -le 5 ] &&
		[ "$enters" -gt 100 ]; then
		pass "the lookups ran as io_uring operations ($workers openat2 calls, $enters ring enters on the loop threads)"
	else
		fail "where did the lookups run? $workers openat2 calls on the pool, $enters ring enters on the loop threads"
	fi
	# To the server itself: strace would answer a SIGTERM by killing it.
	kill -TERM "$pid"
	stop_server 0
	check "the traced server exits 0 on SIGTERM (got $SRV_RC)" \
		test "$SRV_RC" -eq 0
else
	fail "proa-httpd did not start under strace"
fi

# ---- 2. the file lane stalled ------------------------------------------
printf 'hot\n' >"$root/hot.txt"
printf 'cold\n' >"$root/cold.txt"
for i in $(seq 0 7); do mkfifo "$root/fifo$i"; done
if PROA_HTTPD_FAULT_STALL_FIFO=1 lib_start_server "$bin" --port 0 \
	--loops 1 --header-timeout 2000 "$root"; then
	port_of
	pid=$(pgrep -P "$SRV_PID" | head -1)
	check "a stalled file lane holds no loop" \
		run_limited 120 python3 "$client" stall "$PORT" "$root" 2 "$pid"
	stop_server TERM
	check "then the server exits 0 on SIGTERM (got $SRV_RC)" \
		test "$SRV_RC" -eq 0
else
	fail "proa-httpd did not start"
fi

# ---- 3. shutdown with lookups stuck ----------------------------------------
# Three lookups blocked in a FIFO's open, their requests still waiting,
# then SIGTERM.  On io_uring the server cancels the lookups once nobody
# waits for them (their requests get 503 at --header-timeout, 2 s) and
# exits within seconds; a job on the file lane cannot be interrupted, so
# there the server exits once the file system (here, a writer) answers.
rm -f "$root"/fifo*
for i in 0 1 2; do mkfifo "$root/fifo$i"; done
if PROA_HTTPD_FAULT_STALL_FIFO=1 lib_start_server "$bin" --port 0 \
	--loops 1 --header-timeout 2000 "$root"; then
	port_of
	pid=$(pgrep -P "$SRV_PID" | head -1)
	held=()
	for i in 0 1 2; do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'GET /fifo%s HTTP/1.1\r\nHost: x\r\n\r\n' "$i" >&"$fd"
		held+=("$fd")
	done
	# Until the three lookups are blocked: the kernel says so in each
	# thread's wchan (bounded: 15 s).
	names=
	for _ in $(seq 300); do
		names=$(for t in /proc/"$pid"/task/*; do
			[ "$(cat "$t/wchan" 2>/dev/null)" = wait_for_partner ] &&
				cat "$t/comm"
		done)
		[ "$(grep -c . <<<"$names")" -ge 3 ] && break
		sleep 0.05
	done
	blocked=$(grep -c . <<<"$names")
	check "three lookups blocked before the shutdown ($blocked)" \
		test "$blocked" -ge 3
	t0=$(date +%s%N)
	server_signal TERM
	if [ -n "$names" ] && ! grep -qv '^iou-wrk' <<<"$names"; then
		# io_uring: no writer ever comes.
		for _ in $(seq 300); do
			kill -0 "$SRV_PID" 2>/dev/null || break
			sleep 0.05
		done
		ms=$((($(date +%s%N) - t0) / 1000000))
		alive=no
		kill -0 "$SRV_PID" 2>/dev/null && alive=yes
		check "SIGTERM with lookups stuck on io_uring: gone in ${ms} ms (under 15 s), not waiting for the file system" \
			test "$alive" = no
	fi
	# The file lane (or a server still there): a writer answers each open.
	for i in 0 1 2; do
		exec {w}<>"$root/fifo$i"
		exec {w}>&-
	done
	stop_server 0
	check "and it exits 0 (got $SRV_RC)" test "$SRV_RC" -eq 0
	for fd in "${held[@]}"; do exec {fd}>&-; done
else
	fail "proa-httpd did not start"
fi

exit "$failures"
