/* Unit tests of state machine snapshots (store/snapshot.c). */
#include <fcntl.h>
#include <sys/stat.h>

#include "fsm_internal.h"
#include "test_store_fsm_harness.h"

#define ROOT STORE_ROOT_INO

/* A tree with every kind of record, including a multi-page value. */
static void populate(struct h *h)
{
    static char big[300 * 1024];
    struct store_attr d, e;
    struct store_cmd c;

    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (char)(i * 31 + 7);
    }
    ck_assert_int_eq(h_mkdir(h, ROOT, "etc", &d), 0);
    ck_assert_int_eq(h_mkdir(h, d.ino, "app", &e), 0);
    ck_assert_int_eq(h_create(h, e.ino, "port", 0, "8080", NULL), 0);
    ck_assert_int_eq(h_create(h, e.ino, "empty", 0, NULL, NULL), 0);
    ck_assert_int_eq(h_create(h, ROOT, "lock", STORE_CREATE_EXCL, "42", NULL),
                     0);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = ROOT;
    c.name = h_str("big");
    c.flags = STORE_CREATE_VALUE;
    c.data.base = big;
    c.data.len = sizeof big;
    ck_assert_int_eq(h_run(h, &c, NULL), 0);
    store_cmd_init(&c);
    c.type = STORE_CMD_SYMLINK;
    c.parent = d.ino;
    c.name = h_str("link");
    c.data = h_str("app/port");
    ck_assert_int_eq(h_run(h, &c, NULL), 0);
    ck_assert_int_eq(h_remove(h, STORE_CMD_UNLINK, e.ino, "empty"), 0);
    ck_assert_int_eq(h_rename(h, e.ino, "port", d.ino, "port", 0, NULL), 0);
}

static void snap_path(struct h *h, char *buf, size_t len)
{
    snprintf(buf, len, "%s/snapshot.tmp", h->dir);
}

static void build(struct h *h, const char *path, raft_index *index,
                  uint64_t *size)
{
    MDB_txn *txn;

    ck_assert_int_eq(mdb_txn_begin(h->env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(store__fsm_snapshot_build(&h->f, txn, path, index, size),
                     0);
    mdb_txn_abort(txn);
}

/* Restores in one write txn; commits on success, aborts otherwise. */
static int restore(struct h *h, const char *path, raft_index *index)
{
    MDB_txn *txn;
    int rv;

    ck_assert_int_eq(mdb_txn_begin(h->env, NULL, 0, &txn), 0);
    rv = store__fsm_snapshot_restore(&h->f, txn, path, index);
    if (rv == 0) {
        ck_assert_int_eq(mdb_txn_commit(txn), 0);
    } else {
        mdb_txn_abort(txn);
    }
    return rv;
}

static void assert_same_dump(struct h *a, struct h *b)
{
    void *da, *db;
    size_t la, lb;

    h_dump(a, &da, &la);
    h_dump(b, &db, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(da, db, la);
    free(da);
    free(db);
}

static void *slurp(const char *path, size_t *len)
{
    struct stat st;
    void *buf;
    int fd = open(path, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    buf = malloc(*len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(read(fd, buf, *len), (ssize_t)*len);
    close(fd);
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

START_TEST(test_build_restore)
{
    struct h a, b;
    char path[128];
    raft_index index, rindex, vindex;
    raft_term vterm;
    uint64_t size;
    struct stat st;
    char *v;

    h_init(&a);
    h_init(&b);
    a.term = 5;
    populate(&a);
    snap_path(&a, path, sizeof path);
    build(&a, path, &index, &size);
    ck_assert_uint_eq(index, a.next - 1);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq((uint64_t)st.st_size, size);
    ck_assert_int_eq(store__fsm_snapshot_verify(path, &vindex, &vterm), 0);
    ck_assert_uint_eq(vindex, index);
    ck_assert_uint_eq(vterm, 5);

    ck_assert_int_eq(restore(&b, path, &rindex), 0);
    ck_assert_uint_eq(rindex, index);
    assert_same_dump(&a, &b);
    ck_assert_uint_eq(store_fsm_applied(&b.f), index);
    v = h_value(&b, "etc/port");
    ck_assert_str_eq(v, "8080");
    free(v);
    h_fsck(&b);

    /* The restored machine goes on applying from index + 1, with the same
     * inode numbering as the original. */
    b.next = a.next;
    b.now = a.now;
    b.term = a.term;
    ck_assert_int_eq(h_create(&a, ROOT, "after", 0, "x", NULL), 0);
    ck_assert_int_eq(h_create(&b, ROOT, "after", 0, "x", NULL), 0);
    assert_same_dump(&a, &b);
    h_close(&a);
    h_close(&b);
}
END_TEST

START_TEST(test_restore_replaces_state)
{
    struct h a, b;
    char path[128];
    raft_index index;
    uint64_t size;

    h_init(&a);
    h_init(&b);
    populate(&a);
    /* b has a different, larger, newer-looking state: all of it goes. */
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "junk%d", i);
        ck_assert_int_eq(h_mkdir(&b, ROOT, name, NULL), 0);
    }
    snap_path(&a, path, sizeof path);
    build(&a, path, &index, &size);
    ck_assert_int_eq(restore(&b, path, &index), 0);
    assert_same_dump(&a, &b);
    ck_assert(!h_exists(&b, "junk0"));
    h_fsck(&b);
    h_close(&a);
    h_close(&b);
}
END_TEST

/* The snapshot is of the read txn's state even while writes go on. */
START_TEST(test_build_during_writes)
{
    struct h a, b;
    char path[128];
    raft_index index;
    uint64_t size;
    MDB_txn *rtxn;
    void *before;
    size_t before_len;
    void *after;
    size_t after_len;

    h_init(&a);
    h_init(&b);
    populate(&a);
    h_dump(&a, &before, &before_len);
    ck_assert_int_eq(mdb_txn_begin(a.env, NULL, MDB_RDONLY, &rtxn), 0);
    /* Writes commit after the read txn began. */
    ck_assert_int_eq(h_create(&a, ROOT, "later", 0, "v", NULL), 0);
    ck_assert_int_eq(h_remove(&a, STORE_CMD_UNLINK, ROOT, "lock"), 0);
    snap_path(&a, path, sizeof path);
    ck_assert_int_eq(store__fsm_snapshot_build(&a.f, rtxn, path, &index,
                                               &size), 0);
    mdb_txn_abort(rtxn);
    ck_assert_uint_eq(index, a.next - 3);
    ck_assert_int_eq(restore(&b, path, &index), 0);
    h_dump(&b, &after, &after_len);
    ck_assert_uint_eq(before_len, after_len);
    ck_assert_mem_eq(before, after, before_len);
    ck_assert(h_exists(&b, "lock"));
    ck_assert(!h_exists(&b, "later"));
    free(before);
    free(after);
    h_close(&a);
    h_close(&b);
}
END_TEST

/* Every damaged copy is refused and the target keeps its old state. */
static void assert_refused(struct h *b, const char *path, const void *buf,
                           size_t len, int want)
{
    void *d1, *d2;
    size_t l1, l2;
    raft_index index = 77;
    int rv;

    h_dump(b, &d1, &l1);
    spit(path, buf, len);
    rv = restore(b, path, &index);
    if (want != 0) {
        ck_assert_int_eq(rv, want);
    } else {
        ck_assert(rv == STORE_ERR_CORRUPT || rv == STORE_ERR_VERSION);
    }
    ck_assert_uint_eq(index, 77);
    ck_assert_int_ne(store__fsm_snapshot_verify(path, NULL, NULL), 0);
    h_dump(b, &d2, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_mem_eq(d1, d2, l1);
    free(d1);
    free(d2);
}

START_TEST(test_corrupt_rejected)
{
    struct h a, b;
    char path[128], bad[128];
    raft_index index;
    uint64_t size;
    uint8_t *buf, *copy;
    size_t len;

    h_init(&a);
    h_init(&b);
    ck_assert_int_eq(h_mkdir(&a, ROOT, "d", NULL), 0);
    ck_assert_int_eq(h_create(&a, ROOT, "f", 0, "value", NULL), 0);
    ck_assert_int_eq(h_mkdir(&b, ROOT, "old", NULL), 0);
    ck_assert_int_eq(h_create(&b, ROOT, "keep", 0, "me", NULL), 0);
    snap_path(&a, path, sizeof path);
    snprintf(bad, sizeof bad, "%s/snapshot.bad", b.dir);
    build(&a, path, &index, &size);
    buf = slurp(path, &len);
    copy = malloc(len + 1);
    ck_assert_ptr_nonnull(copy);

    /* Each single damaged byte, anywhere in the file. */
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x5a;
        assert_refused(&b, bad, copy, len, i >= 8 && i < 12
                                               ? STORE_ERR_VERSION
                                               : STORE_ERR_CORRUPT);
    }
    /* Every truncation. */
    for (size_t i = 0; i < len; i++) {
        assert_refused(&b, bad, buf, i, STORE_ERR_CORRUPT);
    }
    /* Anything after the trailer. */
    memcpy(copy, buf, len);
    copy[len] = 0;
    assert_refused(&b, bad, copy, len + 1, STORE_ERR_CORRUPT);
    /* A missing file. */
    ck_assert_int_eq(restore(&b, "/nonexistent/snapshot", &index), -ENOENT);
    /* The intact file still restores. */
    ck_assert_int_eq(restore(&b, path, &index), 0);
    assert_same_dump(&a, &b);
    free(buf);
    free(copy);
    h_close(&a);
    h_close(&b);
}
END_TEST

START_TEST(test_build_errors)
{
    struct h a;
    raft_index index;
    uint64_t size;
    MDB_txn *txn;

    h_init(&a);
    ck_assert_int_eq(mdb_txn_begin(a.env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(store__fsm_snapshot_build(&a.f, txn, "/nonexistent/x/s",
                                               &index, &size), -ENOENT);
    mdb_txn_abort(txn);
    h_close(&a);
}
END_TEST

/* ---- Files with a valid checksum but bad content (a buggy leader). ---- */

struct rec {
    uint8_t db;
    uint8_t k[FSM_SNAP_KEY_MAX];
    size_t kl;
    uint8_t *v; /* points into the parsed buffer */
    size_t vl;
};

#define MAX_RECS 64

/* Splits a valid snapshot into its header and records. */
static size_t parse(uint8_t *buf, size_t len, uint8_t *hdr, struct rec *r)
{
    size_t pos = FSM_SNAP_HDR_LEN;
    size_t n = 0;

    memcpy(hdr, buf, FSM_SNAP_HDR_LEN);
    while (buf[pos] != FSM_DB_END) {
        ck_assert_uint_lt(n, MAX_RECS);
        r[n].db = buf[pos];
        r[n].kl = (size_t)buf[pos + 1] << 8 | buf[pos + 2];
        r[n].vl = fsm__get_u32(buf + pos + 3);
        memcpy(r[n].k, buf + pos + 7, r[n].kl);
        r[n].v = buf + pos + 7 + r[n].kl;
        pos += 7 + r[n].kl + r[n].vl;
        n++;
    }
    ck_assert_uint_eq(pos + 13, len);
    return n;
}

/* Writes header + records + trailer with a correct CRC; `count` is the
 * record count written in the trailer. */
static void emit(const char *path, const uint8_t *hdr, const struct rec *r,
                 size_t n, uint64_t count)
{
    struct fsm_crc crc;
    uint8_t rh[7], end[13];
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    fsm__crc_init(&crc);
#define PUT(p, l)                                                              \
    do {                                                                       \
        fsm__crc_update(&crc, p, l);                                           \
        ck_assert_uint_eq(fwrite(p, 1, l, f), l);                              \
    } while (0)
    PUT(hdr, FSM_SNAP_HDR_LEN);
    for (size_t i = 0; i < n; i++) {
        rh[0] = r[i].db;
        rh[1] = (uint8_t)(r[i].kl >> 8);
        rh[2] = (uint8_t)r[i].kl;
        fsm__put_u32(rh + 3, (uint32_t)r[i].vl);
        PUT(rh, 7);
        PUT(r[i].k, r[i].kl);
        if (r[i].vl > 0) {
            PUT(r[i].v, r[i].vl);
        }
    }
    end[0] = FSM_DB_END;
    fsm__put_u64(end + 1, count);
    PUT(end, 9);
#undef PUT
    fsm__put_u32(end + 9, fsm__crc_value(&crc));
    ck_assert_uint_eq(fwrite(end + 9, 1, 4, f), 4);
    fclose(f);
}

/* The index of the first record of db (asserts there is one). */
static size_t first_of(const struct rec *r, size_t n, uint8_t db)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].db == db) {
            return i;
        }
    }
    ck_abort_msg("no record of db %u", db);
    return 0;
}

START_TEST(test_forged_content_rejected)
{
    struct h a, b;
    char path[128], bad[128];
    raft_index index;
    uint64_t size;
    uint8_t *buf, hdr[FSM_SNAP_HDR_LEN], h2[FSM_SNAP_HDR_LEN], vcopy[128];
    struct rec r[MAX_RECS], m[MAX_RECS + 1];
    size_t len, n, i;
    void *d1, *d2;
    size_t l1, l2;

    h_init(&a);
    h_init(&b);
    ck_assert_int_eq(h_mkdir(&a, ROOT, "d", NULL), 0);
    ck_assert_int_eq(h_create(&a, ROOT, "f", 0, "value", NULL), 0);
    ck_assert_int_eq(h_create(&a, ROOT, "g", 0, "other", NULL), 0);
    ck_assert_int_eq(h_create(&b, ROOT, "mine", 0, "keep", NULL), 0);
    snap_path(&a, path, sizeof path);
    snprintf(bad, sizeof bad, "%s/forged", b.dir);
    build(&a, path, &index, &size);
    buf = slurp(path, &len);
    n = parse(buf, len, hdr, r);
    h_dump(&b, &d1, &l1);

#define RESET() memcpy(m, r, sizeof r)
#define REFUSED(mm, nn, count, want)                                           \
    do {                                                                       \
        emit(bad, hdr, mm, nn, count);                                         \
        ck_assert_int_eq(restore(&b, bad, &index), want);                      \
    } while (0)

    /* Control: the re-emitted file is accepted by verify. */
    RESET();
    emit(bad, hdr, m, n, n);
    ck_assert_int_eq(store__fsm_snapshot_verify(bad, NULL, NULL), 0);

    /* Record count. */
    RESET();
    REFUSED(m, n, n + 1, STORE_ERR_CORRUPT);
    /* Two inode records swapped (out of key order). */
    RESET();
    i = first_of(r, n, FSM_DB_INODE);
    m[i] = r[i + 1];
    m[i + 1] = r[i];
    REFUSED(m, n, n, STORE_ERR_CORRUPT);
    /* A duplicated dirent. */
    RESET();
    i = first_of(r, n, FSM_DB_DIRENT);
    memmove(m + i + 1, m + i, (n - i) * sizeof m[0]);
    REFUSED(m, n + 1, n + 1, STORE_ERR_CORRUPT);
    /* A dirent name with a '/'. */
    RESET();
    m[i].k[8] = '/';
    REFUSED(m, n, n, STORE_ERR_CORRUPT);
    /* A record of an earlier DBI after a later one. */
    RESET();
    i = first_of(r, n, FSM_DB_DATA);
    m[i].db = FSM_DB_DIRENT;
    REFUSED(m, n, n, STORE_ERR_CORRUPT);
    /* An unknown DBI number. */
    m[i].db = FSM_DB_N;
    REFUSED(m, n, n, STORE_ERR_CORRUPT);
    /* An empty data value. */
    RESET();
    m[i].vl = 0;
    REFUSED(m, n, n, STORE_ERR_CORRUPT);
    /* An inode of an unknown type. */
    RESET();
    i = first_of(r, n, FSM_DB_INODE) + 1;
    memcpy(vcopy, r[i].v, r[i].vl);
    m[i].v = vcopy;
    vcopy[1] = 9;
    REFUSED(m, n, n, STORE_ERR_CORRUPT);
    /* A file whose size does not match its value (sums disagree). */
    RESET();
    i = first_of(r, n, FSM_DB_INODE) + 2; /* "f" (ino 3, "value") */
    memcpy(vcopy, r[i].v, r[i].vl);
    m[i].v = vcopy;
    ck_assert_uint_eq(fsm__get_u64(vcopy + 16), 5);
    fsm__put_u64(vcopy + 16, 4);
    REFUSED(m, n, n, STORE_ERR_CORRUPT);
    /* A value without a file. */
    RESET();
    i = first_of(r, n, FSM_DB_DATA);
    memmove(m + i, m + i + 1, (n - i - 1) * sizeof m[0]);
    REFUSED(m, n - 1, n - 1, STORE_ERR_CORRUPT);
    /* No root inode. */
    RESET();
    i = first_of(r, n, FSM_DB_INODE);
    memmove(m + i, m + i + 1, (n - i - 1) * sizeof m[0]);
    REFUSED(m, n - 1, n - 1, STORE_ERR_CORRUPT);
    /* No state record. */
    RESET();
    REFUSED(m + 1, n - 1, n - 1, STORE_ERR_CORRUPT);
    /* Header and state record disagree. */
    RESET();
    memcpy(h2, hdr, sizeof h2);
    fsm__put_u64(h2 + 16, index + 1);
    emit(bad, h2, m, n, n);
    ck_assert_int_eq(restore(&b, bad, &index), STORE_ERR_CORRUPT);
    /* A version this code does not know, checksum and all. */
    fsm__put_u32(h2 + 8, FSM_SNAP_VERSION + 1);
    emit(bad, h2, m, n, n);
    ck_assert_int_eq(restore(&b, bad, &index), STORE_ERR_VERSION);
#undef REFUSED
#undef RESET

    /* b is untouched by all of it. */
    h_dump(&b, &d2, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_mem_eq(d1, d2, l1);
    free(d1);
    free(d2);
    free(buf);
    h_close(&a);
    h_close(&b);
}
END_TEST

/* Known answers (RFC 3720 B.4 and the usual check value). */
START_TEST(test_crc32c)
{
    struct fsm_crc c;
    uint8_t zeros[32] = {0};
    uint8_t ones[32];

    fsm__crc_init(&c);
    fsm__crc_update(&c, "123456789", 9);
    ck_assert_uint_eq(fsm__crc_value(&c), 0xE3069283u);
    fsm__crc_init(&c);
    fsm__crc_update(&c, zeros, sizeof zeros);
    ck_assert_uint_eq(fsm__crc_value(&c), 0x8A9136AAu);
    memset(ones, 0xff, sizeof ones);
    fsm__crc_init(&c);
    fsm__crc_update(&c, ones, sizeof ones);
    ck_assert_uint_eq(fsm__crc_value(&c), 0x62A8AB43u);
    /* Split updates give the same value. */
    fsm__crc_init(&c);
    fsm__crc_update(&c, "1234", 4);
    fsm__crc_update(&c, "56789", 5);
    ck_assert_uint_eq(fsm__crc_value(&c), 0xE3069283u);
}
END_TEST

static Suite *snapshot_suite(void)
{
    Suite *s = suite_create("store_snapshot");
    TCase *tc;

    tc = tcase_create("build");
    tcase_add_test(tc, test_build_restore);
    tcase_add_test(tc, test_restore_replaces_state);
    tcase_add_test(tc, test_build_during_writes);
    tcase_add_test(tc, test_build_errors);
    tcase_add_test(tc, test_crc32c);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_add_test(tc, test_corrupt_rejected);
    tcase_add_test(tc, test_forged_content_rejected);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_main(snapshot_suite());
}
