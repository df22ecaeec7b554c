/* Unit tests of rename on the inode tree (store/fsm_rename.c). */
#include <sys/stat.h>

#include "test_store_fsm_harness.h"

#define ROOT STORE_ROOT_INO
#define STATE_REC (7 + 5 + 40)

/* A rename that must fail with `status` and change nothing but the
 * applied index. */
static void assert_rename_fails(struct h *h, uint64_t p, const char *n,
                                uint64_t np, const char *nn, uint32_t flags,
                                int status)
{
    void *before, *after;
    size_t blen, alen;

    h_dump(h, &before, &blen);
    ck_assert_int_eq(h_rename(h, p, n, np, nn, flags, NULL), status);
    h_dump(h, &after, &alen);
    ck_assert_uint_eq(blen, alen);
    ck_assert_mem_eq((uint8_t *)before + STATE_REC,
                     (uint8_t *)after + STATE_REC, blen - STATE_REC);
    free(before);
    free(after);
}

static void assert_value(struct h *h, const char *path, const char *want)
{
    char *v = h_value(h, path);
    ck_assert_str_eq(v, want);
    free(v);
}

START_TEST(test_rename_simple)
{
    struct h h;
    struct store_attr a, r;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, ROOT, "a", 0, "A", &a), 0);
    ck_assert_int_eq(h_rename(&h, ROOT, "a", ROOT, "b", 0, &r), 0);
    ck_assert_uint_eq(r.ino, a.ino);
    ck_assert_uint_eq(r.ctime_ns, h.now);
    ck_assert_uint_eq(r.create_rev, a.create_rev);
    ck_assert(!h_exists(&h, "a"));
    ck_assert_uint_eq(h_ino(&h, "b"), a.ino);
    assert_value(&h, "b", "A");
    ck_assert_uint_eq(h_attr(&h, ROOT).mtime_ns, h.now);
    h_close(&h);
}
END_TEST

START_TEST(test_rename_replace_file)
{
    struct h h;
    struct store_attr a, b;
    struct store_fsm_statfs sf;

    h_init(&h);
    /* The editor's save: write a temp file, rename it over the original. */
    ck_assert_int_eq(h_create(&h, ROOT, "conf", 0, "old", &b), 0);
    ck_assert_int_eq(h_create(&h, ROOT, "conf.tmp", 0, "new!", &a), 0);
    ck_assert_int_eq(h_rename(&h, ROOT, "conf.tmp", ROOT, "conf", 0, NULL), 0);
    ck_assert_uint_eq(h_ino(&h, "conf"), a.ino);
    assert_value(&h, "conf", "new!");
    ck_assert(!h_exists(&h, "conf.tmp"));
    /* The old inode and its value are gone. */
    ck_assert_int_eq(store_fsm_getattr(&h.f, b.ino, &a), -ENOENT);
    ck_assert_int_eq(store_fsm_statfs(&h.f, &sf), 0);
    ck_assert_uint_eq(sf.inodes, 2);
    ck_assert_uint_eq(sf.bytes, 4);
    h_close(&h);
}
END_TEST

START_TEST(test_rename_across_dirs)
{
    struct h h;
    struct store_attr d1, d2, a, sub;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d1", &d1), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d2", &d2), 0);
    ck_assert_int_eq(h_create(&h, d1.ino, "f", 0, "x", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, d1.ino, "sub", &sub), 0);
    ck_assert_int_eq(h_create(&h, sub.ino, "deep", 0, "deep", NULL), 0);
    ck_assert_uint_eq(h_attr(&h, d1.ino).nlink, 3);

    ck_assert_int_eq(h_rename(&h, d1.ino, "f", d2.ino, "g", 0, NULL), 0);
    ck_assert_uint_eq(h_ino(&h, "d2/g"), a.ino);
    ck_assert_uint_eq(h_attr(&h, a.ino).parent, d2.ino);
    ck_assert(!h_exists(&h, "d1/f"));

    /* A directory moves as one entry: its subtree comes along. */
    ck_assert_int_eq(h_rename(&h, d1.ino, "sub", d2.ino, "sub2", 0, NULL), 0);
    assert_value(&h, "d2/sub2/deep", "deep");
    ck_assert_uint_eq(h_ino(&h, "d2/sub2"), sub.ino);
    ck_assert_uint_eq(h_attr(&h, sub.ino).parent, d2.ino);
    ck_assert_uint_eq(h_attr(&h, d1.ino).nlink, 2);
    ck_assert_uint_eq(h_attr(&h, d2.ino).nlink, 3);
    ck_assert_uint_eq(h_attr(&h, ROOT).nlink, 4);
    /* ".." follows the new parent. */
    ck_assert_uint_eq(h_ino(&h, "d2/sub2/.."), d2.ino);
    h_close(&h);
}
END_TEST

START_TEST(test_rename_dir_over_dir)
{
    struct h h;
    struct store_attr a, b, c;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "a", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "b", &b), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "c", &c), 0);
    ck_assert_int_eq(h_create(&h, a.ino, "x", 0, "in a", NULL), 0);
    ck_assert_int_eq(h_create(&h, c.ino, "y", 0, NULL, NULL), 0);
    ck_assert_uint_eq(h_attr(&h, ROOT).nlink, 5);

    /* Over an empty directory: ok, the empty one is gone. */
    ck_assert_int_eq(h_rename(&h, ROOT, "a", ROOT, "b", 0, NULL), 0);
    ck_assert_uint_eq(h_ino(&h, "b"), a.ino);
    assert_value(&h, "b/x", "in a");
    ck_assert_int_eq(store_fsm_getattr(&h.f, b.ino, &b), -ENOENT);
    ck_assert_uint_eq(h_attr(&h, ROOT).nlink, 4);
    /* Over a non-empty one: ENOTEMPTY. */
    assert_rename_fails(&h, ROOT, "b", ROOT, "c", 0, -ENOTEMPTY);
    h_close(&h);
}
END_TEST

START_TEST(test_rename_type_mismatch)
{
    struct h h;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", NULL), 0);
    ck_assert_int_eq(h_create(&h, ROOT, "f", 0, NULL, NULL), 0);
    assert_rename_fails(&h, ROOT, "f", ROOT, "d", 0, -EISDIR);
    assert_rename_fails(&h, ROOT, "d", ROOT, "f", 0, -ENOTDIR);
    h_close(&h);
}
END_TEST

START_TEST(test_rename_same_inode)
{
    struct h h;
    struct store_attr a, r;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, ROOT, "f", 0, "keep", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", NULL), 0);
    /* Onto itself: success, nothing changes (not even ctime). */
    ck_assert_int_eq(h_rename(&h, ROOT, "f", ROOT, "f", 0, &r), 0);
    ck_assert_uint_eq(r.ino, a.ino);
    ck_assert_uint_eq(h_attr(&h, a.ino).ctime_ns, a.ctime_ns);
    assert_value(&h, "f", "keep");
    ck_assert_int_eq(h_rename(&h, ROOT, "d", ROOT, "d", 0, NULL), 0);
    ck_assert_int_eq(h_rename(&h, ROOT, "f", ROOT, "f",
                              STORE_RENAME_EXCHANGE, NULL), 0);
    ck_assert(h_exists(&h, "f"));
    ck_assert(h_exists(&h, "d"));
    /* NOREPLACE onto itself: the name exists (Linux checks this first). */
    assert_rename_fails(&h, ROOT, "f", ROOT, "f", STORE_RENAME_NOREPLACE,
                        -EEXIST);
    h_close(&h);
}
END_TEST

START_TEST(test_rename_into_own_subtree)
{
    struct h h;
    struct store_attr a, b, c;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "a", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, a.ino, "b", &b), 0);
    ck_assert_int_eq(h_mkdir(&h, b.ino, "c", &c), 0);
    assert_rename_fails(&h, ROOT, "a", a.ino, "x", 0, -EINVAL);
    assert_rename_fails(&h, ROOT, "a", c.ino, "x", 0, -EINVAL);
    assert_rename_fails(&h, a.ino, "b", b.ino, "x", 0, -EINVAL);
    /* Exchanging a directory with something inside it. */
    assert_rename_fails(&h, ROOT, "a", b.ino, "c", STORE_RENAME_EXCHANGE,
                        -EINVAL);
    assert_rename_fails(&h, b.ino, "c", ROOT, "a", STORE_RENAME_EXCHANGE,
                        -EINVAL);
    /* Moving a subdirectory up is fine. */
    ck_assert_int_eq(h_rename(&h, b.ino, "c", ROOT, "c", 0, NULL), 0);
    ck_assert_uint_eq(h_ino(&h, "c"), c.ino);
    h_close(&h);
}
END_TEST

START_TEST(test_rename_noreplace)
{
    struct h h;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, ROOT, "a", 0, "A", NULL), 0);
    ck_assert_int_eq(h_create(&h, ROOT, "b", 0, "B", NULL), 0);
    assert_rename_fails(&h, ROOT, "a", ROOT, "b", STORE_RENAME_NOREPLACE,
                        -EEXIST);
    ck_assert_int_eq(h_rename(&h, ROOT, "a", ROOT, "c",
                              STORE_RENAME_NOREPLACE, NULL), 0);
    assert_value(&h, "c", "A");
    assert_value(&h, "b", "B");
    h_close(&h);
}
END_TEST

START_TEST(test_rename_exchange)
{
    struct h h;
    struct store_attr d1, d2, f, sub, r;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d1", &d1), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d2", &d2), 0);
    ck_assert_int_eq(h_create(&h, d1.ino, "f", 0, "file", &f), 0);
    ck_assert_int_eq(h_mkdir(&h, d2.ino, "sub", &sub), 0);
    ck_assert_int_eq(h_create(&h, sub.ino, "in", 0, "inside", NULL), 0);

    /* Missing target: ENOENT. */
    assert_rename_fails(&h, d1.ino, "f", d2.ino, "none",
                        STORE_RENAME_EXCHANGE, -ENOENT);
    /* Exchange of a file and a (non-empty) directory across directories. */
    ck_assert_int_eq(h_rename(&h, d1.ino, "f", d2.ino, "sub",
                              STORE_RENAME_EXCHANGE, &r), 0);
    ck_assert_uint_eq(r.ino, f.ino);
    ck_assert_uint_eq(h_ino(&h, "d1/f"), sub.ino);
    ck_assert_uint_eq(h_ino(&h, "d2/sub"), f.ino);
    assert_value(&h, "d1/f/in", "inside");
    assert_value(&h, "d2/sub", "file");
    ck_assert_uint_eq(h_attr(&h, sub.ino).parent, d1.ino);
    ck_assert_uint_eq(h_attr(&h, f.ino).parent, d2.ino);
    /* The subdirectory moved from d2 to d1. */
    ck_assert_uint_eq(h_attr(&h, d1.ino).nlink, 3);
    ck_assert_uint_eq(h_attr(&h, d2.ino).nlink, 2);
    /* Exchange within one directory. */
    ck_assert_int_eq(h_create(&h, ROOT, "x", 0, "X", NULL), 0);
    ck_assert_int_eq(h_create(&h, ROOT, "y", 0, "Y", NULL), 0);
    ck_assert_int_eq(h_rename(&h, ROOT, "x", ROOT, "y",
                              STORE_RENAME_EXCHANGE, NULL), 0);
    assert_value(&h, "x", "Y");
    assert_value(&h, "y", "X");
    h_close(&h);
}
END_TEST

START_TEST(test_rename_errors)
{
    struct h h;
    struct store_attr f;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, ROOT, "f", 0, NULL, &f), 0);
    ck_assert_int_eq(h_mkdir(&h, ROOT, "d", NULL), 0);
    assert_rename_fails(&h, ROOT, "none", ROOT, "x", 0, -ENOENT);
    assert_rename_fails(&h, 999, "f", ROOT, "x", 0, -ENOENT);
    assert_rename_fails(&h, ROOT, "f", 999, "x", 0, -ENOENT);
    assert_rename_fails(&h, ROOT, "f", f.ino, "x", 0, -ENOTDIR);
    assert_rename_fails(&h, f.ino, "x", ROOT, "y", 0, -ENOTDIR);
    assert_rename_fails(&h, ROOT, "f", ROOT, "..", 0, -EINVAL);
    assert_rename_fails(&h, ROOT, ".", ROOT, "x", 0, -EINVAL);
    assert_rename_fails(&h, ROOT, "f", ROOT, "a/b", 0, -EINVAL);
    assert_rename_fails(&h, ROOT, "f", ROOT, "x",
                        STORE_RENAME_EXCHANGE | STORE_RENAME_NOREPLACE,
                        -EINVAL);
    assert_rename_fails(&h, ROOT, "f", ROOT, "x", 0x4, -EINVAL);
    {
        char longname[257];
        memset(longname, 'n', 256);
        longname[256] = '\0';
        assert_rename_fails(&h, ROOT, "f", ROOT, longname, 0, -ENAMETOOLONG);
    }
    /* A directory over its own parent would leave it non-empty. */
    ck_assert_int_eq(h_mkdir(&h, h_ino(&h, "d"), "inner", NULL), 0);
    assert_rename_fails(&h, h_ino(&h, "d"), "inner", ROOT, "d", 0,
                        -ENOTEMPTY);
    h_close(&h);
}
END_TEST

static Suite *rename_suite(void)
{
    Suite *s = suite_create("store_fsm_rename");
    TCase *tc;

    tc = tcase_create("replace");
    tcase_add_test(tc, test_rename_simple);
    tcase_add_test(tc, test_rename_replace_file);
    tcase_add_test(tc, test_rename_across_dirs);
    tcase_add_test(tc, test_rename_dir_over_dir);
    tcase_add_test(tc, test_rename_type_mismatch);
    tcase_add_test(tc, test_rename_same_inode);
    tcase_add_test(tc, test_rename_into_own_subtree);
    tcase_add_test(tc, test_rename_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("flags");
    tcase_add_test(tc, test_rename_noreplace);
    tcase_add_test(tc, test_rename_exchange);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_main(rename_suite());
}
