/* In-memory Raft log: a ring buffer of the entries after the snapshot. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

void raft__log_init(struct raft__log *l, raft_index offset, raft_term term)
{
    memset(l, 0, sizeof *l);
    l->offset = offset;
    l->offset_term = term;
}

static struct raft_entry *slot(const struct raft__log *l, raft_index i)
{
    size_t k = (size_t)(i - l->offset - 1);
    return &l->ents[(l->head + k) & (l->cap - 1)];
}

void raft__log_close(struct raft__log *l)
{
    raft__log_reset(l, l->offset, l->offset_term);
    free(l->ents);
    l->ents = NULL;
    l->cap = 0;
}

raft_index raft__log_last(const struct raft__log *l)
{
    return l->offset + l->n;
}

raft_term raft__log_last_term(const struct raft__log *l)
{
    return l->n ? slot(l, l->offset + l->n)->term : l->offset_term;
}

raft_term raft__log_term(const struct raft__log *l, raft_index i)
{
    if (i == l->offset) {
        return l->offset_term;
    }
    if (i < l->offset || i > l->offset + l->n) {
        return 0;
    }
    return slot(l, i)->term;
}

const struct raft_entry *raft__log_get(const struct raft__log *l,
                                       raft_index i)
{
    if (i <= l->offset || i > l->offset + l->n) {
        return NULL;
    }
    return slot(l, i);
}

static int grow(struct raft__log *l)
{
    size_t cap = l->cap ? l->cap * 2 : 64;
    size_t k;
    struct raft_entry *v = malloc(cap * sizeof *v);
    if (v == NULL) {
        return RAFT_ERR_NOMEM;
    }
    for (k = 0; k < l->n; k++) {
        v[k] = l->ents[(l->head + k) & (l->cap - 1)];
    }
    free(l->ents);
    l->ents = v;
    l->cap = cap;
    l->head = 0;
    return 0;
}

int raft__log_append(struct raft__log *l, raft_term term, uint8_t type,
                     const void *data, size_t len)
{
    struct raft_entry *e;
    void *copy = NULL;
    /* Invariant: terms never decrease along the log (paper §5.3). */
    assert(term >= raft__log_last_term(l));
    if (l->n == l->cap && grow(l) != 0) {
        return RAFT_ERR_NOMEM;
    }
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL) {
            return RAFT_ERR_NOMEM;
        }
        memcpy(copy, data, len);
    }
    l->n++;
    e = slot(l, l->offset + l->n);
    e->term = term;
    e->index = l->offset + l->n;
    e->type = type;
    e->data.base = copy;
    e->data.len = len;
    return 0;
}

void raft__log_truncate(struct raft__log *l, raft_index from)
{
    assert(from > l->offset);
    while (l->offset + l->n >= from && l->n > 0) {
        struct raft_entry *e = slot(l, l->offset + l->n);
        free(e->data.base);
        e->data.base = NULL;
        l->n--;
    }
}

void raft__log_compact(struct raft__log *l, raft_index upto)
{
    assert(upto >= l->offset && upto <= l->offset + l->n);
    if (upto == l->offset) {
        return;
    }
    l->offset_term = slot(l, upto)->term;
    while (l->offset < upto) {
        struct raft_entry *e = &l->ents[l->head];
        free(e->data.base);
        e->data.base = NULL;
        l->head = (l->head + 1) & (l->cap - 1);
        l->n--;
        l->offset++;
    }
}

void raft__log_reset(struct raft__log *l, raft_index offset, raft_term term)
{
    if (l->n > 0) {
        raft__log_truncate(l, l->offset + 1);
    }
    l->head = 0;
    l->offset = offset;
    l->offset_term = term;
}

raft_index raft__log_first_of_term(const struct raft__log *l, raft_index i)
{
    raft_term t = raft__log_term(l, i);
    raft_index lo = l->offset + 1, hi = i;
    /* Terms never decrease along the log: binary search for the first index
     * in [lo, i] whose term is t. */
    while (lo < hi) {
        raft_index mid = lo + (hi - lo) / 2;
        if (slot(l, mid)->term < t) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

raft_index raft__log_last_of_term(const struct raft__log *l, raft_term t)
{
    raft_index lo = l->offset, hi = l->offset + l->n;
    /* Find the last index in [offset, last] with term <= t. */
    if (t < l->offset_term) {
        return 0;
    }
    while (lo < hi) {
        raft_index mid = lo + (hi - lo + 1) / 2;
        if (slot(l, mid)->term <= t) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return raft__log_term(l, lo) == t ? lo : 0;
}
