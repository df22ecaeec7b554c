# Cluster control of the fault harness, sourced by run.sh: nodes, links, cleanup.
#
# Everything runs inside the private network namespace that run.sh created
# (unshare -n), so the fixed ports below cannot clash with the host's. Node
# I listens for clients on 127.0.0.1:(7700+2I-2) and for peers on
# 127.0.0.1:(7700+2I-1), and runs with group id FT_GID0+I (uid stays 0):
# nftables tells the nodes' connections apart by the socket's group
# (meta skgid) when they are opened, and marks each connection with
# conntrack mark 16*FROM+TO, so that a partition is a rule on marks.

FT_BASE=7700
FT_GID0=4200

ft_client_port() { echo $((FT_BASE + 2 * $1 - 2)); }
ft_peer_port() { echo $((FT_BASE + 2 * $1 - 1)); }
ft_client_addr() { echo "127.0.0.1:$(ft_client_port "$1")"; }
ft_peer_addr() { echo "127.0.0.1:$(ft_peer_port "$1")"; }
ft_now_us() { echo "${EPOCHREALTIME/./}"; }
ft_log() { echo "[fault $(date +%H:%M:%S.%3N)] $*"; }

# Alive means running; a zombie counts as stopped.
ft_alive() {
    [ -n "$1" ] && [ -r "/proc/$1/status" ] &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
ft_pid() { cat "$FT_DIR/n$1.pid" 2>/dev/null; }
# Node I's data dir; the disk node's lives on a small tmpfs.
ft_data_dir() {
    if [ "$1" = "${FT_DISK_NODE:-}" ]; then echo "$FT_DIR/disk/n$1"; else echo "$FT_DIR/n$1"; fi
}

# The nftables table: connection marks by (sender group, destination
# port) and an empty chain "cuts" that the nemeses fill.
ft_net_init() {
    ip link set lo up || return 1
    local rules i j
    rules="table inet fault {
  chain cuts { }
  chain out {
    type filter hook output priority 0; policy accept;"
    for ((i = 1; i <= FT_MAXN; i++)); do
        for ((j = 1; j <= FT_MAXN; j++)); do
            [ $i = $j ] && continue
            rules+="
    meta skgid $((FT_GID0 + i)) tcp dport $(ft_peer_port $j) ct state new ct mark set $((16 * i + j))"
        done
    done
    rules+="
    jump cuts
  }
}"
    echo "$rules" | nft -f - || return 1
}

# ft_cut A B: drop everything between A and B (both ways). Rules collect
# in FT_RULES until ft_apply installs them in one nft transaction, so that
# a partition starts at one instant.
ft_cut() {
    FT_RULES+="add rule inet fault cuts ct mark $((16 * $1 + $2)) drop
add rule inet fault cuts ct mark $((16 * $2 + $1)) drop
"
}

# ft_cut_oneway A B: drop the packets that A sends to B (B -> A still flows:
# on A's connections to B the original direction, on B's the replies).
ft_cut_oneway() {
    FT_RULES+="add rule inet fault cuts ct mark $((16 * $1 + $2)) ct direction original drop
add rule inet fault cuts ct mark $((16 * $2 + $1)) ct direction reply drop
"
}

ft_apply() {
    printf '%s' "${FT_RULES:-}" | nft -f -
    FT_RULES=
}

ft_heal() { nft flush chain inet fault cuts; }

# ft_node_conf I: writes node I's config (all FT_MAXN nodes' peers are
# listed only for the initial members, 1..FT_N).
ft_node_conf() {
    local i=$1 peers="" j
    for ((j = 1; j <= FT_N; j++)); do
        peers+="${peers:+,}$j=$(ft_peer_addr $j)"
    done
    {
        echo "RAFTFS_ID=$i"
        echo "RAFTFS_PEERS=$peers"
        echo "RAFTFS_DATA_DIR=$(ft_data_dir "$i")"
        [ "$i" = "${FT_DISK_NODE:-}" ] && echo "RAFTFS_MAP_SIZE_MB=$FT_DISK_MAP_MB"
        echo "RAFTFS_CLIENT_ADDR=$(ft_client_addr "$i")"
        echo "RAFTFS_CLUSTER_ID=fault"
        if [ "${FT_FUSE:-0}" = 1 ]; then
            mkdir -p "$FT_DIR/mnt/$i"
            echo "RAFTFS_MOUNT=$FT_DIR/mnt/$i"
            # The node runs with its own group id: without allow_other FUSE
            # would refuse our clients (gid 0) with EACCES.
            echo "RAFTFS_MOUNT_OPTIONS=allow_other${FT_STALE:+,stale}"
        fi
    } > "$FT_DIR/n$i.conf"
}

# ft_node_start I [extra raftfsd flags]: starts node I with its config.
ft_node_start() {
    local i=$1; shift
    mkdir -p "$(ft_data_dir "$i")"
    ft_unmount "$i"
    setsid setpriv --regid=$((FT_GID0 + i)) --clear-groups \
        "$RAFTFSD" --config "$FT_DIR/n$i.conf" "${FT_DAEMON_FLAGS[@]}" "$@" \
        >>"$FT_DIR/n$i.log" 2>&1 </dev/null &
    echo $! > "$FT_DIR/n$i.pid"
    disown $!   # no job-control noise when the cleanup kills it
}

# ft_node_kill I [SIGNAL]: signals node I by PID; for KILL/TERM waits until
# it is gone (TERM: at most 20 s, then KILL) and unmounts its mount.
ft_node_kill() {
    local i=$1 sig=${2:-KILL} pid deadline
    pid=$(ft_pid "$i")
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2>/dev/null
    case "$sig" in
        KILL | TERM)
            deadline=$((SECONDS + 20))
            while ft_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.02; done
            ft_alive "$pid" && kill -KILL "$pid" 2>/dev/null
            while ft_alive "$pid"; do sleep 0.02; done
            rm -f "$FT_DIR/n$i.pid"
            ft_unmount "$i"
            ;;
    esac
}

ft_unmount() {
    local m="$FT_DIR/mnt/$1"
    if grep -q " $m " /proc/mounts 2>/dev/null; then
        fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    fi
}

ft_ctl() { # ft_ctl I [--timeout-ms N] ARGS...
    local i=$1; shift
    "$RAFTFSCTL" --endpoint "$(ft_client_addr "$i")" --timeout-ms "${FT_CTL_MS:-2000}" "$@"
}

# The leader as node I sees it, if node I is itself the leader; else "".
ft_leader_at() {
    ft_ctl "$1" --json status 2>/dev/null |
        sed -n 's/.*"role":"leader".*/LEADER/p' | head -1 | grep -q LEADER && echo "$1"
}

# ft_leader: the current leader (asks every live member), "" if none.
ft_leader() {
    local i
    for i in $FT_MEMBERS; do
        [ -n "$(ft_pid "$i")" ] || continue
        if [ -n "$(FT_CTL_MS=500 ft_leader_at "$i")" ]; then echo "$i"; return 0; fi
    done
    return 1
}

ft_wait_leader() { # ft_wait_leader SECONDS
    local deadline=$((SECONDS + ${1:-20})) l
    while [ $SECONDS -lt $deadline ]; do
        l=$(ft_leader) && { echo "$l"; return 0; }
        sleep 0.1
    done
    return 1
}

# Cleanup on every exit: workers, nodes (by PID), mounts, tmpfs.
ft_cleanup() {
    local rc=$? i pid
    [ -n "${FT_DIR:-}" ] || return $rc
    touch "$FT_DIR/stop" 2>/dev/null
    for pid in ${FT_WORKER_PIDS:-}; do kill -TERM "$pid" 2>/dev/null; done
    for ((i = 1; i <= FT_MAXN; i++)); do
        pid=$(ft_pid $i)
        [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    for ((i = 1; i <= FT_MAXN; i++)); do
        pid=$(ft_pid $i)
        while [ -n "$pid" ] && ft_alive "$pid"; do sleep 0.02; done
        ft_unmount $i
    done
    wait 2>/dev/null
    grep " $FT_DIR/" /proc/mounts 2>/dev/null | awk '{print $2}' | sort -r |
        while read -r m; do
            fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
    if [ -z "${FT_KEEP:-}" ] && [ $rc = 0 ]; then
        rm -rf "$FT_DIR"
    else
        echo "fault: kept $FT_DIR (logs, history)"
    fi
    return $rc
}
