#!/usr/bin/env bash
# kill -9 of the leader: a new leader, no acknowledged write lost, failover
# time measured; the killed node restarts and catches up; SIGTERM of the
# leader hands over without a failed write. 3 nodes, then 5 nodes.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
it_init
it_start 3 --no-mount -- --election-timeout-ms 500 --heartbeat-ms 50

leader=$(it_wait_leader 20) || { it_fail "no leader"; it_done; exit 1; }
it_pass "leader elected: node $leader"

# Acknowledged writes, remembered.
acked=()
for k in $(seq 1 30); do
    n=$(( k % 3 + 1 ))
    if ctl $n put "a/$k" "v$k" 2>/dev/null || { ctl $n mkdir a >/dev/null 2>&1; ctl $n put "a/$k" "v$k"; }; then
        acked+=("$k")
    fi
done
check_eq "30 writes acknowledged" 30 "${#acked[@]}"

# Kill the leader; time until the first successful write on a survivor.
others=(); for i in 1 2 3; do [ $i != "$leader" ] && others+=($i); done
t0=$(date +%s%N)
it_kill "$leader" KILL
ok=0
for try in $(seq 1 200); do
    if CTL_TIMEOUT_MS=2000 ctl "${others[0]}" put after-kill yes 2>/dev/null; then ok=1; break; fi
done
t1=$(date +%s%N)
check_eq "a write succeeds after the leader was killed" 1 $ok
it_log "failover (kill -9 of the leader to first successful write): $(( (t1 - t0) / 1000000 )) ms"
echo "FAILOVER_MS $(( (t1 - t0) / 1000000 ))" >> "${RAFTFS_FAILOVER_LOG:-/dev/null}"
newl=$(it_wait_leader 10)
check "a new leader that is not the old one" test -n "$newl" -a "$newl" != "$leader"

# No acknowledged write lost.
lost=0
for k in "${acked[@]}"; do
    [ "$(ctl "${others[1]}" get "a/$k" 2>/dev/null)" = "v$k" ] || lost=$((lost + 1))
done
check_eq "no acknowledged write lost after kill -9" 0 $lost

# More writes while the old leader is down; it restarts and catches up.
for k in $(seq 31 60); do ctl "${others[$((k % 2))]}" put "a/$k" "v$k" >/dev/null 2>&1; done
it_restart "$leader"
caught=0
for try in $(seq 1 100); do
    if [ "$(CTL_TIMEOUT_MS=1000 ctl "$leader" get a/60 2>/dev/null)" = v60 ]; then caught=1; break; fi
    sleep 0.1
done
check_eq "the restarted node caught up" 1 $caught
check_eq "restarted node has an old write" v7 "$(ctl "$leader" get a/7)"

# SIGTERM of the leader while a writer runs: handover, no failed write.
leader=$(it_wait_leader 10)
w=$(( leader % 3 + 1 ))
( fails=0; for k in $(seq 1 150); do ctl $w put "w/$k" "$k" >/dev/null 2>&1 || { ctl $w mkdir w >/dev/null 2>&1; ctl $w put "w/$k" "$k" >/dev/null 2>&1 || fails=$((fails+1)); }; done; echo $fails > "$IT_DIR/writer.fails" ) &
wpid=$!
sleep 0.5
t0=$(date +%s%N)
it_stop_node "$leader"
t1=$(date +%s%N)
it_log "SIGTERM of the leader took $(( (t1 - t0) / 1000000 )) ms to stop"
wait $wpid
check_eq "no failed write while the leader stopped on SIGTERM" 0 "$(cat "$IT_DIR/writer.fails")"
check "graceful stop logged a handover" grep -q "handing leadership over" "$IT_DIR/c/n$leader.log"
it_restart "$leader"

# A 5-node cluster survives the loss of two nodes.
bash "$IT_CLUSTER" stop "$IT_DIR/c" >/dev/null 2>&1
rm -rf "$IT_DIR/c"
it_start 5 --no-mount -- --election-timeout-ms 500 --heartbeat-ms 50
leader=$(it_wait_leader 20) || it_fail "5 nodes: no leader"
it_pass "5 nodes: leader $leader"
killed=0
for i in 1 2 3 4 5; do
    if [ $i != "$leader" ] && [ $killed -lt 2 ]; then it_kill $i KILL; killed=$((killed+1)); last_killed=$i; fi
done
alive=$leader
check "5 nodes minus 2 followers still write" ctl "$alive" put five ok
it_kill "$leader" KILL
for i in 1 2 3 4 5; do [ -n "$(it_pid $i)" ] && alive=$i; done
CTL_TIMEOUT_MS=3000 ctl "$alive" put five-minority no 2>/dev/null
check_eq "2 of 5 cannot write (exit 3: unavailable)" 3 $?
it_done
