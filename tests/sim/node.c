/* The simulated node driver: carries out raft.h's driver contract. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

/* A pending persist (contract step 2) with what depends on it (step 3). */
struct sim_job {
    struct sim_job *next;
    bool has_install;
    struct raft_snapshot_meta install;
    bool has_chunk;
    struct raft_snapshot_meta chunk_meta;
    uint64_t chunk_off;
    struct raft_buf chunk; /* owned */
    bool has_hs;
    raft_term hs_term;
    raft_id hs_vote;
    struct raft_entry *entries; /* owned */
    size_t n_entries;
    struct raft_message **after; /* owned, each by sim_msg_copy */
    size_t n_after;
    raft_index compact_to;
    bool acked; /* SIM_BREAK_ACK_BEFORE_PERSIST: step 3 already done */
    struct sim_apply_item *marker; /* the restore waiting for this install */
};

static void job_free(struct sim_job *j)
{
    free(j->chunk.base);
    sim_entries_free(j->entries, j->n_entries);
    for (size_t i = 0; i < j->n_after; i++) {
        sim_msg_free(j->after[i]);
    }
    free(j->after);
    free(j);
}

static void trace_cb(void *data, raft_id id, const char *line)
{
    struct sim *s = data;
    fprintf(s->trace, "[%7llu] n%llu: %s\n", U(s->now), U(id), line);
}

void sim_node_close(struct sim_node *n)
{
    if (n->r != NULL) {
        struct raft_read_stats st;
        raft_read_stats(n->r, &st);
        n->reads_acc.lease_reads += st.lease_reads;
        n->reads_acc.round_reads += st.round_reads;
        n->reads_acc.rounds += st.rounds;
        n->reads_acc.window_reads += st.window_reads;
        raft_free(n->r);
        n->r = NULL;
    }
    while (n->jobs_head != NULL) {
        struct sim_job *j = n->jobs_head;
        n->jobs_head = j->next;
        job_free(j);
    }
    n->jobs_tail = NULL;
    while (n->apply_head != NULL) {
        struct sim_apply_item *it = n->apply_head;
        n->apply_head = it->next;
        free(it->e.data.base);
        free(it);
    }
    n->apply_tail = NULL;
    free(n->reads);
    n->reads = NULL;
    n->n_reads = n->cap_reads = 0;
    n->alive = false;
}

void sim_node_crash(struct sim *s, struct sim_node *n)
{
    sim_tracef(s, "n%llu CRASH (drops %s pending writes)", U(n->id),
               n->jobs_head ? "its" : "no");
    sim_node_close(n);
    n->epoch++;
    if (s->brk == SIM_BREAK_DROP_PERSISTED && n->store.n_log > 0) {
        /* Deliberately broken store: forgets its last durable entry. */
        struct raft_entry *e = &n->store.log[n->store.n_log - 1];
        free(e->data.base);
        n->store.n_log--;
    }
    if (s->brk == SIM_BREAK_FORGET_VOTE) {
        n->store.vote = 0; /* deliberately broken: votes twice */
    }
    /* Reads asked on this node will never be answered. */
    size_t k = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i].slot != n->slot) {
            s->pending[k++] = s->pending[i];
        }
    }
    s->n_pending = k;
}

void sim_node_start(struct sim *s, struct sim_node *n)
{
    struct raft_options o;
    raft_options_default(&o);
    o.id = n->id;
    o.seed = sim_mix(s->seed, n->id, n->epoch);
    o.election_timeout = s->p.election_timeout;
    o.heartbeat_interval = s->p.heartbeat_interval;
    o.max_append_bytes = s->p.max_append_bytes;
    o.max_inflight = s->p.max_inflight;
    o.snapshot_chunk_bytes = s->p.chunk_bytes;
    o.snapshot_trailing = s->p.trailing;
    o.pre_vote = s->p.pre_vote;
    o.check_quorum = s->p.check_quorum;
    o.lease_reads = s->p.lease_reads;
    o.clock_drift_permille = s->p.lease_drift;
    o.confirm_window = s->p.confirm_window;
    o.lazy_commit = s->p.lazy_commit;
    if (s->trace != NULL) {
        o.trace = trace_cb;
        o.trace_data = s;
    }
    struct sim_store *st = &n->store;
    struct raft_load l;
    memset(&l, 0, sizeof(l));
    l.term = st->term;
    l.vote = st->vote;
    l.snap_index = st->snap_index;
    l.snap_term = st->snap_term;
    l.snap_config = st->snap_config;
    l.snap_size = st->snap_len;
    l.applied = st->snap_index;
    bool sm = st->has_sm && st->sm_applied >= st->snap_index;
    if (sm) {
        l.applied = st->sm_applied; /* applied survives: no re-apply */
    }
    size_t skip = 0;
    while (skip < st->n_log && st->log[skip].index <= st->snap_index) {
        skip++;
    }
    l.entries = st->log + skip;
    l.n_entries = st->n_log - skip;
    sim_tracef(s, "n%llu START term=%llu vote=%llu snap=%llu/%llu log=%zu "
               "applied=%llu", U(n->id), U(l.term), U(l.vote),
               U(l.snap_index), U(l.snap_term), l.n_entries, U(l.applied));
    int rv = raft_new(&o, &l, sim_clock(s, n), &n->r);
    if (rv != 0) {
        n->r = NULL;
        sim_fail(s, "n%llu: raft_new from its own store failed: %s",
                 U(n->id), raft_strerror(rv));
        return;
    }
    memset(n->regs, 0, sizeof(n->regs));
    n->applied = st->snap_index;
    n->applied_term = st->snap_term;
    n->sm_config = st->snap_config;
    if (sm) {
        memcpy(n->regs, st->sm_regs, sizeof(n->regs));
        n->applied = st->sm_applied;
        n->applied_term = st->sm_term;
        n->sm_config = st->sm_config;
    } else if (st->snap != NULL) {
        raft_index idx;
        if (sim_snap_decode(st->snap, st->snap_len, n->regs, &idx) != 0 ||
            idx != st->snap_index) {
            sim_fail(s, "n%llu: stored snapshot does not decode",
                     U(n->id));
        }
    }
    n->alive = true;
    n->last_done = s->now;
    n->next_tick = 0;
    n->seen_term = raft_current_term(n->r);
    n->seen_commit = raft_commit_index(n->r);
    n->seen_role = (uint8_t)raft_role(n->r);
    n->lc_term = 0;
    n->lc_checked = 0;
    n->removed_since = 0;
    n->la_term = 0;
    n->la_last = 0;
    if (n->seen_commit > st->snap_index && n->seen_commit > l.applied) {
        sim_fail(s, "n%llu: restarts with commit %llu beyond what it knows "
                 "committed (applied %llu)", U(n->id), U(n->seen_commit),
                 U(l.applied));
    }
    sim_node_process(s, n);
}

/* ---- Persist (contract steps 2-3) ---- */

static void ack(struct sim *s, struct sim_node *n, struct sim_job *j)
{
    j->acked = true;
    for (size_t i = 0; i < j->n_after; i++) {
        sim_net_send(s, n->slot, j->after[i]);
        j->after[i] = NULL;
    }
    raft_index idx = 0;
    raft_term term = 0;
    if (j->n_entries > 0) {
        idx = j->entries[j->n_entries - 1].index;
        term = j->entries[j->n_entries - 1].term;
    } else if (j->has_install) {
        idx = j->install.index;
        term = j->install.term;
    }
    if (idx > 0 && n->r != NULL) {
        raft_persisted(n->r, sim_clock(s, n), idx, term);
    }
}

static void complete_job(struct sim *s, struct sim_node *n, struct sim_job *j)
{
    struct sim_store *st = &n->store;
    char why[256];
    /* Contract 2a-2b: the chunk first; the last chunk and the install of
     * the snapshot it completes may come in the same update. */
    if (j->has_chunk) {
        sim_store_chunk(st, &j->chunk_meta, j->chunk_off, &j->chunk);
    }
    if (j->has_install) {
        if (sim_store_install(st, &j->install, why, sizeof(why)) != 0) {
            sim_fail(s, "n%llu: %s", U(n->id), why);
            return;
        }
    }
    if (j->has_hs) {
        if (j->hs_term < st->term) {
            sim_fail(s, "n%llu: persists term %llu after term %llu",
                     U(n->id), U(j->hs_term), U(st->term));
            return;
        }
        if (j->hs_term == st->term && st->vote != 0 && j->hs_vote != st->vote) {
            sim_fail(s, "Election Safety: n%llu votes for %llu after voting "
                     "for %llu in term %llu", U(n->id), U(j->hs_vote),
                     U(st->vote), U(st->term));
            return;
        }
        st->term = j->hs_term;
        st->vote = j->hs_vote;
        if (j->hs_vote != 0 && sim_slot_of(s, j->hs_vote) >= 0 &&
            j->hs_term > n->vote_term_max) {
            n->vote_term_max = j->hs_term;
        }
    }
    if (sim_store_append(st, j->entries, j->n_entries, why, sizeof(why)) !=
        0) {
        sim_fail(s, "n%llu: %s", U(n->id), why);
        return;
    }
    if (j->compact_to > 0) {
        if (j->compact_to > st->snap_index) {
            sim_fail(s, "n%llu: compact_to %llu beyond its snapshot %llu",
                     U(n->id), U(j->compact_to), U(st->snap_index));
            return;
        }
        sim_store_compact(st, j->compact_to);
    }
    if (j->marker != NULL) {
        j->marker->ready = true;
    }
    if (!j->acked) {
        ack(s, n, j);
    }
}

void sim_node_persist_done(struct sim *s, struct sim_node *n)
{
    struct sim_job *j = n->jobs_head;
    if (j == NULL) {
        return;
    }
    n->jobs_head = j->next;
    if (n->jobs_head == NULL) {
        n->jobs_tail = NULL;
    }
    sim_tracef(s, "n%llu persisted:%s%s%s entries %zu%s", U(n->id),
               j->has_install ? " install" : "", j->has_chunk ? " chunk" : "",
               j->has_hs ? " hard-state" : "", j->n_entries,
               j->compact_to ? " compact" : "");
    complete_job(s, n, j);
    job_free(j);
    sim_apply_drain(s, n);
    sim_node_process(s, n);
}

/* ---- One update, in the contract's order ---- */

static void send_messages(struct sim *s, struct sim_node *n,
                          const struct raft_update *u)
{
    for (size_t i = 0; i < u->n_messages; i++) {
        const struct raft_message *m = &u->messages[i];
        if (m->from != n->id) {
            sim_fail(s, "n%llu: emits a message from %llu", U(n->id),
                     U(m->from));
            return;
        }
        struct raft_message *c = sim_msg_copy(m);
        if (c->type == RAFT_MSG_SNAPSHOT) {
            /* The core names a chunk; the driver reads it from its store. */
            const struct sim_store *st = &n->store;
            uint64_t off = c->snapshot.offset;
            if (st->snap == NULL || st->snap_index != c->snapshot.index ||
                st->snap_len != c->snapshot.size || off > st->snap_len) {
                sim_tracef(s, "n%llu: no stored snapshot %llu for a chunk: "
                           "not sent", U(n->id), U(c->snapshot.index));
                sim_msg_free(c);
                continue;
            }
            size_t len = c->snapshot.chunk_len;
            if (len > st->snap_len - off) {
                len = (size_t)(st->snap_len - off);
            }
            free(c->snapshot.data.base);
            c->snapshot.data.base = NULL;
            c->snapshot.data.len = len;
            if (len > 0) {
                c->snapshot.data.base = malloc(len);
                if (c->snapshot.data.base == NULL) {
                    abort();
                }
                memcpy(c->snapshot.data.base, st->snap + off, len);
            }
        }
        sim_net_send(s, n->slot, c);
    }
}

static void check_new_entries(struct sim *s, struct sim_node *n,
                              const struct raft_update *u)
{
    /* Leader Append-Only (§5.3): a leader never overwrites its own log. */
    if (u->role == RAFT_LEADER && u->n_entries > 0) {
        if (n->la_term == u->term && u->entries[0].index <= n->la_last) {
            sim_fail(s, "Leader Append-Only: leader n%llu of term %llu "
                     "rewrites from %llu after appending up to %llu",
                     U(n->id), U(u->term), U(u->entries[0].index),
                     U(n->la_last));
            return;
        }
        n->la_term = u->term;
        n->la_last = u->entries[u->n_entries - 1].index;
    }
    for (size_t i = 0; i < u->n_entries; i++) {
        const struct raft_entry *e = &u->entries[i];
        raft_term prev = 0;
        if (i > 0) {
            prev = u->entries[i - 1].term;
        } else if (e->index > 1) {
            const struct raft_entry *p = raft_entry_at(n->r, e->index - 1);
            prev = p ? p->term : 0;
        }
        if (!sim_check_log_entry(&s->chk, n->id, e->index, e->term,
                                 sim_entry_hash(e), prev)) {
            return;
        }
    }
}

static struct sim_read *take_pending(struct sim *s, struct sim_node *n,
                                     uint64_t ctx, struct sim_read *out)
{
    for (size_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i].ctx == ctx && s->pending[i].slot == n->slot) {
            *out = s->pending[i];
            s->pending[i] = s->pending[--s->n_pending];
            return out;
        }
    }
    return NULL;
}

static void handle_update(struct sim *s, struct sim_node *n,
                          const struct raft_update *u)
{
    if (s->trace != NULL) {
        sim_tracef(s, "n%llu update: role %u term %llu commit %llu%s%s%s "
                   "entries %zu [%llu..%llu] committed %zu [%llu..%llu] "
                   "msgs %zu+%zu reads %zu compact %llu", U(n->id), u->role,
                   U(u->term), U(u->commit),
                   u->hard_state_changed ? " hard-state" : "",
                   u->has_snapshot_chunk ? " chunk" : "",
                   u->has_snapshot_install ? " INSTALL" : "", u->n_entries,
                   U(u->n_entries ? u->entries[0].index : 0),
                   U(u->n_entries ? u->entries[u->n_entries - 1].index : 0),
                   u->n_committed,
                   U(u->n_committed ? u->committed[0].index : 0),
                   U(u->n_committed ? u->committed[u->n_committed - 1].index
                                    : 0),
                   u->n_messages, u->n_messages_after_persist, u->n_reads,
                   U(u->compact_to));
    }
    send_messages(s, n, u);
    check_new_entries(s, n, u);
    if (s->chk.failed) {
        return;
    }
    struct sim_job *j = NULL;
    if (u->has_snapshot_install || u->has_snapshot_chunk ||
        u->hard_state_changed || u->n_entries > 0 ||
        u->n_messages_after_persist > 0 || u->compact_to > 0) {
        j = calloc(1, sizeof(*j));
        if (j == NULL) {
            abort();
        }
        j->has_install = u->has_snapshot_install;
        j->install = u->snapshot_install;
        j->has_chunk = u->has_snapshot_chunk;
        if (j->has_chunk) {
            j->chunk_meta = u->snapshot_chunk_meta;
            j->chunk_off = u->snapshot_chunk_offset;
            j->chunk.len = u->snapshot_chunk.len;
            if (j->chunk.len > 0) {
                j->chunk.base = malloc(j->chunk.len);
                if (j->chunk.base == NULL) {
                    abort();
                }
                memcpy(j->chunk.base, u->snapshot_chunk.base, j->chunk.len);
            }
        }
        j->has_hs = u->hard_state_changed;
        j->hs_term = u->hs_term;
        j->hs_vote = u->hs_vote;
        j->entries = sim_entries_copy(u->entries, u->n_entries);
        j->n_entries = j->entries ? u->n_entries : 0;
        j->n_after = u->n_messages_after_persist;
        if (j->n_after > 0) {
            j->after = calloc(j->n_after, sizeof(*j->after));
            if (j->after == NULL) {
                abort();
            }
            for (size_t i = 0; i < j->n_after; i++) {
                j->after[i] = sim_msg_copy(&u->messages_after_persist[i]);
            }
        }
        j->compact_to = u->compact_to;
        if (j->has_install) {
            struct sim_apply_item *it = calloc(1, sizeof(*it));
            if (it == NULL) {
                abort();
            }
            it->kind = ITEM_RESTORE;
            it->meta = u->snapshot_install;
            j->marker = it;
            sim_apply_push(n, it);
        }
    }
    for (size_t i = 0; i < u->n_committed; i++) {
        struct sim_apply_item *it = calloc(1, sizeof(*it));
        if (it == NULL) {
            abort();
        }
        it->kind = ITEM_ENTRY;
        it->e = u->committed[i];
        it->e.data.base = NULL;
        if (u->committed[i].data.len > 0) {
            it->e.data.base = malloc(it->e.data.len);
            if (it->e.data.base == NULL) {
                abort();
            }
            memcpy(it->e.data.base, u->committed[i].data.base,
                   it->e.data.len);
        }
        sim_apply_push(n, it);
    }
    for (size_t i = 0; i < u->n_reads; i++) {
        const struct raft_read_state *rs = &u->reads[i];
        struct sim_read rd = {.ctx = 0};
        if (take_pending(s, n, rs->ctx, &rd) == NULL && s->lenient_reads) {
            sim_tracef(s, "n%llu: answers read %llu, which is not pending "
                       "(tolerated)", U(n->id), U(rs->ctx));
            continue;
        } else if (rd.ctx != rs->ctx) {
            sim_fail(s, "n%llu: answers read %llu, which is not pending "
                     "(never asked, or answered twice)", U(n->id),
                     U(rs->ctx));
            if (j != NULL) {
                job_free(j);
            }
            return;
        }
        sim_tracef(s, "n%llu read %llu answered: %s index %llu", U(n->id),
                   U(rs->ctx), rs->status ? raft_strerror(rs->status) : "ok",
                   U(rs->index));
        if (rs->status != 0) {
            continue;
        }
        struct sim_apply_item *it = calloc(1, sizeof(*it));
        if (it == NULL) {
            abort();
        }
        it->kind = ITEM_READ;
        it->rd = rd;
        it->rd.index = rs->index;
        sim_apply_push(n, it);
    }
    if (j != NULL) {
        bool fast = !n->slow_disk && n->jobs_head == NULL;
        if (s->brk == SIM_BREAK_ACK_BEFORE_PERSIST) {
            ack(s, n, j); /* deliberately wrong: promise before writing */
            fast = false;
        }
        if (fast) {
            complete_job(s, n, j);
            job_free(j);
        } else {
            raft_time t = s->now + sim_rng_between(&s->rng, 0,
                                                   n->disk_delay_max);
            if (t < n->last_done) {
                t = n->last_done;
            }
            n->last_done = t;
            j->next = NULL;
            if (n->jobs_tail != NULL) {
                n->jobs_tail->next = j;
            } else {
                n->jobs_head = j;
            }
            n->jobs_tail = j;
            struct sim_event ev = {.time = t, .node = n->slot,
                                   .kind = SIM_EV_PERSIST, .epoch = n->epoch};
            sim_queue_push(&s->q, &ev);
        }
    }
    sim_apply_drain(s, n);
}

void sim_node_process(struct sim *s, struct sim_node *n)
{
    if (n->in_process || !n->alive) {
        return; /* the outer loop collects what this call would have */
    }
    n->in_process = true;
    for (unsigned guard = 0; n->alive && !s->chk.failed; guard++) {
        struct raft_update u;
        memset(&u, 0, sizeof(u));
        bool any = raft_ready(n->r, &u);
        raft_time t = sim_clock_global(s, n, u.next_timeout);
        if (t > s->now + 100ull * s->p.election_timeout) {
            t = s->now + 100ull * s->p.election_timeout;
        }
        if (n->next_tick != t || !n->tick_pending) {
            n->next_tick = t;
            n->tick_pending = true;
            struct sim_event ev = {.time = t, .node = n->slot,
                                   .kind = SIM_EV_TICK, .epoch = n->epoch};
            sim_queue_push(&s->q, &ev);
        }
        if (any) {
            handle_update(s, n, &u);
        }
        raft_update_close(&u);
        if (!any) {
            break;
        }
        if (guard > 100000) {
            sim_fail(s, "n%llu: raft_ready never runs dry", U(n->id));
        }
    }
    n->in_process = false;
}
