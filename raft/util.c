/* Small helpers of the core: errors, trace lines, PRNG, output queues. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

const char *raft_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define RAFT_ERR_CASE(name, num, text)                                         \
    case RAFT_ERR_##name:                                                      \
        return text;
        RAFT_ERRORS(RAFT_ERR_CASE)
#undef RAFT_ERR_CASE
    default:
        break;
    }
    if (rv < 0 && rv > -1000) {
        return strerror(-rv);
    }
    return "unknown error";
}

void raft__trace(struct raft *r, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    if (r->o.trace == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->o.trace(r->o.trace_data, r->o.id, line);
}

/* splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough. */
uint64_t raft__rand(struct raft *r)
{
    uint64_t z = (r->prng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct raft_message *raft__send(struct raft *r, uint8_t type, raft_id to,
                                bool after_persist)
{
    struct raft__msgs *q;
    struct raft_message *m;
    /* Anything sent while a term/vote change is pending must wait for it to
     * be durable: a vote request or a reply at a term we could forget. */
    if (r->hs_dirty) {
        after_persist = true;
    }
    q = after_persist ? &r->out_after : &r->out;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        struct raft_message *v = realloc(q->v, cap * sizeof *v);
        if (v == NULL) {
            r->nomem = RAFT_ERR_NOMEM;
            return NULL;
        }
        q->v = v;
        q->cap = cap;
    }
    m = &q->v[q->n++];
    memset(m, 0, sizeof *m);
    m->type = type;
    m->from = r->o.id;
    m->to = to;
    m->term = r->term;
    return m;
}

void raft__msgs_close(struct raft__msgs *q)
{
    size_t i;
    for (i = 0; i < q->n; i++) {
        raft_message_close(&q->v[i]);
    }
    free(q->v);
    q->v = NULL;
    q->n = q->cap = 0;
}

void raft__emit_read(struct raft *r, uint64_t ctx, raft_index index,
                     int status)
{
    if (r->n_out_reads == r->cap_out_reads) {
        size_t cap = r->cap_out_reads ? r->cap_out_reads * 2 : 16;
        struct raft_read_state *v = realloc(r->out_reads, cap * sizeof *v);
        if (v == NULL) {
            r->nomem = RAFT_ERR_NOMEM;
            return;
        }
        r->out_reads = v;
        r->cap_out_reads = cap;
    }
    r->out_reads[r->n_out_reads].ctx = ctx;
    r->out_reads[r->n_out_reads].index = index;
    r->out_reads[r->n_out_reads].status = status;
    r->n_out_reads++;
}

int raft__copy_entry(struct raft_entry *dst, const struct raft_entry *src)
{
    *dst = *src;
    dst->data.base = NULL;
    if (src->data.len > 0) {
        dst->data.base = malloc(src->data.len);
        if (dst->data.base == NULL) {
            dst->data.len = 0;
            return RAFT_ERR_NOMEM;
        }
        memcpy(dst->data.base, src->data.base, src->data.len);
    }
    return 0;
}

void raft_message_close(struct raft_message *m)
{
    size_t i;
    if (m == NULL) {
        return;
    }
    switch (m->type) {
    case RAFT_MSG_APPEND:
        for (i = 0; i < m->append.n_entries; i++) {
            free(m->append.entries[i].data.base);
        }
        free(m->append.entries);
        m->append.entries = NULL;
        m->append.n_entries = 0;
        break;
    case RAFT_MSG_SNAPSHOT:
        free(m->snapshot.data.base);
        m->snapshot.data.base = NULL;
        m->snapshot.data.len = 0;
        break;
    default:
        break;
    }
}
