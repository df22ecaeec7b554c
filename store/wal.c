/* The Raft log's write-ahead log: reads, appends, compaction and segment
 * deletion (format and rules in wal.h; recovery in wal_recover.c). */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wal_internal.h"

/* ---- Reads. ---- */

void store__wal_bounds(struct store_wal *w, raft_index *first, raft_index *last)
{
    pthread_mutex_lock(&w->mu);
    if (w->n == 0) {
        *first = 0;
        *last = 0;
    } else {
        *first = w->first;
        *last = w->first + w->n - 1;
    }
    pthread_mutex_unlock(&w->mu);
}

int store__wal_term(struct store_wal *w, raft_index index, raft_term *term)
{
    pthread_mutex_lock(&w->mu);
    const struct store_wal_ent *e = store__wal_idx_get(w, index);
    if (e != NULL) {
        *term = e->term;
    }
    pthread_mutex_unlock(&w->mu);
    return e != NULL ? 0 : -ENOENT;
}

/* Reads and verifies the record of entry `index` into dst (e->len bytes);
 * scratch holds WAL_REC_HDR bytes. */
static int read_rec(struct store_wal *w, raft_index index,
                    const struct store_wal_ent *e, uint8_t *dst)
{
    const struct store_wal_seg *sg = store__wal_seg_of(w, e->seq);
    uint8_t h[WAL_REC_HDR];
    int rv = store__wal_pread(sg->fd, h, WAL_REC_HDR, e->off);
    if (rv == 0 && e->len > 0) {
        rv = store__wal_pread(sg->fd, dst, e->len, e->off + WAL_REC_HDR);
    }
    if (rv == -EIO) {
        return STORE_ERR_CORRUPT; /* shorter than it was at open */
    }
    if (rv != 0) {
        return rv;
    }
    if (store__get_be32(h) != store__wal_hdr_crc(w, sg->salt, h) ||
        store__get_be32(h + 8) != e->len || store__get_be64(h + 24) != index ||
        store__get_be32(h + 4) != store__wal_crc32c(w, dst, e->len)) {
        return STORE_ERR_CORRUPT;
    }
    return 0;
}

int store__wal_get(struct store_wal *w, raft_index lo, raft_index hi,
                   struct raft_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (hi < lo) {
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    int rv = 0;
    if (store__wal_idx_get(w, lo) == NULL) {
        rv = -ENOENT;
        goto out;
    }
    raft_index last = w->first + w->n - 1;
    if (hi > last) {
        hi = last;
    }
    size_t count = (size_t)(hi - lo + 1), bytes = 0;
    for (size_t i = 0; i < count; i++) {
        bytes += store__wal_idx_get(w, lo + i)->len;
    }
    struct raft_entry *es = malloc(count * sizeof *es + bytes);
    if (es == NULL) {
        rv = -ENOMEM;
        goto out;
    }
    uint8_t *data = (uint8_t *)(es + count);
    for (size_t i = 0; i < count && rv == 0; i++) {
        const struct store_wal_ent *e = store__wal_idx_get(w, lo + i);
        es[i].index = lo + i;
        es[i].term = e->term;
        es[i].type = e->type;
        es[i].data.len = e->len;
        es[i].data.base = e->len > 0 ? data : NULL;
        rv = read_rec(w, lo + i, e, data);
        data += e->len;
    }
    if (rv != 0) {
        free(es);
        goto out;
    }
    *out = es;
    *n = count;
out:
    pthread_mutex_unlock(&w->mu);
    return rv;
}

/* ---- Writes. ---- */

size_t store__wal_bytes(const struct raft_entry *const *e, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += store__wal_rec_size(e[i]->data.len);
    }
    return bytes;
}

uint64_t store__wal_last_bseq(const struct store_wal *w)
{
    return w->next_bseq - 1;
}

int store__wal_reserve(struct store_wal *w, size_t bytes)
{
    if (w->broken) {
        return -EIO;
    }
    struct store_wal_seg *a = &w->segs[w->n_segs - 1];
    if (a->end + bytes <= a->size) {
        return 0;
    }
    /* A batch never spans segments: one fdatasync covers it. */
    uint64_t size = w->seg_size;
    if (WAL_SEG_HDR + bytes > size) {
        size = ((uint64_t)WAL_SEG_HDR + bytes + 4095) & ~(uint64_t)4095;
    }
    struct store_wal_seg sg;
    int rv = store__wal_seg_create(w, a->seq + 1, size, &sg);
    if (rv != 0) {
        return rv;
    }
    pthread_mutex_lock(&w->mu);
    rv = store__wal_segs_push(w, &sg);
    pthread_mutex_unlock(&w->mu);
    if (rv != 0) {
        /* Leave no segment behind that the list does not know. */
        char path[PATH_MAX];
        store__wal_seg_path(w, path, sg.seq);
        close(sg.fd);
        unlink(path);
        store__wal_sync_dir(w);
    }
    return rv;
}

int store__wal_write(struct store_wal *w, const struct raft_entry *const *e,
                     size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (w->broken) {
        return -EIO;
    }
    struct store_wal_seg *a = &w->segs[w->n_segs - 1];
    size_t bytes = store__wal_bytes(e, n);
    if (a->end + bytes > a->size) {
        return -ENOSPC; /* store__wal_reserve was not called: a bug */
    }
    if (bytes > w->buf_cap) {
        uint8_t *b = realloc(w->buf, bytes);
        if (b == NULL) {
            return -ENOMEM;
        }
        w->buf = b;
        w->buf_cap = bytes;
    }
    pthread_mutex_lock(&w->mu);
    int rv = store__wal_idx_room(w, n);
    pthread_mutex_unlock(&w->mu);
    if (rv != 0) {
        return rv;
    }
    uint64_t bseq = w->next_bseq;
    uint8_t *p = w->buf;
    for (size_t i = 0; i < n; i++) {
        size_t len = e[i]->data.len;
        size_t sz = store__wal_rec_size(len);
        memset(p, 0, sz);
        if (len > 0) {
            memcpy(p + WAL_REC_HDR, e[i]->data.base, len);
        }
        store__put_be32(p + 4, store__wal_crc32c(w, p + WAL_REC_HDR, len));
        store__put_be32(p + 8, (uint32_t)len);
        p[12] = WAL_KIND_ENTRY;
        p[13] = e[i]->type;
        p[14] = i + 1 == n ? WAL_FLAG_END : 0;
        store__put_be64(p + 16, bseq);
        store__put_be64(p + 24, e[i]->index);
        store__put_be64(p + 32, e[i]->term);
        store__put_be32(p, store__wal_hdr_crc(w, a->salt, p));
        p += sz;
    }
    /* The one sync of a durable append: the file's size and blocks do not
     * change (preallocated), so fdatasync flushes data only. */
    rv = store__wal_pwrite(a->fd, w->buf, bytes, a->end);
    if (rv != 0) {
        /* The write itself failed (-ENOSPC on a copy-on-write file system,
         * -EIO): put the zeros back and sync them, so the tail is clean
         * and the batch can be retried. */
        memset(w->buf, 0, bytes);
        if (store__wal_pwrite(a->fd, w->buf, bytes, a->end) == 0 &&
            fdatasync(a->fd) == 0) {
            return rv;
        }
        w->broken = true;
        return rv;
    }
    if (fdatasync(a->fd) != 0) {
        rv = -errno;
    }
    if (rv != 0) {
        /* Part of the batch may be on disk (or in the page cache): a later
         * batch written at the same offset could end exactly where a stale
         * record of this one begins. Recovery clears it; until then, no
         * more writes. */
        w->broken = true;
        return rv;
    }
    pthread_mutex_lock(&w->mu);
    uint64_t off = a->end;
    for (size_t i = 0; i < n && rv == 0; i++) {
        struct store_wal_ent ent = {.seq = a->seq,
                                    .off = off,
                                    .len = (uint32_t)e[i]->data.len,
                                    .type = e[i]->type,
                                    .term = e[i]->term};
        rv = store__wal_idx_put(w, e[i]->index, &ent);
        off += store__wal_rec_size(e[i]->data.len);
        if (e[i]->index > a->max_idx) {
            a->max_idx = e[i]->index;
        }
    }
    a->end = off;
    a->max_bseq = bseq;
    pthread_mutex_unlock(&w->mu);
    w->next_bseq++;
    if (rv != 0) {
        w->broken = true; /* checked by the caller before: a bug */
    }
    return rv;
}

void store__wal_reset(struct store_wal *w)
{
    pthread_mutex_lock(&w->mu);
    w->n = 0;
    w->head = 0;
    pthread_mutex_unlock(&w->mu);
}

void store__wal_compact(struct store_wal *w, raft_index to)
{
    pthread_mutex_lock(&w->mu);
    store__wal_idx_compact(w, to);
    pthread_mutex_unlock(&w->mu);
}

int store__wal_gc(struct store_wal *w, raft_index upto, uint64_t dead)
{
    size_t k = 0;
    int rv = 0;
    while (k + 1 < w->n_segs &&
           (w->segs[k].max_idx <= upto || w->segs[k].max_bseq <= dead)) {
        k++;
    }
    if (k == 0) {
        return 0;
    }
    /* Oldest first, the directory synced after each: a crash leaves a
     * prefix deleted, never a hole (which recovery would call corrupt),
     * whatever order the file system would persist unlinks in. */
    size_t done = 0;
    for (; done < k && rv == 0; done++) {
        char path[PATH_MAX];
        store__wal_seg_path(w, path, w->segs[done].seq);
        if (unlink(path) != 0 && errno != ENOENT) {
            rv = -errno;
            break;
        }
        rv = store__wal_sync_dir(w);
    }
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < done; i++) {
        close(w->segs[i].fd);
    }
    memmove(w->segs, w->segs + done, (w->n_segs - done) * sizeof *w->segs);
    w->n_segs -= done;
    pthread_mutex_unlock(&w->mu);
    return rv;
}
