/* Internals of store/ shared by env.c, meta.c, log.c, batch.c, snapfile.c,
 * wal*.c. */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "store.h"

/* Big-endian u64/u32 codec: keys sort numerically under LMDB's memcmp. */
static inline void store__put_be64(void *p, uint64_t v)
{
    uint8_t *b = p;
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t store__get_be64(const void *p)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | b[i];
    }
    return v;
}

static inline void store__put_be32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static inline uint32_t store__get_be32(const void *p)
{
    const uint8_t *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
           ((uint32_t)b[2] << 8) | b[3];
}

/* Maps an LMDB return code to 0, -errno or STORE_ERR_*: MDB_MAP_FULL and
 * MDB_TXN_FULL become -ENOSPC, structural errors STORE_ERR_CORRUPT, other
 * LMDB codes -EIO, and system errno values pass through negated. */
int store__lmdb_err(int rc);

/* Sets s->errmsg (printf-style) and returns rv. */
int store__fail(struct store *s, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* durable.c: raft.state, the unsynced mark, the rebuild after a power
 * loss (see the top of durable.c). */
size_t store__state_encode(const struct store_state *st, uint8_t *buf);
int store__state_decode(const uint8_t *buf, size_t len,
                        struct store_state *st);
/* Writes raft.state durably (and s->state); 0 or -errno. */
int store__state_write(struct store *s, const struct store_state *st);
int store__state_read(struct store *s, struct store_state *st);
/* raft.state from what txn sees in "meta" (identity from s). */
int store__state_save(struct store *s, MDB_txn *txn);
/* *power_lost: a mark from another boot (or none readable now). */
int store__mark_check(struct store *s, bool *power_lost);
/* Writes the mark for this boot and sets s->nosync (unless no boot id is
 * readable: then commits stay synced). */
int store__mark_set(struct store *s);
/* Clean close: a full sync, then the mark goes. */
void store__mark_clear(struct store *s);
/* Before the env opens: reads raft.state into *st, checks identity and the
 * snapshot file, removes data.mdb. */
int store__rebuild_prepare(struct store *s, const struct store_options *o,
                           struct store_state *st);
/* In the fresh env: hard state, marks, snapshot restored; synced. */
int store__rebuild(struct store *s, const struct store_state *st);

/* How far WAL segments may be deleted: the compaction mark, but never past
 * the snapshot in data.mdb nor the one a rebuild would start from. */
static inline raft_index store__gc_bound(const struct store *s,
                                         raft_index compacted,
                                         raft_index snap)
{
    raft_index b = compacted < snap ? compacted : snap;
    return b < s->state.snap.index ? b : s->state.snap.index;
}

/* meta.c: the "meta" DBI. Every function works in the caller's txn. */

/* Hard state; 0,0 when absent. */
int store__meta_hard_get(struct store *s, MDB_txn *txn, raft_term *term,
                         raft_id *vote);
int store__meta_hard_put(struct store *s, MDB_txn *txn, raft_term term,
                         raft_id vote);
/* Snapshot metadata; m->index = 0 when absent. */
int store__meta_snap_get(struct store *s, MDB_txn *txn,
                         struct raft_snapshot_meta *m);
int store__meta_snap_put(struct store *s, MDB_txn *txn,
                         const struct raft_snapshot_meta *m);
/* The last applied configuration: its entry index (0 if none) and the
 * decoded configuration. */
int store__meta_conf_get(struct store *s, MDB_txn *txn, raft_index *index,
                         struct raft_config *c);
/* Records a CONFIG entry's data (raft.h encoding) as applied at index. */
int store__meta_conf_put_raw(struct store *s, MDB_txn *txn, raft_index index,
                             const struct raft_buf *data);
int store__meta_conf_put(struct store *s, MDB_txn *txn, raft_index index,
                         const struct raft_config *c);

/* The configuration codec of raft.h (same bytes as raft_config_encode), so
 * store/ does not depend on the core's implementation. encode returns the
 * number of bytes written into buf (cap >= STORE_CONFIG_MAX). */
#define STORE_CONFIG_MAX (2 + RAFT_MAX_SERVERS * (8 + 1 + 1 + RAFT_ADDR_MAX))
size_t store__config_encode(const struct raft_config *c, uint8_t *buf);
int store__config_decode(const void *buf, size_t len, struct raft_config *c);

/* The WAL's marks in the "meta" DBI (wal.h); 0, 0 when absent. */
int store__meta_wal_get(struct store *s, MDB_txn *txn, raft_index *compacted,
                        uint64_t *dead);
int store__meta_wal_put(struct store *s, MDB_txn *txn, raft_index compacted,
                        uint64_t dead);

/* log.c: the log as the rest of store/ sees it (the WAL's index, with the
 * snapshot for an empty log). Term of a stored entry; -ENOENT if not
 * stored. */
int store__log_term(struct store *s, raft_index index, raft_term *term);

/* env.c: a write transaction, with data.mdb's room reserved for it
 * (mapres.h): 0, -ENOSPC (full disk: nothing was written) or another error
 * (*txn is NULL then). */
int store__txn_begin(struct store *s, MDB_txn **txn);

/* batch.c / snapfile.c */
raft_index store__applied(struct store *s, MDB_txn *txn);
/* fsyncs the data dir (a creation, rename or removal in it becomes
 * durable): 0 or -errno. */
int store__sync_dir(struct store *s);
/* Path of a file in the data dir: dir/name into buf (PATH_MAX). */
void store__path(const struct store *s, char *buf, const char *name);
/* Writes a chunk into snapshot.recv-<index> (offset 0 starts it over) and
 * fdatasyncs it. */
int store__snap_chunk(struct store *s, const struct store_op *op);
/* Restores the state machine from snapshot.recv-<index> and records the
 * snapshot (and the WAL's marks: the log is discarded), in txn. The caller
 * resets the WAL's index once txn is durable. */
int store__snap_install(struct store *s, MDB_txn *txn,
                        const struct raft_snapshot_meta *m);
/* After the install's txn is durable: the received file becomes the current
 * snapshot file; older files are removed. */
int store__snap_installed(struct store *s, const struct raft_snapshot_meta *m);
/* dir/snapshot-<index> into buf (PATH_MAX). */
void store__snap_path(const struct store *s, char *buf, raft_index index);
/* At open: finish an install interrupted between commit and rename, remove
 * stale files. */
int store__snap_recover(struct store *s);

#endif /* STORE_INTERNAL_H */
