# SPDX-License-Identifier: MIT
# tests/integration/lib.sh - sourced by the integration scripts: PASS/FAIL
# bookkeeping, bounded commands, and a server started in the background
# whose first stdout line says it is ready.
#
# Synchronisation is by that line, read from a fifo with a bounded wait;
# every process runs under timeout(1), so nothing can hang a test.
# The caller sets $work (a temporary directory) before using these.

failures=0
SRV_PID=
SRV_KID=
SRV_FD=
SRV_ERR=
SRV_LINE=
SRV_RC=
lib_nserv=0

pass() {
	echo "PASS: $*"
}

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# check NAME CONDITION...: PASS if the command succeeds, FAIL otherwise.
check() {
	local name=$1
	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name"
	fi
}

# run_limited SECS CMD...: CMD under timeout(1), killed if it hangs.
run_limited() {
	local secs=$1
	shift
	timeout --foreground -k 5 "$secs" "$@"
}

# lib_start_server CMD ARGS...: start CMD in the background and wait (at
# most 20 s) for its first stdout line, left in SRV_LINE.  Sets SRV_PID (the
# timeout(1) around it, whose status is the server's), SRV_KID (the server
# itself) and SRV_ERR (its stderr); returns non-zero if the line did not come.
lib_start_server() {
	local fifo
	lib_nserv=$((lib_nserv + 1))
	fifo=$work/ready.$lib_nserv
	SRV_ERR=$work/server.$lib_nserv.err
	mkfifo "$fifo"
	# timeout(1) itself, not a function: $! must be the process that
	# passes our signals on.  --foreground: without it timeout also
	# signals its whole process group, so the server would get SIGTERM
	# twice, and the second, pending at exit, stalls LeakSanitizer.
	timeout --foreground -k 5 600 "$@" >"$fifo" 2>"$SRV_ERR" &
	SRV_PID=$!
	SRV_KID=
	# Read-write, so that opening never blocks; the read is bounded.  The
	# fifo stays until the line is read: the background shell may not
	# have opened it yet.
	exec {SRV_FD}<>"$fifo"
	if ! read -r -t 20 -u "$SRV_FD" SRV_LINE; then
		echo "  '$*' did not report ready; stderr:"
		sed 's/^/  | /' "$SRV_ERR"
		stop_server KILL
		rm -f "$fifo"
		return 1
	fi
	rm -f "$fifo"
	# Signals go to the server, not through timeout(1): coreutils 9.1's
	# timeout can run its handler between fork() and storing the child's
	# pid, and then exits 128+sig itself, leaving the server orphaned
	# (seen on a loaded machine, once in ~30 starts).  The server has
	# printed its line, so it is timeout's child by now.
	read -r SRV_KID _ <"/proc/$SRV_PID/task/$SRV_PID/children" 2>/dev/null
	[ -n "$SRV_KID" ] || SRV_KID=$(pgrep -P "$SRV_PID" 2>/dev/null | head -1)
	return 0
}

# server_signal SIGNAL: send SIGNAL to the server started last.
server_signal() {
	[ -n "$SRV_PID" ] || return 0
	kill -"$1" "${SRV_KID:-$SRV_PID}" 2>/dev/null
}

# stop_server [SIGNAL]: signal the server (TERM) and wait for it; its
# exit status goes to SRV_RC.
stop_server() {
	local sig=${1:-TERM}
	[ -n "$SRV_PID" ] || return 0
	[ "$sig" = 0 ] || server_signal "$sig"
	wait "$SRV_PID"
	SRV_RC=$?
	exec {SRV_FD}<&-
	SRV_PID=
	SRV_KID=
}

# lib_cleanup_on_exit: when the script exits, kill the server it started
# (if still running) and remove $work.
lib_cleanup_on_exit() {
	trap lib_cleanup EXIT
}
# shellcheck disable=SC2317 # run by the trap
lib_cleanup() {
	[ -n "$SRV_KID" ] && kill -KILL "$SRV_KID" 2>/dev/null
	[ -n "$SRV_PID" ] && kill -KILL "$SRV_PID" 2>/dev/null
	rm -rf "$work"
}

# lib_need_certs DIR NAME: the test certificates (scripts/make-test-certs.sh)
# in DIR, made there unless present; exits 2 with NAME's message if they
# cannot be made.
lib_need_certs() {
	local dir=$1 name=$2
	[ -f "$dir/server.pem" ] && return 0
	"$(dirname "${BASH_SOURCE[0]}")/../../scripts/make-test-certs.sh" \
		"$dir" >/dev/null || {
		echo "$name: cannot make test certificates in $dir" >&2
		exit 2
	}
}
