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
    "--nodes 3 --nemeses 'kill kill-leader pause pause-leader'"
    "--nodes 5 --nemeses 'kill kill-leader pause pause-leader'"
    "--nodes 3 --nemeses 'member transfer diskfull'"
    "--nodes 5 --nemeses 'member transfer kill-leader partition-leader'"
    "--nodes 3 --fuse"
    "--nodes 5 --fuse"
    "--nodes 3 --fuse --nemeses 'partition-leader kill-leader pause-leader'"
    "--nodes 3"
)
runs=0 failed=0 i=0
seed0=${RAFTFS_FAULT_SEED:-$(( $(date +%s) % 100000 * 1000 ))}
echo "# long mode $(date -u +%FT%TZ): $minutes minutes, first seed $seed0" >> "$log"
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
[ $failed = 0 ]
