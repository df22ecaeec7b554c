/* Public API of store/: the Raft log in a write-ahead log of our own, and
 * one LMDB environment holding the hard state, snapshot metadata and the
 * filesystem state machine. */
#ifndef STORE_H
#define STORE_H

/*
 * THE CONTRACT BETWEEN THE TWO HALVES OF store/ (agreed in
 * /tmp/store-contract.md, 2026-11-22):
 *
 *  - env.c/meta.c/log.c/batch.c/snapfile.c ("storelog") own the MDB_env (one
 *    environment in the data directory: data.mdb + lock.mdb, maxdbs
 *    STORE_MAX_DBS, configurable map size) and the named DBI "meta";
 *    wal.c, wal_file.c, wal_recover.c (also storelog) own the Raft log's
 *    WAL segments (wal-*, wal.h).
 *  - fsm*.c, cmd.c, snapshot.c ("fsm") own the DBIs "fsm", "inode",
 *    "dirent", "data" and expose in fsm.h:
 *      store__fsm_open(f, txn)    open/create its DBIs inside the first write
 *                                 txn of store_open (committed before any
 *                                 read);
 *      store__fsm_apply(f, txn, index, e, res)  apply one committed entry in
 *                                 the batch's write txn; COMMAND, NOOP and
 *                                 CONFIG entries all advance the applied
 *                                 index, stored in the same txn; entries
 *                                 with index <= applied are skipped; returns
 *                                 < 0 only for environment errors (the
 *                                 whole batch is then aborted);
 *      store__fsm_applied(f, txn), store__fsm_applied_term(f, txn);
 *      store__fsm_snapshot_build(f, rtxn, path, &index, &size)  write and
 *                                 fsync a snapshot file from a read txn
 *                                 (storelog renames it and syncs the dir);
 *      store__fsm_snapshot_restore(f, txn, path, &index)  verify the whole
 *                                 file, then replace the fsm DBIs in
 *                                 storelog's write txn;
 *      store__fsm_close(f).
 *  - `struct store_fsm` is embedded by value in `struct store`;
 *    `struct store_apply_result` is fixed-size with no heap pointers.
 *  - Snapshot files live in the data dir and are named by storelog:
 *    snapshot.tmp (being built), snapshot.recv-<index> (chunks from a leader),
 *    snapshot-<index as 16 hex digits> (the current one, served by offset).
 *
 * ON-DISK LAYOUT (storelog's part; the fsm's DBIs are drawn in fsm.h and
 * snapshot.c). All integers big-endian unless said otherwise.
 *
 *   wal-<16 hex digits>  the Raft log: WAL segment files, drawn in wal.h
 *
 *   "meta"  "format"  -> u32 STORE_FORMAT_VERSION
 *           "cluster" -> cluster id bytes (no NUL)
 *           "node"    -> u64 node id
 *           "hard"    -> u64 term | u64 vote
 *           "snap"    -> u64 index | u64 term | u64 size | config bytes
 *           "conf"    -> u64 index | config bytes  (last applied CONFIG)
 *   config bytes: raft.h's little-endian configuration encoding.
 *
 * Durability (batch.c explains the order): a batch that appends entries
 * costs one fdatasync of the active WAL segment; one that also changes the
 * hard state or installs a snapshot first commits LMDB and makes it durable
 * (mdb_env_sync: 2 fdatasyncs), then writes the WAL. Apply/compact-only
 * batches cost one LMDB commit (1 fdatasync, MDB_NOMETASYNC, env.c).
 *
 * Threads. The environment is opened with MDB_NOTLS: read transactions are
 * not bound to a thread, so the loop thread may run short read transactions
 * (every read call below opens and closes its own) while ONE writer thread
 * runs store_write / store_snapshot_take (the node driver serializes them on
 * the libuv thread pool). The log reads take the WAL's mutex (never held
 * across a sync). store_open and store_close run alone.
 */

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "wal.h"

/* Domain errors (negative, outside the errno range and the RAFT_ERR_* range).
 * CORRUPT and VERSION have fixed values shared with store/cmd.h. */
#define STORE_ERRORS(X)                                                        \
    X(FOREIGN_CLUSTER, 2001, "data directory belongs to another cluster")      \
    X(FOREIGN_NODE, 2002, "data directory belongs to another node")            \
    X(FORMAT, 2003, "unknown on-disk format version")                          \
    X(NOT_RAFTFS, 2004, "not a raftfs data directory")                         \
    X(GAP, 2005, "entries would leave a gap in the log")                       \
    X(NO_SNAPSHOT, 2006, "no such snapshot")                                   \
    X(CORRUPT, 2008, "corrupt data")                                           \
    X(VERSION, 2009, "unknown format version")

#define STORE_ERR_FOREIGN_CLUSTER (-2001)
#define STORE_ERR_FOREIGN_NODE (-2002)
#define STORE_ERR_FORMAT (-2003)
#define STORE_ERR_NOT_RAFTFS (-2004)
#define STORE_ERR_GAP (-2005)
#define STORE_ERR_NO_SNAPSHOT (-2006)
#ifndef STORE_ERR_CORRUPT
#define STORE_ERR_CORRUPT (-2008)
#endif
#ifndef STORE_ERR_VERSION
#define STORE_ERR_VERSION (-2009)
#endif

/* Returns a static string for a STORE_ERR_* code, a RAFT_ERR_* code or a
 * -errno value. */
const char *store_strerror(int rv);

/* The state machine (struct store_fsm, struct store_apply_result, reads). */
#include "fsm.h"

/* The on-disk format this code writes and the only one it opens.
 * 1: the Raft log in the LMDB DBI "log". 2: the Raft log in WAL segments. */
#define STORE_FORMAT_VERSION 2u
#define STORE_MAX_DBS 16
#define STORE_DEFAULT_MAP_SIZE ((size_t)1 << 30)  /* 1 GiB */
#define STORE_DEFAULT_MAX_VALUE ((size_t)1 << 20) /* 1 MiB */
#define STORE_CLUSTER_MAX 64                      /* bytes, without NUL */
#define STORE_ERRMSG_MAX 512

struct store_options {
    const char *dir;        /* data directory; borrowed for the call */
    bool create;            /* create the directory and a new store */
    size_t map_size;        /* LMDB map size in bytes; 0: 1 GiB */
    size_t max_value;       /* largest file value; 0: 1 MiB */
    const char *cluster_id; /* 1..STORE_CLUSTER_MAX bytes, NUL-terminated */
    raft_id node_id;        /* != 0 */
    size_t wal_segment_size; /* WAL segment bytes; 0: 8 MiB (tests: small) */
    /* Where the running kernel's boot id is read (durable.c); NULL:
     * /proc/sys/kernel/random/boot_id. Tests point it at a file of their
     * own to play a reboot. */
    const char *boot_id_file;
};

#define STORE_BOOT_ID_MAX 64

/* What raft.state holds (durable.c): what a rebuild after a power loss
 * needs besides the WAL and the snapshot file. */
struct store_state {
    char cluster[STORE_CLUSTER_MAX + 1];
    raft_id node;
    raft_term term;
    raft_id vote;
    uint64_t dead; /* the WAL's dead mark */
    struct raft_snapshot_meta snap;
};

/* Fills o with defaults: create false, default sizes, no dir/cluster/node. */
void store_options_default(struct store_options *o);

struct store {
    MDB_env *env;
    MDB_dbi meta; /* node metadata, hard state, snapshot metadata */
    int lock_fd;  /* the data dir, flock'ed: one process per data dir */
    struct store_wal wal; /* the Raft log (wal.h); valid while open */
    bool wal_open;
    char *dir;    /* owned */
    size_t map_size;
    size_t max_value;
    raft_id node_id;
    char *cluster_id;     /* owned */
    char *boot_id_file;   /* owned; NULL: the kernel's */
    bool nosync;          /* applies commit unsynced (durable.c) */
    bool rebuilt;         /* store_open rebuilt data.mdb after a power loss */
    struct store_state state; /* as last written to raft.state */
    struct store_fsm fsm;
    /* data.mdb's blocks reserved ahead of LMDB's writable map (mapres.h);
     * mapres.env is NULL when the env runs without MDB_WRITEMAP. */
    struct store_mapres mapres;
    uint64_t n_syncs; /* mdb_env_sync calls + WAL batch fdatasyncs (stats) */
    char errmsg[STORE_ERRMSG_MAX];
};

/*
 * Opens (or, with o->create, creates) the store in o->dir. Returns 0, or:
 *   -ENOENT                     no store there and !o->create
 *   -EBUSY                      another process has this data dir open
 *   STORE_ERR_FOREIGN_CLUSTER   the dir was created for another cluster id
 *   STORE_ERR_FOREIGN_NODE      ... or another node id
 *   STORE_ERR_FORMAT            ... or by another format version (1: the
 *                               log in LMDB, before the WAL)
 *   STORE_ERR_NOT_RAFTFS        an LMDB environment, but not ours
 *   STORE_ERR_CORRUPT           data.mdb is not a readable LMDB file, or a
 *                               WAL segment is damaged other than by a
 *                               torn last write (wal.h)
 *   -EINVAL                     bad options
 * or another -errno. In the refusal cases nothing in the dir is created or
 * modified. On failure s->errmsg (store_errmsg) says what and where, and s
 * needs no store_close.
 */
int store_open(struct store *s, const struct store_options *o);

/* Closes the environment. No read or write may be running. */
void store_close(struct store *s);

/* The message of the last failure of store_open (or ""). Valid while s is. */
const char *store_errmsg(const struct store *s);

/*
 * Log reads. Each opens and closes its own read transaction.
 *
 * store_log_bounds: *first is the first stored index and *last the last; if
 * no entry is stored, *first = *last + 1 and *last is the snapshot index (0
 * for a new store).
 * store_log_term: the term of the entry at index, or of the snapshot when
 * index is the snapshot index, or 0 for index 0; -ENOENT otherwise.
 * store_log_get: fills *out with the stored entries lo..hi (inclusive, hi
 * clamped to the last index); *out is malloc'd as one block (entry array and
 * data) owned by the caller, to be released with free(*out). -ENOENT if lo
 * is not stored.
 */
int store_log_bounds(struct store *s, raft_index *first, raft_index *last);
int store_log_term(struct store *s, raft_index index, raft_term *term);
int store_log_get(struct store *s, raft_index lo, raft_index hi,
                  struct raft_entry **out, size_t *n);

/* Hard state (Raft paper Figure 2: currentTerm, votedFor). 0,0 if never
 * written. */
int store_hard_state(struct store *s, raft_term *term, raft_id *vote);

/* The metadata of the current snapshot; m->index = 0 if there is none. */
int store_snapshot_meta(struct store *s, struct raft_snapshot_meta *m);

/* The state machine's applied index. */
int store_applied(struct store *s, raft_index *applied);

/*
 * Fills *l with everything raft_new needs (hard state, snapshot metadata,
 * applied index, and the stored entries after the snapshot, which must be
 * contiguous: STORE_ERR_CORRUPT otherwise). l->entries is malloc'd, owned
 * by the caller until store_load_close(l).
 */
int store_load(struct store *s, struct raft_load *l);
void store_load_close(struct raft_load *l);

/*
 * A write batch: what one or more raft updates ask to persist and apply, in
 * the order the driver adds it (raft.h contract step 2, then 4 and 6).
 * store_write carries out all of it in ONE LMDB write transaction.
 *
 * Ownership: the batch BORROWS every array and buffer it is given (entries,
 * their data, the chunk); they must stay valid until store_write returns.
 * The batch itself owns only its list of operations.
 */
enum store_op_kind {
    STORE_OP_INSTALL = 1, /* restore from the received file, reset the log */
    STORE_OP_CHUNK,       /* write a snapshot chunk into its received file */
    STORE_OP_HARD_STATE,  /* term, vote */
    STORE_OP_APPEND,      /* delete stored entries >= e[0].index, then put */
    STORE_OP_APPLY,       /* apply committed entries to the state machine */
    STORE_OP_COMPACT,     /* delete stored entries <= index */
};

struct store_op {
    uint8_t kind;                     /* enum store_op_kind */
    struct raft_snapshot_meta snap;   /* INSTALL, CHUNK */
    uint64_t offset;                  /* CHUNK */
    struct raft_buf chunk;            /* CHUNK, borrowed */
    raft_term term;                   /* HARD_STATE */
    raft_id vote;                     /* HARD_STATE */
    const struct raft_entry *entries; /* APPEND, APPLY: borrowed */
    size_t n;
    raft_index index; /* COMPACT */
};

struct store_batch {
    struct store_op *ops; /* owned */
    size_t n_ops;
    size_t cap;
    size_t n_apply; /* total committed entries in APPLY ops */
};

void store_batch_init(struct store_batch *b);
void store_batch_close(struct store_batch *b);
/* Empties the batch, keeping its memory for reuse. */
void store_batch_reset(struct store_batch *b);
/* True if the batch holds nothing. */
bool store_batch_empty(const struct store_batch *b);

/* Each adds one operation at the end; 0 or -ENOMEM. Entries passed to
 * store_batch_append must be contiguous (index i+1 follows i). */
int store_batch_install(struct store_batch *b,
                        const struct raft_snapshot_meta *m);
int store_batch_chunk(struct store_batch *b, const struct raft_snapshot_meta *m,
                      uint64_t offset, const struct raft_buf *chunk);
int store_batch_hard_state(struct store_batch *b, raft_term term, raft_id vote);
int store_batch_append(struct store_batch *b, const struct raft_entry *e,
                       size_t n);
int store_batch_apply(struct store_batch *b, const struct raft_entry *e,
                      size_t n);
int store_batch_compact(struct store_batch *b, raft_index index);

struct store_write_result {
    /* One per committed entry of the batch, in order; malloc'd, owned by
     * the caller until store_write_result_close. NULL if none. */
    struct store_apply_result *results;
    size_t n_results;
    raft_index applied;    /* the state machine's applied index after */
    raft_index last_index; /* the last stored index after (or snapshot) */
    raft_term last_term;
    bool synced; /* the batch held log/hard-state/snapshot changes: synced */
};

/*
 * Performs the whole batch (one LMDB write transaction for everything but
 * the entries, one WAL write for the entries) and, when it holds an
 * install, a chunk, a hard state or entries, makes it durable (synced)
 * before returning. Apply/compact-only batches are committed but not
 * necessarily durable: after a power loss they may be undone (durable.c
 * rebuilds data.mdb from the last snapshot), and the applies are replayed
 * from the (durable) log.
 *
 * Returns 0 and fills *r, or an error and NOTHING of the batch is applied
 * (the transaction is aborted; chunk bytes already written to
 * snapshot.recv-<index> stay, harmlessly):
 *   -ENOSPC   the LMDB map is full (MDB_MAP_FULL), or the disk has no room
 *             for the next WAL segment. The environment stays
 *             open and every read keeps working. The driver should fail the
 *             proposals waiting on this batch with ENOSPC, must NOT report
 *             its entries as persisted, and should stop proposing writes
 *             (refuse them with ENOSPC) until space is made: restarting with
 *             a larger map size (store_options.map_size), or freeing disk
 *             space, is the remedy.
 *             Raft stays safe: the entries were never acknowledged.
 *   STORE_ERR_GAP  entries that do not follow the stored log (driver bug)
 *   -EIO, STORE_ERR_CORRUPT, or another -errno. A failure of the final
 *   sync (after the commit), or of the WAL write after the LMDB commit,
 *   leaves the batch committed in the page cache but of unknown
 *   durability: the driver must not acknowledge it and should stop the
 *   node (a retried fsync may falsely succeed). After a failed WAL write
 *   every later batch that appends fails with -EIO until the store is
 *   reopened (recovery clears what the failed write may have left).
 * Exceptions to "nothing of the batch": a batch that installs a snapshot
 * or changes the hard state makes that durable first, then its entries,
 * then applies; one that applies entries it also appends (raft.h's driver
 * never does) applies them once they are durable. If such a batch then
 * fails (-ENOSPC included), the install / hard state / entries may stay,
 * never acknowledged, and its applies are not done: retrying the whole
 * batch is safe (a re-append rewrites the same entries).
 * An INSTALL whose snapshot's chunks come later in the same batch gets
 * those chunks written first (the core may emit the last chunk and the
 * install in one update).
 * Must be called from one thread at a time (the writer).
 */
int store_write(struct store *s, const struct store_batch *b,
                struct store_write_result *r);
void store_write_result_close(struct store_write_result *r);

/*
 * Snapshots (snapfile.c). store_snapshot_take builds a snapshot of the state
 * machine as of its applied index (writer thread: it must not run
 * concurrently with store_write), stores it as the current snapshot file and
 * records its metadata (index, term, configuration as of index, size) in a
 * synced transaction. It does not compact the log: the driver does that in a
 * later batch (store_batch_compact). Fills *m. Returns 0,
 * STORE_ERR_NO_SNAPSHOT if nothing was applied yet, or -errno.
 *
 * store_snapshot_read copies up to len bytes at offset of the current
 * snapshot with `index` into buf and returns how many (0 at the end), or
 * STORE_ERR_NO_SNAPSHOT if that snapshot is no longer current, or -errno.
 * Safe on the loop thread (pread only).
 */
int store_snapshot_take(struct store *s, struct raft_snapshot_meta *m);
int store_snapshot_read(struct store *s, raft_index index, uint64_t offset,
                        void *buf, uint32_t len);

#endif /* STORE_H */
