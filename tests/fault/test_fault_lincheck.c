/* Unit tests of the linearizability checker on known-good and known-bad histories. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

/* Builds a history from lines of the text format and checks it. Times are
 * small integers (microseconds); the last argument is NULL. */
static int verdict_of(const char *first, ...)
{
    struct fault_history h;
    fault_history_init(&h);
    va_list ap;
    va_start(ap, first);
    size_t lineno = 0;
    for (const char *l = first; l != NULL; l = va_arg(ap, const char *)) {
        ck_assert_int_eq(fault_history_parse_line(&h, l, ++lineno), 0);
    }
    va_end(ap);
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    int rv = fault_check_history(&h, NULL, devnull, NULL);
    fclose(devnull);
    fault_history_close(&h);
    return rv;
}

#define GOOD(...) ck_assert_int_eq(verdict_of(__VA_ARGS__, NULL), FAULT_VERDICT_OK)
#define BAD(...) ck_assert_int_eq(verdict_of(__VA_ARGS__, NULL), FAULT_VERDICT_BAD)

/* --- parsing --- */

START_TEST(test_parse_fields)
{
    struct fault_history h;
    fault_history_init(&h);
    ck_assert_int_eq(fault_history_parse_line(&h, "# comment", 1), 0);
    ck_assert_int_eq(fault_history_parse_line(&h, "   ", 2), 0);
    ck_assert_int_eq(fault_history_parse_line(&h, "3 10 20 w k1 =v1 ok -", 3), 0);
    ck_assert_int_eq(fault_history_parse_line(&h, "4 11 21 r k1 - ok =v1", 4), 0);
    ck_assert_int_eq(fault_history_parse_line(&h, "4 12 13 r k1 - ok ~", 5), 0);
    ck_assert_int_eq(fault_history_parse_line(&h, "5 12 0 x k2 =me unknown -", 6), 0);
    ck_assert_int_eq(fault_history_parse_line(&h, "5 14 15 r k2 - ok =", 7), 0);
    ck_assert_uint_eq(h.n, 5);
    ck_assert_int_eq(h.ops[0].proc, 3);
    ck_assert_int_eq(h.ops[0].kind, FAULT_OP_WRITE);
    ck_assert_str_eq(h.ops[0].arg, "v1");
    ck_assert_str_eq(h.ops[1].out, "v1");
    ck_assert(h.ops[1].out_present);
    ck_assert(!h.ops[2].out_present);
    ck_assert_int_eq(h.ops[3].result, FAULT_RES_UNKNOWN);
    ck_assert(h.ops[3].complete == FAULT_TIME_INF);
    ck_assert_str_eq(h.ops[4].out, "");
    ck_assert_uint_eq(h.ops[4].line, 7);
    fault_history_close(&h);
}
END_TEST

START_TEST(test_parse_rejects)
{
    struct fault_history h;
    fault_history_init(&h);
    const char *bad[] = {
        "1 10 20 w k1 v1 ok -",        /* arg without '=' */
        "1 10 20 q k1 =v ok -",        /* unknown kind */
        "1 10 20 w k1 =v perhaps -",   /* unknown result */
        "1 10 20 r k1 - ok -",         /* ok read without output */
        "1 20 10 w k1 =v ok -",        /* completes before it starts */
        "1 10 20 w k1 =v ok - extra",  /* too many fields */
        "1 10 w k1 =v ok -",           /* too few */
        "x 10 20 w k1 =v ok -",        /* bad proc */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(fault_history_parse_line(&h, bad[i], i + 1), -EINVAL);
    }
    ck_assert_uint_eq(h.n, 0);
    fault_history_close(&h);
}
END_TEST

START_TEST(test_load_file)
{
    static const char text[] = "# a history\n"
                                "1 0 10 w k =a ok -\n"
                                "\n"
                                "2 20 30 r k - ok =a\n"
                                "2 40 oops r k - ok =a\n";
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    ck_assert_ptr_nonnull(f);
    struct fault_history h;
    fault_history_init(&h);
    size_t bad = 0;
    ck_assert_int_eq(fault_history_load(&h, f, &bad), -EINVAL);
    ck_assert_uint_eq(bad, 5);
    ck_assert_uint_eq(h.n, 2);
    ck_assert_uint_eq(h.ops[1].line, 4);
    fclose(f);
    fault_history_close(&h);
}
END_TEST

/* --- known-good histories --- */

START_TEST(test_good_sequential)
{
    GOOD("1 0 10 r k - ok ~", "1 20 30 w k =a ok -", "1 40 50 r k - ok =a",
         "1 60 70 d k - ok =", "1 80 90 r k - ok ~", "1 100 110 d k - ok ~");
}
END_TEST

START_TEST(test_good_concurrent_read_old_or_new)
{
    GOOD("1 0 10 w k =a ok -", "1 20 100 w k =b ok -",
         "2 30 40 r k - ok =b", "3 50 60 r k - ok =b");
    GOOD("1 0 10 w k =a ok -", "1 20 100 w k =b ok -",
         "2 30 40 r k - ok =a", "3 50 60 r k - ok =b");
}
END_TEST

START_TEST(test_good_reordered_concurrent_writes)
{
    /* a and b overlap: the later-invoked b may take effect first. */
    GOOD("1 0 50 w k =a ok -", "2 10 40 w k =b ok -", "3 60 70 r k - ok =a");
    GOOD("1 0 50 w k =a ok -", "2 10 40 w k =b ok -", "3 60 70 r k - ok =b");
}
END_TEST

START_TEST(test_good_unknown_write)
{
    /* An unknown write may apply long after its client gave up... */
    GOOD("1 0 10 w k =a ok -", "2 20 0 w k =b unknown -",
         "3 30 40 r k - ok =a", "3 500 510 r k - ok =b",
         "3 600 610 r k - ok =b");
    /* ... or never. */
    GOOD("1 0 10 w k =a ok -", "2 20 0 w k =b unknown -",
         "3 30 40 r k - ok =a", "3 500 510 r k - ok =a");
    /* A failed write is dropped; failed and unknown reads say nothing. */
    GOOD("1 0 10 w k =a ok -", "2 20 30 w k =z fail -",
         "3 40 50 r k - fail -", "3 60 0 r k - unknown -",
         "3 70 80 r k - ok =a");
}
END_TEST

START_TEST(test_good_create_and_delete)
{
    GOOD("1 0 50 x k =p1 ok ~", "2 0 50 x k =p2 ok =", "3 60 70 r k - ok =p1",
         "1 80 90 d k - ok =", "2 100 110 x k =p2 ok ~",
         "3 120 130 r k - ok =p2");
    /* Delete of an absent key is ENOENT. */
    GOOD("1 0 10 d k - ok ~", "1 20 30 x k =v ok ~", "2 25 35 d k - ok =",
         "1 40 50 d k - ok ~");
    /* An unknown create that happened explains a later EEXIST. */
    GOOD("1 0 0 x k =v unknown -", "2 100 110 x k =w ok =",
         "2 120 130 r k - ok =v");
}
END_TEST

START_TEST(test_good_append)
{
    /* Concurrent appends land in some order; both are kept. */
    GOOD("1 0 50 a k =x; ok -", "2 0 50 a k =y; ok -",
         "3 60 70 r k - ok =y;x;");
    GOOD("1 0 10 w k =s ok -", "1 20 30 a k =1 ok -", "2 20 30 a k =2 ok -",
         "3 40 50 r k - ok =s12");
    /* Append to an absent key creates it; an unknown append may be there. */
    GOOD("1 0 10 a k =q ok -", "2 20 0 a k =r unknown -",
         "3 30 40 r k - ok =q", "3 50 60 r k - ok =qr");
}
END_TEST

START_TEST(test_good_maybe)
{
    /* A maybe op took effect inside its interval or not at all. */
    GOOD("1 0 100 x k = maybe -", "1 0 100 w k =v ok -",
         "2 10 20 r k - ok =", "2 30 40 r k - ok =v");
    GOOD("1 0 100 x k = maybe -", "1 0 100 w k =v ok -",
         "2 30 40 r k - ok =v");
    GOOD("1 0 10 w k =a maybe -", "2 20 30 r k - ok ~");
    GOOD("1 0 10 w k =a maybe -", "2 20 30 r k - ok =a");
}
END_TEST

START_TEST(test_good_keys_independent)
{
    GOOD("1 0 10 w a =1 ok -", "1 20 30 w b =2 ok -", "2 40 50 r a - ok =1",
         "2 40 50 r b - ok =2", "2 60 70 r c - ok ~");
}
END_TEST

/* --- known-bad histories --- */

START_TEST(test_bad_stale_read)
{
    BAD("1 0 10 w k =a ok -", "1 20 30 w k =b ok -", "2 40 50 r k - ok =a");
    /* Two reads on different nodes: new then old is not linearizable
     * even while the write is still in flight. */
    BAD("1 0 10 w k =a ok -", "1 20 100 w k =b ok -",
        "2 30 40 r k - ok =b", "3 50 60 r k - ok =a");
}
END_TEST

START_TEST(test_bad_lost_write)
{
    BAD("1 0 10 w k =a ok -", "2 20 30 r k - ok ~");
    BAD("1 0 10 w k =a ok -", "1 20 30 w k =b ok -", "2 40 50 r k - ok =b",
        "2 1000 1010 r k - ok ~");
}
END_TEST

START_TEST(test_bad_double_create_winner)
{
    BAD("1 0 50 x k =p1 ok ~", "2 0 50 x k =p2 ok ~");
    /* EEXIST for a key that nobody created. */
    BAD("1 0 10 x k =p1 ok =");
}
END_TEST

START_TEST(test_bad_append_lost)
{
    BAD("1 0 50 a k =x; ok -", "2 0 50 a k =y; ok -", "3 60 70 r k - ok =x;");
    /* Order reversed against real time. */
    BAD("1 0 10 a k =x; ok -", "2 20 30 a k =y; ok -", "3 40 50 r k - ok =y;x;");
}
END_TEST

START_TEST(test_bad_value_never_written)
{
    BAD("1 0 10 w k =a ok -", "2 20 30 r k - ok =zzz");
    /* A failed write must not be visible. */
    BAD("1 0 10 w k =a fail -", "2 20 30 r k - ok =a");
}
END_TEST

START_TEST(test_bad_maybe_outside_interval)
{
    /* Not seen before it completed, seen after: it cannot apply late. */
    BAD("1 0 10 w k =a maybe -", "2 20 30 r k - ok ~", "2 40 50 r k - ok =a");
    /* The empty file may show only while its create runs. */
    BAD("1 0 100 x k = maybe -", "1 0 100 w k =v ok -",
        "2 30 40 r k - ok =v", "2 200 210 r k - ok =");
}
END_TEST

START_TEST(test_bad_delete)
{
    BAD("1 0 10 w k =a ok -", "2 20 30 d k - ok ~");
    BAD("1 0 10 d k - ok =");
    BAD("1 0 10 w k =a ok -", "1 20 30 d k - ok =", "2 40 50 r k - ok =a");
}
END_TEST

START_TEST(test_bad_report_slice)
{
    /* The report names the key and marks the op that cannot be placed. */
    struct fault_history h;
    fault_history_init(&h);
    const char *lines[] = {
        "1 0 10 w good =1 ok -", "1 20 30 r good - ok =1",
        "1 0 10 w k =a ok -", "1 20 30 w k =b ok -", "2 40 50 r k - ok =a",
    };
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(fault_history_parse_line(&h, lines[i], i + 1), 0);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    struct fault_check_summary sum;
    ck_assert_int_eq(fault_check_history(&h, NULL, out, &sum), FAULT_VERDICT_BAD);
    fclose(out);
    ck_assert_uint_eq(sum.keys, 2);
    ck_assert_uint_eq(sum.keys_bad, 1);
    ck_assert_uint_eq(sum.ops, 5);
    ck_assert_ptr_nonnull(strstr(buf, "NOT LINEARIZABLE: key k "));
    ck_assert_ptr_nonnull(strstr(buf, "  *    line 5  p2"));
    ck_assert_ptr_null(strstr(buf, "key good"));
    free(buf);

    /* The key result itself: prefix w a, w b; the read is blocking. */
    struct fault_key_result r;
    ck_assert_int_eq(fault_check_key(h.ops + 2, 3, NULL, &r), 0);
    ck_assert_int_eq(r.verdict, FAULT_VERDICT_BAD);
    ck_assert_uint_eq(r.n_prefix, 2);
    ck_assert_uint_eq(r.blocking, 2);
    ck_assert_str_eq(r.prefix_state, "b");
    fault_key_result_close(&r);
    fault_history_close(&h);
}
END_TEST

START_TEST(test_budget_gives_unknown)
{
    struct fault_history h;
    fault_history_init(&h);
    char line[128];
    /* 12 concurrent writes, then a read of a value nobody wrote: every
     * order is tried before the search can say no. */
    for (int i = 0; i < 12; i++) {
        snprintf(line, sizeof line, "%d 0 100 w k =v%d ok -", i, i);
        ck_assert_int_eq(fault_history_parse_line(&h, line, (size_t)i + 1), 0);
    }
    ck_assert_int_eq(fault_history_parse_line(&h, "99 200 210 r k - ok =no", 13), 0);
    struct fault_check_opts opts = {.max_steps = 5};
    struct fault_key_result r;
    ck_assert_int_eq(fault_check_key(h.ops, h.n, &opts, &r), 0);
    ck_assert_int_eq(r.verdict, FAULT_VERDICT_UNKNOWN);
    fault_key_result_close(&r);
    /* With the default budget memoization makes it quick: 2^12 sets. */
    ck_assert_int_eq(fault_check_key(h.ops, h.n, NULL, &r), 0);
    ck_assert_int_eq(r.verdict, FAULT_VERDICT_BAD);
    ck_assert_uint_lt(r.steps, 1000000);
    fault_key_result_close(&r);
    fault_history_close(&h);
}
END_TEST

START_TEST(test_long_history_is_fast)
{
    /* 20,000 ops by 8 overlapping clients on one key stay linearizable and
     * checkable: the walk is linear when little overlaps. */
    struct fault_history h;
    fault_history_init(&h);
    char line[128];
    for (int i = 0; i < 20000; i++) {
        int64_t t = (int64_t)i * 10;
        if (i % 2 == 0) {
            snprintf(line, sizeof line, "%d %lld %lld w k =v%d ok -", i % 8,
                     (long long)t, (long long)t + 15, i);
        } else {
            snprintf(line, sizeof line, "%d %lld %lld r k - ok =v%d", i % 8,
                     (long long)t + 6, (long long)t + 12, i - 1);
        }
        ck_assert_int_eq(fault_history_parse_line(&h, line, (size_t)i + 1), 0);
    }
    struct fault_check_summary sum;
    ck_assert_int_eq(fault_check_history(&h, NULL, NULL, &sum), FAULT_VERDICT_OK);
    ck_assert_uint_eq(sum.ops, 20000);
    fault_history_close(&h);
}
END_TEST

static Suite *lincheck_suite(void)
{
    Suite *s = suite_create("fault_lincheck");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_fields);
    tcase_add_test(tc, test_parse_rejects);
    tcase_add_test(tc, test_load_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("good");
    tcase_add_test(tc, test_good_sequential);
    tcase_add_test(tc, test_good_concurrent_read_old_or_new);
    tcase_add_test(tc, test_good_reordered_concurrent_writes);
    tcase_add_test(tc, test_good_unknown_write);
    tcase_add_test(tc, test_good_create_and_delete);
    tcase_add_test(tc, test_good_append);
    tcase_add_test(tc, test_good_maybe);
    tcase_add_test(tc, test_good_keys_independent);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad");
    tcase_add_test(tc, test_bad_stale_read);
    tcase_add_test(tc, test_bad_lost_write);
    tcase_add_test(tc, test_bad_double_create_winner);
    tcase_add_test(tc, test_bad_append_lost);
    tcase_add_test(tc, test_bad_value_never_written);
    tcase_add_test(tc, test_bad_maybe_outside_interval);
    tcase_add_test(tc, test_bad_delete);
    tcase_add_test(tc, test_bad_report_slice);
    suite_add_tcase(s, tc);
    tc = tcase_create("search");
    tcase_add_test(tc, test_budget_gives_unknown);
    tcase_add_test(tc, test_long_history_is_fast);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lincheck_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
