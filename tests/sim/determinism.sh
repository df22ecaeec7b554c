#!/usr/bin/env bash
# Same seed, same run: two traces of one seed must be identical, byte for byte.
set -euo pipefail
sim=$1
seed=${2:-7}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in "$seed" $((seed + 1)) $((seed + 2)); do
  "$sim" --seed "$s" --trace >"$tmp/a" 2>/dev/null || true
  "$sim" --seed "$s" --trace >"$tmp/b" 2>/dev/null || true
  if [ ! -s "$tmp/a" ]; then
    echo "determinism: seed $s printed no trace" >&2
    exit 1
  fi
  if ! cmp -s "$tmp/a" "$tmp/b"; then
    echo "determinism: seed $s: two traces differ:" >&2
    diff "$tmp/a" "$tmp/b" | head -20 >&2
    exit 1
  fi
  echo "determinism: seed $s: $(wc -l <"$tmp/a") trace lines, identical"
done
