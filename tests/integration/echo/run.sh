#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-echo end to end: a server on port 0 and echo_client.py (which
# checks every byte) over TCP, UNIX and UDP (and a loop group), then the
# command line's contract: --help, a bad flag, the removed --client, a
# port in use, the port free again after SIGTERM.  Each check prints PASS or FAIL; the exit status is the number
# of failures (capped), 77 when io_uring is not available here.
#
# Usage: run.sh PATH/TO/proa-echo
#
# Synchronisation is by the server's "listening on" line, read from a fifo
# with a bounded wait; every process runs under timeout(1), so nothing can
# hang the test.
set -u

bin=${1:?usage: run.sh PATH/TO/proa-echo}
[ -x "$bin" ] || {
	echo "run.sh: $bin is not an executable" >&2
	exit 2
}
client=$(dirname "$0")/echo_client.py
command -v python3 >/dev/null || {
	echo "SKIP: no python3 for echo_client.py"
	exit 77
}
work=$(mktemp -d)
failures=0
SRV_PID=
SRV_FD=
SRV_ERR=
SRV_PORT=
SRV_RC=

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	server_signal TERM
	rm -rf "$work"
}
trap cleanup EXIT

# pass, fail, run_limited
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# start_server ARGS...: start "proa-echo --server ARGS" and wait (at most
# 20 s) for its "listening on" line.  Sets SRV_PID, SRV_PORT (or empty for
# unix), SRV_ERR; returns non-zero if the line did not come.
start_server() {
	local line
	lib_start_server "$bin" --server "$@" || return 1
	line=$SRV_LINE
	case $line in
	"listening on unix:"*)
		SRV_PORT=
		;;
	"listening on "*:[0-9]*)
		SRV_PORT=${line##*:}
		;;
	*)
		echo "  unexpected first line: '$line'"
		stop_server TERM
		return 1
		;;
	esac
	return 0
}

# check_client NAME MESSAGES CONNS SIZE DEPTH ARGS...: run echo_client.py
# (every echoed byte checked) and check its one JSON line.
check_client() {
	local name=$1 msgs=$2 conns=$3 size=$4 depth=$5 out rc re
	shift 5
	out=$(run_limited 120 python3 "$client" --count "$msgs" \
		--connections "$conns" --size "$size" --depth "$depth" \
		"$@" 2>"$work/client.err")
	rc=$?
	re="^\{\"connections\":$conns,\"size\":$size,\"depth\":$depth,"
	re+="\"seconds\":[0-9]+(\.[0-9]+)?,\"messages\":$msgs\}$"
	if [ "$rc" -eq 0 ] && [[ $out =~ $re ]]; then
		pass "$name: $out"
	else
		fail "$name: exit $rc, output '$out'"
		sed 's/^/  | /' "$work/client.err"
	fi
}

# check_stop NAME: SIGTERM the server; it must exit 0 with its summary.
check_stop() {
	local name=$1
	stop_server TERM
	if [ "$SRV_RC" -eq 0 ] && grep -q '^proa-echo: served ' "$SRV_ERR"; then
		pass "$name: SIGTERM ends the server with exit 0 ($(tail -1 "$SRV_ERR"))"
	else
		fail "$name: server exit $SRV_RC after SIGTERM"
		sed 's/^/  | /' "$SRV_ERR"
	fi
}

# ---- command line -------------------------------------------------------

out=$("$bin" --help 2>/dev/null)
rc=$?
if [ "$rc" -eq 0 ] && [[ $out == usage:* ]]; then
	pass "--help exits 0 with the usage on stdout"
else
	fail "--help: exit $rc"
fi

err=$("$bin" --server --no-such-flag 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 2 ] && [[ $err == *no-such-flag*"try --help"* ]] &&
	[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]; then
	pass "a bad flag exits 2: $err"
else
	fail "bad flag: exit $rc, stderr '$err'"
fi

err=$("$bin" --server --loops 0 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 2 ] && [[ $err == *--loops*"try --help"* ]]; then
	pass "a bad value exits 2: $err"
else
	fail "bad value: exit $rc, stderr '$err'"
fi

err=$("$bin" --client 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 2 ] && [[ $err == *"--client is gone"*echo-load* ]]; then
	pass "--client (removed) exits 2 and names echo-load: $err"
else
	fail "--client: exit $rc, stderr '$err'"
fi

# ---- TCP ------------------------------------------------------------------

if ! start_server --port 0; then
	if grep -q 'cannot create a loop' "$SRV_ERR"; then
		echo "SKIP: io_uring is not available here"
		exit 77
	fi
	fail "tcp: server did not start"
else
	check_client "tcp" 10000 16 4096 4 --port "$SRV_PORT"

	err=$(run_limited 60 "$bin" --server --port "$SRV_PORT" 2>&1 >/dev/null)
	rc=$?
	want="proa-echo: cannot listen on 127.0.0.1:$SRV_PORT: Address already in use"
	if [ "$rc" -eq 1 ] && [ "$err" = "$want" ]; then
		pass "port in use exits 1: $err"
	else
		fail "port in use: exit $rc, stderr '$err'"
	fi

	port=$SRV_PORT
	check_stop "tcp"

	err=$(run_limited 60 python3 "$client" --port "$port" --count 1 \
		2>&1 >/dev/null)
	rc=$?
	want="echo_client: connect 127.0.0.1:$port: Connection refused"
	if [ "$rc" -eq 1 ] && [ "$err" = "$want" ]; then
		pass "the listener is gone after SIGTERM: $err"
	else
		fail "after SIGTERM: exit $rc, stderr '$err'"
	fi
fi

# ---- UNIX -------------------------------------------------------------------

sock=$work/echo.sock
if start_server --unix "$sock"; then
	check_client "unix" 10000 16 4096 4 --unix "$sock"
	check_stop "unix"
	if [ -e "$sock" ]; then
		fail "unix: $sock still there after the server stopped"
	else
		pass "unix: the socket file is removed on exit"
	fi
else
	fail "unix: server did not start"
fi

# ---- UDP --------------------------------------------------------------------

if start_server --udp --port 0; then
	check_client "udp" 2000 16 1200 4 --udp --port "$SRV_PORT"
	check_stop "udp"
else
	fail "udp: server did not start"
fi

# ---- loop groups ------------------------------------------------------------

if start_server --port 0 --loops 2; then
	check_client "tcp --loops 2" 10000 16 4096 4 --port "$SRV_PORT"
	check_stop "tcp --loops 2"
else
	fail "tcp --loops 2: server did not start"
fi

if start_server --port 0 --loops 2 --handoff; then
	check_client "tcp --loops 2 --handoff" 10000 16 4096 4 --port "$SRV_PORT"
	check_stop "tcp --loops 2 --handoff"
else
	fail "tcp --loops 2 --handoff: server did not start"
fi

# ---- TLS ----------------------------------------------------------------------

certs=$work/certs
if ! command -v openssl >/dev/null; then
	echo "SKIP: tls (no openssl command)"
elif ! "$(dirname "$0")/../../../scripts/make-test-certs.sh" "$certs" >/dev/null; then
	fail "tls: could not make the test certificates"
elif start_server --port 0 --tls "$certs/server.pem" "$certs/server.key"; then
	check_client "tls" 4000 8 4096 4 --port "$SRV_PORT" \
		--tls-ca "$certs/ca.pem" --tls-name localhost
	# curl completes the handshake with the test CA (the echo is not
	# HTTP, so curl then stops: exit 1 "HTTP/0.9", not 35 or 60)
	if command -v curl >/dev/null; then
		out=$(run_limited 30 curl --cacert "$certs/ca.pem" -sS -v \
			--max-time 10 "https://localhost:$SRV_PORT/" 2>&1)
		rc=$?
		if [[ $out == *"SSL connection using TLSv1.3"* ]] &&
			[ "$rc" -ne 35 ] && [ "$rc" -ne 60 ]; then
			pass "tls: curl's handshake with the test CA (curl exit $rc after it)"
		else
			fail "tls: curl exit $rc: $(echo "$out" | tail -3)"
		fi
	else
		echo "SKIP: tls curl check (no curl)"
	fi
	check_stop "tls"
	out=$(run_limited 30 "$bin" --server --port 0 --tls "$certs/server.pem" \
		"$certs/other.key" 2>&1)
	rc=$?
	if [ "$rc" -eq 1 ] && [[ $out == *"TLS:"* ]]; then
		pass "tls: a key that does not match is a clear error ($out)"
	else
		fail "tls: mismatched key: exit $rc, '$out'"
	fi
else
	fail "tls: server did not start"
fi

# ---- bounds: --max-conns, --idle-timeout --------------------------------
# Three connections are served and a fourth is closed at once; a silent
# one is closed after the idle timeout while one that keeps talking is
# not; the freed places take new connections.
err=$("$bin" --server --max-conns 0 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 2 ] && [[ $err == *--max-conns*"try --help"* ]]; then
	pass "--max-conns 0 exits 2: $err"
else
	fail "--max-conns 0: exit $rc, stderr '$err'"
fi
if start_server --port 0 --max-conns 3 --idle-timeout 400; then
	out=$(run_limited 60 python3 - "$SRV_PORT" <<'PY' 2>&1
import socket, sys, time
port = int(sys.argv[1])

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s

def echoes(s, msg=b"ping"):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(64)
        if not d:
            return False
        got += d
    return got == msg

def closed(s, within):
    s.settimeout(within)
    try:
        return s.recv(64) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False

cs = [conn() for _ in range(3)]
ok = all(echoes(s) for s in cs)
print("three served:", ok)
fourth = conn()
over = closed(fourth, 5)
print("fourth closed at once:", over)
# cs[0] talks every 100 ms; cs[1] and cs[2] stay silent
t0 = time.time()
talk = True
while time.time() - t0 < 1.5:
    talk = talk and echoes(cs[0])
    time.sleep(0.1)
silent = closed(cs[1], 0.1) and closed(cs[2], 0.1)
print("talker served for 1.5 s:", talk, "silent ones closed:", silent)
again = conn()
fresh = echoes(again)
print("a new connection served:", fresh)
sys.exit(0 if ok and over and talk and silent and fresh else 1)
PY
)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "--max-conns 3, --idle-timeout 400: $(echo $out)"
	else
		fail "--max-conns 3, --idle-timeout 400: exit $rc: $(echo $out)"
	fi
	check_stop "bounds"
else
	fail "bounds: server did not start"
fi

# ---- SIGINT, with connections still open --------------------------------

if start_server --port 0; then
	run_limited 60 python3 "$client" --port "$SRV_PORT" --connections 4 \
		--duration 30 >/dev/null 2>&1 &
	cpid=$!
	# Whether or not the client got its connections in first, the server
	# must close what it has and exit 0; the client's status is only
	# reported.
	stop_server INT
	wait "$cpid"
	crc=$?
	if [ "$SRV_RC" -eq 0 ]; then
		pass "SIGINT ends the server with exit 0 (client exit $crc)"
	else
		fail "SIGINT: server exit $SRV_RC"
		sed 's/^/  | /' "$SRV_ERR"
	fi
else
	fail "sigint: server did not start"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
exit 0
