#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-httpd's robustness limits (docs/httpd.md), each against a client
# that stops half-way: a deep pipeline is answered whole, plain and TLS,
# and so is one the client half-closes after; a request body sent before
# any reading is drained while the answer goes out; a download longer
# than the keep-alive wait keeps its connection;
# clients that pipeline and never read, then leave, give their slots
# back; a request body, a head and a TLS handshake that stall are cut by
# their timeouts, and the slots they held serve others afterwards; the
# memory of a client that pipelines and never reads stays under its
# bound.  Prints PASS or FAIL per check; exits with the number of
# failures.
#
# Usage: limits.sh PATH/TO/proa-httpd CERTDIR
set -u

bin=${1:?usage: limits.sh PATH/TO/proa-httpd CERTDIR}
certs=${2:?usage: limits.sh PATH/TO/proa-httpd CERTDIR}
here=$(cd "$(dirname "$0")" && pwd)
client=$here/limits_client.py
command -v python3 >/dev/null || {
	echo "limits.sh: python3 is missing (scripts/setup.sh test)" >&2
	exit 2
}
work=$(mktemp -d)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
lib_cleanup_on_exit
lib_need_certs "$certs" limits.sh
ulimit -n 4096 2>/dev/null || true

root=$work/www
mkdir -p "$root"
printf '<h1>index</h1>\n' >"$root/index.html"
head -c 16777216 /dev/zero >"$root/big.bin"

PORT=
start_httpd() { # ARGS...
	lib_start_server "$bin" --port 0 "$@" || return 1
	PORT=${SRV_LINE##*:}
	PORT=${PORT%/}
	case $PORT in
	'' | *[!0-9]*)
		echo "  unexpected first line: '$SRV_LINE'"
		stop_server KILL
		return 1
		;;
	esac
}

# c ARGS...: the client, bounded in time.
c() {
	run_limited 120 python3 "$client" "$@"
}

# ---- plain, with a small connection cap and short timeouts ---------------
if ! start_httpd --max-conns 10 --header-timeout 1500 --body-timeout 1000 \
	--write-timeout 2000 --idle-timeout 5000 "$root"; then
	fail "proa-httpd did not start"
	exit 1
fi
check "5,000 pipelined GETs in one send get 5,000 answers" \
	c pipeline "$PORT" 5000
check "200 pipelined GETs, then a half-close: 200 answers, then the close" \
	c halfclose "$PORT" 200
check "a GET whose 1 MB body is sent before any reading is answered whole" \
	c body-first "$PORT" /big.bin 16777216
check "a 7 s download outlives the 5 s keep-alive wait, then serves again" \
	c slow-read "$PORT" /big.bin 16777216 7
check "a body that stalls is cut by --body-timeout (1 s)" \
	c stall "$PORT" body 2.5
check "a chunked body that stalls is cut by --body-timeout" \
	c stall "$PORT" chunked 2.5
check "a head that stalls is cut by --header-timeout (1.5 s)" \
	c stall "$PORT" head 3
# Ten clients fill every slot, pipeline and never read, then leave: the
# server must notice (a reset, or the write timeout) and free the slots.
check "10 clients that pipeline, never read and leave" \
	c hold-pipeline "$PORT" 10 2
check "then all 10 slots serve again (within the write timeout)" \
	c served "$PORT" 10 8
# Twelve body stallers against 10 slots: cut by the body timeout.
pids=()
for _ in $(seq 12); do
	c stall "$PORT" body 4 >"$work/stall.$_" 2>&1 &
	pids+=($!)
done
n=0
for p in "${pids[@]}"; do wait "$p" || n=$((n + 1)); done
check "12 stalled bodies on 10 slots all cut in time ($n not)" test "$n" = 0
check "then all 10 slots serve again" c served "$PORT" 10 8
stop_server
check "the server exits 0 after all that" test "$SRV_RC" = 0

# ---- memory per client that pipelines and never reads ------------------
# The bound (docs/httpd.md): 32 KiB input + 16 KiB held receive + two
# 16 KiB write chunks = 80 KiB, plus the connection's structs (~3 KiB).
# Under a sanitizer the RSS is mostly the sanitizer's (ASan keeps freed
# memory in a 256 MiB quarantine and pads every allocation: ~1 MiB per
# such connection measured), so there the clients still run but only a
# gross bound (4 MiB) is checked; the 84 KiB bound is the plain build's.
bound=84
if LC_ALL=C grep -q -a -e __asan_init -e __tsan_init "$bin"; then
	bound=4096
fi
if start_httpd --write-timeout 60000 "$root"; then
	# SRV_PID is timeout(1)'s; the server is its child.
	spid=$(pgrep -P "$SRV_PID" | head -1)
	check "memory per pipelining, never-reading client <= $bound KiB" \
		c mem "$PORT" "${spid:-0}" 100 300 "$bound"
	stop_server
else
	fail "proa-httpd (memory) did not start"
fi

# ---- TLS ----------------------------------------------------------------
if start_httpd --max-conns 10 --header-timeout 1500 \
	--tls "$certs/server.pem" "$certs/server.key" "$root"; then
	check "TLS: 5,000 pipelined GETs get 5,000 answers" \
		c pipeline "$PORT" 5000 --tls
	check "TLS 1.3: 200 pipelined GETs, then close_notify: 200 answers, then ours" \
		c halfclose "$PORT" 200 --tls
	check "TLS: a client that never says hello is cut by --header-timeout" \
		c stall "$PORT" hs 3
	check "TLS: half a ClientHello is cut by --header-timeout" \
		c stall "$PORT" hspartial 3
	check "TLS: a stalled body is cut by --body-timeout" \
		c stall "$PORT" body 13 --tls
	stop_server
else
	fail "proa-httpd --tls did not start"
fi

echo "limits.sh: $failures failed"
[ "$failures" -gt 100 ] && failures=100
exit "$failures"
