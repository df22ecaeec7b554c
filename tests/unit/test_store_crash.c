/* Crash test of store/: a child appends and applies in a loop and is killed
 * with SIGKILL at random points; every acknowledged write must survive. */

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "test_store_util.h"
#include "cmd.h"

#define KILLS 50
#define MAX_BATCH 16

static char dir[PATH_MAX];
/* WAL segment size for the run (0: the default). Small segments make the
 * child roll over and delete segments while it is being killed. */
static size_t seg_size;
/* Whether the child also rewrites unapplied suffixes (a new leader). */
static bool rewrites;

static void setup(void)
{
    tmpdir_make(dir, sizeof dir, "store_crash");
}

static void teardown(void)
{
    tmpdir_remove(dir);
}

static int open_store(struct store *s)
{
    struct store_options o;
    store_options_default(&o);
    o.dir = dir;
    o.create = true;
    o.cluster_id = "crash";
    o.node_id = 1;
    o.map_size = 256u << 20;
    o.wal_segment_size = seg_size;
    return store_open(s, &o);
}

/* The data of the entry at `index`: a deterministic function of the index,
 * so the parent can check every byte. With the state machine: a create of
 * file "f<index>" in the root directory behind the driver's envelope. */
static void entry_data(raft_index index, struct raft_buf *out)
{
    char name[32];
    int len = snprintf(name, sizeof name, "f%llu", (unsigned long long)index);
    struct store_cmd c;
    struct raft_buf enc;
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.node = 1;
    c.seq = index;
    c.time_ns = index * 1000;
    c.parent = STORE_ROOT_INO;
    c.name.base = name;
    c.name.len = (size_t)len;
    c.mode = 0644;
    c.flags = STORE_CREATE_EXCL;
    ck_assert_int_eq(store_cmd_encode(&c, &enc), 0);
    out->len = STORE_FSM_ENVELOPE + enc.len;
    out->base = calloc(1, out->len);
    ck_assert_ptr_nonnull(out->base);
    memcpy((char *)out->base + 8, &index, sizeof index);
    memcpy((char *)out->base + STORE_FSM_ENVELOPE, enc.base, enc.len);
    free(enc.base);
}

/* The child: appends batches of 1..MAX_BATCH entries, applies the entries
 * of the previous batches in the same transaction, sometimes snapshots and
 * compacts, and reports (last index, applied) after each store_write. */
static void child(int fd, raft_term term, unsigned seed)
{
    struct store s;
    struct raft_load l;
    struct raft_entry e[MAX_BATCH];
    struct store_batch b;
    struct store_write_result r;
    srand(seed);
    if (open_store(&s) != 0 || store_load(&s, &l) != 0) {
        _exit(2);
    }
    raft_index next = l.snap_index + l.n_entries + 1;
    raft_index applied = l.applied;
    store_load_close(&l);
    store_batch_init(&b);
    for (unsigned round = 0;; round++) {
        size_t n = 1 + (size_t)rand() % MAX_BATCH;
        /* Sometimes rewrite the last unapplied entries (Paper §5.3: a
         * conflicting suffix), with the same data and this run's term.
         * They are not applied in this round. */
        raft_index back = 0;
        if (rewrites && round % 4 == 3 && next - 1 > applied) {
            back = 1 + (raft_index)rand() % 3;
            if (back > next - 1 - applied) {
                back = next - 1 - applied;
            }
            if (n < back + 1) {
                n = (size_t)back + 1;
            }
        }
        next -= back;
        for (size_t i = 0; i < n; i++) {
            e[i].index = next + i;
            e[i].term = term;
            e[i].type = RAFT_ENTRY_COMMAND;
            entry_data(e[i].index, &e[i].data);
        }
        /* Entries up to next - 1 are durable: "commit" and apply them. */
        struct raft_entry *committed = NULL;
        size_t nc = 0;
        if (next - 1 > applied) {
            if (store_log_get(&s, applied + 1, next - 1, &committed, &nc) !=
                0) {
                _exit(3);
            }
        }
        store_batch_reset(&b);
        store_batch_hard_state(&b, term, 1);
        store_batch_append(&b, e, n);
        store_batch_apply(&b, committed, nc);
        int rv = store_write(&s, &b, &r);
        if (rv != 0) {
            _exit(4);
        }
        raft_index report[2] = {r.last_index, r.applied};
        applied = r.applied;
        next += n;
        store_write_result_close(&r);
        free(committed);
        for (size_t i = 0; i < n; i++) {
            free(e[i].data.base);
        }
        if (write(fd, report, sizeof report) != sizeof report) {
            _exit(5);
        }
        if (round % 64 == 63) {
            struct raft_snapshot_meta m;
            if (store_snapshot_take(&s, &m) != 0) {
                _exit(6);
            }
            store_batch_reset(&b);
            store_batch_compact(&b, m.index > 20 ? m.index - 20 : 0);
            if (store_write(&s, &b, &r) != 0) {
                _exit(7);
            }
            store_write_result_close(&r);
        }
    }
}

/* Reopens the store and checks it against what the child acknowledged. */
static void verify(raft_index acked_last, raft_index acked_applied,
                   raft_term max_term, raft_index *last_out)
{
    struct store s;
    struct raft_load l;
    int rv = open_store(&s);
    ck_assert_msg(rv == 0, "reopen: %s", store_errmsg(&s));
    ck_assert_int_eq(store_load(&s, &l), 0);
    raft_index last = l.snap_index + l.n_entries;
    ck_assert_msg(last >= acked_last, "lost entries: last %llu < acked %llu",
                  (unsigned long long)last, (unsigned long long)acked_last);
    ck_assert_uint_ge(l.applied, acked_applied);
    ck_assert_uint_le(l.applied, last);
    ck_assert_uint_ge(l.applied, l.snap_index);
    /* Hard state and entries of one batch are atomic: no entry is newer
     * than the stored term. */
    ck_assert_uint_le(l.term, max_term);
    if (l.n_entries > 0) {
        ck_assert_uint_le(l.entries[l.n_entries - 1].term, l.term);
    }
    raft_term prev = l.snap_term;
    for (size_t i = 0; i < l.n_entries; i++) {
        const struct raft_entry *e = &l.entries[i];
        struct raft_buf want;
        ck_assert_uint_eq(e->index, l.snap_index + 1 + i);
        ck_assert_uint_ge(e->term, prev);
        ck_assert_uint_le(e->term, max_term);
        prev = e->term;
        entry_data(e->index, &want);
        ck_assert_uint_eq(e->data.len, want.len);
        ck_assert(memcmp(e->data.base, want.base, want.len) == 0);
        free(want.base);
    }
    /* The state machine holds exactly the applied creates. */
    for (raft_index i = 1; i <= last; i++) {
        char name[32];
        struct store_attr a;
        int len = snprintf(name, sizeof name, "f%llu", (unsigned long long)i);
        rv = store_fsm_lookup(&s.fsm, STORE_ROOT_INO, name, (size_t)len, &a);
        ck_assert_msg((i <= l.applied) == (rv == 0),
                      "f%llu: lookup %d with applied %llu",
                      (unsigned long long)i, rv, (unsigned long long)l.applied);
        if (rv == 0) {
            ck_assert_uint_eq(a.create_rev, i);
        }
    }
    ck_assert_uint_eq(store_fsm_applied(&s.fsm), l.applied);
    store_load_close(&l);
    store_close(&s);
    *last_out = last;
}

static void kill_loop(void)
{
    raft_index acked_last = 0, acked_applied = 0, last = 0;
    unsigned seed = (unsigned)time(NULL);
    fprintf(stderr, "store_crash: seed %u\n", seed);
    srand(seed);
    if (seg_size == 0) {
        /* Creating the first 8 MiB segment (zeros + fsync) can take longer
         * than a whole kill window on a busy disk; crashes during segment
         * creation are the small-segment run's job. */
        struct store s;
        ck_assert_int_eq(open_store(&s), 0);
        store_close(&s);
    }
    for (raft_term gen = 1; gen <= KILLS; gen++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            child(fds[1], gen, seed + (unsigned)gen);
        }
        close(fds[1]);
        /* Let it run 1..80 ms (first open included), then kill it. */
        struct timespec ts = {0, (long)(1 + rand() % 80) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status), "child exited by itself (status %d)",
                      status);
        raft_index rep[2];
        ssize_t n;
        while ((n = read(fds[0], rep, sizeof rep)) == sizeof rep) {
            ck_assert_uint_ge(rep[0], acked_last);
            acked_last = rep[0];
            acked_applied = rep[1];
        }
        close(fds[0]);
        verify(acked_last, acked_applied, gen, &last);
    }
    fprintf(stderr,
            "store_crash: %d kills, %llu entries, last acked %llu, segment "
            "size %zu\n",
            KILLS, (unsigned long long)last, (unsigned long long)acked_last,
            seg_size);
    ck_assert_uint_gt(acked_last, 0);
}

START_TEST(test_kill_loop)
{
    seg_size = 0;
    rewrites = false;
    kill_loop();
}
END_TEST

/* The same with 8 KiB WAL segments (rollover, segment deletion after the
 * snapshots) and suffix rewrites, killed at random points. */
START_TEST(test_kill_loop_segments)
{
    seg_size = 8192;
    rewrites = true;
    kill_loop();
}
END_TEST

static Suite *store_crash_suite(void)
{
    Suite *s = suite_create("store_crash");
    TCase *tc = tcase_create("kill_loop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_kill_loop);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("kill_loop_segments");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_kill_loop_segments);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_crash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
