/* Whole-history check: partition by key, search each key, report anomalies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

/* Ops shown before the stuck point: enough context to read the anomaly. */
#define PREFIX_SHOWN 8
#define PENDING_SHOWN 24

static int by_key_then_invoke(const void *a, const void *b)
{
    const struct fault_op *x = *(const struct fault_op *const *)a;
    const struct fault_op *y = *(const struct fault_op *const *)b;
    int c = strcmp(x->key, y->key);
    if (c != 0) {
        return c;
    }
    if (x->invoke != y->invoke) {
        return x->invoke < y->invoke ? -1 : 1;
    }
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void report_bad(FILE *out, const struct fault_op *ops,
                       const struct fault_key_result *r, int64_t t0)
{
    const struct fault_op *b = &ops[r->blocking];
    fprintf(out, "NOT LINEARIZABLE: key %s (%zu ops)\n", b->key, r->n_ops);
    size_t from = r->n_prefix > PREFIX_SHOWN ? r->n_prefix - PREFIX_SHOWN : 0;
    fprintf(out, "  longest linearizable prefix: %zu ops; its last ones, in "
                 "linearization order:\n", r->n_prefix);
    for (size_t i = from; i < r->n_prefix; i++) {
        fault_op_print(out, &ops[r->prefix[i]], t0);
    }
    if (r->prefix_state != NULL) {
        fprintf(out, "  state after the prefix: \"%s\"\n", r->prefix_state);
    } else {
        fprintf(out, "  state after the prefix: absent\n");
    }
    fprintf(out, "  no order of these %zu pending ops explains the result "
                 "of the op marked *:\n", r->n_pending);
    size_t shown = 0;
    for (size_t i = 0; i < r->n_pending && shown < PENDING_SHOWN; i++) {
        size_t k = r->pending[i];
        /* Unknown ops from long ago add little; show them last if room. */
        fputs(k == r->blocking ? "  *" : "   ", out);
        fault_op_print(out, &ops[k], t0);
        shown++;
    }
    if (r->n_pending > shown) {
        fprintf(out, "    ... %zu more pending ops\n", r->n_pending - shown);
    }
}

int fault_check_history(const struct fault_history *h,
                        const struct fault_check_opts *opts, FILE *out,
                        struct fault_check_summary *sum)
{
    struct fault_check_summary s = {0};
    const struct fault_op **idx = malloc((h->n ? h->n : 1) * sizeof *idx);
    struct fault_op *sub = malloc((h->n ? h->n : 1) * sizeof *sub);
    if (idx == NULL || sub == NULL) {
        free(idx);
        free(sub);
        return -ENOMEM;
    }
    int64_t t0 = INT64_MAX;
    for (size_t i = 0; i < h->n; i++) {
        idx[i] = &h->ops[i];
        if (h->ops[i].invoke < t0) {
            t0 = h->ops[i].invoke;
        }
    }
    qsort(idx, h->n, sizeof *idx, by_key_then_invoke);
    int rv = 0;
    for (size_t i = 0; i < h->n;) {
        size_t j = i;
        while (j < h->n && strcmp(idx[j]->key, idx[i]->key) == 0) {
            sub[j - i] = *idx[j];
            j++;
        }
        struct fault_key_result r;
        rv = fault_check_key(sub, j - i, opts, &r);
        if (rv != 0) {
            fault_key_result_close(&r);
            break;
        }
        s.keys++;
        s.ops += r.n_ops;
        s.steps += r.steps;
        if (r.verdict == FAULT_VERDICT_BAD) {
            s.keys_bad++;
            if (out != NULL) {
                report_bad(out, sub, &r, t0);
            }
        } else if (r.verdict == FAULT_VERDICT_UNKNOWN) {
            s.keys_unknown++;
            if (out != NULL) {
                fprintf(out, "UNKNOWN: key %s (%zu ops): search gave up "
                             "after %llu steps\n", sub[0].key, r.n_ops,
                        (unsigned long long)r.steps);
            }
        }
        fault_key_result_close(&r);
        i = j;
    }
    free(idx);
    free(sub);
    if (sum != NULL) {
        *sum = s;
    }
    if (rv != 0) {
        return rv;
    }
    if (s.keys_bad > 0) {
        return FAULT_VERDICT_BAD;
    }
    return s.keys_unknown > 0 ? FAULT_VERDICT_UNKNOWN : FAULT_VERDICT_OK;
}
