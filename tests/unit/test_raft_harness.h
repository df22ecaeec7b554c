/* In-test harness for the Raft core: a few nodes, messages delivered by
 * hand or until quiet, persistence that completes instantly. */
#ifndef TEST_RAFT_HARNESS_H
#define TEST_RAFT_HARNESS_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

#define H_MAX 8
#define H_ET 100 /* election timeout */
#define H_HB 10  /* heartbeat interval */

struct h_node {
    struct raft *r;
    bool up;
    /* What the node persisted (the store fake). */
    raft_term term;
    raft_id vote;
    struct raft_entry *log; /* stored entries, first at snap_index + 1 */
    size_t n_log;
    raft_index log_base; /* index before log[0] */
    raft_index snap_index;
    raft_term snap_term;
    struct raft_config snap_config;
    uint8_t *snap_data; /* the installed/taken snapshot */
    uint64_t snap_size;
    uint8_t *rx_data; /* snapshot being received */
    uint64_t rx_size;
    /* The state machine: terms of applied entries by index. */
    raft_term applied_term[4096];
    raft_index applied;
    uint64_t applied_sum; /* sum of first bytes of applied commands */
    /* Reads completed. */
    struct raft_read_state reads[256];
    size_t n_reads;
    unsigned n_installs;
};

struct h {
    struct h_node nodes[H_MAX + 1]; /* by id, 1..n */
    unsigned n;
    raft_time now;
    struct raft_message *q; /* the network */
    size_t nq, capq;
    bool cut[H_MAX + 1][H_MAX + 1]; /* drop from -> to */
    struct raft_options o;
    size_t delivered[RAFT_MSG_TYPE_MAX + 1];
    size_t rejects; /* APPEND_RESP rejections delivered */
};

static inline void h_copy_entry(struct raft_entry *d, const struct raft_entry *s)
{
    *d = *s;
    d->data.base = NULL;
    if (s->data.len) {
        d->data.base = malloc(s->data.len);
        memcpy(d->data.base, s->data.base, s->data.len);
    }
}

static inline void h_store_truncate(struct h_node *nd, raft_index from)
{
    while (nd->n_log > 0 && nd->log_base + nd->n_log >= from) {
        free(nd->log[--nd->n_log].data.base);
    }
}

static inline void h_trace(void *data, raft_id id, const char *line)
{
    (void)data;
    fprintf(stderr, "[%llu] %s\n", (unsigned long long)id, line);
}

static inline void h_start(struct h *h, raft_id id)
{
    struct h_node *nd = &h->nodes[id];
    struct raft_load l;
    struct raft_options o = h->o;
    int rv;
    memset(&l, 0, sizeof l);
    l.term = nd->term;
    l.vote = nd->vote;
    l.snap_index = nd->snap_index;
    l.snap_term = nd->snap_term;
    l.snap_config = nd->snap_config;
    l.snap_size = nd->snap_size;
    l.applied = nd->snap_index;
    /* Entries the snapshot covers stay in the store but are not loaded. */
    l.entries = nd->log + (nd->snap_index - nd->log_base);
    l.n_entries = nd->n_log - (size_t)(nd->snap_index - nd->log_base);
    o.id = id;
    if (getenv("RAFT_TRACE") != NULL) {
        o.trace = h_trace;
    }
    rv = raft_new(&o, &l, h->now, &nd->r);
    ck_assert_int_eq(rv, 0);
    nd->applied = nd->snap_index;
    nd->up = true;
}

static inline void h_enqueue(struct h *h, struct raft_message *m)
{
    if (h->nq == h->capq) {
        h->capq = h->capq ? h->capq * 2 : 64;
        h->q = realloc(h->q, h->capq * sizeof *h->q);
    }
    h->q[h->nq++] = *m;
}

/* Fills the data of outgoing snapshot chunks from the sender's snapshot. */
static inline void h_fill_chunk(struct h_node *nd, struct raft_message *m)
{
    if (m->type != RAFT_MSG_SNAPSHOT || m->snapshot.chunk_len == 0) {
        return;
    }
    m->snapshot.data.base = malloc(m->snapshot.chunk_len);
    memcpy(m->snapshot.data.base, nd->snap_data + m->snapshot.offset,
           m->snapshot.chunk_len);
    m->snapshot.data.len = m->snapshot.chunk_len;
}

/* Runs the driver contract for node id until it has nothing to do. */
static inline void h_pump(struct h *h, raft_id id)
{
    struct h_node *nd = &h->nodes[id];
    struct raft_update u;
    size_t i;
    int guard = 0;
    if (!nd->up) {
        return;
    }
    while (raft_ready(nd->r, &u)) {
        ck_assert_int_lt(guard++, 1000);
        for (i = 0; i < u.n_messages; i++) {
            h_fill_chunk(nd, &u.messages[i]);
            h_enqueue(h, &u.messages[i]);
        }
        u.n_messages = 0;
        if (u.has_snapshot_chunk) {
            if (u.snapshot_chunk_offset == 0) {
                free(nd->rx_data);
                nd->rx_data = calloc(1, u.snapshot_chunk_meta.size + 1);
                nd->rx_size = u.snapshot_chunk_meta.size;
            }
            if (u.snapshot_chunk.len > 0) {
                ck_assert_ptr_nonnull(nd->rx_data);
                ck_assert_uint_le(u.snapshot_chunk_offset +
                                      u.snapshot_chunk.len,
                                  nd->rx_size);
                memcpy(nd->rx_data + u.snapshot_chunk_offset,
                       u.snapshot_chunk.base, u.snapshot_chunk.len);
            }
        }
        if (u.has_snapshot_install) {
            h_store_truncate(nd, 0);
            nd->log_base = u.snapshot_install.index;
            free(nd->snap_data);
            nd->snap_data = nd->rx_data;
            nd->rx_data = NULL;
            nd->snap_index = u.snapshot_install.index;
            nd->snap_term = u.snapshot_install.term;
            nd->snap_config = u.snapshot_install.config;
            nd->snap_size = u.snapshot_install.size;
            nd->applied = nd->snap_index;
            nd->applied_sum = 0;
            if (nd->snap_data != NULL && nd->snap_size >= 8) {
                memcpy(&nd->applied_sum, nd->snap_data, 8);
            }
            nd->n_installs++;
        }
        if (u.hard_state_changed) {
            nd->term = u.hs_term;
            nd->vote = u.hs_vote;
        }
        if (u.n_entries > 0) {
            h_store_truncate(nd, u.entries[0].index);
            ck_assert_uint_eq(u.entries[0].index,
                              nd->log_base + nd->n_log + 1);
            nd->log = realloc(nd->log, (nd->n_log + u.n_entries) *
                                           sizeof *nd->log);
            for (i = 0; i < u.n_entries; i++) {
                h_copy_entry(&nd->log[nd->n_log++], &u.entries[i]);
            }
        }
        for (i = 0; i < u.n_messages_after_persist; i++) {
            h_enqueue(h, &u.messages_after_persist[i]);
        }
        u.n_messages_after_persist = 0;
        if (u.n_entries > 0) {
            raft_persisted(nd->r, h->now, u.entries[u.n_entries - 1].index,
                           u.entries[u.n_entries - 1].term);
        } else if (u.has_snapshot_install) {
            raft_persisted(nd->r, h->now, u.snapshot_install.index,
                           u.snapshot_install.term);
        }
        for (i = 0; i < u.n_committed; i++) {
            ck_assert_uint_eq(u.committed[i].index, nd->applied + 1);
            nd->applied = u.committed[i].index;
            if (nd->applied < 4096) {
                nd->applied_term[nd->applied] = u.committed[i].term;
            }
            if (u.committed[i].type == RAFT_ENTRY_COMMAND &&
                u.committed[i].data.len > 0) {
                nd->applied_sum += ((uint8_t *)u.committed[i].data.base)[0];
            }
        }
        for (i = 0; i < u.n_reads && nd->n_reads < 256; i++) {
            nd->reads[nd->n_reads++] = u.reads[i];
        }
        if (u.compact_to > 0) {
            /* The stored log drops what the snapshot covers. */
            {
                size_t k = 0, j;
                while (k < nd->n_log && nd->log[k].index <= u.compact_to) {
                    free(nd->log[k].data.base);
                    k++;
                }
                for (j = k; j < nd->n_log; j++) {
                    nd->log[j - k] = nd->log[j];
                }
                nd->n_log -= k;
                nd->log_base += k;
            }
        }
        raft_update_close(&u);
    }
    raft_update_close(&u);
}

/* The harness's options: H_ET, H_HB, seed 42, nothing kept behind a
 * snapshot, no learner catch-up rounds; the rest the core's defaults. */
static inline void h_default_opts(struct raft_options *o)
{
    raft_options_default(o);
    o->election_timeout = H_ET;
    o->heartbeat_interval = H_HB;
    o->seed = 42;
    o->snapshot_trailing = 0;
    o->learner_catchup = 0;
}

static inline void h_init_opts(struct h *h, unsigned n_nodes, unsigned voters,
                               const struct raft_options *o)
{
    struct raft_config c;
    struct raft_entry e;
    unsigned i;
    memset(h, 0, sizeof *h);
    h->n = n_nodes;
    h->now = 1000;
    if (o != NULL) {
        h->o = *o;
    } else {
        h_default_opts(&h->o);
    }
    memset(&c, 0, sizeof c);
    c.n = voters;
    for (i = 0; i < voters; i++) {
        c.servers[i].id = i + 1;
        c.servers[i].role = RAFT_VOTER;
        snprintf(c.servers[i].addr, RAFT_ADDR_MAX, "127.0.0.1:%u", 7000 + i);
    }
    ck_assert_int_eq(raft_bootstrap_entry(&c, &e), 0);
    for (i = 1; i <= n_nodes; i++) {
        struct h_node *nd = &h->nodes[i];
        if (i <= voters) {
            nd->log = malloc(sizeof *nd->log);
            h_copy_entry(&nd->log[0], &e);
            nd->n_log = 1;
        }
        h_start(h, i);
    }
    free(e.data.base);
}

static inline void h_init(struct h *h, unsigned n)
{
    h_init_opts(h, n, n, NULL);
}

static inline void h_stop(struct h *h, raft_id id)
{
    struct h_node *nd = &h->nodes[id];
    if (nd->up) {
        raft_free(nd->r);
        nd->r = NULL;
        nd->up = false;
    }
}

static inline void h_close(struct h *h)
{
    unsigned i;
    size_t k;
    for (i = 1; i <= h->n; i++) {
        struct h_node *nd = &h->nodes[i];
        h_stop(h, i);
        h_store_truncate(nd, 0);
        free(nd->log);
        free(nd->snap_data);
        free(nd->rx_data);
    }
    for (k = 0; k < h->nq; k++) {
        raft_message_close(&h->q[k]);
    }
    free(h->q);
}

/* Delivers the messages queued now (not those they cause). */
static inline size_t h_deliver(struct h *h)
{
    size_t n = h->nq, k;
    struct raft_message *batch = h->q;
    h->q = NULL;
    h->nq = h->capq = 0;
    for (k = 0; k < n; k++) {
        struct raft_message *m = &batch[k];
        struct h_node *to = m->to <= h->n ? &h->nodes[m->to] : NULL;
        if (to != NULL && to->up && m->from <= H_MAX && !h->cut[m->from][m->to]) {
            h->delivered[m->type]++;
            if (m->type == RAFT_MSG_APPEND_RESP && m->append_resp.reject) {
                h->rejects++;
            }
            raft_step(to->r, h->now, m);
            h_pump(h, m->to);
        }
        raft_message_close(m);
    }
    free(batch);
    return n;
}

static inline void h_pump_all(struct h *h)
{
    unsigned i;
    for (i = 1; i <= h->n; i++) {
        h_pump(h, i);
    }
}

/* Pumps and delivers until the network is quiet. */
static inline void h_settle(struct h *h)
{
    int guard = 0;
    h_pump_all(h);
    while (h->nq > 0) {
        ck_assert_int_lt(guard++, 100000);
        h_deliver(h);
        h_pump_all(h);
    }
}

/* Advances the clock by ms in steps of 1 ms, ticking every live node and
 * settling the network after each step. */
static inline void h_run(struct h *h, raft_time ms)
{
    raft_time end = h->now + ms;
    unsigned i;
    while (h->now < end) {
        h->now++;
        for (i = 1; i <= h->n; i++) {
            if (h->nodes[i].up) {
                raft_tick(h->nodes[i].r, h->now);
            }
        }
        h_settle(h);
    }
}

/* Makes node id campaign now: its election timer fires, no one else's. */
static inline void h_timeout(struct h *h, raft_id id)
{
    h->now += 2 * H_ET;
    raft_tick(h->nodes[id].r, h->now);
    h_pump(h, id);
}

static inline void h_elect(struct h *h, raft_id id)
{
    h_timeout(h, id);
    h_settle(h);
    ck_assert_int_eq(raft_role(h->nodes[id].r), RAFT_LEADER);
}

static inline raft_id h_leader(struct h *h)
{
    unsigned i;
    raft_id found = 0;
    for (i = 1; i <= h->n; i++) {
        if (h->nodes[i].up && raft_role(h->nodes[i].r) == RAFT_LEADER) {
            found = i;
        }
    }
    return found;
}

static inline int h_propose(struct h *h, raft_id id, uint8_t byte,
                            raft_index *index)
{
    struct raft_buf b = {&byte, 1};
    raft_term t;
    int rv = raft_propose(h->nodes[id].r, h->now, &b, index, &t);
    h_pump(h, id);
    return rv;
}

static inline void h_isolate(struct h *h, raft_id id, bool cut)
{
    unsigned i;
    for (i = 1; i <= H_MAX; i++) {
        if (i != id) {
            h->cut[id][i] = cut;
            h->cut[i][id] = cut;
        }
    }
}

/* Drops every queued message. */
static inline void h_drop_all(struct h *h)
{
    size_t k;
    for (k = 0; k < h->nq; k++) {
        raft_message_close(&h->q[k]);
    }
    h->nq = 0;
}

static inline size_t h_count(struct h *h, uint8_t type, raft_id from,
                             raft_id to)
{
    size_t k, n = 0;
    for (k = 0; k < h->nq; k++) {
        if (h->q[k].type == type && (from == 0 || h->q[k].from == from) &&
            (to == 0 || h->q[k].to == to)) {
            n++;
        }
    }
    return n;
}

/* Logs of a and b agree on every index both hold (Log Matching, §5.3). */
static inline void h_assert_logs_match(struct h *h, raft_id a, raft_id b,
                                       raft_index upto)
{
    raft_index i;
    for (i = 1; i <= upto; i++) {
        const struct raft_entry *x = raft_entry_at(h->nodes[a].r, i);
        const struct raft_entry *y = raft_entry_at(h->nodes[b].r, i);
        ck_assert_ptr_nonnull(x);
        ck_assert_ptr_nonnull(y);
        ck_assert_uint_eq(x->term, y->term);
        ck_assert_uint_eq(x->type, y->type);
        ck_assert_uint_eq(x->data.len, y->data.len);
    }
}

/* Restarts node id with a log whose terms are given (index 1 keeps the
 * bootstrap configuration, term 1), and hard state term. */
static inline void h_set_log(struct h *h, raft_id id, const raft_term *terms,
                             size_t n, raft_term term)
{
    struct h_node *nd = &h->nodes[id];
    size_t i;
    h_stop(h, id);
    h_store_truncate(nd, 2);
    nd->log = realloc(nd->log, (n + 1) * sizeof *nd->log);
    for (i = 1; i < n; i++) {
        struct raft_entry *e = &nd->log[i];
        memset(e, 0, sizeof *e);
        e->index = i + 1;
        e->term = terms[i];
        e->type = RAFT_ENTRY_NOOP;
    }
    nd->n_log = n;
    nd->term = term;
    nd->vote = 0;
    h_start(h, id);
}

/* Delivers rounds until node id leads. */
static inline void h_deliver_until_leader(struct h *h, raft_id id)
{
    int guard = 0;
    while (raft_role(h->nodes[id].r) != RAFT_LEADER) {
        ck_assert_int_lt(guard++, 50);
        h_deliver(h);
    }
}

static inline int h_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif /* TEST_RAFT_HARNESS_H */
