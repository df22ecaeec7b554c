/* Snapshot files in the data directory: taking, receiving, installing and
 * serving them by offset. The bytes inside are the fsm's (snapshot.c). */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "wal_internal.h"

/*
 * Files (all in the data dir):
 *
 *   snapshot.tmp           being built by store_snapshot_take
 *   snapshot.recv-<index>  chunks of snapshot <index> received from a leader
 *                          (one file per snapshot, so a new transfer never
 *                          overwrites one being installed)
 *   snapshot-<index>       the current snapshot; its index is also in meta
 *                          "snap"
 *   <index> is 16 lower-case hex digits.
 *
 * Ordering. take: build tmp (fsynced by the fsm) -> rename -> fsync dir ->
 * record "snap" in a synced txn. A crash before the txn leaves a file whose
 * index is not the recorded one: removed at next open. install: the fsm
 * restores from snapshot.recv-<index> inside the batch's txn, which also
 * discards the log (the WAL's marks) and records "snap"; after the commit
 * (synced), that file is renamed
 * to its final name. A crash in between is finished at the next open
 * (store__snap_recover).
 */

#define SNAP_PREFIX "snapshot-"
#define RECV_PREFIX "snapshot.recv-"

static void snap_name(char *buf, raft_index index)
{
    snprintf(buf, 64, SNAP_PREFIX "%016" PRIx64, index);
}

void store__snap_path(const struct store *s, char *buf, raft_index index)
{
    char name[64];
    snap_name(name, index);
    store__path(s, buf, name);
}

static void recv_path(const struct store *s, char *buf, raft_index index)
{
    char name[64];
    snprintf(name, sizeof name, RECV_PREFIX "%016" PRIx64, index);
    store__path(s, buf, name);
}

int store__sync_dir(struct store *s)
{
    return fsync(s->lock_fd) == 0 ? 0 : -errno;
}

/* Removes snapshot-* files other than `keep`'s, received files of
 * snapshots not newer than `keep`, and snapshot.tmp. */
static void remove_stale(struct store *s, raft_index keep)
{
    char keep_name[64], path[PATH_MAX];
    snap_name(keep_name, keep);
    DIR *d = opendir(s->dir);
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        bool snap = strncmp(n, SNAP_PREFIX, strlen(SNAP_PREFIX)) == 0;
        bool recv = strncmp(n, RECV_PREFIX, strlen(RECV_PREFIX)) == 0 &&
                    strtoull(n + strlen(RECV_PREFIX), NULL, 16) <= keep;
        if ((snap && strcmp(n, keep_name) != 0) || recv ||
            strcmp(n, "snapshot.tmp") == 0) {
            store__path(s, path, de->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

int store__snap_chunk(struct store *s, const struct store_op *op)
{
    char path[PATH_MAX];
    recv_path(s, path, op->snap.index);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    if (op->offset == 0) {
        flags |= O_TRUNC; /* a new transfer starts over */
    }
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        return -errno;
    }
    int rv = store__wal_pwrite(fd, op->chunk.base, op->chunk.len, op->offset);
    if (rv == 0 && fdatasync(fd) != 0) {
        rv = -errno;
    }
    close(fd);
    if (rv == 0 && op->offset == 0) {
        /* The file's creation must be durable too. */
        rv = store__sync_dir(s);
    }
    return rv;
}

int store__snap_install(struct store *s, MDB_txn *txn,
                        const struct raft_snapshot_meta *m)
{
    int rv;
    char path[PATH_MAX];
    raft_index index = 0;
    recv_path(s, path, m->index);
    rv = store__fsm_snapshot_restore(&s->fsm, txn, path, &index);
    if (rv != 0) {
        return rv;
    }
    if (index != m->index) {
        return STORE_ERR_CORRUPT; /* not the snapshot the leader announced */
    }
    /* Thesis §5.3 (Figure 5.3, InstallSnapshot step 7): the whole log is
     * discarded (batch.c records the WAL's marks in this txn); the
     * snapshot's index/term/config take its place. */
    rv = store__meta_snap_put(s, txn, m);
    if (rv == 0) {
        rv = store__meta_conf_put(s, txn, m->index, &m->config);
    }
    return rv;
}

int store__snap_installed(struct store *s, const struct raft_snapshot_meta *m)
{
    char from[PATH_MAX], to[PATH_MAX], name[64];
    recv_path(s, from, m->index);
    snap_name(name, m->index);
    store__path(s, to, name);
    if (rename(from, to) != 0) {
        return -errno;
    }
    int rv = store__sync_dir(s);
    remove_stale(s, m->index);
    return rv;
}

int store__snap_recover(struct store *s)
{
    struct raft_snapshot_meta m;
    char name[64], path[PATH_MAX];
    int rv = store_snapshot_meta(s, &m);
    if (rv != 0) {
        return store__fail(s, rv, "%s: reading snapshot metadata: %s", s->dir,
                           store_strerror(rv));
    }
    if (m.index > 0) {
        snap_name(name, m.index);
        store__path(s, path, name);
        if (access(path, F_OK) != 0) {
            /* Crashed between the install's commit and the rename. */
            store__snap_installed(s, &m);
        }
    }
    remove_stale(s, m.index);
    return 0;
}

int store_snapshot_take(struct store *s, struct raft_snapshot_meta *out)
{
    char tmp[PATH_MAX], path[PATH_MAX], name[64];
    struct raft_snapshot_meta m, cur;
    raft_index conf_index;
    MDB_txn *txn;
    int rv;

    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    memset(&m, 0, sizeof m);
    raft_index applied = store__applied(s, txn);
    rv = store__meta_snap_get(s, txn, &cur);
    if (rv != 0) {
        goto abort;
    }
    if (applied == 0) {
        rv = STORE_ERR_NO_SNAPSHOT;
        goto abort;
    }
    if (applied == cur.index) {
        *out = cur; /* nothing applied since: the current one is it */
        goto abort;
    }
    /* The applied entry is still in the log (compaction stops at the
     * snapshot); the fsm's own record of its term is the fallback. */
    if (store__log_term(s, applied, &m.term) != 0) {
        m.term = store__fsm_applied_term(&s->fsm, txn);
    }
    if (rv == 0) {
        rv = store__meta_conf_get(s, txn, &conf_index, &m.config);
    }
    if (rv != 0) {
        goto abort;
    }
    /* One read txn: the fsm's state, the term and the configuration are
     * all as of `applied`, while the writer keeps committing (MVCC). */
    store__path(s, tmp, "snapshot.tmp");
    rv = store__fsm_snapshot_build(&s->fsm, txn, tmp, &m.index, &m.size);
    mdb_txn_abort(txn);
    if (rv != 0) {
        unlink(tmp);
        return rv;
    }
    assert(m.index == applied);
    snap_name(name, m.index);
    store__path(s, path, name);
    if (rename(tmp, path) != 0) {
        rv = -errno;
        unlink(tmp);
        return rv;
    }
    rv = store__sync_dir(s);
    if (rv != 0) {
        return rv;
    }
    rv = store__txn_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = store__meta_snap_put(s, txn, &m);
    if (rv != 0) {
        goto abort;
    }
    rc = mdb_txn_commit(txn);
    if (rc == 0) {
        rc = mdb_env_sync(s->env, 1);
    }
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    /* A rebuild starts from this snapshot from now on (durable.c); only
     * then may the previous one go. */
    struct store_state st = s->state;
    st.snap = m;
    rv = store__state_write(s, &st);
    if (rv != 0) {
        return rv;
    }
    remove_stale(s, m.index);
    *out = m;
    return 0;
abort:
    mdb_txn_abort(txn);
    return rv;
}

int store_snapshot_read(struct store *s, raft_index index, uint64_t offset,
                        void *buf, uint32_t len)
{
    char name[64], path[PATH_MAX];
    snap_name(name, index);
    store__path(s, path, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? STORE_ERR_NO_SNAPSHOT : -errno;
    }
    size_t done = 0;
    int rv = 0;
    if (len > INT_MAX) {
        len = INT_MAX; /* the count is returned as an int */
    }
    while (done < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
                          (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rv = -errno;
            break;
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    close(fd);
    return rv != 0 ? rv : (int)done;
}
