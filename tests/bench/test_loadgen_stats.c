/* Unit tests of loadgen's statistics and report (loadgen_stats.c). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

#define MS 1000000u /* nanoseconds */

/* A record holding the latencies v[0..n) (milliseconds, in the given order),
 * all successful. */
static void rec_with(struct lg_rec *r, const unsigned *v, size_t n)
{
    ck_assert_int_eq(lg_rec_init(r), 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(lg_rec_add(r, (uint64_t)v[i] * MS, 0), 0);
    }
}

/* A record of the latencies 1, 2, ..., n ms, added from n down to 1. */
static void rec_one_to(struct lg_rec *r, unsigned n)
{
    ck_assert_int_eq(lg_rec_init(r), 0);
    for (unsigned i = n; i >= 1; i--) {
        ck_assert_int_eq(lg_rec_add(r, (uint64_t)i * MS, 0), 0);
    }
}

/* Summarizes recs over 1 s; every quantity below is exact in binary, so the
 * comparisons are exact. */
static void summarize(struct lg_rec *recs, size_t n, struct lg_summary *s)
{
    ck_assert_int_eq(lg_summarize(recs, n, 1.0, s), 0);
}

static void expect(const struct lg_summary *s, double p50, double p90,
                   double p99, double max, double mean)
{
    ck_assert_double_eq(s->p50_ms, p50);
    ck_assert_double_eq(s->p90_ms, p90);
    ck_assert_double_eq(s->p99_ms, p99);
    ck_assert_double_eq(s->max_ms, max);
    ck_assert_double_eq(s->mean_ms, mean);
}

/* --- percentiles ------------------------------------------------------- */

START_TEST(test_pct_one_sample)
{
    struct lg_rec r;
    struct lg_summary s;
    const unsigned v[] = {7};
    rec_with(&r, v, 1);
    summarize(&r, 1, &s);
    expect(&s, 7, 7, 7, 7, 7);
    ck_assert_uint_eq(s.samples, 1);
    ck_assert_uint_eq(s.ops, 1);
    lg_rec_close(&r);
}
END_TEST

START_TEST(test_pct_ten)
{
    /* Nearest rank: p50 of 10 is the 5th, p90 the 9th, p99 the 10th. */
    struct lg_rec r;
    struct lg_summary s;
    const unsigned v[] = {40, 10, 100, 70, 20, 90, 50, 30, 80, 60};
    rec_with(&r, v, 10);
    summarize(&r, 1, &s);
    expect(&s, 50, 90, 100, 100, 55);
    lg_rec_close(&r);
}
END_TEST

START_TEST(test_pct_hundred_and_thousand)
{
    struct lg_rec r;
    struct lg_summary s;
    rec_one_to(&r, 100);
    summarize(&r, 1, &s);
    expect(&s, 50, 90, 99, 100, 50.5);
    lg_rec_close(&r);
    rec_one_to(&r, 1000);
    summarize(&r, 1, &s);
    expect(&s, 500, 900, 990, 1000, 500.5);
    ck_assert_uint_eq(s.samples, 1000);
    lg_rec_close(&r);
}
END_TEST

START_TEST(test_pct_rounds_up)
{
    /* n = 7: p50 rank ceil(3.5) = 4, p90 ceil(6.3) = 7, p99 ceil(6.93) = 7.
     * n = 3: p50 rank 2, p90 and p99 rank 3. Sub-millisecond values. */
    struct lg_rec r;
    struct lg_summary s;
    rec_one_to(&r, 7);
    summarize(&r, 1, &s);
    expect(&s, 4, 7, 7, 7, 4);
    lg_rec_close(&r);
    ck_assert_int_eq(lg_rec_init(&r), 0);
    lg_rec_add(&r, 250000, 0);
    lg_rec_add(&r, 750000, 0);
    lg_rec_add(&r, 500000, 0);
    summarize(&r, 1, &s);
    expect(&s, 0.5, 0.75, 0.75, 0.75, 0.5);
    lg_rec_close(&r);
}
END_TEST

START_TEST(test_pct_merged_records)
{
    /* 1..10 ms split over two workers, unsorted; a third worker that only
     * failed adds no sample. */
    struct lg_rec r[3];
    struct lg_summary s;
    const unsigned a[] = {9, 1, 7, 3, 5}, b[] = {2, 10, 4, 8, 6};
    rec_with(&r[0], a, 5);
    rec_with(&r[1], b, 5);
    ck_assert_int_eq(lg_rec_init(&r[2]), 0);
    lg_rec_add(&r[2], 999 * MS, EIO);
    summarize(r, 3, &s);
    expect(&s, 5, 9, 10, 10, 5.5);
    ck_assert_uint_eq(s.samples, 10);
    ck_assert_uint_eq(s.ops, 11);
    ck_assert_uint_eq(s.errors, 1);
    /* The records are only read. */
    ck_assert_uint_eq(r[0].lat_ns[0], 9 * MS);
    ck_assert_uint_eq(r[1].lat_ns[0], 2 * MS);
    for (int i = 0; i < 3; i++) {
        lg_rec_close(&r[i]);
    }
}
END_TEST

START_TEST(test_rank)
{
    ck_assert_uint_eq(lg_rank(0, 50), 0);
    ck_assert_uint_eq(lg_rank(1, 0), 1);
    ck_assert_uint_eq(lg_rank(1, 50), 1);
    ck_assert_uint_eq(lg_rank(1, 100), 1);
    ck_assert_uint_eq(lg_rank(10, 0), 1);
    ck_assert_uint_eq(lg_rank(10, 50), 5);
    ck_assert_uint_eq(lg_rank(10, 90), 9);
    ck_assert_uint_eq(lg_rank(10, 99), 10);
    ck_assert_uint_eq(lg_rank(10, 100), 10);
    ck_assert_uint_eq(lg_rank(10, 250), 10);
    ck_assert_uint_eq(lg_rank(7, 50), 4);
    ck_assert_uint_eq(lg_rank(101, 99), 100);
    ck_assert_uint_eq(lg_rank(1000, 99), 990);
    ck_assert_uint_eq(lg_rank(1001, 99), 991);
    /* Where 0.9 * n + 0.999999 in doubles is one too many. */
    ck_assert_uint_eq(lg_rank(100000000000ull, 90), 90000000000ull);
    ck_assert_uint_eq(lg_rank(100000000000ull, 99), 99000000000ull);
    ck_assert_uint_eq(lg_rank(1000000000000ull, 90), 900000000000ull);
    /* No overflow of pct * n. */
    ck_assert_uint_eq(lg_rank(UINT64_MAX, 100), UINT64_MAX);
    ck_assert_uint_eq(lg_rank(UINT64_MAX, 50), UINT64_MAX / 2 + 1);
    ck_assert_uint_eq(lg_rank(UINT64_MAX, 1), UINT64_MAX / 100 + 1);
}
END_TEST

/* --- errors, throughput, empty runs, growth ----------------------------- */

START_TEST(test_errors_by_errno)
{
    struct lg_rec r[2];
    struct lg_summary s;
    ck_assert_int_eq(lg_rec_init(&r[0]), 0);
    ck_assert_int_eq(lg_rec_init(&r[1]), 0);
    lg_rec_add(&r[0], 2 * MS, 0);
    lg_rec_add(&r[0], 500 * MS, ENOENT); /* failed: not a sample */
    lg_rec_add(&r[0], 1 * MS, ENOENT);
    lg_rec_add(&r[1], 4 * MS, 0);
    lg_rec_add(&r[1], 300 * MS, ENOENT);
    lg_rec_add(&r[1], 1 * MS, EEXIST);
    lg_rec_add(&r[1], 1 * MS, EEXIST);
    lg_rec_add(&r[1], 1 * MS, LG_MAX_ERRNO - 1);
    lg_rec_add(&r[1], 1 * MS, LG_MAX_ERRNO);
    lg_rec_add(&r[1], 1 * MS, LG_MAX_ERRNO + 1);
    lg_rec_add(&r[1], 1 * MS, LG_MAX_ERRNO + 40);
    lg_rec_add(&r[1], 1 * MS, 100000);
    ck_assert_uint_eq(r[0].ops, 3);
    ck_assert_uint_eq(r[0].errors, 2);
    ck_assert_uint_eq(r[0].lat_len, 1);
    ck_assert_uint_eq(r[1].errs[LG_MAX_ERRNO], 4);
    summarize(r, 2, &s);
    ck_assert_uint_eq(s.ops, 12);
    ck_assert_uint_eq(s.errors, 10);
    ck_assert_uint_eq(s.samples, 2);
    ck_assert_uint_eq(s.errs[ENOENT], 3);
    ck_assert_uint_eq(s.errs[EEXIST], 2);
    ck_assert_uint_eq(s.errs[LG_MAX_ERRNO - 1], 1);
    ck_assert_uint_eq(s.errs[LG_MAX_ERRNO], 4);
    ck_assert_uint_eq(s.errs[0], 0);
    uint64_t sum = 0;
    for (size_t e = 0; e <= LG_MAX_ERRNO; e++) {
        sum += s.errs[e];
    }
    ck_assert_uint_eq(sum, s.errors);
    /* The failed operations' latencies are in no percentile. */
    expect(&s, 2, 4, 4, 4, 3);
    ck_assert_double_eq(s.ops_per_s, 2);
    lg_rec_close(&r[0]);
    lg_rec_close(&r[1]);
}
END_TEST

START_TEST(test_ops_per_s)
{
    /* 10 successes and 5 failures in 2 s: 5 successful ops/s. */
    struct lg_rec r[2];
    struct lg_summary s;
    ck_assert_int_eq(lg_rec_init(&r[0]), 0);
    ck_assert_int_eq(lg_rec_init(&r[1]), 0);
    for (int i = 0; i < 10; i++) {
        lg_rec_add(&r[i % 2], MS, 0);
    }
    for (int i = 0; i < 5; i++) {
        lg_rec_add(&r[1], MS, EIO);
    }
    r[0].bytes = 100;
    r[1].bytes = 23;
    ck_assert_int_eq(lg_summarize(r, 2, 2.0, &s), 0);
    ck_assert_uint_eq(s.ops, 15);
    ck_assert_uint_eq(s.errors, 5);
    ck_assert_uint_eq(s.bytes, 123);
    ck_assert_double_eq(s.seconds, 2.0);
    ck_assert_double_eq(s.ops_per_s, 5.0);
    ck_assert_int_eq(lg_summarize(r, 2, 0.5, &s), 0);
    ck_assert_double_eq(s.ops_per_s, 20.0);
    /* No time measured: no rate rather than a division by zero. */
    ck_assert_int_eq(lg_summarize(r, 2, 0, &s), 0);
    ck_assert_double_eq(s.ops_per_s, 0);
    lg_rec_close(&r[0]);
    lg_rec_close(&r[1]);
}
END_TEST

static void expect_zero(const struct lg_summary *s)
{
    ck_assert_uint_eq(s->ops, 0);
    ck_assert_uint_eq(s->errors, 0);
    ck_assert_uint_eq(s->bytes, 0);
    ck_assert_uint_eq(s->samples, 0);
    ck_assert_double_eq(s->ops_per_s, 0);
    expect(s, 0, 0, 0, 0, 0);
    for (size_t e = 0; e <= LG_MAX_ERRNO; e++) {
        ck_assert_uint_eq(s->errs[e], 0);
    }
}

START_TEST(test_empty_run)
{
    struct lg_summary s;
    memset(&s, 0xff, sizeof s);
    ck_assert_int_eq(lg_summarize(NULL, 0, 1.0, &s), 0);
    expect_zero(&s);
    ck_assert_double_eq(s.seconds, 1.0);

    struct lg_rec r[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(lg_rec_init(&r[i]), 0);
    }
    memset(&s, 0xff, sizeof s);
    ck_assert_int_eq(lg_summarize(r, 3, 2.0, &s), 0);
    expect_zero(&s);
    /* Only failures: counted, but no sample and no rate. */
    lg_rec_add(&r[1], MS, ENOENT);
    ck_assert_int_eq(lg_summarize(r, 3, 2.0, &s), 0);
    ck_assert_uint_eq(s.ops, 1);
    ck_assert_uint_eq(s.errors, 1);
    ck_assert_uint_eq(s.samples, 0);
    ck_assert_double_eq(s.ops_per_s, 0);
    expect(&s, 0, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        lg_rec_close(&r[i]);
    }
    /* A closed record is empty and may be summarized or re-initialised. */
    ck_assert_uint_eq(r[0].lat_len, 0);
    ck_assert_ptr_null(r[0].lat_ns);
    ck_assert_int_eq(lg_summarize(r, 1, 1.0, &s), 0);
    ck_assert_int_eq(lg_rec_init(&r[0]), 0);
    ck_assert_uint_eq(r[0].ops, 0);
    lg_rec_close(&r[0]);
}
END_TEST

START_TEST(test_rec_grows)
{
    /* Past the initial capacity (4096) twice; every sample is kept, in
     * order, and lands in the summary. */
    enum { N = 10000 };
    struct lg_rec r;
    struct lg_summary s;
    ck_assert_int_eq(lg_rec_init(&r), 0);
    size_t cap0 = r.lat_cap;
    ck_assert_uint_lt(cap0, N);
    for (uint64_t i = 0; i < N; i++) {
        ck_assert_int_eq(lg_rec_add(&r, (N - i) * MS, 0), 0);
    }
    ck_assert_uint_eq(r.lat_len, N);
    ck_assert_uint_ge(r.lat_cap, N);
    ck_assert_uint_eq(r.ops, N);
    for (uint64_t i = 0; i < N; i++) {
        ck_assert_uint_eq(r.lat_ns[i], (N - i) * MS);
    }
    summarize(&r, 1, &s);
    ck_assert_uint_eq(s.samples, N);
    expect(&s, 5000, 9000, 9900, 10000, 5000.5);
    lg_rec_close(&r);
}
END_TEST

/* --- the report --------------------------------------------------------- */

/* Runs lg_report with stdout redirected into a temporary file (unlinked
 * already, so nothing is left behind) and returns what it printed; the
 * caller frees it. */
static char *report_text(const struct lg_summary *s, const char *label)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(tmp), STDOUT_FILENO), 0);
    lg_report(s, label, "write", 4, 3, 20, 100);
    fflush(stdout);
    ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
    close(saved);
    long len = ftell(tmp);
    ck_assert_int_gt(len, 0);
    rewind(tmp);
    char *text = calloc(1, (size_t)len + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    return text;
}

/* The JSON of the one line of text that starts with "LOADGEN_RESULT ",
 * which must be the last line; copied. */
static char *json_line(const char *text)
{
    const char *json = NULL;
    int n = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        ck_assert_ptr_nonnull(strchr(line, '\n')); /* ends with a newline */
        if (strncmp(line, "LOADGEN_RESULT ", 15) == 0) {
            json = line + 15;
            n++;
        }
    }
    ck_assert_int_eq(n, 1);
    const char *end = strchr(json, '\n');
    ck_assert_str_eq(end, "\n"); /* the last line */
    return strndup(json, (size_t)(end - json));
}

/* A minimal JSON checker for the values the report prints: objects,
 * strings and numbers. Returns the end of the value at p, or NULL. */
static const char *json_value(const char *p);

static const char *json_string(const char *p)
{
    if (*p++ != '"') {
        return NULL;
    }
    for (;;) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"') {
            return p;
        }
        if (c < 0x20) {
            return NULL; /* includes the end of the text */
        }
        if (c != '\\') {
            continue;
        }
        c = (unsigned char)*p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++, p++) {
                if (!strchr("0123456789abcdefABCDEF", *p) || *p == '\0') {
                    return NULL;
                }
            }
        } else if (c == '\0' || !strchr("\"\\/bfnrt", c)) {
            return NULL;
        }
    }
}

static const char *json_digits(const char *p)
{
    const char *q = p;
    while (*q >= '0' && *q <= '9') {
        q++;
    }
    return q == p ? NULL : q;
}

static const char *json_number(const char *p)
{
    if (*p == '-') {
        p++;
    }
    if (*p == '0') {
        p++;
    } else if ((p = json_digits(p)) == NULL) {
        return NULL;
    }
    if (*p == '.' && (p = json_digits(p + 1)) == NULL) {
        return NULL;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        p = json_digits(p);
    }
    return p;
}

static const char *json_object(const char *p)
{
    if (*p++ != '{') {
        return NULL;
    }
    if (*p == '}') {
        return p + 1;
    }
    for (;;) {
        if ((p = json_string(p)) == NULL || *p++ != ':' ||
            (p = json_value(p)) == NULL) {
            return NULL;
        }
        if (*p == '}') {
            return p + 1;
        }
        if (*p++ != ',') {
            return NULL;
        }
    }
}

static const char *json_value(const char *p)
{
    switch (*p) {
    case '{':
        return json_object(p);
    case '"':
        return json_string(p);
    default:
        return json_number(p);
    }
}

static void expect_valid_json(const char *json)
{
    const char *end = json_value(json);
    ck_assert_msg(end != NULL && *end == '\0' && json[0] == '{',
                  "not a JSON object: %s", json);
}

START_TEST(test_json_checker)
{
    /* The checker itself refuses what the unescaped report printed. */
    expect_valid_json("{\"a\":\"x\\\"y\\\\z\\u0001\",\"b\":{\"c\":1.5},"
                      "\"d\":{}}");
    ck_assert_ptr_null(json_value("{\"label\":\"a\"b\"}"));
    ck_assert_ptr_null(json_value("{\"label\":\"a\\b\\c\"}"));
    ck_assert_ptr_null(json_value("{\"label\":\"a\x01\"}"));
    ck_assert_ptr_null(json_value("{\"a\":1,}"));
    ck_assert_ptr_null(json_value("{\"a\":\"\\u00g1\"}"));
}
END_TEST

START_TEST(test_report_json_exact)
{
    struct lg_rec r;
    struct lg_summary s;
    ck_assert_int_eq(lg_rec_init(&r), 0);
    const unsigned v[] = {3, 1, 2, 4};
    for (size_t i = 0; i < 4; i++) {
        lg_rec_add(&r, (uint64_t)v[i] * MS, 0);
    }
    lg_rec_add(&r, MS, ENOENT);
    lg_rec_add(&r, MS, ENOENT);
    lg_rec_add(&r, MS, EEXIST);
    lg_rec_add(&r, MS, 150);
    lg_rec_add(&r, MS, 1000);
    r.bytes = 400;
    ck_assert_int_eq(lg_summarize(&r, 1, 2.0, &s), 0);
    char *text = report_text(&s, "t1");
    char *json = json_line(text);
    ck_assert_str_eq(json,
                     "{\"label\":\"t1\",\"workload\":\"write\",\"workers\":4,"
                     "\"dirs\":3,\"keys\":20,\"value_size\":100,\"ops\":9,"
                     "\"errors\":5,\"seconds\":2.000,\"ops_per_s\":2.0,"
                     "\"mean_ms\":2.500,\"p50_ms\":2.000,\"p90_ms\":4.000,"
                     "\"p99_ms\":4.000,\"max_ms\":4.000,\"errno\":{"
                     "\"ENOENT\":2,\"EEXIST\":1,\"errno150\":1,\"other\":1}}");
    expect_valid_json(json);
    ck_assert_ptr_nonnull(strstr(text, "t1 write: 4 workers over 3 dir(s), "
                                       "20 keys, 100-byte values\n"));
    ck_assert_ptr_nonnull(strstr(text, "  errors ENOENT: 2\n"));
    free(json);
    free(text);
    lg_rec_close(&r);
}
END_TEST

/* The JSON line of a report labelled `label` is valid and contains
 * `want`. */
static void expect_label_json(const struct lg_summary *s, const char *label,
                              const char *want)
{
    char *text = report_text(s, label);
    char *json = json_line(text);
    expect_valid_json(json);
    ck_assert_msg(strstr(json, want) != NULL, "no %s in %s", want, json);
    free(json);
    free(text);
}

START_TEST(test_report_json_escapes_label)
{
    struct lg_summary s;
    ck_assert_int_eq(lg_summarize(NULL, 0, 1.0, &s), 0);
    char *text = report_text(&s, "say \"hi\" C:\\tmp\x01\n\tend");
    char *json = json_line(text);
    expect_valid_json(json);
    ck_assert_msg(strncmp(json,
                          "{\"label\":\"say \\\"hi\\\" C:\\\\tmp\\u0001"
                          "\\u000a\\u0009end\",\"workload\":\"write\",",
                          strlen("{\"label\":\"say \\\"hi\\\" C:\\\\tmp"
                                 "\\u0001\\u000a\\u0009end\","
                                 "\"workload\":\"write\",")) == 0,
                  "label not escaped: %s", json);
    /* An empty run reports zeros. */
    ck_assert_ptr_nonnull(strstr(json, "\"ops\":0,\"errors\":0,\"seconds\":"
                                       "1.000,\"ops_per_s\":0.0,\"mean_ms\":"
                                       "0.000,\"p50_ms\":0.000,"));
    ck_assert_ptr_nonnull(strstr(json, "\"errno\":{}}"));
    /* The human line shows the control characters as '?', so the newline
     * in the label does not start a line of its own. */
    ck_assert_ptr_nonnull(strstr(text, "say \"hi\" C:\\tmp???end write: "));
    free(json);
    free(text);

    /* A label that forges a result line stays inside the one real line. */
    expect_label_json(&s, "x\nLOADGEN_RESULT {}",
                      "{\"label\":\"x\\u000aLOADGEN_RESULT {}\",");
    /* Empty and non-ASCII (UTF-8) labels. */
    expect_label_json(&s, "", "{\"label\":\"\",\"workload\"");
    expect_label_json(&s, "caf\xc3\xa9", "{\"label\":\"caf\xc3\xa9\",");
}
END_TEST

static Suite *loadgen_stats_suite(void)
{
    Suite *s = suite_create("loadgen_stats");
    TCase *tc = tcase_create("percentiles");
    tcase_add_test(tc, test_pct_one_sample);
    tcase_add_test(tc, test_pct_ten);
    tcase_add_test(tc, test_pct_hundred_and_thousand);
    tcase_add_test(tc, test_pct_rounds_up);
    tcase_add_test(tc, test_pct_merged_records);
    tcase_add_test(tc, test_rank);
    suite_add_tcase(s, tc);
    tc = tcase_create("counts");
    tcase_add_test(tc, test_errors_by_errno);
    tcase_add_test(tc, test_ops_per_s);
    tcase_add_test(tc, test_empty_run);
    tcase_add_test(tc, test_rec_grows);
    suite_add_tcase(s, tc);
    tc = tcase_create("report");
    tcase_add_test(tc, test_json_checker);
    tcase_add_test(tc, test_report_json_exact);
    tcase_add_test(tc, test_report_json_escapes_label);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(loadgen_stats_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
