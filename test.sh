#!/bin/bash
# SPDX-License-Identifier: MIT
# Every test: install what is missing, then build and run the suite
#   1. RelWithDebInfo with -Werror, every test
#   2. ASan + UBSan (Debug), every test
#   3. TSan (Debug), the tests labelled "thread"
#   4. clang with -Wthread-safety -Werror, ASan+UBSan and libFuzzer: the
#      fuzz targets run for a bounded time
# and print one closing line: "total: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")"
scripts/setup.sh test || exit 1
jobs=$(nproc)
passed=0 failed=0 skipped=0 rc=0
skipped_names=()

configure_build() { # dir, cmake args...
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" >"$dir.configure.log" 2>&1 &&
		cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1 || {
		echo "test: building $dir FAILED:"
		tail -40 "$dir.configure.log" "$dir.build.log"
		return 1
	}
}

run_ctest() { # dir, name, ctest args...
	local dir=$1 name=$2 log
	shift 2
	echo "== $name"
	log=$(cd "$dir" && ctest --output-on-failure -j"$jobs" "$@" 2>&1)
	local status=$?
	echo "$log" | grep -E "^ *[0-9]+/[0-9]+ Test|tests passed|Not Run|\*\*\*" |
		sed 's/^ *//'
	# On failure, everything but the passing lines: the failed tests'
	# own output (--output-on-failure) and the summary.
	[ $status -eq 0 ] ||
		echo "$log" | grep -v 'Test *#[0-9]*: .* Passed' | grep -v '^ *Start '
	local total f s
	total=$(echo "$log" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p')
	f=$(echo "$log" | sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p')
	s=$(echo "$log" | grep -c "\*\*\*Skipped\|Not Run (Disabled)" || true)
	while read -r n; do
		[ -n "$n" ] && skipped_names+=("$name: $n")
	done < <(echo "$log" | sed -n 's/.*Test *#[0-9]*: \([^ ]*\) .*\*\*\*Skipped.*/\1/p')
	total=${total:-0} f=${f:-0}
	passed=$((passed + total - f - s))
	failed=$((failed + f))
	skipped=$((skipped + s))
	[ $status -eq 0 ] || rc=1
}

if configure_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPROA_WERROR=ON -DPROA_BUILD_TESTS=ON -DPROA_BUILD_PERF=ON; then
	echo "== probed io_uring features"
	build/apps/proa-probe --features-only || true
	run_ctest build "plain (RelWithDebInfo, -Werror)"
else
	rc=1 failed=$((failed + 1))
fi

if configure_build build-asan -DCMAKE_BUILD_TYPE=Debug -DPROA_WERROR=ON \
	-DPROA_BUILD_TESTS=ON -DPROA_SANITIZE=address,undefined; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest build-asan "ASan+UBSan (Debug)" -LE install
else
	rc=1 failed=$((failed + 1))
fi

if configure_build build-tsan -DCMAKE_BUILD_TYPE=Debug -DPROA_WERROR=ON \
	-DPROA_BUILD_TESTS=ON -DPROA_SANITIZE=thread; then
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		run_ctest build-tsan "TSan (Debug), thread tests" -L thread
else
	rc=1 failed=$((failed + 1))
fi

if configure_build build-clang -DCMAKE_C_COMPILER=clang -DPROA_WERROR=ON \
	-DCMAKE_BUILD_TYPE=Debug -DPROA_BUILD_TESTS=OFF -DPROA_BUILD_APPS=OFF \
	-DPROA_BUILD_FUZZ=ON -DPROA_SANITIZE=address,undefined; then
	run_ctest build-clang "clang -Wthread-safety, fuzz targets" -L fuzz
else
	rc=1 failed=$((failed + 1))
fi

if [ ${#skipped_names[@]} -gt 0 ]; then
	echo "== skipped"
	printf '  %s\n' "${skipped_names[@]}"
fi
echo "total: $passed passed, $failed failed, $skipped skipped"
exit $rc
