#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every suite.
# Usage: tests/run.sh [--sanitize] [--suite NAME]... [--long]
#   --sanitize   build with -Db_sanitize=address,undefined (build-asan/)
#   --suite S    run only suite S (unit, sim, integration); repeatable
#   --long       also run the long suites (RAFTFS_LONG=1: 100k sim seeds, soak)
# The last line is "N passed, N failed": N counts individual check test
# cases for check-based programs and one per test for the others.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

builddir=build
setup_args=()
suites=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) builddir=build-asan
                setup_args+=(-Db_sanitize=address,undefined -Db_lundef=false) ;;
    --suite) shift; suites+=(--suite "$1") ;;
    --long) export RAFTFS_LONG=1 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

bash mount-helpers/install-deps.sh || { echo "run.sh: dependency install failed" >&2; echo "0 passed, 1 failed"; exit 1; }

if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" "${setup_args[@]}" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$builddir" >"$builddir/ninja.log" 2>&1; then
  tail -50 "$builddir/ninja.log"
  echo "run.sh: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
meson test -C "$builddir" --print-errorlogs --timeout-multiplier 3 "${suites[@]}"
status=$?

python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = skipped = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    t = json.loads(line)
    out = t.get("stdout", "") or ""
    m = re.findall(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", out)
    if not m:
        # Script tests (tests/integration/lib.sh) print "N passed, N failed".
        m = [(int(a) + int(b), b, 0) for a, b in
             re.findall(r"^(\d+) passed, (\d+) failed$", out, re.M)]
    if t.get("result") == "SKIP":
        skipped += 1
        continue
    ok = t.get("result") in ("OK", "EXPECTEDFAIL")
    if m:
        n = sum(int(a) for a, _, _ in m)
        f = sum(int(b) + int(c) for _, b, c in m)
        if not ok and f == 0:
            f = 1  # the program failed outside its checks (crash, leak)
        passed += n - f if n >= f else 0
        failed += f
    else:
        if ok:
            passed += 1
        else:
            failed += 1
if not lines:
    failed += 1
if skipped:
    print(f"{skipped} test programs skipped", file=sys.stderr)
print(f"{passed} passed, {failed} failed")
PY
exit $status
