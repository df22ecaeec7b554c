/* The persistent Raft log as store.h presents it, and loading it at start:
 * the entries come from the WAL (wal.c), the snapshot from "meta". */

#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * Invariant: the stored indexes are contiguous (no gaps); after a snapshot
 * at index S the stored log may start at or before S + 1 (trailing entries
 * are kept for lagging followers) or be empty.
 */

int store__log_term(struct store *s, raft_index index, raft_term *term)
{
    return store__wal_term(&s->wal, index, term);
}

int store_log_bounds(struct store *s, raft_index *first, raft_index *last)
{
    store__wal_bounds(&s->wal, first, last);
    if (*last != 0) {
        return 0;
    }
    struct raft_snapshot_meta m;
    int rv = store_snapshot_meta(s, &m);
    if (rv == 0) {
        *last = m.index;
        *first = m.index + 1;
    }
    return rv;
}

int store_log_term(struct store *s, raft_index index, raft_term *term)
{
    *term = 0;
    if (index == 0) {
        return 0;
    }
    if (store__wal_term(&s->wal, index, term) == 0) {
        return 0;
    }
    struct raft_snapshot_meta m;
    int rv = store_snapshot_meta(s, &m);
    if (rv != 0) {
        return rv;
    }
    if (m.index != index) {
        return -ENOENT;
    }
    *term = m.term;
    return 0;
}

int store_log_get(struct store *s, raft_index lo, raft_index hi,
                  struct raft_entry **out, size_t *n)
{
    return store__wal_get(&s->wal, lo, hi, out, n);
}

int store_load(struct store *s, struct raft_load *l)
{
    MDB_txn *txn;
    struct raft_snapshot_meta m;
    raft_index first, last;
    struct raft_entry *es = NULL;
    size_t n = 0;
    memset(l, 0, sizeof *l);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    int rv = store__meta_hard_get(s, txn, &l->term, &l->vote);
    if (rv == 0) {
        rv = store__meta_snap_get(s, txn, &m);
    }
    if (rv != 0) {
        goto out;
    }
    l->snap_index = m.index;
    l->snap_term = m.term;
    l->snap_config = m.config;
    l->snap_size = m.size;
    l->applied = store__applied(s, txn);
    if (l->applied < m.index) {
        rv = STORE_ERR_CORRUPT; /* the snapshot was installed with its state */
        goto out;
    }
    /* Read after the LMDB txn: the WAL only holds entries that were durable
     * before anything applied them. */
    store__wal_bounds(&s->wal, &first, &last);
    /* raft.h: the entries after the snapshot, first one at snap_index + 1. */
    if (last > m.index) {
        raft_index lo = first > m.index ? first : m.index + 1;
        if (lo != m.index + 1) {
            rv = STORE_ERR_CORRUPT; /* entries missing after the snapshot */
            goto out;
        }
        rv = store__wal_get(&s->wal, lo, last, &es, &n);
        if (rv == 0 && n != last - lo + 1) {
            rv = STORE_ERR_CORRUPT;
        }
        if (rv != 0) {
            free(es);
            es = NULL;
            if (rv == -ENOENT) {
                rv = STORE_ERR_CORRUPT;
            }
            goto out;
        }
    }
    l->entries = es;
    l->n_entries = n;
out:
    mdb_txn_abort(txn);
    return rv;
}

void store_load_close(struct raft_load *l)
{
    free((void *)l->entries);
    l->entries = NULL;
    l->n_entries = 0;
}
