#!/usr/bin/env bash
# tests/bench/loadgen (compare-etcd.sh's FUSE load generator) through real
# mounts of a 3-node cluster, with small op counts: every workload (write
# with --prefill, read, mix, excl with and without --worker-dirs and with
# empty values, append, ls, a run by duration) checked against what it left
# in the file system and against its JSON line; workers spread over the
# DIRs; reads of missing keys counted as ENOENT (exit 1); bad arguments
# refused with a message naming them and exit 2, before anything is
# created. No timing thresholds.
set -uo pipefail
source "$(dirname "$0")/../integration/lib.sh"
it_init
SRC=$IT_TOP/tests/bench
LG=$RAFTFS_BUILD/tests/bench/loadgen
PY=$(command -v /usr/bin/python3 || command -v python3)
T="timeout 120"
# meson builds loadgen before this test (depends); run by hand against
# another build directory, a stale binary is refused here.
for f in loadgen.c loadgen_stats.c loadgen.h; do
    if [ ! -x "$LG" ] || [ "$SRC/$f" -nt "$LG" ]; then
        it_fail "$LG is missing or older than $f: run ninja -C $RAFTFS_BUILD"
        it_done
        exit 1
    fi
done
it_start 3
M1=$(it_mnt 1); M2=$(it_mnt 2); M3=$(it_mnt 3)
VAL=$(printf 'v%.0s' $(seq 1 99)) # loadgen's value: 'v' * (size - 1), '\n'
printf '%s\n' "$VAL" > "$IT_DIR/val100"

# lg ARGS...: runs loadgen; LG_RC, LG_JSON (the JSON line), LG_ERR (stderr).
lg() {
    $T "$LG" "$@" > "$IT_DIR/lg.out" 2> "$IT_DIR/lg.err"
    LG_RC=$?
    LG_JSON=$(sed -n 's/^LOADGEN_RESULT //p' "$IT_DIR/lg.out")
    LG_ERR=$(cat "$IT_DIR/lg.err")
    if grep -qE "Sanitizer|runtime error:" "$IT_DIR/lg.err"; then
        it_fail "sanitizer report from loadgen $*"
        head -30 "$IT_DIR/lg.err"
    fi
}
# jget EXPR: evaluates the Python expression EXPR over d, the parsed JSON
# line (failing if there is not exactly one line or it is not JSON).
jget() {
    "$PY" - "$LG_JSON" "$1" <<'EOF'
import json, sys
lines = sys.argv[1].split("\n")
if len(lines) != 1:
    sys.exit("%d LOADGEN_RESULT lines" % len(lines))
d = json.loads(lines[0])
print(eval(sys.argv[2]))
EOF
}
# jcheck "description" EXPR: passes if EXPR over the JSON line is True.
jcheck() {
    local got
    got=$(jget "$2" 2>&1)
    if [ "$got" = True ]; then it_pass "$1"; else it_fail "$1 ($2: $got) in: $LG_JSON"; fi
}
# Files (relative) under DIR, sorted.
files() { (cd "$1" && $T find . -type f | sort); }
# Files under DIR whose content is not FILE's.
differing() {
    local f n=0
    while read -r f; do
        cmp -s "$1/$f" "$2" || n=$((n + 1))
    done < <(files "$1")
    echo "$n"
}

# --- write with --prefill over the three mounts
lg -w write -c 4 -n 60 -k 20 -s 100 --prefill --label t1 "$M1" "$M2" "$M3"
check_eq "write: exit 0" 0 "$LG_RC"
jcheck "write: label, workload, 60 ops, no error, 4 workers, 3 dirs" \
    'd["label"] == "t1" and d["workload"] == "write" and d["ops"] == 60 and d["errors"] == 0 and d["workers"] == 4 and d["dirs"] == 3 and d["keys"] == 20 and d["value_size"] == 100 and d["errno"] == {}'
jcheck "write: 0 < p50 <= p90 <= p99 <= max" \
    '0 < d["p50_ms"] <= d["p90_ms"] <= d["p99_ms"] <= d["max_ms"] and d["mean_ms"] > 0'
jcheck "write: ops_per_s > 0, seconds > 0" 'd["ops_per_s"] > 0 and d["seconds"] > 0'
check "write: the prefill reported no error" grep -q "prefilled 20 keys in .* (0 errors)" "$IT_DIR/lg.err"
want=$(for k in $(seq 0 19); do printf './k%06d\n' "$k"; done)
for i in 1 2 3; do
    M=$(it_mnt "$i")
    check_eq "write: node $i has exactly bench/k000000..k000019" "$want" "$(files "$M/bench")"
    check_eq "write: node $i: each is 99 'v' and a newline" 0 "$(differing "$M/bench" "$IT_DIR/val100")"
done

# --- read
lg -w read -c 3 -n 60 -k 20 -s 100 "$M1" "$M2" "$M3"
check_eq "read: exit 0" 0 "$LG_RC"
jcheck "read: 60 ops, no error" 'd["ops"] == 60 and d["errors"] == 0 and d["workload"] == "read"'
lg -w read -c 2 -n 20 -k 5 -p nokeys "$M1" "$M2" "$M3"
check_eq "read of missing keys: exit 1 (every op failed)" 1 "$LG_RC"
jcheck "read of missing keys: 20 errors, all ENOENT" \
    'd["ops"] == 20 and d["errors"] == 20 and d["errno"] == {"ENOENT": 20}'
check "read of missing keys: the report names ENOENT" grep -q "errors ENOENT: 20" "$IT_DIR/lg.out"

# --- mix
lg -w mix -r 50 -c 3 -n 60 -k 20 -s 100 "$M1" "$M2" "$M3"
check_eq "mix: exit 0" 0 "$LG_RC"
jcheck "mix: 60 ops, no error" 'd["ops"] == 60 and d["errors"] == 0 and d["workload"] == "mix"'
check_eq "mix: the keys still hold the value" 0 "$(differing "$M2/bench" "$IT_DIR/val100")"

# --- excl: new files, in one directory and per worker
lg -w excl -c 3 -n 30 -s 100 -p ex "$M1" "$M2" "$M3"
check_eq "excl: exit 0" 0 "$LG_RC"
jcheck "excl: 30 ops, no error" 'd["ops"] == 30 and d["errors"] == 0'
for i in 1 2 3; do
    M=$(it_mnt "$i")
    check_eq "excl: node $i sees 30 files in ex/" 30 "$(files "$M/ex" | grep -cE '^\./x[0-9]+-[0-2]-[0-9]+$')"
    check_eq "excl: node $i: each holds the 100-byte value" 0 "$(differing "$M/ex" "$IT_DIR/val100")"
done
lg -w excl -c 3 -n 30 -s 100 -p ex2 --worker-dirs "$M1" "$M2" "$M3"
check_eq "excl --worker-dirs: exit 0" 0 "$LG_RC"
jcheck "excl --worker-dirs: 30 ops, no error" 'd["ops"] == 30 and d["errors"] == 0'
check_eq "excl --worker-dirs: ex2 holds w0 w1 w2" "w0 w1 w2" "$(ls "$M3/ex2" | xargs)"
check_eq "excl --worker-dirs: 30 files, all in ex2/w0..w2" 30 "$(files "$M2/ex2" | grep -cE '^\./w[0-2]/x[0-9]+-[0-9]+$')"
check_eq "excl --worker-dirs: no other file" 30 "$(files "$M1/ex2" | wc -l)"
check_eq "excl --worker-dirs: each holds the 100-byte value" 0 "$(differing "$M1/ex2" "$IT_DIR/val100")"
lg -w excl -c 2 -n 4 -s 0 -p ex0 "$M1" "$M2"
check_eq "excl -s 0: exit 0" 0 "$LG_RC"
check_eq "excl -s 0: 4 empty files" "4 0" "$(files "$M3/ex0" | wc -l) $(cd "$M3/ex0" && find . -type f -size +0 | wc -l)"

# --- append: every line lands exactly once
lg -w append -c 3 -n 45 -k 5 -p ap "$M1" "$M2" "$M3"
check_eq "append: exit 0" 0 "$LG_RC"
jcheck "append: 45 ops, no error" 'd["ops"] == 45 and d["errors"] == 0'
cat "$M2"/ap/k* > "$IT_DIR/ap.txt"
check_eq "append: 45 lines in ap/k*" 45 "$(wc -l < "$IT_DIR/ap.txt")"
check_eq "append: no duplicate" 45 "$(sort -u "$IT_DIR/ap.txt" | wc -l)"
check_eq "append: every line is 'w<id> <seq>'" 0 "$(grep -cvE '^w[0-2] [0-9]+$' "$IT_DIR/ap.txt")"
check "append: each worker's lines are its seqs 0..n-1" "$PY" -c '
import sys, collections
seqs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    w, s = line.split()
    seqs[w].append(int(s))
sys.exit(any(sorted(v) != list(range(len(v))) for v in seqs.values()))
' "$IT_DIR/ap.txt"
check_eq "append: node 3 reads the same lines" "$(sort "$IT_DIR/ap.txt")" "$(cat "$M3"/ap/k* | sort)"

# --- worker i works in DIR i % ndirs (plain directories here, so that the
# directory a line was written through shows)
mkdir "$IT_DIR/d0" "$IT_DIR/d1" "$IT_DIR/d2"
lg -w append -c 3 -d 0.2 -k 1 -p sp "$IT_DIR/d0" "$IT_DIR/d1" "$IT_DIR/d2"
check_eq "spread: exit 0" 0 "$LG_RC"
for i in 0 1 2; do
    check "spread: d$i holds worker $i's lines and no other's" \
        bash -c "grep -q '^w$i ' '$IT_DIR/d$i/sp/k000000' && ! grep -vq '^w$i ' '$IT_DIR/d$i/sp/k000000'"
done
jcheck "spread: the JSON counts every line appended" \
    "d['ops'] == $(cat "$IT_DIR"/d?/sp/k000000 | wc -l) and d['errors'] == 0"

# --- ls, with a label that needs escaping in JSON
lg -w ls -c 2 -n 10 -p bench --label 'ls "q" \b' "$M1" "$M2" "$M3"
check_eq "ls: exit 0" 0 "$LG_RC"
jcheck "ls: 10 ops, no error" 'd["ops"] == 10 and d["errors"] == 0 and d["workload"] == "ls"'
jcheck "ls: the label round-trips through the JSON line" 'd["label"] == "ls \"q\" \\b"'

# --- by duration
lg -d 1 -c 2 -w read -k 20 "$M1" "$M2" "$M3"
check_eq "duration: exit 0" 0 "$LG_RC"
jcheck "duration: ops > 0, no error, seconds >= 0.9" \
    'd["ops"] > 0 and d["errors"] == 0 and d["seconds"] >= 0.9'

# --- bad arguments: exit 2, a message naming the problem, no result, and
# nothing created (-p badrun never appears).
bad() { # "expected message" ARGS...
    local want=$1; shift
    lg "$@"
    if [ "$LG_RC" = 2 ] && [ -z "$LG_JSON" ] && [[ $LG_ERR == *"$want"* ]]; then
        it_pass "refused: $*"
    else
        it_fail "loadgen $*: want exit 2 and '$want', got exit $LG_RC, stderr '$LG_ERR', result '$LG_JSON'"
    fi
}
bad "unknown workload 'nosuch'" -w nosuch -n 5 -p badrun "$M1"
bad "-c needs a whole number from 1 to 4096, not '0'" -c 0 -n 5 -p badrun "$M1"
bad "-c needs a whole number from 1 to 4096, not 'abc'" -c abc -n 5 -p badrun "$M1"
bad "-c needs a whole number from 1 to 4096, not '-5'" -c -5 -n 5 -p badrun "$M1"
bad "--workers needs a whole number from 1 to 4096, not '4097'" --workers 4097 -n 5 -p badrun "$M1"
bad "-k needs a whole number from 1 to 100000000, not '10x'" -k 10x -n 5 -p badrun "$M1"
bad "-r needs a whole number from 0 to 100, not '101'" -w mix -r 101 -n 5 -p badrun "$M1"
bad "-s needs a whole number from 0 to 16777216, not '99999999999999999999999'" -s 99999999999999999999999 -n 5 -p badrun "$M1"
bad "-n needs a whole number from 1 to 1000000000000, not '1e3'" -n 1e3 -p badrun "$M1"
bad "-d needs a number of seconds above 0 and at most 86400, not '-1'" -d -1 -p badrun "$M1"
bad "-d needs a number of seconds above 0 and at most 86400, not 'abc'" -d abc -p badrun "$M1"
bad "-d needs a number of seconds above 0 and at most 86400, not 'nan'" -d nan -p badrun "$M1"
bad "no DIR given" -w write -n 5 -p badrun
bad "-c needs a value" -n 5 -p badrun -c
bad "unknown option '--bogus'" --bogus -n 5 -p badrun "$M1"
bad "option '-c' after the DIRs" -n 5 -p badrun "$M1" -c 4
check "no bad run created anything" test ! -e "$M1/badrun"
lg -n 5 "$IT_DIR/no-such-dir"
check_eq "a DIR that does not exist: exit 1" 1 "$LG_RC"
check "a DIR that does not exist: named in the message" \
    grep -qF "mkdir $IT_DIR/no-such-dir/bench: No such file or directory" "$IT_DIR/lg.err"
check_eq "a DIR that does not exist: no result" "" "$LG_JSON"

it_done
