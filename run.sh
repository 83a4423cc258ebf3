#!/bin/bash
# SPDX-License-Identifier: MIT
# The main job: install what is missing, build, and serve a directory with
# proa-httpd on http://127.0.0.1:8080/ (it prints the URL; Ctrl-C stops
# it).  Arguments go to proa-httpd: "./run.sh --port 9000 /srv/www";
# without a directory it serves the one you run it from.  Directories
# without an index.html are listed (--list; --no-list turns it off).
#   ./run.sh --help     every option
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
"$src/scripts/setup.sh" build
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPROA_BUILD_TESTS=OFF >/dev/null
cmake --build "$src/build" -j"$(nproc)" >/dev/null
# What io_uring gives proa here, in one line (proa-probe tells it all).
"$src/build/apps/proa-probe" --features-only 2>&1 | head -1 || true
exec "$src/build/apps/proa-httpd" --list "$@"
