/* WAL building blocks: CRC32C, file IO, segment creation, the index. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "wal_internal.h"

/* ---- CRC32C (crc32c.h); the tables live in the wal. ---- */

uint32_t store__wal_crc32c(const struct store_wal *w, const void *buf,
                           size_t len)
{
    return store__crc32c_update(&w->crc, 0xffffffffu, buf, len) ^ 0xffffffffu;
}

/* hcrc of a record header h in a segment with this salt. */
uint32_t store__wal_hdr_crc(const struct store_wal *w, uint64_t salt,
                            const uint8_t *h)
{
    uint8_t sb[8];
    store__put_be64(sb, salt);
    uint32_t v = store__crc32c_update(&w->crc, 0xffffffffu, sb, 8);
    v = store__crc32c_update(&w->crc, v, h + 4, WAL_REC_HDR - 4);
    return v ^ 0xffffffffu;
}

/* ---- Small file helpers. ---- */

int store__wal_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes; -EIO if the file is shorter. */
int store__wal_pread(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

void store__wal_seg_path(const struct store_wal *w, char *buf, uint64_t seq)
{
    snprintf(buf, PATH_MAX, "%s/wal-%016" PRIx64, w->dir, seq);
}

int store__wal_sync_dir(struct store_wal *w)
{
    return fsync(w->dir_fd) == 0 ? 0 : -errno;
}

/* ---- Segment creation. ---- */

static uint64_t new_salt(void)
{
    uint64_t salt = 0;
    if (getrandom(&salt, sizeof salt, GRND_NONBLOCK) != (ssize_t)sizeof salt) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        salt = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
               ((uint64_t)getpid() << 16);
    }
    return salt;
}

/* Prepares wal.tmp at its full size (zeros, then the header), fsyncs it,
 * renames it to wal-<seq> and fsyncs the directory. Off the common path:
 * once per segment. */
int store__wal_seg_create(struct store_wal *w, uint64_t seq, uint64_t size,
                          struct store_wal_seg *seg)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/" WAL_TMP_NAME, w->dir);
    store__wal_seg_path(w, path, seq);
    uint8_t *zeros = calloc(1, WAL_ZERO_CHUNK);
    if (zeros == NULL) {
        return -ENOMEM;
    }
    int rv = 0;
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rv = -errno;
        free(zeros);
        return rv;
    }
    for (uint64_t off = 0; off < size && rv == 0; off += WAL_ZERO_CHUNK) {
        size_t len =
            size - off < WAL_ZERO_CHUNK ? (size_t)(size - off) : WAL_ZERO_CHUNK;
        rv = store__wal_pwrite(fd, zeros, len, off);
    }
    uint8_t h[WAL_SEG_HDR];
    uint64_t salt = new_salt();
    memset(h, 0, sizeof h);
    memcpy(h, WAL_MAGIC, 8);
    store__put_be32(h + 8, WAL_VERSION);
    store__put_be32(h + 12, WAL_SEG_HDR);
    store__put_be64(h + 16, seq);
    store__put_be64(h + 24, salt);
    store__put_be64(h + 32, size);
    store__put_be32(h + 60, store__wal_crc32c(w, h, 60));
    if (rv == 0) {
        rv = store__wal_pwrite(fd, h, sizeof h, 0);
    }
    if (rv == 0 && fsync(fd) != 0) {
        rv = -errno;
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = -errno;
    }
    if (rv == 0) {
        rv = store__wal_sync_dir(w);
    }
    free(zeros);
    if (rv != 0) {
        close(fd);
        unlink(tmp);
        unlink(path);
        return rv;
    }
    memset(seg, 0, sizeof *seg);
    seg->seq = seq;
    seg->salt = salt;
    seg->size = size;
    seg->end = WAL_SEG_HDR;
    seg->fd = fd;
    return 0;
}

int store__wal_segs_push(struct store_wal *w, const struct store_wal_seg *seg)
{
    if (w->n_segs == w->cap_segs) {
        size_t cap = w->cap_segs == 0 ? 8 : w->cap_segs * 2;
        struct store_wal_seg *s = realloc(w->segs, cap * sizeof *s);
        if (s == NULL) {
            return -ENOMEM;
        }
        w->segs = s;
        w->cap_segs = cap;
    }
    w->segs[w->n_segs++] = *seg;
    return 0;
}

/* ---- The in-memory index. Callers hold mu (or run alone at open). ---- */

/* Room for `more` entries after the last one. */
int store__wal_idx_room(struct store_wal *w, size_t more)
{
    if (w->head + w->n + more <= w->cap) {
        return 0;
    }
    if (w->head > 0) {
        memmove(w->ents, w->ents + w->head, w->n * sizeof *w->ents);
        w->head = 0;
        if (w->n + more <= w->cap) {
            return 0;
        }
    }
    size_t cap = w->cap == 0 ? 1024 : w->cap;
    while (cap < w->n + more) {
        cap *= 2;
    }
    struct store_wal_ent *e = realloc(w->ents, cap * sizeof *e);
    if (e == NULL) {
        return -ENOMEM;
    }
    w->ents = e;
    w->cap = cap;
    return 0;
}

/* The replay rule: an index <= last first truncates there; an index
 * before the first stored one replaces the whole log. */
int store__wal_idx_put(struct store_wal *w, raft_index index,
                       const struct store_wal_ent *e)
{
    if (w->n == 0 || index < w->first) {
        w->n = 0;
        w->head = 0;
        w->first = index;
    } else if (index <= w->first + w->n - 1) {
        w->n = (size_t)(index - w->first);
    } else if (index != w->first + w->n) {
        return STORE_ERR_GAP;
    }
    int rv = store__wal_idx_room(w, 1);
    if (rv != 0) {
        return rv;
    }
    w->ents[w->head + w->n++] = *e;
    return 0;
}

const struct store_wal_ent *store__wal_idx_get(const struct store_wal *w,
                                               raft_index index)
{
    if (w->n == 0 || index < w->first || index - w->first >= w->n) {
        return NULL;
    }
    return &w->ents[w->head + (index - w->first)];
}

void store__wal_idx_compact(struct store_wal *w, raft_index to)
{
    if (w->n == 0 || to < w->first) {
        return;
    }
    if (to - w->first + 1 >= w->n) {
        w->n = 0;
        w->head = 0;
        return;
    }
    size_t drop = (size_t)(to - w->first + 1);
    w->head += drop;
    w->n -= drop;
    w->first = to + 1;
}
