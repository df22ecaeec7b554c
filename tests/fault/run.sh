#!/usr/bin/env bash
# One fault-test scenario: a cluster in a private netns, clients, nemeses, then every check.
#
#   run.sh [--nodes N] [--duration S] [--seed S] [--nemeses "a b ..."]
#          [--workers W] [--keys K] [--hold MIN-MAX] [--fuse] [--keep]
#
#   --nodes N       cluster size (3)
#   --duration S    seconds of load under the nemeses (60)
#   --seed S        drives every random choice: nemesis order, hold times,
#                   victims, client keys and ops (default: from the clock)
#   --nemeses LIST  names from nemesis.sh, space separated (default: all)
#   --workers W     client workers per node (2)
#   --keys K        keys the clients share (6)
#   --hold MIN-MAX  seconds each fault is held (2-5; pauses and partitions
#                   outlast the 500 ms election timeout)
#   --fuse          half of the workers use the node's FUSE mount
#                   (DESIGN.md's table). By default the checker follows
#                   docs/semantics.md: a new file exists, empty, from its
#                   create until the creator's close.
#   --stale-mounts  mount with the "stale" option (local reads without the
#                   read index): a self-test, the checker must catch them
#   --expect-violation  exit 0 only if the checker reports a violation
#   --keep          keep the run directory (logs, history) even on success
#
# Exit status: 0 all checks passed, 1 a check failed, 77 skipped (needs
# root for unshare -n and nft). See docs/fault-testing.md.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

FT_N=3 FT_DURATION=60 FT_SEED= FT_NEMESES= FT_WORKERS=2 FT_KEYS=6
FT_HOLD_MIN=2 FT_HOLD_MAX=5 FT_FUSE=0
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) FT_N=$2; shift 2 ;;
        --duration) FT_DURATION=$2; shift 2 ;;
        --seed) FT_SEED=$2; shift 2 ;;
        --nemeses) FT_NEMESES=$2; shift 2 ;;
        --workers) FT_WORKERS=$2; shift 2 ;;
        --keys) FT_KEYS=$2; shift 2 ;;
        --hold) FT_HOLD_MIN=${2%-*}; FT_HOLD_MAX=${2#*-}; shift 2 ;;
        --fuse) FT_FUSE=1; shift ;;
        --stale-mounts) FT_STALE=1; shift ;;
        --expect-violation) FT_EXPECT_BAD=1; shift ;;
        --keep) export FT_KEEP=1; shift ;;
        *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
[ -n "$FT_SEED" ] || FT_SEED=$(( $(date +%s%N) % 1000000007 ))

# Re-run inside a private network namespace: nothing leaks to the host.
if [ "${FT_IN_NETNS:-}" != 1 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null || ! unshare -n true 2>/dev/null; then
        echo "fault: skipped (needs root, nft and unshare -n)"
        exit 77
    fi
    FT_IN_NETNS=1 exec unshare -n bash "$0" "${args[@]}" --seed "$FT_SEED"
fi

source "$here/cluster.sh"
source "$here/client.sh"
source "$here/nemesis.sh"

FT_BUILD=${RAFTFS_BUILD:-$top/build}
RAFTFSD=$FT_BUILD/fs/raftfsd
RAFTFSCTL=$FT_BUILD/mount-helpers/raftfsctl
FAULT_CHECK=${FAULT_CHECK:-$FT_BUILD/tests/fault/fault-check}
for b in "$RAFTFSD" "$RAFTFSCTL" "$FAULT_CHECK"; do
    [ -x "$b" ] || { echo "fault: no $b (build first, or set RAFTFS_BUILD)"; exit 1; }
done
FT_MAXN=$FT_N
FT_OP_MS=${FT_OP_MS:-3000}
FT_DISK_MAP_MB=${FT_DISK_MAP_MB:-48}
FT_DISK_MB=${FT_DISK_MB:-96}
FT_DAEMON_FLAGS=(--election-timeout-ms 500 --heartbeat-ms 50
    --op-timeout-ms 2000 --snapshot-entries 300 --log-level info)
[ -n "$FT_NEMESES" ] || FT_NEMESES=$FT_NEMESES_ALL
FT_NEMESES=$(echo $FT_NEMESES)
FT_MEMBERS=$(seq -s ' ' 1 "$FT_N")

FT_DIR=$(mktemp -d "/tmp/raftfs-fault.XXXXXX")
trap ft_cleanup EXIT
trap 'exit 130' INT TERM
# The nodes' boot id (store/durable.c), so that the power nemesis can play
# a reboot.
export RAFTFS_TEST_BOOT_ID_FILE=$FT_DIR/boot_id
echo boot-0 > "$RAFTFS_TEST_BOOT_ID_FILE"
FT_FAILED=0
ft_fail() { FT_FAILED=$((FT_FAILED + 1)); ft_log "FAIL: $*"; }

ft_log "seed $FT_SEED, $FT_N nodes, ${FT_DURATION}s, nemeses: $FT_NEMESES, dir $FT_DIR"
ft_net_init || { ft_log "nftables setup failed"; exit 1; }

if [[ " $FT_NEMESES " == *" diskfull "* ]]; then
    FT_DISK_NODE=$FT_N
    mkdir -p "$FT_DIR/disk"
    mount -t tmpfs -o size=${FT_DISK_MB}m fault-disk "$FT_DIR/disk" ||
        { ft_log "cannot mount a tmpfs"; exit 1; }
fi
for ((i = 1; i <= FT_N; i++)); do ft_node_conf $i; ft_node_start $i; done
leader=$(ft_wait_leader 30) || { ft_fail "no leader after 30 s"; exit 1; }
ft_log "leader: node $leader"
if [ "$FT_FUSE" = 1 ]; then
    for ((i = 1; i <= FT_N; i++)); do
        for t in $(seq 1 100); do mountpoint -q "$FT_DIR/mnt/$i" && break; sleep 0.1; done
        mountpoint -q "$FT_DIR/mnt/$i" || { ft_fail "node $i did not mount"; exit 1; }
    done
fi

# Clients: W per node; with --fuse, every second one goes through the mount.
FT_WORKER_PIDS=
for ((i = 1; i <= FT_N; i++)); do
    for ((w = 1; w <= FT_WORKERS; w++)); do
        id=$(((i - 1) * FT_WORKERS + w))
        via=ctl
        [ "$FT_FUSE" = 1 ] && [ $((w % 2)) = 0 ] && via=fuse
        ft_worker $id $i $via &
        FT_WORKER_PIDS+=" $!"
        echo "worker $id node $i via $via" >> "$FT_DIR/workers"
    done
done

# The nemesis schedule, driven by the seed.
RANDOM=$FT_SEED
nems=($FT_NEMESES)
t_end=$((SECONDS + FT_DURATION))
sleep 2
while [ $SECONDS -lt $((t_end - FT_HOLD_MIN - 1)) ]; do
    name=${nems[RANDOM % ${#nems[@]}]}
    hold=$((FT_HOLD_MIN + RANDOM % (FT_HOLD_MAX - FT_HOLD_MIN + 1)))
    echo "$name $hold" >> "$FT_DIR/schedule"
    "nem_${name//-/_}" "$hold"
    sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
done
while [ $SECONDS -lt $t_end ]; do sleep 0.2; done

# Stop the clients (each finishes its operation, bounded by its timeout).
touch "$FT_DIR/stop"
for p in $FT_WORKER_PIDS; do wait "$p"; done
FT_WORKER_PIDS=

# Heal everything: links, pauses, dead nodes.
ft_heal
for i in $FT_MEMBERS; do
    pid=$(ft_pid "$i")
    if [ -n "$pid" ] && ft_alive "$pid"; then kill -CONT "$pid"; else ft_node_start "$i"; fi
done
ft_event heal final "all links healed, all nodes running"
leader=$(ft_wait_leader 30) || ft_fail "no leader 30 s after healing"

# Final reads through every node (retried while a node catches up).
ok=0
for try in $(seq 1 10); do
    rm -f "$FT_DIR/hist.final"
    if ft_final_reads; then ok=1; break; fi
    sleep 3
done
[ $ok = 1 ] || ft_fail "a node could not serve the final reads (see $FT_DIR/final.*)"
first=${FT_MEMBERS%% *}
FT_TREES=yes
[ $ok = 1 ] || FT_TREES="not all nodes answered"
for i in $FT_MEMBERS; do
    if ! cmp -s "$FT_DIR/final.$first" "$FT_DIR/final.$i"; then
        FT_TREES=no
        ft_fail "node $i's tree differs from node $first's: $(diff "$FT_DIR/final.$first" "$FT_DIR/final.$i" | head -5 | tr '\n' ' ')"
    fi
done

cat "$FT_DIR"/hist.* > "$FT_DIR/history" 2>/dev/null
source "$here/report.sh"
ft_report
if [ "${FT_EXPECT_BAD:-0}" = 1 ]; then
    if [ "$FT_CHECKER_RC" = 1 ]; then
        ft_log "self-test: the checker caught the violation, as it must"
        FT_KEEP= ; exit 0
    fi
    ft_log "self-test FAILED: the checker found no violation"
    exit 1
fi
exit $((FT_FAILED > 0))
