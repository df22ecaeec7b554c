#!/usr/bin/env bash
# A 3-node cluster without mounts: election, writes through every node read
# back from every node, leader transfer, a node of another cluster refused,
# garbage on the peer and client ports.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
it_init
it_start 3 --no-mount

leader=$(it_wait_leader 20) || { it_fail "no leader"; it_done; exit 1; }
it_pass "leader elected: node $leader"

# Every node agrees on the leader.
for i in 1 2 3; do
    check_eq "node $i sees leader $leader" "$leader" "$(it_leader_seen_by $i)"
done

# Writes through every node, read back from every node.
for i in 1 2 3; do
    check "put k$i via node $i" ctl $i put "k$i" "value-$i"
done
for i in 1 2 3; do
    for j in 1 2 3; do
        check_eq "node $i reads k$j" "value-$j" "$(ctl $i get "k$j")"
    done
done

# Directories, listing, delete, and the errors with their exit codes.
check "mkdir dir via node 2" ctl 2 mkdir dir
check "put dir/a via node 3" ctl 3 put dir/a A
check_eq "ls dir on node 1" "a" "$(ctl 1 ls dir)"
ctl 1 mkdir dir 2>/dev/null; check_eq "mkdir of an existing dir fails with 1" 1 $?
ctl 2 get nothere 2>/dev/null; check_eq "get of a missing key exits 1" 1 $?
ctl 3 rm dir 2>/dev/null; check_eq "rm of a non-empty dir exits 1" 1 $?
check "rm dir/a" ctl 1 rm dir/a
check "rm dir" ctl 2 rm dir
ctl 3 get dir/a 2>/dev/null; check_eq "dir/a is gone" 1 $?
printf 'from stdin\n' | ctl 2 put stdin-key
check_eq "put from stdin" "from stdin" "$(ctl 3 get stdin-key)"
ctl 1 frobnicate 2>/dev/null; check_eq "unknown command exits 2" 2 $?
"$RAFTFSCTL" --endpoint 127.0.0.1:1 --timeout-ms 500 status 2>/dev/null
check_eq "unreachable endpoint exits 3" 3 $?
check "--json status parses" bash -c "'$RAFTFSCTL' --endpoint $(it_client_addr 1) --json status | python3 -c 'import json,sys; json.load(sys.stdin)'"
check_eq "members lists 3" 3 "$(ctl 1 --json members | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

# Leader transfer to another voter.
target=$(( leader % 3 + 1 ))
check "leader transfer to $target" ctl "$leader" leader transfer "$target"
newl=$(it_wait_leader 10)
check_eq "node $target leads after the transfer" "$target" "$newl"
check "write after transfer" ctl 1 put after-transfer yes
check_eq "read after transfer" yes "$(ctl 2 get after-transfer)"

# A node of another cluster is refused and does not disturb this one.
mkdir -p "$IT_DIR/foreign"
fport=$(it_pick_ports 1)
"$RAFTFSD" --id 1 --cluster-id other --data-dir "$IT_DIR/foreign/d" \
    --peers "1=127.0.0.1:$((fport + 1)),2=$(it_peer_addr 2)" \
    --client-addr "127.0.0.1:$fport" >"$IT_DIR/foreign/log" 2>&1 &
fpid=$!
sleep 3
kill -TERM $fpid 2>/dev/null; wait $fpid 2>/dev/null
check "node 2 logged the refusal" grep -q "refused peer connection .*cluster id" "$IT_DIR/c/n2.log"
check "cluster still writes after the foreign node" ctl 1 put after-foreign ok

# Every thread of a daemon runs under SCHED_BATCH (fs/raftfsd.c), unless
# --no-sched-batch. The policy is field 41 of /proc/PID/task/TID/stat
# (SCHED_BATCH = 3, SCHED_OTHER = 0); the comm field has no spaces here.
policies() { # policies PID: the distinct policies of its threads
    local t
    for t in /proc/"$1"/task/*; do awk '{print $41}' "$t/stat"; done | sort -u | tr '\n' ' '
}
check_eq "node 1's threads are SCHED_BATCH" "3 " "$(policies "$(it_pid 1)")"
mkdir -p "$IT_DIR/other"
"$RAFTFSD" --no-sched-batch --data-dir "$IT_DIR/other/d" \
    --client-addr "127.0.0.1:$fport" \
    --peers "1=127.0.0.1:$((fport + 1))" >"$IT_DIR/other.log" 2>&1 &
opid=$!
sleep 1
check_eq "--no-sched-batch keeps SCHED_OTHER" "0 " "$(policies $opid)"
kill -TERM $opid 2>/dev/null; wait $opid 2>/dev/null

# Garbage on the peer and client ports: connections closed, nobody crashes.
for i in 1 2 3; do
    head -c 65536 /dev/urandom > /dev/tcp/127.0.0.1/"$((IT_BASE + 2 * i - 1))" 2>/dev/null
    head -c 65536 /dev/urandom > /dev/tcp/127.0.0.1/"$((IT_BASE + 2 * i - 2))" 2>/dev/null
    printf '\xff\xff\xff\xff' > /dev/tcp/127.0.0.1/"$((IT_BASE + 2 * i - 1))" 2>/dev/null
done
sleep 1
check "garbage frames were closed with a log line" grep -q "closed .*connection" "$IT_DIR/c/n1.log"
for i in 1 2 3; do
    check "node $i alive after garbage" it_alive "$(it_pid $i)"
done
check "cluster writes after garbage" ctl 3 put after-garbage ok
check_eq "and reads" ok "$(ctl 1 get after-garbage)"

it_done
