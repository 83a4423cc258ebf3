#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what proa needs on Debian 12, skipping what is already there.
# Debian packages only, with apt-get; nothing is downloaded from elsewhere.
#
# Usage: scripts/setup.sh [build|test|bench]   (default: build)
#   build  compiler tools and the libraries proa links
#   test   build + cmocka, sanitizer runtimes, clang, the tools tests
#          drive (curl, wrk, openssl, strace), and every peer and tool of
#          perf/run (libuv, libevent, fio, nginx, gnuplot, python3): the
#          suite runs perf/run --quick
#   bench  the same as test (kept for the scripts that name it)
set -euo pipefail

what=${1:-build}
# libudev-dev: hwloc's static link flags (pkg-config --static proa) name
# -ludev.  libc-ares-dev: proa_getaddrinfo() on the loop (PROA_WITH_CARES).
build_pkgs=(cmake make gcc pkg-config liburing-dev libhwloc-dev libssl-dev
	libudev-dev libc-ares-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev libuv1-dev libevent-dev
	libhttp-parser-dev curl wrk
	openssl strace procps
	fio nginx-light gnuplot-nox python3)
bench_pkgs=()

case $what in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*)
	echo "usage: $0 [build|test|bench]" >&2
	exit 2
	;;
esac

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: everything for '$what' is installed"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "setup: missing packages: ${missing[*]}" >&2
	echo "setup: run as root (or install sudo) to install them" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
	>/dev/null
echo "setup: done"
