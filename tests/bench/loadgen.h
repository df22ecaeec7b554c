/* Load generator for raftfs mounts: per-worker latency records and the
 * report (ops/s, percentiles, errors by errno, one JSON line). */
#ifndef RAFTFS_BENCH_LOADGEN_H
#define RAFTFS_BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

/* errno values up to this bound are counted one by one; larger ones land in
 * the last slot. */
#define LG_MAX_ERRNO 160

/* What one worker measured. Latencies are of successful operations only
 * (an operation that failed is counted in errs[] and in ops). Owned by the
 * worker while it runs, by the report afterwards. */
struct lg_rec {
    uint64_t *lat_ns; /* owned; lat_len valid entries, lat_cap allocated */
    size_t lat_len;
    size_t lat_cap;
    uint64_t ops;                     /* attempted operations */
    uint64_t errors;                  /* failed operations */
    uint64_t errs[LG_MAX_ERRNO + 1];  /* failed operations by errno */
    uint64_t bytes;                   /* bytes read or written */
};

/* Initialises an empty record. Returns 0 or -ENOMEM. */
int lg_rec_init(struct lg_rec *r);

/* Frees the latency array; the record may be re-initialised. */
void lg_rec_close(struct lg_rec *r);

/* Records one operation: err is 0 for success (latency kept) or a positive
 * errno. Returns 0, or -ENOMEM when the latency array cannot grow (the
 * operation is still counted, its latency is dropped). */
int lg_rec_add(struct lg_rec *r, uint64_t ns, int err);

/* The summary of a run, computed from every worker's record. */
struct lg_summary {
    uint64_t ops, errors, bytes, samples;
    double seconds, ops_per_s;
    double mean_ms, p50_ms, p90_ms, p99_ms, max_ms;
    uint64_t errs[LG_MAX_ERRNO + 1];
};

/* Merges n records into s (the records are only read; a merged copy of
 * their latencies is sorted). seconds is the measured wall time. Returns 0
 * or -ENOMEM. */
int lg_summarize(struct lg_rec *recs, size_t n, double seconds,
                 struct lg_summary *s);

/* The nearest rank of percentile pct (0..100, larger is taken as 100) among
 * n sorted samples: ceil(pct * n / 100) clamped to [1, n], computed in
 * integers (exact for every n); 0 when n is 0. The percentile is the
 * rank'th smallest sample (1-based). */
uint64_t lg_rank(uint64_t n, unsigned pct);

/* Prints the human report and the JSON line ("LOADGEN_RESULT {...}") to
 * stdout. label/workload are copied into the output; any may be "", and
 * any byte may appear in them: the JSON line escapes '"', '\' and control
 * characters (\u00XX), the human report shows control characters as '?'.
 * Bytes from 0x80 up are copied as they are (valid JSON when the label is
 * UTF-8). */
void lg_report(const struct lg_summary *s, const char *label,
               const char *workload, unsigned workers, unsigned ndirs,
               unsigned keys, unsigned value_size);

#endif
