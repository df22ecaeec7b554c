#!/usr/bin/env bash
# Through real mounts of a 3-node cluster: write on one node and read on the
# others; rm and ls; mkdir/rmdir; chmod, touch, truncate; symlinks; sed -i;
# an editor-style save; git init/add/commit; the value limit (EFBIG, nothing
# changed); names over 255 bytes; read-only xattrs; hard links and devices
# refused; a subtree mount (root=); a stale mount of a killed daemon cleaned
# at restart.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
it_init
it_start 3 -- --max-value-size 65536
M1=$(it_mnt 1); M2=$(it_mnt 2); M3=$(it_mnt 3)
T="timeout 20"
PY=$(command -v /usr/bin/python3 || command -v python3)

# errno NAME of a python snippet's OSError ("ok" if none), run in dir $1.
py_errno() {
    local dir=$1; shift
    (cd "$dir" && $T "$PY" -c "
import errno, os, sys
try:
$1
    print('ok')
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
")
}

# --- write on 1, read on 2 and 3
$T bash -c "echo hello > '$M1/k'"
check_eq "node 2 reads what node 1 wrote" hello "$($T cat "$M2/k")"
check_eq "node 3 reads what node 1 wrote" hello "$($T cat "$M3/k")"
$T bash -c "echo again > '$M3/k'"
check_eq "overwrite on 3 read on 1" again "$($T cat "$M1/k")"
check_eq "the file has the exact size" 6 "$(stat -c %s "$M2/k")"
check_eq "raftfsctl sees the mount's file" again "$(ctl 2 get k)"

# --- ls and rm
for i in 1 2 3; do $T bash -c "echo v$i > '$(it_mnt $i)/f$i'"; done
check_eq "ls on node 2 lists every file" "f1 f2 f3 k" "$(ls "$M2" | xargs)"
check "rm on node 3" $T rm "$M3/f2"
check_eq "ls on node 1 after rm" "f1 f3 k" "$(ls "$M1" | xargs)"
check_eq "rm of a missing file is ENOENT" ENOENT "$(py_errno "$M1" "    os.unlink('f2')")"
check_eq "cat of a removed file fails" 1 "$($T cat "$M2/f2" >/dev/null 2>&1; echo $?)"

# --- directories
check "mkdir -p on node 1" $T mkdir -p "$M1/a/b/c"
$T bash -c "echo deep > '$M2/a/b/c/file'"
check_eq "nested file on node 3" deep "$($T cat "$M3/a/b/c/file")"
check_eq "rmdir of a non-empty dir is ENOTEMPTY" ENOTEMPTY "$(py_errno "$M3" "    os.rmdir('a/b/c')")"
check_eq "mkdir of an existing dir is EEXIST" EEXIST "$(py_errno "$M2" "    os.mkdir('a')")"
check_eq "rmdir of a file is ENOTDIR" ENOTDIR "$(py_errno "$M2" "    os.rmdir('k')")"
check_eq "a file as a directory is ENOTDIR" ENOTDIR "$(py_errno "$M2" "    open('k/x', 'w')")"
check_eq "writing a directory is EISDIR" EISDIR "$(py_errno "$M2" "    open('a', 'w')")"
check "rm -r on node 2" $T rm -r "$M2/a"
check_eq "the tree is gone on node 1" "" "$(ls "$M1" | grep -x a)"
$T mkdir "$M1/d1"; $T bash -c "echo inside > '$M1/d1/x'"
check "mv of a directory" $T mv "$M2/d1" "$M2/d2"
check_eq "its content moved with it" inside "$($T cat "$M3/d2/x")"

# --- attributes
$T bash -c "echo attrs > '$M1/at'"
check "chmod on node 1" $T chmod 600 "$M1/at"
check_eq "mode seen on node 2" 600 "$(stat -c %a "$M2/at")"
check "touch -d on node 2" $T touch -d '2020-01-02 03:04:05' "$M2/at"
check_eq "mtime seen on node 3" "2020-01-02 03:04:05" "$(date -u -d @"$(stat -c %Y "$M3/at")" '+%Y-%m-%d %H:%M:%S')"
check "truncate -s 2 on node 3" $T truncate -s 2 "$M3/at"
check_eq "truncated content on node 1" at "$($T cat "$M1/at")"
check "truncate -s 0" $T truncate -s 0 "$M1/at"
check_eq "empty file" 0 "$(stat -c %s "$M2/at")"
$T bash -c "echo 12345 > '$M1/tr'; : > '$M1/tr'"
check_eq "a lone O_TRUNC (: > f) empties the file" 0 "$(stat -c %s "$M1/tr")"
check_eq "... on the other nodes too" 0 "$(stat -c %s "$M3/tr")"
check "touch creates" $T touch "$M2/new"
check_eq "a new empty file" "0" "$(stat -c %s "$M1/new")"

# --- a new file (O_CREAT without O_EXCL) appears with its content, never
# empty first: it exists nowhere until the handle publishes (flush, fsync,
# close), and then with what was written.
check_eq "deferred create: invisible until published, then whole" ok "$(py_errno "$M1" "
    fd = os.open('dc', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    assert not os.path.exists('$M2/dc'), 'visible on node 2 before a write'
    assert 'dc' not in os.listdir('.'), 'listed before a write'
    assert os.fstat(fd).st_size == 0
    os.write(fd, b'content')
    assert os.fstat(fd).st_size == 7, 'fstat sees the buffer'
    assert not os.path.exists('$M3/dc'), 'visible before a flush'
    os.fsync(fd)
    assert open('$M3/dc').read() == 'content', 'fsync published it'
    os.write(fd, b'+more')
    os.close(fd)
    assert open('$M2/dc').read() == 'content+more'
    assert os.stat('$M2/dc').st_mode & 0o777 == 0o640")"
check_eq "fchmod and futimens on a new file before any write" ok "$(py_errno "$M2" "
    fd = os.open('dc2', os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o604)
    os.utime(fd, (1000000000, 1000000000))
    assert os.stat('$M1/dc2').st_mode & 0o777 == 0o604, 'mode'
    assert int(os.stat('$M3/dc2').st_mtime) == 1000000000, 'mtime'
    os.write(fd, b'x')
    os.close(fd)
    assert open('$M1/dc2').read() == 'x'")"
check "echo >> creates a file" $T bash -c "echo l1 >> '$M3/dclog'; echo l2 >> '$M1/dclog'"
check_eq "... with both lines" "l1 l2" "$($T cat "$M2/dclog" | xargs)"
check_eq "an O_EXCL create exists at open (the log decides the winner)" ok "$(py_errno "$M1" "
    fd = os.open('dcx', os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    assert os.path.exists('$M2/dcx')
    os.close(fd)")"
# close(2) does not wait for the release that makes it: reads on the same
# mount do (so the stat on node 2 is after the commit), other nodes' reads
# after that see it.
check_eq "an abandoned new file (nothing written, closed) exists empty" 0 "$($T bash -c "exec 3> '$M2/dce'; exec 3>&-"; stat -c %s "$M2/dce")"
check_eq "... on the other nodes too" 0 "$(stat -c %s "$M3/dce")"

# --- symlinks, hard links, devices
check "ln -s" $T ln -s k "$M1/sl"
check_eq "readlink on node 2" k "$(readlink "$M2/sl")"
check_eq "cat through the link" again "$($T cat "$M3/sl")"
check_eq "hard links are EPERM" EPERM "$(py_errno "$M1" "    os.link('k', 'hl')")"
check_eq "FIFOs are EPERM" EPERM "$(py_errno "$M1" "    os.mkfifo('fifo')")"
check_eq "devices are EPERM" EPERM "$(py_errno "$M1" "    os.mknod('dev', 0o600 | 0o020000, os.makedev(1, 3))")"

# --- sed -i, editor-style save
printf 'one\ntwo\nthree\n' > "$IT_DIR/src"; $T cp "$IT_DIR/src" "$M1/conf"
check "sed -i on node 2" $T sed -i 's/two/TWO/' "$M2/conf"
check_eq "sed -i result on node 3" "one TWO three" "$($T cat "$M3/conf" | xargs)"
check_eq "editor save: temp, fsync, rename" ok "$(py_errno "$M3" "
    fd = os.open('.conf.swp', os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b'saved by editor\n'); os.fsync(fd); os.close(fd)
    os.rename('.conf.swp', 'conf')")"
check_eq "the saved file on node 1" "saved by editor" "$($T cat "$M1/conf")"
check_eq "no temp file left" "" "$(ls -a "$M2" | grep swp)"
check_eq "fsync returns the commit (sync FILE)" ok "$(py_errno "$M2" "
    fd = os.open('synced', os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b'x'); os.fsync(fd)
    assert open('$M3/synced').read() == 'x'
    os.close(fd)")"

# --- git inside the mount
if command -v git >/dev/null; then
    (
        cd "$M1" && mkdir repo && cd repo &&
        $T git init -q . && git config user.email t@example.com &&
        git config user.name test && echo content > file &&
        $T git add file && $T git commit -qm first &&
        echo more >> file && $T git commit -qam second
    ) >"$IT_DIR/git.log" 2>&1
    check_eq "git init/add/commit in the mount" 0 $?
    check_eq "git log on node 2" 2 "$(cd "$M2/repo" && $T git log --oneline | wc -l)"
    check_eq "git fsck on node 3" 0 "$(cd "$M3/repo" && $T git fsck >/dev/null 2>&1; echo $?)"
    check_eq "git status clean on node 3" "" "$(cd "$M3/repo" && $T git status --porcelain)"
else
    it_log "skip: git not installed"
fi

# --- the value limit (64 KiB here)
$T bash -c "echo before > '$M1/big'"
check_eq "a value at the limit" ok "$(py_errno "$M1" "
    with open('atlimit', 'wb') as f: f.write(b'x' * 65536)")"
check_eq "its size on node 2" 65536 "$(stat -c %s "$M2/atlimit")"
check_eq "a value over the limit is EFBIG" EFBIG "$(py_errno "$M1" "
    with open('big', 'wb') as f: f.write(b'x' * 65537)")"
check_eq "... and nothing changed" before "$($T cat "$M2/big")"
check_eq "EFBIG through writes in pieces" EFBIG "$(py_errno "$M2" "
    fd = os.open('big', os.O_WRONLY | os.O_TRUNC)
    try:
        for i in range(20): os.write(fd, b'y' * 8192)
    finally:
        os.close(fd)")"
check_eq "... and nothing changed either" before "$($T cat "$M3/big")"
check_eq "appending over the limit is EFBIG" EFBIG "$(py_errno "$M3" "
    with open('atlimit', 'ab') as f: f.write(b'z')")"
check_eq "truncate over the limit is EFBIG" EFBIG "$(py_errno "$M3" "
    os.truncate('big', 65537)")"

# --- names
long=$(printf 'n%.0s' $(seq 1 256)); ok255=${long:1}
check_eq "a 256-byte name is ENAMETOOLONG" ENAMETOOLONG "$(py_errno "$M1" "    open('$long', 'w')")"
check_eq "mkdir with a 256-byte name" ENAMETOOLONG "$(py_errno "$M1" "    os.mkdir('$long')")"
check_eq "a 255-byte name works" ok "$(py_errno "$M1" "    open('$ok255', 'w').write('x')")"
check_eq "and is listed on node 2" 1 "$(ls "$M2" | grep -cx "$ok255")"

# --- xattrs
rev=$(getfattr --only-values -n user.raftfs.revision "$M2/k" 2>/dev/null)
check "user.raftfs.revision is a number" test -n "$rev" -a "$rev" -gt 0
crev=$(getfattr --only-values -n user.raftfs.create_revision "$M3/k" 2>/dev/null)
check "create_revision <= revision" test -n "$crev" -a "$crev" -le "$rev"
check_eq "the same revision on every node" "$rev" "$(getfattr --only-values -n user.raftfs.revision "$M1/k" 2>/dev/null)"
leader=$(it_wait_leader 10)
check_eq "user.raftfs.leader" "$leader" "$(getfattr --only-values -n user.raftfs.leader "$M1/k" 2>/dev/null)"
check "user.raftfs.term is a number" test "$(getfattr --only-values -n user.raftfs.term "$M1/k" 2>/dev/null)" -ge 1
check_eq "xattrs are read-only" EPERM "$(py_errno "$M1" "    os.setxattr('k', 'user.raftfs.revision', b'1')")"
check_eq "other xattrs are not supported" ENOTSUP "$(py_errno "$M1" "    os.setxattr('k', 'user.other', b'1')")"

# --- statfs
check "df works" $T sh -c "df '$M1' >/dev/null"

# --- a subtree mount and a stale mount left by kill -9
$T mkdir -p "$M1/sub/tree"; $T bash -c "echo in-subtree > '$M1/sub/tree/f'"
it_kill 3 KILL
check_eq "node 3's mount is stale after kill -9" ENOTCONN "$(py_errno / "    os.stat('$M3')")"
it_restart 3 --mount-options root=sub/tree,uid=1234,gid=5678,allow_other,default_permissions
deadline=$((SECONDS + 20))
until [ "$(cat "$M3/f" 2>/dev/null)" = in-subtree ] || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
check_eq "restart cleaned the stale mount and mounted the subtree" in-subtree "$($T cat "$M3/f")"
$T bash -c "echo from-3 > '$M3/g'"
check_eq "a write in the subtree lands under sub/tree" from-3 "$($T cat "$M1/sub/tree/g")"
check_eq "the subtree root lists its files" "f g" "$(ls "$M3" | xargs)"
check_eq "uid= and gid= are the owner shown" 1234:5678 "$(stat -c %u:%g "$M3/f")"
chmod a+x "$IT_DIR" "$IT_DIR/c" "$IT_DIR/c/mnt"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
check_eq "allow_other lets another user read" in-subtree "$($T $NOBODY cat "$M3/f" 2>&1)"
check "default_permissions refuses another user's write" \
    $T $NOBODY sh -c "! echo x > '$M3/f' 2>/dev/null"
check "without allow_other another user is refused" $T $NOBODY sh -c "! ls '$M1' >/dev/null 2>&1"

# --- a bad mount option is refused clearly
mkdir -p "$IT_DIR/m4"
p4=$(it_pick_ports 1)
$T "$RAFTFSD" --id 1 --data-dir "$IT_DIR/d4" --peers 1=127.0.0.1:$((p4 + 1)) \
    --client-addr 127.0.0.1:$p4 --mount "$IT_DIR/m4" \
    --mount-options stale,bogus >"$IT_DIR/m4.log" 2>&1
check_eq "an unknown mount option stops the daemon" 1 $?
check "... with a clear message" grep -q "unknown mount option 'bogus'" "$IT_DIR/m4.log"

# --- a full store: ENOSPC, nothing proposed; deletions still work
mkdir -p "$IT_DIR/m5"
p5port=$(it_pick_ports 1)
setsid "$RAFTFSD" --id 1 --data-dir "$IT_DIR/d5" --peers 1=127.0.0.1:$((p5port + 1)) \
    --client-addr 127.0.0.1:$p5port --mount "$IT_DIR/m5" \
    --map-size-mb 16 --max-value-size 1048576 >"$IT_DIR/m5.log" 2>&1 </dev/null &
p5=$!
trap 'rc=$?; kill "$p5" 2>/dev/null; (exit $rc); it_cleanup' EXIT
deadline=$((SECONDS + 20))
until { grep -q " $IT_DIR/m5 fuse" /proc/mounts && $T sh -c "echo up > '$IT_DIR/m5/up'"; } 2>/dev/null ||
      [ $SECONDS -ge $deadline ]; do sleep 0.2; done
res=$(cd "$IT_DIR/m5" && $T "$PY" -c "
import errno, os
for i in range(64):
    try:
        with open('f%d' % i, 'wb') as f: f.write(os.urandom(1000000))
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno)); break
else:
    print('never full')")
check_eq "a full store refuses writes with ENOSPC" ENOSPC "$res"
check "rm works on a full store" $T sh -c "rm '$IT_DIR'/m5/f0 '$IT_DIR'/m5/f1"
check "and makes room for a write" $T sh -c "head -c 100000 /dev/zero > '$IT_DIR/m5/g'"
kill -TERM "$p5"; wait "$p5"
check_eq "the single node stops cleanly" 0 $?

it_done
