#!/usr/bin/env bash
# raftfs against etcd on this machine, in one run: floor, etcd, raftfs, table.
#
#   tests/bench/compare-etcd.sh [-d SECONDS] [--keys K] [--loops N]
#                               [--settle SECONDS] [--work DIR] [--no-doc]
#                               [--million]
#
# Steps (each bounded by `timeout`; a trap stops everything this script
# started, by PID, and unmounts, also on failure, ^C or SIGTERM to the
# script's PID; note that a script started with `&` from another
# non-interactive shell inherits SIGINT ignored, so stop that one with
# SIGTERM):
#   0. installs etcd-server, etcd-client and wrk with apt-get if missing;
#      builds loadgen, floor, raftfsd and raftfsctl in $RAFTFS_BUILD
#      (default build/ at the top of the tree).
#   1. the floor: 4 KiB write + fdatasync on the disk of DIR, loopback RTT
#      (both ends on one vCPU, and across two);
#      and the sync again with three writers at once, as the three
#      members of either store sync on this one disk.
#   2. 3-member etcd (tests/bench/etcd-cluster.sh, default fsync
#      durability, data in DIR/etcd): wrk put with 1/16/64 connections and
#      64 all on the leader, linearizable get and serializable get with 16;
#      after a pause (--settle, 30 s), three bash loops of N (--loops,
#      1,000) `etcdctl put` (new keys each) and one of N `etcdctl get`;
#      stop. Connections are spread over the three members (one wrk per
#      member, merged) as raftfs's workers are over the mounts; the single
#      client (1-client writes, shell loops) and the "all on the leader"
#      row talk to the leader, on both sides.
#   3. 3-node raftfs with FUSE mounts (mount-helpers/raftfs-cluster.sh,
#      data in DIR/raftfs): loadgen writes with 1/16/64 workers spread over
#      the three mounts and 64 on the leader's, linearizable reads with 16,
#      after the same pause three bash loops `echo $i > k$i` (new files
#      each) and one `cat k$i`, the mix/excl/append/ls workloads with 16;
#      stop; a fresh cluster with --mount-options stale for stale reads.
#   4. optional (--million): a fresh cluster, 1,000,000 small files created
#      through the mounts, resident size of every node.
#   5. one table on stdout, with the targets of the comparison (met or
#      missed); unless --no-doc, it replaces the "## raftfs vs etcd"
#      section of docs/BENCHMARKS.md (other sections are kept).
# Exits 0 when every step ran, whether or not the targets are met.
# Raw outputs are kept in DIR/results.txt. DIR defaults to
# /var/tmp/raftfs-bench (the same disk holds both stores). Ports: etcd
# 23791-23803, raftfs 7800-7805.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=${RAFTFS_BUILD:-$top/build}
DUR=10
KEYS=1000
LOOPS=1000
SETTLE=30
WORK=/var/tmp/raftfs-bench
DOC=1
MILLION=0
while [ $# -gt 0 ]; do
    case "$1" in
        -d) DUR=$2; shift 2 ;;
        --keys) KEYS=$2; shift 2 ;;
        --loops) LOOPS=$2; shift 2 ;;
        --settle) SETTLE=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --no-doc) DOC=0; shift ;;
        --million) MILLION=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare-etcd: unknown option $1" >&2; exit 2 ;;
    esac
done
# Whole numbers only (digits, no sign, no leading zero): each ends up in a
# command line or a loop.
whole() { # NAME VALUE MIN MAX
    [[ "$2" =~ ^(0|[1-9][0-9]{0,8})$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] ||
        { echo "compare-etcd: $1 needs a whole number from $3 to $4, not '$2'" >&2; exit 2; }
}
whole -d "$DUR" 1 3600
whole --keys "$KEYS" 1 1000000
whole --loops "$LOOPS" 1 100000
whole --settle "$SETTLE" 0 600

CLUSTER=$top/mount-helpers/raftfs-cluster.sh
ETCDSH=$here/etcd-cluster.sh
LOADGEN=$BUILD/tests/bench/loadgen
FLOOR=$BUILD/tests/bench/floor
RPORT=7800
export ETCD_BENCH_DIR=$WORK/etcd RAFTFS_BUILD=$BUILD
RES=$WORK/results.txt
declare -A E R  # etcd and raftfs figures by row key
RDIR=""         # the raftfs cluster dir currently running, for cleanup

log() { echo "== $*" | tee -a "$RES" >&2; }

CHILD=""        # the step running now (a `timeout` process), for cleanup

cleanup() {
    local rc=$?
    set +e
    if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; fi
    "$ETCDSH" stop >/dev/null 2>&1
    if [ -n "$RDIR" ]; then timeout 60 "$CLUSTER" stop "$RDIR" >/dev/null 2>&1; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs one step bounded by `timeout SECS`, output to OUT (also appended to
# the results file). In the background with `wait`, so that a signal sent
# to this script alone (not to its process group) is acted on at once.
step() { # SECS OUT CMD...
    local secs=$1 out=$2 rc=0; shift 2
    timeout "$secs" "$@" > "$out" 2>&1 &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    cat "$out" >> "$RES"
    return $rc
}

# A sleep that a signal to this script interrupts at once (as step's).
pause() { # SECS
    sleep "$1" &
    CHILD=$!
    wait "$CHILD" || true
    CHILD=""
}

# --- 0. dependencies and binaries -----------------------------------------
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    echo "compare-etcd: installing ${need[*]}" >&2
    timeout 600 apt-get install -y "${need[@]}" >&2
fi
[ -d "$BUILD" ] || (cd "$top" && meson setup "$BUILD" >&2)
timeout 900 ninja -C "$BUILD" -j2 tests/bench/loadgen tests/bench/floor \
    fs/raftfsd mount-helpers/raftfsctl >&2
mkdir -p "$WORK"
: > "$RES"
etcd_ver=$(etcd --version 2>/dev/null | head -1 || true)

# Field of "KEY=VALUE ..." (wrk) or of the JSON line (loadgen).
wf() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
jf() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# --- 1. floor ---------------------------------------------------------------
log "floor ($WORK)"
step 120 "$WORK/step.out" "$FLOOR" "$WORK" 2000 20000
cat "$WORK/step.out"
fl=$(grep FLOOR_RESULT "$WORK/step.out")
FSYNC=$(jf "$fl" fdatasync_p50_us)
FSYNC99=$(jf "$fl" fdatasync_p99_us)
RTT=$(jf "$fl" rtt_p50_us)        # both ends on one vCPU: the floor
RTTX=$(jf "$fl" rtt_cross_p50_us) # across two vCPUs ("" with one CPU)
# A commit syncs on the three members at once, on this one disk: the same
# probe in three processes side by side (the median of their p50s).
log "floor: three syncing processes at once"
step 120 "$WORK/step.out" bash -c 'for i in 1 2 3; do "$1" "$2" 1000 10 > "$2/floor3.$i" 2>&1 & done; wait' _ "$FLOOR" "$WORK"
F3=()
for i in 1 2 3; do
    cat "$WORK/floor3.$i" | tee -a "$RES" >&2
    F3+=("$(jf "$(grep FLOOR_RESULT "$WORK/floor3.$i")" fdatasync_p50_us)")
    rm -f "$WORK/floor3.$i"
done
FSYNC3=$(median "${F3[@]}")
[ -n "$FSYNC3" ] || { echo "compare-etcd: no result from the three floor probes" >&2; exit 1; }

# --- 2. etcd ------------------------------------------------------------------
log "etcd: start ($etcd_ver)"
timeout 60 "$ETCDSH" start | tee -a "$RES" >&2
EP1=http://127.0.0.1:23791
EPS=$("$ETCDSH" endpoints)
IFS=, read -r -a _eps <<<"$EPS"
declare -A EPA=([1]=${_eps[0]} [2]=${_eps[1]} [3]=${_eps[2]})
# Connections of member j (1-based) when c are spread over 3, as loadgen
# gives its worker i the mount i % 3: 64 -> 22/21/21, 16 -> 6/5/5.
share() { echo $(( $1 / 3 + ($2 - 1 < $1 % 3 ? 1 : 0) )); }
# One wrk against ENDPOINT (the 1-client rows: the leader), or without
# it the c connections spread over the three members as raftfs's workers
# are over the three mounts: one single-threaded wrk per member, side by
# side, merged.
wrk_run() { # key mode conns [endpoint]
    local key=$1 mode=$2 c=$3 ep=${4:-} t=2 line j
    [ "$c" -lt 2 ] && t=1
    if [ -n "$ep" ]; then
        log "etcd: wrk $mode -c$c -d${DUR}s $ep"
        step $((DUR + 60)) "$WORK/step.out" wrk -t$t -c"$c" -d"${DUR}s" --latency \
            -s "$here/etcd-wrk.lua" "$ep" -- "$mode" "$KEYS" 64
        line=$(grep WRK_RESULT "$WORK/step.out")
    else
        [ "$c" -ge 3 ] || { echo "compare-etcd: spreading needs 3 connections or more" >&2; exit 1; }
        log "etcd: wrk $mode -c$c -d${DUR}s spread: $(for j in 1 2 3; do printf '%s ' "$(share "$c" $j) to ${EPA[$j]}"; done)"
        step $((DUR + 60)) "$WORK/step.out" bash -c '
            dur=$1 lua=$2 mode=$3 keys=$4 out=$5; shift 5
            i=0
            while [ $# -gt 0 ]; do
                i=$((i + 1))
                wrk -t1 -c"$1" -d"$dur" --latency -s "$lua" "$2" -- "$mode" "$keys" 64 > "$out.$i.wrk" 2>&1 &
                shift 2
            done
            wait' _ "${DUR}s" "$here/etcd-wrk.lua" "$mode" "$KEYS" "$WORK/step" \
            $(for j in 1 2 3; do echo "$(share "$c" $j) ${EPA[$j]}"; done)
        local outs=()
        for j in 1 2 3; do outs+=("$WORK/step.$j.wrk"); done
        cat "${outs[@]}" >> "$RES"
        line=$("$here/wrk-merge.sh" "${outs[@]}") ||
            { echo "compare-etcd: no wrk result in ${outs[*]}" >&2; exit 1; }
        rm -f "${outs[@]}"
        echo "$line" >> "$RES"
    fi
    E[$key]=$(wf "$line" rps)
    E[$key.p50]=$(wf "$line" p50_ms)
    E[$key.p99]=$(wf "$line" p99_ms)
    E[$key.err]=$(( $(wf "$line" app_errors) + $(wf "$line" sock_errors) + $(wf "$line" non2xx) ))
}
# The disk is shared: measure the sync floor again right before each
# side's 1-client writes, so the floor ratio uses a neighbour figure.
floor_again() { # key
    local fl
    step 60 "$WORK/step.out" "$FLOOR" "$WORK" 500 2000
    fl=$(grep FLOOR_RESULT "$WORK/step.out")
    FL[$1]=$(jf "$fl" fdatasync_p50_us)
}
declare -A FL
# The single client (1-client writes, shell loops) talks to the leader on
# both sides, so that a randomly elected leader does not decide whether
# one side pays a forwarding hop the other does not.
ELEAD=$(etcdctl --endpoints="$EPS" endpoint status -w simple 2>/dev/null |
    awk -F', ' '$5 == "true" { print $1; exit }')
[ -n "$ELEAD" ] || ELEAD=$EP1
log "etcd: leader at $ELEAD"
floor_again etcd
wrk_run w1 put 1 "$ELEAD"
wrk_run w16 put 16
wrk_run w64 put 64
wrk_run w64l put 64 "$ELEAD"
wrk_run r16 get 16
wrk_run s16 sget 16

# The shell loops time one client's latency, which on this VM is longer
# for a while after a load (docs/BENCHMARKS.md, session 6): both sides
# pause the same time first, so that neither measures the load before.
log "etcd: pause ${SETTLE}s, then bash loops of $LOOPS etcdctl put (3, new keys each) / get"
pause "$SETTLE"
SHE=()
for r in 1 2 3; do
    t0=$(now)
    step 600 "$WORK/step.out" bash -c 'for i in $(seq "$3"); do etcdctl --endpoints="$1" put "$2/k$i" "$i" >/dev/null || exit 1; done' _ "$ELEAD" "shell$r" "$LOOPS"
    SHE+=("$(secs "$t0" "$(now)")")
done
t1=$(now)
step 600 "$WORK/step.out" bash -c 'for i in $(seq "$2"); do etcdctl --endpoints="$1" get "shell1/k$i" >/dev/null || exit 1; done' _ "$ELEAD" "$LOOPS"
t2=$(now)
E[shput]=$(median "${SHE[@]}")
E[shget]=$(secs "$t1" "$t2")
echo "etcdctl put loops ${SHE[*]} s (median ${E[shput]}), get loop ${E[shget]} s" | tee -a "$RES" >&2
timeout 60 "$ETCDSH" stop | tee -a "$RES" >&2

# --- 3. raftfs ------------------------------------------------------------------
rstart() { # name [raftfsd flags...]
    RDIR=$WORK/$1; shift
    if [ -f "$RDIR/size" ]; then timeout 60 "$CLUSTER" stop "$RDIR" >/dev/null 2>&1 || true; fi
    rm -rf "$RDIR"
    log "raftfs: start $RDIR $*"
    timeout 60 "$CLUSTER" start "$RDIR" --base-port $RPORT ${1+-- "$@"} | tee -a "$RES" >&2
    local i
    for i in 1 2 3; do
        for _ in $(seq 50); do grep -q " $RDIR/mnt/$i fuse" /proc/mounts && break; sleep 0.2; done
        grep -q " $RDIR/mnt/$i fuse" /proc/mounts || { echo "compare-etcd: no mount at $RDIR/mnt/$i" >&2; exit 1; }
    done
    M=("$RDIR/mnt/1" "$RDIR/mnt/2" "$RDIR/mnt/3")
}
rstop() {
    log "raftfs: node RSS: $(rss_all)"
    timeout 60 "$CLUSTER" stop "$RDIR" | tee -a "$RES" >&2
    RDIR=""
}
rss_all() {
    local i out=""
    for i in 1 2 3; do
        out+="n$i $(awk '/^VmRSS/{printf "%d MiB", $2/1024}' "/proc/$(cat "$RDIR/n$i.pid")/status") "
    done
    echo "$out"
}
# Waits (up to 10 s) until every node's applied index reaches the
# leader's commit index as it is now.
caught_up() {
    local ctl=$BUILD/mount-helpers/raftfsctl i c a ep
    IFS=, read -r -a ep <<<"$("$CLUSTER" endpoints "$RDIR")"
    for i in 0 1 2; do
        c=$(timeout 10 "$ctl" --endpoint "${ep[$i]}" status 2>/dev/null | awk '$1 == "role:" { r = $2 } $1 == "commit:" { c = $2 } END { if (r == "leader") print c }')
        [ -n "$c" ] && break
    done
    [ -n "$c" ] || { echo "compare-etcd: no leader in $RDIR" >&2; exit 1; }
    for i in 0 1 2; do
        for _ in $(seq 100); do
            a=$(timeout 10 "$ctl" --endpoint "${ep[$i]}" status 2>/dev/null | awk '$1 == "applied:" { print $2 }')
            [ "${a:-0}" -ge "$c" ] && break
            sleep 0.1
        done
        [ "${a:-0}" -ge "$c" ] || { echo "compare-etcd: node $((i + 1)) applied ${a:-?} < commit $c after 10 s" >&2; exit 1; }
    done
}
lg_run() { # key workload workers [loadgen flags...] (dirs: LG_DIRS or all mounts)
    local key=$1 w=$2 c=$3 out line; shift 3
    local dirs=("${M[@]}")
    [ -n "${LG_DIRS:-}" ] && dirs=("$LG_DIRS")
    log "raftfs: loadgen $w -c$c -d$DUR $* ${dirs[*]}"
    step $((DUR + 300)) "$WORK/step.out" "$LOADGEN" -w "$w" -c "$c" -d "$DUR" \
        -k "$KEYS" -s 64 --label "$key" "$@" "${dirs[@]}"
    line=$(grep LOADGEN_RESULT "$WORK/step.out")
    R[$key]=$(jf "$line" ops_per_s)
    R[$key.p50]=$(jf "$line" p50_ms)
    R[$key.p99]=$(jf "$line" p99_ms)
    R[$key.err]=$(jf "$line" errors)
}

rstart raftfs
leader=$(timeout 10 "$BUILD/mount-helpers/raftfsctl" --endpoint "$("$CLUSTER" endpoints "$RDIR")" status 2>/dev/null | sed -n 's/^leader: *\([0-9]*\).*/\1/p' | head -1)
log "raftfs: leader is node ${leader:-?}"
# Every key exists before the write runs, so that a write is an overwrite
# (one commit) as an etcd put is; creates are the excl row.
log "raftfs: prefill $KEYS keys"
step 300 "$WORK/step.out" "$LOADGEN" -w write -c 16 -n 1 -k "$KEYS" -s 64 --prefill "${M[@]}"
floor_again raftfs
LM=${M[$(( ${leader:-1} - 1 ))]}
LG_DIRS=$LM lg_run w1 write 1
lg_run w16 write 16
lg_run w64 write 64
LG_DIRS=$LM lg_run w64l write 64
lg_run r16 read 16
# The shell loops come where etcd's come: after the same writes and a
# read load, before the workloads only raftfs runs.
log "raftfs: pause ${SETTLE}s, then bash loops of $LOOPS echo > k\$i (3, new files each) / cat k\$i (the leader's mount, $LM)"
pause "$SETTLE"
SHR=()
for r in 1 2 3; do
    mkdir -p "$LM/shell$r"
    t0=$(now)
    step 600 "$WORK/step.out" bash -c 'for i in $(seq "$2"); do echo "$i" > "$1/k$i" || exit 1; done' _ "$LM/shell$r" "$LOOPS"
    SHR+=("$(secs "$t0" "$(now)")")
done
t1=$(now)
step 600 "$WORK/step.out" bash -c 'for i in $(seq "$2"); do cat "$1/k$i" >/dev/null || exit 1; done' _ "$LM/shell1" "$LOOPS"
t2=$(now)
step 600 "$WORK/step.out" bash -c 'for i in $(seq "$2"); do echo "$i" > "$1/k$i" || exit 1; done' _ "$LM/shell1" "$LOOPS"
t3=$(now)
R[shput]=$(median "${SHR[@]}")
R[shget]=$(secs "$t1" "$t2")
R[shover]=$(secs "$t2" "$t3")
echo "raftfs echo loops ${SHR[*]} s (median ${R[shput]}), cat loop ${R[shget]} s, echo loop over the existing files ${R[shover]} s" | tee -a "$RES" >&2
lg_run mix16 mix 16
lg_run excl16 excl 16 -p excl
lg_run excl16w excl 16 -p exclw --worker-dirs
lg_run app16 append 16 -p append
lg_run ls16 ls 16

RSS_AFTER=$(rss_all)
rstop

rstart raftfs-stale --mount-options stale
log "raftfs: prefill $KEYS keys"
step 300 "$WORK/step.out" "$LOADGEN" -w write -c 16 -n 1 -k "$KEYS" -s 64 --prefill "${M[@]}"
# A stale mount may lag its leader (docs/semantics.md): the reads start
# once every node has applied what the prefill committed.
caught_up
lg_run s16 read 16
rstop

MILLION_LINE=""
if [ $MILLION = 1 ]; then
    rstart raftfs-million
    log "raftfs: 1,000,000 empty files (excl, 64 workers, 10 x 100,000)"
    t0=$(now)
    # Empty files: one commit each (the create). The kernel serializes
    # creates in one directory per mount, so each worker has its own
    # directory: m<step>/w<worker>.
    for d in $(seq 0 9); do
        step 3600 "$WORK/step.out" "$LOADGEN" -w excl -c 64 -n 100000 -s 0 \
            -p "m$d" --worker-dirs --label "million-$d" "${M[@]}"
        grep LOADGEN_RESULT "$WORK/step.out" >&2
        log "raftfs: $(( (d + 1) * 100000 )) files, node RSS: $(rss_all)"
    done
    t1=$(now)
    MILLION_LINE="1,000,000 empty files created through the mounts in $(secs "$t0" "$t1") s; node RSS then: $(rss_all); data dir of node 1: $(du -sh "$RDIR"/n1 | cut -f1)"
    log "$MILLION_LINE"
    rstop
fi

# --- 5. the table ----------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN{ if (a == "") print "-"; else printf "%.0f", a }'; }
table() {
    echo "| workload | etcd | raftfs | raftfs/etcd |"
    echo "|---|---|---|---|"
    local k name
    for k in w1 w16 w64 w64l r16 s16; do
        case $k in
            w1) name="writes, 1 client (ops/s)" ;;
            w16) name="writes, 16 clients (ops/s)" ;;
            w64) name="writes, 64 clients (ops/s)" ;;
            w64l) name="writes, 64 clients, all on the leader (ops/s)" ;;
            r16) name="linearizable reads, 16 clients (ops/s)" ;;
            s16) name="serializable/stale reads, 16 clients (ops/s)" ;;
        esac
        echo "| $name | $(fmt "${E[$k]}") | $(fmt "${R[$k]}") | $(ratio "${R[$k]}" "${E[$k]}") |"
    done
    echo "| shell loop, $LOOPS writes, median of 3 (s; ratio = etcd/raftfs, speed-up) | ${E[shput]} | ${R[shput]} | $(ratio "${E[shput]}" "${R[shput]}") |"
    echo "| shell loop, $LOOPS reads (s; ratio = etcd/raftfs, speed-up) | ${E[shget]} | ${R[shget]} | $(ratio "${E[shget]}" "${R[shget]}") |"
    echo "| raftfs only: shell loop, $LOOPS overwrites of the same files (s) | - | ${R[shover]} | $(ratio "${E[shput]}" "${R[shover]}") |"
    for k in mix16 excl16 excl16w app16 ls16; do
        case $k in
            mix16) name="90/10 read/write mix, 16 clients" ;;
            excl16) name="O_EXCL creates of 64-byte files in one directory, 16 clients" ;;
            excl16w) name="O_EXCL creates of 64-byte files, one directory per client, 16 clients" ;;
            app16) name="O_APPEND line writes, 16 clients" ;;
            ls16) name="ls of a $KEYS-entry directory, 16 clients" ;;
        esac
        echo "| raftfs only: $name (ops/s) | - | $(fmt "${R[$k]}") | - |"
    done
    echo
    echo "Latency (ms), closed loop, p50 / p99; ratio = raftfs/etcd (lower is better):"
    echo
    echo "| workload | etcd p50 | raftfs p50 | p50 ratio | etcd p99 | raftfs p99 | p99 ratio |"
    echo "|---|---|---|---|---|---|---|"
    for k in w1 w16 w64 w64l r16 s16; do
        echo "| $k | ${E[$k.p50]} | ${R[$k.p50]} | $(ratio "${R[$k.p50]}" "${E[$k.p50]}") | ${E[$k.p99]} | ${R[$k.p99]} | $(ratio "${R[$k.p99]}" "${E[$k.p99]}") |"
    done
    echo
    echo "Shell loops of $LOOPS new writes, each of the 3: etcd ${SHE[*]} s; raftfs ${SHR[*]} s."
    echo
    echo "Errors: etcd $(for k in w1 w16 w64 w64l r16 s16; do printf '%s=%s ' $k "${E[$k.err]}"; done); raftfs $(for k in w1 w16 w64 w64l r16 s16 mix16 excl16 excl16w app16 ls16; do printf '%s=%s ' $k "${R[$k.err]}"; done)"
    echo
    echo "Machine floor: 4 KiB write + fdatasync p50 ${FSYNC} us (p99 ${FSYNC99} us), loopback TCP round trip p50 ${RTT} us with both ends on one vCPU (${RTTX:-not measured} us across two vCPUs)."
    echo "The same sync in three processes at once, as the three members of either store sync on this one disk: p50 ${FSYNC3} us (each: ${F3[*]})."
    echo "Sync floor again right before the 1-client writes: ${FL[etcd]} us (etcd side), ${FL[raftfs]} us (raftfs side)."
    echo "1-client write floor (leader fdatasync in parallel with RTT + follower fdatasync; the round trip on one vCPU), from the raftfs-side figure: about $(awk -v f="${FL[raftfs]}" -v r="$RTT" 'BEGIN{printf "%.0f", f + r}') us; raftfs w1 p50 / floor = $(ratio "$(awk -v p="${R[w1.p50]}" 'BEGIN{print p*1000}')" "$(awk -v f="${FL[raftfs]}" -v r="$RTT" 'BEGIN{print f + r}')")."
    local rx=${RTTX:-$RTT}
    echo "The same floor as a commit of three members meets it on this machine (three syncs at once on the one disk, the round trip across vCPUs): about $(awk -v f="$FSYNC3" -v r="$rx" 'BEGIN{printf "%.0f", f + r}') us; raftfs w1 p50 / that = $(ratio "$(awk -v p="${R[w1.p50]}" 'BEGIN{print p*1000}')" "$(awk -v f="$FSYNC3" -v r="$rx" 'BEGIN{print f + r}')")."
    echo "raftfs node RSS after the run: $RSS_AFTER"
    [ -n "$MILLION_LINE" ] && echo "$MILLION_LINE"
    echo
    targets
    return 0
}
# q A B: A / B as a plain number ("" when either is missing or B is 0).
q() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.3f", a / b }'; }
# met VALUE OP BOUND: "met" or "MISSED" (OP is >= or <=).
met() {
    awk -v v="$1" -v op="$2" -v b="$3" 'BEGIN{
        if (v == "") { print "not measured"; exit }
        ok = op == ">=" ? v + 0 >= b + 0 : v + 0 <= b + 0
        print ok ? "met" : "MISSED" }'
}
# The comparison's targets (docs/BENCHMARKS.md), judged on this run.
targets() {
    local w64 w64p99 w1p50 w1floor r16 sh
    w64=$(q "${R[w64]}" "${E[w64]}")
    w64p99=$(q "${R[w64.p99]}" "${E[w64.p99]}")
    w1p50=$(q "${R[w1.p50]}" "${E[w1.p50]}")
    w1floor=$(q "$(awk -v p="${R[w1.p50]}" 'BEGIN{print p*1000}')" "$(awk -v f="${FL[raftfs]}" -v r="$RTT" 'BEGIN{print f + r}')")
    r16=$(q "${R[r16]}" "${E[r16]}")
    sh=$(q "${E[shput]}" "${R[shput]}")
    echo "Targets, judged on this run:"
    echo
    echo "| target | this run | |"
    echo "|---|---|---|"
    echo "| writes, 64 clients: throughput >= 2x etcd's | ${w64}x | $(met "$w64" ">=" 2) |"
    echo "| writes, 64 clients: p99 <= etcd's | ${w64p99}x | $(met "$w64p99" "<=" 1) |"
    echo "| writes, 1 client: p50 <= 0.5x etcd's | ${w1p50}x | $(met "$w1p50" "<=" 0.5) |"
    echo "| writes, 1 client: p50 <= 3x the floor (lone syncs, round trip on one vCPU) | ${w1floor}x | $(met "$w1floor" "<=" 3) |"
    echo "| linearizable reads, 16 clients: >= 2x etcd's | ${r16}x | $(met "$r16" ">=" 2) |"
    echo "| shell loop of $LOOPS writes: >= 20x faster than etcdctl put | ${sh}x | $(met "$sh" ">=" 20) |"
    if [ -n "$MILLION_LINE" ]; then
        echo "| resident size of a node holding 1,000,000 files: reported | above | met |"
    else
        echo "| resident size of a node holding 1,000,000 files: reported | not run (--million) | not measured |"
    fi
}
TABLE=$(table)
echo
echo "$TABLE"

if [ $DOC = 1 ]; then
    doc=$top/docs/BENCHMARKS.md
    sect=$WORK/section.md
    {
        echo "## raftfs vs etcd"
        echo
        echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`tests/bench/compare-etcd.sh\` on $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r), $etcd_ver, raftfs $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?'); ${DUR} s per workload, $KEYS keys, 64-byte values; both stores in $WORK on the same disk."
        echo
        echo "Reproduce (from the repository root; needs root for apt-get and FUSE):"
        echo
        echo '```'
        echo "meson setup build && tests/bench/compare-etcd.sh        # add --million for the 1M-file RSS step"
        echo '```'
        echo
        echo "etcd is driven by \`wrk\` (keep-alive HTTP/1.1) through its v3 JSON gateway"
        echo "(tests/bench/etcd-wrk.lua), raftfs by \`loadgen\` (tests/bench/loadgen.c)"
        echo "through the FUSE mounts: each worker is a closed loop (one operation in"
        echo "flight, no target rate); a raftfs write is open(O_TRUNC) + write + close,"
        echo "a read open + read + close. The clients are spread over the three"
        echo "members on both sides, as loadgen spreads its workers over the mounts"
        echo "(worker i on member i % 3 + 1: 22/21/21 of 64, 6/5/5 of 16; on etcd's"
        echo "side one single-threaded wrk per member, run side by side and merged)."
        echo "The single client of the 1-client writes and the shell loops, and the"
        echo "\"all on the leader\" row, talk to the leader on both sides (this run:"
        echo "etcd $ELEAD, raftfs node ${leader:-?}). Each shell loop of writes runs"
        echo "three times on each side, on new keys / files, after the same ${SETTLE} s"
        echo "pause on both sides; the table gives the median."
        echo
        echo "$TABLE"
    } > "$sect"
    awk -v sect="$sect" '
        $0 == "## raftfs vs etcd" { skip = 1; while ((getline l < sect) > 0) print l; print ""; next }
        /^## / && skip { skip = 0 }
        !skip { print }
        END { }' "$doc" > "$doc.tmp"
    if ! grep -qx "## raftfs vs etcd" "$doc"; then
        { echo; cat "$sect"; } >> "$doc.tmp"
    fi
    mv "$doc.tmp" "$doc"
    echo "compare-etcd: wrote the \"## raftfs vs etcd\" section of $doc" >&2
fi
