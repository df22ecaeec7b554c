#!/usr/bin/env bash
# Concurrency through real mounts of a 3-node cluster: `mv` over a key while
# readers loop on every node (never a partial, empty or missing file);
# `set -C` O_EXCL lock contention from shells on all nodes (exactly one
# winner per round); `>>` appenders on three nodes (no line lost); a counter
# incremented under the lock from all three mounts (the exact count).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
it_init
it_start 3
M1=$(it_mnt 1); M2=$(it_mnt 2); M3=$(it_mnt 3)
T="timeout 60"

# --- mv over an existing key while readers loop
VAL_A=$(printf 'A%.0s' $(seq 1 3000))
VAL_B=$(printf 'B%.0s' $(seq 1 5000))
printf '%s' "$VAL_A" > "$M1/key"
cat > "$IT_DIR/reader.sh" <<'EOF'
# reader.sh FILE STOPFILE OUT: reads FILE until STOPFILE exists; records
# every read that is not one of the two complete values.
f=$1 stop=$2 out=$3 n=0 bad=0
while [ ! -e "$stop" ]; do
    v=$(cat "$f" 2>&1) || { bad=$((bad + 1)); echo "error: $v" >> "$out.bad"; }
    case "$v" in
        "$VAL_A"|"$VAL_B") ;;
        *) bad=$((bad + 1)); echo "bad read of ${#v} bytes: ${v:0:40}" >> "$out.bad" ;;
    esac
    n=$((n + 1))
done
echo "$n $bad" > "$out"
EOF
export VAL_A VAL_B
pids=()
for i in 1 2 3; do
    for r in 1 2; do
        $T bash "$IT_DIR/reader.sh" "$(it_mnt $i)/key" "$IT_DIR/stop" "$IT_DIR/r$i.$r" &
        pids+=($!)
    done
done
mvs=0
for round in $(seq 1 60); do
    w=$(( round % 3 + 1 )); W=$(it_mnt $w)
    if [ $((round % 2)) = 0 ]; then v=$VAL_A; else v=$VAL_B; fi
    $T bash -c "printf '%s' \"\$1\" > '$W/.key.tmp' && mv '$W/.key.tmp' '$W/key'" _ "$v" && mvs=$((mvs + 1))
done
touch "$IT_DIR/stop"
wait "${pids[@]}"
reads=0; bad=0
for f in "$IT_DIR"/r?.?; do
    read -r n b < "$f"; reads=$((reads + n)); bad=$((bad + b))
done
it_log "mv: $mvs renames, $reads reads on 3 nodes"
check_eq "60 mv over the key" 60 "$mvs"
check "readers read while mv ran" test "$reads" -gt 40
check_eq "no reader saw a partial, empty or missing file" 0 "$bad"
[ "$bad" = 0 ] || head -5 "$IT_DIR"/r*.bad

# --- in-place overwrites (echo v > key) while readers loop: the open with
# O_TRUNC publishes nothing; the one put at close replaces the whole value.
rm -f "$IT_DIR/stop" "$IT_DIR"/r?.? "$IT_DIR"/r*.bad
pids=()
for i in 1 2 3; do
    $T bash "$IT_DIR/reader.sh" "$(it_mnt $i)/key" "$IT_DIR/stop" "$IT_DIR/r$i.1" &
    pids+=($!)
done
writes=0
for round in $(seq 1 60); do
    w=$(( round % 3 + 1 )); W=$(it_mnt $w)
    if [ $((round % 2)) = 0 ]; then v=$VAL_A; else v=$VAL_B; fi
    $T bash -c "printf '%s' \"\$1\" > '$W/key'" _ "$v" && writes=$((writes + 1))
done
touch "$IT_DIR/stop"
wait "${pids[@]}"
reads=0; bad=0
for f in "$IT_DIR"/r?.?; do
    read -r n b < "$f"; reads=$((reads + n)); bad=$((bad + b))
done
it_log "overwrite: $writes writes, $reads reads on 3 nodes"
check_eq "60 overwrites of the key" 60 "$writes"
check_eq "no reader saw a partial or empty value during overwrites" 0 "$bad"
[ "$bad" = 0 ] || head -5 "$IT_DIR"/r*.bad

# --- O_EXCL lock contention: exactly one winner per round
rounds=10; ok=1
for round in $(seq 1 $rounds); do
    rm -f "$IT_DIR"/won.*
    for i in 1 2 3; do
        for c in 1 2; do
            $T bash -c "(set -C; echo \$\$ > '$(it_mnt $i)/lock') 2>/dev/null && touch '$IT_DIR/won.$i.$c'" &
        done
    done
    wait
    winners=$(ls "$IT_DIR"/won.* 2>/dev/null | wc -l)
    if [ "$winners" != 1 ]; then
        ok=0; it_log "round $round: $winners winners"
    fi
    $T rm -f "$M1/lock"
done
check_eq "exactly one O_EXCL winner in each of $rounds rounds" 1 "$ok"

# --- >> appenders on three nodes lose no line
per=60
for i in 1 2 3; do
    $T bash -c "for n in \$(seq 1 $per); do echo \"node$i line \$n\" >> '$(it_mnt $i)/log'; done" &
done
wait
check_eq "$((3 * per)) lines appended from three nodes" $((3 * per)) "$(wc -l < "$M2/log")"
check_eq "every line exactly once" $((3 * per)) "$(sort -u "$M3/log" | wc -l)"
check_eq "no torn line" 0 "$(grep -cvE '^node[123] line [0-9]+$' "$M1/log")"
check "each node's lines in its order" bash -c "for i in 1 2 3; do grep \"^node\$i \" '$M1/log' | awk '{print \$3}' | sort -nc || exit 1; done"

# --- a counter incremented under the lock from all three mounts
echo 0 > "$M1/counter"
cat > "$IT_DIR/incr.sh" <<'EOF'
# incr.sh MOUNT N: N increments of MOUNT/counter, each under MOUNT/clock.
m=$1
for n in $(seq 1 "$2"); do
    until (set -C; echo $$ > "$m/clock") 2>/dev/null; do sleep 0.0$((RANDOM % 5 + 1)); done
    v=$(cat "$m/counter")
    echo $((v + 1)) > "$m/counter"
    rm "$m/clock"
done
EOF
per=15
for i in 1 2 3; do
    $T bash "$IT_DIR/incr.sh" "$(it_mnt $i)" $per &
done
wait
check_eq "the counter under the lock ends at the exact count" $((3 * per)) "$(cat "$M2/counter")"

it_done
