/* Client operations, faults, the heal, and the liveness probe. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

/* The live leader of the highest term, or NULL. */
static struct sim_node *find_leader(struct sim *s)
{
    struct sim_node *best = NULL;
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive && raft_role(n->r) == RAFT_LEADER &&
            (best == NULL ||
             raft_current_term(n->r) > raft_current_term(best->r))) {
            best = n;
        }
    }
    return best;
}

/* A live node whose core thinks it leads, of any term (a deposed leader
 * that does not know it yet included), or NULL. */
static struct sim_node *random_leader(struct sim *s)
{
    unsigned pick[SIM_MAX_SLOTS], k = 0;
    for (unsigned i = 0; i < s->n_slots; i++) {
        if (s->nodes[i].alive && raft_role(s->nodes[i].r) == RAFT_LEADER) {
            pick[k++] = i;
        }
    }
    return k ? &s->nodes[pick[sim_rng_below(&s->rng, k)]] : NULL;
}

static struct sim_node *random_node(struct sim *s, bool alive)
{
    unsigned pick[SIM_MAX_SLOTS], k = 0;
    for (unsigned i = 0; i < s->n_slots; i++) {
        if (s->nodes[i].alive == alive) {
            pick[k++] = i;
        }
    }
    return k ? &s->nodes[pick[sim_rng_below(&s->rng, k)]] : NULL;
}

static int propose(struct sim *s, struct sim_node *n, raft_index *index,
                   raft_term *term)
{
    char cmd[64];
    unsigned key = (unsigned)sim_rng_below(&s->rng, SIM_KEYS);
    unsigned long long v = ++s->next_value;
    int len = snprintf(cmd, sizeof(cmd), "set %u %llu", key, v);
    struct raft_buf b = {cmd, (size_t)len};
    int rv = raft_propose(n->r, sim_clock(s, n), &b, index, term);
    sim_tracef(s, "n%llu propose \"%s\": %s (index %llu)", U(n->id), cmd,
               rv ? raft_strerror(rv) : "ok", rv ? 0ull : U(*index));
    return rv;
}

static void do_read(struct sim *s, struct sim_node *n)
{
    struct sim_read rd;
    memset(&rd, 0, sizeof(rd));
    rd.ctx = ++s->next_ctx;
    rd.slot = n->slot;
    rd.key = (unsigned)sim_rng_below(&s->rng, SIM_KEYS);
    rd.invoked = s->now;
    rd.lo = s->chk.commit_max;
    /* A quarter of the reads check the quorum (raftfs's open for
     * writing): a round, or a quorum contact within confirm_window. */
    bool confirm = sim_rng_chance(&s->rng, 2500);
    uint64_t leased = sim_lease_count(n);
    uint64_t windowed = sim_window_count(n);
    int rv = confirm ? raft_read_index_confirm(n->r, sim_clock(s, n), rd.ctx)
                     : raft_read_index(n->r, sim_clock(s, n), rd.ctx);
    sim_observe_lease(s, n, leased);
    sim_observe_window(s, n, windowed);
    sim_tracef(s, "n%llu read%s %llu of key %u asked (lo %llu): %s",
               U(n->id), confirm ? " (confirm)" : "", U(rd.ctx), rd.key,
               U(rd.lo), rv ? raft_strerror(rv) : "ok");
    if (rv != 0) {
        return;
    }
    if (s->n_pending == s->cap_pending) {
        s->cap_pending = s->cap_pending ? 2 * s->cap_pending : 16;
        s->pending = realloc(s->pending, s->cap_pending * sizeof(*s->pending));
        if (s->pending == NULL) {
            abort();
        }
    }
    s->pending[s->n_pending++] = rd;
}

/* One membership change (thesis §4.1): add a learner, promote, remove. */
static void do_change(struct sim *s, struct sim_node *l)
{
    const struct raft_config *c = raft_configuration(l->r);
    raft_id add[SIM_MAX_SLOTS], prom[SIM_MAX_SLOTS], rem[SIM_MAX_SLOTS];
    unsigned na = 0, np = 0, nr = 0, voters = 0;
    for (unsigned i = 0; i < c->n; i++) {
        voters += c->servers[i].role == RAFT_VOTER;
    }
    for (unsigned i = 0; i < s->n_slots; i++) {
        raft_id id = s->nodes[i].id;
        const struct raft_server *sv = raft_config_get(c, id);
        if (sv == NULL) {
            add[na++] = id;
        } else if (sv->role == RAFT_LEARNER) {
            prom[np++] = id;
            rem[nr++] = id;
        } else if (voters > 2) {
            rem[nr++] = id;
        }
    }
    unsigned pick = (unsigned)sim_rng_below(&s->rng, 3);
    enum raft_change_op op;
    raft_id id;
    if (pick == 0 && na > 0) {
        op = RAFT_ADD_LEARNER;
        id = add[sim_rng_below(&s->rng, na)];
    } else if (pick == 1 && np > 0) {
        op = RAFT_PROMOTE;
        id = prom[sim_rng_below(&s->rng, np)];
    } else if (nr > 0) {
        op = RAFT_REMOVE;
        id = rem[sim_rng_below(&s->rng, nr)];
    } else {
        return;
    }
    char addr[RAFT_ADDR_MAX];
    snprintf(addr, sizeof(addr), "sim-%llu", U(id));
    raft_index idx = 0;
    int rv = raft_change(l->r, sim_clock(s, l), op, id, addr, &idx);
    s->n_changes += rv == 0;
    sim_tracef(s, "n%llu change %s %llu: %s (index %llu)", U(l->id),
               op == RAFT_ADD_LEARNER ? "add-learner"
               : op == RAFT_PROMOTE   ? "promote"
                                      : "remove",
               U(id), rv ? raft_strerror(rv) : "ok", U(idx));
}

void sim_workload(struct sim *s)
{
    struct sim_event ev = {
        .time = s->now + sim_rng_between(&s->rng, 1, 2 * s->p.work_every),
        .node = SIM_MAX_SLOTS, .kind = SIM_EV_WORKLOAD};
    sim_queue_push(&s->q, &ev);
    const struct sim_params *p = &s->p;
    unsigned total = p->w_propose + p->w_propose_follower + p->w_read +
                     p->w_transfer + p->w_change;
    unsigned x = (unsigned)sim_rng_below(&s->rng, total);
    struct sim_node *l = find_leader(s);
    struct sim_node *n = NULL;
    raft_index idx;
    raft_term term;
    if (x < p->w_propose) {
        if ((n = l) != NULL) {
            propose(s, n, &idx, &term);
        }
    } else if ((x -= p->w_propose) < p->w_propose_follower) {
        n = random_node(s, true);
        if (n != NULL && raft_role(n->r) != RAFT_LEADER) {
            int rv = propose(s, n, &idx, &term);
            if (rv != RAFT_ERR_NOT_LEADER) {
                sim_fail(s, "n%llu (not leader) answers a proposal with %s, "
                         "not RAFT_ERR_NOT_LEADER", U(n->id),
                         rv ? raft_strerror(rv) : "success");
            }
        }
    } else if ((x -= p->w_propose_follower) < p->w_read) {
        /* Half the reads go to a leader: that is where leases serve them,
         * and a deposed leader that still believes it leads is where a
         * lease goes wrong (§6.4.1). */
        n = sim_rng_chance(&s->rng, 5000) ? random_leader(s) : NULL;
        if (n == NULL) {
            n = random_node(s, true);
        }
        if (n != NULL) {
            do_read(s, n);
        }
    } else if ((x -= p->w_read) < p->w_transfer) {
        if ((n = l) != NULL) {
            const struct raft_config *c = raft_configuration(n->r);
            raft_id target = 0;
            if (c->n > 0 && sim_rng_chance(&s->rng, 7000)) {
                target = c->servers[sim_rng_below(&s->rng, c->n)].id;
            }
            int rv = raft_transfer(n->r, sim_clock(s, n), target);
            s->n_transfers += rv == 0;
            sim_tracef(s, "n%llu transfer to %llu: %s", U(n->id), U(target),
                       rv ? raft_strerror(rv) : "ok");
            if (rv == 0 && target != n->id &&
                raft_role(n->r) == RAFT_LEADER) {
                /* Thesis §3.10: no new proposals while transferring. */
                rv = propose(s, n, &idx, &term);
                if (rv == 0) {
                    sim_fail(s, "n%llu accepts a proposal while it transfers "
                             "leadership to %llu", U(n->id), U(target));
                }
            }
        }
    } else if ((n = l) != NULL) {
        do_change(s, n);
    }
    if (n != NULL) {
        sim_node_process(s, n);
    }
}

static void partition(struct sim *s)
{
    unsigned k = s->n_slots;
    struct sim_node *l = find_leader(s);
    bool side[SIM_MAX_SLOTS];
    unsigned kind = (unsigned)sim_rng_below(&s->rng, 4);
    const char *what;
    for (unsigned i = 0; i < k; i++) {
        side[i] = sim_rng_chance(&s->rng, 5000);
    }
    if (kind == 0) {
        what = "symmetric split";
    } else if (kind == 1) {
        unsigned a = (unsigned)sim_rng_below(&s->rng, k);
        unsigned b = (unsigned)sim_rng_below(&s->rng, k);
        s->blocked[a][b] = true;
        sim_tracef(s, "fault: one-way partition n%u -/-> n%u", a + 1, b + 1);
        return;
    } else if (kind == 2 && l != NULL) {
        memset(side, 0, sizeof(side));
        side[l->slot] = true;
        what = "isolate leader";
    } else {
        /* A minority (with or without the leader) against the rest. */
        unsigned minority = (s->n_voters - 1) / 2;
        memset(side, 0, sizeof(side));
        unsigned start = l != NULL && sim_rng_chance(&s->rng, 5000)
                             ? l->slot
                             : (unsigned)sim_rng_below(&s->rng, k);
        for (unsigned i = 0; i < minority && i < k; i++) {
            side[(start + i) % k] = true;
        }
        what = "minority/majority";
    }
    for (unsigned a = 0; a < k; a++) {
        for (unsigned b = 0; b < k; b++) {
            if (side[a] != side[b]) {
                s->blocked[a][b] = true;
            }
        }
    }
    sim_tracef(s, "fault: partition (%s)", what);
}

void sim_fault(struct sim *s)
{
    struct sim_event ev = {
        .time = s->now + sim_rng_between(&s->rng, 1, 2 * s->p.fault_every),
        .node = SIM_MAX_SLOTS, .kind = SIM_EV_FAULT};
    sim_queue_push(&s->q, &ev);
    const struct sim_params *p = &s->p;
    unsigned total = p->w_crash + p->w_restart + p->w_partition + p->w_heal +
                     p->w_slow;
    unsigned x = (unsigned)sim_rng_below(&s->rng, total);
    struct sim_node *n;
    if (x < p->w_crash) {
        if ((n = random_node(s, true)) != NULL) {
            s->n_crashes++;
            sim_node_crash(s, n);
        }
    } else if ((x -= p->w_crash) < p->w_restart) {
        if ((n = random_node(s, false)) != NULL) {
            sim_node_start(s, n);
        }
    } else if ((x -= p->w_restart) < p->w_partition) {
        partition(s);
    } else if ((x -= p->w_partition) < p->w_heal) {
        memset(s->blocked, 0, sizeof(s->blocked));
        sim_tracef(s, "fault: heal partitions");
    } else {
        n = &s->nodes[sim_rng_below(&s->rng, s->n_slots)];
        n->slow_disk = !n->slow_disk;
        n->disk_delay_max = (unsigned)sim_rng_between(&s->rng, 1, 60);
        sim_tracef(s, "fault: n%llu disk %s (up to %ums)", U(n->id),
                   n->slow_disk ? "slow" : "fast", n->disk_delay_max);
    }
}

static raft_term last_term(const struct sim_node *n)
{
    const struct raft_entry *e = raft_entry_at(n->r, raft_last_index(n->r));
    return e != NULL ? e->term : n->store.snap_term;
}

static bool more_up_to_date(const struct sim_node *a, const struct sim_node *b)
{
    raft_term ta = last_term(a), tb = last_term(b);
    return ta != tb ? ta > tb : raft_last_index(a->r) > raft_last_index(b->r);
}

/* End of the fault phase: heal the network, stop garbage and loss, restart
 * the members of the cluster, shut down servers no longer in it. */
void sim_heal(struct sim *s)
{
    s->phase = SIM_PHASE_LIVENESS;
    s->heal_time = s->now;
    memset(s->blocked, 0, sizeof(s->blocked));
    s->p.drop = 0;
    s->p.dup = 0;
    s->p.stale = 0;
    sim_tracef(s, "HEAL: faults stop at step %llu", U(s->steps));
    for (unsigned i = 0; i < s->n_slots; i++) {
        if (!s->nodes[i].alive) {
            sim_node_start(s, &s->nodes[i]);
        }
    }
    /* The cluster is what the most up-to-date live server (§5.4.1: last
     * term, then last index: the one that would win an election) says: its committed and latest configurations.
     * Everyone else was removed for good: shut it down, as an operator
     * would (a removed server that never learned it was removed disrupts
     * the cluster without pre-vote and check-quorum, thesis §4.2.3). */
    bool member[SIM_MAX_SLOTS] = {false};
    struct sim_node *ref = NULL;
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive && (ref == NULL || more_up_to_date(n, ref))) {
            ref = n;
        }
    }
    const struct raft_config *cs[2] = {
        ref ? raft_configuration(ref->r) : NULL,
        ref ? raft_committed_configuration(ref->r) : NULL};
    /* Only a removal known committed counts: with nothing committed (all
     * restarted), nobody is shut down. */
    bool any = false;
    for (unsigned k = 0; k < 2 && ref != NULL && cs[1]->n > 0; k++) {
        for (unsigned j = 0; j < cs[k]->n && j < RAFT_MAX_SERVERS; j++) {
            int slot = sim_slot_of(s, cs[k]->servers[j].id);
            if (slot >= 0) {
                member[slot] = true;
                any = true;
            }
        }
    }
    if (!any) {
        memset(member, 1, sizeof(member));
    }
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive && !member[i]) {
            sim_tracef(s, "HEAL: n%llu is not a member: shut down", U(n->id));
            sim_node_crash(s, n);
        }
    }
    struct sim_event ev = {.time = s->now, .node = SIM_MAX_SLOTS,
                           .kind = SIM_EV_LIVENESS};
    sim_queue_push(&s->q, &ev);
}

/* After the heal, a leader must emerge and a fresh proposal must commit on
 * a majority within 30 election timeouts. */
/* After the probe committed: every live member of the leader's
 * configuration must catch up and apply it within 30 election timeouts
 * (a stuck follower or snapshot transfer is a liveness bug too). */
static void converge(struct sim *s)
{
    struct sim_node *l = find_leader(s);
    const struct raft_config *c = l ? raft_configuration(l->r) : NULL;
    struct sim_node *behind = NULL;
    for (unsigned i = 0; c != NULL && i < c->n && behind == NULL; i++) {
        int slot = sim_slot_of(s, c->servers[i].id);
        if (slot >= 0 && s->nodes[slot].alive &&
            s->nodes[slot].applied < s->probe_index) {
            behind = &s->nodes[slot];
        }
    }
    if (l != NULL && behind == NULL) {
        sim_tracef(s, "LIVENESS: every member applied %llu %llums after the "
                   "heal", U(s->probe_index), U(s->now - s->heal_time));
        s->phase = SIM_PHASE_DONE;
        return;
    }
    if (s->now > s->converge_limit) {
        sim_fail(s, "Liveness: %s%llu has not applied %llu %llums after it "
                 "committed (applied %llu)", behind ? "n" : "no leader, ",
                 behind ? U(behind->id) : 0ull, U(s->probe_index),
                 U(s->now - s->converge_limit +
                   30ull * s->p.election_timeout),
                 behind ? U(behind->applied) : 0ull);
        return;
    }
    struct sim_event ev = {.time = s->now + s->p.election_timeout / 4 + 1,
                           .node = SIM_MAX_SLOTS, .kind = SIM_EV_LIVENESS};
    sim_queue_push(&s->q, &ev);
}

/* An operator shuts down the servers the current leader's configurations
 * no longer list (without pre-vote and check-quorum a removed server that
 * never learned it was removed deposes every leader, thesis §4.2.3). */
static void retire_removed(struct sim *s)
{
    struct sim_node *l = find_leader(s);
    if (l == NULL || raft_committed_configuration(l->r)->n == 0) {
        return;
    }
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive &&
            raft_config_get(raft_configuration(l->r), n->id) == NULL &&
            raft_config_get(raft_committed_configuration(l->r), n->id) ==
                NULL) {
            sim_tracef(s, "LIVENESS: n%llu is not in leader n%llu's "
                       "configuration: shut down", U(n->id), U(l->id));
            sim_node_crash(s, n);
        }
    }
}

void sim_liveness_probe(struct sim *s)
{
    retire_removed(s);
    if (s->probe_committed) {
        converge(s);
        return;
    }
    raft_time limit = s->heal_time + 30ull * s->p.election_timeout;
    if (s->now > limit) {
        struct sim_node *l = find_leader(s);
        sim_fail(s, "Liveness: no proposal committed %llums after the heal "
                 "(leader: %s%llu)", U(s->now - s->heal_time),
                 l ? "n" : "none", l ? U(l->id) : 0ull);
        return;
    }
    struct sim_event ev = {.time = s->now + s->p.election_timeout / 4 + 1,
                           .node = SIM_MAX_SLOTS, .kind = SIM_EV_LIVENESS};
    sim_queue_push(&s->q, &ev);
    struct sim_node *l = find_leader(s);
    if (s->probe_active) {
        struct sim_node *n = &s->nodes[s->probe_slot];
        const struct raft_entry *e =
            n->alive ? raft_entry_at(n->r, s->probe_index) : NULL;
        unsigned k, v;
        const struct sim_commit_rec *rec =
            s->probe_index <= s->chk.commit_max ? &s->chk.cm[s->probe_index]
                                                : NULL;
        /* The entry may already be compacted into a snapshot: ask the
         * checker's record of committed entries. */
        bool committed = rec != NULL && rec->set &&
                         rec->term == s->probe_term;
        if (n->alive && committed &&
            sim_durable_majority(s, raft_configuration(n->r), s->probe_index,
                                 s->probe_term, &k, &v)) {
            sim_tracef(s, "LIVENESS: %llu/%llu committed on %u of %u voters "
                       "%llums after the heal", U(s->probe_index),
                       U(s->probe_term), k, v, U(s->now - s->heal_time));
            s->probe_committed = true;
            s->converge_limit = s->now + 30ull * s->p.election_timeout;
            converge(s);
            return;
        }
        if (l == n && (committed || (e != NULL && e->term == s->probe_term))) {
            return; /* still on its way */
        }
        s->probe_active = false;
    }
    if (l != NULL && propose(s, l, &s->probe_index, &s->probe_term) == 0) {
        s->probe_active = true;
        s->probe_slot = l->slot;
    }
    if (l != NULL) {
        sim_node_process(s, l);
    }
}
