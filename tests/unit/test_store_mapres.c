/* Unit tests of store/mapres.c: data.mdb's blocks reserved ahead of LMDB's
 * writable map, so that a full disk fails a write with -ENOSPC instead of a
 * SIGBUS. They need a small tmpfs: root and a private mount namespace
 * (each check test runs in its own process). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_store_util.h"

#define VALUE (128u << 10)

static char top[PATH_MAX];

/* A 16 MiB tmpfs at `top`, private to this test's process. */
static void small_disk(void)
{
    tmpdir_make(top, sizeof top, "mapres");
    ck_assert_msg(geteuid() == 0, "needs root (a tmpfs mount)");
    ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
    ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    ck_assert_int_eq(mount("tmpfs", top, "tmpfs", 0, "size=16m"), 0);
}

static void big_disk(void)
{
    umount2(top, MNT_DETACH);
    rmdir(top);
}

static int open_in(struct store *s, const char *name)
{
    char dir[PATH_MAX + 16];
    struct store_options o;
    snprintf(dir, sizeof dir, "%s/%s", top, name);
    store_options_default(&o);
    o.dir = dir;
    o.create = true;
    o.cluster_id = "mapres";
    o.node_id = 1;
    o.map_size = 64u << 20;
    o.wal_segment_size = 64u << 10;
    return store_open(s, &o);
}

/* Takes all the tmpfs's free space but `leave` bytes. */
static void fill_disk(size_t leave)
{
    char path[PATH_MAX + 16];
    struct statvfs v;
    ck_assert_int_eq(statvfs(top, &v), 0);
    uint64_t free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
    ck_assert_uint_gt(free_bytes, leave);
    snprintf(path, sizeof path, "%s/filler", top);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fallocate(fd, 0, 0, (off_t)(free_bytes - leave)), 0);
    close(fd);
}

static void free_disk(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/filler", top);
    ck_assert_int_eq(unlink(path), 0);
}

/* Applies entry idx: file "f<idx>" in the root with VALUE bytes. */
static int write_file(struct store *s, raft_index idx)
{
    static char value[VALUE];
    char name[32];
    struct store_cmd c;
    struct raft_entry e;
    struct store_batch b;
    struct store_write_result r;
    int rv;

    memset(value, 'v', sizeof value);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = STORE_ROOT_INO;
    c.name.base = name;
    c.name.len = (size_t)snprintf(name, sizeof name, "f%llu",
                                  (unsigned long long)idx);
    c.mode = 0644;
    c.flags = STORE_CREATE_VALUE;
    c.data.base = value;
    c.data.len = sizeof value;
    c.time_ns = idx;
    cmd_entry(&e, idx, 1, &c);
    store_batch_init(&b);
    ck_assert_int_eq(store_batch_apply(&b, &e, 1), 0);
    rv = store_write(s, &b, &r);
    if (rv == 0) {
        ck_assert_uint_eq(r.n_results, 1);
        ck_assert_int_eq(r.results[0].status, 0);
        store_write_result_close(&r);
    }
    store_batch_close(&b);
    free(e.data.base);
    return rv;
}

static bool has_file(struct store *s, raft_index idx)
{
    char name[32];
    struct store_attr a;
    int n = snprintf(name, sizeof name, "f%llu", (unsigned long long)idx);
    int rv = store_fsm_lookup(&s->fsm, STORE_ROOT_INO, name, (size_t)n, &a);
    ck_assert(rv == 0 || rv == -ENOENT);
    return rv == 0 && a.size == VALUE;
}

/* A full disk: the write fails with -ENOSPC and changes nothing, reads go
 * on, and the same write succeeds once there is room again. */
START_TEST(test_full_disk_enospc)
{
    struct store s;
    raft_index idx;
    int rv = 0;

    small_disk();
    ck_assert_int_eq(open_in(&s, "guarded"), 0);
    ck_assert_ptr_nonnull(s.mapres.env); /* tmpfs can fallocate */
    fill_disk(1u << 20);
    for (idx = 1; idx <= 64; idx++) {
        rv = write_file(&s, idx);
        if (rv != 0) {
            break;
        }
    }
    ck_assert_int_eq(rv, -ENOSPC);
    ck_assert_uint_gt(idx, 1); /* the reserve made room for some first */
    ck_assert_uint_gt(s.mapres.fallocs, 0);
    ck_assert(has_file(&s, idx - 1));
    ck_assert(!has_file(&s, idx));
    raft_index applied;
    ck_assert_int_eq(store_applied(&s, &applied), 0);
    ck_assert_uint_eq(applied, idx - 1);
    /* Still failing while full, and still nothing done. */
    ck_assert_int_eq(write_file(&s, idx), -ENOSPC);
    ck_assert(!has_file(&s, idx));
    free_disk();
    ck_assert_int_eq(write_file(&s, idx), 0);
    ck_assert(has_file(&s, idx));
    store_close(&s);
    ck_assert_int_eq(open_in(&s, "guarded"), 0);
    for (raft_index i = 1; i <= idx; i++) {
        ck_assert(has_file(&s, i));
    }
    store_close(&s);
    big_disk();
}
END_TEST

/* What the reserve prevents: the same writes without it, in a child, die of
 * SIGBUS when the map's first write to a page finds no room. */
START_TEST(test_unguarded_dies_of_sigbus)
{
    int st;
    pid_t pid;

    small_disk();
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct store s;
        if (open_in(&s, "unguarded") != 0 || s.mapres.env == NULL) {
            _exit(2);
        }
        s.mapres.env = NULL; /* no reserving from here on */
        signal(SIGBUS, SIG_DFL); /* a sanitizer's handler would exit */
        fill_disk(1u << 20);
        for (raft_index idx = 1; idx <= 64; idx++) {
            if (write_file(&s, idx) != 0) {
                _exit(3); /* an error instead of a fault */
            }
        }
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
                  "child status 0x%x, expected death by SIGBUS", st);
    big_disk();
}
END_TEST

static Suite *mapres_suite(void)
{
    Suite *s = suite_create("store_mapres");
    TCase *tc = tcase_create("mapres");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_full_disk_enospc);
    tcase_add_test(tc, test_unguarded_dies_of_sigbus);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mapres_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
