/* Unit tests of store/'s WAL: segments, truncation, compaction, install,
 * reopen, torn tails, corruption, a full disk. */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "test_store_util.h"

#define SEG 4096 /* small segments: ~60 short records each */

static char dir[PATH_MAX];
static struct store st;
static bool is_open;

static int try_open(size_t seg)
{
    struct store_options o;
    store_options_default(&o);
    o.dir = dir;
    o.create = true;
    o.cluster_id = "wal";
    o.node_id = 1;
    o.map_size = 64u << 20;
    o.wal_segment_size = seg;
    int rv = store_open(&st, &o);
    is_open = rv == 0;
    return rv;
}

static void open_store(void)
{
    int rv = try_open(SEG);
    ck_assert_msg(rv == 0, "store_open: %s", store_errmsg(&st));
}

static void close_store(void)
{
    if (is_open) {
        store_close(&st);
        is_open = false;
    }
}

static void reopen(void)
{
    close_store();
    open_store();
}

static void setup(void)
{
    tmpdir_make(dir, sizeof dir, "store_wal");
    open_store();
}

static void teardown(void)
{
    close_store();
    tmpdir_remove(dir);
}

/* NOOPs: the state machine can apply them. */
static void mk(struct ents *x, raft_index idx, size_t n, raft_term term)
{
    ents_make(x, idx, n, term, RAFT_ENTRY_NOOP);
}

static void write_ok(struct store_batch *b, struct store_write_result *r)
{
    int rv = store_write(&st, b, r);
    ck_assert_msg(rv == 0, "store_write: %s", store_strerror(rv));
}

static int append(raft_index idx, size_t n, raft_term term)
{
    return append_ents(&st, idx, n, term, RAFT_ENTRY_NOOP);
}

/* Appends lo..hi of `term` in batches of 1..7. */
static void append_range(raft_index lo, raft_index hi, raft_term term)
{
    size_t k = 1;
    while (lo <= hi) {
        size_t n = hi - lo + 1 < k ? (size_t)(hi - lo + 1) : k;
        ck_assert_int_eq(append(lo, n, term), 0);
        lo += n;
        k = k % 7 + 1;
    }
}

/* The stored log is exactly lo..hi, entry i of term term_of(i). */
typedef raft_term (*term_fn)(raft_index i);

static void expect_log(raft_index lo, raft_index hi, term_fn term_of)
{
    raft_index first, last;
    struct raft_entry *es;
    size_t n;
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(first, lo);
    ck_assert_uint_eq(last, hi);
    ck_assert_int_eq(store_log_get(&st, lo, hi, &es, &n), 0);
    ck_assert_uint_eq(n, hi - lo + 1);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        raft_term t = term_of(lo + i);
        snprintf(want, sizeof want, "e%llu-t%llu", (unsigned long long)(lo + i),
                 (unsigned long long)t);
        ck_assert_uint_eq(es[i].index, lo + i);
        ck_assert_uint_eq(es[i].term, t);
        ck_assert_uint_eq(es[i].data.len, strlen(want));
        ck_assert(memcmp(es[i].data.base, want, strlen(want)) == 0);
    }
    free(es);
    /* store_load agrees (a log from 1 needs no snapshot). */
    if (lo == 1) {
        struct raft_load l;
        ck_assert_int_eq(store_load(&st, &l), 0);
        ck_assert_uint_eq(l.n_entries, hi);
        ck_assert_uint_eq(l.entries[hi - 1].term, term_of(hi));
        store_load_close(&l);
    }
}

static raft_term term1(raft_index i)
{
    (void)i;
    return 1;
}

/* Segment files, oldest first. */
static size_t segments(uint64_t *seqs, size_t max)
{
    struct dirent **names;
    size_t k = 0;
    int n = scandir(dir, &names, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strncmp(nm, "wal-", 4) == 0) {
            if (k < max) {
                seqs[k] = strtoull(nm + 4, NULL, 16);
            }
            k++;
        }
        free(names[i]);
    }
    free(names);
    return k;
}

static void seg_file(char *buf, uint64_t seq)
{
    snprintf(buf, PATH_MAX + 32, "%s/wal-%016llx", dir,
             (unsigned long long)seq);
}

static uint64_t last_seg(void)
{
    uint64_t seqs[4096];
    size_t n = segments(seqs, 4096);
    ck_assert_uint_gt(n, 0);
    return seqs[n - 1];
}

/* Offsets of the records of a segment (wal.h: 64-byte header, then
 * 40-byte record headers, data padded to 8). */
static size_t records(uint64_t seq, uint64_t *offs, size_t max)
{
    char path[PATH_MAX + 32];
    uint8_t h[40];
    size_t k = 0;
    seg_file(path, seq);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    off_t size = lseek(fd, 0, SEEK_END);
    for (uint64_t p = 64; p + 40 <= (uint64_t)size;) {
        ck_assert_int_eq(pread(fd, h, 40, (off_t)p), 40);
        bool zero = true;
        for (int i = 0; i < 40; i++) {
            zero = zero && h[i] == 0;
        }
        if (zero) {
            break;
        }
        uint32_t len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
                       (uint32_t)h[10] << 8 | h[11];
        if (k < max) {
            offs[k] = p;
        }
        k++;
        p += 40 + ((len + 7) & ~7u);
    }
    close(fd);
    return k;
}

static void poke(uint64_t seq, uint64_t off, const void *b, size_t len)
{
    char path[PATH_MAX + 32];
    seg_file(path, seq);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, b, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void flip(uint64_t seq, uint64_t off)
{
    char path[PATH_MAX + 32];
    uint8_t c;
    seg_file(path, seq);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

START_TEST(test_segments)
{
    append_range(1, 600, 1);
    uint64_t seqs[64];
    size_t n = segments(seqs, 64);
    ck_assert_uint_ge(n, 5);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(seqs[i], i + 1);
    }
    expect_log(1, 600, term1);
    /* Reads across segment boundaries, one at a time. */
    for (raft_index i = 1; i <= 600; i += 37) {
        struct raft_entry *es;
        size_t k;
        ck_assert_int_eq(store_log_get(&st, i, i + 70, &es, &k), 0);
        ck_assert_uint_eq(es[0].index, i);
        ck_assert_uint_eq(k, i + 70 <= 600 ? 71 : 600 - i + 1);
        free(es);
    }
    reopen();
    expect_log(1, 600, term1);
    append_range(601, 700, 1);
    reopen();
    expect_log(1, 700, term1);
    ck_assert_uint_eq(segments(seqs, 64), last_seg());
    /* A batch larger than a segment gets a segment of its own size. */
    struct ents x;
    struct store_batch b;
    struct store_write_result r;
    static char big[3 * SEG];
    memset(big, 'b', sizeof big);
    mk(&x, 701, 3, 1);
    x.e[1].data.base = big;
    x.e[1].data.len = sizeof big;
    store_batch_init(&b);
    store_batch_append(&b, x.e, x.n);
    write_ok(&b, &r);
    store_write_result_close(&r);
    store_batch_close(&b);
    reopen();
    struct raft_entry *es;
    size_t k;
    ck_assert_int_eq(store_log_get(&st, 702, 703, &es, &k), 0);
    ck_assert_uint_eq(k, 2);
    ck_assert_uint_eq(es[0].data.len, sizeof big);
    ck_assert(memcmp(es[0].data.base, big, sizeof big) == 0);
    free(es);
    ck_assert_int_eq(append(704, 1, 1), 0);
}
END_TEST

static raft_term trunc_terms(raft_index i)
{
    return i < 30 ? 1 : i <= 40 ? 2 : 3;
}

static raft_term trunc_terms2(raft_index i)
{
    return i < 10 ? 1 : 4;
}

/* Paper §5.3: a conflicting suffix is replaced, also across segments and
 * across restarts. */
START_TEST(test_truncate_reappend)
{
    append_range(1, 200, 1);
    ck_assert_int_eq(append(30, 11, 2), 0); /* 30..40 term 2 */
    raft_term term;
    ck_assert_int_eq(store_log_term(&st, 41, &term), -ENOENT);
    reopen();
    ck_assert_int_eq(store_log_term(&st, 41, &term), -ENOENT);
    ck_assert_int_eq(append(41, 20, 3), 0);
    reopen();
    expect_log(1, 60, trunc_terms);
    /* Back into the first segment, then a restart. */
    ck_assert_int_eq(append(10, 5, 4), 0);
    reopen();
    expect_log(1, 14, trunc_terms2);
    append_range(15, 300, 4);
    reopen();
    expect_log(1, 300, trunc_terms2);
    /* A truncation inside one batch (two appends, the second rewrites the
     * tail of the first). */
    struct ents a, c;
    struct store_batch b;
    struct store_write_result r;
    mk(&a, 301, 10, 4);
    mk(&c, 305, 2, 5);
    store_batch_init(&b);
    store_batch_append(&b, a.e, a.n);
    store_batch_append(&b, c.e, c.n);
    write_ok(&b, &r);
    ck_assert_uint_eq(r.last_index, 306);
    store_write_result_close(&r);
    store_batch_close(&b);
    reopen();
    ck_assert_int_eq(store_log_term(&st, 304, &term), 0);
    ck_assert_uint_eq(term, 4);
    ck_assert_int_eq(store_log_term(&st, 306, &term), 0);
    ck_assert_uint_eq(term, 5);
    ck_assert_int_eq(store_log_term(&st, 307, &term), -ENOENT);
}
END_TEST

/* Appends and applies lo..hi (NOOPs), in batches of 16. */
static void fill_applied(raft_index lo, raft_index hi)
{
    while (lo <= hi) {
        struct ents x;
        struct store_batch b;
        struct store_write_result r;
        size_t n = hi - lo + 1 < 16 ? (size_t)(hi - lo + 1) : 16;
        mk(&x, lo, n, 1);
        store_batch_init(&b);
        store_batch_append(&b, x.e, n);
        store_batch_apply(&b, x.e, n);
        write_ok(&b, &r);
        store_write_result_close(&r);
        store_batch_close(&b);
        lo += n;
    }
}

static void compact(raft_index to)
{
    struct store_batch b;
    struct store_write_result r;
    store_batch_init(&b);
    store_batch_compact(&b, to);
    write_ok(&b, &r);
    ck_assert(!r.synced);
    store_write_result_close(&r);
    store_batch_close(&b);
}

START_TEST(test_compact_segments)
{
    uint64_t seqs[64];
    struct raft_snapshot_meta m;
    fill_applied(1, 600);
    size_t before = segments(seqs, 64);
    ck_assert_uint_ge(before, 5);
    /* Without a snapshot nothing may be deleted, only hidden. */
    compact(300);
    ck_assert_uint_eq(segments(seqs, 64), before);
    expect_log(301, 600, term1);
    reopen();
    expect_log(301, 600, term1);
    /* With a snapshot at 600, compaction to 500 deletes the segments that
     * hold only entries <= 500, oldest first. */
    ck_assert_int_eq(store_snapshot_take(&st, &m), 0);
    ck_assert_uint_eq(m.index, 600);
    compact(500);
    size_t after = segments(seqs, 64);
    ck_assert_uint_lt(after, before);
    ck_assert_uint_gt(seqs[0], 1);
    for (size_t i = 1; i < after; i++) {
        ck_assert_uint_eq(seqs[i], seqs[0] + i);
    }
    expect_log(501, 600, term1);
    reopen();
    expect_log(501, 600, term1);
    ck_assert_uint_eq(segments(seqs, 64), after);
    /* Appends go on; compacting everything keeps the active segment. */
    fill_applied(601, 650);
    ck_assert_int_eq(store_snapshot_take(&st, &m), 0);
    compact(650);
    ck_assert_uint_eq(segments(seqs, 64), 1);
    raft_index first, last;
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(first, 651);
    ck_assert_uint_eq(last, 650);
    reopen();
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(first, 651);
    ck_assert_uint_eq(last, 650);
    struct raft_load l;
    ck_assert_int_eq(store_load(&st, &l), 0);
    ck_assert_uint_eq(l.snap_index, 650);
    ck_assert_uint_eq(l.n_entries, 0);
    store_load_close(&l);
    fill_applied(651, 660);
    reopen();
    ck_assert_int_eq(store_load(&st, &l), 0);
    ck_assert_uint_eq(l.n_entries, 10);
    ck_assert_uint_eq(l.entries[9].index, 660);
    store_load_close(&l);
}
END_TEST

/* An install discards the log for good: a restart right after it must not
 * bring the old entries back, even those above the snapshot. */
START_TEST(test_install_discards)
{
    uint64_t seqs[64];
    append_range(1, 300, 1);
    ck_assert_uint_ge(segments(seqs, 64), 3);
    /* A snapshot of another store at 200 (term 2). */
    char other[PATH_MAX + 16];
    snprintf(other, sizeof other, "%s/other", dir);
    struct store o;
    struct store_options opt;
    store_options_default(&opt);
    opt.dir = other;
    opt.create = true;
    opt.cluster_id = "wal";
    opt.node_id = 2;
    ck_assert_int_eq(store_open(&o, &opt), 0);
    struct ents x;
    struct store_batch b;
    struct store_write_result r;
    store_batch_init(&b);
    for (raft_index i = 1; i <= 200; i += 100) {
        mk(&x, i, 100, 2);
        store_batch_reset(&b);
        store_batch_append(&b, x.e, 100);
        ck_assert_int_eq(store_write(&o, &b, &r), 0);
        store_write_result_close(&r);
        store_batch_reset(&b);
        store_batch_apply(&b, x.e, 100);
        ck_assert_int_eq(store_write(&o, &b, &r), 0);
        store_write_result_close(&r);
    }
    struct raft_snapshot_meta m;
    ck_assert_int_eq(store_snapshot_take(&o, &m), 0);
    ck_assert_uint_eq(m.index, 200);
    char *snap = malloc(m.size);
    ck_assert_int_eq(store_snapshot_read(&o, 200, 0, snap, (uint32_t)m.size),
                     (int)m.size);
    store_close(&o);

    struct raft_buf chunk = {snap, m.size};
    store_batch_reset(&b);
    store_batch_install(&b, &m);
    store_batch_chunk(&b, &m, 0, &chunk);
    write_ok(&b, &r);
    ck_assert(r.synced);
    ck_assert_uint_eq(r.last_index, 200);
    ck_assert_uint_eq(r.last_term, 2);
    store_write_result_close(&r);
    free(snap);
    raft_index first, last;
    raft_term term;
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(first, 201);
    ck_assert_uint_eq(last, 200);
    ck_assert_int_eq(store_log_term(&st, 250, &term), -ENOENT);
    ck_assert_uint_eq(segments(seqs, 64), 1); /* only the active one */
    reopen();
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(first, 201);
    ck_assert_uint_eq(last, 200);
    ck_assert_int_eq(store_log_term(&st, 250, &term), -ENOENT);
    ck_assert_int_eq(store_log_term(&st, 200, &term), 0);
    ck_assert_uint_eq(term, 2);
    /* The log continues after the snapshot, in the same segment as the
     * discarded records. */
    mk(&x, 201, 5, 3);
    store_batch_reset(&b);
    store_batch_append(&b, x.e, 5);
    write_ok(&b, &r);
    store_write_result_close(&r);
    store_batch_close(&b);
    reopen();
    struct raft_load l;
    ck_assert_int_eq(store_load(&st, &l), 0);
    ck_assert_uint_eq(l.snap_index, 200);
    ck_assert_uint_eq(l.applied, 200);
    ck_assert_uint_eq(l.n_entries, 5);
    ck_assert_uint_eq(l.entries[0].index, 201);
    ck_assert_uint_eq(l.entries[4].term, 3);
    store_load_close(&l);
}
END_TEST

/* Ten batches of 3 into a fresh store (one segment). */
static void ten_batches(void)
{
    for (raft_index i = 1; i <= 30; i += 3) {
        ck_assert_int_eq(append(i, 3, 1), 0);
    }
    ck_assert_uint_eq(last_seg(), 1);
}

/* ten_batches, then the store closed: offs[i] is record i's offset in
 * segment 1. */
static void ten_batches_closed(uint64_t offs[64])
{
    ten_batches();
    ck_assert_uint_eq(records(1, offs, 64), 30);
    close_store();
}

/* After the damage: the log ends at `last`; the next append continues
 * there and survives two more restarts. */
static void expect_recovered(raft_index last)
{
    reopen();
    expect_log(1, last, term1);
    ck_assert_int_eq(append(last + 1, 2, 1), 0);
    reopen();
    expect_log(1, last + 2, term1);
    ck_assert_int_eq(append(last + 3, 1, 1), 0);
    reopen();
    expect_log(1, last + 3, term1);
}

/* A power loss in the middle of the last write: the file ends inside its
 * last record. */
START_TEST(test_torn_truncated)
{
    uint64_t offs[64];
    ten_batches_closed(offs);
    char path[PATH_MAX + 32];
    seg_file(path, 1);
    ck_assert_int_eq(truncate(path, (off_t)(offs[29] + 45)), 0);
    expect_recovered(27); /* the whole last batch is gone */
}
END_TEST

START_TEST(test_torn_flipped)
{
    uint64_t offs[64];
    ten_batches_closed(offs);
    flip(1, offs[29] + 42); /* data of the last record */
    expect_recovered(27);
}
END_TEST

/* Only the first records of the last batch reached the disk. */
START_TEST(test_torn_partial_batch)
{
    uint64_t offs[64];
    ten_batches_closed(offs);
    static const uint8_t zero[512];
    poke(1, offs[28], zero, sizeof zero);
    expect_recovered(27);
}
END_TEST

/* The last batch's first page lost, its last record on disk. */
START_TEST(test_torn_hole)
{
    uint64_t offs[64];
    ten_batches_closed(offs);
    static const uint8_t zero[40];
    poke(1, offs[27], zero, sizeof zero);
    expect_recovered(27);
}
END_TEST

/* Garbage after the last record (an unsynced write of random bytes), and a
 * tail of zeros: both are a clean end, and the garbage is cleared. */
START_TEST(test_torn_garbage)
{
    uint64_t offs[64];
    ten_batches_closed(offs);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 131 + 7);
    }
    uint64_t end = offs[29] + 40 + 8;
    poke(1, end, junk, sizeof junk);
    poke(1, end + 1000, junk, sizeof junk);
    expect_recovered(30);
    /* The cleared bytes stay zero after the new records. */
    ck_assert_uint_eq(records(1, offs, 64), 33);
}
END_TEST

/* Damage to synced data that a crash cannot cause: STORE_ERR_CORRUPT, and
 * the message names the file. */
static void expect_corrupt(void)
{
    close_store();
    int rv = try_open(SEG);
    ck_assert_int_eq(rv, STORE_ERR_CORRUPT);
    ck_assert_msg(strstr(store_errmsg(&st), "/wal-0") != NULL ||
                      strstr(store_errmsg(&st), "WAL segment") != NULL,
                  "%s", store_errmsg(&st));
}

START_TEST(test_corrupt_middle)
{
    uint64_t offs[64];
    ten_batches_closed(offs);
    flip(1, offs[10] + 42);
    expect_corrupt();
}
END_TEST

START_TEST(test_corrupt_middle_zeroed)
{
    uint64_t offs[64];
    ten_batches_closed(offs);
    static const uint8_t zero[40];
    poke(1, offs[12], zero, sizeof zero);
    expect_corrupt();
}
END_TEST

static void several_segments(void)
{
    append_range(1, 300, 1);
    ck_assert_uint_ge(last_seg(), 4);
}

START_TEST(test_corrupt_earlier_segment)
{
    uint64_t offs[128];
    several_segments();
    size_t n = records(2, offs, 128);
    ck_assert_uint_gt(n, 2);
    close_store();
    flip(2, offs[n - 1] + 41); /* its LAST record: not a tail, synced */
    expect_corrupt();
}
END_TEST

START_TEST(test_corrupt_earlier_segment_cut)
{
    uint64_t offs[128];
    several_segments();
    size_t n = records(2, offs, 128);
    close_store();
    static const uint8_t zero[4096];
    poke(2, offs[n - 1], zero, SEG - offs[n - 1]);
    expect_corrupt();
}
END_TEST

START_TEST(test_corrupt_missing_segment)
{
    several_segments();
    close_store();
    char path[PATH_MAX + 32];
    seg_file(path, 2);
    ck_assert_int_eq(unlink(path), 0);
    expect_corrupt();
}
END_TEST

START_TEST(test_corrupt_header)
{
    several_segments();
    close_store();
    flip(3, 20);
    expect_corrupt();
}
END_TEST

/* A batch that changes the hard state: LMDB first, then the WAL; the
 * stored term never lags the entries. */
START_TEST(test_hard_state_order)
{
    struct ents x;
    struct store_batch b;
    struct store_write_result r;
    uint64_t before = st.n_syncs;
    ck_assert_int_eq(append(1, 1, 1), 0);
    ck_assert_uint_eq(st.n_syncs, before + 1); /* one fdatasync: the WAL */
    mk(&x, 2, 2, 1);
    store_batch_init(&b);
    store_batch_hard_state(&b, 1, 1);
    store_batch_append(&b, x.e, 2);
    before = st.n_syncs;
    write_ok(&b, &r);
    store_write_result_close(&r);
    ck_assert_uint_eq(st.n_syncs, before + 2); /* env_sync, WAL */
    /* The same hard state again: nothing to make durable in LMDB. */
    mk(&x, 4, 2, 1);
    store_batch_reset(&b);
    store_batch_hard_state(&b, 1, 1);
    store_batch_append(&b, x.e, 2);
    before = st.n_syncs;
    write_ok(&b, &r);
    ck_assert(r.synced);
    store_write_result_close(&r);
    ck_assert_uint_eq(st.n_syncs, before + 1);
    store_batch_close(&b);
    reopen();
    raft_term term;
    raft_id vote;
    ck_assert_int_eq(store_hard_state(&st, &term, &vote), 0);
    ck_assert_uint_eq(term, 1);
    ck_assert_uint_eq(vote, 1);
    expect_log(1, 5, term1);
}
END_TEST

/* -ENOSPC when the disk has no room for the next segment: nothing of the
 * batch stored, reads keep working, freeing space is the remedy. Needs a
 * small tmpfs: root and a private mount namespace, else skipped. */
START_TEST(test_wal_enospc)
{
    close_store();
    if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        fprintf(stderr, "test_wal_enospc: skipped (needs root)\n");
        return;
    }
    ck_assert_int_eq(try_open(64 << 10), 0);
    /* Fill the disk beside the store, leaving less than a segment. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    static char chunk[4096];
    while (write(fd, chunk, sizeof chunk) == (ssize_t)sizeof chunk) {
    }
    ck_assert_int_eq(ftruncate(fd, lseek(fd, 0, SEEK_CUR) - (32 << 10)), 0);
    close(fd);
    raft_index next = 1;
    int rv = 0;
    while (next < 100000) {
        rv = append(next, 64, 1);
        if (rv != 0) {
            break;
        }
        next += 64;
    }
    ck_assert_int_eq(rv, -ENOSPC);
    ck_assert_uint_gt(next, 1);
    raft_index first, last;
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(last, next - 1);
    expect_log(1, next - 1, term1);
    ck_assert_int_eq(append(next, 64, 1), -ENOSPC);
    /* Space freed: the same append works, and survives a restart. */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(append(next, 64, 1), 0);
    close_store();
    ck_assert_int_eq(try_open(64 << 10), 0);
    expect_log(1, next + 63, term1);
    close_store();
    umount(dir);
}
END_TEST

/* Readers on other threads while the writer rolls over segments, takes
 * snapshots and compacts (deleting segments): every read sees verified
 * entries of a contiguous range, or -ENOENT when compaction overtook it. */
static atomic_bool stop_readers;

static void *reader(void *arg)
{
    (void)arg;
    size_t reads = 0;
    while (!atomic_load(&stop_readers)) {
        raft_index first, last;
        struct raft_entry *es;
        size_t n;
        ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
        if (last < first) {
            continue;
        }
        int rv = store_log_get(&st, first, last, &es, &n);
        ck_assert_msg(rv == 0 || rv == -ENOENT, "%s", store_strerror(rv));
        if (rv != 0) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof want, "e%llu-t1",
                     (unsigned long long)(first + i));
            ck_assert_uint_eq(es[i].index, first + i);
            ck_assert_uint_eq(es[i].data.len, strlen(want));
            ck_assert(memcmp(es[i].data.base, want, strlen(want)) == 0);
        }
        free(es);
        reads++;
    }
    return (void *)reads;
}

START_TEST(test_concurrent_gc)
{
    pthread_t th[2];
    atomic_store(&stop_readers, false);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, NULL), 0);
    }
    raft_index next = 1;
    for (int round = 0; round < 40; round++) {
        struct raft_snapshot_meta m;
        fill_applied(next, next + 99);
        next += 100;
        ck_assert_int_eq(store_snapshot_take(&st, &m), 0);
        compact(m.index - 30);
    }
    atomic_store(&stop_readers, true);
    for (int i = 0; i < 2; i++) {
        void *reads;
        ck_assert_int_eq(pthread_join(th[i], &reads), 0);
        ck_assert_uint_gt((size_t)reads, 0);
    }
    uint64_t seqs[64];
    ck_assert_uint_le(segments(seqs, 64), 3);
    ck_assert_uint_gt(last_seg(), 20);
    reopen();
    expect_log(next - 30, next - 1, term1);
}
END_TEST

/* Old and half stores are refused, not misread. */
START_TEST(test_wal_without_meta)
{
    ck_assert_int_eq(append(1, 1, 1), 0);
    close_store();
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(try_open(SEG), STORE_ERR_NOT_RAFTFS);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "WAL"));
}
END_TEST

/* The checksum is CRC32C: the standard check value, whole and in pieces
 * (so files written by one build are read by the next). */
START_TEST(test_crc32c_vector)
{
    struct store_crc32c c;
    uint32_t v;

    store__crc32c_init(&c);
    v = store__crc32c_update(&c, 0xffffffffu, "123456789", 9);
    ck_assert_uint_eq(v ^ 0xffffffffu, 0xE3069283u);
    v = store__crc32c_update(&c, 0xffffffffu, "1234", 4);
    v = store__crc32c_update(&c, v, "56789", 5);
    ck_assert_uint_eq(v ^ 0xffffffffu, 0xE3069283u);
}
END_TEST

static Suite *store_wal_suite(void)
{
    Suite *s = suite_create("store_wal");
    TCase *tc;
#define ADD(name, fn)                                                          \
    tc = tcase_create(name);                                                   \
    tcase_add_checked_fixture(tc, setup, teardown);                            \
    tcase_add_test(tc, fn);                                                    \
    suite_add_tcase(s, tc)
    ADD("segments", test_segments);
    ADD("crc32c_vector", test_crc32c_vector);
    ADD("truncate_reappend", test_truncate_reappend);
    ADD("compact_segments", test_compact_segments);
    ADD("install_discards", test_install_discards);
    ADD("torn_truncated", test_torn_truncated);
    ADD("torn_flipped", test_torn_flipped);
    ADD("torn_partial_batch", test_torn_partial_batch);
    ADD("torn_hole", test_torn_hole);
    ADD("torn_garbage", test_torn_garbage);
    ADD("corrupt_middle", test_corrupt_middle);
    ADD("corrupt_middle_zeroed", test_corrupt_middle_zeroed);
    ADD("corrupt_earlier_segment", test_corrupt_earlier_segment);
    ADD("corrupt_earlier_segment_cut", test_corrupt_earlier_segment_cut);
    ADD("corrupt_missing_segment", test_corrupt_missing_segment);
    ADD("corrupt_header", test_corrupt_header);
    ADD("hard_state_order", test_hard_state_order);
    ADD("concurrent_gc", test_concurrent_gc);
    ADD("wal_enospc", test_wal_enospc);
    ADD("wal_without_meta", test_wal_without_meta);
#undef ADD
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_wal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
