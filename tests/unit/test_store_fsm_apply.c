/* Unit tests of applying entries: replay, entry types, a full map. */
#include <sys/stat.h>

#include "test_store_fsm_harness.h"

START_TEST(test_replay_skipped)
{
    struct h h;
    struct store_apply_result res;
    struct raft_entry e[3];
    struct store_cmd c;
    void *d1, *d2;
    size_t l1, l2;

    h_init(&h);
    store_cmd_init(&c);
    c.type = STORE_CMD_MKDIR;
    c.parent = STORE_ROOT_INO;
    c.name = h_str("d");
    h_entry(&h, &c, 1, &e[0]);
    c.type = STORE_CMD_CREATE;
    c.name = h_str("f");
    h_entry(&h, &c, 2, &e[1]);
    c.type = STORE_CMD_APPEND;
    c.ino = 3;
    c.data = h_str("x");
    h_entry(&h, &c, 3, &e[2]);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(h_apply_entry(&h, &e[i], &res), 0);
        ck_assert(!res.skipped);
        ck_assert_int_eq(res.status, 0);
    }
    h_dump(&h, &d1, &l1);
    /* Replaying the log after a "crash": every entry is skipped, nothing
     * changes (the append is not applied twice). */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(h_apply_entry(&h, &e[i], &res), 0);
        ck_assert(res.skipped);
    }
    h_dump(&h, &d2, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_mem_eq(d1, d2, l1);
    ck_assert_uint_eq(store_fsm_applied(&h.f), 3);
    for (int i = 0; i < 3; i++) {
        free(e[i].data.base);
    }
    free(d1);
    free(d2);
    h_close(&h);
}
END_TEST

START_TEST(test_non_command_entries)
{
    struct h h;
    struct store_apply_result res;
    struct raft_entry e;
    uint8_t junk[40];
    MDB_txn *txn;

    h_init(&h);
    memset(&e, 0, sizeof e);
    e.index = 1;
    e.term = 3;
    e.type = RAFT_ENTRY_NOOP;
    ck_assert_int_eq(h_apply_entry(&h, &e, &res), 0);
    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(res.type, 0);
    e.index = 2;
    e.term = 4;
    e.type = RAFT_ENTRY_CONFIG;
    e.data.base = junk;
    e.data.len = 5;
    memset(junk, 1, sizeof junk);
    ck_assert_int_eq(h_apply_entry(&h, &e, &res), 0);
    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(store_fsm_applied(&h.f), 2);

    /* Commands that do not decode, or lack the envelope: EINVAL, the
     * applied index advances, nothing else. */
    e.type = RAFT_ENTRY_COMMAND;
    e.index = 3;
    e.data.len = 10;
    ck_assert_int_eq(h_apply_entry(&h, &e, &res), 0);
    ck_assert_int_eq(res.status, -EINVAL);
    e.index = 4;
    e.data.len = sizeof junk;
    ck_assert_int_eq(h_apply_entry(&h, &e, &res), 0);
    ck_assert_int_eq(res.status, -EINVAL);
    ck_assert_uint_eq(store_fsm_applied(&h.f), 4);
    ck_assert_int_eq(mdb_txn_begin(h.env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_uint_eq(store__fsm_applied_term(&h.f, txn), 4);
    mdb_txn_abort(txn);
    h_close(&h);
}
END_TEST

/* A full map is an environment error returned to the caller, never a
 * command result; the txn is aborted and reads keep working. */
START_TEST(test_map_full)
{
    struct h h;
    struct store_apply_result res;
    struct raft_entry e;
    struct store_cmd c;
    static char big[900 * 1024];
    int rv = 0;
    int puts = 0;

    h_init_size(&h, (size_t)4 << 20);
    ck_assert_int_eq(h_create(&h, STORE_ROOT_INO, "f", 0, NULL, NULL), 0);
    memset(big, 'b', sizeof big);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = STORE_ROOT_INO;
    c.flags = STORE_CREATE_VALUE;
    c.data.base = big;
    c.data.len = sizeof big;
    while (rv == 0 && puts < 100) {
        char name[16];
        snprintf(name, sizeof name, "n%d", puts);
        c.name = h_str(name);
        h_entry(&h, &c, h.next, &e);
        rv = h_apply_entry(&h, &e, &res);
        free(e.data.base);
        if (rv == 0) {
            ck_assert_int_eq(res.status, 0);
            h.next++;
            puts++;
        }
    }
    ck_assert_int_eq(rv, -ENOSPC);
    ck_assert_int_gt(puts, 0);
    /* Nothing of the failed entry is visible; the proposer check agrees. */
    ck_assert_uint_eq(store_fsm_applied(&h.f), h.next - 1);
    ck_assert(h_exists(&h, "f"));
    ck_assert_int_eq(store_fsm_space_ok(&h.f, sizeof big), -ENOSPC);
    /* Deleting makes room again. */
    ck_assert_int_eq(h_remove(&h, STORE_CMD_UNLINK, STORE_ROOT_INO, "n0"), 0);
    ck_assert_int_eq(store_fsm_space_ok(&h.f, 1000), 0);
    h_close(&h);
}
END_TEST

/* A batch that hits a full map is aborted as a whole; after the map grows
 * the same batch applies, with the same results as if nothing happened. */
START_TEST(test_map_full_batch_retry)
{
    enum { N = 8 };
    static char big[700 * 1024];
    struct store_apply_result res[N];
    struct raft_entry e[N];
    struct store_cmd c;
    MDB_txn *txn;
    void *d1, *d2;
    size_t l1, l2;
    struct h h;
    int rv = 0;
    size_t i;

    h_init_size(&h, (size_t)4 << 20);
    ck_assert_int_eq(h_mkdir(&h, STORE_ROOT_INO, "d", NULL), 0);
    memset(big, 'b', sizeof big);
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = STORE_ROOT_INO;
    c.flags = STORE_CREATE_VALUE;
    c.data.base = big;
    c.data.len = sizeof big;
    for (i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%zu", i);
        c.name = h_str(name);
        c.time_ns = 1000 + i;
        h_entry(&h, &c, h.next + i, &e[i]);
    }
    h_dump(&h, &d1, &l1);
    ck_assert_int_eq(mdb_txn_begin(h.env, NULL, 0, &txn), 0);
    for (i = 0; i < N && rv == 0; i++) {
        rv = store__fsm_apply(&h.f, txn, e[i].index, &e[i], &res[i]);
    }
    ck_assert_int_eq(rv, -ENOSPC);
    ck_assert_uint_gt(i, 1); /* some entries applied before it filled */
    mdb_txn_abort(txn);
    h_dump(&h, &d2, &l2);
    ck_assert(l1 == l2 && memcmp(d1, d2, l1) == 0);
    free(d2);

    /* The operator's remedy: a bigger map (no txn may be open). */
    ck_assert_int_eq(mdb_env_set_mapsize(h.env, (size_t)64 << 20), 0);
    ck_assert_int_eq(mdb_txn_begin(h.env, NULL, 0, &txn), 0);
    for (i = 0; i < N; i++) {
        ck_assert_int_eq(store__fsm_apply(&h.f, txn, e[i].index, &e[i],
                                          &res[i]), 0);
        ck_assert_int_eq(res[i].status, 0);
        ck_assert_uint_eq(res[i].attr.ino, 3 + i);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    ck_assert_uint_eq(store_fsm_applied(&h.f), h.next - 1 + N);
    h_fsck(&h);
    for (i = 0; i < N; i++) {
        free(e[i].data.base);
    }
    free(d1);
    h_close(&h);
}
END_TEST

static Suite *apply_suite(void)
{
    Suite *s = suite_create("store_fsm_apply");
    TCase *tc;

    tc = tcase_create("replay");
    tcase_add_test(tc, test_replay_skipped);
    tcase_add_test(tc, test_non_command_entries);
    suite_add_tcase(s, tc);

    tc = tcase_create("full");
    tcase_add_test(tc, test_map_full);
    tcase_add_test(tc, test_map_full_batch_retry);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_main(apply_suite());
}
