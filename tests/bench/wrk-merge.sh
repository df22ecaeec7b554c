#!/usr/bin/env bash
# Merges the outputs of wrk runs made side by side into one result.
#
#   tests/bench/wrk-merge.sh FILE...
#
# Each FILE is the output of one wrk run with tests/bench/etcd-wrk.lua: its
# WRK_RESULT line and its WRK_QUANTILES line (the latency at every 0.1
# percent, in us). Prints one WRK_RESULT line in the same format, plus
# runs=N: requests, rates and error counts add up, the mean is weighted by
# requests, max is the largest, and p50/p90/p99 are read off the runs'
# distributions put together, each quantile point weighing its run's
# requests / points. compare-etcd.sh spreads its etcd connections over the
# three members with one wrk per member and merges them with this.
# Exits 1 if a file lacks either line.
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
for f in "$@"; do
    if ! grep -q '^WRK_RESULT ' "$f" || ! grep -q '^WRK_QUANTILES ' "$f"; then
        echo "wrk-merge: $f: no WRK_RESULT or WRK_QUANTILES line" >&2
        exit 1
    fi
done

# One "P latency weight" line per quantile point and one "R key=value..."
# line per run; sorted so that the points come in latency order.
# A run is a file argument (the same file twice is two runs).
awk '
    FNR == 1 { f++ }
    /^WRK_RESULT / {
        line = $0; sub(/^WRK_RESULT /, "", line); r[f] = line
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "requests") req[f] = kv[2]
        }
    }
    /^WRK_QUANTILES / { for (i = 2; i <= NF; i++) q[f, i - 1] = $i; nq[f] = NF - 1 }
    END {
        for (j = 1; j <= f; j++) {
            print "R", r[j]
            for (i = 1; i <= nq[j]; i++) print "P", q[j, i], req[j] / nq[j]
        }
    }' "$@" | LC_ALL=C sort -k1,1 -k2,2n | awk '
    $1 == "P" { n++; v[n] = $2; w[n] = $3; next }
    $1 == "R" {
        runs++
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        req += f["requests"]; rps += f["rps"]; mean += f["mean_ms"] * f["requests"]
        if (f["duration_s"] > dur) dur = f["duration_s"]
        if (f["max_ms"] > max) max = f["max_ms"]
        ae += f["app_errors"]; se += f["sock_errors"]; nx += f["non2xx"]
        mode = f["mode"]
    }
    END {
        split("50 90 99", want, " ")
        k = 1
        for (i = 1; i <= n && k <= 3; i++) {
            cum += w[i]
            while (k <= 3 && cum >= want[k] / 100 * req - 1e-9) { p[want[k]] = v[i]; k++ }
        }
        printf "WRK_RESULT mode=%s requests=%d duration_s=%.3f rps=%.1f mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f app_errors=%d sock_errors=%d non2xx=%d runs=%d\n",
            mode, req, dur, rps, req ? mean / req : 0, p[50] / 1000, p[90] / 1000,
            p[99] / 1000, max, ae, se, nx, runs
    }'
