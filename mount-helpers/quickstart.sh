#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and starts a
# local 3-node cluster with three mounts under $RAFTFS_DEMO (default
# /tmp/raftfs-demo), then shows a write on one mount read on another.
# Stop it with:  bash mount-helpers/raftfs-cluster.sh stop /tmp/raftfs-demo
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
demo=${RAFTFS_DEMO:-/tmp/raftfs-demo}

bash mount-helpers/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

bash mount-helpers/raftfs-cluster.sh start "$demo" -n 3
ctl="build/mount-helpers/raftfsctl --endpoint $(bash mount-helpers/raftfs-cluster.sh endpoints "$demo")"
echo
echo "# three nodes, one leader:"
$ctl members
if grep -q " $demo/mnt/1 " /proc/mounts; then
    echo
    echo "# echo on node 1's mount, cat on node 2's and node 3's:"
    echo "+ echo hello > $demo/mnt/1/greeting"
    echo hello > "$demo/mnt/1/greeting"
    echo "+ cat $demo/mnt/2/greeting"; cat "$demo/mnt/2/greeting"
    echo "+ cat $demo/mnt/3/greeting"; cat "$demo/mnt/3/greeting"
else
    echo
    echo "# (no mounts in this build) put through node 1, get through node 2:"
    build/mount-helpers/raftfsctl --endpoint 127.0.0.1:7700 put greeting hello
    build/mount-helpers/raftfsctl --endpoint 127.0.0.1:7702 get greeting; echo
fi
echo
echo "mounts: $demo/mnt/{1,2,3}    logs: $demo/n{1,2,3}.log"
echo "status: bash mount-helpers/raftfs-cluster.sh status $demo"
echo "stop:   bash mount-helpers/raftfs-cluster.sh stop $demo"
