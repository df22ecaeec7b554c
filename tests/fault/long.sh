#!/usr/bin/env bash
# The fault tests' long mode: many scenarios (sizes, nemesis mixes, FUSE or not) for as long as asked.
#
#   long.sh [MINUTES]     (default: $RAFTFS_LONG_MINUTES, else 60)
#
# Under meson (test fault_long) it runs only when RAFTFS_LONG=1, else it
# exits 77 (skip). Each scenario is one run.sh with a fresh seed; the
# summary lines go to $RAFTFS_FAULT_LOG (default /tmp/raftfs-fault-long.log)
# and the failing runs' directories are kept. Exit 1 if any run failed.
# Clients pause FT_THINK_MS (default here 10) between operations: the
# machine is shared.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${MESON_TEST_ITERATION:-}${MESON_BUILD_ROOT:-}" ] || [ "${1:-}" = --meson ]; then
    [ "${RAFTFS_LONG:-}" = 1 ] || { echo "fault_long: set RAFTFS_LONG=1 to run"; exit 77; }
    [ "${1:-}" = --meson ] && shift
fi
minutes=${1:-${RAFTFS_LONG_MINUTES:-60}}
export FT_THINK_MS=${FT_THINK_MS:-10}
log=${RAFTFS_FAULT_LOG:-/tmp/raftfs-fault-long.log}
end=$((SECONDS + minutes * 60))
scenarios=(
    "--nodes 3 --nemeses 'partition-leader partition-split oneway-leader'"
    "--nodes 5 --nemeses 'partition-leader partition-split partition-bridge oneway-leader'"
    "--nodes 3 --nemeses 'kill kill-leader kill-all pause pause-leader'"
    "--nodes 5 --nemeses 'kill kill-leader kill-all pause pause-leader'"
    "--nodes 3 --nemeses 'member transfer diskfull'"
    "--nodes 5 --nemeses 'member transfer kill-leader partition-leader'"
    "--nodes 3 --fuse"
    "--nodes 5 --fuse"
    "--nodes 3 --fuse --nemeses 'partition-leader kill-leader pause-leader'"
    "--nodes 3"
)
runs=0 failed=0 i=0
seed0=${RAFTFS_FAULT_SEED:-$(( $(date +%s) % 100000 * 1000 ))}
echo "# long mode $(date -u +%FT%TZ): $minutes minutes, first seed $seed0" | tee -a "$log" >> "$log.failover"
while [ $SECONDS -lt $end ]; do
    s=${scenarios[i % ${#scenarios[@]}]}
    seed=$((seed0 + i))
    i=$((i + 1))
    left=$(( (end - SECONDS) ))
    [ $left -lt 40 ] && break
    dur=$(( left > 100 ? 60 : left - 30 ))
    out=/tmp/raftfs-fault-run.$seed.out
    eval "\"$here/run.sh\" --seed $seed --duration $dur $s" > "$out" 2>&1
    rc=$?
    runs=$((runs + 1))
    sum=$(grep '^SUMMARY' "$out" | tail -1)
    echo "$sum rc=$rc args=$s" >> "$log"
    grep '^FAILOVER' "$out" >> "$log.failover" 2>/dev/null
    if [ $rc != 0 ]; then
        failed=$((failed + 1))
        echo "run $seed FAILED (rc $rc): $out" | tee -a "$log"
    else
        rm -f "$out"
    fi
    echo "$sum rc=$rc"
done
echo "long mode: $runs runs, $failed failed (log: $log)"
# Totals of this long run (the lines after the last header of each log).
awk '/^# long mode/ { ops = 0; faults = 0; runs = 0; bad = 0; next }
     /^SUMMARY/ { runs++; for (i = 2; i <= NF; i++) { split($i, kv, "=")
                  if (kv[1] == "ops") ops += kv[2]; if (kv[1] == "faults") faults += kv[2] }
                  if ($0 !~ / rc=0 /) bad++ }
     END { printf "totals: %d runs, %d client ops checked, %d faults injected, %d runs failed\n", runs, ops, faults, bad }' "$log"
echo "failover (fault -> first successful write invoked after it), ms:"
awk '/^# long mode/ { delete v; delete n; next }
     /^FAILOVER/ { n[$2]++; v[$2, n[$2]] = $3 }
     END { for (k in n) { m = n[k]
             for (i = 1; i <= m; i++) a[i] = v[k, i]
             for (i = 2; i <= m; i++) { x = a[i]; j = i - 1
                 while (j >= 1 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
             p90 = int(m * 0.9); if (p90 < 1) p90 = 1
             printf "  %-16s n=%-4d min %5d  median %5d  p90 %5d  max %5d\n", k, m, a[1], a[int((m + 1) / 2)], a[p90], a[m] } }' "$log.failover"
[ $failed = 0 ]
