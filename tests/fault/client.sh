# Client workers of the fault harness, sourced by run.sh: each records a history.
#
# A worker is bound to one node and loops until $FT_DIR/stop exists, doing
# one operation at a time on a random key and appending one line per
# operation to $FT_DIR/hist.W in lincheck.h's format:
#   PROC INVOKE_US COMPLETE_US KIND KEY ARG RESULT OUT
# Values are unique tokens (w<worker>.<seq>), so a read names its write.
#
# Results follow the exit-code contract of raftfsctl (0 ok; 1 the op
# failed, a valid result such as ENOENT; 3 unavailable) and the errno
# contract of the mount (DESIGN.md: EIO surely not applied, ETIMEDOUT may
# still apply):
#   read    0 -> ok =V; ENOENT -> ok ~; anything else -> unknown (dropped)
#   write   0 -> ok; 1 -> fail; "no endpoint reachable" (nothing sent),
#           EIO, ENOTCONN (dead mount) -> fail; everything else -> unknown
#   delete  0 -> ok (deleted); ENOENT -> ok ~; as write otherwise
#   create  (mount: set -C) 0 -> ok ~ (created); EEXIST -> ok =
#   append  (mount: >>) as write

# Classifies a failed write-like op from its exit code and stderr text.
ft_classify_write() { # RC ERRFILE -> prints fail or unknown
    local rc=$1 errf=$2
    if [ "$rc" = 1 ] && [ "${FT_VIA:-ctl}" = ctl ]; then echo fail; return; fi
    if grep -qE 'no endpoint reachable|Input/output error|Transport endpoint is not connected' "$errf" 2>/dev/null; then
        echo fail
    else
        echo unknown
    fi
}

ft_is_enoent() { grep -q 'No such file or directory' "$1" 2>/dev/null; }
# EEXIST, or bash's noclobber refusal: with set -C bash first stats the
# path and refuses an existing regular file without calling open at all;
# that stat is a (linearizable) lookup that saw the key present.
ft_is_eexist() { grep -qE 'File exists|cannot overwrite existing file' "$1" 2>/dev/null; }

# One raftfsctl operation. Sets kind arg res out.
ft_op_ctl() {
    local node=$1 r=$2 k=$3 v=$4 errf=$5 rc val
    local ctl=("$RAFTFSCTL" --endpoint "$(ft_client_addr "$node")" --timeout-ms "$FT_OP_MS")
    if [ "$r" -lt 50 ]; then
        kind=r arg=-
        val=$(timeout -s KILL $((FT_OP_MS / 1000 + 5)) "${ctl[@]}" get "$k" 2>"$errf"); rc=$?
        if [ $rc = 0 ]; then res=ok out="=${val//[[:space:]]/_}"
        elif [ $rc = 1 ] && ft_is_enoent "$errf"; then res=ok out="~"
        else res=unknown out=-; fi
    elif [ "$r" -lt 85 ]; then
        kind=w arg="=$v" out=-
        timeout -s KILL $((FT_OP_MS / 1000 + 5)) "${ctl[@]}" put "$k" "$v" >/dev/null 2>"$errf"; rc=$?
        if [ $rc = 0 ]; then res=ok; else res=$(ft_classify_write $rc "$errf"); fi
    else
        kind=d arg=-
        timeout -s KILL $((FT_OP_MS / 1000 + 5)) "${ctl[@]}" rm "$k" >/dev/null 2>"$errf"; rc=$?
        if [ $rc = 0 ]; then res=ok out="="
        elif [ $rc = 1 ] && ft_is_enoent "$errf"; then res=ok out="~"
        else res=$(ft_classify_write $rc "$errf") out=-; fi
    fi
}

# One operation through node's FUSE mount. Sets kind arg res out.
ft_op_fuse() {
    local node=$1 r=$2 k=$3 v=$4 errf=$5 rc val f
    local m="$FT_DIR/mnt/$node" t=$((FT_OP_MS / 1000 + 5))
    f="$m/$k"
    if [ "$r" -lt 45 ]; then
        kind=r arg=-
        val=$(timeout -s KILL $t cat "$f" 2>"$errf"); rc=$?
        if [ $rc = 0 ]; then res=ok out="=${val//[[:space:]]/_}"
        elif ft_is_enoent "$errf"; then res=ok out="~"
        else res=unknown out=-; fi
        return
    fi
    if [ "$r" -lt 70 ]; then
        kind=w arg="=$v" out=-
        timeout -s KILL $t bash -c 'printf %s "$2" > "$1"' _ "$f" "$v" 2>"$errf"; rc=$?
    elif [ "$r" -lt 80 ]; then
        kind=d arg=- out=-
        timeout -s KILL $t rm "$f" 2>"$errf"; rc=$?
        if [ $rc = 0 ]; then res=ok out="="; return; fi
        if ft_is_enoent "$errf"; then res=ok out="~"; return; fi
    elif [ "$r" -lt 90 ]; then
        kind=x arg="=$v" out=-
        timeout -s KILL $t bash -c 'set -C; printf %s "$2" > "$1"' _ "$f" "$v" 2>"$errf"; rc=$?
        if [ $rc = 0 ]; then res=ok out="~"; return; fi
        if ft_is_eexist "$errf"; then res=ok out="="; return; fi
    else
        kind=a arg="=$v;" out=-
        timeout -s KILL $t bash -c 'printf %s "$2" >> "$1"' _ "$f" "$v;" 2>"$errf"; rc=$?
    fi
    if [ $rc = 0 ]; then res=ok; else res=$(ft_classify_write $rc "$errf"); fi
}

# docs/semantics.md: a write or append through the mount that creates the
# file makes it in one proposal with its content (a deferred create), so no
# reader ever sees it empty first: those are recorded as they are. An
# O_EXCL create (set -C) is decided by the log at open, before the content:
# one that won is an ok create of "" plus an ok write of the value; one
# that failed, both maybe (unknown: both unknown).
ft_record_excl_create() {
    local m=maybe
    [ "$res" = unknown ] && m=unknown
    if [ "$res" = ok ] && [ "$out" = "~" ]; then
        echo "$w $t0 $t1 x $k = ok ~"
        echo "$w $t0 $t1 w $k $arg ok -"
    elif [ "$res" = ok ]; then
        echo "$w $t0 $t1 x $k $arg ok ="
    else
        echo "$w $t0 $t1 x $k = $m -"
        echo "$w $t0 $t1 w $k $arg $m -"
    fi
}

# ft_worker W NODE VIA(ctl|fuse): the loop; runs in the background.
ft_worker() {
    local w=$1 node=$2 via=$3 seq=0 k r t0 t1 kind arg res out
    local hist="$FT_DIR/hist.$w" errf="$FT_DIR/err.$w"
    FT_VIA=$via
    RANDOM=$((FT_SEED * 1000 + w))
    while [ ! -e "$FT_DIR/stop" ]; do
        k="k$((RANDOM % FT_KEYS))"
        r=$((RANDOM % 100))
        seq=$((seq + 1))
        if [ "$via" = fuse ] && ! mountpoint -q "$FT_DIR/mnt/$node"; then
            sleep 0.2   # node down: never write into the bare mountpoint
            continue
        fi
        t0=${EPOCHREALTIME/./}
        if [ "$via" = fuse ]; then
            ft_op_fuse "$node" "$r" "$k" "w$w.$seq" "$errf"
        else
            ft_op_ctl "$node" "$r" "$k" "w$w.$seq" "$errf"
        fi
        t1=${EPOCHREALTIME/./}
        if [ "$via" = fuse ] && ! mountpoint -q "$FT_DIR/mnt/$node"; then
            # Unmounted while the op ran (a nemesis stopped the node): it
            # may have gone to the bare mountpoint instead of the cluster.
            res=unknown out=-
        fi
        if [ "$via" = fuse ] && [ "$kind" = x ]; then
            ft_record_excl_create >> "$hist"
        else
            echo "$w $t0 $t1 $kind $k $arg $res $out" >> "$hist"
        fi
        [ "${FT_THINK_MS:-0}" -gt 0 ] && sleep "0.$(printf %03d "$FT_THINK_MS")"
        if [ "$res" != ok ]; then
            echo "$t0 $kind $res $(head -c 200 "$errf" | tr '\n' ' ')" >> "$FT_DIR/errors.$w"
            sleep 0.$((RANDOM % 3 + 1))   # back off: fewer open unknowns
        fi
    done
}

# ft_final_reads: after healing, reads every key through every live node
# (linearizable path) into the history as process 0; fails when a node
# cannot answer. Also writes each node's view to $FT_DIR/final.I.
ft_final_reads() {
    local i k val rc t0 t1 bad=0
    for i in $FT_MEMBERS; do
        : > "$FT_DIR/final.$i"
        for ((k = 0; k < FT_KEYS; k++)); do
            t0=${EPOCHREALTIME/./}
            val=$("$RAFTFSCTL" --endpoint "$(ft_client_addr "$i")" --timeout-ms 5000 get "k$k" 2>"$FT_DIR/err.final"); rc=$?
            t1=${EPOCHREALTIME/./}
            if [ $rc = 0 ]; then
                echo "0 $t0 $t1 r k$k - ok =${val//[[:space:]]/_}" >> "$FT_DIR/hist.final"
                echo "k$k =$val" >> "$FT_DIR/final.$i"
            elif [ $rc = 1 ] && ft_is_enoent "$FT_DIR/err.final"; then
                echo "0 $t0 $t1 r k$k - ok ~" >> "$FT_DIR/hist.final"
                echo "k$k ~" >> "$FT_DIR/final.$i"
            else
                echo "k$k ERROR $(cat "$FT_DIR/err.final")" >> "$FT_DIR/final.$i"
                bad=1
            fi
        done
        "$RAFTFSCTL" --endpoint "$(ft_client_addr "$i")" --timeout-ms 5000 ls >> "$FT_DIR/final.$i" 2>&1 || bad=1
    done
    return $bad
}
