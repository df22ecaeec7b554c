/* State machine snapshots: the file format, CRC32C, and building one. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsm_internal.h"

/*
 * Raft paper §7: a snapshot is the state machine as of the last included
 * index, with that entry's term; it is taken from one LMDB read txn, so the
 * writer keeps applying meanwhile (the copy-on-write of thesis §5.2).
 *
 * Snapshot file (all integers big-endian):
 *
 *   header, 48 bytes
 *     0            8         12        16          24          32
 *     +------------+---------+---------+-----------+-----------+
 *     | magic      | u32 ver | u32 hdr | u64 index | u64 term  |
 *     | "RFSSNAP\0" |  = 1    | len =48 | (applied) | (of index)|
 *     +------------+---------+---------+-----------+-----------+
 *     32           40          48
 *     +------------+-----------+
 *     | u64        | u64 bytes |
 *     | next_ino   | (values)  |
 *     +------------+-----------+
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

void fsm__crc_init(struct fsm_crc *c)
{
    store__crc32c_init(&c->tab);
    c->v = 0xffffffffu;
}

void fsm__crc_update(struct fsm_crc *c, const void *buf, size_t len)
{
    c->v = store__crc32c_update(&c->tab, c->v, buf, len);
}

uint32_t fsm__crc_value(const struct fsm_crc *c)
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
    struct fsm_crc crc;
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

    fsm__crc_update(&s->crc, p, len);
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
    uint8_t hdr[FSM_SNAP_REC_HDR];
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

MDB_dbi fsm__snap_dbi(struct store_fsm *f, int db)
{
    switch (db) {
    case FSM_DB_FSM: return f->state;
    case FSM_DB_INODE: return f->inode;
    case FSM_DB_DIRENT: return f->dirent;
    default: return f->data;
    }
}

/* Every record of the four DBIs as seen by txn, in file order. */
static int sink_records(struct store_fsm *f, MDB_txn *txn, struct sink *s)
{
    for (int db = FSM_DB_FSM; db < FSM_DB_N; db++) {
        MDB_cursor *cur;
        MDB_val k, v;
        int rc;
        int rv = 0;

        if ((rc = mdb_cursor_open(txn, fsm__snap_dbi(f, db), &cur)) != 0) {
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
    s->cap = FSM_SNAP_BUF;
    s->buf = malloc(s->cap);
    if (s->buf == NULL) {
        return -ENOMEM;
    }
    fsm__crc_init(&s->crc);
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
    uint8_t hdr[FSM_SNAP_HDR_LEN];
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
    memcpy(hdr, FSM_SNAP_MAGIC, sizeof FSM_SNAP_MAGIC); /* 8 with the NUL */
    fsm__put_u32(hdr + 8, FSM_SNAP_VERSION);
    fsm__put_u32(hdr + 12, FSM_SNAP_HDR_LEN);
    fsm__put_u64(hdr + 16, st.applied);
    fsm__put_u64(hdr + 24, st.applied_term);
    fsm__put_u64(hdr + 32, st.next_ino);
    fsm__put_u64(hdr + 40, st.bytes);
    if ((rv = sink_put(&s, hdr, sizeof hdr)) != 0 ||
        (rv = sink_records(f, rtxn, &s)) != 0) {
        goto err_sink;
    }
    end[0] = FSM_DB_END;
    fsm__put_u64(end + 1, s.records);
    if ((rv = sink_put(&s, end, 9)) != 0) {
        goto err_sink;
    }
    fsm__put_u32(end + 9, fsm__crc_value(&s.crc));
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
