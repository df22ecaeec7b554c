/* Unit tests of the filesystem model (fs/fsmodel*.c), without a mount. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsmodel.h"

static struct store_attr file_attr(uint64_t ino, uint64_t size)
{
    struct store_attr a;
    memset(&a, 0, sizeof a);
    a.ino = ino;
    a.type = STORE_TYPE_FILE;
    a.mode = S_IFREG | 0644;
    a.nlink = 1;
    a.size = size;
    a.parent = 1;
    a.mtime_ns = 1500000000123456789ull;
    a.ctime_ns = 1500000001000000000ull;
    a.atime_ns = 1500000002000000000ull;
    a.create_rev = 7;
    a.mod_rev = 9;
    return a;
}

/* ---- Mount options ---- */

START_TEST(test_opts_all)
{
    struct fs_model_opts o;
    char err[256];
    ck_assert_int_eq(fs_model_opts_parse("stale,root=/a/b,uid=1000,gid=100,"
                                         "allow_other,default_permissions",
                                         &o, err, sizeof err),
                     0);
    ck_assert(o.stale);
    ck_assert_str_eq(o.root, "a/b");
    ck_assert(o.has_uid && o.uid == 1000);
    ck_assert(o.has_gid && o.gid == 100);
    ck_assert(o.allow_other);
    ck_assert(o.default_permissions);
}
END_TEST

START_TEST(test_opts_empty_and_noops)
{
    struct fs_model_opts o;
    char err[256];
    ck_assert_int_eq(fs_model_opts_parse(NULL, &o, err, sizeof err), 0);
    ck_assert(!o.stale && o.root[0] == '\0' && !o.has_uid);
    ck_assert_int_eq(fs_model_opts_parse("", &o, err, sizeof err), 0);
    ck_assert_int_eq(
        fs_model_opts_parse("rw,noatime,_netdev,,defaults", &o, err, sizeof err),
        0);
    ck_assert(!o.stale);
}
END_TEST

START_TEST(test_opts_refused)
{
    struct fs_model_opts o;
    char err[256];
    ck_assert_int_eq(fs_model_opts_parse("stale,bogus", &o, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "bogus"));
    ck_assert_int_eq(fs_model_opts_parse("uid=", &o, err, sizeof err), -EINVAL);
    ck_assert_int_eq(fs_model_opts_parse("uid=abc", &o, err, sizeof err),
                     -EINVAL);
    ck_assert_int_eq(fs_model_opts_parse("gid=-1", &o, err, sizeof err),
                     -EINVAL);
    ck_assert_int_eq(fs_model_opts_parse("ro", &o, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "ro"));
}
END_TEST

/* ---- Node ids ---- */

START_TEST(test_ino_identity_without_subtree)
{
    uint64_t i;
    for (i = 1; i < 100; i++) {
        ck_assert_uint_eq(fs_model_to_store(STORE_ROOT_INO, i), i);
        ck_assert_uint_eq(fs_model_to_fuse(STORE_ROOT_INO, i), i);
    }
}
END_TEST

START_TEST(test_ino_subtree_swap)
{
    uint64_t root = 42;
    uint64_t i;
    ck_assert_uint_eq(fs_model_to_store(root, FUSE_ROOT_ID), 42);
    ck_assert_uint_eq(fs_model_to_fuse(root, 42), FUSE_ROOT_ID);
    ck_assert_uint_eq(fs_model_to_store(root, 42), STORE_ROOT_INO);
    for (i = 1; i < 100; i++) {
        /* A bijection: every id maps back. */
        ck_assert_uint_eq(fs_model_to_fuse(root, fs_model_to_store(root, i)),
                          i);
        if (i != 1 && i != 42) {
            ck_assert_uint_eq(fs_model_to_store(root, i), i);
        }
    }
}
END_TEST

/* ---- Errors ---- */

START_TEST(test_errno_reads)
{
    ck_assert_int_eq(fs_model_read_errno(0), 0);
    ck_assert_int_eq(fs_model_read_errno(-ETIMEDOUT), EIO);
    ck_assert_int_eq(fs_model_read_errno(-EIO), EIO);
    ck_assert_int_eq(fs_model_read_errno(RAFT_ERR_SHUTDOWN), EIO);
}
END_TEST

START_TEST(test_errno_writes)
{
    struct store_apply_result r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(fs_model_write_errno(0, &r), 0);
    ck_assert_int_eq(fs_model_write_errno(0, NULL), 0);
    r.status = -EEXIST;
    ck_assert_int_eq(fs_model_write_errno(0, &r), EEXIST);
    ck_assert_int_eq(fs_model_write_errno(-EEXIST, &r), EEXIST);
    ck_assert_int_eq(fs_model_write_errno(-ENOTEMPTY, NULL), ENOTEMPTY);
    /* The driver's verdicts: may still apply vs surely not. */
    ck_assert_int_eq(fs_model_write_errno(-ETIMEDOUT, NULL), ETIMEDOUT);
    ck_assert_int_eq(fs_model_write_errno(-EIO, NULL), EIO);
    ck_assert_int_eq(fs_model_write_errno(-ENOSPC, NULL), ENOSPC);
    ck_assert_int_eq(fs_model_write_errno(RAFT_ERR_TOO_BIG, NULL), EFBIG);
    ck_assert_int_eq(fs_model_write_errno(RAFT_ERR_SHUTDOWN, NULL), ETIMEDOUT);
    ck_assert_int_eq(fs_model_write_errno(RAFT_ERR_NOT_LEADER, NULL), EIO);
}
END_TEST

START_TEST(test_name_check)
{
    char name[300];
    memset(name, 'a', sizeof name);
    name[255] = '\0';
    ck_assert_int_eq(fs_model_name_check(name), 0);
    name[255] = 'a';
    name[256] = '\0';
    ck_assert_int_eq(fs_model_name_check(name), ENAMETOOLONG);
    ck_assert_int_eq(fs_model_name_check(""), EINVAL);
    ck_assert_int_eq(fs_model_name_check("."), EINVAL);
    ck_assert_int_eq(fs_model_name_check(".."), EINVAL);
    ck_assert_int_eq(fs_model_name_check("a/b"), EINVAL);
    ck_assert_int_eq(fs_model_name_check("..."), 0);
}
END_TEST

/* ---- Attributes ---- */

START_TEST(test_stat_file)
{
    struct store_attr a = file_attr(5, 1000);
    struct stat st;
    fs_model_stat(&a, STORE_ROOT_INO, 1000, 100, &st);
    ck_assert_uint_eq(st.st_ino, 5);
    ck_assert_uint_eq(st.st_mode, S_IFREG | 0644);
    ck_assert_uint_eq(st.st_uid, 1000);
    ck_assert_uint_eq(st.st_gid, 100);
    ck_assert_int_eq(st.st_size, 1000);
    ck_assert_int_eq(st.st_blocks, 2);
    ck_assert_int_eq(st.st_mtim.tv_sec, 1500000000);
    ck_assert_int_eq(st.st_mtim.tv_nsec, 123456789);
    ck_assert_int_eq(st.st_ctim.tv_sec, 1500000001);
    ck_assert_uint_eq(st.st_nlink, 1);
}
END_TEST

START_TEST(test_stat_subtree_root)
{
    struct store_attr a = file_attr(42, 0);
    struct stat st;
    a.type = STORE_TYPE_DIR;
    a.mode = S_IFDIR | 0755;
    a.nlink = 3;
    fs_model_stat(&a, 42, 0, 0, &st);
    ck_assert_uint_eq(st.st_ino, FUSE_ROOT_ID);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(st.st_nlink, 3);
}
END_TEST

/* ---- Commands ---- */

START_TEST(test_create_cmd)
{
    struct store_cmd c;
    fs_model_create_cmd(&c, 3, "lock", S_IFREG | 0644,
                        O_WRONLY | O_CREAT | O_EXCL);
    ck_assert_uint_eq(c.type, STORE_CMD_CREATE);
    ck_assert_uint_eq(c.parent, 3);
    ck_assert_uint_eq(c.name.len, 4);
    ck_assert_uint_eq(c.mode, 0644);
    ck_assert_uint_eq(c.flags, STORE_CREATE_EXCL);
    /* O_TRUNC is never in the command: no empty value is published. */
    fs_model_create_cmd(&c, 3, "k", 0600, O_WRONLY | O_CREAT | O_TRUNC);
    ck_assert_uint_eq(c.flags, 0);
}
END_TEST

START_TEST(test_setattr_cmd)
{
    struct store_cmd c;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFREG | 0600;
    st.st_size = 10;
    st.st_mtim.tv_sec = 2;
    st.st_mtim.tv_nsec = 3;
    ck_assert_int_eq(fs_model_setattr_cmd(&c, 9, &st,
                                          FUSE_SET_ATTR_MODE |
                                              FUSE_SET_ATTR_SIZE |
                                              FUSE_SET_ATTR_MTIME,
                                          77, 0, 0, 1024, false),
                     0);
    ck_assert_uint_eq(c.type, STORE_CMD_SETATTR);
    ck_assert_uint_eq(c.ino, 9);
    ck_assert_uint_eq(c.mask, STORE_SET_MODE | STORE_SET_SIZE | STORE_SET_MTIME);
    ck_assert_uint_eq(c.mode, 0600);
    ck_assert_uint_eq(c.size, 10);
    ck_assert_uint_eq(c.mtime_ns, 2000000003ull);
    ck_assert_uint_eq(c.max_size, 1024);
    /* touch: *_NOW takes the proposer's time. */
    ck_assert_int_eq(fs_model_setattr_cmd(&c, 9, &st,
                                          FUSE_SET_ATTR_MTIME |
                                              FUSE_SET_ATTR_MTIME_NOW |
                                              FUSE_SET_ATTR_ATIME |
                                              FUSE_SET_ATTR_ATIME_NOW,
                                          77, 0, 0, 1024, false),
                     0);
    ck_assert_uint_eq(c.mtime_ns, 77);
    ck_assert_uint_eq(c.atime_ns, 77);
    /* ftruncate through a handle: the size stays in the buffer. */
    ck_assert_int_eq(fs_model_setattr_cmd(&c, 9, &st, FUSE_SET_ATTR_SIZE, 77,
                                          0, 0, 1024, true),
                     1);
}
END_TEST

START_TEST(test_setattr_owner)
{
    struct store_cmd c;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_uid = 1000;
    st.st_gid = 100;
    /* chown to the shown owner: nothing to do; to another: EPERM. */
    ck_assert_int_eq(fs_model_setattr_cmd(&c, 9, &st,
                                          FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID,
                                          0, 1000, 100, 0, false),
                     1);
    ck_assert_int_eq(fs_model_setattr_cmd(&c, 9, &st, FUSE_SET_ATTR_UID, 0, 0,
                                          100, 0, false),
                     -EPERM);
    ck_assert_int_eq(fs_model_setattr_cmd(&c, 9, &st, FUSE_SET_ATTR_GID, 0,
                                          1000, 0, 0, false),
                     -EPERM);
}
END_TEST

START_TEST(test_rename_cmd)
{
    struct store_cmd c;
    ck_assert_int_eq(fs_model_rename_cmd(&c, 1, "a", 2, "b", 0), 0);
    ck_assert_uint_eq(c.type, STORE_CMD_RENAME);
    ck_assert_uint_eq(c.parent, 1);
    ck_assert_uint_eq(c.newparent, 2);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_int_eq(fs_model_rename_cmd(&c, 1, "a", 2, "b", RENAME_NOREPLACE),
                     0);
    ck_assert_uint_eq(c.flags, STORE_RENAME_NOREPLACE);
    ck_assert_int_eq(fs_model_rename_cmd(&c, 1, "a", 2, "b", RENAME_EXCHANGE),
                     0);
    ck_assert_uint_eq(c.flags, STORE_RENAME_EXCHANGE);
    ck_assert_int_eq(fs_model_rename_cmd(&c, 1, "a", 2, "b", RENAME_WHITEOUT),
                     -EINVAL);
    ck_assert_int_eq(fs_model_rename_cmd(&c, 1, "a", 2, "b",
                                         RENAME_NOREPLACE | RENAME_EXCHANGE),
                     -EINVAL);
}
END_TEST

START_TEST(test_mknod_cmd)
{
    struct store_cmd c;
    ck_assert_int_eq(fs_model_mknod_cmd(&c, 1, "f", S_IFREG | 0644), 0);
    ck_assert_uint_eq(c.type, STORE_CMD_CREATE);
    ck_assert_uint_eq(c.flags, STORE_CREATE_EXCL);
    ck_assert_int_eq(fs_model_mknod_cmd(&c, 1, "p", S_IFIFO | 0644), -EPERM);
    ck_assert_int_eq(fs_model_mknod_cmd(&c, 1, "d", S_IFCHR | 0644), -EPERM);
    ck_assert_int_eq(fs_model_mknod_cmd(&c, 1, "s", S_IFSOCK | 0644), -EPERM);
}
END_TEST

/* ---- Extended attributes ---- */

START_TEST(test_xattrs)
{
    struct store_attr a = file_attr(5, 0);
    struct fs_model_cluster cl = {.leader = 2, .term = 11};
    char buf[64];
    size_t len = fs_model_xattr_list(NULL, 0);
    char list[256];

    ck_assert_uint_eq(fs_model_xattr_list(list, sizeof list), len);
    ck_assert_str_eq(list, FS_XATTR_REVISION);
    ck_assert(fs_model_xattr_is_ours(FS_XATTR_TERM));
    ck_assert(!fs_model_xattr_is_ours("security.capability"));
    ck_assert_int_eq(fs_model_xattr_get(FS_XATTR_REVISION, &a, &cl, buf,
                                        sizeof buf),
                     1);
    ck_assert_int_eq(buf[0], '9');
    ck_assert_int_eq(fs_model_xattr_get(FS_XATTR_CREATE_REVISION, &a, &cl, buf,
                                        sizeof buf),
                     1);
    ck_assert_int_eq(buf[0], '7');
    ck_assert_int_eq(fs_model_xattr_get(FS_XATTR_TERM, &a, &cl, buf, sizeof buf),
                     2);
    ck_assert(memcmp(buf, "11", 2) == 0);
    ck_assert_int_eq(fs_model_xattr_get(FS_XATTR_LEADER, &a, &cl, NULL, 0), 1);
    ck_assert_int_eq(fs_model_xattr_get(FS_XATTR_TERM, &a, &cl, buf, 1),
                     -ERANGE);
    ck_assert_int_eq(fs_model_xattr_get("user.other", &a, &cl, buf, sizeof buf),
                     -ENODATA);
    ck_assert_int_eq(fs_model_xattr_set(FS_XATTR_REVISION), -EPERM);
    ck_assert_int_eq(fs_model_xattr_set("user.other"), -ENOTSUP);
}
END_TEST

/* ---- Open files: the buffering rules ---- */

static struct fs_model_file f;

static void file_teardown(void)
{
    fs_model_file_close(&f);
}

/* The handle's data as a string (for short test values). */
static const char *view(void)
{
    static char s[256];
    const void *p;
    size_t n = fs_model_file_read(&f, 0, sizeof s - 1, &p);
    memcpy(s, p != NULL ? p : "", n);
    s[n] = '\0';
    return s;
}

START_TEST(test_file_read_snapshot)
{
    struct store_attr a = file_attr(5, 5);
    const void *p;
    int err;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_RDONLY, true, "hello", 5,
                                        1024),
                     0);
    ck_assert_str_eq(view(), "hello");
    ck_assert_uint_eq(fs_model_file_read(&f, 3, 100, &p), 2);
    ck_assert_uint_eq(fs_model_file_read(&f, 5, 100, &p), 0);
    ck_assert_uint_eq(fs_model_file_read(&f, 99, 100, &p), 0);
    ck_assert_int_eq(fs_model_file_write(&f, 0, "x", 1), -EBADF);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
    ck_assert_int_eq(err, 0);
}
END_TEST

/* bash: open(O_TRUNC), dup2 (a flush), write, close (a flush), release. */
START_TEST(test_file_echo_redirect)
{
    struct store_attr a = file_attr(5, 3);
    const void *buf;
    size_t len;
    int err;

    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_TRUNC, true,
                                        "old", 3, 1024),
                     0);
    ck_assert_uint_eq(f.len, 0);
    ck_assert(f.trunc_pending);
    /* The flush of dup2 comes before the write: it must publish nothing,
     * or readers would see an empty file. */
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_NONE);
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(fs_model_file_write(&f, 0, "new\n", 4), 4);
    /* close: ONE whole-value put of the new content. */
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_PUT);
    fs_model_file_payload(&f, FS_PUBLISH_PUT, &buf, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert(memcmp(buf, "new\n", 4) == 0);
    ck_assert_int_eq(fs_model_file_published(&f, FS_PUBLISH_PUT, len, f.gen, 0),
                     0);
    /* release: nothing left. */
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
}
END_TEST

START_TEST(test_file_lone_trunc)
{
    struct store_attr a = file_attr(5, 3);
    const void *buf;
    size_t len;
    int err;

    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_TRUNC, true,
                                        "old", 3, 1024),
                     0);
    /* `: > k`: the flush publishes nothing, the release the truncation. */
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_NONE);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_PUT);
    fs_model_file_payload(&f, FS_PUBLISH_PUT, &buf, &len);
    ck_assert_uint_eq(len, 0);
    fs_model_file_published(&f, FS_PUBLISH_PUT, 0, f.gen, 0);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
}
END_TEST

/* A deferred create: bash's early flush publishes nothing, the close one
 * put of the content; with nothing written, release (or fsync) makes the
 * empty file; a failed publish is never retried behind the program. */
START_TEST(test_file_create_pending)
{
    struct store_attr a = file_attr(1, 0);
    const void *buf;
    size_t len;
    int err;

    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_CREAT | O_TRUNC,
                                        false, NULL, 0, 1024),
                     0);
    fs_model_file_set_create_pending(&f);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_NONE);
    ck_assert_int_eq(fs_model_file_write(&f, 0, "v\n", 2), 2);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_PUT);
    fs_model_file_payload(&f, FS_PUBLISH_PUT, &buf, &len);
    ck_assert_uint_eq(len, 2);
    ck_assert_int_eq(fs_model_file_published(&f, FS_PUBLISH_PUT, len, f.gen, 0),
                     0);
    ck_assert(!f.create_pending);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
    fs_model_file_close(&f);

    /* touch / `: > new`: the release makes it empty. */
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_CREAT, false,
                                        NULL, 0, 1024),
                     0);
    fs_model_file_set_create_pending(&f);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_NONE);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_PUT);
    fs_model_file_payload(&f, FS_PUBLISH_PUT, &buf, &len);
    ck_assert_uint_eq(len, 0);
    /* It failed (EIO): reported once, never proposed again. */
    ck_assert_int_eq(fs_model_file_published(&f, FS_PUBLISH_PUT, 0, f.gen,
                                             EIO),
                     EIO);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
    fs_model_file_close(&f);

    /* `>>` to a new name: an append of nothing makes it at release. */
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_CREAT | O_APPEND,
                                        false, NULL, 0, 1024),
                     0);
    fs_model_file_set_create_pending(&f);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err),
                     FS_PUBLISH_APPEND);
}
END_TEST

START_TEST(test_file_trunc_of_new_or_empty_file)
{
    struct store_attr a = file_attr(5, 0);
    int err;
    /* Nothing to truncate: a file this create made, or an empty one. */
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_TRUNC, false,
                                        NULL, 0, 1024),
                     0);
    ck_assert(!f.trunc_pending);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
}
END_TEST

START_TEST(test_file_partial_overwrite)
{
    struct store_attr a = file_attr(5, 6);
    int err;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_RDWR, true, "abcdef", 6,
                                        1024),
                     0);
    ck_assert_int_eq(fs_model_file_write(&f, 2, "XY", 2), 2);
    ck_assert_str_eq(view(), "abXYef");
    /* A hole is zeros. */
    ck_assert_int_eq(fs_model_file_write(&f, 8, "Z", 1), 1);
    ck_assert_uint_eq(f.len, 9);
    ck_assert_int_eq(f.data[6], 0);
    ck_assert_int_eq(f.data[7], 0);
    ck_assert_int_eq(fs_model_file_truncate(&f, 4), 0);
    ck_assert_str_eq(view(), "abXY");
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_PUT);
}
END_TEST

START_TEST(test_file_efbig_poisons)
{
    struct store_attr a = file_attr(5, 3);
    int err;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_TRUNC, true,
                                        "old", 3, 10),
                     0);
    ck_assert_int_eq(fs_model_file_write(&f, 0, "0123456789", 10), 10);
    ck_assert_int_eq(fs_model_file_write(&f, 10, "x", 1), -EFBIG);
    /* Nothing of the handle is published, not even the first 10 bytes nor
     * the O_TRUNC, and every flush says EFBIG. */
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_NONE);
    ck_assert_int_eq(err, EFBIG);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
    ck_assert_int_eq(fs_model_file_write(&f, 0, "y", 1), -EFBIG);
    ck_assert_int_eq(fs_model_file_truncate(&f, 11), -EFBIG);
}
END_TEST

START_TEST(test_file_truncate_over_limit)
{
    struct store_attr a = file_attr(5, 0);
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_RDWR, true, NULL, 0, 10), 0);
    ck_assert_int_eq(fs_model_file_truncate(&f, 11), -EFBIG);
    ck_assert_int_eq(f.poisoned, EFBIG);
}
END_TEST

START_TEST(test_file_append)
{
    struct store_attr a = file_attr(5, 100);
    const void *buf;
    size_t len;
    uint64_t gen;
    int err;

    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_APPEND, true,
                                        NULL, 0, 1024),
                     0);
    ck_assert(f.append);
    /* The kernel's offset is ignored: the bytes go at the log's end. */
    ck_assert_int_eq(fs_model_file_write(&f, 100, "line1\n", 6), 6);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err),
                     FS_PUBLISH_APPEND);
    fs_model_file_payload(&f, FS_PUBLISH_APPEND, &buf, &len);
    ck_assert_uint_eq(len, 6);
    gen = f.gen;
    /* More written while the append is in flight. */
    ck_assert_int_eq(fs_model_file_write(&f, 0, "line2\n", 6), 6);
    ck_assert_int_eq(fs_model_file_published(&f, FS_PUBLISH_APPEND, 6, gen, 0),
                     0);
    ck_assert(f.dirty);
    fs_model_file_payload(&f, FS_PUBLISH_APPEND, &buf, &len);
    ck_assert_uint_eq(len, 6);
    ck_assert(memcmp(buf, "line2\n", 6) == 0);
    ck_assert_int_eq(fs_model_file_published(&f, FS_PUBLISH_APPEND, 6, f.gen,
                                             0),
                     0);
    ck_assert(!f.dirty);
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
}
END_TEST

START_TEST(test_file_append_limit)
{
    struct store_attr a = file_attr(5, 8);
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY | O_APPEND, true,
                                        NULL, 0, 10),
                     0);
    ck_assert_int_eq(fs_model_file_write(&f, 8, "ab", 2), 2);
    ck_assert_int_eq(fs_model_file_write(&f, 10, "c", 1), -EFBIG);
}
END_TEST

START_TEST(test_file_append_readable_view)
{
    struct store_attr a = file_attr(5, 3);
    int err;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_RDWR | O_APPEND, true, "abc",
                                        3, 1024),
                     0);
    ck_assert_int_eq(fs_model_file_write(&f, 3, "de", 2), 2);
    ck_assert_str_eq(view(), "abcde");
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err),
                     FS_PUBLISH_APPEND);
    fs_model_file_published(&f, FS_PUBLISH_APPEND, 2, f.gen, 0);
    ck_assert_str_eq(view(), "abcde");
    ck_assert(!f.dirty);
}
END_TEST

START_TEST(test_file_failed_put_is_reported_once)
{
    struct store_attr a = file_attr(5, 0);
    int err;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY, true, NULL, 0, 1024),
                     0);
    fs_model_file_write(&f, 0, "x", 1);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_PUT);
    ck_assert_int_eq(fs_model_file_published(&f, FS_PUBLISH_PUT, 1, f.gen,
                                             EIO),
                     EIO);
    /* Not published later behind the program's back. */
    ck_assert_int_eq(fs_model_file_publish(&f, true, &err), FS_PUBLISH_NONE);
}
END_TEST

START_TEST(test_file_written_during_put_stays_dirty)
{
    struct store_attr a = file_attr(5, 0);
    uint64_t gen;
    int err;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY, true, NULL, 0, 1024),
                     0);
    fs_model_file_write(&f, 0, "x", 1);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_PUT);
    gen = f.gen;
    fs_model_file_write(&f, 1, "y", 1);
    fs_model_file_published(&f, FS_PUBLISH_PUT, 1, gen, 0);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_PUT);
}
END_TEST

START_TEST(test_file_put_on_deleted_file)
{
    struct store_attr a = file_attr(5, 0);
    int err;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_WRONLY, true, NULL, 0, 1024),
                     0);
    fs_model_file_write(&f, 0, "x", 1);
    ck_assert_int_eq(fs_model_file_publish(&f, false, &err), FS_PUBLISH_PUT);
    /* POSIX: writes to an unlinked file succeed and vanish. */
    ck_assert_int_eq(fs_model_file_published(&f, FS_PUBLISH_PUT, 1, f.gen,
                                             ENOENT),
                     0);
}
END_TEST

START_TEST(test_file_attr_view)
{
    struct store_attr a = file_attr(5, 6);
    struct store_attr v;
    ck_assert_int_eq(fs_model_file_init(&f, &a, O_RDWR, true, "abcdef", 6,
                                        1024),
                     0);
    fs_model_file_write(&f, 6, "gh", 2);
    fs_model_file_attr(&f, &v);
    ck_assert_uint_eq(v.size, 8);
    ck_assert_uint_eq(v.ino, 5);
    ck_assert_uint_eq(v.mod_rev, 9);
}
END_TEST

/* ---- Directories ---- */

START_TEST(test_dir_offsets)
{
    struct fs_model_dir d;
    const char *name;
    uint64_t ino;
    uint8_t type;

    fs_model_dir_init(&d, 10, 1);
    ck_assert_int_eq(fs_model_dir_add(&d, 11, STORE_TYPE_FILE, "a", 1), 0);
    ck_assert_int_eq(fs_model_dir_add(&d, 12, STORE_TYPE_DIR, "bb", 2), 0);
    ck_assert(fs_model_dir_at(&d, 0, &name, &ino, &type));
    ck_assert_str_eq(name, ".");
    ck_assert_uint_eq(ino, 10);
    ck_assert(fs_model_dir_at(&d, 1, &name, &ino, &type));
    ck_assert_str_eq(name, "..");
    ck_assert_uint_eq(ino, 1);
    ck_assert(fs_model_dir_at(&d, 2, &name, &ino, &type));
    ck_assert_str_eq(name, "a");
    ck_assert_uint_eq(ino, 11);
    ck_assert(fs_model_dir_at(&d, 3, &name, &ino, &type));
    ck_assert_str_eq(name, "bb");
    ck_assert_uint_eq(type, STORE_TYPE_DIR);
    ck_assert(!fs_model_dir_at(&d, 4, &name, &ino, &type));
    fs_model_dir_close(&d);
}
END_TEST

START_TEST(test_dir_many)
{
    struct fs_model_dir d;
    const char *name;
    uint64_t ino;
    uint8_t type;
    char buf[16];
    int i;

    fs_model_dir_init(&d, 10, 1);
    for (i = 0; i < 1000; i++) {
        int n = snprintf(buf, sizeof buf, "f%04d", i);
        ck_assert_int_eq(fs_model_dir_add(&d, 100 + (uint64_t)i,
                                          STORE_TYPE_FILE, buf, (size_t)n),
                         0);
    }
    ck_assert(fs_model_dir_at(&d, 2 + 999, &name, &ino, &type));
    ck_assert_str_eq(name, "f0999");
    ck_assert_uint_eq(ino, 1099);
    ck_assert(!fs_model_dir_at(&d, 2 + 1000, &name, &ino, &type));
    fs_model_dir_close(&d);
}
END_TEST

/* ---- Name hints ---- */

START_TEST(test_hints)
{
    static struct fs_model_hints h;
    const struct fs_model_hint *e;
    char longname[300];

    fs_model_hints_init(&h);
    ck_assert_ptr_null(fs_model_hints_get(&h, 5));
    fs_model_hints_put(&h, 5, STORE_TYPE_FILE, 1, "key", 3);
    e = fs_model_hints_get(&h, 5);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->parent, 1);
    ck_assert_str_eq(e->name, "key");
    ck_assert_uint_eq(e->len, 3);
    ck_assert_uint_eq(e->type, STORE_TYPE_FILE);
    /* A later lookup of the same inode under another name wins. */
    fs_model_hints_put(&h, 5, STORE_TYPE_FILE, 2, "other", 5);
    ck_assert_str_eq(fs_model_hints_get(&h, 5)->name, "other");
    /* Never a hint for an inode that was not recorded. */
    ck_assert_ptr_null(fs_model_hints_get(&h, 6));
    ck_assert_ptr_null(fs_model_hints_get(&h, 0));
    memset(longname, 'x', sizeof longname);
    fs_model_hints_put(&h, 7, STORE_TYPE_FILE, 1, longname, 256);
    ck_assert_ptr_null(fs_model_hints_get(&h, 7));
    fs_model_hints_put(&h, 7, STORE_TYPE_FILE, 1, longname, 255);
    ck_assert_uint_eq(fs_model_hints_get(&h, 7)->len, 255);
}
END_TEST

START_TEST(test_hints_collisions)
{
    static struct fs_model_hints h;
    uint64_t i;
    size_t found = 0;

    fs_model_hints_init(&h);
    for (i = 1; i <= 4 * FS_MODEL_HINTS; i++) {
        fs_model_hints_put(&h, i, STORE_TYPE_FILE, 1, "n", 1);
    }
    /* A collision replaces: what is returned is always for that inode. */
    for (i = 1; i <= 4 * FS_MODEL_HINTS; i++) {
        const struct fs_model_hint *e = fs_model_hints_get(&h, i);
        if (e != NULL) {
            ck_assert_uint_eq(e->ino, i);
            found++;
        }
    }
    ck_assert_uint_le(found, FS_MODEL_HINTS);
    ck_assert_uint_gt(found, FS_MODEL_HINTS / 2);
}
END_TEST

static Suite *fs_model_suite(void)
{
    Suite *s = suite_create("fs_model");
    TCase *tc;

    tc = tcase_create("options");
    tcase_add_test(tc, test_opts_all);
    tcase_add_test(tc, test_opts_empty_and_noops);
    tcase_add_test(tc, test_opts_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("node_ids");
    tcase_add_test(tc, test_ino_identity_without_subtree);
    tcase_add_test(tc, test_ino_subtree_swap);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_errno_reads);
    tcase_add_test(tc, test_errno_writes);
    tcase_add_test(tc, test_name_check);
    suite_add_tcase(s, tc);

    tc = tcase_create("attributes");
    tcase_add_test(tc, test_stat_file);
    tcase_add_test(tc, test_stat_subtree_root);
    suite_add_tcase(s, tc);

    tc = tcase_create("commands");
    tcase_add_test(tc, test_create_cmd);
    tcase_add_test(tc, test_setattr_cmd);
    tcase_add_test(tc, test_setattr_owner);
    tcase_add_test(tc, test_rename_cmd);
    tcase_add_test(tc, test_mknod_cmd);
    suite_add_tcase(s, tc);

    tc = tcase_create("xattrs");
    tcase_add_test(tc, test_xattrs);
    suite_add_tcase(s, tc);

    tc = tcase_create("file_handles");
    tcase_add_checked_fixture(tc, NULL, file_teardown);
    tcase_add_test(tc, test_file_read_snapshot);
    tcase_add_test(tc, test_file_echo_redirect);
    tcase_add_test(tc, test_file_lone_trunc);
    tcase_add_test(tc, test_file_create_pending);
    tcase_add_test(tc, test_file_trunc_of_new_or_empty_file);
    tcase_add_test(tc, test_file_partial_overwrite);
    tcase_add_test(tc, test_file_efbig_poisons);
    tcase_add_test(tc, test_file_truncate_over_limit);
    tcase_add_test(tc, test_file_append);
    tcase_add_test(tc, test_file_append_limit);
    tcase_add_test(tc, test_file_append_readable_view);
    tcase_add_test(tc, test_file_failed_put_is_reported_once);
    tcase_add_test(tc, test_file_written_during_put_stays_dirty);
    tcase_add_test(tc, test_file_put_on_deleted_file);
    tcase_add_test(tc, test_file_attr_view);
    suite_add_tcase(s, tc);

    tc = tcase_create("dir_handles");
    tcase_add_test(tc, test_dir_offsets);
    tcase_add_test(tc, test_dir_many);
    suite_add_tcase(s, tc);

    tc = tcase_create("name_hints");
    tcase_add_test(tc, test_hints);
    tcase_add_test(tc, test_hints_collisions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fs_model_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
