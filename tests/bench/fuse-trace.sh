#!/usr/bin/env bash
# Counts the FUSE requests a command causes on one raftfsd, with latencies.
#
#   tests/bench/fuse-trace.sh PID -- COMMAND [ARGS...]
#
# Attaches strace to raftfsd PID (its /dev/fuse reads and reply writevs
# only), runs COMMAND, detaches, and prints per opcode: count, median and
# max time from the request read to its reply (ms). strace slows the
# daemon down several times: read the counts as exact, the times as
# relative. Needs strace and python3; the daemon must run as a user we may
# trace (root here). Example, 20 whole-value writes on node 1's mount:
#
#   tests/bench/fuse-trace.sh $(cat DIR/n1.pid) -- \
#       build/tests/bench/loadgen -w write -n 20 DIR/mnt/1
set -euo pipefail

[ $# -ge 3 ] && [ "$2" = "--" ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
pid=$1; shift 2
fd=$(ls -l "/proc/$pid/fd" | awk '/\/dev\/fuse/ {print $9; exit}')
[ -n "$fd" ] || { echo "fuse-trace: pid $pid has no /dev/fuse open" >&2; exit 1; }
out=$(mktemp /tmp/fuse-trace.XXXXXX)
strace -f -tt -e trace=read,writev -s 32 -p "$pid" -o "$out" 2>/dev/null &
spid=$!
trap 'kill -INT $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; rm -f "$out"' EXIT
sleep 1  # strace attaches
"$@"
sleep 0.5
kill -INT $spid 2>/dev/null || true
wait $spid 2>/dev/null || true
python3 - "$out" "$fd" <<'EOF'
import collections, re, sys
names = {1: 'LOOKUP', 2: 'FORGET', 3: 'GETATTR', 4: 'SETATTR', 9: 'MKDIR',
         10: 'UNLINK', 14: 'OPEN', 15: 'READ', 16: 'WRITE', 17: 'STATFS',
         18: 'RELEASE', 20: 'FSYNC', 22: 'GETXATTR', 25: 'FLUSH',
         27: 'OPENDIR', 28: 'READDIR', 29: 'RELEASEDIR', 35: 'CREATE',
         42: 'BATCH_FORGET', 44: 'READDIRPLUS'}
def unesc(s):
    return s.encode('latin1').decode('unicode_escape').encode('latin1')
def secs(t):
    h, m, s = t.split(':')
    return int(h) * 3600 + int(m) * 60 + float(s)
path, fd = sys.argv[1], sys.argv[2]
req = re.compile(r'read\(%s, "((?:[^"\\]|\\.)*)"' % fd)
rep = re.compile(r'writev\(%s, \[\{iov_base="((?:[^"\\]|\\.)*)"' % fd)
pending, lat, errs = {}, collections.defaultdict(list), collections.Counter()
for line in open(path):
    p = line.split(None, 2)
    if len(p) < 3:
        continue
    t, rest = secs(p[1]), p[2]
    m = req.match(rest)
    if m:
        b = unesc(m.group(1))
        if len(b) >= 16:
            op = names.get(int.from_bytes(b[4:8], 'little'), 'op%d' % int.from_bytes(b[4:8], 'little'))
            pending[int.from_bytes(b[8:16], 'little')] = (op, t)
        continue
    m = rep.match(rest)
    if m:
        b = unesc(m.group(1))
        if len(b) >= 16:
            u = int.from_bytes(b[8:16], 'little')
            if u in pending:
                op, t0 = pending.pop(u)
                lat[op].append((t - t0) * 1000)
                if int.from_bytes(b[4:8], 'little', signed=True) != 0:
                    errs[op] += 1
print('%-12s %6s %7s %10s %10s' % ('request', 'count', 'errors', 'median ms', 'max ms'))
for op, v in sorted(lat.items(), key=lambda kv: -len(kv[1])):
    v.sort()
    print('%-12s %6d %7d %10.3f %10.3f' % (op, len(v), errs[op], v[len(v) // 2], v[-1]))
print('total %d requests answered; %d without a reply seen (FORGET has none)'
      % (sum(len(v) for v in lat.values()), len(pending)))
EOF
