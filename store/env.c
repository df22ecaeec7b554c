/* Opening, validating and closing the store's LMDB environment and WAL. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/*
 * Node metadata in the "meta" DBI (keys are ASCII strings):
 *
 *   "format"  -> u32 BE  STORE_FORMAT_VERSION
 *   "cluster" -> bytes   the cluster id (1..STORE_CLUSTER_MAX, no NUL)
 *   "node"    -> u64 BE  the node id
 *
 * They are written once, in the transaction that creates the store, and
 * checked at every open before anything is written.
 *
 * LMDB flags, and what a commit costs:
 *
 *   MDB_NOTLS       read txns are not tied to threads (loop thread reads
 *                   while the writer thread commits).
 *   MDB_NOMETASYNC  a commit writes the dirty pages, fdatasyncs them, then
 *                   writes the meta page WITHOUT syncing it. LMDB documents
 *                   this as keeping the environment intact (ACI) on power
 *                   loss: only the last transaction may be lost. We make a
 *                   batch durable by calling mdb_env_sync(env, 1) after the
 *                   commit, which fdatasyncs the meta page.
 *
 *   MDB_NOSYNC      set by store__mark_set once the store is open and a
 *                   power loss can be detected (durable.c): no commit
 *                   syncs; the durable ones are followed by
 *                   mdb_env_sync(env, 1), one fdatasync of everything.
 *
 * With MDB_NOMETASYNC alone (no boot id to detect a power loss with, and
 * during store_open) a durable LMDB commit costs 2 fdatasyncs (data pages,
 * then the meta page: the ordering is what keeps LMDB intact on power
 * loss) and an apply/compact-only commit costs 1. With MDB_NOSYNC an
 * apply costs none and a durable commit 1, but a power loss can leave
 * data.mdb torn: durable.c then rebuilds it from raft.state, the snapshot
 * and the WAL. The Raft log is not in LMDB (format 2): appending entries
 * is one pwrite + one fdatasync of a preallocated WAL segment (wal.h), and
 * LMDB is made durable only for the rare batches that change the hard
 * state or install a snapshot.
 */

static const char *err_text(int rv)
{
    switch (rv) {
#define STORE_ERR_CASE(name, num, text)                                        \
    case -(num):                                                               \
        return text;
        STORE_ERRORS(STORE_ERR_CASE)
#undef STORE_ERR_CASE
    default:
        return NULL;
    }
}

const char *store_strerror(int rv)
{
    const char *t = err_text(rv);
    if (t != NULL) {
        return t;
    }
    if (rv <= -1000 && rv > -2000) {
        return raft_strerror(rv);
    }
    if (rv < 0) {
        return strerror(-rv);
    }
    return "success";
}

int store__lmdb_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
        return -ENOSPC;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_BAD_DBI:
        return STORE_ERR_CORRUPT;
    case MDB_READERS_FULL:
        return -EAGAIN;
    default:
        if (rc > 0 && rc < 4096) {
            return -rc;
        }
        return -EIO;
    }
}

int store__fail(struct store *s, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return rv;
}

void store_options_default(struct store_options *o)
{
    memset(o, 0, sizeof *o);
    o->map_size = STORE_DEFAULT_MAP_SIZE;
    o->max_value = STORE_DEFAULT_MAX_VALUE;
}

const char *store_errmsg(const struct store *s)
{
    return s->errmsg;
}

void store__path(const struct store *s, char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", s->dir, name);
}

static int get_key(MDB_txn *txn, MDB_dbi dbi, const char *key, MDB_val *v)
{
    MDB_val k = {strlen(key), (void *)key};
    return mdb_get(txn, dbi, &k, v);
}

static int put_key(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *val,
                   size_t len)
{
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {len, (void *)val};
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* Compares the identity records with the options. Read-only. */
static int check_identity(struct store *s, MDB_txn *txn, MDB_dbi meta,
                          const struct store_options *o)
{
    MDB_val v;
    int rc = get_key(txn, meta, "format", &v);
    if (rc != 0 || v.mv_size != 4) {
        return store__fail(s, STORE_ERR_NOT_RAFTFS,
                           "%s: not a raftfs data directory (no format "
                           "record)",
                           s->dir);
    }
    uint32_t format = store__get_be32(v.mv_data);
    if (format == 1) {
        return store__fail(s, STORE_ERR_FORMAT,
                           "%s: on-disk format version 1 (Raft log in "
                           "LMDB), this program reads only version %u (Raft "
                           "log in WAL segments); there is no in-place "
                           "upgrade: remove the member, wipe this directory "
                           "and add it back so it gets a snapshot",
                           s->dir, STORE_FORMAT_VERSION);
    }
    if (format != STORE_FORMAT_VERSION) {
        return store__fail(s, STORE_ERR_FORMAT,
                           "%s: on-disk format version %u, this program "
                           "reads only version %u",
                           s->dir, format, STORE_FORMAT_VERSION);
    }
    rc = get_key(txn, meta, "cluster", &v);
    if (rc != 0) {
        return store__fail(s, STORE_ERR_CORRUPT, "%s: no cluster id record",
                           s->dir);
    }
    size_t len = strlen(o->cluster_id);
    if (v.mv_size != len || memcmp(v.mv_data, o->cluster_id, len) != 0) {
        int n =
            v.mv_size > STORE_CLUSTER_MAX ? STORE_CLUSTER_MAX : (int)v.mv_size;
        return store__fail(s, STORE_ERR_FOREIGN_CLUSTER,
                           "%s belongs to cluster \"%.*s\", not \"%s\"", s->dir,
                           n, (const char *)v.mv_data, o->cluster_id);
    }
    rc = get_key(txn, meta, "node", &v);
    if (rc != 0 || v.mv_size != 8) {
        return store__fail(s, STORE_ERR_CORRUPT, "%s: no node id record",
                           s->dir);
    }
    uint64_t node = store__get_be64(v.mv_data);
    if (node != o->node_id) {
        return store__fail(
            s, STORE_ERR_FOREIGN_NODE, "%s belongs to node %llu, not node %llu",
            s->dir, (unsigned long long)node, (unsigned long long)o->node_id);
    }
    return 0;
}

/*
 * Validates an existing data.mdb without modifying anything: read-only and
 * MDB_NOLOCK, so not even lock.mdb is created (we hold the dir's flock, so
 * no other raftfs process writes). Sets *fresh when the environment is
 * empty (a crash before the creating transaction committed).
 */
static int precheck(struct store *s, const struct store_options *o, bool *fresh)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    MDB_stat st;
    int rv = 0;
    int rc = mdb_env_create(&env);
    if (rc != 0) {
        return store__fail(s, store__lmdb_err(rc), "mdb_env_create: %s",
                           mdb_strerror(rc));
    }
    mdb_env_set_maxdbs(env, STORE_MAX_DBS);
    rc = mdb_env_open(env, s->dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0644);
    if (rc != 0) {
        rv = store__fail(s, STORE_ERR_CORRUPT,
                         "%s/data.mdb: not a readable LMDB environment "
                         "(corrupt or foreign file): %s",
                         s->dir, mdb_strerror(rc));
        goto out;
    }
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        rv = store__fail(s, STORE_ERR_CORRUPT, "%s/data.mdb: %s", s->dir,
                         mdb_strerror(rc));
        goto out;
    }
    MDB_dbi main_dbi;
    rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc == 0) {
        rc = mdb_stat(txn, main_dbi, &st);
    }
    if (rc == 0 && st.ms_entries == 0 && o->create) {
        *fresh = true;
        goto out;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc != 0) {
        rv = store__fail(s, STORE_ERR_NOT_RAFTFS,
                         "%s: an LMDB environment without raftfs metadata "
                         "(%s)",
                         s->dir, mdb_strerror(rc));
        goto out;
    }
    rv = check_identity(s, txn, meta, o);
out:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return rv;
}

static int check_options(struct store *s, const struct store_options *o)
{
    if (o->dir == NULL || o->dir[0] == '\0') {
        return store__fail(s, -EINVAL, "no data directory given");
    }
    if (o->cluster_id == NULL || o->cluster_id[0] == '\0' ||
        strlen(o->cluster_id) > STORE_CLUSTER_MAX) {
        return store__fail(s, -EINVAL, "cluster id must be 1..%d bytes",
                           STORE_CLUSTER_MAX);
    }
    if (o->node_id == 0) {
        return store__fail(s, -EINVAL, "node id must not be 0");
    }
    return 0;
}

/* Takes the data dir (creating it if asked) and its flock. */
static int lock_dir(struct store *s, const struct store_options *o)
{
    struct stat st;
    if (stat(s->dir, &st) != 0) {
        if (errno != ENOENT || !o->create) {
            int e = errno;
            return store__fail(s, -e, "%s: %s", s->dir, strerror(e));
        }
        if (mkdir(s->dir, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            return store__fail(s, -e, "mkdir %s: %s", s->dir, strerror(e));
        }
    } else if (!S_ISDIR(st.st_mode)) {
        return store__fail(s, -ENOTDIR, "%s: not a directory", s->dir);
    }
    s->lock_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lock_fd < 0) {
        int e = errno;
        return store__fail(s, -e, "open %s: %s", s->dir, strerror(e));
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(s->lock_fd);
        s->lock_fd = -1;
        if (e == EWOULDBLOCK) {
            return store__fail(s, -EBUSY, "%s is in use by another process",
                               s->dir);
        }
        return store__fail(s, -e, "flock %s: %s", s->dir, strerror(e));
    }
    return 0;
}

int store__txn_begin(struct store *s, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, 0, txn);
    if (rc != 0) {
        *txn = NULL;
        return store__lmdb_err(rc);
    }
    int rv = store__mapres_begin(&s->mapres);
    if (rv != 0) {
        mdb_txn_abort(*txn);
        *txn = NULL;
    }
    return rv;
}

/* Opens the DBIs, writes the identity of a new store, opens the fsm's DBIs:
 * one write transaction, synced. */
static int init_txn(struct store *s, const struct store_options *o, bool fresh)
{
    MDB_txn *txn;
    int rv = store__txn_begin(s, &txn);
    if (rv != 0) {
        return store__fail(s, rv, "%s: begin: %s", s->dir, store_strerror(rv));
    }
    int rc;
    rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta);
    if (rc != 0) {
        rv = store__fail(s, store__lmdb_err(rc), "%s: open DBIs: %s", s->dir,
                         mdb_strerror(rc));
        goto err;
    }
    if (fresh) {
        uint8_t b4[4], b8[8];
        store__put_be32(b4, STORE_FORMAT_VERSION);
        store__put_be64(b8, o->node_id);
        rc = put_key(txn, s->meta, "format", b4, 4);
        if (rc == 0) {
            rc = put_key(txn, s->meta, "cluster", o->cluster_id,
                         strlen(o->cluster_id));
        }
        if (rc == 0) {
            rc = put_key(txn, s->meta, "node", b8, 8);
        }
        if (rc != 0) {
            rv = store__fail(s, store__lmdb_err(rc), "%s: init: %s", s->dir,
                             mdb_strerror(rc));
            goto err;
        }
    } else {
        /* Checked read-only already; this guards against a race with a
         * process that ignored our flock. */
        rv = check_identity(s, txn, s->meta, o);
        if (rv != 0) {
            goto err;
        }
    }
    rv = store__fsm_open(&s->fsm, txn);
    if (rv != 0) {
        store__fail(s, rv, "%s: opening the state machine: %s", s->dir,
                    store_strerror(rv));
        goto err;
    }
    s->fsm.mapres = &s->mapres;
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return store__fail(s, store__lmdb_err(rc), "%s: commit: %s", s->dir,
                           mdb_strerror(rc));
    }
    rc = mdb_env_sync(s->env, 1);
    if (rc != 0) {
        return store__fail(s, store__lmdb_err(rc), "%s: sync: %s", s->dir,
                           mdb_strerror(rc));
    }
    return 0;
err:
    mdb_txn_abort(txn);
    return rv;
}

/* raft.state from data.mdb as it is now. */
static int save_state(struct store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__fail(s, store__lmdb_err(rc), "%s: begin: %s", s->dir,
                           mdb_strerror(rc));
    }
    int rv = store__state_save(s, txn);
    mdb_txn_abort(txn);
    if (rv != 0) {
        return store__fail(s, rv, "%s/raft.state: %s", s->dir,
                           store_strerror(rv));
    }
    return 0;
}

/* True if the data dir holds WAL segments. */
static bool has_wal(const struct store *s)
{
    bool found = false;
    DIR *d = opendir(s->dir);
    if (d == NULL) {
        return false;
    }
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        found = strncmp(de->d_name, "wal-", 4) == 0;
    }
    closedir(d);
    return found;
}

/* Opens and recovers the WAL with the marks recorded in "meta", then
 * deletes what an interrupted compaction or install left behind. */
static int open_wal(struct store *s, size_t seg_size)
{
    MDB_txn *txn;
    raft_index compacted;
    uint64_t dead;
    struct raft_snapshot_meta m;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__fail(s, store__lmdb_err(rc), "%s: begin: %s", s->dir,
                           mdb_strerror(rc));
    }
    int rv = store__meta_wal_get(s, txn, &compacted, &dead);
    if (rv == 0) {
        rv = store__meta_snap_get(s, txn, &m);
    }
    mdb_txn_abort(txn);
    if (rv != 0) {
        return store__fail(s, rv, "%s: reading the WAL marks: %s", s->dir,
                           store_strerror(rv));
    }
    rv = store__wal_open(&s->wal, s->lock_fd, s->dir, seg_size, compacted,
                         dead, s->errmsg, sizeof s->errmsg);
    if (rv != 0) {
        return rv;
    }
    s->wal_open = true;
    store__wal_gc(&s->wal, store__gc_bound(s, compacted, m.index), dead);
    return 0;
}

int store_open(struct store *s, const struct store_options *o)
{
    char path[PATH_MAX];
    struct stat st;
    bool fresh = false;
    int rv;

    memset(s, 0, sizeof *s);
    s->lock_fd = -1;
    rv = check_options(s, o);
    if (rv != 0) {
        return rv;
    }
    s->dir = strdup(o->dir);
    if (s->dir == NULL) {
        return store__fail(s, -ENOMEM, "out of memory");
    }
    s->map_size = o->map_size != 0 ? o->map_size : STORE_DEFAULT_MAP_SIZE;
    s->max_value = o->max_value != 0 ? o->max_value : STORE_DEFAULT_MAX_VALUE;
    s->node_id = o->node_id;
    s->cluster_id = strdup(o->cluster_id);
    s->boot_id_file = o->boot_id_file != NULL ? strdup(o->boot_id_file)
                                              : NULL;
    if (s->cluster_id == NULL ||
        (o->boot_id_file != NULL && s->boot_id_file == NULL)) {
        rv = store__fail(s, -ENOMEM, "out of memory");
        goto err_dir;
    }

    rv = lock_dir(s, o);
    if (rv != 0) {
        goto err_dir;
    }
    /* durable.c: did the machine go down with unsynced commits? */
    bool power_lost = false;
    struct store_state rebuild;
    rv = store__mark_check(s, &power_lost);
    if (rv == 0 && power_lost) {
        rv = store__rebuild_prepare(s, o, &rebuild);
    }
    if (rv != 0) {
        goto err_lock;
    }
    store__path(s, path, "data.mdb");
    if (power_lost) {
        fresh = true; /* data.mdb is gone; the WAL stays */
    } else if (stat(path, &st) != 0) {
        if (!o->create) {
            rv = store__fail(s, -ENOENT,
                             "%s: no raftfs store here (no data.mdb)", s->dir);
            goto err_lock;
        }
        fresh = true;
    } else if (st.st_size == 0 && o->create) {
        fresh = true; /* a crash inside the very first mdb_env_open */
    } else {
        rv = precheck(s, o, &fresh);
        if (rv != 0) {
            goto err_lock;
        }
    }

    if (fresh && !power_lost && has_wal(s)) {
        /* WAL segments without the LMDB metadata they belong with. */
        rv = store__fail(s, STORE_ERR_NOT_RAFTFS,
                         "%s: WAL segments (wal-*) but no store metadata in "
                         "data.mdb: not opening a half store",
                         s->dir);
        goto err_lock;
    }

    /* A writable map (mapres.c) where data.mdb's blocks can be reserved
     * ahead of it; otherwise LMDB writes its pages with pwrite. */
    unsigned writemap = store__mapres_supported(s->dir) ? MDB_WRITEMAP : 0;
    memset(&s->mapres, 0, sizeof s->mapres);
    int rc = mdb_env_create(&s->env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(s->env, STORE_MAX_DBS);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize(s->env, s->map_size);
    }
    if (rc == 0) {
        rc = mdb_env_open(s->env, s->dir, MDB_NOTLS | MDB_NOMETASYNC | writemap,
                          0644);
    }
    if (rc == 0 && writemap != 0) {
        rc = store__mapres_init(&s->mapres, s->env);
        if (rc != 0) {
            rv = store__fail(s, rc, "%s: data.mdb: %s", s->dir, strerror(-rc));
            goto err_env;
        }
    }
    if (rc != 0) {
        rv = store__fail(
            s, rc == MDB_INVALID ? STORE_ERR_CORRUPT : store__lmdb_err(rc),
            "%s: mdb_env_open: %s", s->dir, mdb_strerror(rc));
        goto err_env;
    }
    /* Reader slots of killed processes would pin old pages forever. */
    int dead;
    mdb_reader_check(s->env, &dead);

    rv = init_txn(s, o, fresh);
    if (rv != 0) {
        goto err_env;
    }
    if (power_lost) {
        rv = store__rebuild(s, &rebuild);
        if (rv != 0) {
            goto err_fsm;
        }
    }
    /* data.mdb is trusted from here: raft.state copies it (a store from
     * before raft.state gets one now), then the mark for this boot goes
     * down before any unsynced commit. */
    rv = save_state(s);
    if (rv == 0) {
        rv = store__mark_set(s);
    }
    if (rv != 0) {
        goto err_fsm;
    }
    rv = store__snap_recover(s);
    if (rv != 0) {
        goto err_fsm;
    }
    rv = open_wal(s, o->wal_segment_size);
    if (rv != 0) {
        goto err_fsm;
    }
    s->errmsg[0] = '\0';
    return 0;

err_fsm:
    store__fsm_close(&s->fsm);
err_env:
    if (s->env != NULL) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
err_lock:
    close(s->lock_fd);
    s->lock_fd = -1;
err_dir:
    free(s->dir);
    s->dir = NULL;
    free(s->cluster_id);
    s->cluster_id = NULL;
    free(s->boot_id_file);
    s->boot_id_file = NULL;
    return rv;
}

void store_close(struct store *s)
{
    if (s->wal_open) {
        store__wal_close(&s->wal);
        s->wal_open = false;
    }
    store__mark_clear(s);
    store__fsm_close(&s->fsm);
    if (s->env != NULL) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
        s->lock_fd = -1;
    }
    free(s->dir);
    s->dir = NULL;
    free(s->cluster_id);
    s->cluster_id = NULL;
    free(s->boot_id_file);
    s->boot_id_file = NULL;
}
