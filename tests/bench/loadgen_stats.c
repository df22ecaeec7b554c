/* Latency records, percentiles and the report of the load generator. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

int lg_rec_init(struct lg_rec *r)
{
    memset(r, 0, sizeof *r);
    r->lat_cap = 4096;
    r->lat_ns = malloc(r->lat_cap * sizeof *r->lat_ns);
    if (r->lat_ns == NULL) {
        r->lat_cap = 0;
        return -ENOMEM;
    }
    return 0;
}

void lg_rec_close(struct lg_rec *r)
{
    free(r->lat_ns);
    r->lat_ns = NULL;
    r->lat_len = r->lat_cap = 0;
}

int lg_rec_add(struct lg_rec *r, uint64_t ns, int err)
{
    r->ops++;
    if (err != 0) {
        r->errors++;
        r->errs[err > 0 && err < LG_MAX_ERRNO ? err : LG_MAX_ERRNO]++;
        return 0;
    }
    if (r->lat_len == r->lat_cap) {
        size_t cap = r->lat_cap ? r->lat_cap * 2 : 4096;
        uint64_t *p = realloc(r->lat_ns, cap * sizeof *p);
        if (p == NULL) {
            return -ENOMEM;
        }
        r->lat_ns = p;
        r->lat_cap = cap;
    }
    r->lat_ns[r->lat_len++] = ns;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t lg_rank(uint64_t n, unsigned pct)
{
    if (n == 0) {
        return 0;
    }
    if (pct > 100) {
        pct = 100;
    }
    /* ceil(pct * n / 100) in integers, split so that pct * n cannot
     * overflow: n = 100q + r. Floating point is off by one from n = 10^11
     * on (0.9 * 1e11 + 0.999999 truncates to 90000000001). */
    uint64_t q = n / 100, r = n % 100;
    uint64_t rank = q * pct + (r * pct + 99) / 100;
    return rank < 1 ? 1 : rank > n ? n : rank;
}

/* Nearest-rank percentile of a sorted array, in milliseconds. */
static double pct_ms(const uint64_t *v, size_t n, unsigned pct)
{
    if (n == 0) {
        return 0;
    }
    return (double)v[lg_rank(n, pct) - 1] / 1e6;
}

int lg_summarize(struct lg_rec *recs, size_t n, double seconds,
                 struct lg_summary *s)
{
    memset(s, 0, sizeof *s);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += recs[i].lat_len;
    }
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL) {
        return -ENOMEM;
    }
    size_t k = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const struct lg_rec *r = &recs[i];
        if (r->lat_len > 0) { /* lat_ns is NULL in a closed record */
            memcpy(all + k, r->lat_ns, r->lat_len * sizeof *all);
            k += r->lat_len;
        }
        s->ops += r->ops;
        s->errors += r->errors;
        s->bytes += r->bytes;
        for (size_t e = 0; e <= LG_MAX_ERRNO; e++) {
            s->errs[e] += r->errs[e];
        }
        for (size_t j = 0; j < r->lat_len; j++) {
            sum += (double)r->lat_ns[j];
        }
    }
    qsort(all, total, sizeof *all, cmp_u64);
    s->samples = total;
    s->seconds = seconds;
    s->ops_per_s = seconds > 0 ? (double)(s->ops - s->errors) / seconds : 0;
    s->mean_ms = total ? sum / (double)total / 1e6 : 0;
    s->p50_ms = pct_ms(all, total, 50);
    s->p90_ms = pct_ms(all, total, 90);
    s->p99_ms = pct_ms(all, total, 99);
    s->max_ms = total ? (double)all[total - 1] / 1e6 : 0;
    free(all);
    return 0;
}

/* Symbolic name of an errno for the report ("EIO"), or its number. */
static const char *errno_name(size_t e, char *buf, size_t len)
{
    static const struct {
        int e;
        const char *name;
    } names[] = {
        {EPERM, "EPERM"},   {ENOENT, "ENOENT"},     {EIO, "EIO"},
        {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"},     {EACCES, "EACCES"},
        {EBUSY, "EBUSY"},   {EEXIST, "EEXIST"},     {ENOTDIR, "ENOTDIR"},
        {EISDIR, "EISDIR"}, {EINVAL, "EINVAL"},     {ENOSPC, "ENOSPC"},
        {EROFS, "EROFS"},   {ENOTCONN, "ENOTCONN"}, {ETIMEDOUT, "ETIMEDOUT"},
        {EINTR, "EINTR"},   {ENAMETOOLONG, "ENAMETOOLONG"},
        {ENOTEMPTY, "ENOTEMPTY"}, {EMFILE, "EMFILE"}, {EFBIG, "EFBIG"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((size_t)names[i].e == e) {
            return names[i].name;
        }
    }
    if (e == LG_MAX_ERRNO) {
        return "other";
    }
    snprintf(buf, len, "errno%zu", e);
    return buf;
}

/* Prints str as the contents of a JSON string: quote and backslash
 * escaped, control characters as \u00XX; other bytes as they are. */
static void json_str(FILE *f, const char *str)
{
    for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
        if (*c == '"' || *c == '\\') {
            fprintf(f, "\\%c", *c);
        } else if (*c < 0x20) {
            fprintf(f, "\\u%04x", *c);
        } else {
            fputc(*c, f);
        }
    }
}

/* Prints str for the human report: a control character in a label (a
 * newline) would otherwise start a line of its own, even a forged
 * "LOADGEN_RESULT" line. */
static void plain_str(FILE *f, const char *str)
{
    for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
        fputc(*c < 0x20 ? '?' : *c, f);
    }
}

void lg_report(const struct lg_summary *s, const char *label,
               const char *workload, unsigned workers, unsigned ndirs,
               unsigned keys, unsigned value_size)
{
    char buf[32];
    plain_str(stdout, label);
    printf("%s%s: %u workers over %u dir(s), %u keys, %u-byte values\n",
           *label ? " " : "", workload, workers, ndirs, keys, value_size);
    printf("  %llu ops (%llu errors) in %.3f s: %.1f ops/s, %.2f MB/s\n",
           (unsigned long long)s->ops, (unsigned long long)s->errors,
           s->seconds, s->ops_per_s,
           s->seconds > 0 ? (double)s->bytes / s->seconds / 1e6 : 0.0);
    printf("  latency ms (closed loop, successful ops): mean %.3f p50 %.3f "
           "p90 %.3f p99 %.3f max %.3f\n",
           s->mean_ms, s->p50_ms, s->p90_ms, s->p99_ms, s->max_ms);
    for (size_t e = 0; e <= LG_MAX_ERRNO; e++) {
        if (s->errs[e]) {
            printf("  errors %s: %llu\n", errno_name(e, buf, sizeof buf),
                   (unsigned long long)s->errs[e]);
        }
    }
    printf("LOADGEN_RESULT {\"label\":\"");
    json_str(stdout, label);
    printf("\",\"workload\":\"");
    json_str(stdout, workload);
    printf("\",\"workers\":%u,\"dirs\":%u,\"keys\":%u,\"value_size\":%u,"
           "\"ops\":%llu,\"errors\":%llu,\"seconds\":%.3f,"
           "\"ops_per_s\":%.1f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,"
           "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errno\":{",
           workers, ndirs, keys, value_size,
           (unsigned long long)s->ops, (unsigned long long)s->errors,
           s->seconds, s->ops_per_s, s->mean_ms, s->p50_ms, s->p90_ms,
           s->p99_ms, s->max_ms);
    const char *sep = "";
    for (size_t e = 0; e <= LG_MAX_ERRNO; e++) {
        if (s->errs[e]) {
            printf("%s\"%s\":%llu", sep, errno_name(e, buf, sizeof buf),
                   (unsigned long long)s->errs[e]);
            sep = ",";
        }
    }
    printf("}}\n");
    fflush(stdout);
}
