#!/bin/bash
# SPDX-License-Identifier: MIT
# The main job: install what is missing, build, and run proa-probe, which
# reports what io_uring gives proa here and runs a short self-check.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROA_BUILD_TESTS=OFF \
	>/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/apps/proa-probe "$@"
