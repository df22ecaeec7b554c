# Nemeses of the fault harness, sourced by run.sh: each injects one fault, holds it, heals it.
#
# Every nemesis is bounded in time (it holds its fault for $1 seconds) and
# logs to $FT_DIR/faults one line per event: "T_US EVENT DETAILS", where an
# EVENT of "fault" starts a fault (failover times are measured from it) and
# "heal" ends it. A fault is logged once it is in effect (rules installed,
# process dead or stopped). Random choices use $RANDOM, seeded by run.sh.

FT_NEMESES_ALL="partition-leader partition-split partition-bridge oneway-leader
kill kill-leader kill-all power pause pause-leader transfer member diskfull"

ft_event() { # ft_event EVENT NEMESIS DETAILS...
    echo "$(ft_now_us) $*" >> "$FT_DIR/faults"
    ft_log "nemesis: $*"
}

# Members as an array, shuffled with $RANDOM.
ft_shuffled_members() {
    local a=($FT_MEMBERS) i j t
    for ((i = ${#a[@]} - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1)))
        t=${a[i]}; a[i]=${a[j]}; a[j]=$t
    done
    echo "${a[@]}"
}

ft_random_member() { local a=($(ft_shuffled_members)); echo "${a[0]}"; }

ft_leader_or_random() {
    local l; l=$(ft_leader) || l=$(ft_random_member)
    echo "$l"
}

ft_hold() { sleep "$1"; }

nem_partition_leader() {
    local l j; l=$(ft_leader_or_random)
    for j in $FT_MEMBERS; do [ "$j" != "$l" ] && ft_cut "$l" "$j"; done
    ft_apply; ft_event fault partition-leader "isolate node $l"
    ft_hold "$1"
    ft_heal; ft_event heal partition-leader
}

nem_partition_split() {
    local a=($(ft_shuffled_members)) n i j minority
    n=${#a[@]}; minority=$((n / 2))
    for ((i = 0; i < minority; i++)); do
        for ((j = minority; j < n; j++)); do ft_cut "${a[i]}" "${a[j]}"; done
    done
    ft_apply; ft_event fault partition-split "minority {${a[*]:0:minority}} | majority {${a[*]:minority}}"
    ft_hold "$1"
    ft_heal; ft_event heal partition-split
}

# A bridge: two sides that cannot talk, and one node that sees both.
nem_partition_bridge() {
    local a=($(ft_shuffled_members)) n i j left
    n=${#a[@]}; left=$(((n - 1) / 2))
    for ((i = 0; i < left; i++)); do
        for ((j = left + 1; j < n; j++)); do ft_cut "${a[i]}" "${a[j]}"; done
    done
    ft_apply; ft_event fault partition-bridge "{${a[*]:0:left}} - bridge ${a[left]} - {${a[*]:left+1}}"
    ft_hold "$1"
    ft_heal; ft_event heal partition-bridge
}

# The leader's packets to every other node are dropped; it still hears them.
nem_oneway_leader() {
    local l j; l=$(ft_leader_or_random)
    for j in $FT_MEMBERS; do [ "$j" != "$l" ] && ft_cut_oneway "$l" "$j"; done
    ft_apply; ft_event fault oneway-leader "drop packets from node $l to all others"
    ft_hold "$1"
    ft_heal; ft_event heal oneway-leader
}

ft_kill_restart() { # NODE HOLD NAME
    ft_node_kill "$1" KILL
    ft_event fault "$3" "kill -9 node $1"
    ft_hold "$2"
    ft_node_start "$1"
    ft_event heal "$3" "restarted node $1"
}

nem_kill() { ft_kill_restart "$(ft_random_member)" "$1" kill; }

# Every node at once (a power cut): what was acknowledged must be on disk.
nem_kill_all() {
    local i pids=""
    for i in $FT_MEMBERS; do pids+=" $(ft_pid "$i")"; done
    [ -n "${pids// /}" ] && kill -KILL $pids 2>/dev/null
    for i in $FT_MEMBERS; do ft_node_kill "$i" KILL; done
    ft_event fault kill-all "kill -9 of nodes $FT_MEMBERS"
    ft_hold "$1"
    for i in $FT_MEMBERS; do ft_node_start "$i"; done
    ft_event heal kill-all "restarted every node"
}
# A power loss of the machine, played (store/durable.c): every node dies
# at once, the next boot has another id (RAFTFS_TEST_BOOT_ID_FILE, set by
# run.sh), and data.mdb's unsynced pages are junk: each node must rebuild
# it from raft.state, its snapshot and its WAL, and lose nothing that was
# acknowledged.
nem_power() {
    local i pids=""
    for i in $FT_MEMBERS; do pids+=" $(ft_pid "$i")"; done
    [ -n "${pids// /}" ] && kill -KILL $pids 2>/dev/null
    for i in $FT_MEMBERS; do ft_node_kill "$i" KILL; done
    echo "boot-$RANDOM-$SECONDS" > "$RAFTFS_TEST_BOOT_ID_FILE"
    for i in $FT_MEMBERS; do
        [ -f "$(ft_data_dir "$i")/data.mdb" ] &&
            dd if=/dev/urandom of="$(ft_data_dir "$i")/data.mdb" bs=4096 count=4 \
                conv=notrunc status=none
    done
    ft_event fault power "kill -9 of nodes $FT_MEMBERS, new boot id, data.mdb torn"
    ft_hold "$1"
    for i in $FT_MEMBERS; do ft_node_start "$i"; done
    ft_event heal power "restarted every node (each rebuilds data.mdb)"
}
nem_kill_leader() { ft_kill_restart "$(ft_leader_or_random)" "$1" kill-leader; }

ft_pause() { # NODE HOLD NAME
    ft_node_kill "$1" STOP
    ft_event fault "$3" "SIGSTOP node $1"
    ft_hold "$2"
    ft_node_kill "$1" CONT
    ft_event heal "$3" "SIGCONT node $1"
}

nem_pause() { ft_pause "$(ft_random_member)" "$1" pause; }
nem_pause_leader() { ft_pause "$(ft_leader_or_random)" "$1" pause-leader; }

# Leadership transfers during load: to a random voter, a few times.
nem_transfer() {
    local end=$((SECONDS + $1)) to l rc
    while [ $SECONDS -lt $end ]; do
        l=$(ft_leader) || { sleep 0.5; continue; }
        to=$(ft_random_member)
        [ "$to" = "$l" ] && continue
        ft_ctl "$l" leader transfer "$to" >/dev/null 2>&1; rc=$?
        ft_event fault transfer "leader $l -> $to (raftfsctl exit $rc)"
        sleep 1
    done
    ft_event heal transfer
}

# Remove a follower, wipe it, add it back as a learner, promote it.
nem_member() {
    local l j rc deadline
    l=$(ft_leader) || { ft_log "member: no leader, skipped"; return 0; }
    for j in $(ft_shuffled_members); do [ "$j" != "$l" ] && break; done
    ft_ctl "$l" member remove "$j" >/dev/null 2>&1; rc=$?
    if [ $rc != 0 ]; then
        ft_log "member: remove $j failed (exit $rc); nothing changed"
        return 0
    fi
    ft_event fault member "removed node $j"
    FT_MEMBERS=$(echo $FT_MEMBERS | tr ' ' '\n' | grep -vx "$j" | tr '\n' ' ')
    ft_node_kill "$j" TERM
    rm -rf "$(ft_data_dir "$j")"
    ft_hold "$1"
    ft_node_start "$j" --join
    deadline=$((SECONDS + 20)); rc=1
    while [ $SECONDS -lt $deadline ]; do
        l=$(ft_leader) && ft_ctl "$l" member add "$j" "$(ft_peer_addr "$j")" --learner >/dev/null 2>&1 && { rc=0; break; }
        sleep 0.5
    done
    ft_event heal member "re-added node $j as learner (exit $rc)"
    deadline=$((SECONDS + 30)); rc=1
    while [ $SECONDS -lt $deadline ]; do
        l=$(ft_leader) && ft_ctl "$l" member promote "$j" >/dev/null 2>&1 && { rc=0; break; }
        sleep 0.5
    done
    ft_event heal member "promoted node $j (exit $rc)"
    FT_MEMBERS="$FT_MEMBERS $j"
    [ $rc = 0 ] || ft_log "member: node $j could not be promoted"
}

# The disk node's tmpfs fills up: a filler file takes all free space.
nem_diskfull() {
    [ -n "${FT_DISK_NODE:-}" ] || { ft_log "diskfull: no disk node"; return 0; }
    ft_event fault diskfull "fill the tmpfs of node $FT_DISK_NODE"
    dd if=/dev/zero of="$FT_DIR/disk/filler" bs=1M 2>/dev/null
    ft_hold "$1"
    rm -f "$FT_DIR/disk/filler"
    ft_event heal diskfull "freed the tmpfs of node $FT_DISK_NODE"
    # A node that stopped on ENOSPC is restarted (that is what systemd does).
    if ! ft_alive "$(ft_pid "$FT_DISK_NODE")"; then
        ft_event heal diskfull "node $FT_DISK_NODE had exited; restarted"
        ft_node_start "$FT_DISK_NODE"
    fi
}
