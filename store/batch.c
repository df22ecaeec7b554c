/* The write path: a batch of persist/apply/compact operations performed in
 * one WAL write and one (sometimes two) LMDB write transactions. */

#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * What a batch costs, and in what order it becomes durable.
 *
 * The entries go to the WAL (wal.h): one pwrite into a preallocated
 * segment and ONE fdatasync. Everything else (snapshot install, hard state,
 * applies, the compaction mark) goes into an LMDB transaction, committed
 * only when it changed something: an append-only batch touches no LMDB page
 * and costs exactly the WAL's sync.
 *
 * Order. raft.h's contract step 2 wants the install, the hard state and the
 * entries durable in that order. So when the transaction holds an install,
 * a changed hard state or a lowered compaction mark, it is committed AND
 * made durable (mdb_env_sync) before the WAL write starts; the entries
 * become durable after it. A crash in between leaves the install / the new
 * term without the entries, which is a state the contract allows (the same
 * as a crash before the entries' update); never entries of a term newer
 * than the stored term, nor entries that an install has since discarded
 * (the install's "dead" mark is durable before any later record exists).
 * Room in the WAL is reserved (a new segment created if needed) BEFORE
 * anything commits, so a full disk aborts the whole batch with -ENOSPC.
 *
 * Otherwise (the common case) the transaction is built first (so a full
 * map aborts the whole batch with -ENOSPC before anything is written),
 * stays open during the WAL write (we are the only writer; readers see the
 * previous commit), and is committed after it: a failed WAL write aborts
 * it, so a retried batch is applied exactly once and its results are
 * real. A crash after the WAL sync and before the commit leaves the
 * entries durable and unapplied: they are applied again from the log.
 *
 * Applies and compaction need no durability (store.h): their commit is
 * not synced at all once the store runs unsynced (MDB_NOSYNC, durable.c:
 * a power loss is detected and data.mdb rebuilt), else it costs
 * MDB_NOMETASYNC's one fdatasync; it is never followed by mdb_env_sync.
 * Applying in the same transaction as other changes is safe: raft.h only
 * hands over committed entries that are durable here (in the WAL from an
 * earlier batch), and the fsm stores its applied index in this transaction,
 * so nothing is applied twice. Applies go after the WAL write ("late") when
 * they concern entries of this very batch (the store API allows it, raft.h
 * never does it: a crash must never leave the applied index past the log)
 * or when the batch also installs or sets the hard state (that part is
 * committed before the WAL write; the applies are not, so a failed WAL
 * write still leaves them undone).
 *
 * WAL segments are deleted (store__wal_gc) only up to min(compaction mark,
 * snapshot index) - the snapshot's metadata is always durable
 * (store_snapshot_take and installs sync it) - so an apply or compaction
 * commit lost in a power failure never loses an entry that is still
 * needed.
 */

void store_batch_init(struct store_batch *b)
{
    memset(b, 0, sizeof *b);
}

void store_batch_close(struct store_batch *b)
{
    free(b->ops);
    memset(b, 0, sizeof *b);
}

void store_batch_reset(struct store_batch *b)
{
    b->n_ops = 0;
    b->n_apply = 0;
}

bool store_batch_empty(const struct store_batch *b)
{
    return b->n_ops == 0;
}

static struct store_op *push(struct store_batch *b, uint8_t kind)
{
    if (b->n_ops == b->cap) {
        size_t cap = b->cap == 0 ? 8 : b->cap * 2;
        struct store_op *ops = realloc(b->ops, cap * sizeof *ops);
        if (ops == NULL) {
            return NULL;
        }
        b->ops = ops;
        b->cap = cap;
    }
    struct store_op *op = &b->ops[b->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

int store_batch_install(struct store_batch *b,
                        const struct raft_snapshot_meta *m)
{
    struct store_op *op = push(b, STORE_OP_INSTALL);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->snap = *m;
    return 0;
}

int store_batch_chunk(struct store_batch *b, const struct raft_snapshot_meta *m,
                      uint64_t offset, const struct raft_buf *chunk)
{
    struct store_op *op = push(b, STORE_OP_CHUNK);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->snap = *m;
    op->offset = offset;
    op->chunk = *chunk;
    return 0;
}

int store_batch_hard_state(struct store_batch *b, raft_term term, raft_id vote)
{
    struct store_op *op = push(b, STORE_OP_HARD_STATE);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->term = term;
    op->vote = vote;
    return 0;
}

int store_batch_append(struct store_batch *b, const struct raft_entry *e,
                       size_t n)
{
    if (n == 0) {
        return 0;
    }
    struct store_op *op = push(b, STORE_OP_APPEND);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->entries = e;
    op->n = n;
    return 0;
}

int store_batch_apply(struct store_batch *b, const struct raft_entry *e,
                      size_t n)
{
    if (n == 0) {
        return 0;
    }
    struct store_op *op = push(b, STORE_OP_APPLY);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->entries = e;
    op->n = n;
    b->n_apply += n;
    return 0;
}

int store_batch_compact(struct store_batch *b, raft_index index)
{
    if (index == 0) {
        return 0;
    }
    struct store_op *op = push(b, STORE_OP_COMPACT);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->index = index;
    return 0;
}

raft_index store__applied(struct store *s, MDB_txn *txn)
{
    return store__fsm_applied(&s->fsm, txn);
}

static int apply(struct store *s, MDB_txn *txn, const struct store_op *op,
                 struct store_apply_result *res)
{
    for (size_t i = 0; i < op->n; i++) {
        const struct raft_entry *e = &op->entries[i];
        int rv;
        memset(&res[i], 0, sizeof res[i]);
        /* A snapshot's configuration is the last one applied at or before
         * its index (Raft paper §7), so remember it as it is applied. */
        if (e->type == RAFT_ENTRY_CONFIG && e->index > store__applied(s, txn)) {
            rv = store__meta_conf_put_raw(s, txn, e->index, &e->data);
            if (rv != 0) {
                return rv;
            }
        }
        rv = store__fsm_apply(&s->fsm, txn, e->index, e, &res[i]);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* What the batch does besides its LMDB transaction. */
struct plan {
    const struct raft_entry **ents; /* to write to the WAL, in order */
    size_t n, cap;
    bool sync;      /* report synced: log/hard-state/snapshot changes */
    bool lmdb;      /* the txn changed something: commit it */
    bool lmdb_sync; /* ... and make it durable before the WAL write */
    bool install;   /* the WAL's index is reset */
    bool late;      /* apply after the WAL write (applies_late) */
    raft_index durable; /* last entry durable before this batch */
    bool marks;     /* the WAL marks changed */
    raft_index compacted;
    uint64_t dead;
    struct raft_snapshot_meta snap; /* as of the end of the batch */
    raft_term hs_term;
    raft_id hs_vote;
    /* The log as it will be: empty, or first..last. */
    bool empty;
    raft_index first, last;
    raft_term last_term;
};

static int plan_push(struct plan *pl, const struct raft_entry *e)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap == 0 ? 64 : pl->cap * 2;
        const struct raft_entry **v = realloc(pl->ents, cap * sizeof *v);
        if (v == NULL) {
            return -ENOMEM;
        }
        pl->ents = v;
        pl->cap = cap;
    }
    pl->ents[pl->n++] = e;
    return 0;
}

static int plan_init(struct store *s, MDB_txn *txn, struct plan *pl)
{
    memset(pl, 0, sizeof *pl);
    int rv = store__meta_snap_get(s, txn, &pl->snap);
    if (rv == 0) {
        rv = store__meta_wal_get(s, txn, &pl->compacted, &pl->dead);
    }
    if (rv == 0) {
        rv = store__meta_hard_get(s, txn, &pl->hs_term, &pl->hs_vote);
    }
    if (rv != 0) {
        return rv;
    }
    store__wal_bounds(&s->wal, &pl->first, &pl->last);
    pl->empty = pl->last == 0;
    pl->durable = pl->empty ? pl->snap.index : pl->last;
    if (!pl->empty) {
        rv = store__wal_term(&s->wal, pl->last, &pl->last_term);
    }
    return rv;
}

/* Whether the batch's applies go after the WAL write (see the top): they
 * concern entries not durable before this batch, or the batch installs or
 * sets the hard state (committed and synced before the WAL write). */
static bool applies_late(const struct store_batch *b, raft_index durable)
{
    bool applies = false, early_commit = false, beyond = false;
    for (size_t i = 0; i < b->n_ops; i++) {
        const struct store_op *op = &b->ops[i];
        if (op->kind == STORE_OP_APPLY) {
            applies = true;
            beyond = beyond || op->entries[op->n - 1].index > durable;
        } else if (op->kind == STORE_OP_INSTALL ||
                   op->kind == STORE_OP_HARD_STATE) {
            early_commit = true;
        }
    }
    return applies && (beyond || early_commit);
}

/* The late applies, in txn (after the WAL write). */
static int run_late(struct store *s, MDB_txn *txn, const struct store_batch *b,
                    struct store_write_result *r)
{
    size_t k = 0;
    int rv = 0;
    for (size_t i = 0; i < b->n_ops && rv == 0; i++) {
        const struct store_op *op = &b->ops[i];
        if (op->kind == STORE_OP_APPLY) {
            rv = apply(s, txn, op, r->results + k);
            k += op->n;
        }
    }
    if (rv == 0) {
        r->applied = store__applied(s, txn);
    }
    return rv;
}

/* Checks an append against the log as the batch left it so far (the old
 * rules: contiguous, no gap after the last entry or, in an empty log, after
 * the snapshot), and records it. */
static int plan_append(struct plan *pl, const struct store_op *op)
{
    const struct raft_entry *e = op->entries;
    for (size_t i = 1; i < op->n; i++) {
        if (e[i].index != e[0].index + i) {
            return STORE_ERR_GAP;
        }
    }
    raft_index base = pl->empty ? pl->snap.index : pl->last;
    if (e[0].index > base + 1 || e[0].index == 0) {
        return STORE_ERR_GAP;
    }
    if (e[0].index <= pl->compacted) {
        /* Rewriting below the compaction mark (never done by raft.h's
         * core: those entries are committed): lower the mark first, or a
         * restart would hide the new entries. */
        pl->compacted = e[0].index - 1;
        pl->marks = true;
        pl->lmdb_sync = true;
    }
    for (size_t i = 0; i < op->n; i++) {
        int rv = plan_push(pl, &e[i]);
        if (rv != 0) {
            return rv;
        }
    }
    if (pl->empty || e[0].index < pl->first) {
        pl->first = e[0].index;
    }
    pl->empty = false;
    pl->last = e[op->n - 1].index;
    pl->last_term = e[op->n - 1].term;
    return 0;
}

static void plan_compact(struct plan *pl, raft_index to)
{
    if (to > pl->compacted) {
        pl->compacted = to;
        pl->marks = true;
    }
    if (!pl->empty && to >= pl->first) {
        if (to >= pl->last) {
            pl->empty = true;
        } else {
            pl->first = to + 1;
        }
    }
}

static int run(struct store *s, MDB_txn *txn, const struct store_batch *b,
               struct store_write_result *r, struct plan *pl)
{
    size_t k = 0;
    raft_index early = 0; /* chunks of this snapshot were written early */
    int rv = plan_init(s, txn, pl);
    pl->late = rv == 0 && applies_late(b, pl->durable);
    for (size_t i = 0; i < b->n_ops && rv == 0; i++) {
        const struct store_op *op = &b->ops[i];
        switch (op->kind) {
        case STORE_OP_INSTALL:
            /* The last chunk of a snapshot may come in the same update as
             * its install, queued after it (raft.h orders install before
             * chunk): the file must be complete before it is restored. */
            for (size_t j = i + 1; j < b->n_ops && rv == 0; j++) {
                if (b->ops[j].kind == STORE_OP_CHUNK &&
                    b->ops[j].snap.index == op->snap.index) {
                    rv = store__snap_chunk(s, &b->ops[j]);
                }
            }
            early = op->snap.index;
            if (rv == 0) {
                rv = store__snap_install(s, txn, &op->snap);
            }
            /* Thesis §5.3 (Figure 5.3, InstallSnapshot step 7): the whole
             * log is discarded: every WAL record written so far is dead,
             * and entries of this batch before the install never get
             * written. */
            pl->n = 0;
            pl->install = true;
            pl->empty = true;
            pl->snap = op->snap;
            pl->compacted = op->snap.index;
            pl->dead = store__wal_last_bseq(&s->wal);
            pl->marks = true;
            pl->lmdb = true;
            pl->lmdb_sync = true;
            pl->sync = true;
            break;
        case STORE_OP_CHUNK:
            if (op->snap.index != early) {
                rv = store__snap_chunk(s, op);
            }
            pl->sync = true;
            break;
        case STORE_OP_HARD_STATE:
            /* Unchanged: nothing to write, nothing to sync. */
            if (op->term != pl->hs_term || op->vote != pl->hs_vote) {
                rv = store__meta_hard_put(s, txn, op->term, op->vote);
                pl->hs_term = op->term;
                pl->hs_vote = op->vote;
                pl->lmdb = true;
                pl->lmdb_sync = true;
            }
            pl->sync = true;
            break;
        case STORE_OP_APPEND:
            rv = plan_append(pl, op);
            pl->sync = true;
            break;
        case STORE_OP_APPLY:
            if (!pl->late) {
                rv = apply(s, txn, op, r->results + k);
                k += op->n;
                pl->lmdb = true;
            }
            break;
        case STORE_OP_COMPACT:
            plan_compact(pl, op->index);
            break;
        default:
            rv = -EINVAL;
        }
    }
    if (rv == 0 && pl->marks) {
        rv = store__meta_wal_put(s, txn, pl->compacted, pl->dead);
        pl->lmdb = true;
    }
    if (rv != 0) {
        return rv;
    }
    if (pl->empty || pl->last < pl->snap.index) {
        r->last_index = pl->snap.index; /* empty log: the snapshot's */
        r->last_term = pl->snap.term;
    } else {
        r->last_index = pl->last;
        r->last_term = pl->last_term;
    }
    r->applied = store__applied(s, txn);
    return 0;
}

int store_write(struct store *s, const struct store_batch *b,
                struct store_write_result *r)
{
    MDB_txn *txn = NULL;
    struct plan pl;
    int rv;

    memset(r, 0, sizeof *r);
    memset(&pl, 0, sizeof pl);
    if (b->n_apply > 0) {
        r->results = calloc(b->n_apply, sizeof *r->results);
        if (r->results == NULL) {
            return -ENOMEM;
        }
        r->n_results = b->n_apply;
    }
    rv = store__txn_begin(s, &txn);
    if (rv != 0) {
        goto err;
    }
    int rc;
    rv = run(s, txn, b, r, &pl);
    if (rv == 0 && pl.n > 0) {
        /* Before anything commits: a full disk fails the whole batch. */
        rv = store__wal_reserve(&s->wal, store__wal_bytes(pl.ents, pl.n));
    }
    if (rv != 0) {
        goto err;
    }
    if (pl.lmdb_sync) {
        /* Install / hard state durable before the entries (see above):
         * the commit synced nothing (MDB_NOSYNC) or only the data pages
         * (MDB_NOMETASYNC); mdb_env_sync makes all of it durable. */
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc == 0) {
            rc = mdb_env_sync(s->env, 1);
            s->n_syncs++;
        }
        if (rc != 0) {
            rv = store__lmdb_err(rc);
            goto err;
        }
        if (pl.install) {
            store__wal_reset(&s->wal);
        }
        /* What a rebuild after a power loss needs, before anything relies
         * on it (durable.c). A failure is an IO error: the LMDB part is
         * committed. */
        struct store_state st = s->state;
        st.term = pl.hs_term;
        st.vote = pl.hs_vote;
        st.snap = pl.snap;
        st.dead = pl.dead;
        rv = store__state_write(s, &st);
        if (rv != 0) {
            rv = -EIO;
            goto err;
        }
    }
    if (pl.n > 0) {
        /* Otherwise txn stays open meanwhile (we are the only writer;
         * readers see the previous commit): if the WAL write fails, the
         * whole batch is aborted, applies included. */
        rv = store__wal_write(&s->wal, pl.ents, pl.n);
        if (rv != 0) {
            if (txn == NULL && rv == -ENOSPC) {
                /* Only on a copy-on-write file system (preallocation
                 * reserves nothing there). -ENOSPC promises that nothing
                 * of the batch happened, but its LMDB part is committed:
                 * an IO error instead (the driver stops the node). */
                rv = -EIO;
            }
            goto err;
        }
        s->n_syncs++;
    }
    if (pl.late) {
        /* The entries are durable now: apply them. */
        if (txn == NULL) {
            rv = store__txn_begin(s, &txn);
            if (rv != 0) {
                goto err;
            }
        }
        rv = run_late(s, txn, b, r);
        if (rv != 0) {
            goto err;
        }
        pl.lmdb = true;
    }
    if (txn != NULL) {
        if (pl.lmdb) {
            /* One fdatasync (MDB_NOMETASYNC): applies and compaction need
             * no more. A failure here leaves the entries (if any) stored
             * and unapplied: retrying the batch is safe. */
            rc = mdb_txn_commit(txn);
            txn = NULL;
            if (rc != 0) {
                rv = store__lmdb_err(rc);
                goto err;
            }
        } else {
            mdb_txn_abort(txn);
            txn = NULL;
        }
    }
    if (pl.marks) {
        store__wal_compact(&s->wal, pl.compacted);
    }
    r->synced = pl.sync;
    for (size_t i = 0; i < b->n_ops; i++) {
        if (b->ops[i].kind == STORE_OP_INSTALL) {
            /* Best effort: store__snap_recover finishes it at next open. */
            store__snap_installed(s, &b->ops[i].snap);
        }
    }
    if (pl.marks) {
        /* Best effort too: retried after the next compaction or open. */
        store__wal_gc(&s->wal, store__gc_bound(s, pl.compacted, pl.snap.index),
                      pl.dead);
    }
    free(pl.ents);
    return 0;
err:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    free(pl.ents);
    store_write_result_close(r);
    return rv;
}

void store_write_result_close(struct store_write_result *r)
{
    free(r->results);
    r->results = NULL;
    r->n_results = 0;
}
