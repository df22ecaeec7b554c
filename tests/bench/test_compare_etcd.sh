#!/usr/bin/env bash
# tests/bench/compare-etcd.sh end to end, in small: every step runs against
# a real 3-member etcd and real 3-node raftfs clusters with mounts (1 s per
# workload, 50 keys, shell loops of 10 after a 1 s pause), and the table it
# prints has every row with figures on both sides, no errors and every
# target judged. It leaves nothing running or mounted, and --no-doc leaves
# the docs alone.
# Bad options are refused before anything starts. No figure is compared
# with a threshold: on a shared machine that would test the machine.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /var/tmp/test_compare_etcd.XXXXXX)
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # description command...
    local d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
pids_of() { cat "$tmp"/w/*/n?.pid "$tmp"/w/etcd/m?.pid 2>/dev/null; }
cleanup() {
    # The script's own trap stops what it started; this is for a script
    # killed by the timeout below.
    local p m
    for p in $(pids_of); do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for m in $(awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts); do
        fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- bad options: refused at once, nothing started
for args in "--loops abc" "--loops 0" "-d -1" "--keys 10x" "--settle 1s" "--bogus"; do
    rc=0
    # shellcheck disable=SC2086
    timeout 30 "$here/compare-etcd.sh" $args --no-doc --work "$tmp/bad" \
        > "$tmp/bad.out" 2> "$tmp/bad.err" || rc=$?
    check "compare-etcd $args: exit 2 with a message, nothing run" \
        test "$rc $(grep -c 'compare-etcd: ' "$tmp/bad.err") $([ -e "$tmp/bad" ] && echo ran || echo none)" = "2 1 none"
done

# --- the whole comparison, small
md5_before=$(md5sum "$top/docs/BENCHMARKS.md")
rc=0
timeout 900 "$here/compare-etcd.sh" -d 1 --keys 50 --loops 10 --settle 1 \
    --no-doc --work "$tmp/w" > "$tmp/out" 2> "$tmp/err" || rc=$?
check "compare-etcd ran every step (exit $rc)" test "$rc" = 0
[ "$rc" = 0 ] || { tail -30 "$tmp/err"; tail -30 "$tmp/out"; }
out=$tmp/out
# The table, for the log.
sed -n '/^| workload | etcd | raftfs/,$p' "$out"

# A row "| NAME | ETCD | RAFTFS | RATIO |" with positive figures on both sides.
row_both() { # name
    awk -F' \\| ' -v n="| $1" '
        index($0, n " |") == 1 {
            e = $2; r = $3; sub(/ .*/, "", r)
            if (e ~ /^[0-9.]+$/ && r ~ /^[0-9.]+$/ && e + 0 > 0 && r + 0 > 0) found = 1
        }
        END { exit !found }' "$out"
}
for name in "writes, 1 client (ops/s)" "writes, 16 clients (ops/s)" \
            "writes, 64 clients (ops/s)" \
            "writes, 64 clients, all on the leader (ops/s)" \
            "linearizable reads, 16 clients (ops/s)" \
            "serializable/stale reads, 16 clients (ops/s)" \
            "shell loop, 10 writes, median of 3 (s; ratio = etcd/raftfs, speed-up)" \
            "shell loop, 10 reads (s; ratio = etcd/raftfs, speed-up)"; do
    check "table row with both figures: $name" row_both "$name"
done
for name in "90/10 read/write mix, 16 clients" \
            "O_EXCL creates of 64-byte files in one directory, 16 clients" \
            "O_EXCL creates of 64-byte files, one directory per client, 16 clients" \
            "O_APPEND line writes, 16 clients" "ls of a 50-entry directory, 16 clients"; do
    check "raftfs-only row with a figure: $name" \
        grep -Eq "^\| raftfs only: $name \(ops/s\) \| - \| [0-9]+ \|" "$out"
done
for k in w1 w16 w64 w64l r16 s16; do
    check "latency row $k: p50 and p99 on both sides" \
        grep -Eq "^\| $k \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \|$" "$out"
done
errs=$(grep '^Errors: ' "$out")
check "an Errors line" test -n "$errs"
check "no errors on either side ($errs)" \
    test "$(grep -o '=[0-9]*' <<<"$errs" | grep -vc '^=0$')" = 0
check "every error count is there (6 etcd, 11 raftfs)" \
    test "$(grep -o '=[0-9][0-9]*' <<<"$errs" | wc -l)" = 17
check "three shell loops on each side" \
    grep -Eq '^Shell loops of 10 new writes, each of the 3: etcd [0-9.]+ [0-9.]+ [0-9.]+ s; raftfs [0-9.]+ [0-9.]+ [0-9.]+ s\.$' "$out"
check "the round trip on one vCPU and across two" \
    grep -Eq '^Machine floor: .* round trip p50 [0-9.]+ us with both ends on one vCPU \(([0-9.]+|not measured) us across two vCPUs\)\.$' "$out"
check "the floor, alone and three at once" \
    grep -Eq '^The same sync in three processes at once, .*: p50 [0-9.]+ us \(each: [0-9.]+ [0-9.]+ [0-9.]+\)\.$' "$out"
check "seven targets, each judged" \
    test "$(grep -Ec '^\| .* \| (met|MISSED|not measured) \|$' "$out")" = 7
check "the 1M-file target says it was not run" \
    grep -q '^| resident size of a node holding 1,000,000 files: reported | not run (--million) | not measured |$' "$out"

# --- nothing left behind
check "--no-doc left docs/BENCHMARKS.md alone" \
    test "$(md5sum "$top/docs/BENCHMARKS.md")" = "$md5_before"
left=""
for p in $(pids_of); do kill -0 "$p" 2>/dev/null && left+=" $p"; done
check "no etcd or raftfsd process left (${left:-none})" test -z "$left"
check "no mount left under $tmp" \
    test "$(awk -v t="$tmp/" 'index($2, t) == 1' /proc/mounts | wc -l)" = 0

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
