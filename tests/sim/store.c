/* The store fake: a node's durable state (hard state, log, snapshot). */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void sim_store_init(struct sim_store *st)
{
    memset(st, 0, sizeof(*st));
}

static void truncate_from(struct sim_store *st, size_t pos)
{
    for (size_t i = pos; i < st->n_log; i++) {
        free(st->log[i].data.base);
    }
    if (pos < st->n_log) {
        st->n_log = pos;
    }
}

void sim_store_close(struct sim_store *st)
{
    truncate_from(st, 0);
    free(st->log);
    free(st->snap);
    free(st->in_buf);
    memset(st, 0, sizeof(*st));
}

raft_index sim_store_last_index(const struct sim_store *st)
{
    if (st->n_log > 0) {
        return st->log[st->n_log - 1].index;
    }
    return st->snap_index;
}

const struct raft_entry *sim_store_entry(const struct sim_store *st,
                                         raft_index index)
{
    if (st->n_log == 0 || index < st->log[0].index) {
        return NULL;
    }
    raft_index off = index - st->log[0].index;
    return off < st->n_log ? &st->log[off] : NULL;
}

bool sim_store_holds(const struct sim_store *st, raft_index index,
                     raft_term term)
{
    const struct raft_entry *e = sim_store_entry(st, index);
    if (e != NULL) {
        return e->term == term;
    }
    if (index == st->snap_index) {
        return st->snap_term == term;
    }
    /* Covered by the snapshot: the snapshot's own consistency is checked
     * when it is installed (its registers against the model). */
    return index < st->snap_index;
}

int sim_store_append(struct sim_store *st, const struct raft_entry *e,
                     size_t n, char *why, size_t wlen)
{
    if (n == 0) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (e[i].index != e[i - 1].index + 1) {
            snprintf(why, wlen, "update entries not contiguous at %llu",
                     (unsigned long long)e[i].index);
            return -1;
        }
    }
    raft_index first = e[0].index;
    if (first == 0) {
        snprintf(why, wlen, "entry with index 0");
        return -1;
    }
    if (st->n_log > 0 && first >= st->log[0].index) {
        raft_index last = st->log[st->n_log - 1].index;
        if (first > last + 1) {
            snprintf(why, wlen,
                     "append at %llu leaves a gap after stored last %llu",
                     (unsigned long long)first, (unsigned long long)last);
            return -1;
        }
        truncate_from(st, (size_t)(first - st->log[0].index));
    } else if (st->n_log > 0) {
        /* Rewrites from below the first stored entry (below a compaction
         * point): the whole stored log goes. */
        truncate_from(st, 0);
    } else if (first > st->snap_index + 1) {
        snprintf(why, wlen, "append at %llu leaves a gap after snapshot %llu",
                 (unsigned long long)first,
                 (unsigned long long)st->snap_index);
        return -1;
    }
    if (st->n_log + n > st->cap_log) {
        size_t cap = st->cap_log ? st->cap_log : 64;
        while (cap < st->n_log + n) {
            cap *= 2;
        }
        st->log = realloc(st->log, cap * sizeof(*st->log));
        if (st->log == NULL) {
            abort();
        }
        st->cap_log = cap;
    }
    struct raft_entry *copy = sim_entries_copy(e, n);
    memcpy(&st->log[st->n_log], copy, n * sizeof(*copy));
    free(copy);
    st->n_log += n;
    return 0;
}

void sim_store_compact(struct sim_store *st, raft_index to)
{
    if (st->n_log == 0 || to < st->log[0].index) {
        return;
    }
    size_t k = (size_t)(to - st->log[0].index + 1);
    if (k > st->n_log) {
        k = st->n_log;
    }
    for (size_t i = 0; i < k; i++) {
        free(st->log[i].data.base);
    }
    memmove(st->log, st->log + k, (st->n_log - k) * sizeof(*st->log));
    st->n_log -= k;
}

static bool same_meta(const struct raft_snapshot_meta *a,
                      const struct raft_snapshot_meta *b)
{
    return a->index == b->index && a->term == b->term && a->size == b->size;
}

void sim_store_chunk(struct sim_store *st, const struct raft_snapshot_meta *m,
                     uint64_t offset, const struct raft_buf *data)
{
    if (!st->has_in || !same_meta(&st->in_meta, m)) {
        free(st->in_buf);
        st->in_buf = NULL;
        st->has_in = true;
        st->in_meta = *m;
        st->in_filled = 0;
        if (m->size > 0 && m->size < (1u << 24)) {
            st->in_buf = calloc(1, (size_t)m->size);
        }
    }
    if (st->in_buf == NULL || offset > m->size ||
        data->len > m->size - offset) {
        return; /* out of range: the install check reports it */
    }
    if (data->len > 0) {
        memcpy(st->in_buf + offset, data->base, data->len);
    }
    if (offset <= st->in_filled && offset + data->len > st->in_filled) {
        st->in_filled = offset + data->len;
    }
}

int sim_store_install(struct sim_store *st, const struct raft_snapshot_meta *m,
                      char *why, size_t wlen)
{
    if (!st->has_in || !same_meta(&st->in_meta, m)) {
        snprintf(why, wlen, "install of snapshot %llu/%llu never received",
                 (unsigned long long)m->index, (unsigned long long)m->term);
        return -1;
    }
    if (st->in_buf == NULL || st->in_filled != m->size) {
        snprintf(why, wlen, "install of snapshot %llu with %llu of %llu bytes",
                 (unsigned long long)m->index,
                 (unsigned long long)st->in_filled,
                 (unsigned long long)m->size);
        return -1;
    }
    free(st->snap);
    st->snap = st->in_buf;
    st->snap_len = (size_t)m->size;
    st->snap_index = m->index;
    st->snap_term = m->term;
    st->snap_config = m->config;
    st->in_buf = NULL;
    st->has_in = false;
    st->in_filled = 0;
    truncate_from(st, 0);
    return 0;
}

void sim_store_set_snapshot(struct sim_store *st, raft_index index,
                            raft_term term, const struct raft_config *c,
                            uint8_t *bytes, size_t len)
{
    free(st->snap);
    st->snap = bytes;
    st->snap_len = len;
    st->snap_index = index;
    st->snap_term = term;
    st->snap_config = *c;
}
