/* Unit tests of the state machine's reads (store/fsm_read.c). */
#include <pthread.h>
#include <sys/stat.h>

#include "test_store_fsm_harness.h"

#define ROOT STORE_ROOT_INO

START_TEST(test_lookup_getattr)
{
    struct h h;
    struct store_attr d, f, a;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", &d), 0);
    ck_assert_int_eq(h_create(&h, d.ino, "f", 0, "v", &f), 0);
    ck_assert_int_eq(store_fsm_lookup(&h.f, d.ino, "f", 1, &a), 0);
    ck_assert(h_same_attr(&a, &f));
    ck_assert_int_eq(store_fsm_lookup(&h.f, d.ino, "g", 1, &a), -ENOENT);
    ck_assert_int_eq(store_fsm_lookup(&h.f, 999, "f", 1, &a), -ENOENT);
    ck_assert_int_eq(store_fsm_lookup(&h.f, f.ino, "f", 1, &a), -ENOTDIR);
    ck_assert_int_eq(store_fsm_lookup(&h.f, d.ino, "..", 2, &a), -EINVAL);
    ck_assert_int_eq(store_fsm_lookup(&h.f, d.ino, "a/b", 3, &a), -EINVAL);
    {
        char longname[256];
        memset(longname, 'x', sizeof longname);
        ck_assert_int_eq(store_fsm_lookup(&h.f, d.ino, longname, 256, &a),
                         -ENAMETOOLONG);
    }
    ck_assert_int_eq(store_fsm_getattr(&h.f, f.ino, &a), 0);
    ck_assert(h_same_attr(&a, &f));
    ck_assert_int_eq(store_fsm_getattr(&h.f, 0, &a), -ENOENT);
    ck_assert_int_eq(store_fsm_getattr(&h.f, 12345, &a), -ENOENT);
    h_close(&h);
}
END_TEST

START_TEST(test_read)
{
    struct h h;
    struct store_attr f, d, a;
    char buf[16];
    size_t n;
    void *all;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, ROOT, "f", 0, "0123456789", &f), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", &d), 0);
    ck_assert_int_eq(store_fsm_read(&h.f, f.ino, 0, buf, sizeof buf, &n, &a),
                     0);
    ck_assert_uint_eq(n, 10);
    ck_assert_mem_eq(buf, "0123456789", 10);
    ck_assert_uint_eq(a.ino, f.ino);
    ck_assert_int_eq(store_fsm_read(&h.f, f.ino, 7, buf, 2, &n, NULL), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(buf, "78", 2);
    ck_assert_int_eq(store_fsm_read(&h.f, f.ino, 10, buf, 2, &n, NULL), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(store_fsm_read(&h.f, f.ino, 1000, buf, 2, &n, NULL), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(store_fsm_read(&h.f, d.ino, 0, buf, 2, &n, NULL),
                     -EISDIR);
    ck_assert_int_eq(store_fsm_read(&h.f, 999, 0, buf, 2, &n, NULL), -ENOENT);
    ck_assert_int_eq(store_fsm_read_all(&h.f, f.ino, &all, &n, &a), 0);
    ck_assert_uint_eq(n, 10);
    ck_assert_mem_eq(all, "0123456789", 10);
    free(all);
    ck_assert_int_eq(store_fsm_read_all(&h.f, d.ino, &all, &n, NULL),
                     -EISDIR);
    {
        char *t;
        ck_assert_int_eq(store_fsm_readlink(&h.f, f.ino, &t), -EINVAL);
        ck_assert_int_eq(store_fsm_readlink(&h.f, 999, &t), -ENOENT);
    }
    h_close(&h);
}
END_TEST

/* Collects names into a buffer "a,b,c," and counts them. */
struct collect {
    char buf[4096];
    size_t len;
    int stop_after; /* > 0: refuse the entry after this many */
    int seen;
    bool want_attr;
};

static int collect_cb(void *arg, const struct store_dirent *d,
                      const struct store_attr *attr)
{
    struct collect *c = arg;

    if (c->stop_after > 0 && c->seen == c->stop_after) {
        return 1;
    }
    ck_assert(c->want_attr == (attr != NULL));
    if (attr != NULL) {
        ck_assert_uint_eq(attr->ino, d->ino);
        ck_assert_uint_eq(attr->type, d->type);
    }
    memcpy(c->buf + c->len, d->name, d->name_len);
    c->len += d->name_len;
    c->buf[c->len++] = ',';
    c->buf[c->len] = '\0';
    c->seen++;
    return 0;
}

START_TEST(test_readdir_small)
{
    struct h h;
    struct store_attr d, f;
    struct collect c;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", &d), 0);
    ck_assert_int_eq(h_create(&h, d.ino, "b", 0, NULL, &f), 0);
    ck_assert_int_eq(h_mkdir(&h, d.ino, "a", NULL), 0);
    ck_assert_int_eq(h_create(&h, d.ino, "c", 0, NULL, NULL), 0);
    ck_assert_int_eq(h_create(&h, d.ino, "ab", 0, NULL, NULL), 0);
    /* An entry in a directory whose number sorts right after d's. */
    ck_assert_int_eq(h_mkdir(&h, ROOT, "e", NULL), 0);
    ck_assert_int_eq(h_create(&h, h_ino(&h, "e"), "zzz", 0, NULL, NULL), 0);

    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, NULL, 0, false, 0,
                                       collect_cb, &c), 4);
    ck_assert_str_eq(c.buf, "a,ab,b,c,");
    /* With attributes. */
    memset(&c, 0, sizeof c);
    c.want_attr = true;
    ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, NULL, 0, true, 0,
                                       collect_cb, &c), 4);
    /* From a cursor name, and with one that does not exist. */
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, "ab", 2, false, 0,
                                       collect_cb, &c), 2);
    ck_assert_str_eq(c.buf, "b,c,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, "aa", 2, false, 0,
                                       collect_cb, &c), 3);
    ck_assert_str_eq(c.buf, "ab,b,c,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, "c", 1, false, 0,
                                       collect_cb, &c), 0);
    /* max, and a callback that stops (entry not consumed). */
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, NULL, 0, false, 2,
                                       collect_cb, &c), 2);
    ck_assert_str_eq(c.buf, "a,ab,");
    memset(&c, 0, sizeof c);
    c.stop_after = 3;
    ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, NULL, 0, false, 0,
                                       collect_cb, &c), 3);
    ck_assert_str_eq(c.buf, "a,ab,b,");
    /* Empty directory, missing, not a directory. */
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_fsm_readdir(&h.f, h_ino(&h, "d/a"), NULL, 0,
                                       false, 0, collect_cb, &c), 0);
    ck_assert_int_eq(store_fsm_readdir(&h.f, 999, NULL, 0, false, 0,
                                       collect_cb, &c), -ENOENT);
    ck_assert_int_eq(store_fsm_readdir(&h.f, f.ino, NULL, 0, false, 0,
                                       collect_cb, &c), -ENOTDIR);
    h_close(&h);
}
END_TEST

/* Checks that names arrive in strictly increasing byte order, each once. */
struct pager {
    char last[STORE_NAME_MAX + 1];
    size_t last_len;
    int count;
    int page_room;
};

static int pager_cb(void *arg, const struct store_dirent *d,
                    const struct store_attr *attr)
{
    struct pager *p = arg;
    int cmp;

    (void)attr;
    if (p->page_room == 0) {
        return 1; /* "the reply buffer is full" */
    }
    if (p->count > 0) {
        size_t n = p->last_len < d->name_len ? p->last_len : d->name_len;
        cmp = memcmp(p->last, d->name, n);
        ck_assert(cmp < 0 || (cmp == 0 && p->last_len < d->name_len));
    }
    memcpy(p->last, d->name, d->name_len);
    p->last_len = d->name_len;
    p->count++;
    p->page_room--;
    return 0;
}

START_TEST(test_readdir_huge)
{
    enum { N = 100000, BATCH = 5000 };
    struct h h;
    struct store_attr d;
    struct pager p;
    struct store_cmd c;
    MDB_txn *txn;
    int pages = 0;
    int rv;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "big", &d), 0);
    /* 100,000 creates, many entries per txn as the store batches them. */
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = d.ino;
    c.mode = 0644;
    for (int i = 0; i < N; i += BATCH) {
        ck_assert_int_eq(mdb_txn_begin(h.env, NULL, 0, &txn), 0);
        for (int j = i; j < i + BATCH; j++) {
            struct store_apply_result res;
            struct raft_entry e;
            char name[32];
            /* Not in numeric order, so the order comes from the index. */
            snprintf(name, sizeof name, "key-%d", (j * 7919) % N);
            c.name = h_str(name);
            c.time_ns = (uint64_t)j;
            h_entry(&h, &c, h.next++, &e);
            ck_assert_int_eq(store__fsm_apply(&h.f, txn, e.index, &e, &res),
                             0);
            ck_assert_int_eq(res.status, 0);
            free(e.data.base);
        }
        ck_assert_int_eq(mdb_txn_commit(txn), 0);
    }
    ck_assert_uint_eq(h_attr(&h, d.ino).nlink, 2);

    /* Read it in pages of at most 1000 entries, resuming after the last
     * name; also pages cut short by the callback. */
    memset(&p, 0, sizeof p);
    for (;;) {
        int cap = pages % 2 == 0 ? 1000 : 777;
        p.page_room = cap;
        rv = store_fsm_readdir(&h.f, d.ino, p.last, p.last_len, false,
                               pages % 2 == 0 ? 1000 : 0, pager_cb, &p);
        ck_assert_int_ge(rv, 0);
        ck_assert_int_le(rv, cap);
        if (rv == 0) {
            break;
        }
        pages++;
    }
    ck_assert_int_eq(p.count, N);
    ck_assert_int_gt(pages, N / 1000);
    h_close(&h);
}
END_TEST

START_TEST(test_resolve)
{
    struct h h;
    struct store_attr a, b, f, l, r;
    char path[STORE_PATH_MAX + 2];

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "a", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, a.ino, "b", &b), 0);
    ck_assert_int_eq(h_create(&h, b.ino, "c", 0, "v", &f), 0);
    {
        struct store_cmd c;
        struct store_apply_result res;
        store_cmd_init(&c);
        c.type = STORE_CMD_SYMLINK;
        c.parent = a.ino;
        c.name = h_str("link");
        c.data = h_str("b");
        ck_assert_int_eq(h_run(&h, &c, &res), 0);
        l = res.attr;
    }
#define RESOLVE(root, p, out) \
    store_fsm_resolve(&h.f, root, p, strlen(p), out)
    ck_assert_int_eq(RESOLVE(ROOT, "a/b/c", &r), 0);
    ck_assert_uint_eq(r.ino, f.ino);
    ck_assert_int_eq(RESOLVE(ROOT, "/a//b/./c/", &r), 0);
    ck_assert_uint_eq(r.ino, f.ino);
    ck_assert_int_eq(RESOLVE(ROOT, "", &r), 0);
    ck_assert_uint_eq(r.ino, ROOT);
    ck_assert_int_eq(RESOLVE(ROOT, "a/b/..", &r), 0);
    ck_assert_uint_eq(r.ino, a.ino);
    /* Never above the given root. */
    ck_assert_int_eq(RESOLVE(b.ino, "../../..", &r), 0);
    ck_assert_uint_eq(r.ino, b.ino);
    ck_assert_int_eq(RESOLVE(a.ino, "b/c", &r), 0);
    ck_assert_uint_eq(r.ino, f.ino);
    ck_assert_int_eq(RESOLVE(ROOT, "a/link", &r), 0);
    ck_assert_uint_eq(r.ino, l.ino);

    ck_assert_int_eq(RESOLVE(ROOT, "a/x", &r), -ENOENT);
    ck_assert_int_eq(RESOLVE(ROOT, "a/b/c/d", &r), -ENOTDIR);
    ck_assert_int_eq(RESOLVE(ROOT, "a/link/c", &r), -ENOTDIR);
    ck_assert_int_eq(RESOLVE(999, "a", &r), -ENOENT);
    memset(path, 'p', 256);
    path[256] = '\0';
    ck_assert_int_eq(RESOLVE(ROOT, path, &r), -ENAMETOOLONG);
    /* 4096 bytes of path is allowed, 4097 is not. */
    for (int i = 0; i < STORE_PATH_MAX + 1; i++) {
        path[i] = i % 2 == 0 ? '.' : '/';
    }
    path[STORE_PATH_MAX + 1] = '\0';
    ck_assert_int_eq(store_fsm_resolve(&h.f, ROOT, path, STORE_PATH_MAX, &r),
                     0);
    ck_assert_int_eq(store_fsm_resolve(&h.f, ROOT, path, STORE_PATH_MAX + 1,
                                       &r), -ENAMETOOLONG);
    ck_assert_int_eq(store_fsm_resolve(&h.f, ROOT, "a\0b", 3, &r), -EINVAL);
#undef RESOLVE
    h_close(&h);
}
END_TEST

START_TEST(test_statfs_space)
{
    struct h h;
    struct store_fsm_statfs st;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, ROOT, "a", 0, "12345", NULL), 0);
    ck_assert_int_eq(h_create(&h, ROOT, "b", 0, "678", NULL), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", NULL), 0);
    ck_assert_int_eq(store_fsm_statfs(&h.f, &st), 0);
    ck_assert_uint_eq(st.inodes, 4);
    ck_assert_uint_eq(st.bytes, 8);
    ck_assert_uint_eq(st.applied, 3);
    ck_assert_uint_eq(st.map_size, (size_t)256 << 20);
    ck_assert_uint_gt(st.map_used, 0);
    ck_assert_uint_lt(st.map_used, st.map_size);
    ck_assert_uint_gt(st.page_size, 0);
    ck_assert_int_eq(store_fsm_space_ok(&h.f, 1 << 20), 0);
    ck_assert_int_eq(store_fsm_space_ok(&h.f, (uint64_t)200 << 20), -ENOSPC);
    h_close(&h);
}
END_TEST

/* Reads on one thread while another commits (the env is MDB_NOTLS): every
 * read sees some committed state, never an error or a torn directory. */
struct writer {
    struct h *h;
    struct raft_entry *e;
    size_t n;
    int failures;
    volatile int done;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;

    for (size_t i = 0; i < w->n; i += 10) {
        MDB_txn *txn;
        if (mdb_txn_begin(w->h->env, NULL, 0, &txn) != 0) {
            w->failures++;
            break;
        }
        for (size_t j = i; j < i + 10 && j < w->n; j++) {
            struct store_apply_result res;
            if (store__fsm_apply(&w->h->f, txn, w->e[j].index, &w->e[j],
                                 &res) != 0 || res.status != 0) {
                w->failures++;
            }
        }
        if (mdb_txn_commit(txn) != 0) {
            w->failures++;
        }
    }
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

START_TEST(test_reads_while_writing)
{
    enum { N = 3000 };
    static struct raft_entry e[N];
    struct h h;
    struct store_attr d, a;
    struct store_cmd c;
    struct writer w;
    pthread_t t;
    int rounds = 0;
    int last_count = 0;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", &d), 0);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = d.ino;
    c.flags = STORE_CREATE_VALUE;
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%05zu", i);
        c.name = h_str(name);
        c.data = h_str(name);
        h_entry(&h, &c, h.next + i, &e[i]);
    }
    w.h = &h;
    w.e = e;
    w.n = N;
    w.failures = 0;
    w.done = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE) || rounds < 3) {
        struct pager p;
        int rv;
        memset(&p, 0, sizeof p);
        p.page_room = N + 1;
        rv = store_fsm_readdir(&h.f, d.ino, NULL, 0, rounds % 2 == 0, 0,
                               pager_cb, &p);
        ck_assert_int_ge(rv, last_count); /* never goes backwards */
        last_count = rv;
        if (rv > 0) {
            /* The last listed file exists, with its whole value. */
            void *buf;
            size_t len;
            ck_assert_int_eq(store_fsm_lookup(&h.f, d.ino, p.last,
                                              p.last_len, &a), 0);
            ck_assert_int_eq(store_fsm_read_all(&h.f, a.ino, &buf, &len,
                                                NULL), 0);
            ck_assert_uint_eq(len, p.last_len);
            ck_assert_mem_eq(buf, p.last, len);
            free(buf);
        }
        rounds++;
    }
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(w.failures, 0);
    {
        struct pager p;
        memset(&p, 0, sizeof p);
        p.page_room = N + 1;
        ck_assert_int_eq(store_fsm_readdir(&h.f, d.ino, NULL, 0, false, 0,
                                           pager_cb, &p), N);
    }
    for (size_t i = 0; i < N; i++) {
        free(e[i].data.base);
    }
    h_close(&h);
}
END_TEST

static Suite *read_suite(void)
{
    Suite *s = suite_create("store_fsm_read");
    TCase *tc;

    tc = tcase_create("lookup");
    tcase_add_test(tc, test_lookup_getattr);
    tcase_add_test(tc, test_read);
    tcase_add_test(tc, test_resolve);
    tcase_add_test(tc, test_statfs_space);
    suite_add_tcase(s, tc);

    tc = tcase_create("readdir");
    tcase_add_test(tc, test_readdir_small);
    tcase_add_test(tc, test_readdir_huge);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, test_reads_while_writing);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_main(read_suite());
}
