/* Client histories of the fault tests: the text format, parsing, printing. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

int fault_history_init(struct fault_history *h)
{
    h->ops = NULL;
    h->n = 0;
    h->cap = 0;
    return 0;
}

static void op_free(struct fault_op *op)
{
    free(op->key);
    free(op->arg);
    free(op->out);
}

void fault_history_close(struct fault_history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        op_free(&h->ops[i]);
    }
    free(h->ops);
    h->ops = NULL;
    h->n = h->cap = 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    if (d == NULL) {
        *oom = true;
    }
    return d;
}

int fault_history_add(struct fault_history *h, const struct fault_op *op)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 256;
        struct fault_op *ops = realloc(h->ops, cap * sizeof *ops);
        if (ops == NULL) {
            return -ENOMEM;
        }
        h->ops = ops;
        h->cap = cap;
    }
    bool oom = false;
    struct fault_op *d = &h->ops[h->n];
    *d = *op;
    d->key = dup_or_null(op->key, &oom);
    d->arg = dup_or_null(op->arg, &oom);
    d->out = dup_or_null(op->out, &oom);
    if (oom) {
        op_free(d);
        return -ENOMEM;
    }
    if (d->result == FAULT_RES_UNKNOWN) {
        d->complete = FAULT_TIME_INF;
    }
    h->n++;
    return 0;
}

static int parse_kind(const char *s, enum fault_op_kind *kind)
{
    if (strlen(s) != 1) {
        return -EINVAL;
    }
    switch (s[0]) {
    case 'r': *kind = FAULT_OP_READ; return 0;
    case 'w': *kind = FAULT_OP_WRITE; return 0;
    case 'd': *kind = FAULT_OP_DELETE; return 0;
    case 'x': *kind = FAULT_OP_CREATE; return 0;
    case 'a': *kind = FAULT_OP_APPEND; return 0;
    default: return -EINVAL;
    }
}

static int parse_result(const char *s, enum fault_result *res)
{
    if (strcmp(s, "ok") == 0) {
        *res = FAULT_RES_OK;
    } else if (strcmp(s, "fail") == 0) {
        *res = FAULT_RES_FAIL;
    } else if (strcmp(s, "unknown") == 0) {
        *res = FAULT_RES_UNKNOWN;
    } else if (strcmp(s, "maybe") == 0) {
        *res = FAULT_RES_MAYBE;
    } else {
        return -EINVAL;
    }
    return 0;
}

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return -EINVAL;
    }
    *v = x;
    return 0;
}

#define MAX_FIELDS 8

int fault_history_parse_line(struct fault_history *h, const char *line,
                             size_t lineno)
{
    char *copy = strdup(line);
    if (copy == NULL) {
        return -ENOMEM;
    }
    char *f[MAX_FIELDS + 1];
    size_t nf = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, " \t\r\n", &save); t != NULL;
         t = strtok_r(NULL, " \t\r\n", &save)) {
        if (nf == 0 && t[0] == '#') {
            break;
        }
        if (nf == MAX_FIELDS) {
            nf++;
            break;
        }
        f[nf++] = t;
    }
    int rv = 0;
    if (nf == 0) {
        goto out;
    }
    rv = -EINVAL;
    if (nf != MAX_FIELDS) {
        goto out;
    }
    struct fault_op op = {.line = lineno};
    int64_t proc;
    if (parse_i64(f[0], &proc) != 0 || parse_i64(f[1], &op.invoke) != 0 ||
        parse_i64(f[2], &op.complete) != 0 ||
        parse_kind(f[3], &op.kind) != 0 || parse_result(f[6], &op.result) != 0) {
        goto out;
    }
    op.proc = (int)proc;
    op.key = f[4];
    /* ARG: a value for w/x/a, "-" otherwise. */
    bool wants_arg = op.kind == FAULT_OP_WRITE || op.kind == FAULT_OP_CREATE ||
                     op.kind == FAULT_OP_APPEND;
    if (wants_arg) {
        if (f[5][0] != '=') {
            goto out;
        }
        op.arg = f[5] + 1;
    } else if (strcmp(f[5], "-") != 0) {
        goto out;
    }
    /* OUT: required for ok reads, deletes and creates. */
    bool wants_out = op.result == FAULT_RES_OK &&
                     (op.kind == FAULT_OP_READ || op.kind == FAULT_OP_DELETE ||
                      op.kind == FAULT_OP_CREATE);
    if (f[7][0] == '~' && f[7][1] == '\0') {
        op.out_present = false;
    } else if (f[7][0] == '=') {
        op.out_present = true;
        if (op.kind == FAULT_OP_READ) {
            op.out = f[7] + 1;
        }
    } else if (strcmp(f[7], "-") == 0) {
        if (wants_out) {
            goto out;
        }
    } else {
        goto out;
    }
    if (op.result != FAULT_RES_UNKNOWN && op.complete < op.invoke) {
        goto out;
    }
    rv = fault_history_add(h, &op);
out:
    free(copy);
    return rv;
}

int fault_history_load(struct fault_history *h, FILE *f, size_t *bad_line)
{
    char *line = NULL;
    size_t cap = 0;
    size_t lineno = 0;
    int rv = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        rv = fault_history_parse_line(h, line, lineno);
        if (rv != 0) {
            if (bad_line != NULL) {
                *bad_line = lineno;
            }
            break;
        }
    }
    if (rv == 0 && ferror(f)) {
        rv = -EIO;
    }
    free(line);
    return rv;
}

static const char *kind_name(enum fault_op_kind k)
{
    switch (k) {
    case FAULT_OP_READ: return "read";
    case FAULT_OP_WRITE: return "write";
    case FAULT_OP_DELETE: return "delete";
    case FAULT_OP_CREATE: return "create";
    case FAULT_OP_APPEND: return "append";
    }
    return "?";
}

static const char *result_name(enum fault_result r)
{
    switch (r) {
    case FAULT_RES_OK: return "ok";
    case FAULT_RES_FAIL: return "fail";
    case FAULT_RES_UNKNOWN: return "unknown";
    case FAULT_RES_MAYBE: return "maybe";
    }
    return "?";
}

void fault_op_print(FILE *out, const struct fault_op *op, int64_t t0)
{
    double inv = (double)(op->invoke - t0) / 1000.0;
    fprintf(out, "    line %zu  p%d  [%.1f ms .. ", op->line, op->proc, inv);
    if (op->result == FAULT_RES_UNKNOWN) {
        fprintf(out, "inf)");
    } else {
        fprintf(out, "%.1f ms]", (double)(op->complete - t0) / 1000.0);
    }
    fprintf(out, "  %s %s", kind_name(op->kind), op->key);
    if (op->arg != NULL) {
        fprintf(out, " \"%s\"", op->arg);
    }
    fprintf(out, " -> %s", result_name(op->result));
    if (op->result == FAULT_RES_OK) {
        switch (op->kind) {
        case FAULT_OP_READ:
            if (op->out_present) {
                fprintf(out, " \"%s\"", op->out);
            } else {
                fprintf(out, " (absent)");
            }
            break;
        case FAULT_OP_DELETE:
            fprintf(out, op->out_present ? " (deleted)" : " (ENOENT)");
            break;
        case FAULT_OP_CREATE:
            fprintf(out, op->out_present ? " (EEXIST)" : " (created)");
            break;
        default:
            break;
        }
    }
    fputc('\n', out);
}
