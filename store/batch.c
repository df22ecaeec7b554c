/* The write path: a batch of persist/apply/compact operations performed in
 * one LMDB write transaction and made durable with one commit. */

#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * Why one transaction: raft.h's contract step 2 wants the snapshot install,
 * the hard state and the entries durable in that order; doing them all in
 * one LMDB transaction makes them atomic as well, so a crash leaves either
 * the whole batch or none of it. The node driver collects everything the
 * core produced while the previous batch was syncing into the next batch,
 * so one commit (2 fdatasyncs, see env.c) serves every entry of every
 * proposal in it.
 *
 * Applying in the same transaction as appending is safe: committed entries
 * are durable on a majority already (or in this very batch), and the fsm
 * stores its applied index in this transaction, so nothing is applied twice
 * and a lost apply-only commit is redone from the log at the next start.
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

static int run(struct store *s, MDB_txn *txn, const struct store_batch *b,
               struct store_write_result *r, bool *sync)
{
    size_t k = 0;
    raft_index early = 0; /* chunks of this snapshot were written early */
    int rv = 0;
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
            *sync = true;
            break;
        case STORE_OP_CHUNK:
            if (op->snap.index != early) {
                rv = store__snap_chunk(s, op);
            }
            *sync = true;
            break;
        case STORE_OP_HARD_STATE:
            rv = store__meta_hard_put(s, txn, op->term, op->vote);
            *sync = true;
            break;
        case STORE_OP_APPEND:
            rv = store__log_append(s, txn, op->entries, op->n);
            *sync = true;
            break;
        case STORE_OP_APPLY:
            rv = apply(s, txn, op, r->results + k);
            k += op->n;
            break;
        case STORE_OP_COMPACT:
            rv = store__log_compact(s, txn, op->index);
            break;
        default:
            rv = -EINVAL;
        }
    }
    if (rv != 0) {
        return rv;
    }
    rv = store__log_last(s, txn, &r->last_index, &r->last_term);
    if (rv == 0) {
        struct raft_snapshot_meta m;
        rv = store__meta_snap_get(s, txn, &m);
        if (rv == 0 && m.index > r->last_index) {
            r->last_index = m.index; /* empty log after an install */
            r->last_term = m.term;
        }
    }
    r->applied = store__applied(s, txn);
    return rv;
}

int store_write(struct store *s, const struct store_batch *b,
                struct store_write_result *r)
{
    MDB_txn *txn;
    bool sync = false;
    int rv;

    memset(r, 0, sizeof *r);
    if (b->n_apply > 0) {
        r->results = calloc(b->n_apply, sizeof *r->results);
        if (r->results == NULL) {
            return -ENOMEM;
        }
        r->n_results = b->n_apply;
    }
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
        rv = store__lmdb_err(rc);
        goto err;
    }
    rv = run(s, txn, b, r, &sync);
    if (rv != 0) {
        mdb_txn_abort(txn);
        goto err;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        rv = store__lmdb_err(rc);
        goto err;
    }
    if (sync) {
        /* MDB_NOMETASYNC left the meta page unsynced: make it durable. */
        rc = mdb_env_sync(s->env, 1);
        if (rc != 0) {
            rv = store__lmdb_err(rc);
            goto err;
        }
        s->n_syncs++;
        r->synced = true;
    }
    for (size_t i = 0; i < b->n_ops; i++) {
        if (b->ops[i].kind == STORE_OP_INSTALL) {
            /* Best effort: store__snap_recover finishes it at next open. */
            store__snap_installed(s, &b->ops[i].snap);
        }
    }
    return 0;
err:
    store_write_result_close(r);
    return rv;
}

void store_write_result_close(struct store_write_result *r)
{
    free(r->results);
    r->results = NULL;
    r->n_results = 0;
}
