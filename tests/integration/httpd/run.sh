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
lib_cleanup_on_exit

lib_need_certs "$certs" run.sh

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
: >"$root/empty.txt"
# five directories of 250 letters: a redirect's Location of 1,255 bytes
longdir=$(printf 'a%.0s' $(seq 250))
longdir=$longdir/$longdir/$longdir/$longdir/$longdir
mkdir -p "$root/$longdir"
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

# ---- command line ---------------------------------------------------------
out=$("$bin" --help)
rc=$?
check "--help exits 0 and documents the flags" \
	test "$rc" = 0 -a -n "$(printf '%s' "$out" | grep -- '--header-timeout')"
err=$("$bin" --bogus 2>&1)
rc=$?
check "an unknown flag exits 2: $err" test "$rc" = 2
err=$("$bin" --port 99999 2>&1)
rc=$?
check "a bad port exits 2: $err" test "$rc" = 2
err=$("$bin" --send-path sideways 2>&1)
rc=$?
check "a bad --send-path exits 2: $err" \
	test "$rc" = 2 -a -n "$(printf '%s' "$err" | grep 'auto, splice, map or read')"
err=$(run_limited 10 "$bin" --port 0 "$work/nonexistent" 2>&1)
rc=$?
check "a missing directory exits 1: $err" \
	test "$rc" = 1 -a -n "$(printf '%s' "$err" | grep 'No such file')"
err=$(run_limited 10 "$bin" --port 0 "$root/hello.txt" 2>&1)
rc=$?
check "a file as the root exits 1: $err" test "$rc" = 1
err=$("$bin" --loops 2>&1)
rc=$?
check "--loops without a value exits 2 and says so: $err" \
	test "$rc" = 2 -a -n "$(printf '%s' "$err" | grep -- '--loops needs a value')"
err=$(run_limited 10 "$bin" --port 0 --host no-such-host.invalid "$root" 2>&1)
rc=$?
# (A failed lookup left the resolver's second query in flight, the loop
# would not close, and a sanitizer build reported the leak.)
check "an unknown --host exits 1 and says it cannot resolve: $(head -1 <<<"$err")" \
	test "$rc" = 1 -a -n "$(printf '%s' "$err" | grep 'no-such-host.invalid')" \
	-a -z "$(printf '%s' "$err" | grep Sanitizer)"
# Options after the directory (GNU getopt order), as the README shows.
if lib_start_server "$bin" "$root" --port 0; then
	case $SRV_LINE in
	"proa-httpd: serving $root at http://127.0.0.1:"*) ok=yes ;;
	*) ok="no: $SRV_LINE" ;;
	esac
	check "DIR --port 0: options after the directory ($ok)" test "$ok" = yes
	stop_server TERM
else
	fail "DIR --port 0 did not start"
fi
# A name for --host: resolved at start-up, the first address that works.
if lib_start_server "$bin" --host localhost --port 0 "$root"; then
	url=${SRV_LINE##* at }
	url=${url%/}
	got=$(curl -sS -m 5 "$url/hello.txt" 2>&1)
	check "--host localhost listens ($SRV_LINE) and serves: $got" \
		test "$got" = "Hello, World!"
	stop_server TERM
else
	fail "--host localhost did not start"
fi

# ---- one server for most of what follows ----------------------------------
if ! start_httpd --header-timeout 1500 --access-log "$work/access.log" "$root"; then
	fail "proa-httpd did not start"
	exit 1
fi
pass "started: $SRV_LINE"

# GET, HEAD, headers
hdr=$(curl -sS -D - -o "$work/got" "$URL/hello.txt")
check "GET /hello.txt: 200 and the bytes" \
	test "$(status_of "$hdr")" = 200 -a "$(cat "$work/got")" = "Hello, World!"
for h in "Content-Type: text/plain; charset=utf-8" "Content-Length: 13" \
	"Server: proa-httpd" "Accept-Ranges: bytes"; do
	check "GET has '$h'" grep -qi "^$h" <<<"$(tr -d '\r' <<<"$hdr")"
done
for h in Date ETag Last-Modified; do
	check "GET has $h" grep -qi "^$h: " <<<"$hdr"
done
etag=$(tr -d '\r' <<<"$hdr" | sed -n 's/^ETag: //Ip')
lastmod=$(tr -d '\r' <<<"$hdr" | sed -n 's/^Last-Modified: //Ip')
out=$(curl -sS -I "$URL/hello.txt" | tr -d '\r')
check "HEAD: 200, Content-Length 13, no body" \
	test "$(status_of "$out")" = 200 -a -n "$(grep '^Content-Length: 13' <<<"$out")"
raw 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$work/head"
check "HEAD sends no body bytes" test "$(tail -c 4 "$work/head" | od -An -c | tr -d ' ')" = '\r\n\r\n'
check "GET / serves index.html" test "$(curl -sS "$URL/")" = "<h1>index</h1>"
check "GET /sub/ serves sub/index.html" test "$(curl -sS "$URL/sub/")" = "sub index"
out=$(curl -sS -D - -o /dev/null "$URL/sub" | tr -d '\r')
check "GET /sub redirects to /sub/ (301)" \
	test "$(status_of "$out")" = 301 -a -n "$(grep '^Location: /sub/$' <<<"$out")"
out=$(curl -sS -D - -o /dev/null "$URL/sub?a=1&b=%2F" | tr -d '\r')
check "the redirect keeps the query: Location: /sub/?a=1&b=%2F" \
	test "$(status_of "$out")" = 301 -a -n "$(grep -F -x 'Location: /sub/?a=1&b=%2F' <<<"$out")"
# A Location longer than the head's own buffer, then a second request on
# the connection: the 301 must be whole, and the next answer follow it.
out=$(raw "GET /$longdir?q HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | tr -d '\r')
check "a 1,255-byte Location arrives whole, then the next answer" \
	test "$(status_of "$out")" = 301 -a -n "$(grep -F -x "Location: /$longdir/?q" <<<"$out")" \
	-a "${out: -13}" = "Hello, World!"
check "Content-Type from the extension (css)" \
	test "$(curl -sS -o /dev/null -w '%{content_type}' "$URL/sub/style.css")" = "text/css; charset=utf-8"
curl -sS -o "$work/big" "$URL/big.bin"
check "a 300 KB file arrives byte-exact" cmp -s "$work/big" "$root/big.bin"
curl -sS -o "$work/huge" "$URL/huge.bin"
check "a 5 MB file arrives byte-exact" cmp -s "$work/huge" "$root/huge.bin"

# ranges
check_range() { # NAME RANGE STATUS FILE FIRST LEN
	local name=$1 range=$2 want=$3 file=$4 first=$5 len=$6 st
	st=$(curl -sS -o "$work/range" -w '%{http_code}' -H "Range: $range" "$URL/$file")
	if [ "$st" = "$want" ] && cmp -s "$work/range" <(tail -c +$((first + 1)) "$root/$file" | head -c "$len"); then
		pass "Range $range on $file ($name): $st, right bytes"
	else
		fail "Range $range on $file ($name): status $st (want $want), $(wc -c <"$work/range") bytes"
	fi
}
check_range "small, middle" "bytes=2-6" 206 hello.txt 2 5
check_range "small, open end" "bytes=7-" 206 hello.txt 7 6
check_range "small, suffix" "bytes=-3" 206 hello.txt 10 3
check_range "past the end clipped" "bytes=10-99" 206 hello.txt 10 3
check_range "big, middle" "bytes=100000-250000" 206 big.bin 100000 150001
check_range "huge, tail" "bytes=4999000-" 206 huge.bin 4999000 1000
check_range "several ranges: whole file" "bytes=0-1,5-6" 200 hello.txt 0 13
check_range "malformed: ignored" "bytes=x-y" 200 hello.txt 0 13
# RFC 9110 14.1.1: a suffix is satisfiable on an empty file; the answer
# is all of it (nothing), as 200.  A first byte is not.
check_range "empty file, suffix" "bytes=-1" 200 empty.txt 0 0
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "Range: bytes=0-" "$URL/empty.txt")
check "Range bytes=0- on an empty file: 416 ($st)" test "$st" = 416
out=$(curl -sS -D - -o /dev/null -H "Range: bytes=100-200" "$URL/hello.txt" | tr -d '\r')
check "unsatisfiable range: 416 with Content-Range: bytes */13" \
	test "$(status_of "$out")" = 416 -a -n "$(grep '^Content-Range: bytes \*/13$' <<<"$out")"
# Numbers past 2^64 - 1 cannot name a byte of any file: 416, as nginx.
for r in "bytes=99999999999999999999-" "bytes=18446744073709551616-" \
	"bytes=0-99999999999999999999999" "bytes=-99999999999999999999"; do
	out=$(curl -sS -D - -o /dev/null -H "Range: $r" "$URL/hello.txt" | tr -d '\r')
	check "Range $r (overflows 64 bits): 416, bytes */13" \
		test "$(status_of "$out")" = 416 -a -n "$(grep '^Content-Range: bytes \*/13$' <<<"$out")"
done
check_range "19 digits, in range of 64 bits" "bytes=0000000000000000002-6" 206 hello.txt 2 5
out=$(curl -sS -D - -o /dev/null -H "Range: bytes=18446744073709551615-" "$URL/hello.txt" | tr -d '\r')
check "Range bytes=2^64-1- (valid, past the end): 416" test "$(status_of "$out")" = 416
out=$(curl -sS -D - -o /dev/null -H "Range: bytes=0-3" "$URL/hello.txt" | tr -d '\r')
check "206 carries Content-Range: bytes 0-3/13" grep -q '^Content-Range: bytes 0-3/13$' <<<"$out"
st=$(curl -sS -o "$work/range" -w '%{http_code}' -H "Range: bytes=0-3" -H 'If-Range: "stale"' "$URL/hello.txt")
check "If-Range with another ETag: the whole file (200)" test "$st" = 200

# conditional requests
st=$(curl -sS -o "$work/c" -w '%{http_code}' -H "If-None-Match: $etag" "$URL/hello.txt")
check "If-None-Match with the ETag: 304, no body" test "$st" = 304 -a ! -s "$work/c"
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: \"x\", W/$etag" "$URL/hello.txt")
check "If-None-Match list with the weak ETag: 304" test "$st" = 304
st=$(curl -sS -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$URL/hello.txt")
check "If-None-Match with another ETag: 200" test "$st" = 200
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lastmod" "$URL/hello.txt")
check "If-Modified-Since = Last-Modified: 304" test "$st" = 304
# Preconditions (RFC 9110 13.1.1, 13.1.4): a resumed download must not
# splice bytes of a file that changed.
st=$(curl -sS -o "$work/c" -w '%{http_code}' -H "Range: bytes=0-3" -H 'If-Match: "stale"' "$URL/hello.txt")
check "If-Match with another ETag, and Range: 412, not the bytes" test "$st" = 412
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-Match: W/$etag" "$URL/hello.txt")
check "If-Match with the weak ETag: 412 (strong comparison)" test "$st" = 412
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-Match: \"x\", $etag" "$URL/hello.txt")
check "If-Match list with the ETag: 200" test "$st" = 200
st=$(curl -sS -o /dev/null -w '%{http_code}' -H 'If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT' "$URL/hello.txt")
check "If-Unmodified-Since before Last-Modified: 412" test "$st" = 412
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-Unmodified-Since: $lastmod" "$URL/hello.txt")
check "If-Unmodified-Since = Last-Modified: 200" test "$st" = 200
st=$(curl -sS -o /dev/null -w '%{http_code}' -H 'If-Unmodified-Since: yesterday' "$URL/hello.txt")
check "If-Unmodified-Since not a date: ignored (200)" test "$st" = 200
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT" "$URL/hello.txt")
check "If-Modified-Since in 2000: 200" test "$st" = 200
st=$(curl -sS -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' -H "If-Modified-Since: $lastmod" "$URL/hello.txt")
check "If-None-Match wins over If-Modified-Since: 200" test "$st" = 200

# keep-alive and pipelining
out=$(curl -sS -v -o /dev/null -o /dev/null "$URL/hello.txt" "$URL/big.bin" 2>&1)
check "curl reuses the connection for a second request" grep -q 'Re-using existing connection' <<<"$out"
resp=$(raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /sub/index.html HTTP/1.1\r\nHost: x\r\n\r\nHEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
rc=$?
order=$(printf '%s' "$resp" | tr -d '\r' | grep -E '^HTTP/1.1|^Hello|^sub index' | tr '\n' '|')
check "4 pipelined requests answered in order, then closed: $order" \
	test "$rc" = 0 -a "$order" = "HTTP/1.1 200 OK|Hello, World!HTTP/1.1 200 OK|sub index|HTTP/1.1 200 OK|HTTP/1.1 404 Not Found|"
resp=$(raw 'GET /hello.txt HTTP/1.0\r\n\r\n')
check "HTTP/1.0 without keep-alive: answered and closed" test $? = 0 -a "$(status_of "$resp")" = 200
resp=$(raw 'GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
rc=$?
check "HTTP/1.0 with keep-alive: kept open, says keep-alive" \
	test "$rc" = 124 -a -n "$(grep -i '^Connection: keep-alive' <<<"$resp")"
resp=$(raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcdeGET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
check "a body is read and discarded; the next request is answered" \
	test "$(grep -o 'HTTP/1.1 200' <<<"$resp" | wc -l)" = 2
resp=$(raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n3;x=y\r\nfgh\r\n0\r\nTrailer: 1\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
check "a chunked body is discarded; the next request is answered" \
	test "$(grep -o 'HTTP/1.1 200' <<<"$resp" | wc -l)" = 2

# Chunked framing (RFC 9112 7.1).  The GET is answered before its body is
# read, so a body refused is seen as the connection cut after that one
# answer, the pipelined request left unanswered; a body accepted lets the
# pipelined request be answered too.
# raw_split PART1 PART2: as raw, PART2 sent 0.3 s after PART1 (its own read).
raw_split() {
	local fd rc
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	printf '%b' "$1" >&"$fd"
	sleep 0.3
	printf '%b' "$2" >&"$fd"
	timeout 5 cat <&"$fd"
	rc=$?
	exec {fd}<&-
	return $rc
}
C='GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
NEXT='GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
check_chunked() { # NAME ANSWERS(1: refused, 2: accepted) PART1 [PART2]
	local name=$1 want=$2 resp rc n
	if [ $# -gt 3 ]; then
		resp=$(raw_split "$3" "$4")
	else
		resp=$(raw "$3")
	fi
	rc=$?
	n=$(grep -o 'HTTP/1.1 200' <<<"$resp" | wc -l)
	if [ "$n" = "$want" ] && [ "$rc" = 0 ]; then
		pass "$name: $n answer(s), closed"
	else
		fail "$name: $n answer(s) (want $want), reader rc $rc"
	fi
}
check_chunked "chunked: bare CR after the size is refused" 1 \
	"${C}5\r\r\nhello\r\n0\r\n\r\n${NEXT}"
check_chunked "chunked: bare CR in an extension is refused" 1 \
	"${C}5;a\rb\r\nhello\r\n0\r\n\r\n${NEXT}"
check_chunked "chunked: '5;a' LF is refused (one read)" 1 \
	"${C}5;a\nhello\r\n0\r\n\r\n${NEXT}"
check_chunked "chunked: '5;a' LF is refused (LF starts the next read)" 1 \
	"${C}5;a" "\nhello\r\n0\r\n\r\n${NEXT}"
check_chunked "chunked: '5 ;a' (BWS before ';') is accepted" 2 \
	"${C}5 ;a\r\nhello\r\n0\r\n\r\n${NEXT}"
check_chunked "chunked: BWS around '=' is accepted" 2 \
	"${C}5 ; a = \"b c\"\r\nhello\r\n0\r\n\r\n${NEXT}"
check_chunked "chunked: a space inside the size is refused" 1 \
	"${C}5 5\r\nhello\r\n0\r\n\r\n${NEXT}"
check_chunked "chunked: obs-fold in a trailer is refused" 1 \
	"${C}0\r\nX: 1\r\n folded\r\n\r\n${NEXT}"

# Expect: 100-continue (RFC 9110 10.1.1): "100 Continue" before a body
# that will be read, then the answer; the connection goes on.
resp=$(raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nabcdeGET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
order=$(printf '%s' "$resp" | grep -oE 'HTTP/1.1 [0-9]+ [A-Za-z]+' | tr '\n' '|')
check "Expect: 100-continue: 100 Continue, 200, and the next request 200: $order" \
	test "$order" = "HTTP/1.1 100 Continue|HTTP/1.1 200 OK|HTTP/1.1 200 OK|"
# The head alone: the 100 must come before the client sends its body.
exec {ex}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n' >&"$ex"
line=
read -r -t 2 -u "$ex" line
check "Expect: 100-continue: 100 Continue before the body is sent ('${line%$'\r'}')" \
	test "${line%$'\r'}" = "HTTP/1.1 100 Continue"
printf 'abc' >&"$ex"
exec {ex}<&-
resp=$(raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n')
check "Expect: 100-continue with a body over --body-max: 413, no 100" \
	test "$(status_of "$resp")" = 413
resp=$(raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
check "Expect: 100-continue without a body: no 100" test "$(status_of "$resp")" = 200
resp=$(raw 'GET /hello.txt HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab')
check "Expect: 100-continue in HTTP/1.0 is ignored: no 100" test "$(status_of "$resp")" = 200

# smuggling, malformed requests and limits: each must get its status, and
# the 400s the end of the connection.
long=$(head -c 9000 /dev/zero | tr '\0' a)
bighdr=$(head -c 9000 /dev/zero | tr '\0' b)
check_raw() { # NAME REQUEST STATUS CLOSED(yes|no)
	local name=$1 req=$2 want=$3 closed=$4 resp rc st
	resp=$(raw "$req")
	rc=$?
	st=$(status_of "$resp")
	if [ "$st" = "$want" ] && { [ "$closed" = no ] || [ "$rc" = 0 ]; }; then
		pass "$name: $st${closed:+, closed=$closed}"
	else
		fail "$name: status '$st' (want $want), reader rc $rc (closed wanted: $closed)"
	fi
}
R='GET /hello.txt HTTP/1.1\r\nHost: x\r\n'
check_raw "Content-Length and Transfer-Encoding" "${R}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" 400 yes
check_raw "duplicate Content-Length (equal)" "${R}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc" 400 yes
check_raw "duplicate Content-Length (different)" "${R}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" 400 yes
check_raw "Content-Length list" "${R}Content-Length: 3, 3\r\n\r\nabc" 400 yes
check_raw "negative Content-Length" "${R}Content-Length: -1\r\n\r\n" 400 yes
check_raw "Content-Length with a sign" "${R}Content-Length: +3\r\n\r\nabc" 400 yes
check_raw "Transfer-Encoding not ending in chunked" "${R}Transfer-Encoding: chunked, identity\r\n\r\n" 400 yes
check_raw "Transfer-Encoding: xchunked" "${R}Transfer-Encoding: xchunked\r\n\r\n" 400 yes
check_raw "two Transfer-Encoding lines" "${R}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" 400 yes
check_raw "Transfer-Encoding in HTTP/1.0" 'GET /hello.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' 400 yes
check_raw "obs-fold" "${R}X-A: 1\r\n folded\r\n\r\n" 400 yes
check_raw "space before the colon" "${R}Content-Length : 3\r\n\r\nabc" 400 yes
check_raw "control character in a value" "${R}X-A: a\x01b\r\n\r\n" 400 yes
check_raw "NUL in a value" "${R}X-A: a\x00b\r\n\r\n" 400 yes
check_raw "control character in a name" "${R}X\x01A: 1\r\n\r\n" 400 yes
check_raw "bare LF line ends" 'GET /hello.txt HTTP/1.1\nHost: x\n\n' 400 yes
check_raw "no Host in HTTP/1.1" 'GET /hello.txt HTTP/1.1\r\n\r\n' 400 yes
check_raw "two Host lines" "${R}Host: y\r\n\r\n" 400 yes
check_raw "gzip, chunked: 501" "${R}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" 501 yes
check_raw "unknown method: 501" 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n' 501 yes
check_raw "HTTP/2.0 request line: 505" 'GET / HTTP/2.0\r\nHost: x\r\n\r\n' 505 yes
check_raw "target over 8 KiB: 414" "GET /$long HTTP/1.1\r\nHost: x\r\n\r\n" 414 yes
check_raw "header line over 8 KiB: 431" "${R}X-Big: $bighdr\r\n\r\n" 431 yes
hdrs=$(for i in $(seq 1 120); do printf 'X-%d: 1\\r\\n' "$i"; done)
check_raw "120 header lines: 431" "${R}${hdrs}\r\n" 431 yes
check_raw "body over --body-max: 413" "${R}Content-Length: 99999999\r\n\r\n" 413 yes
check_raw "bad chunk size: cut" "${R}Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n" 200 yes
resp=$(raw 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab')
check "POST: 405 with Allow: GET, HEAD" \
	test "$(status_of "$resp")" = 405 -a -n "$(tr -d '\r' <<<"$resp" | grep '^Allow: GET, HEAD$')"
check_raw "DELETE: 405" 'DELETE /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' 405 yes
check_raw "an unknown expectation: 417" "GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nConnection: close\r\n\r\n" 417 yes
check_raw "100-continue with an unknown one: 417" "GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x=y\r\nConnection: close\r\n\r\n" 417 yes

# traversal and what may be served
T='HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
check_raw "/../outside/secret.txt" "GET /../outside/secret.txt $T" 403 yes
check_raw "/sub/../../outside/secret.txt" "GET /sub/../../outside/secret.txt $T" 403 yes
check_raw "/%2e%2e/outside/secret.txt" "GET /%2e%2e/outside/secret.txt $T" 403 yes
check_raw "/%2E%2E%2foutside (encoded slash)" "GET /%2E%2E%2foutside/secret.txt $T" 400 yes
check_raw "/.%2e/outside/secret.txt" "GET /.%2e/outside/secret.txt $T" 403 yes
check_raw "%252e%252e decoded once only" "GET /%252e%252e/outside/secret.txt $T" 404 yes
check_raw "%00 in the path" "GET /hello.txt%00.html $T" 400 yes
check_raw "bad percent escape" "GET /hello%zz.txt $T" 400 yes
check_raw "truncated percent escape" "GET /hello.txt% $T" 400 yes
check_raw "symlink to a file outside the root" "GET /escape.txt $T" 403 yes
check_raw "symlink to a directory outside the root" "GET /escape-dir/secret.txt $T" 403 yes
check_raw "symlink inside the root" "GET /inside-link.txt $T" 200 yes
check_raw "a FIFO is not served (and does not hang)" "GET /fifo $T" 403 yes
# ... and is not even opened: a writer blocked in open() would be let
# through by a reader's open (O_PATH does not count as one).
timeout 3 bash -c 'printf x >"$1"' _ "$root/fifo" &
writer=$!
sleep 0.2
check_raw "a FIFO with a writer waiting: 403" "GET /fifo $T" 403 yes
sleep 0.5
if kill -0 "$writer" 2>/dev/null; then
	pass "the FIFO was refused without being opened (the writer still waits)"
else
	fail "the FIFO was opened for reading before it was refused (the writer got through)"
fi
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
if mknod "$root/null" c 1 3 2>/dev/null; then
	check_raw "a device node is not served" "GET /null $T" 403 yes
fi
# As root, only files "other" may read (a 000 file is refused too);
# otherwise the kernel refuses it.
check_raw "an unreadable file: 403" "GET /noread.txt $T" 403 yes
printf 'group only\n' >"$root/grouponly.txt"
chmod 640 "$root/grouponly.txt"
if [ "$(id -u)" = 0 ]; then
	check_raw "as root, a file other may not read (0640): 403" "GET /grouponly.txt $T" 403 yes
	# Root passes every directory too: a file anyone may read, in a
	# directory others may not search, is as private as a 0600 one
	# (a 0644 file in a 0700 home), also through a symlink to it.
	mkdir -p "$root/private/inner"
	printf 'secret\n' >"$root/private/inner/f.txt"
	printf 'open\n' >"$root/private/inner/g.txt"
	chmod 644 "$root/private/inner/f.txt" "$root/private/inner/g.txt"
	chmod 700 "$root/private"
	ln -s private/inner/f.txt "$root/via-link.txt"
	check_raw "as root, a 0644 file in a 0700 directory: 403" "GET /private/inner/f.txt $T" 403 yes
	check_raw "as root, a symlink to a file in a 0700 directory: 403" "GET /via-link.txt $T" 403 yes
	chmod 711 "$root/private"
	check_raw "as root, a 0644 file under directories others may search: 200" "GET /private/inner/g.txt $T" 200 yes
fi
check_raw "/. names the root: served as /" "GET /. $T" 200 yes
check_raw "/%2e names the root: served as /" "GET /%2e $T" 200 yes
resp=$(raw "GET /. $T")
check "/. answers with the index, not a redirect to //" \
	test "$(tr -d '\r' <<<"$resp" | tail -1)" = "<h1>index</h1>"
check_raw "/sub/. is /sub/" "GET /sub/. $T" 200 yes
check_raw "a directory without index: 403" "GET /empty/ $T" 403 yes
check_raw "a missing file: 404" "GET /missing.txt $T" 404 yes
check_raw "a file with a trailing slash: 404" "GET /hello.txt/ $T" 404 yes
check_raw "query string ignored" "GET /hello.txt?a=1&b=/../x $T" 200 yes
check_raw "absolute-form target" "GET http://x/hello.txt $T" 200 yes
check_raw "asterisk target" "GET * $T" 400 yes

raw 'GET /q"\\x" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >/dev/null

# slowloris: a client that sends its head a byte now and then is cut off
# at --header-timeout (1.5 s) with 408, while others are served meanwhile.
exec {slow}<>"/dev/tcp/127.0.0.1/$PORT"
start=$(date +%s%N)
(
	for c in G E T ' ' /; do
		printf '%s' "$c"
		sleep 0.4
	done
	sleep 5
) >&"$slow" 2>/dev/null &
dripper=$!
served=0
for _ in 1 2 3 4 5; do
	[ "$(curl -sS -m 2 "$URL/hello.txt")" = "Hello, World!" ] && served=$((served + 1))
done
resp=$(timeout 10 cat <&"$slow")
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
exec {slow}<&-
kill "$dripper" 2>/dev/null
wait "$dripper" 2>/dev/null
check "slowloris cut off with 408 after ${ms} ms (1500-5000 wanted), $served/5 others served" \
	test "$(status_of "$resp")" = 408 -a "$rc" = 0 -a "$ms" -ge 1400 -a "$ms" -lt 5000 -a "$served" = 5

# a short load with wrk: every response a 200
if command -v wrk >/dev/null; then
	out=$(run_limited 30 wrk -t1 -c16 -d1s "$URL/hello.txt" 2>&1)
	reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
	if [ -n "$reqs" ] && [ "$reqs" -gt 100 ] && ! grep -q 'Non-2xx' <<<"$out" &&
		! grep -q 'Socket errors' <<<"$out"; then
		pass "wrk smoke: $reqs requests in 1 s, all 2xx, no socket errors"
	else
		fail "wrk smoke: $out"
	fi
	out=$(run_limited 30 wrk -t1 -c4 -d1s "$URL/big.bin" 2>&1)
	if grep -q 'requests in' <<<"$out" && ! grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
		pass "wrk on a 300 KB file: $(sed -n 's/^ *\([0-9]* requests in.*\)/\1/p' <<<"$out")"
	else
		fail "wrk on a 300 KB file: $out"
	fi
else
	fail "wrk is missing (scripts/setup.sh test installs it)"
fi

# graceful shutdown: a slow download in flight when SIGTERM comes still
# completes byte-exact, and the server exits 0.
curl -sS --limit-rate 2M -o "$work/during" "$URL/huge.bin" 2>"$work/during.err" &
dl=$!
# Wait (bounded) until the response has started arriving.
for _ in $(seq 1 100); do
	[ -s "$work/during" ] && break
	sleep 0.05
done
stop_server TERM
wait "$dl"
dlrc=$?
check "SIGTERM during a 5 MB download: the download completes byte-exact" \
	test "$dlrc" = 0 -a -n "$(cmp "$work/during" "$root/huge.bin" && echo same)"
check "SIGTERM: exit 0 with the summary ($(tail -1 "$SRV_ERR"))" \
	test "$SRV_RC" = 0 -a -n "$(grep 'requests (2xx' "$SRV_ERR")"
lines=$(wc -l <"$work/access.log")
check "the access log has a line per request ($lines)" test "$lines" -gt 150
check "the access log names the requests" grep -q '"GET /hello.txt HTTP/1.1" 200 13' "$work/access.log"
# '"' and '\\' in a target are escaped as nginx does (\x22, \x5C), so a
# line cannot be made to look like two fields.
check "the access log escapes '\"' and '\\' in the request line" \
	grep -qF '"GET /q\x22\x5Cx\x22 HTTP/1.1" 404' "$work/access.log"
check "no raw '\"' inside a logged request line" \
	test -z "$(grep -F '/q"' "$work/access.log")"

# ---- two loops (SO_REUSEPORT): every request answered -------------------
if start_httpd --loops 2 "$root"; then
	ok=0
	for _ in $(seq 1 20); do
		[ "$(curl -sS -m 5 "$URL/hello.txt")" = "Hello, World!" ] && ok=$((ok + 1))
	done
	check "--loops 2: 20/20 requests answered ($ok)" test "$ok" = 20
	stop_server TERM
	check "--loops 2 exits 0 on SIGTERM ($(tail -1 "$SRV_ERR"))" test "$SRV_RC" = 0
else
	fail "proa-httpd --loops 2 did not start"
fi

# ---- a second proa-httpd on the port of a first: refused -----------------
# SO_REUSEPORT is only between a server's own loops: another process on
# the same port must fail (EADDRINUSE), not take part of the traffic.
if start_httpd --loops 2 --access-log "$work/first.log" "$root"; then
	first_pid=$SRV_PID
	first_kid=$SRV_KID
	first_port=$PORT
	err=$(run_limited 5 "$bin" --port "$first_port" "$root" 2>&1)
	rc=$?
	check "a second proa-httpd on port $first_port exits 1, port in use: $err" \
		test "$rc" = 1 -a -n "$(grep -i 'in use' <<<"$err")"
	err=$(run_limited 5 "$bin" --loops 2 --port "$first_port" "$root" 2>&1)
	rc=$?
	check "a second one with --loops 2 exits 1 too: $err" \
		test "$rc" = 1 -a -n "$(grep -i 'in use' <<<"$err")"
	ok=0
	for _ in $(seq 1 20); do
		[ "$(curl -sS -m 5 "http://127.0.0.1:$first_port/hello.txt")" = "Hello, World!" ] && ok=$((ok + 1))
	done
	SRV_PID=$first_pid
	SRV_KID=$first_kid
	stop_server TERM
	n=$(grep -c '"GET /hello.txt' "$work/first.log")
	check "the first one answered all 20 requests ($ok answered, $n in its log)" \
		test "$ok" = 20 -a "$n" = 20
else
	fail "proa-httpd (first on its port) did not start"
fi

# ---- idle keep-alive and write timeouts ------------------------------------
truncate -s 64M "$root/sparse.bin"
if start_httpd --idle-timeout 500 --write-timeout 500 "$root"; then
	# A kept-alive connection left idle is closed after ~0.5 s.
	start=$(date +%s%N)
	resp=$(raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n')
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	check "idle keep-alive connection closed after ${ms} ms (400-3000 wanted)" \
		test "$rc" = 0 -a "$(status_of "$resp")" = 200 -a "$ms" -ge 400 -a "$ms" -lt 3000
	# A reader that takes nothing: the server gives up on it after
	# --write-timeout and closes; what arrived is less than the file.
	exec {stall}<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /sparse.bin HTTP/1.1\r\nHost: x\r\n\r\n' >&"$stall"
	# The timeout runs while we do not read: wait it out, then drain.
	sleep 2
	timeout 20 cat <&"$stall" >"$work/stalled"
	rc=$?
	got=$(wc -c <"$work/stalled")
	exec {stall}<&-
	check "a reader that stalls is cut off by --write-timeout ($got of 67108864 bytes, then EOF)" \
		test "$rc" = 0 -a "$got" -gt 0 -a "$got" -lt 67108864
	stop_server TERM
	check "exits 0 after the timeouts" test "$SRV_RC" = 0
else
	fail "proa-httpd with short timeouts did not start"
fi

# ---- a port held by another program: exit 1, said in words --------------
if start_httpd "$root"; then
	port=$PORT
	stop_server TERM
	# Its "ACCEPT" line says it listens.
	if lib_start_server openssl s_server -cert "$certs/server.pem" \
		-key "$certs/server.key" -accept "$port" &&
		until [ "$SRV_LINE" = ACCEPT ]; do
			read -r -t 20 -u "$SRV_FD" SRV_LINE || break
		done && [ "$SRV_LINE" = ACCEPT ]; then
		err=$(run_limited 10 "$bin" --port "$port" "$root" 2>&1)
		rc=$?
		check "a port in use exits 1: $err" \
			test "$rc" = 1 -a -n "$(grep -i 'in use' <<<"$err")"
		stop_server TERM
	else
		fail "openssl s_server did not start on $port"
	fi
else
	fail "proa-httpd did not start (port-in-use check)"
fi

# ---- socket activation: the socket systemd would pass ----------------------
# activate.py makes the socket, puts it at descriptor 3, sets LISTEN_PID and
# LISTEN_FDS and execs proa-httpd, as systemd-socket-activate does.
if lib_start_server python3 "$here/activate.py" tcp "$bin" "$root"; then
	case $SRV_LINE in
	"proa-httpd: serving "*" at http://127.0.0.1:"*/)
		pass "LISTEN_FDS: serves the socket it was given: $SRV_LINE" ;;
	*) fail "LISTEN_FDS: unexpected line: $SRV_LINE" ;;
	esac
	url=${SRV_LINE##* at }
	check "LISTEN_FDS: GET over the passed socket" \
		test "$(curl -sS "${url}hello.txt")" = "Hello, World!"
	# (The environment cleaned and close-on-exec: test_pipe's
	# test_listen_fds; /proc/PID/environ keeps the exec-time copy.)
	stop_server TERM
	check "LISTEN_FDS: exits 0" test "$SRV_RC" = 0
else
	fail "proa-httpd under socket activation did not start"
fi
sock=$work/httpd.sock
if lib_start_server python3 "$here/activate.py" "unix:$sock" "$bin" "$root"; then
	check "LISTEN_FDS, UNIX socket: says where ($SRV_LINE)" \
		test "$SRV_LINE" = "proa-httpd: serving $(cd "$root" && pwd -P) at unix:$sock (UNIX socket)"
	check "LISTEN_FDS, UNIX socket: GET" \
		test "$(curl -sS --unix-socket "$sock" http://x/hello.txt)" = "Hello, World!"
	stop_server TERM
	check "LISTEN_FDS, UNIX socket: exits 0" test "$SRV_RC" = 0
else
	fail "proa-httpd on a passed UNIX socket did not start"
fi
err=$(run_limited 10 python3 "$here/activate.py" two "$bin" "$root" 2>&1)
rc=$?
check "LISTEN_FDS=2: exits 1, says it serves one ($err)" \
	test "$rc" = 1 -a -n "$(grep 'serves one' <<<"$err")"
err=$(run_limited 10 python3 "$here/activate.py" bad "$bin" "$root" 2>&1)
rc=$?
check "LISTEN_FDS not a number: exits 1 ($err)" \
	test "$rc" = 1 -a -n "$(grep 'LISTEN_FDS' <<<"$err")"

# ---- TLS: curl with the test CA ----------------------------------------
if start_httpd --tls "$certs/server.pem" "$certs/server.key" "$root"; then
	url=https://localhost:$PORT
	got=$(curl -sS --cacert "$certs/ca.pem" "$url/hello.txt" 2>&1)
	check "curl over TLS with the test CA: $got" test "$got" = "Hello, World!"
	curl -sS --cacert "$certs/ca.pem" -o "$work/tlsbig" "$url/huge.bin"
	check "5 MB over TLS byte-exact" cmp -s "$work/tlsbig" "$root/huge.bin"
	out=$(curl -sS --cacert "$certs/ca.pem" -v -o /dev/null -o /dev/null "$url/hello.txt" "$url/big.bin" 2>&1)
	check "keep-alive over TLS" grep -q 'Re-using existing connection' <<<"$out"
	err=$(curl -sS "$url/hello.txt" 2>&1)
	check "curl without the CA refuses the certificate" test -n "$(grep -i 'certificate' <<<"$err")"
	stop_server TERM
	check "TLS server exits 0 on SIGTERM" test "$SRV_RC" = 0
else
	fail "proa-httpd --tls did not start"
fi
err=$(run_limited 10 "$bin" --port 0 --tls "$work/none.pem" "$certs/server.key" "$root" 2>&1)
check "a missing certificate exits 1: $err" test $? = 1

# ---- EMFILE: 80 connections against 64 descriptors do not break it ------
if start_httpd_limited() { lib_start_server bash -c 'ulimit -n 64 && exec "$0" "$@"' "$bin" --port 0 "$root"; }; start_httpd_limited; then
	PORT=${SRV_LINE##*:}
	PORT=${PORT%/}
	fds=()
	for _ in $(seq 1 80); do
		exec {f}<>"/dev/tcp/127.0.0.1/$PORT" && fds+=("$f")
	done
	# While they are all open, some were accepted and some wait: close
	# them and the server must serve again (it retries accept).
	for f in "${fds[@]}"; do exec {f}<&-; done
	got=""
	for _ in $(seq 1 50); do
		got=$(curl -sS -m 2 "http://127.0.0.1:$PORT/hello.txt" 2>/dev/null) &&
			[ "$got" = "Hello, World!" ] && break
		sleep 0.1
	done
	check "after 80 connections against 64 descriptors, still serving" test "$got" = "Hello, World!"
	stop_server TERM
	check "and exits 0 ($(tail -1 "$SRV_ERR"))" test "$SRV_RC" = 0
else
	fail "proa-httpd did not start with 64 descriptors"
fi

# ---- EMFILE while a body > 64 KiB is to be spliced ------------------------
# The splice path needs a pipe (two descriptors).  With none left, the
# response must still be whole (another way to send it) or a clean 503,
# never a head cut from its body.  One stalled reader holds the loop's
# pipe; idle connections take every descriptor but one, which the
# request's own connection takes.
if lib_start_server bash -c 'ulimit -n 64 && exec "$0" "$@"' "$bin" --port 0 --header-timeout 30000 "$root"; then
	PORT=${SRV_LINE##*:}
	PORT=${PORT%/}
	spid=$(cat /proc/"$SRV_PID"/task/*/children 2>/dev/null | tr ' ' '\n' | head -1)
	nfds() { ls /proc/"$spid"/fd 2>/dev/null | wc -l; }
	curl -sS -o /dev/null "http://127.0.0.1:$PORT/big.bin" # opened and cached
	exec {stall}<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /sparse.bin HTTP/1.1\r\nHost: x\r\n\r\n' >&"$stall"
	sleep 0.3
	fds=()
	for _ in $(seq 1 100); do
		n0=$(nfds)
		[ "$n0" -ge 63 ] && break
		exec {f}<>"/dev/tcp/127.0.0.1/$PORT" || break
		fds+=("$f")
		for _ in $(seq 1 50); do
			[ "$(nfds)" -gt "$n0" ] && break
			sleep 0.01
		done
	done
	sleep 0.2
	have=$(nfds)
	st=$(curl -sS -m 10 -o "$work/emfile" -w '%{http_code}' "http://127.0.0.1:$PORT/big.bin" 2>"$work/emfile.err")
	rc=$?
	if [ "$rc" = 0 ] && [ "$st" = 200 ] && cmp -s "$work/emfile" "$root/big.bin"; then
		pass "EMFILE ($have of 64 descriptors in use): a 300 KB file arrives whole"
	elif [ "$rc" = 0 ] && [ "$st" = 503 ]; then
		pass "EMFILE ($have of 64 descriptors in use): a clean 503"
	else
		fail "EMFILE ($have of 64 descriptors in use): status $st, curl rc $rc, $(wc -c <"$work/emfile") bytes: $(cat "$work/emfile.err")"
	fi
	for f in "${fds[@]}"; do exec {f}<&-; done
	exec {stall}<&-
	stop_server TERM
	check "exits 0 after EMFILE ($(tail -1 "$SRV_ERR"))" test "$SRV_RC" = 0
fi

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

# ---- no /proc (a bare chroot): files are opened again by path ------------
# A lookup opens a file for reading through /proc/self/fd/N of its O_PATH
# descriptor; without /proc it opens the path again beneath the root and
# checks that it is the same inode.  Served as before, refused as before.
# LeakSanitizer cannot run without /proc: it lists the threads from
# /proc/PID/task and exits 1 when it cannot.  Nor can a sanitizer build read
# ASAN_OPTIONS from the environment there, because the runtime takes its
# options from /proc/self/environ.  So the empty /proc gets one file,
# self/environ, that turns the leak check off for this one run (every other
# run keeps it); /proc/self/fd stays absent, which is what is tested.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	for backend in auto epoll; do
		out=$(PROA_BACKEND=$backend run_limited 20 unshare -m bash -c '
			mount -t tmpfs none /proc || exit 77
			mkdir /proc/self
			printf "ASAN_OPTIONS=%s\0" "${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" >/proc/self/environ
			"$0" --port 0 "$1" >"$2" 2>&1 & p=$!
			for _ in $(seq 200); do
				grep -q "serving" "$2" && break
				sleep 0.05
			done
			url=$(sed -n "s/.* at \(http[^ ]*\)\/$/\1/p" "$2" | head -1)
			a=$(curl -sS "$url/hello.txt")
			b=$(curl -sS -o /dev/null -w "%{http_code}" "$url/fifo")
			c=$(curl -sS -o /dev/null -w "%{http_code}" "$url/escape.txt")
			kill -TERM $p
			wait $p
			echo "$?|$a|$b|$c"' "$bin" "$root" "$work/noproc.$backend" 2>&1)
		[ $? = 77 ] && continue
		check "without /proc ($backend): a file served, a FIFO and a symlink out refused, exit 0 ($out)" \
			test "$out" = "0|Hello, World!|403|403"
	done
fi

# ---- every --send-path gives the same bytes ------------------------------
# splice (file -> pipe -> socket), map (sent from a mapping) and read (read
# into buffers, then sent) for files in memory (20 KB) and not (300 KB,
# 5 MB), whole, by range, and one after the other on a kept-alive
# connection.  The epoll backend cannot splice: asking for it is refused.
head -c 20000 /dev/urandom >"$root/mid.bin"
for way in splice map read; do
	if [ "$way" = splice ] && [ "${PROA_BACKEND:-}" = epoll ]; then
		err=$(run_limited 10 "$bin" --port 0 --send-path splice "$root" 2>&1)
		rc=$?
		check "--send-path splice on epoll exits 1: $err" \
			test "$rc" = 1 -a -n "$(printf '%s' "$err" | grep 'cannot splice')"
		continue
	fi
	if ! start_httpd --send-path "$way" "$root"; then
		fail "proa-httpd --send-path $way did not start"
		continue
	fi
	for f in mid.bin big.bin huge.bin; do
		curl -sS -o "$work/sp" "$URL/$f"
		check "--send-path $way: $f byte-exact" cmp -s "$work/sp" "$root/$f"
	done
	check_range "$way" "bytes=12345-4012344" 206 huge.bin 12345 4000000
	check_range "$way, in memory" "bytes=100-19999" 206 mid.bin 100 19900
	curl -sS -o "$work/sp1" -o "$work/sp2" -o "$work/sp3" \
		"$URL/huge.bin" "$URL/mid.bin" "$URL/big.bin"
	same=no
	cmp -s "$work/sp1" "$root/huge.bin" && cmp -s "$work/sp2" "$root/mid.bin" &&
		cmp -s "$work/sp3" "$root/big.bin" && same=yes
	check "--send-path $way: three files on one connection" test "$same" = yes
	# map sends a file it does not keep a copy of from a mapping, on
	# either backend's way to open it (the ring's chain or the pool), and
	# only map does: the cache holds huge.bin's entry until the end.
	mapped=no
	grep -q "$root/huge.bin" "/proc/$SRV_KID/maps" && mapped=yes
	check "--send-path $way: huge.bin mapped: $mapped" \
		test "$mapped" = "$([ "$way" = map ] && echo yes || echo no)"
	stop_server TERM
	check "--send-path $way exits 0 ($(tail -1 "$SRV_ERR"))" test "$SRV_RC" = 0
done

# ---- --list: directory listings -------------------------------------------
ld=$root/listed
mkdir -p "$ld/sub dir" "$ld/.git"
printf 'a\n' >"$ld/plain.txt"
printf 'b\n' >"$ld/<b>&\"q'.txt"
printf 'c\n' >"$ld/?#odd"
printf 'd\n' >"$ld/.hidden"
mkfifo "$ld/pipe"
printf 's\n' >"$ld/secret-file"
chmod 600 "$ld/secret-file"
mkdir -p "$ld/closed-dir"
chmod 700 "$ld/closed-dir"
chmod 755 "$ld" "$ld/sub dir"
big_ld=$root/big
mkdir -p "$big_ld"
if start_httpd --list --loops 1 "$root"; then
	list=$(curl -sS "$URL/listed/")
	check "--list: a directory without an index is listed (200, text/html)" \
		test "$(curl -sS -o /dev/null -w '%{http_code} %{content_type}' "$URL/listed/")" = "200 text/html; charset=utf-8"
	check "--list: names escaped in the text and encoded in the link" \
		grep -qF '<a href="%3Cb%3E%26%22q%27.txt">&lt;b&gt;&amp;&quot;q&#39;.txt</a>' <<<"$list"
	check "--list: a name with ? and # links to itself" \
		test "$(curl -sS "$URL/listed/$(sed -n 's/.*href="\(%3F[^"]*\)".*/\1/p' <<<"$list")")" = c
	check "--list: directories first, with their slash" \
		grep -qF '<a href="sub%20dir/">sub dir/</a>' <<<"$list"
	check "--list: dot files and FIFOs are not listed" \
		test "$(grep -cE 'hidden|\.git|pipe' <<<"$list")" = 0
	if [ "$(id -u)" = 0 ]; then
		check "--list: as root, what others may not read or enter is not listed" \
			test "$(grep -cE 'secret-file|closed-dir' <<<"$list")" = 0
	fi
	check "--list: a directory with an index still serves the index" \
		test "$(curl -sS "$URL/sub/")" = "sub index"
	check "--list: a path below a listing that is not there: 404" \
		test "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/listed/nope")" = 404
	check "--list: HEAD of a listing has no body" \
		test "$(curl -sS -I "$URL/listed/" | grep -c '^Content-Length: [1-9]')" = 1
	# A file rewritten in place to a size of as many digits changes the
	# page but neither its length nor the directory's mtime: the ETag
	# must change all the same (it was made of those two).
	etag1=$(curl -sS -I "$URL/listed/" | tr -d '\r' | sed -n 's/^ETag: //Ip')
	printf 'ab\n' >"$ld/plain.txt"
	etag2=$(curl -sS -I "$URL/listed/" | tr -d '\r' | sed -n 's/^ETag: //Ip')
	check "--list: the ETag follows the page ($etag1, then $etag2)" \
		test -n "$etag1" -a -n "$etag2" -a "$etag1" != "$etag2"
	# Names that escape to ~1.8 KB each: the page stops at 1 MiB and
	# says how many it left out.
	python3 -c 'import os,sys
for i in range(1000):
    open(os.path.join(sys.argv[1], "%04d" % i + "\"" * 200), "w").close()' "$big_ld"
	size=$(curl -sS "$URL/big/" | tee "$work/big.html" | wc -c)
	check "--list: a page stops at 1 MiB ($size bytes) and says what it left out" \
		test "$size" -le 1048576 -a "$size" -gt 900000 -a \
		-n "$(grep -E '\.\.\. and [0-9]+ more not listed' "$work/big.html")"
	stop_server TERM
	check "--list: exits 0" test "$SRV_RC" = 0
else
	fail "proa-httpd --list did not start"
fi
# Pages being made, and made but not yet sent, hold at most 16 MiB per loop
# (16 of at most 1 MiB): beyond, 503.  The fault hook stalls each listing
# on a FIFO in its directory (16 paths to it through symlinks, 16 lookups),
# so that 16 are held, deterministically, when the 17th comes; a writer
# on the FIFO lets them all finish, and the room comes back.
mkdir -p "$root/stalls" "$root/nofifo"
mkfifo "$root/stalls/fifo"
for i in $(seq 1 17); do ln -s stalls "$root/stall$i"; done
if PROA_HTTPD_FAULT_STALL_FIFO=1 start_httpd --list --loops 1 "$root"; then
	got=$(run_limited 60 python3 -c '
import os, socket, sys
port, fifo = int(sys.argv[1]), sys.argv[2]
# What a listing request looks up first ("stallN": a directory; its
# index.html: none) is remembered for a second: looked up now, each held
# request reaches its listing (and its reservation) as soon as it is
# parsed, so the 16 are held before the 17th comes (cold, those lookups
# could let the 17th in first).
warm = socket.create_connection(("127.0.0.1", port), timeout=20)
for i in range(1, 18):
    for path in (b"/stall%d" % i, b"/stall%d/index.html" % i):
        warm.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += warm.recv(4096)
        n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < n:
            body += warm.recv(4096)
warm.close()
def ask(i):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"GET /stall%d/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
    return s
held = [ask(i) for i in range(1, 17)]
late = ask(17)
first = late.recv(12)[9:12].decode()
w = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer: the stalls end
got = [s.recv(4096) for s in held]
os.close(w)
rest = sorted(set(g[9:12].decode() for g in got))
odd = [g for g in got if g[9:12] != b"200"]
print("17th:%s others:%s" % (first, ",".join(rest)))
if odd:
    sys.stderr.write("first odd answer: %r\n" % odd[0][-300:])
' "$PORT" "$root/stalls/fifo")
	check "--list: the 17th listing in the making is 503 ($got)" \
		test "$got" = "17th:503 others:200"
	# (A directory with no FIFO: with the writer gone, one stalls.)
	check "--list: the room is back once they are done" \
		test "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/nofifo/")" = 200
	stop_server TERM
	check "--list: exits 0 after the stalls" test "$SRV_RC" = 0
else
	fail "proa-httpd --list (stalls) did not start"
fi
rm -f "$root"/stall[0-9]*
# ---- the cache follows a file that changes ---------------------------------
# An entry is trusted for a second, then revalidated (a statx: an io_uring
# operation, or a call on the file lane on epoll); a file rewritten in
# place, replaced by a rename, truncated to another size or removed is
# looked up again.  answer_becomes polls until the answer changes, bounded
# by the second of trust plus the revalidation's round trip (5 s here).
answer_becomes() { # WANT CURL-ARGS...
	local want=$1 deadline=$((SECONDS + 5)) got
	shift
	while :; do
		got=$(curl -sS "$@")
		[ "$got" = "$want" ] && return 0
		[ "$SECONDS" -ge "$deadline" ] && {
			echo "  last answer: '$got'"
			return 1
		}
		sleep 0.1
	done
}
body_becomes() { # PATH LINE: the body is LINE and a newline, with 200
	answer_becomes "$2"$'\n'" 200" -w ' %{http_code}' "$URL/$1"
}
status_becomes() { # PATH CODE
	answer_becomes "$2" -o /dev/null -w '%{http_code}' "$URL/$1"
}
for backend in auto epoll; do
	printf 'version 1\n' >"$root/changes.txt"
	# An old mtime: a rewrite within the file system's timestamp tick
	# would look unchanged to any stat-based cache (nginx's too).
	touch -d '2001-01-01' "$root/changes.txt"
	if ! PROA_BACKEND=$backend start_httpd "$root"; then
		fail "proa-httpd ($backend) did not start"
		continue
	fi
	check "changes ($backend): served and cached" \
		test "$(curl -sS "$URL/changes.txt")" = "version 1"
	printf 'version 2\n' >"$root/changes.txt"
	check "changes ($backend): rewritten in place, the new bytes follow" \
		body_becomes changes.txt "version 2"
	printf 'version 3\n' >"$work/changes.new"
	mv "$work/changes.new" "$root/changes.txt"
	check "changes ($backend): replaced by a rename, the new file follows" \
		body_becomes changes.txt "version 3"
	printf 'v4\n' >"$root/changes.txt"
	check "changes ($backend): truncated to another size, the new length follows" \
		body_becomes changes.txt "v4"
	rm "$root/changes.txt"
	check "changes ($backend): removed, then 404" \
		status_becomes changes.txt 404
	stop_server TERM
	check "changes ($backend): exits 0" test "$SRV_RC" = 0
done

echo "httpd integration: $failures failure(s)"
[ "$failures" -gt 100 ] && failures=100
exit "$failures"
