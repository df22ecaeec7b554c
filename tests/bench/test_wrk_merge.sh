#!/usr/bin/env bash
# tests/bench/wrk-merge.sh: merged counts, rates and quantiles of wrk runs
# made side by side, checked on runs whose distributions are known.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/test_wrk_merge.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

# run FILE REQUESTS RPS MEAN_MS MAX_MS APP_ERRS SOCK_ERRS FIRST_US: a run
# whose latency at percentile i/10 is FIRST_US + i - 1 us (i = 1..1000).
run() {
    {
        echo "Running 4s test @ http://127.0.0.1:1"
        echo "WRK_RESULT mode=put requests=$2 duration_s=4.000 rps=$3 mean_ms=$4 p50_ms=0 p90_ms=0 p99_ms=0 max_ms=$5 app_errors=$6 sock_errors=$7 non2xx=0"
        echo "WRK_QUANTILES $(seq -s ' ' "$8" $(($8 + 999)))"
    } > "$1"
}
expect() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then
        echo "ok: $1"
    else
        echo "FAIL: $1"
        echo "  got:  $2"
        echo "  want: $3"
        fails=$((fails + 1))
    fi
}

run "$tmp/a" 1000 250.0 0.500 1.000 1 0 1
run "$tmp/b" 3000 750.0 1.500 2.000 0 2 1001

# One run: its own quantiles back.
expect "one run" "$("$here/wrk-merge.sh" "$tmp/a")" \
    "WRK_RESULT mode=put requests=1000 duration_s=4.000 rps=250.0 mean_ms=0.500 p50_ms=0.500 p90_ms=0.900 p99_ms=0.990 max_ms=1.000 app_errors=1 sock_errors=0 non2xx=0 runs=1"
# Two equal runs: the same distribution, counts doubled.
expect "two equal runs" "$("$here/wrk-merge.sh" "$tmp/a" "$tmp/a")" \
    "WRK_RESULT mode=put requests=2000 duration_s=4.000 rps=500.0 mean_ms=0.500 p50_ms=0.500 p90_ms=0.900 p99_ms=0.990 max_ms=1.000 app_errors=2 sock_errors=0 non2xx=0 runs=2"
# a: 1000 requests over 1-1000 us, b: 3000 over 1001-2000 us. The median
# of the 4000 is request 2000: a's 1000, then 1000 of b's, a third of
# its range: 1334 us. p90 (3600): 2600 of b's -> 1867 us; p99 (3960):
# 2960 -> 1987 us. Requests and rates add up, the mean is weighted, and
# the order of the files does not matter.
want="WRK_RESULT mode=put requests=4000 duration_s=4.000 rps=1000.0 mean_ms=1.250 p50_ms=1.334 p90_ms=1.867 p99_ms=1.987 max_ms=2.000 app_errors=1 sock_errors=2 non2xx=0 runs=2"
expect "weighted runs" "$("$here/wrk-merge.sh" "$tmp/a" "$tmp/b")" "$want"
expect "weighted runs, other order" "$("$here/wrk-merge.sh" "$tmp/b" "$tmp/a")" "$want"

# A run without its quantiles (an older lua script, a wrk that died):
# refused, not merged into a wrong figure.
grep -v WRK_QUANTILES "$tmp/b" > "$tmp/c"
rc=0
"$here/wrk-merge.sh" "$tmp/a" "$tmp/c" > "$tmp/out" 2> "$tmp/err" || rc=$?
expect "a run without quantiles is refused" "$rc $(wc -c < "$tmp/out") $(grep -c 'no WRK_RESULT or WRK_QUANTILES' "$tmp/err")" "1 0 1"

[ $fails -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
