#!/usr/bin/env bash
# Membership while writes run: add a learner, promote it, remove a member;
# a node down while the log is compacted catches up by snapshot.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
it_init
it_start 3 --no-mount -- --snapshot-entries 50 --election-timeout-ms 500 --heartbeat-ms 50
leader=$(it_wait_leader 20) || { it_fail "no leader"; it_done; exit 1; }
ctl 1 mkdir m

# Background writer through node 1 for the whole membership sequence.
( fails=0; for k in $(seq 1 400); do ctl 1 put "m/$k" "$k" >/dev/null 2>&1 || fails=$((fails+1)); done; echo $fails > "$IT_DIR/writer.fails" ) &
wpid=$!

# Node 4 joins: start it empty with --join, add it as a learner, promote.
p4=$(it_pick_ports 1)
peers="$(sed -n 's/^RAFTFS_PEERS=//p' "$IT_DIR/c/n1.conf"),4=127.0.0.1:$((p4 + 1))"
"$RAFTFSD" --id 4 --join --data-dir "$IT_DIR/n4" --peers "$peers" \
    --cluster-id "local-$IT_BASE" --client-addr "127.0.0.1:$p4" \
    --snapshot-entries 50 --election-timeout-ms 500 --heartbeat-ms 50 \
    >"$IT_DIR/n4.log" 2>&1 &
pid4=$!
trap 'kill -TERM $pid4 2>/dev/null; it_cleanup' EXIT
check "member add 4 as learner" ctl 2 member add 4 "127.0.0.1:$((p4 + 1))" --learner
check "members shows 4 as learner" bash -c "'$RAFTFSCTL' --endpoint $(it_client_addr 1) members | grep -E '^4 .*learner'"
check "member promote 4" ctl 3 member promote 4
check "members shows 4 as voter" bash -c "'$RAFTFSCTL' --endpoint $(it_client_addr 1) members | grep -E '^4 .*voter'"

# Remove a follower that is not node 1 (the writer's endpoint).
leader=$(it_wait_leader 10)
victim=2; [ "$leader" = 2 ] && victim=3
check "member remove $victim" ctl 1 member remove $victim
check_eq "3 members after removal" 3 "$(ctl 1 --json members | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
it_stop_node $victim

wait $wpid
check_eq "no failed write during membership changes" 0 "$(cat "$IT_DIR/writer.fails")"
check_eq "node 4 has the last write" 400 "$(RAFTFSCTL_ENDPOINT=127.0.0.1:$p4 "$RAFTFSCTL" get m/400)"

# Snapshot catch-up: stop a follower, write past several snapshots, restart.
leader=$(it_wait_leader 10)
f=1; [ "$leader" = 1 ] && f=$([ $victim = 2 ] && echo 3 || echo 2)
it_stop_node $f
for k in $(seq 1 300); do ctl "$leader" put "s$k" "$k" >/dev/null 2>&1; done
check "leader took a snapshot" ctl "$leader" snapshot
it_restart $f
caught=0
for try in $(seq 1 150); do
    if [ "$(CTL_TIMEOUT_MS=1000 ctl $f get s300 2>/dev/null)" = 300 ]; then caught=1; break; fi
    sleep 0.1
done
check_eq "node $f caught up after compaction" 1 $caught
check "node $f installed a snapshot" grep -qi "snapshot" "$IT_DIR/c/n$f.log"
check_eq "an early value is there" 17 "$(ctl $f get s17)"
kill -TERM $pid4 2>/dev/null; wait $pid4 2>/dev/null
it_done
