# The per-run report of the fault harness, sourced by run.sh after healing.
#
# Prints ops by type and result, the faults with their times, failover times
# (from each fault to the completion of the first successful write invoked
# after it), the lost-write check, the checker's verdict and, on failure,
# the minimal history slice, the seed and the schedule to reproduce.

# The explicit lost-write check: for each key without appends, the final
# value must come from a mutation that is not older than the last
# acknowledged one (it completed after that one was invoked, or is unknown).
ft_lost_writes() {
    awk '
    $1 == 0 { if (!($5 in final)) final[$5] = $8; next }
    {
        key = $5; kind = $4; res = $7
        if (kind == "a") { appended[key] = 1; next }
        if (kind == "r" || res == "fail") next
        if (kind == "d" && res == "ok" && $8 == "~") next   # ENOENT: no change
        if (kind == "x" && res == "ok" && $8 == "=") next   # EEXIST: no change
        n = ++cnt[key]
        inv[key, n] = $2; cmp[key, n] = (res == "unknown") ? 9e18 : $3
        val[key, n] = (kind == "d") ? "~" : $6; line[key, n] = $0
        if (res == "ok" && $2 > last[key]) { last[key] = $2; lastline[key] = $0 }
    }
    END {
        lost = 0
        for (key in final) {
            if (key in appended || !(key in last)) continue
            found = 0
            for (i = 1; i <= cnt[key]; i++)
                if (cmp[key, i] >= last[key] && val[key, i] == final[key]) found = 1
            if (!found) {
                printf "LOST WRITE: key %s reads %s at the end, but the last acknowledged mutation was: %s\n", key, final[key], lastline[key]
                lost++
            }
        }
        exit lost > 0
    }' "$FT_DIR/history"
}

ft_report() {
    local verdict rc t0
    t0=$(awk 'NR == 1 || $2 < m { m = $2 } END { print m }' "$FT_DIR/history")
    echo "==== fault run: seed $FT_SEED, $FT_N nodes, ${FT_DURATION}s, workers/node $FT_WORKERS, keys $FT_KEYS, fuse $FT_FUSE"
    echo "---- ops by type and result (final reads are process 0)"
    awk '$1 != 0 { n[$4 " " $7]++; t++ } $1 == 0 { f++ }
         END { split("r read w write d delete x create a append", nm, " ")
               for (i = 1; i < 10; i += 2) {
                   k = nm[i]; if (n[k " ok"] + n[k " fail"] + n[k " unknown"] == 0) continue
                   printf "  %-7s ok %6d  fail %5d  unknown %5d\n", nm[i+1], n[k " ok"], n[k " fail"], n[k " unknown"] }
               printf "  total %d client ops, %d final reads\n", t, f }' "$FT_DIR/history"
    echo "---- faults (seconds from the first op)"
    awk -v t0="$t0" '{ printf "  %7.2f  %s\n", ($1 - t0) / 1e6, substr($0, index($0, $2)) }' "$FT_DIR/faults" 2>/dev/null
    echo "---- failover: fault -> first successful write invoked after it"
    awk '
    FNR == NR { if ($2 == "fault") { nf++; ft[nf] = $1; fn[nf] = $3 } next }
    $1 != 0 && $7 == "ok" && ($4 == "w" || $4 == "d" || $4 == "x" || $4 == "a") { ni++; winv[ni] = $2; wcmp[ni] = $3 }
    END {
        for (f = 1; f <= nf; f++) {
            best = -1
            for (i = 1; i <= ni; i++)
                if (winv[i] >= ft[f] && (best < 0 || wcmp[i] < best)) best = wcmp[i]
            if (best < 0) printf "  %-16s none before the end\n", fn[f]
            else { printf "  %-16s %6d ms\n", fn[f], (best - ft[f]) / 1000
                   printf "FAILOVER %s %d\n", fn[f], (best - ft[f]) / 1000 > "/dev/stderr" }
        }
    }' "$FT_DIR/faults" "$FT_DIR/history" 2>>"$FT_DIR/failover"
    echo "---- lost writes"
    if ft_lost_writes > "$FT_DIR/lost.out"; then
        echo "  none: every key's final value comes from its last acknowledged write or a concurrent/unknown one"
    else
        cat "$FT_DIR/lost.out"
        ft_fail "acknowledged writes lost"
    fi
    echo "---- trees (get of every key, ls) identical on every node: $FT_TREES"
    echo "---- linearizability"
    "$FAULT_CHECK" "$FT_DIR/history" > "$FT_DIR/checker.out" 2>&1
    rc=$?
    FT_CHECKER_RC=$rc
    head -c 20000 "$FT_DIR/checker.out"
    case $rc in
        0) verdict=linearizable ;;
        1) verdict="NOT LINEARIZABLE"; ft_fail "history not linearizable" ;;
        3) verdict="unknown (search budget)" ;;
        *) verdict="checker error $rc"; ft_fail "checker error" ;;
    esac
    echo "==== verdict: $verdict; $FT_FAILED failed checks"
    if [ "$FT_FAILED" -gt 0 ]; then
        echo "---- to reproduce (victims follow the leader, so timing may differ):"
        echo "  tests/fault/run.sh --seed $FT_SEED --nodes $FT_N --duration $FT_DURATION --workers $FT_WORKERS --keys $FT_KEYS --hold $FT_HOLD_MIN-$FT_HOLD_MAX --nemeses \"$FT_NEMESES\"$([ "$FT_FUSE" = 1 ] && echo ' --fuse')"
        echo "  schedule (nemesis hold-seconds): $(tr '\n' ';' < "$FT_DIR/schedule" 2>/dev/null)"
        echo "  run dir kept: $FT_DIR"
    fi
    # One machine-readable summary line for the long mode.
    awk -v seed="$FT_SEED" -v n="$FT_N" -v v="$verdict" -v failed="$FT_FAILED" \
        -v faults="$(grep -c ' fault ' "$FT_DIR/faults" 2>/dev/null)" \
        '$1 != 0 { t++ } END { printf "SUMMARY seed=%s nodes=%s ops=%d faults=%s failed=%s verdict=%s\n", seed, n, t, faults, failed, v }' "$FT_DIR/history"
    cat "$FT_DIR/failover" 2>/dev/null
}
