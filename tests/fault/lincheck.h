/* Linearizability checker for raftfs client histories (Wing-Gong/Lowe). */
#ifndef RAFTFS_FAULT_LINCHECK_H
#define RAFTFS_FAULT_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The model: every key is an independent register that is either absent or
 * holds a string. Operations and what an ok result asserts:
 *
 *   r  read      out "~": absent at the linearization point; "=V": held V
 *   w  write V   state := V
 *   d  delete    out "=": the key existed and is now absent;
 *                out "~": ENOENT, the key was absent (no change)
 *   x  create V  (O_EXCL) out "~": it was absent, state := V;
 *                out "=": EEXIST, it was present (no change)
 *   a  append V  state := (state or "") + V
 *
 * Results: ok (took effect once, between invoke and complete), fail (surely
 * did not take effect: dropped from the search), unknown (a timeout: it may
 * have taken effect at any time after its invoke, or never; its
 * completion is +infinity and its output is not known), maybe (it took
 * effect once between invoke and complete, or not at all; its output is
 * not known: an op that ended with an error that does not tell).
 *
 * History text format, one operation per line (blank lines and '#' comments
 * are skipped):
 *
 *   PROC INVOKE_US COMPLETE_US KIND KEY ARG RESULT OUT
 *   3 1700000000000123 1700000000004567 w k7 =w3.12 ok -
 *
 * ARG and OUT are "-" (none), "~" (absent) or "=" followed by the value
 * (values hold no whitespace; "=" alone is the empty string).
 */

enum fault_op_kind {
    FAULT_OP_READ,
    FAULT_OP_WRITE,
    FAULT_OP_DELETE,
    FAULT_OP_CREATE,
    FAULT_OP_APPEND,
};

enum fault_result {
    FAULT_RES_OK,
    FAULT_RES_FAIL,
    FAULT_RES_UNKNOWN,
    FAULT_RES_MAYBE,
};

#define FAULT_TIME_INF INT64_MAX

struct fault_op {
    int proc;
    enum fault_op_kind kind;
    enum fault_result result;
    int64_t invoke;   /* microseconds */
    int64_t complete; /* microseconds; ignored (+inf) when unknown */
    char *key;        /* owned by the history */
    char *arg;        /* written/created/appended value, else NULL; owned */
    bool out_present; /* see the table above (ok results only) */
    char *out;        /* the value a read saw when out_present; owned */
    size_t line;      /* line number in the source file (0 if none) */
};

/* A growable array of operations; owns every string in them. */
struct fault_history {
    struct fault_op *ops;
    size_t n;
    size_t cap;
};

/* Search limits. A search that exceeds them gives FAULT_VERDICT_UNKNOWN. */
struct fault_check_opts {
    uint64_t max_steps;       /* model steps per key; 0 = 50,000,000 */
    uint64_t max_cache_bytes; /* memo table size per key; 0 = 1 GiB */
};

enum fault_verdict {
    FAULT_VERDICT_OK = 1,      /* linearizable */
    FAULT_VERDICT_BAD = 0,     /* not linearizable */
    FAULT_VERDICT_UNKNOWN = -1 /* the search ran out of budget */
};

/* The outcome of checking one key. All index arrays are indexes into the
 * ops array given to fault_check_key and are owned by the result. */
struct fault_key_result {
    enum fault_verdict verdict;
    uint64_t steps;      /* model steps taken */
    size_t n_ops;        /* operations considered (fail/unknown reads dropped) */
    /* On FAULT_VERDICT_BAD: the longest linearizable prefix found. */
    size_t *prefix;      /* ops in linearization order */
    size_t n_prefix;
    char *prefix_state;  /* value after the prefix; NULL = absent; owned */
    size_t blocking;     /* the op that could not be linearized in time */
    size_t *pending;     /* ops invoked before the blocking op completed and
                          * not in the prefix (the blocking op included) */
    size_t n_pending;
};

/* Initializes an empty history. Returns 0. */
int fault_history_init(struct fault_history *h);

/* Frees every operation and string of h. */
void fault_history_close(struct fault_history *h);

/* Appends a copy of op (its strings are copied; the caller keeps its own).
 * Returns 0 or -ENOMEM. */
int fault_history_add(struct fault_history *h, const struct fault_op *op);

/* Parses one line of the text format and appends it (comments and blank
 * lines append nothing). line is not modified. Returns 0, -EINVAL on a
 * malformed line, -ENOMEM. */
int fault_history_parse_line(struct fault_history *h, const char *line,
                             size_t lineno);

/* Reads a whole file of lines. On -EINVAL, *bad_line is the line number.
 * Returns 0, -EINVAL, -ENOMEM or -errno of a read error. */
int fault_history_load(struct fault_history *h, FILE *f, size_t *bad_line);

/* Checks the operations ops[0..n) (all of one key) for linearizability.
 * ops is borrowed for the call. res is filled (free it with
 * fault_key_result_close). Returns 0 or -ENOMEM. */
int fault_check_key(const struct fault_op *ops, size_t n,
                    const struct fault_check_opts *opts,
                    struct fault_key_result *res);

/* Frees what fault_check_key allocated in res. */
void fault_key_result_close(struct fault_key_result *res);

/* Totals of a whole-history check. */
struct fault_check_summary {
    size_t keys;
    size_t keys_bad;
    size_t keys_unknown;
    size_t ops;
    uint64_t steps;
};

/* Partitions h by key (P-compositionality: a history is linearizable iff
 * every key's sub-history is), checks each key, and writes a report to out
 * (NULL: silent): per bad key, the longest linearizable prefix's last ops
 * and the ops that could not be placed. Returns the overall verdict (BAD if
 * any key is bad, else UNKNOWN if any search gave up, else OK), or -ENOMEM.
 */
int fault_check_history(const struct fault_history *h,
                        const struct fault_check_opts *opts, FILE *out,
                        struct fault_check_summary *sum);

/* Writes one op as a readable line (times relative to t0 in ms). */
void fault_op_print(FILE *out, const struct fault_op *op, int64_t t0);

#endif /* RAFTFS_FAULT_LINCHECK_H */
