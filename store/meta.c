/* Hard state, snapshot metadata and applied configuration in the "meta" DBI. */

#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * Records of the "meta" DBI besides the identity (see env.c), keys ASCII:
 *
 *   "hard" -> +-------------+-------------+
 *             | u64 BE term | u64 BE vote |      Raft paper Fig. 2
 *             +-------------+-------------+
 *
 *   "snap" -> +--------------+-------------+-------------+--------------+
 *             | u64 BE index | u64 BE term | u64 BE size | config bytes |
 *             +--------------+-------------+-------------+--------------+
 *             the current snapshot (its file is snapshot-<index>)
 *
 *   "wal"  -> +------------------+-------------+
 *             | u64 BE compacted | u64 BE dead |   the WAL's marks (wal.h):
 *             +------------------+-------------+   entries <= compacted are
 *             not in the log; WAL batches with bseq <= dead were discarded
 *             by a snapshot install. Absent: 0, 0.
 *
 *   "conf" -> +--------------+--------------+
 *             | u64 BE index | config bytes |  the last applied CONFIG
 *             +--------------+--------------+  entry: a snapshot's config
 *
 * "config bytes" is raft.h's configuration encoding (little-endian):
 *
 *   +---------+---------+------------------------------------------+
 *   | u8 ver=1| u8 n    | n x { u64 id | u8 role | u8 alen | addr } |
 *   +---------+---------+------------------------------------------+
 */

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

size_t store__config_encode(const struct raft_config *c, uint8_t *buf)
{
    size_t off = 0;
    buf[off++] = 1;
    buf[off++] = (uint8_t)c->n;
    for (unsigned i = 0; i < c->n && i < RAFT_MAX_SERVERS; i++) {
        const struct raft_server *sv = &c->servers[i];
        size_t alen = strnlen(sv->addr, RAFT_ADDR_MAX - 1);
        put_le64(buf + off, sv->id);
        off += 8;
        buf[off++] = sv->role;
        buf[off++] = (uint8_t)alen;
        memcpy(buf + off, sv->addr, alen);
        off += alen;
    }
    return off;
}

int store__config_decode(const void *data, size_t len, struct raft_config *c)
{
    const uint8_t *p = data;
    size_t off = 2;
    memset(c, 0, sizeof *c);
    if (len < 2 || p[0] != 1 || p[1] > RAFT_MAX_SERVERS) {
        return STORE_ERR_CORRUPT;
    }
    c->n = p[1];
    for (unsigned i = 0; i < c->n; i++) {
        struct raft_server *sv = &c->servers[i];
        if (len - off < 10) {
            return STORE_ERR_CORRUPT;
        }
        sv->id = get_le64(p + off);
        sv->role = p[off + 8];
        size_t alen = p[off + 9];
        off += 10;
        if (alen >= RAFT_ADDR_MAX || len - off < alen) {
            return STORE_ERR_CORRUPT;
        }
        memcpy(sv->addr, p + off, alen);
        sv->addr[alen] = '\0';
        off += alen;
    }
    return off == len ? 0 : STORE_ERR_CORRUPT;
}

static int get(struct store *s, MDB_txn *txn, const char *key, MDB_val *v)
{
    MDB_val k = {strlen(key), (void *)key};
    int rc = mdb_get(txn, s->meta, &k, v);
    if (rc == MDB_NOTFOUND) {
        return 1;
    }
    return store__lmdb_err(rc);
}

static int put(struct store *s, MDB_txn *txn, const char *key, const void *val,
               size_t len)
{
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {len, (void *)val};
    return store__lmdb_err(mdb_put(txn, s->meta, &k, &v, 0));
}

/* A record of two big-endian u64s under `key`; 0, 0 when absent. */
static int pair_get(struct store *s, MDB_txn *txn, const char *key,
                    uint64_t *a, uint64_t *b)
{
    MDB_val v;
    int rv = get(s, txn, key, &v);
    *a = 0;
    *b = 0;
    if (rv != 0) {
        return rv > 0 ? 0 : rv;
    }
    if (v.mv_size != 16) {
        return STORE_ERR_CORRUPT;
    }
    *a = store__get_be64(v.mv_data);
    *b = store__get_be64((uint8_t *)v.mv_data + 8);
    return 0;
}

static int pair_put(struct store *s, MDB_txn *txn, const char *key,
                    uint64_t a, uint64_t b)
{
    uint8_t buf[16];
    store__put_be64(buf, a);
    store__put_be64(buf + 8, b);
    return put(s, txn, key, buf, sizeof buf);
}

int store__meta_hard_get(struct store *s, MDB_txn *txn, raft_term *term,
                         raft_id *vote)
{
    return pair_get(s, txn, "hard", term, vote);
}

int store__meta_hard_put(struct store *s, MDB_txn *txn, raft_term term,
                         raft_id vote)
{
    return pair_put(s, txn, "hard", term, vote);
}

int store__meta_snap_get(struct store *s, MDB_txn *txn,
                         struct raft_snapshot_meta *m)
{
    MDB_val v;
    memset(m, 0, sizeof *m);
    int rv = get(s, txn, "snap", &v);
    if (rv != 0) {
        return rv > 0 ? 0 : rv;
    }
    if (v.mv_size < 24) {
        return STORE_ERR_CORRUPT;
    }
    const uint8_t *p = v.mv_data;
    m->index = store__get_be64(p);
    m->term = store__get_be64(p + 8);
    m->size = store__get_be64(p + 16);
    return store__config_decode(p + 24, v.mv_size - 24, &m->config);
}

int store__meta_snap_put(struct store *s, MDB_txn *txn,
                         const struct raft_snapshot_meta *m)
{
    uint8_t b[24 + STORE_CONFIG_MAX];
    store__put_be64(b, m->index);
    store__put_be64(b + 8, m->term);
    store__put_be64(b + 16, m->size);
    size_t n = store__config_encode(&m->config, b + 24);
    return put(s, txn, "snap", b, 24 + n);
}

int store__meta_wal_get(struct store *s, MDB_txn *txn, raft_index *compacted,
                        uint64_t *dead)
{
    return pair_get(s, txn, "wal", compacted, dead);
}

int store__meta_wal_put(struct store *s, MDB_txn *txn, raft_index compacted,
                        uint64_t dead)
{
    return pair_put(s, txn, "wal", compacted, dead);
}

int store__meta_conf_get(struct store *s, MDB_txn *txn, raft_index *index,
                         struct raft_config *c)
{
    MDB_val v;
    *index = 0;
    memset(c, 0, sizeof *c);
    int rv = get(s, txn, "conf", &v);
    if (rv != 0) {
        return rv > 0 ? 0 : rv;
    }
    if (v.mv_size < 8) {
        return STORE_ERR_CORRUPT;
    }
    *index = store__get_be64(v.mv_data);
    return store__config_decode((uint8_t *)v.mv_data + 8, v.mv_size - 8, c);
}

int store__meta_conf_put_raw(struct store *s, MDB_txn *txn, raft_index index,
                             const struct raft_buf *data)
{
    MDB_val k = {4, "conf"};
    MDB_val v = {8 + data->len, NULL};
    /* MDB_RESERVE: one copy of the config bytes, straight into the page. */
    int rc = mdb_put(txn, s->meta, &k, &v, MDB_RESERVE);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    store__put_be64(v.mv_data, index);
    if (data->len > 0) {
        memcpy((uint8_t *)v.mv_data + 8, data->base, data->len);
    }
    return 0;
}

int store__meta_conf_put(struct store *s, MDB_txn *txn, raft_index index,
                         const struct raft_config *c)
{
    uint8_t b[STORE_CONFIG_MAX];
    struct raft_buf buf = {b, store__config_encode(c, b)};
    return store__meta_conf_put_raw(s, txn, index, &buf);
}

/* Public getters: one short read transaction each. */

int store_hard_state(struct store *s, raft_term *term, raft_id *vote)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    int rv = store__meta_hard_get(s, txn, term, vote);
    mdb_txn_abort(txn);
    return rv;
}

int store_snapshot_meta(struct store *s, struct raft_snapshot_meta *m)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    int rv = store__meta_snap_get(s, txn, m);
    mdb_txn_abort(txn);
    return rv;
}

int store_applied(struct store *s, raft_index *applied)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return store__lmdb_err(rc);
    }
    *applied = store__applied(s, txn);
    mdb_txn_abort(txn);
    return 0;
}
