/* The Raft log's write-ahead log: segments, records, recovery (see wal.h). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAGIC "RAFTFSWL"
#define VERSION 1u
#define SEG_HDR STORE_WAL_SEG_HDR
#define REC_HDR STORE_WAL_REC_HDR
#define KIND_ENTRY 1
#define FLAG_END 0x1
#define TMP_NAME "wal.tmp"
#define ZERO_CHUNK ((size_t)1 << 20)

/* ---- CRC32C (Castagnoli), slicing by 8; tables live in the wal. ---- */

static void crc_init(struct store_wal *w)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t r = i;
        for (int j = 0; j < 8; j++) {
            r = (r >> 1) ^ (0x82F63B78u & (0u - (r & 1)));
        }
        w->crc[0][i] = r;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int k = 1; k < 8; k++) {
            w->crc[k][i] =
                (w->crc[k - 1][i] >> 8) ^ w->crc[0][w->crc[k - 1][i] & 0xff];
        }
    }
}

/* v is the running (inverted) value: start with 0xffffffff, finish with
 * ^ 0xffffffff (crc_done). */
static uint32_t crc_upd(const struct store_wal *w, uint32_t v, const void *buf,
                        size_t len)
{
    const uint8_t *p = buf;
    while (len >= 8) {
        uint32_t lo = v ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        v = w->crc[7][lo & 0xff] ^ w->crc[6][(lo >> 8) & 0xff] ^
            w->crc[5][(lo >> 16) & 0xff] ^ w->crc[4][lo >> 24] ^
            w->crc[3][p[4]] ^ w->crc[2][p[5]] ^ w->crc[1][p[6]] ^
            w->crc[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len-- > 0) {
        v = (v >> 8) ^ w->crc[0][(v ^ *p++) & 0xff];
    }
    return v;
}

static uint32_t crc32c(const struct store_wal *w, const void *buf, size_t len)
{
    return crc_upd(w, 0xffffffffu, buf, len) ^ 0xffffffffu;
}

/* hcrc of a record header h in a segment with this salt. */
static uint32_t hdr_crc(const struct store_wal *w, uint64_t salt,
                        const uint8_t *h)
{
    uint8_t sb[8];
    store__put_be64(sb, salt);
    uint32_t v = crc_upd(w, 0xffffffffu, sb, 8);
    return crc_upd(w, v, h + 4, REC_HDR - 4) ^ 0xffffffffu;
}

static size_t rec_size(size_t len)
{
    return REC_HDR + ((len + 7) & ~(size_t)7);
}

/* ---- Small file helpers. ---- */

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
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
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
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

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

static void seg_path(const struct store_wal *w, char *buf, uint64_t seq)
{
    snprintf(buf, PATH_MAX, "%s/wal-%016" PRIx64, w->dir, seq);
}

static int sync_dir(struct store_wal *w)
{
    return fsync(w->dir_fd) == 0 ? 0 : -errno;
}

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
static int seg_create(struct store_wal *w, uint64_t seq, uint64_t size,
                      struct store_wal_seg *seg)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/" TMP_NAME, w->dir);
    seg_path(w, path, seq);
    uint8_t *zeros = calloc(1, ZERO_CHUNK);
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
    for (uint64_t off = 0; off < size && rv == 0; off += ZERO_CHUNK) {
        size_t len =
            size - off < ZERO_CHUNK ? (size_t)(size - off) : ZERO_CHUNK;
        rv = pwrite_all(fd, zeros, len, off);
    }
    uint8_t h[SEG_HDR];
    uint64_t salt = new_salt();
    memset(h, 0, sizeof h);
    memcpy(h, MAGIC, 8);
    store__put_be32(h + 8, VERSION);
    store__put_be32(h + 12, SEG_HDR);
    store__put_be64(h + 16, seq);
    store__put_be64(h + 24, salt);
    store__put_be64(h + 32, size);
    store__put_be32(h + 60, crc32c(w, h, 60));
    if (rv == 0) {
        rv = pwrite_all(fd, h, sizeof h, 0);
    }
    if (rv == 0 && fsync(fd) != 0) {
        rv = -errno;
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = -errno;
    }
    if (rv == 0) {
        rv = sync_dir(w);
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
    seg->end = SEG_HDR;
    seg->fd = fd;
    return 0;
}

static int segs_push(struct store_wal *w, const struct store_wal_seg *seg)
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

static struct store_wal_seg *seg_of(struct store_wal *w, uint64_t seq)
{
    return &w->segs[seq - w->segs[0].seq];
}

/* ---- The in-memory index. Callers hold mu (or run alone at open). ---- */

/* Room for `more` entries after the last one. */
static int idx_room(struct store_wal *w, size_t more)
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
static int idx_put(struct store_wal *w, raft_index index,
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
    int rv = idx_room(w, 1);
    if (rv != 0) {
        return rv;
    }
    w->ents[w->head + w->n++] = *e;
    return 0;
}

static const struct store_wal_ent *idx_get(const struct store_wal *w,
                                           raft_index index)
{
    if (w->n == 0 || index < w->first || index - w->first >= w->n) {
        return NULL;
    }
    return &w->ents[w->head + (index - w->first)];
}

static void idx_compact(struct store_wal *w, raft_index to)
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

/* ---- Recovery. ---- */

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
    if (p + REC_HDR > sg->size) {
        return false;
    }
    if (store__get_be32(h) != hdr_crc(w, sg->salt, h)) {
        return false;
    }
    *len = store__get_be32(h + 8);
    if (h[12] != KIND_ENTRY || (h[14] & ~FLAG_END) != 0 || h[15] != 0 ||
        store__get_be64(h + 24) == 0 || rec_size(*len) > sg->size - p) {
        return false;
    }
    if (store__get_be32(h + 4) != crc32c(w, h + REC_HDR, *len)) {
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
    uint64_t p = SEG_HDR;
    uint32_t len;
    uint64_t bseq;
    int rv;
    for (;;) {
        if (p + REC_HDR > sg->size || all_zero(buf + p, REC_HDR) ||
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
        p += rec_size(len);
        if ((h[14] & FLAG_END) == 0) {
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
            rv = idx_put(w, sc->pend[i].index, &sc->pend[i].e);
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
        if (sc->n_pend > 0 || !all_zero(buf + p, sg->size - p)) {
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
    for (uint64_t q = p + 8; q + REC_HDR <= sg->size;) {
        if (all_zero(buf + q, REC_HDR) ||
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
        q += rec_size(len);
    }
    sc->n_pend = 0;
    uint64_t nz = sg->size;
    while (nz > tail && buf[nz - 1] == 0) {
        nz--;
    }
    if (nz > tail) {
        /* Overwrite the torn batch so that no stale record can ever follow
         * a new one. */
        uint64_t len0 = ((nz - tail) + 7) & ~(uint64_t)7;
        if (len0 > sg->size - tail) {
            len0 = sg->size - tail;
        }
        memset(buf + tail, 0, (size_t)len0);
        rv = pwrite_all(sg->fd, buf + tail, (size_t)len0, tail);
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
        if (strcmp(name, TMP_NAME) == 0) {
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
    qsort(v, *n, sizeof *v, cmp_u64);
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
    seg_path(w, path, seq);
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
    if (st.st_size < SEG_HDR + REC_HDR || (uint64_t)st.st_size > SIZE_MAX / 2) {
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
    rv = pread_all(sg.fd, buf, (size_t)sg.size, 0);
    if (rv != 0) {
        fmt_err(msg, msglen, rv, "read %s: %s", path, strerror(-rv));
        goto err;
    }
    if (memcmp(buf, MAGIC, 8) != 0 || store__get_be32(buf + 8) != VERSION ||
        store__get_be32(buf + 12) != SEG_HDR ||
        store__get_be64(buf + 16) != seq ||
        store__get_be32(buf + 60) != crc32c(w, buf, 60)) {
        rv = fmt_err(msg, msglen, STORE_ERR_CORRUPT,
                     "%s: bad WAL segment header", path);
        goto err;
    }
    sg.salt = store__get_be64(buf + 24);
    sg.end = SEG_HDR;
    rv = scan_seg(w, sc, &sg, buf, last, path, msg, msglen);
    if (rv == 0) {
        rv = segs_push(w, &sg);
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
    crc_init(w);
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
        rv = seg_create(w, 1, w->seg_size, &sg);
        if (rv == 0) {
            rv = segs_push(w, &sg);
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
    idx_compact(w, compacted);
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
    const struct store_wal_ent *e = idx_get(w, index);
    if (e != NULL) {
        *term = e->term;
    }
    pthread_mutex_unlock(&w->mu);
    return e != NULL ? 0 : -ENOENT;
}

/* Reads and verifies the record of entry `index` into dst (e->len bytes);
 * scratch holds REC_HDR bytes. */
static int read_rec(struct store_wal *w, raft_index index,
                    const struct store_wal_ent *e, uint8_t *dst)
{
    const struct store_wal_seg *sg = seg_of(w, e->seq);
    uint8_t h[REC_HDR];
    int rv = pread_all(sg->fd, h, REC_HDR, e->off);
    if (rv == 0 && e->len > 0) {
        rv = pread_all(sg->fd, dst, e->len, e->off + REC_HDR);
    }
    if (rv == -EIO) {
        return STORE_ERR_CORRUPT; /* shorter than it was at open */
    }
    if (rv != 0) {
        return rv;
    }
    if (store__get_be32(h) != hdr_crc(w, sg->salt, h) ||
        store__get_be32(h + 8) != e->len || store__get_be64(h + 24) != index ||
        store__get_be32(h + 4) != crc32c(w, dst, e->len)) {
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
    if (idx_get(w, lo) == NULL) {
        rv = -ENOENT;
        goto out;
    }
    raft_index last = w->first + w->n - 1;
    if (hi > last) {
        hi = last;
    }
    size_t count = (size_t)(hi - lo + 1), bytes = 0;
    for (size_t i = 0; i < count; i++) {
        bytes += idx_get(w, lo + i)->len;
    }
    struct raft_entry *es = malloc(count * sizeof *es + bytes);
    if (es == NULL) {
        rv = -ENOMEM;
        goto out;
    }
    uint8_t *data = (uint8_t *)(es + count);
    for (size_t i = 0; i < count && rv == 0; i++) {
        const struct store_wal_ent *e = idx_get(w, lo + i);
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
        bytes += rec_size(e[i]->data.len);
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
    if (SEG_HDR + bytes > size) {
        size = ((uint64_t)SEG_HDR + bytes + 4095) & ~(uint64_t)4095;
    }
    struct store_wal_seg sg;
    int rv = seg_create(w, a->seq + 1, size, &sg);
    if (rv != 0) {
        return rv;
    }
    pthread_mutex_lock(&w->mu);
    rv = segs_push(w, &sg);
    pthread_mutex_unlock(&w->mu);
    if (rv != 0) {
        /* Leave no segment behind that the list does not know. */
        char path[PATH_MAX];
        seg_path(w, path, sg.seq);
        close(sg.fd);
        unlink(path);
        sync_dir(w);
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
    int rv = idx_room(w, n);
    pthread_mutex_unlock(&w->mu);
    if (rv != 0) {
        return rv;
    }
    uint64_t bseq = w->next_bseq;
    uint8_t *p = w->buf;
    for (size_t i = 0; i < n; i++) {
        size_t len = e[i]->data.len;
        size_t sz = rec_size(len);
        memset(p, 0, sz);
        if (len > 0) {
            memcpy(p + REC_HDR, e[i]->data.base, len);
        }
        store__put_be32(p + 4, crc32c(w, p + REC_HDR, len));
        store__put_be32(p + 8, (uint32_t)len);
        p[12] = KIND_ENTRY;
        p[13] = e[i]->type;
        p[14] = i + 1 == n ? FLAG_END : 0;
        store__put_be64(p + 16, bseq);
        store__put_be64(p + 24, e[i]->index);
        store__put_be64(p + 32, e[i]->term);
        store__put_be32(p, hdr_crc(w, a->salt, p));
        p += sz;
    }
    /* The one sync of a durable append: the file's size and blocks do not
     * change (preallocated), so fdatasync flushes data only. */
    rv = pwrite_all(a->fd, w->buf, bytes, a->end);
    if (rv != 0) {
        /* The write itself failed (-ENOSPC on a copy-on-write file system,
         * -EIO): put the zeros back and sync them, so the tail is clean
         * and the batch can be retried. */
        memset(w->buf, 0, bytes);
        if (pwrite_all(a->fd, w->buf, bytes, a->end) == 0 &&
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
        rv = idx_put(w, e[i]->index, &ent);
        off += rec_size(e[i]->data.len);
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
    idx_compact(w, to);
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
        seg_path(w, path, w->segs[done].seq);
        if (unlink(path) != 0 && errno != ENOENT) {
            rv = -errno;
            break;
        }
        rv = sync_dir(w);
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
