/* Unit tests of store/'s snapshot path: take, serve by offset, receive in
 * chunks, install (log reset + state machine restore in one txn). */

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_store_util.h"

static char dir_a[PATH_MAX], dir_b[PATH_MAX];

static void setup(void)
{
    tmpdir_make(dir_a, sizeof dir_a, "store_snap_a");
    tmpdir_make(dir_b, sizeof dir_b, "store_snap_b");
}

static void teardown(void)
{
    tmpdir_remove(dir_a);
    tmpdir_remove(dir_b);
}

static void open_at(struct store *s, const char *dir, raft_id node)
{
    struct store_options o;
    store_options_default(&o);
    o.dir = dir;
    o.create = true;
    o.cluster_id = "snap";
    o.node_id = node;
    int rv = store_open(s, &o);
    ck_assert_msg(rv == 0, "%s", store_errmsg(s));
}

START_TEST(test_take_transfer_install)
{
    struct store a, b;
    struct raft_snapshot_meta m, m2;
    struct raft_config conf = {.n = 2};
    struct store_batch bt;
    conf.servers[0] = (struct raft_server){.id = 1, .role = RAFT_VOTER};
    strcpy(conf.servers[0].addr, "10.0.0.1:7000");
    conf.servers[1] = (struct raft_server){.id = 2, .role = RAFT_VOTER};
    strcpy(conf.servers[1].addr, "10.0.0.2:7000");

    open_at(&a, dir_a, 1);
    ck_assert_int_eq(store_snapshot_take(&a, &m), STORE_ERR_NO_SNAPSHOT);
    fill(&a, 1, 200, &conf);
    ck_assert_int_eq(store_snapshot_take(&a, &m), 0);
    ck_assert_uint_eq(m.index, 200);
    ck_assert_uint_eq(m.term, 2);
    ck_assert_uint_gt(m.size, 0);
    ck_assert_uint_eq(m.config.n, 2);
    ck_assert_str_eq(m.config.servers[1].addr, "10.0.0.2:7000");
    /* Nothing applied since: the same snapshot. */
    ck_assert_int_eq(store_snapshot_take(&a, &m2), 0);
    ck_assert_uint_eq(m2.index, 200);
    ck_assert_uint_eq(m2.size, m.size);
    ck_assert_int_eq(store_snapshot_meta(&a, &m2), 0);
    ck_assert_uint_eq(m2.index, 200);

    /* B has a conflicting log of its own, then receives A's snapshot in
     * 1000-byte chunks (the last one in the install's batch). */
    open_at(&b, dir_b, 2);
    fill(&b, 1, 3, &conf);
    store_batch_init(&bt);
    char *buf = malloc(1000 * (m.size / 1000 + 1));
    uint64_t off = 0;
    struct raft_buf *chunks = calloc(m.size / 1000 + 1, sizeof *chunks);
    size_t nc = 0;
    while (off < m.size) {
        int n = store_snapshot_read(&a, m.index, off, buf + off, 1000);
        ck_assert_int_gt(n, 0);
        chunks[nc++] = (struct raft_buf){buf + off, (size_t)n};
        off += (uint64_t)n;
    }
    ck_assert_int_eq(store_snapshot_read(&a, m.index, off, buf, 10), 0);
    ck_assert_int_eq(store_snapshot_read(&a, 199, 0, buf, 10),
                     STORE_ERR_NO_SNAPSHOT);
    off = 0;
    for (size_t i = 0; i + 1 < nc; i++) {
        store_batch_chunk(&bt, &m, off, &chunks[i]);
        write_batch(&b, &bt);
        off += chunks[i].len;
    }
    store_batch_install(&bt, &m);
    store_batch_chunk(&bt, &m, off, &chunks[nc - 1]);
    write_batch(&b, &bt);

    /* Same state machine, log reset, snapshot recorded and servable. */
    void *da, *db;
    size_t la, lb;
    ck_assert_int_eq(store_fsm_dump(&a.fsm, &da, &la), 0);
    ck_assert_int_eq(store_fsm_dump(&b.fsm, &db, &lb), 0);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(da, db, la) == 0);
    free(da);
    free(db);
    raft_index first, last;
    ck_assert_int_eq(store_log_bounds(&b, &first, &last), 0);
    ck_assert_uint_eq(last, 200);
    ck_assert_uint_eq(first, 201);
    raft_term term;
    ck_assert_int_eq(store_log_term(&b, 200, &term), 0);
    ck_assert_uint_eq(term, 2); /* the snapshot's */
    ck_assert_int_eq(store_log_term(&b, 3, &term), -ENOENT);
    char c0[16], c1[16];
    ck_assert_int_eq(store_snapshot_read(&b, 200, 0, c1, 16), 16);
    ck_assert_int_eq(store_snapshot_read(&a, 200, 0, c0, 16), 16);
    ck_assert(memcmp(c0, c1, 16) == 0);
    store_close(&b);

    /* After a restart B loads the snapshot and continues the log. */
    struct raft_load l;
    open_at(&b, dir_b, 2);
    ck_assert_int_eq(store_load(&b, &l), 0);
    ck_assert_uint_eq(l.snap_index, 200);
    ck_assert_uint_eq(l.snap_term, 2);
    ck_assert_uint_eq(l.applied, 200);
    ck_assert_uint_eq(l.snap_config.n, 2);
    ck_assert_uint_eq(l.n_entries, 0);
    store_load_close(&l);
    fill(&b, 201, 5, &conf);
    ck_assert_int_eq(store_load(&b, &l), 0);
    ck_assert_uint_eq(l.n_entries, 5);
    ck_assert_uint_eq(l.applied, 205);
    store_load_close(&l);

    /* A corrupt snapshot is refused and changes nothing. */
    struct raft_snapshot_meta bad = m;
    bad.index = 400;
    struct raft_buf junk = {"not a snapshot at all", 21};
    store_batch_chunk(&bt, &bad, 0, &junk);
    store_batch_install(&bt, &bad);
    struct store_write_result r;
    ck_assert_int_eq(store_write(&b, &bt, &r), STORE_ERR_CORRUPT);
    store_batch_close(&bt);
    ck_assert_int_eq(store_log_bounds(&b, &first, &last), 0);
    ck_assert_uint_eq(last, 205);
    store_close(&b);

    /* A: compact behind the snapshot, reopen, load from the snapshot. */
    store_batch_init(&bt);
    store_batch_compact(&bt, 150);
    write_batch(&a, &bt);
    store_batch_close(&bt);
    store_close(&a);
    open_at(&a, dir_a, 1);
    ck_assert_int_eq(store_load(&a, &l), 0);
    ck_assert_uint_eq(l.snap_index, 200);
    ck_assert_uint_eq(l.n_entries, 0);
    store_load_close(&l);
    ck_assert_int_eq(store_log_bounds(&a, &first, &last), 0);
    ck_assert_uint_eq(first, 151);
    ck_assert_uint_eq(last, 200);
    store_close(&a);
    free(chunks);
    free(buf);
}
END_TEST

static Suite *store_log_snap_suite(void)
{
    Suite *s = suite_create("store_log_snap");
    TCase *tc = tcase_create("take_transfer_install");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_take_transfer_install);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_log_snap_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
