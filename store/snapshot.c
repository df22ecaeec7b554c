/* State machine snapshots: build from one read txn, verify, restore. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsm_internal.h"

/*
 * Snapshot file (all integers big-endian):
 *
 *   header, 48 bytes
 *     0         8         12        16          24          32         40
 *     +---------+---------+---------+-----------+-----------+----------+
 *     | magic   | u32 ver | u32 hdr | u64 index | u64 term  | u64      |
 *     |"RFSSNAP\0"|  = 1  | len =48 | (applied) | (of index)| next_ino |
 *     +---------+---------+---------+-----------+-----------+----------+
 *     40        48
 *     | u64 bytes (sum of values) |
 *
 *   records, in DBI order then LMDB key order (so restore can append):
 *     +-------+----------+----------+-----+-------+
 *     | u8 db | u16 klen | u32 vlen | key | value |
 *     +-------+----------+----------+-----+-------+
 *     db: 1 "fsm", 2 "inode", 3 "dirent", 4 "data"; klen 1..511.
 *
 *   trailer
 *     +--------+---------------+-------------------------------------+
 *     | u8 0   | u64 n records | u32 CRC32C of every byte before it  |
 *     +--------+---------------+-------------------------------------+
 *
 * Nothing may follow the trailer. The header duplicates the state record
 * (db 1, key "state") so a file can be inspected without reading it all;
 * verify checks that they agree.
 */

#define SNAP_MAGIC "RFSSNAP"
#define SNAP_VERSION 1
#define SNAP_HDR_LEN 48
#define SNAP_REC_HDR 7
#define SNAP_KEY_MAX 511
#define SNAP_BUF (256 * 1024)

enum { DB_END = 0, DB_FSM = 1, DB_INODE, DB_DIRENT, DB_DATA, DB_N };

/* CRC32C (Castagnoli, reflected 0x82F63B78), slice-by-8. The table lives in
 * the reader/writer that uses it: no globals. */
struct crc {
    uint32_t t[8][256];
    uint32_t v;
};

static void crc_init(struct crc *c)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t r = i;
        for (int j = 0; j < 8; j++) {
            r = (r >> 1) ^ (0x82F63B78u & (0u - (r & 1)));
        }
        c->t[0][i] = r;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int s = 1; s < 8; s++) {
            c->t[s][i] = (c->t[s - 1][i] >> 8) ^ c->t[0][c->t[s - 1][i] & 0xff];
        }
    }
    c->v = 0xffffffffu;
}

static void crc_update(struct crc *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t v = c->v;

    while (len >= 8) {
        uint32_t lo = v ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        v = c->t[7][lo & 0xff] ^ c->t[6][(lo >> 8) & 0xff] ^
            c->t[5][(lo >> 16) & 0xff] ^ c->t[4][lo >> 24] ^ c->t[3][p[4]] ^
            c->t[2][p[5]] ^ c->t[1][p[6]] ^ c->t[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len-- > 0) {
        v = (v >> 8) ^ c->t[0][(v ^ *p++) & 0xff];
    }
    c->v = v;
}

static uint32_t crc_value(const struct crc *c)
{
    return c->v ^ 0xffffffffu;
}

/* ---- Writing: to a file (fd >= 0) or a growing memory buffer. ---- */

struct sink {
    int fd;
    uint8_t *buf;
    size_t len;
    size_t cap;
    uint64_t total;
    uint64_t records;
    struct crc crc;
};

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int sink_flush(struct sink *s)
{
    int rv = 0;
    if (s->fd >= 0 && s->len > 0) {
        rv = write_all(s->fd, s->buf, s->len);
        s->len = 0;
    }
    return rv;
}

static int sink_put(struct sink *s, const void *p, size_t len)
{
    int rv;

    crc_update(&s->crc, p, len);
    s->total += len;
    while (len > 0) {
        size_t room;
        if (s->len == s->cap) {
            if (s->fd >= 0) {
                if ((rv = sink_flush(s)) != 0) {
                    return rv;
                }
            } else {
                size_t cap = s->cap * 2;
                uint8_t *b = realloc(s->buf, cap);
                if (b == NULL) {
                    return -ENOMEM;
                }
                s->buf = b;
                s->cap = cap;
            }
        }
        room = s->cap - s->len;
        if (room > len) {
            room = len;
        }
        memcpy(s->buf + s->len, p, room);
        s->len += room;
        p = (const uint8_t *)p + room;
        len -= room;
    }
    return 0;
}

static int sink_record(struct sink *s, uint8_t db, const MDB_val *k,
                       const MDB_val *v)
{
    uint8_t hdr[SNAP_REC_HDR];
    int rv;

    hdr[0] = db;
    hdr[1] = (uint8_t)(k->mv_size >> 8);
    hdr[2] = (uint8_t)k->mv_size;
    fsm__put_u32(hdr + 3, (uint32_t)v->mv_size);
    if ((rv = sink_put(s, hdr, sizeof hdr)) != 0 ||
        (rv = sink_put(s, k->mv_data, k->mv_size)) != 0 ||
        (rv = sink_put(s, v->mv_data, v->mv_size)) != 0) {
        return rv;
    }
    s->records++;
    return 0;
}

static MDB_dbi db_handle(struct store_fsm *f, int db)
{
    switch (db) {
    case DB_FSM: return f->state;
    case DB_INODE: return f->inode;
    case DB_DIRENT: return f->dirent;
    default: return f->data;
    }
}

/* Every record of the four DBIs as seen by txn, in file order. */
static int sink_records(struct store_fsm *f, MDB_txn *txn, struct sink *s)
{
    for (int db = DB_FSM; db < DB_N; db++) {
        MDB_cursor *cur;
        MDB_val k, v;
        int rc;
        int rv = 0;

        if ((rc = mdb_cursor_open(txn, db_handle(f, db), &cur)) != 0) {
            return fsm__lmdb_err(rc);
        }
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            if ((rv = sink_record(s, (uint8_t)db, &k, &v)) != 0) {
                break;
            }
        }
        mdb_cursor_close(cur);
        if (rv != 0) {
            return rv;
        }
        if (rc != MDB_NOTFOUND) {
            return fsm__lmdb_err(rc);
        }
    }
    return 0;
}

static int sink_init(struct sink *s, int fd)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->cap = SNAP_BUF;
    s->buf = malloc(s->cap);
    if (s->buf == NULL) {
        return -ENOMEM;
    }
    crc_init(&s->crc);
    return 0;
}

int store_fsm_dump(struct store_fsm *f, void **buf, size_t *len)
{
    struct sink s;
    MDB_txn *txn;
    int rc;
    int rv;

    *buf = NULL;
    *len = 0;
    if ((rv = sink_init(&s, -1)) != 0) {
        return rv;
    }
    if ((rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn)) != 0) {
        free(s.buf);
        return fsm__lmdb_err(rc);
    }
    rv = sink_records(f, txn, &s);
    mdb_txn_abort(txn);
    if (rv != 0) {
        free(s.buf);
        return rv;
    }
    *buf = s.buf;
    *len = s.len;
    return 0;
}

int store__fsm_snapshot_build(struct store_fsm *f, MDB_txn *rtxn,
                              const char *path, raft_index *index,
                              uint64_t *size)
{
    uint8_t hdr[SNAP_HDR_LEN];
    uint8_t end[13];
    struct fsm_state st;
    struct sink s;
    int fd;
    int rv;

    rv = fsm__state_get(f, rtxn, &st);
    if (rv != 0) {
        return rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    if ((rv = sink_init(&s, fd)) != 0) {
        goto err_fd;
    }

    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, SNAP_MAGIC, sizeof SNAP_MAGIC); /* with its NUL: 8 bytes */
    fsm__put_u32(hdr + 8, SNAP_VERSION);
    fsm__put_u32(hdr + 12, SNAP_HDR_LEN);
    fsm__put_u64(hdr + 16, st.applied);
    fsm__put_u64(hdr + 24, st.applied_term);
    fsm__put_u64(hdr + 32, st.next_ino);
    fsm__put_u64(hdr + 40, st.bytes);
    if ((rv = sink_put(&s, hdr, sizeof hdr)) != 0 ||
        (rv = sink_records(f, rtxn, &s)) != 0) {
        goto err_sink;
    }
    end[0] = DB_END;
    fsm__put_u64(end + 1, s.records);
    if ((rv = sink_put(&s, end, 9)) != 0) {
        goto err_sink;
    }
    fsm__put_u32(end + 9, crc_value(&s.crc));
    if ((rv = sink_put(&s, end + 9, 4)) != 0 || (rv = sink_flush(&s)) != 0) {
        goto err_sink;
    }
    if (fsync(fd) != 0) {
        rv = -errno;
        goto err_sink;
    }
    free(s.buf);
    if (close(fd) != 0) {
        rv = -errno;
        goto err_path;
    }
    *index = st.applied;
    *size = s.total;
    return 0;

err_sink:
    free(s.buf);
err_fd:
    close(fd);
err_path:
    unlink(path);
    return rv;
}

/* ---- Reading: verify (txn == NULL) or load into txn. ---- */

struct source {
    int fd;
    uint8_t *buf;
    size_t len; /* bytes in buf */
    size_t pos; /* next unread byte in buf */
    struct crc crc;
};

/* Reads exactly len bytes into out (NULL: skip them), through the CRC
 * unless `raw`. A short file is STORE_ERR_CORRUPT. */
static int src_get(struct source *r, void *out, size_t len, bool raw)
{
    uint8_t *o = out;

    while (len > 0) {
        size_t n;
        if (r->pos == r->len) {
            ssize_t got = read(r->fd, r->buf, SNAP_BUF);
            if (got < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return -errno;
            }
            if (got == 0) {
                return STORE_ERR_CORRUPT; /* truncated */
            }
            r->len = (size_t)got;
            r->pos = 0;
        }
        n = r->len - r->pos;
        if (n > len) {
            n = len;
        }
        if (!raw) {
            crc_update(&r->crc, r->buf + r->pos, n);
        }
        if (o != NULL) {
            memcpy(o, r->buf + r->pos, n);
            o += n;
        }
        r->pos += n;
        len -= n;
    }
    return 0;
}

/* LMDB's default key order: memcmp, then the shorter key first. */
static int keycmp(const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen;
}

struct snap_head {
    raft_index index;
    raft_term term;
    uint64_t next_ino;
    uint64_t bytes;
};

static int check_header(struct source *r, struct snap_head *h)
{
    uint8_t hdr[SNAP_HDR_LEN];
    int rv;

    if ((rv = src_get(r, hdr, sizeof hdr, false)) != 0) {
        return rv;
    }
    if (memcmp(hdr, SNAP_MAGIC, sizeof SNAP_MAGIC) != 0) {
        return STORE_ERR_CORRUPT;
    }
    if (fsm__get_u32(hdr + 8) != SNAP_VERSION) {
        return STORE_ERR_VERSION;
    }
    if (fsm__get_u32(hdr + 12) != SNAP_HDR_LEN) {
        return STORE_ERR_CORRUPT;
    }
    h->index = fsm__get_u64(hdr + 16);
    h->term = fsm__get_u64(hdr + 24);
    h->next_ino = fsm__get_u64(hdr + 32);
    h->bytes = fsm__get_u64(hdr + 40);
    return 0;
}

/* Checks one record's key and (small) value against the layout of fsm.h.
 * `first_inode` is true for the first record of the inode DBI. */
static int check_record(int db, const uint8_t *k, size_t klen,
                        const uint8_t *v, size_t vlen,
                        const struct snap_head *h, bool first_inode)
{
    struct fsm_state st;
    struct store_attr a;
    uint64_t ino;

    switch (db) {
    case DB_FSM:
        if (klen != FSM_STATE_KEY_LEN ||
            memcmp(k, FSM_STATE_KEY, klen) != 0 ||
            fsm__state_decode(v, vlen, &st) != 0 || st.applied != h->index ||
            st.applied_term != h->term || st.next_ino != h->next_ino ||
            st.bytes != h->bytes) {
            return STORE_ERR_CORRUPT;
        }
        return 0;
    case DB_INODE:
        if (klen != 8) {
            return STORE_ERR_CORRUPT;
        }
        ino = fsm__get_u64(k);
        if (ino == 0 || ino >= h->next_ino ||
            fsm__inode_decode(ino, v, vlen, &a) != 0 ||
            (first_inode &&
             (ino != STORE_ROOT_INO || a.type != STORE_TYPE_DIR))) {
            return STORE_ERR_CORRUPT;
        }
        return 0;
    case DB_DIRENT:
        if (klen < 9 || vlen != FSM_DIRENT_VAL_LEN ||
            fsm__name_check((const char *)k + 8, klen - 8) != 0 ||
            fsm__type_mode(v[8]) == 0 || fsm__get_u64(v) >= h->next_ino) {
            return STORE_ERR_CORRUPT;
        }
        return 0;
    default: /* DB_DATA: checked by length only, the content is opaque */
        if (klen != 8 || vlen == 0 || vlen > STORE_FSM_VALUE_HARD_MAX) {
            return STORE_ERR_CORRUPT;
        }
        return 0;
    }
}

/*
 * One pass over a snapshot file: verifies it completely when txn is NULL;
 * otherwise (the file was verified before) appends every record to the
 * (emptied) DBIs in txn.
 */
static int scan(struct source *r, struct store_fsm *f, MDB_txn *txn,
                struct snap_head *h)
{
    uint8_t key[SNAP_KEY_MAX];
    uint8_t prev[SNAP_KEY_MAX];
    uint8_t val[FSM_INODE_LEN];
    uint8_t tail[12];
    size_t prev_len = 0;
    uint64_t n = 0;
    bool state_seen = false;
    bool inode_seen = false;
    int prev_db = DB_END;
    int rv;

    if ((rv = check_header(r, h)) != 0) {
        return rv;
    }
    for (;;) {
        uint8_t rec[SNAP_REC_HDR];
        size_t klen, vlen;
        MDB_val k, v;
        int db;
        int rc;

        if ((rv = src_get(r, rec, 1, false)) != 0) {
            return rv;
        }
        db = rec[0];
        if (db == DB_END) {
            break;
        }
        if (db >= DB_N || db < prev_db) {
            return STORE_ERR_CORRUPT;
        }
        if ((rv = src_get(r, rec + 1, SNAP_REC_HDR - 1, false)) != 0) {
            return rv;
        }
        klen = (size_t)rec[1] << 8 | rec[2];
        vlen = fsm__get_u32(rec + 3);
        if (klen == 0 || klen > SNAP_KEY_MAX ||
            (db != DB_DATA && vlen > sizeof val)) {
            return STORE_ERR_CORRUPT;
        }
        if ((rv = src_get(r, key, klen, false)) != 0) {
            return rv;
        }
        if (db == prev_db && keycmp(prev, prev_len, key, klen) >= 0) {
            return STORE_ERR_CORRUPT; /* out of order or duplicate */
        }
        if (db != DB_DATA && (rv = src_get(r, val, vlen, false)) != 0) {
            return rv;
        }
        if ((rv = check_record(db, key, klen, val, vlen, h,
                               db == DB_INODE && !inode_seen)) != 0) {
            return rv;
        }
        state_seen |= db == DB_FSM;
        inode_seen |= db == DB_INODE;

        k.mv_data = key;
        k.mv_size = klen;
        v.mv_data = val;
        v.mv_size = vlen;
        if (txn == NULL) {
            if (db == DB_DATA && (rv = src_get(r, NULL, vlen, false)) != 0) {
                return rv;
            }
        } else if (db == DB_DATA) {
            /* Read the value straight into the space LMDB reserves. */
            rc = mdb_put(txn, f->data, &k, &v, MDB_APPEND | MDB_RESERVE);
            if (rc != 0) {
                return fsm__lmdb_err(rc);
            }
            if ((rv = src_get(r, v.mv_data, vlen, false)) != 0) {
                return rv;
            }
        } else {
            rc = mdb_put(txn, db_handle(f, db), &k, &v, MDB_APPEND);
            if (rc != 0) {
                return fsm__lmdb_err(rc);
            }
        }
        memcpy(prev, key, klen);
        prev_len = klen;
        prev_db = db;
        n++;
    }
    if ((rv = src_get(r, tail, 8, false)) != 0 ||
        (rv = src_get(r, tail + 8, 4, true)) != 0) {
        return rv;
    }
    if (fsm__get_u64(tail) != n || !state_seen || !inode_seen ||
        fsm__get_u32(tail + 8) != crc_value(&r->crc)) {
        return STORE_ERR_CORRUPT;
    }
    /* Nothing may follow the trailer. */
    if (src_get(r, tail, 1, true) != STORE_ERR_CORRUPT) {
        return STORE_ERR_CORRUPT;
    }
    return 0;
}

static int scan_file(const char *path, struct store_fsm *f, MDB_txn *txn,
                     struct snap_head *h)
{
    struct source r;
    int rv;

    memset(&r, 0, sizeof r);
    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r.fd < 0) {
        return -errno;
    }
    r.buf = malloc(SNAP_BUF);
    if (r.buf == NULL) {
        close(r.fd);
        return -ENOMEM;
    }
    crc_init(&r.crc);
    rv = scan(&r, f, txn, h);
    free(r.buf);
    close(r.fd);
    return rv;
}

int store__fsm_snapshot_verify(const char *path, raft_index *index,
                               raft_term *term)
{
    struct snap_head h;
    int rv = scan_file(path, NULL, NULL, &h);

    if (rv == 0 && index != NULL) {
        *index = h.index;
    }
    if (rv == 0 && term != NULL) {
        *term = h.term;
    }
    return rv;
}

int store__fsm_snapshot_restore(struct store_fsm *f, MDB_txn *txn,
                                const char *path, raft_index *index)
{
    struct snap_head h;
    struct snap_head h2;
    int rv;
    int rc;

    /* Phase 1: the whole file, before anything is touched. */
    if ((rv = scan_file(path, NULL, NULL, &h)) != 0) {
        return rv;
    }
    /* Phase 2: replace the content in the caller's txn. The file is read
     * again (it may be far bigger than memory); if it changed in between,
     * its CRC no longer matches and the caller aborts the txn. */
    for (int db = DB_FSM; db < DB_N; db++) {
        if ((rc = mdb_drop(txn, db_handle(f, db), 0)) != 0) {
            return fsm__lmdb_err(rc);
        }
    }
    if ((rv = scan_file(path, f, txn, &h2)) != 0) {
        return rv;
    }
    if (h2.index != h.index) {
        return STORE_ERR_CORRUPT;
    }
    *index = h.index;
    return 0;
}
