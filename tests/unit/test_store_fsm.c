/* Unit tests of the state machine's commands (store/fsm_apply.c). */
#include <sys/stat.h>

#include "test_store_fsm_harness.h"

/* The dump minus the leading state record (applied index, counters): what
 * a failed command must leave byte-identical. */
#define STATE_REC (7 + 5 + 40)

static void tree_dump(struct h *h, void **buf, size_t *len)
{
    h_dump(h, buf, len);
    ck_assert_uint_gt(*len, STATE_REC);
}

static void assert_same_tree(void *a, size_t alen, void *b, size_t blen)
{
    ck_assert_uint_eq(alen, blen);
    ck_assert_mem_eq((uint8_t *)a + STATE_REC, (uint8_t *)b + STATE_REC,
                     alen - STATE_REC);
}

/* Runs c and checks it fails with `status` and changes nothing but the
 * applied index. */
static void assert_fails(struct h *h, struct store_cmd *c, int status)
{
    void *before, *after;
    size_t blen, alen;
    raft_index applied;

    tree_dump(h, &before, &blen);
    ck_assert_int_eq(h_run(h, c, NULL), status);
    tree_dump(h, &after, &alen);
    assert_same_tree(before, blen, after, alen);
    applied = store_fsm_applied(&h->f);
    ck_assert_uint_eq(applied, h->next - 1);
    free(before);
    free(after);
}

START_TEST(test_open_root)
{
    struct h h;
    struct store_attr a;

    h_init(&h);
    a = h_attr(&h, STORE_ROOT_INO);
    ck_assert_uint_eq(a.type, STORE_TYPE_DIR);
    ck_assert_uint_eq(a.mode, S_IFDIR | 0755);
    ck_assert_uint_eq(a.nlink, 2);
    ck_assert_uint_eq(a.parent, STORE_ROOT_INO);
    ck_assert_uint_eq(store_fsm_applied(&h.f), 0);

    /* Reopening finds the same state and does not recreate anything. */
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", NULL), 0);
    store__fsm_close(&h.f);
    mdb_env_close(h.env);
    h_open_env(&h, (size_t)256 << 20);
    ck_assert_uint_eq(store_fsm_applied(&h.f), 1);
    ck_assert_uint_eq(h_attr(&h, STORE_ROOT_INO).nlink, 3);
    ck_assert(h_exists(&h, "d"));
    h_close(&h);
}
END_TEST

START_TEST(test_create)
{
    struct h h;
    struct store_attr a, b;
    char *v;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "k", 0, "v1", &a), 0);
    ck_assert_uint_eq(a.ino, 2);
    ck_assert_uint_eq(a.type, STORE_TYPE_FILE);
    ck_assert_uint_eq(a.mode, S_IFREG | 0644);
    ck_assert_uint_eq(a.nlink, 1);
    ck_assert_uint_eq(a.size, 2);
    ck_assert_uint_eq(a.create_rev, 1);
    ck_assert_uint_eq(a.mod_rev, 1);
    ck_assert_uint_eq(a.mtime_ns, h.now);
    ck_assert_uint_eq(a.parent, STORE_ROOT_INO);
    b = h_attr(&h, a.ino);
    ck_assert(h_same_attr(&a, &b));
    v = h_value(&h, "k");
    ck_assert_str_eq(v, "v1");
    free(v);
    /* The directory changed. */
    ck_assert_uint_eq(h_attr(&h, STORE_ROOT_INO).mod_rev, 1);
    ck_assert_uint_eq(h_attr(&h, STORE_ROOT_INO).mtime_ns, h.now);
    ck_assert_uint_eq(h_attr(&h, STORE_ROOT_INO).nlink, 2);

    /* Without EXCL an existing file is returned as is... */
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "k", 0, NULL, &b), 0);
    ck_assert_uint_eq(b.ino, a.ino);
    ck_assert_uint_eq(b.size, 2);
    ck_assert_uint_eq(b.mod_rev, 1);
    /* ... and a value without TRUNC does not replace its content. */
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "k", 0, "zz", &b), 0);
    v = h_value(&h, "k");
    ck_assert_str_eq(v, "v1");
    free(v);
    /* TRUNC empties it. */
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "k", STORE_CREATE_TRUNC,
                              NULL, &b), 0);
    ck_assert_uint_eq(b.ino, a.ino);
    ck_assert_uint_eq(b.size, 0);
    ck_assert_uint_eq(b.mod_rev, 4);
    ck_assert_uint_eq(b.create_rev, 1);
    /* TRUNC with a value replaces it. */
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "k", STORE_CREATE_TRUNC,
                              "new", &b), 0);
    v = h_value(&h, "k");
    ck_assert_str_eq(v, "new");
    free(v);

    /* A second file gets the next inode number. */
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "k2", 0, NULL, &b), 0);
    ck_assert_uint_eq(b.ino, 3);
    ck_assert_uint_eq(b.size, 0);
    h_close(&h);
}
END_TEST

/* A deferred `>>` create: APPEND makes the file with the value, or appends
 * it to one made meanwhile, within the command's limit. */
START_TEST(test_create_append)
{
    struct store_cmd c;
    struct store_apply_result res;
    struct h h;
    char *v;

    h_init(&h);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = STORE_ROOT_INO;
    c.name = h_str("log");
    c.mode = 0644;
    c.flags = STORE_CREATE_VALUE | STORE_CREATE_APPEND;
    c.data = h_str("one\n");
    c.max_size = 8;
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.size, 4);
    c.data = h_str("two\n");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.size, 8);
    v = h_value(&h, "log");
    ck_assert_str_eq(v, "one\ntwo\n");
    free(v);
    /* Over the limit: EFBIG and nothing changed. */
    c.data = h_str("x");
    ck_assert_int_eq(h_run(&h, &c, &res), -EFBIG);
    v = h_value(&h, "log");
    ck_assert_str_eq(v, "one\ntwo\n");
    free(v);
    /* EXCL still wins over APPEND. */
    c.flags |= STORE_CREATE_EXCL;
    ck_assert_int_eq(h_run(&h, &c, &res), -EEXIST);
    h_close(&h);
}
END_TEST

START_TEST(test_create_excl_twice)
{
    struct h h;
    struct store_attr a;
    struct store_cmd c;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "lock", STORE_CREATE_EXCL,
                              "1234", &a), 0);
    ck_assert_uint_eq(a.create_rev, 1);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = STORE_ROOT_INO;
    c.name = h_str("lock");
    c.mode = 0644;
    c.flags = STORE_CREATE_EXCL | STORE_CREATE_VALUE;
    c.data = h_str("5678");
    assert_fails(&h, &c, -EEXIST);
    /* Also against a directory of that name. */
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", NULL), 0);
    c.name = h_str("d");
    assert_fails(&h, &c, -EEXIST);
    h_close(&h);
}
END_TEST

START_TEST(test_create_errors)
{
    struct h h;
    struct store_cmd c;
    char longname[300];
    struct store_attr f;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", NULL), 0);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "f", 0, NULL, &f), 0);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = STORE_ROOT_INO;
    c.mode = 0644;

    c.name = h_str("d"); /* open(O_CREAT) of a directory */
    assert_fails(&h, &c, -EISDIR);
    c.name = h_str("x");
    c.parent = 999;
    assert_fails(&h, &c, -ENOENT);
    c.parent = f.ino;
    assert_fails(&h, &c, -ENOTDIR);
    c.parent = STORE_ROOT_INO;

    memset(longname, 'n', sizeof longname);
    c.name.base = longname;
    c.name.len = 256;
    assert_fails(&h, &c, -ENAMETOOLONG);
    c.name.len = 255; /* the limit itself is fine */
    ck_assert_int_eq(h_run(&h, &c, NULL), 0);

    c.name = h_str("a/b");
    assert_fails(&h, &c, -EINVAL);
    c.name.base = "a\0b";
    c.name.len = 3;
    assert_fails(&h, &c, -EINVAL);
    c.name = h_str(".");
    assert_fails(&h, &c, -EINVAL);
    c.name = h_str("..");
    assert_fails(&h, &c, -EINVAL);
    c.name = h_str("");
    assert_fails(&h, &c, -EINVAL);
    /* "..." is an ordinary name. */
    c.name = h_str("...");
    ck_assert_int_eq(h_run(&h, &c, NULL), 0);
    h_close(&h);
}
END_TEST

START_TEST(test_put)
{
    struct h h;
    struct store_apply_result res;
    struct store_attr a, d;
    struct store_cmd c;
    char *v;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "k", 0, "old", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", &d), 0);
    store_cmd_init(&c);
    c.type = STORE_CMD_PUT;
    c.ino = a.ino;
    c.data = h_str("a longer value");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.size, 14);
    ck_assert_uint_eq(res.attr.mod_rev, 3);
    ck_assert_uint_eq(res.attr.create_rev, 1);
    ck_assert_uint_eq(res.attr.mtime_ns, h.now);
    v = h_value(&h, "k");
    ck_assert_str_eq(v, "a longer value");
    free(v);
    /* An empty put empties the file. */
    c.data = h_str("");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.size, 0);
    v = h_value(&h, "k");
    ck_assert_str_eq(v, "");
    free(v);

    c.data = h_str("x");
    c.ino = 999;
    assert_fails(&h, &c, -ENOENT);
    c.ino = d.ino;
    assert_fails(&h, &c, -EISDIR);
    h_close(&h);
}
END_TEST

START_TEST(test_append)
{
    struct h h;
    struct store_apply_result res;
    struct store_attr a, d;
    struct store_cmd c;
    char *v;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "log", 0, NULL, &a), 0);
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", &d), 0);
    store_cmd_init(&c);
    c.type = STORE_CMD_APPEND;
    c.ino = a.ino;
    c.max_size = 10;
    c.data = h_str("one\n");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    c.data = h_str("two\n");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.size, 8);
    v = h_value(&h, "log");
    ck_assert_str_eq(v, "one\ntwo\n");
    free(v);
    /* 8 + 3 > 10: EFBIG and nothing changes. */
    c.data = h_str("333");
    assert_fails(&h, &c, -EFBIG);
    /* Exactly to the limit is fine. */
    c.data = h_str("33");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.size, 10);
    /* No limit. */
    c.max_size = 0;
    c.data = h_str("more");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    v = h_value(&h, "log");
    ck_assert_str_eq(v, "one\ntwo\n33more");
    free(v);

    c.ino = d.ino;
    assert_fails(&h, &c, -EISDIR);
    c.ino = 999;
    assert_fails(&h, &c, -ENOENT);
    h_close(&h);
}
END_TEST

START_TEST(test_setattr)
{
    struct h h;
    struct store_apply_result res;
    struct store_attr a, d;
    struct store_cmd c;
    void *buf;
    size_t len;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "f", 0, "abcdef", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", &d), 0);
    store_cmd_init(&c);
    c.type = STORE_CMD_SETATTR;
    c.ino = a.ino;

    c.mask = STORE_SET_MODE;
    c.mode = 0600 | S_IFREG;
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.mode, S_IFREG | 0600);
    ck_assert_uint_eq(res.attr.ctime_ns, h.now);
    ck_assert_uint_eq(res.attr.mtime_ns, a.mtime_ns);
    ck_assert_uint_eq(res.attr.size, 6);

    /* Truncate. */
    c.mask = STORE_SET_SIZE;
    c.size = 3;
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.size, 3);
    ck_assert_uint_eq(res.attr.mtime_ns, h.now);
    ck_assert_int_eq(store_fsm_read_all(&h.f, a.ino, &buf, &len, NULL), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(buf, "abc", 3);
    free(buf);
    /* Zero-extend. */
    c.size = 6;
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_int_eq(store_fsm_read_all(&h.f, a.ino, &buf, &len, NULL), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(buf, "abc\0\0\0", 6);
    free(buf);
    /* To zero. */
    c.size = 0;
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_int_eq(store_fsm_read_all(&h.f, a.ino, &buf, &len, NULL), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(buf);
    /* Over the carried limit. */
    c.size = 101;
    c.max_size = 100;
    assert_fails(&h, &c, -EFBIG);
    /* Over the hard limit, whatever the command says. */
    c.size = (uint64_t)STORE_FSM_VALUE_HARD_MAX + 1;
    c.max_size = 0;
    assert_fails(&h, &c, -EFBIG);

    /* Times. */
    c.mask = STORE_SET_MTIME | STORE_SET_ATIME;
    c.mtime_ns = 111;
    c.atime_ns = 222;
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.mtime_ns, 111);
    ck_assert_uint_eq(res.attr.atime_ns, 222);
    ck_assert_uint_eq(h_attr(&h, a.ino).mtime_ns, 111);

    /* Size on a directory; unknown mask bits; missing inode. */
    c.ino = d.ino;
    c.mask = STORE_SET_SIZE;
    c.size = 0;
    assert_fails(&h, &c, -EISDIR);
    c.mask = STORE_SET_MODE;
    c.mode = 0700;
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.mode, S_IFDIR | 0700);
    c.ino = 999;
    assert_fails(&h, &c, -ENOENT);
    h_close(&h);
}
END_TEST

START_TEST(test_unlink)
{
    struct h h;
    struct store_attr a, d, st;
    struct store_apply_result res;
    struct store_fsm_statfs sf;
    struct store_cmd c;

    h_init(&h);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "f", 0, "data", &a), 0);
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", &d), 0);
    ck_assert_int_eq(store_fsm_statfs(&h.f, &sf), 0);
    ck_assert_uint_eq(sf.inodes, 3);
    ck_assert_uint_eq(sf.bytes, 4);

    store_cmd_init(&c);
    c.type = STORE_CMD_UNLINK;
    c.parent = STORE_ROOT_INO;
    c.name = h_str("f");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.ino, a.ino);
    ck_assert_uint_eq(res.attr.nlink, 0);
    ck_assert(!h_exists(&h, "f"));
    ck_assert_int_eq(store_fsm_getattr(&h.f, a.ino, &st), -ENOENT);
    ck_assert_int_eq(store_fsm_statfs(&h.f, &sf), 0);
    ck_assert_uint_eq(sf.inodes, 2);
    ck_assert_uint_eq(sf.bytes, 0);

    assert_fails(&h, &c, -ENOENT);
    c.name = h_str("d");
    assert_fails(&h, &c, -EISDIR);
    c.parent = 999;
    assert_fails(&h, &c, -ENOENT);
    h_close(&h);
}
END_TEST

START_TEST(test_mkdir_rmdir)
{
    struct h h;
    struct store_attr d, e;
    struct store_cmd c;

    h_init(&h);
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", &d), 0);
    ck_assert_uint_eq(d.mode, S_IFDIR | 0755);
    ck_assert_uint_eq(d.nlink, 2);
    ck_assert_uint_eq(d.parent, STORE_ROOT_INO);
    ck_assert_uint_eq(h_attr(&h, STORE_ROOT_INO).nlink, 3);
    ck_assert_int_eq(h_mkdir(&h, d.ino, "e", &e), 0);
    ck_assert_uint_eq(h_attr(&h, d.ino).nlink, 3);
    ck_assert_int_eq(h_create(&h, d.ino, "f", 0, NULL, NULL), 0);
    /* Files do not count in nlink. */
    ck_assert_uint_eq(h_attr(&h, d.ino).nlink, 3);

    store_cmd_init(&c);
    c.type = STORE_CMD_MKDIR;
    c.parent = STORE_ROOT_INO;
    c.name = h_str("d");
    c.mode = 0700;
    assert_fails(&h, &c, -EEXIST);
    c.parent = h_ino(&h, "d/f");
    assert_fails(&h, &c, -ENOTDIR);

    c.type = STORE_CMD_RMDIR;
    c.parent = STORE_ROOT_INO;
    c.name = h_str("d");
    assert_fails(&h, &c, -ENOTEMPTY);
    c.parent = d.ino;
    c.name = h_str("f");
    assert_fails(&h, &c, -ENOTDIR);
    c.name = h_str("nope");
    assert_fails(&h, &c, -ENOENT);
    c.name = h_str("..");
    assert_fails(&h, &c, -EINVAL);

    ck_assert_int_eq(h_remove(&h, STORE_CMD_RMDIR, d.ino, "e"), 0);
    ck_assert_uint_eq(h_attr(&h, d.ino).nlink, 2);
    ck_assert_int_eq(h_remove(&h, STORE_CMD_UNLINK, d.ino, "f"), 0);
    ck_assert_int_eq(h_remove(&h, STORE_CMD_RMDIR, STORE_ROOT_INO, "d"), 0);
    ck_assert_uint_eq(h_attr(&h, STORE_ROOT_INO).nlink, 2);
    ck_assert(!h_exists(&h, "d"));
    h_close(&h);
}
END_TEST

START_TEST(test_symlink)
{
    struct h h;
    struct store_apply_result res;
    struct store_cmd c;
    char target[STORE_SYMLINK_MAX + 2];
    char *t;

    h_init(&h);
    store_cmd_init(&c);
    c.type = STORE_CMD_SYMLINK;
    c.parent = STORE_ROOT_INO;
    c.name = h_str("l");
    c.data = h_str("../some/target");
    ck_assert_int_eq(h_run(&h, &c, &res), 0);
    ck_assert_uint_eq(res.attr.type, STORE_TYPE_SYMLINK);
    ck_assert_uint_eq(res.attr.mode, S_IFLNK | 0777);
    ck_assert_uint_eq(res.attr.size, 14);
    ck_assert_int_eq(store_fsm_readlink(&h.f, res.attr.ino, &t), 0);
    ck_assert_str_eq(t, "../some/target");
    free(t);
    /* Not a file: put and read refuse it; readlink refuses files. */
    ck_assert_int_eq(store_fsm_read_all(&h.f, res.attr.ino, (void **)&t,
                                        &(size_t){0}, NULL), -EINVAL);

    assert_fails(&h, &c, -EEXIST);
    c.name = h_str("l2");
    c.data = h_str("");
    assert_fails(&h, &c, -ENOENT);
    memset(target, 't', sizeof target);
    c.data.base = target;
    c.data.len = STORE_SYMLINK_MAX + 1;
    assert_fails(&h, &c, -ENAMETOOLONG);
    c.data.len = STORE_SYMLINK_MAX;
    ck_assert_int_eq(h_run(&h, &c, NULL), 0);
    h_close(&h);
}
END_TEST

static Suite *fsm_suite(void)
{
    Suite *s = suite_create("store_fsm");
    TCase *tc;

    tc = tcase_create("open");
    tcase_add_test(tc, test_open_root);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_test(tc, test_create);
    tcase_add_test(tc, test_create_append);
    tcase_add_test(tc, test_create_excl_twice);
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_put);
    tcase_add_test(tc, test_append);
    tcase_add_test(tc, test_setattr);
    tcase_add_test(tc, test_unlink);
    tcase_add_test(tc, test_symlink);
    suite_add_tcase(s, tc);

    tc = tcase_create("dirs");
    tcase_add_test(tc, test_mkdir_rmdir);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return h_main(fsm_suite());
}
