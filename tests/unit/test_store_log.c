/* Unit tests of store/'s Raft log, hard state, load and write batches. */

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "test_store_util.h"

static char dir[PATH_MAX];
static struct store st;

static void open_store(void)
{
    struct store_options o;
    store_options_default(&o);
    o.dir = dir;
    o.create = true;
    o.cluster_id = "test-cluster";
    o.node_id = 1;
    int rv = store_open(&st, &o);
    ck_assert_msg(rv == 0, "store_open: %s", store_errmsg(&st));
}

static void setup(void)
{
    tmpdir_make(dir, sizeof dir, "store_log");
    open_store();
}

static void teardown(void)
{
    store_close(&st);
    tmpdir_remove(dir);
}

static void mk(struct ents *x, raft_index idx, size_t n, raft_term term)
{
    ents_make(x, idx, n, term, RAFT_ENTRY_COMMAND);
}

static int append(raft_index idx, size_t n, raft_term term)
{
    return append_ents(&st, idx, n, term, RAFT_ENTRY_COMMAND);
}

/* Checks that the stored log is exactly lo..hi with the terms of `terms`
 * (terms[i] for index lo + i) and the data mk() gives them. */
static void expect_log(raft_index lo, raft_index hi, const raft_term *terms)
{
    raft_index first, last;
    struct raft_entry *es;
    size_t n;
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(first, lo);
    ck_assert_uint_eq(last, hi);
    ck_assert_int_eq(store_log_get(&st, lo, hi, &es, &n), 0);
    ck_assert_uint_eq(n, hi - lo + 1);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "e%llu-t%llu", (unsigned long long)(lo + i),
                 (unsigned long long)terms[i]);
        ck_assert_uint_eq(es[i].index, lo + i);
        ck_assert_uint_eq(es[i].term, terms[i]);
        ck_assert_uint_eq(es[i].type, RAFT_ENTRY_COMMAND);
        ck_assert_uint_eq(es[i].data.len, strlen(want));
        ck_assert(memcmp(es[i].data.base, want, strlen(want)) == 0);
    }
    free(es);
}

START_TEST(test_append_read)
{
    raft_term t[10] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 2};
    raft_index first, last;
    ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
    ck_assert_uint_eq(first, 1);
    ck_assert_uint_eq(last, 0);
    ck_assert_int_eq(append(1, 5, 1), 0);
    ck_assert_int_eq(append(6, 5, 2), 0);
    expect_log(1, 10, t);

    raft_term term;
    ck_assert_int_eq(store_log_term(&st, 0, &term), 0);
    ck_assert_uint_eq(term, 0);
    ck_assert_int_eq(store_log_term(&st, 5, &term), 0);
    ck_assert_uint_eq(term, 1);
    ck_assert_int_eq(store_log_term(&st, 6, &term), 0);
    ck_assert_uint_eq(term, 2);
    ck_assert_int_eq(store_log_term(&st, 11, &term), -ENOENT);

    /* A sub-range, and hi clamped to the last index. */
    struct raft_entry *es;
    size_t n;
    ck_assert_int_eq(store_log_get(&st, 4, 6, &es, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(es[0].index, 4);
    ck_assert_uint_eq(es[2].term, 2);
    free(es);
    ck_assert_int_eq(store_log_get(&st, 9, 100, &es, &n), 0);
    ck_assert_uint_eq(n, 2);
    free(es);
    ck_assert_int_eq(store_log_get(&st, 11, 12, &es, &n), -ENOENT);
}
END_TEST

START_TEST(test_empty_data)
{
    struct raft_entry e = {.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP};
    struct store_batch b;
    struct store_write_result r;
    struct raft_entry *es;
    size_t n;
    store_batch_init(&b);
    ck_assert_int_eq(store_batch_append(&b, &e, 1), 0);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    store_write_result_close(&r);
    store_batch_close(&b);
    ck_assert_int_eq(store_log_get(&st, 1, 1, &es, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(es[0].type, RAFT_ENTRY_NOOP);
    ck_assert_uint_eq(es[0].data.len, 0);
    free(es);
}
END_TEST

START_TEST(test_gap_refused)
{
    ck_assert_int_eq(append(2, 1, 1), STORE_ERR_GAP);
    ck_assert_int_eq(append(1, 3, 1), 0);
    ck_assert_int_eq(append(5, 1, 1), STORE_ERR_GAP);
    /* Non-contiguous entries inside one append. */
    struct ents x;
    struct store_batch b;
    struct store_write_result r;
    mk(&x, 4, 3, 1);
    x.e[2].index = 9;
    store_batch_init(&b);
    store_batch_append(&b, x.e, x.n);
    ck_assert_int_eq(store_write(&st, &b, &r), STORE_ERR_GAP);
    store_batch_close(&b);
    raft_term t[3] = {1, 1, 1};
    expect_log(1, 3, t);
}
END_TEST

/* Paper §5.3: an append whose first index is already stored deletes that
 * entry and everything after it first. */
START_TEST(test_truncate)
{
    ck_assert_int_eq(append(1, 10, 1), 0);
    ck_assert_int_eq(append(4, 2, 3), 0);
    raft_term t[5] = {1, 1, 1, 3, 3};
    expect_log(1, 5, t);
    raft_term term;
    ck_assert_int_eq(store_log_term(&st, 6, &term), -ENOENT);
    /* Truncate everything. */
    ck_assert_int_eq(append(1, 1, 4), 0);
    raft_term t2[1] = {4};
    expect_log(1, 1, t2);
}
END_TEST

/* Several updates in one batch: truncation and appends in order. */
START_TEST(test_batch_truncate_append)
{
    struct ents a, c, d;
    struct store_batch b;
    struct store_write_result r;
    mk(&a, 1, 8, 1);
    mk(&c, 5, 3, 2); /* conflicts with 5..8 of a */
    mk(&d, 8, 2, 2); /* continues c */
    store_batch_init(&b);
    ck_assert_int_eq(store_batch_hard_state(&b, 1, 7), 0);
    ck_assert_int_eq(store_batch_append(&b, a.e, a.n), 0);
    ck_assert_int_eq(store_batch_hard_state(&b, 2, 0), 0);
    ck_assert_int_eq(store_batch_append(&b, c.e, c.n), 0);
    ck_assert_int_eq(store_batch_append(&b, d.e, d.n), 0);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    ck_assert_uint_eq(r.last_index, 9);
    ck_assert_uint_eq(r.last_term, 2);
    ck_assert(r.synced);
    store_write_result_close(&r);
    store_batch_close(&b);
    raft_term t[9] = {1, 1, 1, 1, 2, 2, 2, 2, 2};
    expect_log(1, 9, t);
    raft_term term;
    raft_id vote;
    ck_assert_int_eq(store_hard_state(&st, &term, &vote), 0);
    ck_assert_uint_eq(term, 2); /* the later hard state wins */
    ck_assert_uint_eq(vote, 0);
}
END_TEST

/* A failing operation aborts the whole batch: nothing of it is stored. */
START_TEST(test_batch_atomic)
{
    struct ents a, c;
    struct store_batch b;
    struct store_write_result r;
    ck_assert_int_eq(append(1, 2, 1), 0);
    mk(&a, 3, 2, 1);
    mk(&c, 9, 1, 1); /* gap */
    store_batch_init(&b);
    store_batch_hard_state(&b, 5, 5);
    store_batch_append(&b, a.e, a.n);
    store_batch_apply(&b, a.e, a.n);
    store_batch_append(&b, c.e, c.n);
    ck_assert_int_eq(store_write(&st, &b, &r), STORE_ERR_GAP);
    store_batch_close(&b);
    raft_term t[2] = {1, 1};
    expect_log(1, 2, t);
    raft_term term;
    raft_id vote;
    raft_index applied;
    ck_assert_int_eq(store_hard_state(&st, &term, &vote), 0);
    ck_assert_uint_eq(term, 0);
    ck_assert_int_eq(store_applied(&st, &applied), 0);
    ck_assert_uint_eq(applied, 0);
}
END_TEST

START_TEST(test_compact)
{
    ck_assert_int_eq(append(1, 10, 1), 0);
    struct store_batch b;
    struct store_write_result r;
    store_batch_init(&b);
    store_batch_compact(&b, 4);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    ck_assert(!r.synced); /* compaction alone needs no durability */
    ck_assert_uint_eq(r.last_index, 10);
    store_write_result_close(&r);
    raft_term t[6] = {1, 1, 1, 1, 1, 1};
    expect_log(5, 10, t);
    struct raft_entry *es;
    size_t n;
    ck_assert_int_eq(store_log_get(&st, 4, 5, &es, &n), -ENOENT);
    /* Compacting below the first stored index is a no-op; appends go on. */
    store_batch_reset(&b);
    store_batch_compact(&b, 2);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    store_write_result_close(&r);
    store_batch_close(&b);
    ck_assert_int_eq(append(11, 2, 2), 0);
    raft_term t2[8] = {1, 1, 1, 1, 1, 1, 2, 2};
    expect_log(5, 12, t2);
}
END_TEST

START_TEST(test_apply)
{
    struct ents a;
    struct store_batch b;
    struct store_write_result r;
    mk(&a, 1, 6, 1);
    for (size_t i = 0; i < a.n; i++) {
        a.e[i].type = RAFT_ENTRY_NOOP;
        a.e[i].data.len = 0;
    }
    store_batch_init(&b);
    store_batch_append(&b, a.e, a.n);
    store_batch_apply(&b, a.e, 2);
    store_batch_apply(&b, a.e + 2, 2);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    ck_assert_uint_eq(r.n_results, 4);
    ck_assert_uint_eq(r.applied, 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(r.results[i].status, 0);
        ck_assert(!r.results[i].skipped);
    }
    store_write_result_close(&r);
    /* Replay (after a crash the driver re-applies from the log): skipped. */
    store_batch_reset(&b);
    store_batch_apply(&b, a.e + 2, 4);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    ck_assert(!r.synced); /* apply-only */
    ck_assert_uint_eq(r.n_results, 4);
    ck_assert(r.results[0].skipped);
    ck_assert(r.results[1].skipped);
    ck_assert(!r.results[2].skipped);
    ck_assert_uint_eq(r.applied, 6);
    store_write_result_close(&r);
    store_batch_close(&b);
    raft_index applied;
    ck_assert_int_eq(store_applied(&st, &applied), 0);
    ck_assert_uint_eq(applied, 6);
}
END_TEST

START_TEST(test_reopen_load)
{
    struct ents a;
    struct store_batch b;
    struct store_write_result r;
    struct raft_load l;
    mk(&a, 1, 20, 3);
    a.e[0].type = RAFT_ENTRY_NOOP;
    a.e[0].data.len = 0;
    store_batch_init(&b);
    store_batch_hard_state(&b, 3, 2);
    store_batch_append(&b, a.e, a.n);
    store_batch_apply(&b, a.e, 5);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    store_write_result_close(&r);
    store_batch_close(&b);
    store_close(&st);
    open_store();

    ck_assert_int_eq(store_load(&st, &l), 0);
    ck_assert_uint_eq(l.term, 3);
    ck_assert_uint_eq(l.vote, 2);
    ck_assert_uint_eq(l.snap_index, 0);
    ck_assert_uint_eq(l.applied, 5);
    ck_assert_uint_eq(l.n_entries, 20);
    for (size_t i = 0; i < 20; i++) {
        ck_assert_uint_eq(l.entries[i].index, i + 1);
        ck_assert_uint_eq(l.entries[i].term, 3);
        ck_assert_uint_eq(l.entries[i].data.len, a.e[i].data.len);
        ck_assert(l.entries[i].data.len == 0 ||
                  memcmp(l.entries[i].data.base, a.e[i].data.base,
                         a.e[i].data.len) == 0);
    }
    ck_assert_uint_eq(l.entries[0].type, RAFT_ENTRY_NOOP);
    store_load_close(&l);
    ck_assert_ptr_null(l.entries);
}
END_TEST

START_TEST(test_load_empty)
{
    struct raft_load l;
    ck_assert_int_eq(store_load(&st, &l), 0);
    ck_assert_uint_eq(l.term, 0);
    ck_assert_uint_eq(l.vote, 0);
    ck_assert_uint_eq(l.n_entries, 0);
    ck_assert_ptr_null(l.entries);
    store_load_close(&l);
}
END_TEST

START_TEST(test_chunk_read)
{
    struct raft_snapshot_meta m = {.index = 7, .term = 1};
    struct store_batch b;
    struct store_write_result r;
    struct raft_buf c1 = {"hello ", 6}, c2 = {"world", 5};
    char path[PATH_MAX + 32], buf[32];
    store_batch_init(&b);
    store_batch_chunk(&b, &m, 0, &c1);
    store_batch_chunk(&b, &m, 6, &c2);
    ck_assert_int_eq(store_write(&st, &b, &r), 0);
    ck_assert(r.synced);
    store_write_result_close(&r);
    store_batch_close(&b);
    snprintf(path, sizeof path, "%s/snapshot.recv-0000000000000007", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(buf, 1, sizeof buf, f), 11);
    fclose(f);
    ck_assert(memcmp(buf, "hello world", 11) == 0);
    ck_assert_int_eq(store_snapshot_read(&st, 7, 0, buf, 4),
                     STORE_ERR_NO_SNAPSHOT);
}
END_TEST

/* MDB_NOTLS: a reader thread (the loop thread in the daemon) runs short
 * read transactions while the writer thread commits batches. Every read
 * must see a consistent, contiguous prefix of the log. */
static atomic_bool stop_readers;

static void *reader(void *arg)
{
    (void)arg;
    size_t loads = 0;
    while (!atomic_load(&stop_readers)) {
        struct raft_load l;
        raft_index first, last;
        ck_assert_int_eq(store_load(&st, &l), 0);
        for (size_t i = 0; i < l.n_entries; i++) {
            ck_assert_uint_eq(l.entries[i].index, i + 1);
        }
        ck_assert_uint_le(l.applied, l.n_entries);
        store_load_close(&l);
        ck_assert_int_eq(store_log_bounds(&st, &first, &last), 0);
        ck_assert_uint_eq(first, 1);
        loads++;
    }
    return (void *)loads;
}

START_TEST(test_concurrent_reads)
{
    pthread_t th[2];
    atomic_store(&stop_readers, false);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, NULL), 0);
    }
    raft_index next = 1;
    for (int round = 0; round < 200; round++) {
        struct ents a;
        struct store_batch b;
        struct store_write_result r;
        size_t n = 1 + (size_t)round % 7;
        mk(&a, next, n, 1);
        for (size_t i = 0; i < n; i++) {
            a.e[i].type = RAFT_ENTRY_NOOP;
        }
        store_batch_init(&b);
        store_batch_append(&b, a.e, n);
        store_batch_apply(&b, a.e, n);
        ck_assert_int_eq(store_write(&st, &b, &r), 0);
        store_write_result_close(&r);
        store_batch_close(&b);
        next += n;
    }
    atomic_store(&stop_readers, true);
    for (int i = 0; i < 2; i++) {
        void *loads;
        ck_assert_int_eq(pthread_join(th[i], &loads), 0);
        ck_assert_uint_gt((size_t)loads, 0);
    }
    raft_index applied;
    ck_assert_int_eq(store_applied(&st, &applied), 0);
    ck_assert_uint_eq(applied, next - 1);
}
END_TEST

static Suite *store_log_suite(void)
{
    Suite *s = suite_create("store_log");
    TCase *tc;
#define ADD(name, fn)                                                          \
    tc = tcase_create(name);                                                   \
    tcase_add_checked_fixture(tc, setup, teardown);                            \
    tcase_add_test(tc, fn);                                                    \
    suite_add_tcase(s, tc)
    ADD("append_read", test_append_read);
    ADD("empty_data", test_empty_data);
    ADD("gap", test_gap_refused);
    ADD("truncate", test_truncate);
    ADD("batch_truncate_append", test_batch_truncate_append);
    ADD("batch_atomic", test_batch_atomic);
    ADD("compact", test_compact);
    ADD("apply", test_apply);
    ADD("reopen_load", test_reopen_load);
    ADD("load_empty", test_load_empty);
    ADD("chunk", test_chunk_read);
    ADD("concurrent_reads", test_concurrent_reads);
#undef ADD
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
