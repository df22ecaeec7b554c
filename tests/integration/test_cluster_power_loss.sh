#!/usr/bin/env bash
# A power loss of the whole machine, played: applies commit without a sync
# (store/durable.c), so after kill -9 of every node, a new boot id and
# data.mdb torn on every node, each node rebuilds data.mdb from raft.state,
# its snapshot and its WAL. No acknowledged write is lost, the cluster
# elects a leader and takes writes again.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
it_init
export RAFTFS_TEST_BOOT_ID_FILE=$IT_DIR/boot_id
echo boot-one > "$RAFTFS_TEST_BOOT_ID_FILE"
it_start 3 --no-mount -- --election-timeout-ms 500 --heartbeat-ms 50 --snapshot-entries 40

leader=$(it_wait_leader 20) || { it_fail "no leader"; it_done; exit 1; }
it_pass "leader elected: node $leader"

ctl "$leader" mkdir p >/dev/null 2>&1
acked=0
for k in $(seq 1 100); do
    ctl $(( k % 3 + 1 )) put "p/$k" "v$k" >/dev/null 2>&1 && acked=$((acked + 1))
done
check_eq "100 writes acknowledged" 100 "$acked"
snaps=0
for i in 1 2 3; do
    ls "$IT_DIR/c/n$i"/snapshot-* >/dev/null 2>&1 && snaps=$((snaps + 1))
done
check_eq "every node took a snapshot (there are entries after it to replay)" 3 "$snaps"

# The power goes: every process dies at once, the next boot has another id,
# and whatever data.mdb pages were not synced are junk.
for i in 1 2 3; do it_kill "$i" KILL; done
echo boot-two > "$RAFTFS_TEST_BOOT_ID_FILE"
for i in 1 2 3; do
    check "node $i had the unsynced mark" test -f "$IT_DIR/c/n$i/unsynced"
    dd if=/dev/urandom of="$IT_DIR/c/n$i/data.mdb" bs=4096 count=4 conv=notrunc status=none
done
for i in 1 2 3; do it_restart "$i"; done

leader=$(it_wait_leader 30) || { it_fail "no leader after the power loss"; it_done; exit 1; }
it_pass "leader after the power loss: node $leader"
for i in 1 2 3; do
    check "node $i says it rebuilt data.mdb" grep -q "rebuilt data.mdb from the snapshot" "$IT_DIR/c/n$i.log"
done
for i in 1 2 3; do
    lost=0
    for k in $(seq 1 100); do
        [ "$(ctl "$i" get "p/$k" 2>/dev/null)" = "v$k" ] || lost=$((lost + 1))
    done
    check_eq "node $i: no acknowledged write lost" 0 "$lost"
done
check "a write after the power loss" ctl $(( leader % 3 + 1 )) put p/after yes
check_eq "it reads back on another node" yes "$(ctl $(( (leader + 1) % 3 + 1 )) get p/after 2>/dev/null)"

# A clean stop leaves no mark, and the next start rebuilds nothing.
for i in 1 2 3; do it_stop_node "$i"; done
for i in 1 2 3; do
    check "node $i: no unsynced mark after a clean stop" test ! -e "$IT_DIR/c/n$i/unsynced"
done
it_done
