/* WAL recovery: opening the segments, checking and replaying them. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_internal.h"

static int fmt_err(char *msg, size_t msglen, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fmt_err(char *msg, size_t msglen, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return rv;
}

/* ---- Recovery. ---- */

/* The offset after the last non-zero byte of buf[from, to), or from if
 * they are all zero. Word at a time: a segment is megabytes of zeros. */
static uint64_t nonzero_end(const uint8_t *buf, uint64_t from, uint64_t to)
{
    while (to > from && (to & 7) != 0) {
        if (buf[to - 1] != 0) {
            return to;
        }
        to--;
    }
    while (to >= from + 8) {
        uint64_t v;
        memcpy(&v, buf + to - 8, 8);
        if (v != 0) {
            break;
        }
        to -= 8;
    }
    while (to > from && buf[to - 1] == 0) {
        to--;
    }
    return to;
}

struct pend {
    raft_index index;
    struct store_wal_ent e;
};

struct scan {
    uint64_t dead;
    bool have_bseq;
    uint64_t last_bseq; /* of the last complete batch */
    struct pend *pend;  /* records of the batch being read */
    size_t n_pend, cap_pend;
    uint64_t pend_bseq;
    uint64_t pend_start;
};

/* A record header at buf[p] (segment of `size` bytes) that verifies, with
 * its data; fills the fields. */
static bool rec_valid(const struct store_wal *w, const struct store_wal_seg *sg,
                      const uint8_t *buf, uint64_t p, uint32_t *len,
                      uint64_t *bseq)
{
    const uint8_t *h = buf + p;
    if (p + WAL_REC_HDR > sg->size) {
        return false;
    }
    if (store__get_be32(h) != store__wal_hdr_crc(w, sg->salt, h)) {
        return false;
    }
    *len = store__get_be32(h + 8);
    if (h[12] != WAL_KIND_ENTRY || (h[14] & ~WAL_FLAG_END) != 0 || h[15] != 0 ||
        store__get_be64(h + 24) == 0 ||
        store__wal_rec_size(*len) > sg->size - p) {
        return false;
    }
    if (store__get_be32(h + 4) != store__wal_crc32c(w, h + WAL_REC_HDR, *len)) {
        return false;
    }
    *bseq = store__get_be64(h + 16);
    return true;
}

static int pend_push(struct scan *sc, const struct pend *pd)
{
    if (sc->n_pend == sc->cap_pend) {
        size_t cap = sc->cap_pend == 0 ? 64 : sc->cap_pend * 2;
        struct pend *p = realloc(sc->pend, cap * sizeof *p);
        if (p == NULL) {
            return -ENOMEM;
        }
        sc->pend = p;
        sc->cap_pend = cap;
    }
    sc->pend[sc->n_pend++] = *pd;
    return 0;
}

/* Scans one segment read into buf. */
static int scan_seg(struct store_wal *w, struct scan *sc,
                    struct store_wal_seg *sg, uint8_t *buf, bool last,
                    const char *path, char *msg, size_t msglen)
{
    uint64_t p = WAL_SEG_HDR;
    uint32_t len;
    uint64_t bseq;
    int rv;
    for (;;) {
        if (p + WAL_REC_HDR > sg->size ||
            store__wal_zero(buf + p, WAL_REC_HDR) ||
            !rec_valid(w, sg, buf, p, &len, &bseq)) {
            break;
        }
        const uint8_t *h = buf + p;
        if (sc->n_pend > 0 && bseq != sc->pend_bseq) {
            return fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                           "%s: offset %" PRIu64 ": batch %" PRIu64
                           " starts before batch %" PRIu64 " ended",
                           path, p, bseq, sc->pend_bseq);
        }
        if (sc->n_pend == 0) {
            if (sc->have_bseq && bseq != sc->last_bseq + 1) {
                return fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                               "%s: offset %" PRIu64 ": batch %" PRIu64
                               " follows batch %" PRIu64,
                               path, p, bseq, sc->last_bseq);
            }
            sc->pend_bseq = bseq;
            sc->pend_start = p;
        }
        struct pend pd = {.index = store__get_be64(h + 24),
                          .e = {.seq = sg->seq,
                                .off = p,
                                .len = len,
                                .type = h[13],
                                .term = store__get_be64(h + 32)}};
        if ((rv = pend_push(sc, &pd)) != 0) {
            return rv;
        }
        p += store__wal_rec_size(len);
        if ((h[14] & WAL_FLAG_END) == 0) {
            continue;
        }
        /* A complete batch: it counts. */
        for (size_t i = 0; i < sc->n_pend; i++) {
            if (sc->pend[i].index > sg->max_idx) {
                sg->max_idx = sc->pend[i].index;
            }
            if (bseq <= sc->dead) {
                continue; /* discarded by a snapshot install */
            }
            rv = store__wal_idx_put(w, sc->pend[i].index, &sc->pend[i].e);
            if (rv == STORE_ERR_GAP) {
                return fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                               "%s: offset %" PRIu64 ": entry %" PRIu64
                               " leaves a gap in the log",
                               path, sc->pend[i].e.off, sc->pend[i].index);
            }
            if (rv != 0) {
                return rv;
            }
        }
        sg->max_bseq = bseq;
        sg->end = p;
        sc->have_bseq = true;
        sc->last_bseq = bseq;
        sc->n_pend = 0;
    }
    if (!last) {
        /* Synced before the next segment got anything: must be whole. */
        if (sc->n_pend > 0 || nonzero_end(buf, p, sg->size) != p) {
            return fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                           "%s: damaged record at offset %" PRIu64
                           " (not the last segment)",
                           path, sc->n_pend > 0 ? sc->pend_start : p);
        }
        return 0;
    }
    /* The last segment: a torn batch may end it, nothing else. A valid
     * record of another batch after the damaged spot means damage inside
     * data that was synced. */
    uint64_t tail = sc->n_pend > 0 ? sc->pend_start : p;
    bool known = sc->n_pend > 0 || sc->have_bseq;
    uint64_t torn = sc->n_pend > 0 ? sc->pend_bseq : sc->last_bseq + 1;
    uint64_t nz = nonzero_end(buf, tail, sg->size);
    for (uint64_t q = p + 8; q < nz && q + WAL_REC_HDR <= sg->size;) {
        if (store__wal_zero(buf + q, WAL_REC_HDR) ||
            !rec_valid(w, sg, buf, q, &len, &bseq)) {
            q += 8;
            continue;
        }
        if (!known) {
            known = true;
            torn = bseq;
        }
        if (bseq != torn) {
            return fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                           "%s: damaged record at offset %" PRIu64
                           " followed by batch %" PRIu64 " at offset %" PRIu64,
                           path, p, bseq, q);
        }
        q += store__wal_rec_size(len);
    }
    sc->n_pend = 0;
    if (nz > tail) {
        /* Overwrite the torn batch so that no stale record can ever follow
         * a new one. */
        uint64_t len0 = ((nz - tail) + 7) & ~(uint64_t)7;
        if (len0 > sg->size - tail) {
            len0 = sg->size - tail;
        }
        memset(buf + tail, 0, (size_t)len0);
        rv = store__wal_pwrite(sg->fd, buf + tail, (size_t)len0, tail);
        if (rv == 0 && fdatasync(sg->fd) != 0) {
            rv = -errno;
        }
        if (rv != 0) {
            return fmt_err(msg, msglen, rv, "%s: clearing the torn tail: %s",
                           path, strerror(-rv));
        }
    }
    sg->end = tail;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The seq numbers of the wal-* files, sorted; removes wal.tmp. */
static int list_segs(struct store_wal *w, uint64_t **out, size_t *n)
{
    size_t cap = 0;
    uint64_t *v = NULL;
    *n = 0;
    DIR *d = opendir(w->dir);
    if (d == NULL) {
        return -errno;
    }
    struct dirent *de;
    int rv = 0;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, WAL_TMP_NAME) == 0) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", w->dir, name);
            unlink(path);
            continue;
        }
        if (strncmp(name, "wal-", 4) != 0 || strlen(name) != 20 ||
            strspn(name + 4, "0123456789abcdef") != 16) {
            continue;
        }
        if (*n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (nv == NULL) {
                rv = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[(*n)++] = strtoull(name + 4, NULL, 16);
    }
    closedir(d);
    if (rv != 0) {
        free(v);
        *n = 0;
        return rv;
    }
    if (*n > 1) {
        qsort(v, *n, sizeof *v, cmp_u64);
    }
    *out = v;
    return 0;
}

static int open_seg(struct store_wal *w, uint64_t seq, struct scan *sc,
                    bool last, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    struct store_wal_seg sg;
    struct stat st;
    uint8_t *buf = NULL;
    int rv;
    store__wal_seg_path(w, path, seq);
    memset(&sg, 0, sizeof sg);
    sg.seq = seq;
    sg.fd = open(path, O_RDWR | O_CLOEXEC);
    if (sg.fd < 0) {
        rv = -errno;
        return fmt_err(msg, msglen, rv, "open %s: %s", path, strerror(-rv));
    }
    if (fstat(sg.fd, &st) != 0) {
        rv = -errno;
        fmt_err(msg, msglen, rv, "stat %s: %s", path, strerror(-rv));
        goto err;
    }
    if (st.st_size < WAL_SEG_HDR + WAL_REC_HDR ||
        (uint64_t)st.st_size > SIZE_MAX / 2) {
        rv = fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                     "%s: %lld bytes, not a WAL segment", path,
                     (long long)st.st_size);
        goto err;
    }
    sg.size = (uint64_t)st.st_size;
    buf = malloc((size_t)sg.size);
    if (buf == NULL) {
        rv = -ENOMEM;
        goto err;
    }
    rv = store__wal_pread(sg.fd, buf, (size_t)sg.size, 0);
    if (rv != 0) {
        fmt_err(msg, msglen, rv, "read %s: %s", path, strerror(-rv));
        goto err;
    }
    if (memcmp(buf, WAL_MAGIC, 8) != 0 ||
        store__get_be32(buf + 8) != WAL_VERSION ||
        store__get_be32(buf + 12) != WAL_SEG_HDR ||
        store__get_be64(buf + 16) != seq ||
        store__get_be32(buf + 60) != store__wal_crc32c(w, buf, 60)) {
        rv = fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                     "%s: bad WAL segment header", path);
        goto err;
    }
    sg.salt = store__get_be64(buf + 24);
    sg.end = WAL_SEG_HDR;
    rv = scan_seg(w, sc, &sg, buf, last, path, msg, msglen);
    if (rv == 0) {
        rv = store__wal_segs_push(w, &sg);
    }
    if (rv != 0) {
        goto err;
    }
    free(buf);
    return 0;
err:
    free(buf);
    close(sg.fd);
    return rv;
}

int store__wal_open(struct store_wal *w, int dir_fd, char *dir, size_t seg_size,
                    raft_index compacted, uint64_t dead, char *msg,
                    size_t msglen)
{
    uint64_t *seqs = NULL;
    size_t n = 0;
    struct scan sc;
    int rv;

    memset(w, 0, sizeof *w);
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        return fmt_err(msg, msglen, -ENOMEM, "pthread_mutex_init failed");
    }
    w->dir_fd = dir_fd;
    w->dir = dir;
    w->seg_size = seg_size != 0 ? seg_size : STORE_WAL_SEGMENT_SIZE;
    if (w->seg_size < 4096) {
        w->seg_size = 4096;
    }
    store__crc32c_init(&w->crc);
    memset(&sc, 0, sizeof sc);
    sc.dead = dead;

    rv = list_segs(w, &seqs, &n);
    if (rv != 0) {
        fmt_err(msg, msglen, rv, "%s: listing WAL segments: %s", dir,
                strerror(-rv));
        goto err;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && seqs[i] != seqs[i - 1] + 1) {
            rv = fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                         "%s: WAL segment %016" PRIx64 " is missing", dir,
                         seqs[i - 1] + 1);
            goto err;
        }
        rv = open_seg(w, seqs[i], &sc, i + 1 == n, msg, msglen);
        if (rv != 0) {
            goto err;
        }
    }
    if (n == 0) {
        struct store_wal_seg sg;
        rv = store__wal_seg_create(w, 1, w->seg_size, &sg);
        if (rv == 0) {
            rv = store__wal_segs_push(w, &sg);
            if (rv != 0) {
                close(sg.fd);
            }
        }
        if (rv != 0) {
            fmt_err(msg, msglen, rv, "%s: creating the WAL: %s", dir,
                    strerror(-rv));
            goto err;
        }
    }
    w->next_bseq =
        (sc.have_bseq && sc.last_bseq > dead ? sc.last_bseq : dead) + 1;
    store__wal_idx_compact(w, compacted);
    free(sc.pend);
    free(seqs);
    return 0;
err:
    free(sc.pend);
    free(seqs);
    store__wal_close(w);
    return rv;
}

void store__wal_close(struct store_wal *w)
{
    for (size_t i = 0; i < w->n_segs; i++) {
        close(w->segs[i].fd);
    }
    free(w->segs);
    free(w->ents);
    free(w->buf);
    pthread_mutex_destroy(&w->mu);
    memset(w, 0, sizeof *w);
}
