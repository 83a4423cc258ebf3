#!/bin/bash
# Install proa into a temporary prefix and build a consumer against it:
# find_package(proa) with the shared and the static target, and pkg-config.
# Usage: run.sh BUILD_DIR SOURCE_DIR C_COMPILER
set -euo pipefail
build=$1 src=$2 cc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -1)
libdir=${libdir%/pkgconfig}

cmake -S "$src/tests/install/consumer" -B "$work/cmake" \
	-DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$work/cmake" >/dev/null

export PKG_CONFIG_PATH=$libdir/pkgconfig
deps_pc="liburing hwloc libssl libcrypto"
# Built with c-ares (PROA_WITH_CARES): proa.pc requires it.
grep -q libcares "$libdir/pkgconfig/proa.pc" && deps_pc+=" libcares"
# shellcheck disable=SC2046
"$cc" -o "$work/pc_shared" "$src/tests/install/consumer/consumer.c" \
	$(pkg-config --cflags --libs proa)
# shellcheck disable=SC2046
"$cc" -o "$work/pc_static" "$src/tests/install/consumer/consumer.c" \
	$(pkg-config --cflags proa) "$libdir/libproa.a" \
	$(pkg-config --libs-only-other --static proa) \
	$(pkg-config --libs $deps_pc)

status=0
for exe in "$work/cmake/consumer_shared" "$work/cmake/consumer_static" \
	"$work/pc_shared" "$work/pc_static"; do
	rc=0
	LD_LIBRARY_PATH=$libdir "$exe" || rc=$?
	[ "$rc" = 77 ] && exit 77
	[ "$rc" = 0 ] || { echo "FAILED: $exe exited $rc"; status=1; }
done
# The shared consumer really uses the installed shared library. ldd's output
# is taken whole first: "ldd | grep -q" under pipefail fails at random when
# grep exits at the first match and ldd dies of SIGPIPE.
deps=$(LD_LIBRARY_PATH=$libdir ldd "$work/pc_shared")
case $deps in
*"$libdir/libproa.so"*) ;;
*) echo "FAILED: pc_shared does not link the installed libproa.so:"
	echo "$deps"
	status=1 ;;
esac
# The shared library exports the public API and nothing else, each symbol
# in the version node of its ABI (cmake/proa.map.in).
soname=$(objdump -p "$libdir/libproa.so" | awk '$1 == "SONAME" {print $2}')
abi=${soname#libproa.so.}
syms=$(nm -D --defined-only "$libdir/libproa.so" | awk '{print $3}')
bad=$(grep -v -E "^(proa_[a-zA-Z0-9][a-zA-Z0-9_]*@@PROA_$abi|PROA_$abi)\$" \
	<<<"$(nm -D --defined-only --with-symbol-versions \
		"$libdir/libproa.so" | awk '{print $3}')" || true)
if [ -z "$abi" ] || [ -n "$bad" ] || ! grep -q '^proa_loop_new' <<<"$syms"; then
	echo "FAILED: exports of $soname beyond proa_* in PROA_$abi:"
	echo "$bad" | head -20
	status=1
fi
[ "$status" = 0 ] && echo "install: find_package and pkg-config consumers ok; $soname exports $(wc -l <<<"$syms") proa_* symbols, version PROA_$abi"
exit $status
