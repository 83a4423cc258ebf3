#!/bin/sh
# perf_quick: every benchmark runs briefly, exits 0 and prints well-formed
# lines with positive values.  Never judges the numbers themselves.
set -eu
bench=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
"$bench" --quick >"$out" || rc=$?
[ "$rc" = 77 ] && exit 77
[ "$rc" = 0 ] || { echo "proa-bench exited $rc"; exit 1; }
cat "$out"
bad=$(grep -cv '^{"bench":"[a-z_0-9]*","param":"[^"]*","impl":"[a-z_]*","value":[0-9.]*,"unit":"[^"]*"}$' "$out" || true)
[ "$bad" = 0 ] || { echo "$bad malformed lines"; exit 1; }
zero=$(grep -c '"value":0.000,' "$out" || true)
[ "$zero" = 0 ] || { echo "$zero zero values"; exit 1; }
for b in call_soon threadsafe wake_rtt timers nop pool; do
	grep -q "\"bench\":\"$b\"" "$out" || { echo "no $b line"; exit 1; }
done
echo "perf_quick: $(wc -l <"$out") measurements"
