#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-echo over TLS against real peers (issue 5): openssl s_client,
# curl and Python's ssl (echo_client.py) against the proa TLS echo
# server, and the refusals (wrong host name, TLS 1.1, renegotiation,
# garbage).  proa's own TLS client (refusals, against openssl s_server)
# is tests/kernel/net/test_tls.c's.  Each
# check prints PASS or FAIL; the exit status is 1 after any failure, 77
# when openssl, curl or io_uring is not available here.
#
# Usage: run.sh PATH/TO/proa-echo CERTDIR
# CERTDIR holds what scripts/make-test-certs.sh makes (made here if not).
#
# Synchronisation is by the server's "listening on" line read from a fifo,
# by what a peer echoed (polled, bounded), and by the listening socket in
# /proc (polled, bounded); every process runs under timeout(1).
set -u

bin=${1:?usage: run.sh PATH/TO/proa-echo CERTDIR}
certs=${2:?usage: run.sh PATH/TO/proa-echo CERTDIR}
[ -x "$bin" ] || {
	echo "run.sh: $bin is not an executable" >&2
	exit 2
}
for tool in openssl curl python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: no $tool command"
		exit 77
	fi
done
if [ ! -s "$certs/ca.pem" ]; then
	"$(dirname "$0")/../../../scripts/make-test-certs.sh" "$certs" || {
		echo "run.sh: cannot make the test certificates in $certs" >&2
		exit 2
	}
fi

client=$(dirname "$0")/../echo/echo_client.py
work=$(mktemp -d)
failures=0
nsess=0
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

# show FILE: indent a file's last lines under a FAIL.
show() {
	tail -n 8 "$1" | sed 's/^/  | /'
}

# start_server ARGS...: "proa-echo --server ARGS"; waits (at most 20 s)
# for its "listening on" line.  Sets SRV_PID, SRV_PORT, SRV_ERR.
start_server() {
	lib_start_server "$bin" --server "$@" || return 1
	SRV_PORT=${SRV_LINE##*:}
	[[ $SRV_LINE == "listening on "*:[0-9]* ]]
}


# wait_for FILE PATTERN SECS: poll until FILE holds a line matching the
# grep -E PATTERN (true) or SECS pass (false).
wait_for() {
	local file=$1 pat=$2 i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -qE -- "$pat" "$file" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_exit PID SECS: poll until PID has exited (true) or SECS pass.
wait_exit() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# s_client session: sess_start ARGS... runs "openssl s_client ARGS" with
# its stdin on a fifo we hold open (SESS_IN), stdout in SESS_OUT, stderr
# in SESS_ERR; sess_end closes stdin and waits (bounded) for its status.
sess_start() {
	nsess=$((nsess + 1))
	local fifo=$work/sess.$nsess.in
	SESS_OUT=$work/sess.$nsess.out
	SESS_ERR=$work/sess.$nsess.err
	mkfifo "$fifo"
	timeout -k 5 30 openssl s_client "$@" <"$fifo" >"$SESS_OUT" 2>"$SESS_ERR" &
	SESS_PID=$!
	SESS_FIFO=$fifo
	# The fifo stays until the session ends: the background shell may not
	# have opened it for s_client's stdin yet (removing it here raced
	# under load).
	exec {SESS_IN}<>"$fifo"
}

sess_end() {
	exec {SESS_IN}>&-
	if ! wait_exit "$SESS_PID" 10; then
		kill -KILL "$SESS_PID" 2>/dev/null
	fi
	wait "$SESS_PID"
	SESS_RC=$?
	rm -f "$SESS_FIFO"
}

sclient() {
	echo -connect "127.0.0.1:$SRV_PORT" -CAfile "$certs/ca.pem" \
		-verify_return_error -servername localhost
}

# check_s_client NAME VERSIONFLAG: a line sent through s_client comes back.
check_s_client() {
	local name=$1 line="proa-tls-$nsess-$RANDOM $1"
	# shellcheck disable=SC2046 # sclient's words are meant to split
	sess_start $(sclient) "$2" -quiet -no_ign_eof
	printf '%s\n' "$line" >&"$SESS_IN"
	if wait_for "$SESS_OUT" "^$line\$" 10; then
		sess_end
		if [ "$SESS_RC" -eq 0 ]; then
			pass "$name: s_client's line came back, s_client exit 0"
		else
			fail "$name: echoed, but s_client exit $SESS_RC"
			show "$SESS_ERR"
		fi
	else
		sess_end
		fail "$name: no echo (s_client exit $SESS_RC)"
		show "$SESS_ERR"
	fi
}

# check_client NAME MESSAGES CONNS SIZE DEPTH ARGS...: echo_client.py
# (Python's ssl, every byte checked) exits 0 with all its messages back.
check_client() {
	local name=$1 msgs=$2 conns=$3 size=$4 depth=$5 out rc
	shift 5
	out=$(run_limited 120 python3 "$client" --count "$msgs" \
		--connections "$conns" --size "$size" --depth "$depth" \
		"$@" 2>"$work/client.err")
	rc=$?
	if [ "$rc" -eq 0 ] && [[ $out == *"\"messages\":$msgs}"* ]]; then
		pass "$name: $out"
	else
		fail "$name: exit $rc, output '$out'"
		show "$work/client.err"
	fi
}

# ---- the command line -----------------------------------------------------

for args in "--udp --port 0" "--unix $work/x.sock"; do
	# shellcheck disable=SC2086 # split on purpose
	err=$("$bin" --server $args --tls "$certs/server.pem" \
		"$certs/server.key" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 2 ] && [[ $err == *"try --help"* ]]; then
		pass "--tls with $args is a usage error (exit 2)"
	else
		fail "--tls with $args: exit $rc, '$err'"
	fi
done
err=$(run_limited 30 "$bin" --server --port 0 --tls "$work/none.pem" \
	"$certs/server.key" 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 1 ] && [[ $err == "proa-echo: TLS: "* ]]; then
	pass "a missing certificate exits 1: $err"
else
	fail "missing certificate: exit $rc, '$err'"
fi
if "$bin" --help | grep -q -- '--tls CERT KEY'; then
	pass "--help documents --tls CERT KEY"
else
	fail "--help does not document --tls"
fi

# ---- the proa TLS echo server -------------------------------------------

if ! start_server --port 0 --tls "$certs/server.pem" "$certs/server.key"; then
	if grep -q 'cannot create a loop' "$SRV_ERR"; then
		echo "SKIP: io_uring is not available here"
		exit 77
	fi
	fail "tls server did not start"
	exit 1
fi

check_s_client "s_client TLS 1.2" -tls1_2
check_s_client "s_client TLS 1.3" -tls1_3

out=$(run_limited 30 curl --cacert "$certs/ca.pem" -sS -v --max-time 5 \
	"https://localhost:$SRV_PORT/" 2>&1)
rc=$?
if [[ $out == *"SSL connection using TLSv1.3"* ]] && [ "$rc" -ne 0 ] &&
	[ "$rc" -ne 35 ] && [ "$rc" -ne 60 ] && [ "$rc" -ne 124 ]; then
	pass "curl: TLS 1.3 handshake with the test CA, then exit $rc: $(grep '^curl: ' <<<"$out")"
else
	fail "curl: exit $rc: $(tail -n 3 <<<"$out")"
fi

out=$(run_limited 30 openssl s_client -connect "127.0.0.1:$SRV_PORT" \
	-CAfile "$certs/ca.pem" -verify_hostname wrong.example \
	-verify_return_error </dev/null 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [[ $out == *"hostname mismatch"* ]]; then
	pass "s_client -verify_hostname wrong.example: exit $rc, hostname mismatch"
else
	fail "s_client wrong.example: exit $rc: $(tail -n 3 <<<"$out")"
fi


# TLS 1.1: make the client really offer it (security level 0); the server
# must refuse it.
out=$(run_limited 30 openssl s_client -connect "127.0.0.1:$SRV_PORT" \
	-tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [[ $out == *"Cipher is (NONE)"* ]] &&
	[[ $out =~ alert|"no protocols available"|"handshake failure"|"unexpected eof" ]]; then
	pass "TLS 1.1 client refused (s_client exit $rc: $(grep -m1 -oE 'alert[^:]*|no protocols available|handshake failure|unexpected eof[^:]*' <<<"$out"))"
else
	fail "TLS 1.1 client: exit $rc: $(tail -n 3 <<<"$out")"
fi

# Renegotiation: s_client's interactive "R" (not with -quiet) on TLS 1.2;
# the server must end the connection, so s_client exits although its
# stdin is still open.
# shellcheck disable=SC2046
sess_start $(sclient) -tls1_2
printf 'before-reneg\n' >&"$SESS_IN"
if wait_for "$SESS_OUT" '^before-reneg$' 10; then
	printf 'R\n' >&"$SESS_IN"
	if wait_exit "$SESS_PID" 10; then
		sess_end
		if grep -q RENEGOTIATING "$SESS_ERR"; then
			pass "renegotiation ends the connection (s_client exit $SESS_RC)"
		else
			fail "renegotiation: s_client ended without renegotiating"
			show "$SESS_ERR"
		fi
	else
		sess_end
		fail "renegotiation: the connection stayed open"
		show "$SESS_OUT"
	fi
else
	sess_end
	fail "renegotiation: no echo before it (s_client exit $SESS_RC)"
	show "$SESS_ERR"
fi
check_s_client "still serving after the renegotiation" -tls1_2

# A garbage ClientHello (an HTTP request) is closed; the server carries on.
if exec {g}<>"/dev/tcp/127.0.0.1/$SRV_PORT"; then
	printf 'GET / HTTP/1.0\r\n\r\n' >&"$g"
	got=$(run_limited 10 cat <&"$g" | od -An -c | head -c 200)
	rc=${PIPESTATUS[0]}
	exec {g}<&-
	if [ "$rc" -eq 0 ]; then
		pass "garbage ClientHello: closed by the server (got '${got//[[:space:]]/}')"
	else
		fail "garbage ClientHello: not closed within 10 s (cat exit $rc)"
	fi
else
	fail "garbage ClientHello: cannot connect"
fi
check_s_client "still serving after the garbage" -tls1_3

check_client "echo_client.py (Python ssl) against the proa server" \
	2000 8 4096 4 --port "$SRV_PORT" --tls-ca "$certs/ca.pem" \
	--tls-name localhost

stop_server
if [ "$SRV_RC" -eq 0 ]; then
	pass "the TLS server exits 0 on SIGTERM ($(tail -n 1 "$SRV_ERR"))"
else
	fail "the TLS server: exit $SRV_RC"
	show "$SRV_ERR"
fi

# ---- loop group ---------------------------------------------------------------

if start_server --port 0 --loops 2 --tls "$certs/server.pem" "$certs/server.key"; then
	check_client "echo_client.py against --loops 2 --tls" 2000 8 4096 4 \
		--port "$SRV_PORT" --tls-ca "$certs/ca.pem" --tls-name localhost
	check_s_client "s_client against --loops 2 --tls" -tls1_3
	stop_server
else
	fail "--loops 2 --tls: server did not start"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
exit 0
