/* The persistent Raft log in the "log" DBI, and loading it at start. */

#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * One record per entry:
 *
 *   key   +-----------------+
 *         | u64 BE index    |   big-endian: LMDB's memcmp order is numeric
 *         +-----------------+
 *
 *   value +-------------+---------+------------------------------+
 *         | u64 BE term | u8 type | data (value size - 9 bytes)  |
 *         +-------------+---------+------------------------------+
 *
 * Invariant: the stored indexes are contiguous (no gaps); after a snapshot
 * at index S the stored log may start at or before S + 1 (trailing entries
 * are kept for lagging followers) or be empty.
 */

#define HDR 9

static int decode(const MDB_val *k, const MDB_val *v, raft_index *index,
                  raft_term *term, uint8_t *type)
{
    if (k->mv_size != 8 || v->mv_size < HDR) {
        return STORE_ERR_CORRUPT;
    }
    *index = store__get_be64(k->mv_data);
    *term = store__get_be64(v->mv_data);
    *type = ((const uint8_t *)v->mv_data)[8];
    return 0;
}

static int edge(struct store *s, MDB_txn *txn, MDB_cursor_op op,
                raft_index *index, raft_term *term)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t type;
    *index = 0;
    if (term != NULL) {
        *term = 0;
    }
    int rc = mdb_cursor_open(txn, s->log, &c);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    rc = mdb_cursor_get(c, &k, &v, op);
    int rv = 0;
    if (rc == 0) {
        raft_term t;
        rv = decode(&k, &v, index, &t, &type);
        if (term != NULL) {
            *term = t;
        }
    } else if (rc != MDB_NOTFOUND) {
        rv = store__lmdb_err(rc);
    }
    mdb_cursor_close(c);
    return rv;
}

int store__log_last(struct store *s, MDB_txn *txn, raft_index *index,
                    raft_term *term)
{
    return edge(s, txn, MDB_LAST, index, term);
}

int store__log_first(struct store *s, MDB_txn *txn, raft_index *index)
{
    return edge(s, txn, MDB_FIRST, index, NULL);
}

int store__log_term(struct store *s, MDB_txn *txn, raft_index index,
                    raft_term *term)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    store__put_be64(kb, index);
    int rc = mdb_get(txn, s->log, &k, &v);
    if (rc != 0) {
        return store__lmdb_err(rc); /* MDB_NOTFOUND -> -ENOENT */
    }
    if (v.mv_size < HDR) {
        return STORE_ERR_CORRUPT;
    }
    *term = store__get_be64(v.mv_data);
    return 0;
}

/* Deletes the stored keys lo..hi one by one: the log is contiguous, so this
 * touches exactly the stored entries in that range. */
static int del_range(struct store *s, MDB_txn *txn, raft_index lo,
                     raft_index hi)
{
    uint8_t kb[8];
    MDB_val k = {8, kb};
    for (raft_index i = lo; i <= hi && i != 0; i++) {
        store__put_be64(kb, i);
        int rc = mdb_del(txn, s->log, &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return store__lmdb_err(rc);
        }
    }
    return 0;
}

int store__log_truncate(struct store *s, MDB_txn *txn, raft_index from)
{
    raft_index last;
    int rv = store__log_last(s, txn, &last, NULL);
    if (rv != 0 || last < from) {
        return rv;
    }
    raft_index first;
    rv = store__log_first(s, txn, &first);
    if (rv != 0) {
        return rv;
    }
    return del_range(s, txn, from > first ? from : first, last);
}

int store__log_compact(struct store *s, MDB_txn *txn, raft_index to)
{
    raft_index first, last;
    int rv = store__log_first(s, txn, &first);
    if (rv != 0 || first == 0 || first > to) {
        return rv;
    }
    rv = store__log_last(s, txn, &last, NULL);
    if (rv != 0) {
        return rv;
    }
    return del_range(s, txn, first, to < last ? to : last);
}

int store__log_reset(struct store *s, MDB_txn *txn)
{
    /* Empties the DBI but keeps its handle valid. */
    return store__lmdb_err(mdb_drop(txn, s->log, 0));
}

int store__log_append(struct store *s, MDB_txn *txn, const struct raft_entry *e,
                      size_t n)
{
    if (n == 0) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (e[i].index != e[0].index + i) {
            return STORE_ERR_GAP;
        }
    }
    raft_index last;
    int rv = store__log_last(s, txn, &last, NULL);
    if (rv != 0) {
        return rv;
    }
    if (last == 0) {
        /* Empty log: it must continue from the snapshot (or start at 1). */
        struct raft_snapshot_meta m;
        rv = store__meta_snap_get(s, txn, &m);
        if (rv != 0) {
            return rv;
        }
        last = m.index;
        if (e[0].index > last + 1) {
            return STORE_ERR_GAP;
        }
    } else if (e[0].index > last + 1) {
        return STORE_ERR_GAP;
    } else if (e[0].index <= last) {
        /* Paper §5.3: a conflicting suffix is deleted before appending. */
        rv = store__log_truncate(s, txn, e[0].index);
        if (rv != 0) {
            return rv;
        }
    }

    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->log, &c);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    uint8_t kb[8];
    for (size_t i = 0; i < n; i++) {
        MDB_val k = {8, kb};
        MDB_val v = {HDR + e[i].data.len, NULL};
        store__put_be64(kb, e[i].index);
        /* Keys only grow past the truncation point: MDB_APPEND skips the
         * search, MDB_RESERVE the extra copy. */
        rc = mdb_cursor_put(c, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (rc != 0) {
            rv = store__lmdb_err(rc);
            break;
        }
        uint8_t *p = v.mv_data;
        store__put_be64(p, e[i].term);
        p[8] = e[i].type;
        if (e[i].data.len > 0) {
            memcpy(p + HDR, e[i].data.base, e[i].data.len);
        }
    }
    mdb_cursor_close(c);
    return rv;
}

/* Reads lo..hi into one malloc'd block: the array, then all the data. */
static int read_range(struct store *s, MDB_txn *txn, raft_index lo,
                      raft_index hi, struct raft_entry **out, size_t *n)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t kb[8];
    size_t count = 0, bytes = 0;
    int rv = 0;
    *out = NULL;
    *n = 0;
    if (hi < lo) {
        return 0;
    }
    int rc = mdb_cursor_open(txn, s->log, &c);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    /* Pass 1: count and check contiguity. */
    store__put_be64(kb, lo);
    k.mv_size = 8;
    k.mv_data = kb;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    while (rc == 0) {
        raft_index idx;
        raft_term term;
        uint8_t type;
        rv = decode(&k, &v, &idx, &term, &type);
        if (rv != 0) {
            goto out;
        }
        if (idx > hi) {
            break;
        }
        if (idx != lo + count) {
            rv = STORE_ERR_CORRUPT; /* a hole in the stored log */
            goto out;
        }
        count++;
        bytes += v.mv_size - HDR;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = store__lmdb_err(rc);
        goto out;
    }
    if (count == 0) {
        rv = -ENOENT;
        goto out;
    }
    struct raft_entry *es = malloc(count * sizeof *es + bytes);
    if (es == NULL) {
        rv = -ENOMEM;
        goto out;
    }
    uint8_t *data = (uint8_t *)(es + count);
    /* Pass 2: copy. Same txn, so the same records. */
    k.mv_size = 8;
    k.mv_data = kb;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    for (size_t i = 0; i < count && rc == 0; i++) {
        decode(&k, &v, &es[i].index, &es[i].term, &es[i].type);
        es[i].data.len = v.mv_size - HDR;
        es[i].data.base = es[i].data.len > 0 ? data : NULL;
        if (es[i].data.len > 0) {
            memcpy(data, (uint8_t *)v.mv_data + HDR, es[i].data.len);
        }
        data += es[i].data.len;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    *out = es;
    *n = count;
out:
    mdb_cursor_close(c);
    return rv;
}

int store_log_bounds(struct store *s, raft_index *first, raft_index *last)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    int rv = store__log_first(s, txn, first);
    if (rv == 0) {
        rv = store__log_last(s, txn, last, NULL);
    }
    if (rv == 0 && *last == 0) {
        struct raft_snapshot_meta m;
        rv = store__meta_snap_get(s, txn, &m);
        *last = m.index;
        *first = m.index + 1;
    }
    mdb_txn_abort(txn);
    return rv;
}

int store_log_term(struct store *s, raft_index index, raft_term *term)
{
    MDB_txn *txn;
    *term = 0;
    if (index == 0) {
        return 0;
    }
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    int rv = store__log_term(s, txn, index, term);
    if (rv == -ENOENT) {
        struct raft_snapshot_meta m;
        rv = store__meta_snap_get(s, txn, &m);
        if (rv == 0) {
            if (m.index == index) {
                *term = m.term;
            } else {
                rv = -ENOENT;
            }
        }
    }
    mdb_txn_abort(txn);
    return rv;
}

int store_log_get(struct store *s, raft_index lo, raft_index hi,
                  struct raft_entry **out, size_t *n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    int rv = read_range(s, txn, lo, hi, out, n);
    mdb_txn_abort(txn);
    return rv;
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
    if (rv == 0) {
        rv = store__log_first(s, txn, &first);
    }
    if (rv == 0) {
        rv = store__log_last(s, txn, &last, NULL);
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
    /* raft.h: the entries after the snapshot, first one at snap_index + 1. */
    if (last > m.index) {
        raft_index lo = first > m.index ? first : m.index + 1;
        if (lo != m.index + 1) {
            rv = STORE_ERR_CORRUPT; /* entries missing after the snapshot */
            goto out;
        }
        rv = read_range(s, txn, lo, last, &es, &n);
        if (rv == 0 && n != last - lo + 1) {
            rv = STORE_ERR_CORRUPT;
        }
        if (rv != 0) {
            free(es);
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
