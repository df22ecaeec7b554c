#!/usr/bin/env bash
# Starts and stops a local N-node raftfs cluster under one directory.
#
#   raftfs-cluster.sh start DIR [-n N] [--base-port P] [--no-mount]
#                               [-- EXTRA raftfsd FLAGS...]
#   raftfs-cluster.sh stop DIR        SIGTERM every node (kill -9 after 20 s)
#   raftfs-cluster.sh status DIR      raftfsctl status of every node
#   raftfs-cluster.sh endpoints DIR   the client endpoints, comma separated
#
# Layout of DIR: nI/ (data dir of node I), nI.log, nI.pid, nI.conf (the
# node's KEY=VALUE config, as systemd's EnvironmentFile reads it), mnt/I
# (node I's mount). Node I listens for peers on 127.0.0.1:(P+2I-1) and for
# clients on 127.0.0.1:(P+2I-2); P defaults to 7700, so node 1 is at 7700
# (clients) and 7701 (peers), node 2 at 7702/7703, ...
#
# Binaries: $RAFTFS_BIN (a directory holding raftfsd and raftfsctl), else the
# build tree $RAFTFS_BUILD (default: build/ at the top of the source tree).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

find_bin() {
    local name=$1
    local b=${RAFTFS_BUILD:-$top/build}
    for d in "${RAFTFS_BIN:-}" "$b/fs" "$b/mount-helpers" /usr/local/bin /usr/bin; do
        if [ -n "$d" ] && [ -x "$d/$name" ]; then
            echo "$d/$name"
            return 0
        fi
    done
    echo "raftfs-cluster: cannot find $name (build first, or set RAFTFS_BIN)" >&2
    return 1
}

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

# Alive means running: a zombie (exited, not yet reaped by whoever adopted
# it) counts as stopped.
pid_alive() {
    [ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

node_alive() {
    local pidfile=$1
    [ -f "$pidfile" ] && pid_alive "$(cat "$pidfile")"
}

cmd_start() {
    local dir=$1; shift
    local n=3 base=7700 mount=1
    local extra=()
    while [ $# -gt 0 ]; do
        case "$1" in
            -n) n=$2; shift 2 ;;
            --base-port) base=$2; shift 2 ;;
            --no-mount) mount=0; shift ;;
            --) shift; extra=("$@"); break ;;
            *) echo "raftfs-cluster: unknown option $1" >&2; usage ;;
        esac
    done
    case "$n" in ''|*[!0-9]*) echo "raftfs-cluster: -n needs a number" >&2; exit 2 ;; esac
    local raftfsd; raftfsd=$(find_bin raftfsd)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local peers="" i
    for ((i = 1; i <= n; i++)); do
        peers+="${peers:+,}$i=127.0.0.1:$((base + 2 * i - 1))"
    done
    for ((i = 1; i <= n; i++)); do
        if node_alive "$dir/n$i.pid"; then
            echo "raftfs-cluster: node $i already runs (pid $(cat "$dir/n$i.pid"))" >&2
            continue
        fi
        {
            echo "RAFTFS_ID=$i"
            echo "RAFTFS_PEERS=$peers"
            echo "RAFTFS_DATA_DIR=$dir/n$i"
            echo "RAFTFS_CLIENT_ADDR=127.0.0.1:$((base + 2 * i - 2))"
            echo "RAFTFS_CLUSTER_ID=local-$base"
            if [ "$mount" = 1 ]; then
                mkdir -p "$dir/mnt/$i"
                echo "RAFTFS_MOUNT=$dir/mnt/$i"
            fi
        } > "$dir/n$i.conf"
        # setsid: the node survives the shell that started it.
        setsid "$raftfsd" --config "$dir/n$i.conf" "${extra[@]}" \
            >>"$dir/n$i.log" 2>&1 < /dev/null &
        echo $! > "$dir/n$i.pid"
    done
    echo "$n" > "$dir/size"
    echo "$base" > "$dir/base-port"
    # Wait (bounded) until some node reports a leader.
    local ctl; ctl=$(find_bin raftfsctl)
    local deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        if "$ctl" --endpoint "$(cmd_endpoints "$dir")" --timeout-ms 1000 \
               status 2>/dev/null | grep -q '^leader: *[0-9]'; then
            echo "raftfs-cluster: $n nodes up in $dir"
            return 0
        fi
        for ((i = 1; i <= n; i++)); do
            if ! node_alive "$dir/n$i.pid"; then
                echo "raftfs-cluster: node $i exited; its log:" >&2
                tail -20 "$dir/n$i.log" >&2
                return 1
            fi
        done
        sleep 0.2
    done
    echo "raftfs-cluster: no leader after 30 s (see $dir/n*.log)" >&2
    return 1
}

cmd_stop() {
    local dir=$1 i pid
    local n; n=$(cat "$dir/size" 2>/dev/null || echo 0)
    for ((i = 1; i <= n; i++)); do
        if node_alive "$dir/n$i.pid"; then
            kill -TERM "$(cat "$dir/n$i.pid")" 2>/dev/null || true
        fi
    done
    local deadline=$((SECONDS + 20))
    for ((i = 1; i <= n; i++)); do
        while node_alive "$dir/n$i.pid" && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        if node_alive "$dir/n$i.pid"; then
            pid=$(cat "$dir/n$i.pid")
            echo "raftfs-cluster: node $i (pid $pid) did not stop; kill -9" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/n$i.pid"
        if [ -d "$dir/mnt/$i" ] && grep -q " $dir/mnt/$i " /proc/mounts; then
            fusermount3 -u -z "$dir/mnt/$i" 2>/dev/null || umount -l "$dir/mnt/$i" 2>/dev/null || true
        fi
    done
}

cmd_endpoints() {
    local dir=$1 i out=""
    local n; n=$(cat "$dir/size")
    local base; base=$(cat "$dir/base-port")
    for ((i = 1; i <= n; i++)); do
        out+="${out:+,}127.0.0.1:$((base + 2 * i - 2))"
    done
    echo "$out"
}

cmd_status() {
    local dir=$1 i
    local n; n=$(cat "$dir/size")
    local base; base=$(cat "$dir/base-port")
    local ctl; ctl=$(find_bin raftfsctl)
    for ((i = 1; i <= n; i++)); do
        echo "== node $i"
        "$ctl" --endpoint "127.0.0.1:$((base + 2 * i - 2))" --timeout-ms 2000 status || true
    done
}

[ $# -ge 2 ] || usage
cmd=$1; dir=$2; shift 2
case "$cmd" in
    start) cmd_start "$dir" "$@" ;;
    stop) cmd_stop "$dir" ;;
    status) cmd_status "$dir" ;;
    endpoints) cmd_endpoints "$dir" ;;
    *) usage ;;
esac
