/* The core's entry points: create, step, tick, ready, introspection. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

void raft_options_default(struct raft_options *o)
{
    memset(o, 0, sizeof *o);
    o->election_timeout = 1000;
    o->heartbeat_interval = 100;
    o->max_append_bytes = 1 << 20;
    o->max_inflight = 64;
    o->snapshot_chunk_bytes = 1 << 20;
    o->snapshot_trailing = 1024;
    o->learner_catchup = 64;
    o->pre_vote = true;
    o->check_quorum = true;
    o->lease_reads = true;
    o->clock_drift_permille = 100;
    o->confirm_window = RAFT_CONFIRM_WINDOW_HEARTBEAT;
}

static int load(struct raft *r, const struct raft_load *l)
{
    raft_term prev_term = l->snap_term;
    size_t i;
    int rv;
    if ((l->snap_index == 0) != (l->snap_term == 0) ||
        l->snap_config.n > RAFT_MAX_SERVERS ||
        (l->n_entries > 0 && l->entries == NULL)) {
        return RAFT_ERR_CORRUPT;
    }
    raft__log_init(&r->log, l->snap_index, l->snap_term);
    rv = raft__confs_init(&r->confs, l->snap_index, &l->snap_config);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < l->n_entries; i++) {
        const struct raft_entry *e = &l->entries[i];
        if (e->index != l->snap_index + 1 + i || e->term < prev_term ||
            e->term == 0 || e->type < RAFT_ENTRY_COMMAND ||
            e->type > RAFT_ENTRY_CONFIG ||
            (e->data.len > 0 && e->data.base == NULL)) {
            return RAFT_ERR_CORRUPT;
        }
        prev_term = e->term;
        rv = raft__log_append(&r->log, e->term, e->type, e->data.base,
                              e->data.len);
        if (rv != 0) {
            return rv;
        }
        if (e->type == RAFT_ENTRY_CONFIG) {
            struct raft_config c;
            if (raft_config_decode(&e->data, &c) != 0) {
                return RAFT_ERR_CORRUPT;
            }
            rv = raft__confs_push(&r->confs, e->index, &c);
            if (rv != 0) {
                return rv;
            }
        }
    }
    r->term = l->term;
    r->vote = l->vote;
    if (r->term < raft__log_last_term(&r->log)) {
        /* A bootstrapped node starts with term 0 and an entry of term 1. */
        r->term = raft__log_last_term(&r->log);
        r->vote = 0;
        r->hs_dirty = true;
    }
    r->snap_index = l->snap_index;
    r->snap_term = l->snap_term;
    r->snap_config = l->snap_config;
    r->snap_size = l->snap_size;
    if (l->applied > raft__log_last(&r->log)) {
        return RAFT_ERR_CORRUPT;
    }
    r->commit = RAFT__MAX(l->applied, l->snap_index);
    r->applied_out = r->commit;
    r->persisted = raft__log_last(&r->log);
    return 0;
}

int raft_new(const struct raft_options *o, const struct raft_load *l,
             raft_time now, struct raft **out)
{
    struct raft *r;
    int rv;
    if (o == NULL || l == NULL || out == NULL || o->id == 0 ||
        o->election_timeout == 0 || o->heartbeat_interval == 0 ||
        o->heartbeat_interval >= o->election_timeout || o->max_inflight == 0 ||
        o->max_inflight > 65536 || o->max_append_bytes == 0 ||
        o->snapshot_chunk_bytes == 0 || o->clock_drift_permille > 1000) {
        return RAFT_ERR_INVALID;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        return RAFT_ERR_NOMEM;
    }
    r->o = *o;
    if (o->confirm_window == RAFT_CONFIRM_WINDOW_HEARTBEAT) {
        r->o.confirm_window = o->heartbeat_interval;
    }
    /* Seed per node: nodes sharing a seed must not share a sequence (a
     * shifted splitmix stream would time them out together forever). */
    r->prng = o->id;
    r->prng = raft__rand(r) ^ o->seed;
    r->prng = raft__rand(r);
    r->now = now;
    r->infl_slab =
        calloc((size_t)RAFT_MAX_SERVERS * o->max_inflight, sizeof(raft_index));
    if (r->infl_slab == NULL) {
        free(r);
        return RAFT_ERR_NOMEM;
    }
    rv = load(r, l);
    if (rv != 0) {
        raft_free(r);
        return rv;
    }
    r->role = RAFT_FOLLOWER;
    /* Whoever led may have heard from us just before we stopped: honor it
     * for a timeout, as if we had just heard from it (§4.2.3, §6.4.1). */
    r->last_heard = now;
    raft__reset_election_timer(r);
    *out = r;
    return 0;
}

void raft_free(struct raft *r)
{
    if (r == NULL) {
        return;
    }
    raft__log_close(&r->log);
    raft__confs_close(&r->confs);
    raft__msgs_close(&r->out);
    raft__msgs_close(&r->out_after);
    free(r->out_reads);
    free(r->reads);
    free(r->freads);
    free(r->pend);
    free(r->chunk.base);
    free(r->infl_slab);
    free(r);
}

static bool is_leader_msg(uint8_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
           type == RAFT_MSG_SNAPSHOT;
}

/* A message of an older term from a would-be leader: answer with our term so
 * that it steps down (paper §5.1). */
static void reply_stale(struct raft *r, const struct raft_message *m)
{
    struct raft_message *resp;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        resp = raft__send(r, RAFT_MSG_APPEND_RESP, m->from, false);
        if (resp != NULL) {
            resp->append_resp.reject = true;
            resp->append_resp.index = m->append.prev_index;
        }
        break;
    case RAFT_MSG_HEARTBEAT:
        raft__send(r, RAFT_MSG_HEARTBEAT_RESP, m->from, false);
        break;
    case RAFT_MSG_SNAPSHOT:
        resp = raft__send(r, RAFT_MSG_SNAPSHOT_RESP, m->from, false);
        if (resp != NULL) {
            resp->snapshot_resp.index = m->snapshot.index;
            resp->snapshot_resp.reject = true;
        }
        break;
    default:
        break;
    }
}

int raft_step(struct raft *r, raft_time now, const struct raft_message *m)
{
    bool known;
    if (r == NULL || m == NULL) {
        return RAFT_ERR_INVALID;
    }
    if (now > r->now) {
        r->now = now;
    }
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX ||
        m->from == 0 || m->from == r->o.id || m->to != r->o.id) {
        raft__trace(r, "malformed message (type %u from %llu) ignored",
                    (unsigned)m->type, (unsigned long long)m->from);
        return RAFT_ERR_INVALID;
    }
    known = raft_config_get(raft_configuration(r), m->from) != NULL;
    /* Messages from outside the configuration are ignored, except those of
     * leaders: a joining node knows no one yet, and a lagging follower may
     * not know a newer leader added after its log (a stale one gets our
     * term in answer, or it would never step down).
     * Vote requests are answered whoever asks (§5.2): the candidate may
     * know a configuration that we do not have yet and that needs our vote,
     * or be a leader that removed itself and must finish the change; and a
     * request we reject still tells us the term, without which a stale
     * node keeps losing every race. Removed servers cannot disrupt a
     * healthy cluster: leases (thesis §4.2.3) and pre-vote hold them off.
     * TimeoutNow from our current leader counts even once it removed
     * itself: that is how it hands over. */
    if (!known && !is_leader_msg(m->type) && m->type != RAFT_MSG_VOTE &&
        !(m->type == RAFT_MSG_TIMEOUT_NOW && m->from == r->leader &&
          m->term == r->term)) {
        raft__trace(r, "message type %u from unknown %llu ignored",
                    (unsigned)m->type, (unsigned long long)m->from);
        return 0;
    }
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE ||
            (m->type == RAFT_MSG_VOTE_RESP && m->vote_resp.pre_vote &&
             m->vote_resp.granted)) {
            /* Handled below: a vote request may be ignored (lease), a
             * granted pre-vote carries the proposed term. */
        } else {
            raft__become_follower(r, m->term,
                                  is_leader_msg(m->type) ? m->from : 0);
        }
    } else if (m->term < r->term) {
        if (m->type == RAFT_MSG_VOTE) {
            raft__recv_vote(r, m); /* answers with a rejection */
        } else if (is_leader_msg(m->type)) {
            raft__trace(r, "stale term %llu from %llu (ours %llu)",
                        (unsigned long long)m->term,
                        (unsigned long long)m->from,
                        (unsigned long long)r->term);
            reply_stale(r, m);
        }
        return r->nomem;
    }

    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER) {
            raft__trace(r, "another leader %llu in term %llu? ignored",
                        (unsigned long long)m->from,
                        (unsigned long long)m->term);
            break;
        }
        if (r->role != RAFT_FOLLOWER || r->leader != m->from) {
            raft__become_follower(r, m->term, m->from);
        }
        r->last_heard = r->now;
        raft__reset_election_timer(r);
        if (m->type == RAFT_MSG_APPEND) {
            raft__recv_append(r, m);
        } else if (m->type == RAFT_MSG_HEARTBEAT) {
            raft__recv_heartbeat(r, m);
        } else {
            raft__recv_snapshot(r, m);
        }
        break;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_SNAPSHOT_RESP:
        if (r->role != RAFT_LEADER) {
            break;
        }
        if (m->type == RAFT_MSG_APPEND_RESP) {
            raft__recv_append_resp(r, m);
        } else if (m->type == RAFT_MSG_HEARTBEAT_RESP) {
            raft__recv_heartbeat_resp(r, m);
        } else {
            raft__recv_snapshot_resp(r, m);
        }
        break;
    case RAFT_MSG_VOTE:
        raft__recv_vote(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
        raft__recv_vote_resp(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        raft__recv_timeout_now(r, m);
        break;
    case RAFT_MSG_READ_INDEX:
        raft__recv_read_index(r, m);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        raft__recv_read_index_resp(r, m);
        break;
    default:
        break;
    }
    return r->nomem;
}

static void leader_tick(struct raft *r)
{
    if (r->now >= r->heartbeat_deadline) {
        r->heartbeat_deadline = r->now + r->o.heartbeat_interval;
        raft__bcast_heartbeat(r);
        raft__snapshot_tick(r);
    }
    if (r->transfer_target != 0 && r->now >= r->transfer_deadline) {
        raft__transfer_abort(r, "timed out");
    }
    if (r->now >= r->cq_deadline) {
        const struct raft_config *c = raft_configuration(r);
        unsigned i, active = raft__self_is_voter(r) ? 1 : 0;
        r->cq_deadline = r->now + r->o.election_timeout;
        for (i = 0; i < RAFT_MAX_SERVERS; i++) {
            struct raft__progress *p = &r->prs[i];
            if (p->id != 0 && p->recent_active && raft__is_voter(c, p->id)) {
                active++;
            }
            p->recent_active = false;
        }
        /* Thesis §6.2: a leader that cannot reach a majority within an
         * election timeout steps down, so clients retry elsewhere. */
        if (r->o.check_quorum &&
            !raft__quorum_ok(active, raft__n_voters(c))) {
            raft__trace(r, "check quorum: only %u of %u voters active -> "
                           "step down",
                        active, raft__n_voters(c));
            raft__become_follower(r, r->term, 0);
        }
    }
}

int raft_tick(struct raft *r, raft_time now)
{
    if (r == NULL) {
        return RAFT_ERR_INVALID;
    }
    if (now > r->now) {
        r->now = now;
    }
    if (r->role == RAFT_LEADER) {
        leader_tick(r);
    } else {
        raft__freads_fail(r, true);
        raft__election_tick(r);
    }
    return r->nomem;
}

static raft_time next_timeout(const struct raft *r)
{
    raft_time t;
    if (r->role != RAFT_LEADER) {
        return r->election_deadline;
    }
    t = RAFT__MIN(r->heartbeat_deadline, r->cq_deadline);
    if (r->transfer_target != 0) {
        t = RAFT__MIN(t, r->transfer_deadline);
    }
    return t;
}

/* Copies log entries [from, to] into a new array. */
static int copy_range(struct raft *r, raft_index from, raft_index to,
                      struct raft_entry **out, size_t *n)
{
    size_t k, cnt = (size_t)(to - from + 1);
    struct raft_entry *v = calloc(cnt, sizeof *v);
    if (v == NULL) {
        return RAFT_ERR_NOMEM;
    }
    for (k = 0; k < cnt; k++) {
        if (raft__copy_entry(&v[k], raft__log_get(&r->log, from + k)) != 0) {
            while (k-- > 0) {
                free(v[k].data.base);
            }
            free(v);
            return RAFT_ERR_NOMEM;
        }
    }
    *out = v;
    *n = cnt;
    return 0;
}

bool raft_ready(struct raft *r, struct raft_update *u)
{
    raft_index last = raft__log_last(&r->log), hi;
    bool any = false, entries_failed = false;
    raft__flush_appends(r);
    raft__reads_flush(r);
    /* A read index answered to a follower may want the commit told to it
     * (lazy_commit): now, not with the next update. */
    raft__flush_appends(r);
    memset(u, 0, sizeof *u);
    u->role = r->role;
    u->leader = r->leader;
    u->term = r->term;
    u->commit = r->commit;
    if (r->hs_dirty) {
        u->hard_state_changed = true;
        u->hs_term = r->term;
        u->hs_vote = r->vote;
        r->hs_dirty = false;
        any = true;
    }
    if (r->has_install) {
        u->has_snapshot_install = true;
        u->snapshot_install = r->install;
        r->has_install = false;
        any = true;
    }
    if (r->has_chunk) {
        u->has_snapshot_chunk = true;
        u->snapshot_chunk_meta = r->chunk_meta;
        u->snapshot_chunk_offset = r->chunk_offset;
        u->snapshot_chunk = r->chunk;
        r->chunk.base = NULL;
        r->chunk.len = 0;
        r->has_chunk = false;
        any = true;
    }
    if (r->persist_from != 0 && r->persist_from <= last) {
        if (copy_range(r, r->persist_from, last, &u->entries,
                       &u->n_entries) == 0) {
            r->persist_from = 0;
            any = true;
        } else {
            entries_failed = true;
        }
    } else {
        r->persist_from = 0;
    }
    if (u->n_entries > 0 || u->has_snapshot_install) {
        raft_index i = u->n_entries > 0 ? u->entries[u->n_entries - 1].index
                                        : u->snapshot_install.index;
        raft_term t = u->n_entries > 0 ? u->entries[u->n_entries - 1].term
                                       : u->snapshot_install.term;
        if (r->n_pend == r->cap_pend) {
            size_t cap = r->cap_pend ? r->cap_pend * 2 : 16;
            struct raft__pend *v = realloc(r->pend, cap * sizeof *v);
            if (v == NULL) {
                abort(); /* cannot keep the persistence contract */
            }
            r->pend = v;
            r->cap_pend = cap;
        }
        r->pend[r->n_pend].index = i;
        r->pend[r->n_pend].term = t;
        r->pend[r->n_pend].snap_index =
            u->has_snapshot_install ? u->snapshot_install.index : 0;
        r->pend[r->n_pend].snap_term =
            u->has_snapshot_install ? u->snapshot_install.term : 0;
        r->pend[r->n_pend].durable = i;
        r->n_pend++;
    }
    u->messages = r->out.v;
    u->n_messages = r->out.n;
    memset(&r->out, 0, sizeof r->out);
    /* Out of memory copying the entries: what promises them stays here
     * until a later update can carry both. */
    if (!entries_failed) {
        u->messages_after_persist = r->out_after.v;
        u->n_messages_after_persist = r->out_after.n;
        memset(&r->out_after, 0, sizeof r->out_after);
    }
    any = any || u->n_messages > 0 || u->n_messages_after_persist > 0;
    /* Contract step 4: only entries both committed and durable here. */
    hi = RAFT__MIN(r->commit, r->persisted);
    if (hi > r->applied_out &&
        copy_range(r, r->applied_out + 1, hi, &u->committed,
                   &u->n_committed) == 0) {
        r->applied_out = hi;
        any = true;
    }
    u->reads = r->out_reads;
    u->n_reads = r->n_out_reads;
    r->out_reads = NULL;
    r->n_out_reads = r->cap_out_reads = 0;
    any = any || u->n_reads > 0;
    if (r->compact_to != 0) {
        u->compact_to = r->compact_to;
        r->compact_to = 0;
        any = true;
    }
    u->next_timeout = next_timeout(r);
    r->nomem = 0;
    return any;
}

void raft_update_close(struct raft_update *u)
{
    size_t i;
    if (u == NULL) {
        return;
    }
    for (i = 0; i < u->n_entries; i++) {
        free(u->entries[i].data.base);
    }
    free(u->entries);
    for (i = 0; i < u->n_committed; i++) {
        free(u->committed[i].data.base);
    }
    free(u->committed);
    for (i = 0; i < u->n_messages; i++) {
        raft_message_close(&u->messages[i]);
    }
    free(u->messages);
    for (i = 0; i < u->n_messages_after_persist; i++) {
        raft_message_close(&u->messages_after_persist[i]);
    }
    free(u->messages_after_persist);
    free(u->reads);
    free(u->snapshot_chunk.base);
    memset(u, 0, sizeof *u);
}

enum raft_role raft_role(const struct raft *r)
{
    return (enum raft_role)r->role;
}

raft_id raft_leader(const struct raft *r)
{
    return r->leader;
}

raft_term raft_current_term(const struct raft *r)
{
    return r->term;
}

raft_index raft_commit_index(const struct raft *r)
{
    return r->commit;
}

raft_index raft_last_index(const struct raft *r)
{
    return raft__log_last(&r->log);
}

const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index)
{
    return raft__log_get(&r->log, index);
}

raft_index raft_first_index(const struct raft *r)
{
    return r->log.offset + 1;
}
