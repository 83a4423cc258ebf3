#!/bin/bash
# SPDX-License-Identifier: MIT
# proa-probe as a user runs it: the report and its self-check; a loop that
# cannot be made, said as such (not as "no io_uring"); a report that
# cannot be written is a failure; the command line's contract.  Each check
# prints PASS or FAIL; the exit status is the number of failures.
#
# Usage: run.sh PATH/TO/proa-probe
set -u

bin=${1:?usage: run.sh PATH/TO/proa-probe}
[ -x "$bin" ] || {
	echo "run.sh: $bin is not an executable" >&2
	exit 2
}
work=$(mktemp -d)
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
lib_cleanup_on_exit

out=$(run_limited 60 "$bin" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q "cannot make a loop" <<<"$out"; then
	echo "SKIP: no loop here: $out"
	exit 77
fi
check "the report and its self-check: exit 0, 'ok' last ($(tail -1 <<<"$out"))" \
	test "$rc" -eq 0 -a "$(tail -1 <<<"$out")" = ok
out=$(run_limited 60 "$bin" --features-only 2>&1)
check "--features-only: exit 0, the version first" \
	test $? -eq 0 -a "${out:0:5}" = "proa "
out=$(PROA_RING=bogus run_limited 60 "$bin" 2>&1)
rc=$?
check "a loop that cannot be made (PROA_RING=bogus): exit 1, said as such: $(grep proa-probe: <<<"$out")" \
	test "$rc" -eq 1 -a -n "$(grep 'cannot make a loop: Invalid argument' <<<"$out")"
if [ -w /dev/full ]; then
	run_limited 60 "$bin" >/dev/full 2>"$work/full.err"
	rc=$?
	check "a report that cannot be written: exit 1 ($(cat "$work/full.err"))" \
		test "$rc" -eq 1 -a -n "$(grep 'cannot write the report' "$work/full.err")"
fi
"$bin" stray >/dev/null 2>&1
check "an unexpected argument exits 2" test $? -eq 2
"$bin" --help >/dev/null 2>&1
check "--help exits 0" test $? -eq 0

[ "$failures" -gt 100 ] && failures=100
exit "$failures"
