# Shared helpers of the integration tests: real raftfsd processes on
# 127.0.0.1, started through mount-helpers/raftfs-cluster.sh (the script the
# README uses). Source it, call it_init, and end with it_done.
#
# Every test stops its processes (by PID) and unmounts its mounts on exit,
# even when it fails (trap EXIT). Checks count; it_done prints
# "N passed, N failed" for the test and exits non-zero on any failure.

IT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_CLUSTER="$IT_TOP/mount-helpers/raftfs-cluster.sh"
IT_PASSED=0
IT_FAILED=0
IT_NAME=${IT_NAME:-$(basename "$0" .sh)}

it_log() { echo "[$IT_NAME $(date +%H:%M:%S)] $*"; }

it_bin() {
    local b=${RAFTFS_BUILD:-$IT_TOP/build}
    if [ -x "$b/fs/$1" ]; then echo "$b/fs/$1"; return; fi
    echo "$b/mount-helpers/$1"
}

# Picks a base port with 2*N free ports after it.
it_pick_ports() {
    local n=${1:-5} try base i busy
    for try in $(seq 1 50); do
        # Below the ephemeral range (32768-60999): outgoing connections
        # would otherwise take our listening ports.
        base=$((20000 + (RANDOM % 1200) * 10))
        busy=0
        for ((i = 0; i < 2 * n + 2; i++)); do
            if ss -Hltn "sport = :$((base + i))" 2>/dev/null | grep -q .; then
                busy=1; break
            fi
        done
        [ $busy = 0 ] && { echo $base; return 0; }
    done
    echo "it_pick_ports: no free ports" >&2
    return 1
}

it_cleanup() {
    local rc=$?
    if [ -n "${IT_DIR:-}" ] && [ -d "$IT_DIR" ]; then
        if [ -f "$IT_DIR/c/size" ]; then
            bash "$IT_CLUSTER" stop "$IT_DIR/c" >/dev/null 2>&1 || true
        fi
        # Anything still mounted under our dir goes too.
        grep " $IT_DIR/" /proc/mounts 2>/dev/null | awk '{print $2}' |
            while read -r m; do
                fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
            done
        if [ "$IT_FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
            for f in "$IT_DIR"/c/n*.log; do
                [ -f "$f" ] || continue
                echo "---- $f (last 30 lines)"
                tail -30 "$f"
            done
        fi
        if [ -z "${IT_KEEP:-}" ]; then
            rm -rf "$IT_DIR"
        else
            echo "kept $IT_DIR"
        fi
    fi
}

it_init() {
    IT_DIR=$(mktemp -d "/tmp/raftfs-it-$IT_NAME.XXXXXX")
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM
    RAFTFSCTL=$(it_bin raftfsctl)
    RAFTFSD=$(it_bin raftfsd)
    export RAFTFS_BUILD=${RAFTFS_BUILD:-$IT_TOP/build}
    [ -x "$RAFTFSD" ] || { echo "no raftfsd at $RAFTFSD"; exit 1; }
}

# it_start N [--no-mount] [-- raftfsd flags]: a fresh N-node cluster.
it_start() {
    local n=$1; shift
    IT_N=$n
    IT_BASE=$(it_pick_ports "$n") || exit 1
    bash "$IT_CLUSTER" start "$IT_DIR/c" -n "$n" --base-port "$IT_BASE" "$@" ||
        { it_fail "cluster did not start"; exit 1; }
}

it_client_addr() { echo "127.0.0.1:$((IT_BASE + 2 * $1 - 2))"; }
it_peer_addr() { echo "127.0.0.1:$((IT_BASE + 2 * $1 - 1))"; }
it_mnt() { echo "$IT_DIR/c/mnt/$1"; }
it_pid() { cat "$IT_DIR/c/n$1.pid" 2>/dev/null; }
# Running (a zombie waiting to be reaped by its adopter counts as stopped).
it_alive() {
    [ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
it_endpoints() { bash "$IT_CLUSTER" endpoints "$IT_DIR/c"; }

# ctl I ARGS...: raftfsctl against node I.
ctl() {
    local i=$1; shift
    "$RAFTFSCTL" --endpoint "$(it_client_addr "$i")" --timeout-ms "${CTL_TIMEOUT_MS:-10000}" "$@"
}

# The leader's id as node I sees it ("" if none or unreachable).
it_leader_seen_by() {
    ctl "$1" --json status 2>/dev/null | sed -n 's/.*"leader":\([0-9]*\).*/\1/p'
}

# Waits until a majority of running nodes agree on one leader; prints it.
it_wait_leader() {
    local timeout=${1:-20} deadline=$((SECONDS + ${1:-20})) i l
    while [ $SECONDS -lt $deadline ]; do
        for ((i = 1; i <= IT_N; i++)); do
            l=$(it_leader_seen_by "$i")
            if [ -n "$l" ] && [ "$l" != 0 ] && [ "$(ctl "$l" --json status 2>/dev/null |
                    sed -n 's/.*"role":"\([a-z-]*\)".*/\1/p')" = leader ]; then
                echo "$l"
                return 0
            fi
        done
        sleep 0.1
    done
    return 1
}

it_kill() { # it_kill I [SIGNAL]
    local pid; pid=$(it_pid "$1")
    [ -n "$pid" ] && kill "-${2:-KILL}" "$pid" 2>/dev/null
    if [ "${2:-KILL}" = KILL ] || [ "${2:-KILL}" = 9 ]; then
        while it_alive "$pid"; do sleep 0.01; done
        rm -f "$IT_DIR/c/n$1.pid"
    fi
}

it_stop_node() { # graceful: SIGTERM and wait (bounded)
    local pid deadline; pid=$(it_pid "$1"); deadline=$((SECONDS + 20))
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    while it_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.01; done
    it_alive "$pid" && { kill -KILL "$pid"; it_fail "node $1 ignored SIGTERM"; }
    rm -f "$IT_DIR/c/n$1.pid"
}

it_restart() { # it_restart I [extra raftfsd flags]: same config, same data
    local i=$1; shift
    setsid "$RAFTFSD" --config "$IT_DIR/c/n$i.conf" "$@" >>"$IT_DIR/c/n$i.log" 2>&1 </dev/null &
    echo $! > "$IT_DIR/c/n$i.pid"
}

it_pass() { IT_PASSED=$((IT_PASSED + 1)); it_log "ok: $*"; }
it_fail() { IT_FAILED=$((IT_FAILED + 1)); it_log "FAIL: $*"; }
# check "description" command...: passes if the command succeeds.
check() {
    local what=$1; shift
    if "$@"; then it_pass "$what"; else it_fail "$what"; fi
}
# check_eq "description" expected actual
check_eq() {
    if [ "$2" = "$3" ]; then it_pass "$1"; else it_fail "$1: expected '$2', got '$3'"; fi
}

# Stops the cluster gracefully and fails the test if any node reported a
# sanitizer error (ASan, UBSan, LeakSanitizer) or exited abnormally.
it_check_logs() {
    local f
    if [ -f "$IT_DIR/c/size" ]; then
        bash "$IT_CLUSTER" stop "$IT_DIR/c" >/dev/null 2>&1 || true
    fi
    for f in "$IT_DIR"/c/n*.log "$IT_DIR"/*.log "$IT_DIR"/*/log; do
        [ -f "$f" ] || continue
        if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:|Assertion .* failed" "$f"; then
            it_fail "sanitizer or assertion report in $f:"
            grep -E -A12 "AddressSanitizer|LeakSanitizer|runtime error:|Assertion .* failed" "$f" | head -40
        fi
    done
}

it_done() {
    it_check_logs
    echo "$IT_PASSED passed, $IT_FAILED failed"
    [ "$IT_FAILED" -eq 0 ]
}
