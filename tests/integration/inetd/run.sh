#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-inetd end to end, with Python clients (inetd_client.py): a command's
# stdin, stdout and stderr are its connection; 64 clients at once through
# cat with --max-children 8; a command that cannot start; the bound of
# --max-children and the drain on SIGTERM; the grace period that ends a
# command which never finishes; the command line's contract.  Each check
# prints PASS or FAIL; the exit status is the number of failures (capped),
# 77 when no loop can be made here.
#
# Usage: run.sh PATH/TO/proa-inetd
#
# Synchronisation is by the server's "listening on" line, read from a fifo
# with a bounded wait; every process runs under timeout(1).
set -u

bin=${1:?usage: run.sh PATH/TO/proa-inetd}
[ -x "$bin" ] || {
	echo "run.sh: $bin is not an executable" >&2
	exit 2
}
client=$(dirname "$0")/inetd_client.py
command -v python3 >/dev/null || {
	echo "SKIP: no python3 for inetd_client.py"
	exit 77
}
work=$(mktemp -d)

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
lib_cleanup_on_exit

SRV_PORT=
START_WRAP=()
# start ARGS...: start proa-inetd ARGS (under "${START_WRAP[@]}", if set)
# and read its port.
start() {
	lib_start_server "${START_WRAP[@]}" "$bin" "$@" || return 1
	case $SRV_LINE in
	"listening on 127.0.0.1:"[0-9]*)
		SRV_PORT=${SRV_LINE##*:}
		;;
	*)
		echo "  unexpected first line: '$SRV_LINE'"
		stop_server KILL
		return 1
		;;
	esac
}

# client NAME MODE ARGS...: run inetd_client.py MODE $SRV_PORT ARGS.
client() {
	local name=$1 out rc
	shift
	out=$(run_limited 120 python3 "$client" "$1" "$SRV_PORT" "${@:2}" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "$name: $out"
	else
		fail "$name: exit $rc: $out"
	fi
}

# stopped NAME WANT: the server has exited (wait), with status 0 and a
# summary line matching WANT (a grep pattern).
stopped() {
	local name=$1 want=$2
	wait "$SRV_PID"
	SRV_RC=$?
	exec {SRV_FD}<&-
	SRV_PID=
	SRV_KID=
	if [ "$SRV_RC" -eq 0 ] && grep -q "$want" "$SRV_ERR"; then
		pass "$name: exit 0, $(tail -1 "$SRV_ERR")"
	else
		fail "$name: exit $SRV_RC, stderr:"
		sed 's/^/  | /' "$SRV_ERR"
	fi
}

# ---- command line -------------------------------------------------------

out=$("$bin" --help 2>/dev/null)
rc=$?
check "--help exits 0 with the usage" test "$rc" -eq 0 -a "${out:0:6}" = "usage:"
"$bin" --max-children 0 -- /bin/true >/dev/null 2>&1
check "--max-children 0 exits 2" test $? -eq 2
"$bin" --port 1 >/dev/null 2>&1
check "no command exits 2" test $? -eq 2
"$bin" --host localhost -- /bin/true >/dev/null 2>"$work/host.err"
check "--host that is not an address exits 2, said once" \
	test $? -eq 2 -a "$(wc -l <"$work/host.err")" -eq 1

# ---- stdio is the connection --------------------------------------------

# shellcheck disable=SC2016 # expanded by the command's shell
if start -- /bin/sh -c 'echo "hi $TCPREMOTEIP $PROTO"; read x; echo "got $x"; echo err >&2'; then
	client "stdio" stdio
	stop_server TERM
	check "stdio: SIGTERM when idle exits 0" test "$SRV_RC" -eq 0
else
	if grep -q 'no loop' "$SRV_ERR"; then
		echo "SKIP: no loop here"
		exit 77
	fi
	fail "stdio: server did not start"
fi

# ---- many at once, bounded ------------------------------------------------

if start --max-children 8 -- /bin/cat; then
	client "64 clients, 8 commands at a time" many 64 200000
	stop_server TERM
	check "many: exit 0 and 64 commands exited 0" \
		grep -q "64 connections, 64 commands exited 0, 0 otherwise" "$SRV_ERR"
else
	fail "many: server did not start"
fi

# ---- out of descriptors -------------------------------------------------

# Fewer descriptors than clients waiting: the command that cannot start
# waits with its connection while accepting pauses, and every client is
# served in turn, none taken and dropped.  The limit is the server's
# alone (set around its start).
nofile=$(ulimit -Sn)
ulimit -Sn 24
start --max-children 100 -- /bin/cat
ok=$?
ulimit -Sn "$nofile"
if [ "$ok" -eq 0 ]; then
	client "40 clients waiting, descriptors for fewer" wave 40
	stop_server TERM
	check "wave: 40 commands exited 0, none failed to start" \
		grep -q "40 connections, 40 commands exited 0, 0 otherwise, 0 could not start" "$SRV_ERR"
else
	fail "wave: server did not start under ulimit -n 24"
fi

# Fewer descriptors than any command needs, and none running to give some
# back: the held connection is closed after 5 s (not held for ever), and
# the warning is said once, not at every retry.
# The limit is on descriptor numbers: the server starts with 0-2 alone
# (whatever ctest or a shell passed down would take the low numbers), and
# the limit must not reach the shell's own redirections.
START_WRAP=(python3 -c 'import os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))
os.closerange(3, 1 << 16)
os.execv(sys.argv[1], sys.argv[1:])')
start -- /bin/cat
ok=$?
START_WRAP=()
if [ "$ok" -eq 0 ]; then
	client "no descriptors for any command" eof
	stop_server TERM
	check "starved: the connection was given up, counted" \
		grep -q "1 connections, 0 commands exited 0, 0 otherwise, 1 could not start" "$SRV_ERR"
	check "starved: the warning said once" \
		test "$(grep -c "cannot start a command now" "$SRV_ERR")" -eq 1
else
	fail "starved: server did not start with 8 descriptors"
fi

# ---- what a command gets ------------------------------------------------

# A descriptor inetd inherited without close-on-exec does not reach the
# commands, and each command leads a session of its own (so a terminal's
# ^C reaches inetd alone, which grants the grace).
exec 7<"$0"
# shellcheck disable=SC2016
start -- /bin/sh -c 'if [ -e /proc/$$/fd/7 ]; then echo leak $$; else echo clean $$; fi'
ok=$?
exec 7<&-
if [ "$ok" -eq 0 ]; then
	line=$(run_limited 60 python3 "$client" hold "$SRV_PORT")
	stop_server TERM
	check "inherited descriptors stay with inetd ('$line')" test "${line%% *}" = clean
else
	fail "descriptors: server did not start"
fi
# shellcheck disable=SC2016
if start -- /bin/sh -c 'echo $$ $(cut -d" " -f6 /proc/$$/stat)'; then
	line=$(run_limited 60 python3 "$client" hold "$SRV_PORT")
	stop_server TERM
	check "a command leads its own session ('$line')" \
		test -n "${line%% *}" -a "${line%% *}" = "${line##* }"
else
	fail "session: server did not start"
fi

# ---- a command that cannot start ---------------------------------------

if start -- "$work/no-such-program"; then
	client "exec failure" eof
	stop_server TERM
	check "exec failure: the reason is on stderr" \
		grep -q "cannot run $work/no-such-program for 127.0.0.1:[0-9]*: No such file or directory" "$SRV_ERR"
	check "exec failure: counted" grep -q "0 commands exited 0, 0 otherwise, 1 could not start" "$SRV_ERR"
else
	fail "exec failure: server did not start"
fi

# ---- --max-children and the drain --------------------------------------------

# shellcheck disable=SC2016
if start --max-children 2 -- /bin/sh -c 'echo start; read x; echo "done $x"'; then
	client "bound and drain" bound "${SRV_KID:-$SRV_PID}"
	stopped "drain" "3 connections, 3 commands exited 0"
else
	fail "bound: server did not start"
fi

# ---- the grace period ---------------------------------------------------------

# A command that ignores SIGTERM, with a child of its own that holds the
# connection too: SIGTERM at the end of the grace, SIGKILL 2 s later, to
# both (the command's process group); the server exits 0 and no process of
# it is left.
# shellcheck disable=SC2016
if start --grace 1 -- /bin/sh -c 'trap "" TERM; sleep 100 & echo $$ $!; wait'; then
	mkfifo "$work/hold"
	run_limited 60 python3 "$client" hold "$SRV_PORT" >"$work/hold" &
	hold=$!
	exec {hfd}<>"$work/hold"
	cpid= gpid=
	read -r -t 20 -u "$hfd" cpid gpid
	check "grace: the command and its child run (pids '$cpid' '$gpid')" \
		test -n "$cpid" -a -n "$gpid"
	server_signal TERM
	stopped "grace" "1 connections, 0 commands exited 0, 1 otherwise"
	check "grace: SIGTERM, then SIGKILL were sent" \
		grep -q "SIGKILL to 1" "$SRV_ERR"
	wait "$hold"
	check "grace: the client saw its connection close" test $? -eq 0
	check "grace: the command is gone" test -n "$cpid" -a ! -d "/proc/$cpid"
	# (Dead, it may wait a moment as a zombie for its new parent.)
	state=$(cut -d" " -f3 "/proc/$gpid/stat" 2>/dev/null)
	check "grace: its child is gone (state '$state')" \
		test -n "$gpid" -a \( -z "$state" -o "$state" = Z \)
	exec {hfd}<&-
else
	fail "grace: server did not start"
fi

[ "$failures" -gt 100 ] && failures=100
exit "$failures"
