#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-echo --stdio: stdin and stdout as one pipe transport
# (proa_pipe_open()).  4 MB of random bytes must come out unchanged from a
# pipe to a pipe, from a file to a file and to a slow reader; a reader
# that goes away makes it fail with a message (exit 1, not SIGPIPE).  The
# exit status is the number of failures.  Every run is under timeout(1),
# so nothing can hang the test.
#
# Usage: stdio.sh PATH/TO/proa-echo
set -u

bin=${1:?usage: stdio.sh PATH/TO/proa-echo}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0

check() {
	if cmp -s "$dir/in" "$dir/out"; then
		echo "PASS $1"
	else
		echo "FAIL $1"
		fails=$((fails + 1))
	fi
	rm -f "$dir/out"
}

head -c 4000000 /dev/urandom >"$dir/in"
timeout 60 cat "$dir/in" | timeout 60 "$bin" --stdio | cat >"$dir/out"
check "pipe to pipe"
timeout 60 "$bin" --stdio <"$dir/in" >"$dir/out"
check "file to file"
# A slow reader: stdout fills while stdin keeps coming; pause_writing
# stops reading until it drains, so nothing is lost.
timeout 60 "$bin" --stdio <"$dir/in" |
	(sleep 0.5 && cat) >"$dir/out"
check "slow reader"
# A reader that goes away: the program says so and fails (no SIGPIPE).
timeout 60 "$bin" --stdio <"$dir/in" 2>"$dir/err" | head -c 10 >/dev/null
st=${PIPESTATUS[0]}
if [ "$st" -ne 1 ]; then
	echo "FAIL reader gone: exit $st"
	fails=$((fails + 1))
elif grep -q "stdio:" "$dir/err"; then
	echo "PASS reader gone"
else
	echo "FAIL reader gone: $(cat "$dir/err")"
	fails=$((fails + 1))
fi
exit $((fails > 100 ? 100 : fails))
