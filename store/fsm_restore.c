/* Reading state machine snapshots: verify a file fully, then restore it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsm_internal.h"

/* The file layout is drawn in snapshot.c. */

struct source {
    int fd;
    uint8_t *buf;
    size_t len; /* bytes in buf */
    size_t pos; /* next unread byte in buf */
    struct fsm_crc crc;
};

/* Reads exactly len bytes into out (NULL: skip them), through the CRC
 * unless `raw`. A short file is STORE_ERR_CORRUPT. */
static int src_get(struct source *r, void *out, size_t len, bool raw)
{
    uint8_t *o = out;

    while (len > 0) {
        size_t n;
        if (r->pos == r->len) {
            ssize_t got = read(r->fd, r->buf, FSM_SNAP_BUF);
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
            fsm__crc_update(&r->crc, r->buf + r->pos, n);
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
    uint8_t hdr[FSM_SNAP_HDR_LEN];
    int rv;

    if ((rv = src_get(r, hdr, sizeof hdr, false)) != 0) {
        return rv;
    }
    if (memcmp(hdr, FSM_SNAP_MAGIC, sizeof FSM_SNAP_MAGIC) != 0) {
        return STORE_ERR_CORRUPT;
    }
    if (fsm__get_u32(hdr + 8) != FSM_SNAP_VERSION) {
        return STORE_ERR_VERSION;
    }
    if (fsm__get_u32(hdr + 12) != FSM_SNAP_HDR_LEN) {
        return STORE_ERR_CORRUPT;
    }
    h->index = fsm__get_u64(hdr + 16);
    h->term = fsm__get_u64(hdr + 24);
    h->next_ino = fsm__get_u64(hdr + 32);
    h->bytes = fsm__get_u64(hdr + 40);
    return 0;
}

/* What a scan adds up, to check the records against each other: every
 * file's size must have a value of that size, which a record-by-record check
 * cannot see (values come after all inodes); sums and counts catch it. */
struct tally {
    bool state_seen;
    uint64_t inodes;     /* inode records */
    uint64_t sizes;      /* sum of inode sizes */
    uint64_t nonempty;   /* inodes with size > 0 */
    uint64_t data_bytes; /* sum of data value lengths */
    uint64_t data;       /* data records */
};

/* Checks one record's key and (small) value against the layout of fsm.h
 * and adds it to the tally. */
static int check_record(int db, const uint8_t *k, size_t klen,
                        const uint8_t *v, size_t vlen,
                        const struct snap_head *h, struct tally *t)
{
    struct fsm_state st;
    struct store_attr a;
    uint64_t ino;

    switch (db) {
    case FSM_DB_FSM:
        if (klen != FSM_STATE_KEY_LEN ||
            memcmp(k, FSM_STATE_KEY, klen) != 0 ||
            fsm__state_decode(v, vlen, &st) != 0 || st.applied != h->index ||
            st.applied_term != h->term || st.next_ino != h->next_ino ||
            st.bytes != h->bytes) {
            return STORE_ERR_CORRUPT;
        }
        t->state_seen = true;
        return 0;
    case FSM_DB_INODE:
        if (klen != 8) {
            return STORE_ERR_CORRUPT;
        }
        ino = fsm__get_u64(k);
        if (ino == 0 || ino >= h->next_ino ||
            fsm__inode_decode(ino, v, vlen, &a) != 0 ||
            (t->inodes == 0 &&
             (ino != STORE_ROOT_INO || a.type != STORE_TYPE_DIR)) ||
            (a.type == STORE_TYPE_DIR && a.size != 0) ||
            a.size > STORE_FSM_VALUE_HARD_MAX) {
            return STORE_ERR_CORRUPT;
        }
        t->inodes++;
        t->sizes += a.size;
        t->nonempty += a.size > 0;
        return 0;
    case FSM_DB_DIRENT:
        if (klen < 9 || vlen != FSM_DIRENT_VAL_LEN ||
            fsm__name_check((const char *)k + 8, klen - 8) != 0 ||
            fsm__type_mode(v[8]) == 0 || fsm__get_u64(v) >= h->next_ino) {
            return STORE_ERR_CORRUPT;
        }
        return 0;
    default: /* FSM_DB_DATA: checked by length only, the content is opaque */
        if (klen != 8 || vlen == 0 || vlen > STORE_FSM_VALUE_HARD_MAX ||
            fsm__get_u64(k) >= h->next_ino) {
            return STORE_ERR_CORRUPT;
        }
        t->data++;
        t->data_bytes += vlen;
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
    uint8_t key[FSM_SNAP_KEY_MAX];
    uint8_t prev[FSM_SNAP_KEY_MAX];
    uint8_t val[FSM_INODE_LEN];
    uint8_t tail[12];
    size_t prev_len = 0;
    uint64_t n = 0;
    struct tally t;
    int prev_db = FSM_DB_END;
    int rv;

    memset(&t, 0, sizeof t);
    if ((rv = check_header(r, h)) != 0) {
        return rv;
    }
    for (;;) {
        uint8_t rec[FSM_SNAP_REC_HDR];
        size_t klen, vlen;
        MDB_val k, v;
        int db;
        int rc;

        if ((rv = src_get(r, rec, 1, false)) != 0) {
            return rv;
        }
        db = rec[0];
        if (db == FSM_DB_END) {
            break;
        }
        if (db >= FSM_DB_N || db < prev_db) {
            return STORE_ERR_CORRUPT;
        }
        if ((rv = src_get(r, rec + 1, FSM_SNAP_REC_HDR - 1, false)) != 0) {
            return rv;
        }
        klen = (size_t)rec[1] << 8 | rec[2];
        vlen = fsm__get_u32(rec + 3);
        if (klen == 0 || klen > FSM_SNAP_KEY_MAX ||
            (db != FSM_DB_DATA && vlen > sizeof val)) {
            return STORE_ERR_CORRUPT;
        }
        if ((rv = src_get(r, key, klen, false)) != 0) {
            return rv;
        }
        if (db == prev_db && keycmp(prev, prev_len, key, klen) >= 0) {
            return STORE_ERR_CORRUPT; /* out of order or duplicate */
        }
        if (db != FSM_DB_DATA && (rv = src_get(r, val, vlen, false)) != 0) {
            return rv;
        }
        if ((rv = check_record(db, key, klen, val, vlen, h, &t)) != 0) {
            return rv;
        }

        k.mv_data = key;
        k.mv_size = klen;
        v.mv_data = val;
        v.mv_size = vlen;
        if (txn == NULL) {
            if (db == FSM_DB_DATA && (rv = src_get(r, NULL, vlen, false)) != 0) {
                return rv;
            }
        } else if (db == FSM_DB_DATA) {
            /* Read the value straight into the space LMDB reserves. */
            rc = mdb_put(txn, f->data, &k, &v, MDB_APPEND | MDB_RESERVE);
            if (rc != 0) {
                return fsm__lmdb_err(rc);
            }
            if ((rv = src_get(r, v.mv_data, vlen, false)) != 0) {
                return rv;
            }
        } else {
            rc = mdb_put(txn, fsm__snap_dbi(f, db), &k, &v, MDB_APPEND);
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
    if (fsm__get_u64(tail) != n || !t.state_seen || t.inodes == 0 ||
        t.sizes != h->bytes || t.data_bytes != h->bytes ||
        t.nonempty != t.data ||
        fsm__get_u32(tail + 8) != fsm__crc_value(&r->crc)) {
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
    r.buf = malloc(FSM_SNAP_BUF);
    if (r.buf == NULL) {
        close(r.fd);
        return -ENOMEM;
    }
    fsm__crc_init(&r.crc);
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

static int reserve_file(struct store_fsm *f, const char *path)
{
    struct stat st;
    if (f->mapres == NULL) {
        return 0;
    }
    if (stat(path, &st) != 0) {
        return -errno;
    }
    return store__mapres_add(f->mapres, 2 * (uint64_t)st.st_size);
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
     * its CRC no longer matches and the caller aborts the txn. The pages
     * dropped are not reusable before the commit: the whole content may
     * land past data.mdb's end (mapres.h), twice the file is room enough
     * for the records and their pages. */
    if ((rv = reserve_file(f, path)) != 0) {
        return rv;
    }
    for (int db = FSM_DB_FSM; db < FSM_DB_N; db++) {
        if ((rc = mdb_drop(txn, fsm__snap_dbi(f, db), 0)) != 0) {
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
