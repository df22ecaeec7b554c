/* Unit tests of store/durable.c: applies commit unsynced, a process crash
 * loses nothing, a power loss (played by changing the boot id) rebuilds
 * data.mdb from raft.state, the snapshot file and the WAL. */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "test_store_util.h"

static char dir[256], boot[300];
static struct raft_config conf = {.n = 1};

static void set_boot(const char *id)
{
    FILE *f = fopen(boot, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", id);
    fclose(f);
}

static void setup(void)
{
    tmpdir_make(dir, sizeof dir, "store_durable");
    snprintf(boot, sizeof boot, "%s.boot", dir);
    set_boot("boot-a");
    conf.servers[0] = (struct raft_server){.id = 1, .role = RAFT_VOTER};
    strcpy(conf.servers[0].addr, "127.0.0.1:7001");
}

static void teardown(void)
{
    tmpdir_remove(dir);
    ck_assert_int_eq(unlink(boot), 0);
}

static int try_open(struct store *s, raft_id node, const char *boot_file)
{
    struct store_options o;
    store_options_default(&o);
    o.dir = dir;
    o.create = true;
    o.cluster_id = "durable";
    o.node_id = node;
    o.boot_id_file = boot_file;
    return store_open(s, &o);
}

static void open_store(struct store *s)
{
    int rv = try_open(s, 1, boot);
    ck_assert_msg(rv == 0, "%s", store_errmsg(s));
}

static bool exists(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void hard_state(struct store *s, raft_term term, raft_id vote)
{
    struct store_batch b;
    store_batch_init(&b);
    store_batch_hard_state(&b, term, vote);
    write_batch(s, &b);
    store_batch_close(&b);
}

static bool has_name(struct store *s, raft_index i)
{
    char name[32];
    struct store_attr a;
    int n = snprintf(name, sizeof name, "n%llu", (unsigned long long)i);
    return store_fsm_lookup(&s->fsm, STORE_ROOT_INO, name, (size_t)n, &a) ==
           0;
}

/* Overwrites data.mdb's first pages (both LMDB meta pages) with junk, as a
 * power loss may leave it: opened as is, it would be refused. */
static void tear_data_mdb(void)
{
    char path[PATH_MAX], junk[16384];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    memset(junk, 0xab, sizeof junk);
    ck_assert_int_eq(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    close(fd);
}

/* In a child process: open, hard state (3, 1), entries 1..`upto` applied,
 * a snapshot at `snap` (0: none), then exit without store_close. */
static void crash_after(raft_index snap, raft_index upto)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct store s;
        struct raft_snapshot_meta m;
        if (try_open(&s, 1, boot) != 0) {
            _exit(2);
        }
        hard_state(&s, 3, 1);
        fill(&s, 1, snap > 0 ? snap : upto, &conf);
        if (snap > 0) {
            if (store_snapshot_take(&s, &m) != 0 || m.index != snap) {
                _exit(3);
            }
            fill(&s, snap + 1, upto - snap, &conf);
        }
        _exit(0); /* no store_close: the mark stays, nothing is synced */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

START_TEST(test_state_codec)
{
    struct store_state a, b;
    uint8_t buf[4096];
    memset(&a, 0, sizeof a);
    strcpy(a.cluster, "prod-east");
    a.node = 7;
    a.term = 42;
    a.vote = 3;
    a.dead = 99;
    a.snap.index = 1000;
    a.snap.term = 41;
    a.snap.size = 12345;
    a.snap.config = conf;
    size_t n = store__state_encode(&a, buf);
    ck_assert_int_eq(store__state_decode(buf, n, &b), 0);
    ck_assert_str_eq(b.cluster, "prod-east");
    ck_assert_uint_eq(b.node, 7);
    ck_assert_uint_eq(b.term, 42);
    ck_assert_uint_eq(b.vote, 3);
    ck_assert_uint_eq(b.dead, 99);
    ck_assert_uint_eq(b.snap.index, 1000);
    ck_assert_uint_eq(b.snap.term, 41);
    ck_assert_uint_eq(b.snap.size, 12345);
    ck_assert_uint_eq(b.snap.config.n, 1);
    ck_assert_str_eq(b.snap.config.servers[0].addr, "127.0.0.1:7001");
    /* Every flipped byte, and every truncation, is refused. */
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x20;
        ck_assert_int_eq(store__state_decode(buf, n, &b), STORE_ERR_CORRUPT);
        buf[i] ^= 0x20;
    }
    for (size_t k = 0; k < n; k++) {
        ck_assert_int_ne(store__state_decode(buf, k, &b), 0);
    }
}
END_TEST

START_TEST(test_open_marks_and_close_clears)
{
    struct store s;
    struct store_state st;
    char mark[64] = {0};
    char path[PATH_MAX];
    open_store(&s);
    ck_assert(s.nosync);
    ck_assert(!s.rebuilt);
    ck_assert(exists("raft.state"));
    ck_assert(exists("unsynced"));
    snprintf(path, sizeof path, "%s/unsynced", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(mark, sizeof mark, f));
    fclose(f);
    ck_assert_str_eq(mark, "boot-a\n");
    /* A hard state change reaches raft.state before store_write returns. */
    hard_state(&s, 5, 1);
    ck_assert_int_eq(store__state_read(&s, &st), 0);
    ck_assert_uint_eq(st.term, 5);
    ck_assert_uint_eq(st.vote, 1);
    ck_assert_str_eq(st.cluster, "durable");
    ck_assert_uint_eq(st.node, 1);
    /* So does a snapshot. */
    struct raft_snapshot_meta m;
    fill(&s, 1, 10, &conf);
    ck_assert_int_eq(store_snapshot_take(&s, &m), 0);
    ck_assert_int_eq(store__state_read(&s, &st), 0);
    ck_assert_uint_eq(st.snap.index, 10);
    ck_assert_uint_eq(st.snap.config.n, 1);
    store_close(&s);
    ck_assert(!exists("unsynced"));
    /* After a clean close, a reboot rebuilds nothing. */
    set_boot("boot-b");
    open_store(&s);
    ck_assert(!s.rebuilt);
    raft_index applied;
    ck_assert_int_eq(store_applied(&s, &applied), 0);
    ck_assert_uint_eq(applied, 10);
    store_close(&s);
}
END_TEST

START_TEST(test_no_boot_id_stays_synced)
{
    struct store s;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no-such-file", dir);
    ck_assert_int_eq(try_open(&s, 1, missing), 0);
    ck_assert(!s.nosync);
    ck_assert(!exists("unsynced"));
    ck_assert(exists("raft.state"));
    fill(&s, 1, 5, &conf);
    store_close(&s);
}
END_TEST

/* A mark from a start that had a boot id: the first start without one
 * rebuilds (it cannot tell), and removes the mark, so the next start does
 * not rebuild again. */
START_TEST(test_no_boot_id_after_a_mark)
{
    struct store s;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no-such-file", dir);
    crash_after(0, 8);
    ck_assert(exists("unsynced"));
    ck_assert_int_eq(try_open(&s, 1, missing), 0);
    ck_assert(s.rebuilt);
    ck_assert(!exists("unsynced"));
    store_close(&s);
    ck_assert_int_eq(try_open(&s, 1, missing), 0);
    ck_assert(!s.rebuilt);
    store_close(&s);
}
END_TEST

START_TEST(test_process_crash_keeps_unsynced_applies)
{
    struct store s;
    raft_index applied;
    raft_term term;
    raft_id vote;
    crash_after(0, 30);
    ck_assert(exists("unsynced"));
    open_store(&s); /* same boot: the page cache had every commit */
    ck_assert(!s.rebuilt);
    ck_assert_int_eq(store_applied(&s, &applied), 0);
    ck_assert_uint_eq(applied, 30);
    ck_assert_int_eq(store_hard_state(&s, &term, &vote), 0);
    ck_assert_uint_eq(term, 3);
    ck_assert_uint_eq(vote, 1);
    ck_assert(has_name(&s, 29));
    store_close(&s);
}
END_TEST

/* After crash_after(snap, upto): the machine restarts (another boot id)
 * with data.mdb torn; the store opens rebuilt, at the snapshot, with the
 * hard state (3, 1) and the log snap+1..upto. */
static void power_loss_reopen(struct store *s, raft_index snap,
                              raft_index upto)
{
    raft_index applied, first, last;
    raft_term term;
    raft_id vote;
    set_boot("boot-b");
    tear_data_mdb();
    open_store(s);
    ck_assert(s->rebuilt);
    ck_assert_int_eq(store_applied(s, &applied), 0);
    ck_assert_uint_eq(applied, snap);
    ck_assert_int_eq(store_hard_state(s, &term, &vote), 0);
    ck_assert_uint_eq(term, 3);
    ck_assert_uint_eq(vote, 1);
    ck_assert_int_eq(store_log_bounds(s, &first, &last), 0);
    ck_assert_uint_eq(first, snap + 1);
    ck_assert_uint_eq(last, upto);
}

START_TEST(test_power_loss_rebuilds_from_snapshot)
{
    struct store s;
    struct raft_load l;
    raft_index applied;

    crash_after(50, 80);
    /* Back to the snapshot; the hard state and the log are all there. */
    power_loss_reopen(&s, 50, 80);
    ck_assert(has_name(&s, 40));
    ck_assert(!has_name(&s, 70));
    /* The entries after the snapshot apply again, with the same effect. */
    ck_assert_int_eq(store_load(&s, &l), 0);
    ck_assert_uint_eq(l.snap_index, 50);
    ck_assert_uint_eq(l.snap_config.n, 1);
    ck_assert_uint_eq(l.n_entries, 30);
    struct store_batch b;
    store_batch_init(&b);
    store_batch_apply(&b, l.entries, l.n_entries);
    write_batch(&s, &b);
    store_batch_close(&b);
    store_load_close(&l);
    ck_assert(has_name(&s, 70));
    ck_assert(has_name(&s, 80));
    ck_assert_int_eq(store_applied(&s, &applied), 0);
    ck_assert_uint_eq(applied, 80);
    store_close(&s);
    /* Trusted again after a clean close: no second rebuild. */
    open_store(&s);
    ck_assert(!s.rebuilt);
    ck_assert_int_eq(store_applied(&s, &applied), 0);
    ck_assert_uint_eq(applied, 80);
    store_close(&s);
}
END_TEST

START_TEST(test_power_loss_before_any_snapshot)
{
    struct store s;
    crash_after(0, 20);
    power_loss_reopen(&s, 0, 20);
    ck_assert(!has_name(&s, 2));
    store_close(&s);
}
END_TEST

/* A power loss between an install's raft.state and the rename of its
 * received file: the rebuild finishes the rename and restores from it. */
START_TEST(test_power_loss_mid_install_rename)
{
    struct store s;
    char from[PATH_MAX], to[PATH_MAX];
    crash_after(30, 40);
    snprintf(from, sizeof from, "%s/snapshot-%016llx", dir, 30ULL);
    snprintf(to, sizeof to, "%s/snapshot.recv-%016llx", dir, 30ULL);
    ck_assert_int_eq(rename(from, to), 0);
    power_loss_reopen(&s, 30, 40);
    ck_assert(has_name(&s, 29));
    ck_assert(exists("snapshot-000000000000001e"));
    ck_assert(!exists("snapshot.recv-000000000000001e"));
    store_close(&s);
}
END_TEST

START_TEST(test_power_loss_without_state_file_is_refused)
{
    struct store s;
    char path[300];
    crash_after(0, 10);
    set_boot("boot-b");
    snprintf(path, sizeof path, "%s/raft.state", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(try_open(&s, 1, boot), STORE_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "raft.state"));
    /* Refused before touching anything: data.mdb is still there. */
    ck_assert(exists("data.mdb"));
    ck_assert(exists("unsynced"));
}
END_TEST

START_TEST(test_power_loss_other_node_is_refused)
{
    struct store s;
    crash_after(0, 10);
    set_boot("boot-b");
    ck_assert_int_eq(try_open(&s, 2, boot), STORE_ERR_FOREIGN_NODE);
    ck_assert(exists("data.mdb"));
}
END_TEST

static Suite *store_durable_suite(void)
{
    Suite *s = suite_create("store_durable");
    TCase *tc = tcase_create("durable");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_state_codec);
    tcase_add_test(tc, test_open_marks_and_close_clears);
    tcase_add_test(tc, test_no_boot_id_stays_synced);
    tcase_add_test(tc, test_no_boot_id_after_a_mark);
    tcase_add_test(tc, test_process_crash_keeps_unsynced_applies);
    tcase_add_test(tc, test_power_loss_rebuilds_from_snapshot);
    tcase_add_test(tc, test_power_loss_before_any_snapshot);
    tcase_add_test(tc, test_power_loss_mid_install_rename);
    tcase_add_test(tc, test_power_loss_without_state_file_is_refused);
    tcase_add_test(tc, test_power_loss_other_node_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_durable_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
