/* One simulated run: parameters from the seed, the event loop, the phases. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

void sim_tracef(struct sim *s, const char *fmt, ...)
{
    if (s->trace == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->trace, "[%7llu] ", U(s->now));
    vfprintf(s->trace, fmt, ap);
    fputc('\n', s->trace);
    va_end(ap);
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
    if (s->chk.failed) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char buf[sizeof(s->chk.why)];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sim_check_fail(&s->chk, "%s", buf);
}

static raft_time clock_at(const struct sim_node *n, raft_time g)
{
    int64_t t = (int64_t)g + (int64_t)g * n->skew / 1000000;
    return n->clock_offset + (raft_time)t;
}

raft_time sim_clock(const struct sim *s, const struct sim_node *n)
{
    return clock_at(n, s->now);
}

raft_time sim_clock_global(const struct sim *s, const struct sim_node *n,
                           raft_time local)
{
    raft_time g;
    if (clock_at(n, s->now) >= local) {
        return s->now;
    }
    g = (raft_time)((double)(local - n->clock_offset) * 1e6 /
                    (1e6 + (double)n->skew));
    if (g < s->now) {
        g = s->now;
    }
    while (clock_at(n, g) < local) {
        g++;
    }
    while (g > s->now && clock_at(n, g - 1) >= local) {
        g--;
    }
    return g;
}

/* Everything random about a run comes from its seed. */
static void pick_params(struct sim *s)
{
    struct sim_params *p = &s->p;
    struct sim_rng *g = &s->rng;
    p->election_timeout = (unsigned)sim_rng_between(g, 100, 300);
    p->heartbeat_interval = p->election_timeout /
                            (unsigned)sim_rng_between(g, 4, 10);
    p->delay_min = (unsigned)sim_rng_between(g, 1, 5);
    p->delay_max = p->delay_min + (unsigned)sim_rng_between(g, 0, 25);
    p->drop = sim_rng_chance(g, 2000) ? 0 : (unsigned)sim_rng_below(g, 1500);
    p->dup = sim_rng_chance(g, 3000) ? 0 : (unsigned)sim_rng_below(g, 800);
    p->stale = sim_rng_chance(g, 5000) ? 0 : (unsigned)sim_rng_below(g, 100);
    p->garbage_every =
        sim_rng_chance(g, 5000) ? (unsigned)sim_rng_between(g, 10, 300) : 0;
    p->fault_every = (unsigned)sim_rng_between(g, 50, 600);
    p->work_every = (unsigned)sim_rng_between(g, 2, 30);
    p->w_propose = (unsigned)sim_rng_between(g, 10, 60);
    p->w_propose_follower = (unsigned)sim_rng_between(g, 0, 5);
    p->w_read = (unsigned)sim_rng_between(g, 0, 40);
    p->w_transfer = (unsigned)sim_rng_between(g, 0, 3);
    p->w_change = (unsigned)sim_rng_between(g, 0, 4);
    p->w_crash = (unsigned)sim_rng_between(g, 0, 10);
    p->w_restart = (unsigned)sim_rng_between(g, 5, 15);
    p->w_partition = (unsigned)sim_rng_between(g, 0, 10);
    p->w_heal = (unsigned)sim_rng_between(g, 3, 10);
    p->w_slow = (unsigned)sim_rng_between(g, 0, 5);
    p->snapshot_every = (unsigned)sim_rng_between(g, 5, 80);
    p->durable_sm = sim_rng_chance(g, 5000);
    p->pre_vote = sim_rng_chance(g, 7500);
    p->check_quorum = sim_rng_chance(g, 7500);
    p->max_append_bytes = (size_t)sim_rng_between(g, 16, 4096);
    p->max_inflight = (unsigned)sim_rng_between(g, 1, 8);
    p->chunk_bytes = (uint32_t)sim_rng_between(g, 8, 128);
    p->trailing = sim_rng_below(g, 20);
    if (sim_rng_chance(g, 2500)) {
        /* An extreme seed: lossy slow network, membership churn, tiny
         * snapshots and messages. */
        p->drop = (unsigned)sim_rng_below(g, 3000);
        p->delay_max = p->delay_min +
                       (unsigned)sim_rng_below(g, p->election_timeout / 4);
        p->w_change = (unsigned)sim_rng_between(g, 5, 25);
        p->w_transfer = (unsigned)sim_rng_between(g, 0, 10);
        p->snapshot_every = (unsigned)sim_rng_between(g, 1, 5);
        p->chunk_bytes = (uint32_t)sim_rng_between(g, 8, 24);
        p->trailing = sim_rng_below(g, 3);
        p->max_append_bytes = (size_t)sim_rng_between(g, 64, 512);
        p->max_inflight = (unsigned)sim_rng_between(g, 1, 4);
    }
}

/* confirm_window, from a stream of its own (the other draws stay what
 * they were): 0 (always a round), the heartbeat interval (the default),
 * anything up to an election timeout (beyond the lease: confirm reads
 * then behave as lease reads), in a quarter of the seeds each. */
static void pick_window(struct sim *s, const struct sim_knobs *k)
{
    struct sim_rng wg;
    sim_rng_init(&wg, sim_mix(s->seed, 0xc0f1, 0));
    switch (sim_rng_below(&wg, 4)) {
    case 0:
        s->p.confirm_window = 0;
        break;
    case 1:
        s->p.confirm_window = s->p.heartbeat_interval;
        break;
    case 2:
        s->p.confirm_window =
            (unsigned)sim_rng_between(&wg, 1, s->p.election_timeout);
        break;
    default:
        s->p.confirm_window = s->p.election_timeout;
        break;
    }
    if (k->confirm_window >= 0) {
        s->p.confirm_window = (unsigned)k->confirm_window;
    }
}

/* lazy_commit, from a stream of its own too: on in half the seeds. */
static void pick_lazy(struct sim *s)
{
    struct sim_rng lg;
    sim_rng_init(&lg, sim_mix(s->seed, 0x1a2c, 0));
    s->p.lazy_commit = sim_rng_chance(&lg, 5000);
}

/* Leases and clocks come from a stream of their own: every other draw of a
 * seed, so its network, faults and workload, is what it was before
 * leases. Lease reads on in 3 seeds of 4; a quarter of the seeds share one
 * clock, in the others each node's clock runs up to 4% fast or slow (two
 * nodes' rates differ by up to 8.3%: 0.96 / 1.04 = 0.923, within the
 * default margin, a lease of 0.9 election timeouts). */
static void pick_clocks(struct sim *s, const struct sim_knobs *k)
{
    struct sim_rng cg;
    sim_rng_init(&cg, sim_mix(s->seed, 0xc10c, 0));
    s->p.lease_reads = sim_rng_chance(&cg, 7500);
    s->p.lease_drift = 100;
    s->p.skew_ppm =
        sim_rng_chance(&cg, 2500) ? 0 : (unsigned)sim_rng_between(&cg, 0, 40000);
    if (k->lease != SIM_LEASE_SEED) {
        s->p.lease_reads = k->lease == SIM_LEASE_ON;
    }
    if (k->skew_ppm >= 0) {
        s->p.skew_ppm = (unsigned)k->skew_ppm;
    }
    if (k->lease_drift >= 0) {
        s->p.lease_drift = (unsigned)k->lease_drift;
    }
    pick_window(s, k);
    pick_lazy(s);
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        n->skew = 0;
        n->clock_offset = 0;
        if (s->p.skew_ppm > 0) {
            n->skew = (int64_t)sim_rng_between(&cg, 0, 2ull * s->p.skew_ppm) -
                      (int64_t)s->p.skew_ppm;
            n->clock_offset = sim_rng_below(&cg, 100000);
        }
    }
}

void sim_init(struct sim *s, uint64_t seed, unsigned nodes, uint64_t steps,
              FILE *trace, enum sim_break brk)
{
    struct sim_knobs k = {.lease = SIM_LEASE_SEED, .skew_ppm = -1,
                          .lease_drift = -1, .confirm_window = -1};
    sim_init_knobs(s, seed, nodes, steps, trace, brk, &k);
}

void sim_init_knobs(struct sim *s, uint64_t seed, unsigned nodes,
                    uint64_t steps, FILE *trace, enum sim_break brk,
                    const struct sim_knobs *k)
{
    static const unsigned sizes[] = {3, 4, 5, 7};
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->trace = trace;
    s->brk = brk;
    s->max_steps = steps;
    s->phase = SIM_PHASE_FAULTS;
    sim_rng_init(&s->rng, seed);
    sim_queue_init(&s->q);
    sim_check_init(&s->chk);
    s->n_voters = nodes ? nodes : sizes[sim_rng_below(&s->rng, 4)];
    s->n_slots = s->n_voters + SIM_SPARES;
    pick_params(s);
    pick_clocks(s, k);
    sim_tracef(s, "seed %llu: lease reads %d (drift margin %u/1000), clock "
               "skew up to %u ppm, confirm window %ums, lazy commit %d",
               U(seed), s->p.lease_reads, s->p.lease_drift, s->p.skew_ppm,
               s->p.confirm_window, s->p.lazy_commit);
    sim_tracef(s, "seed %llu: %u voters + %u spares, election %ums, "
               "heartbeat %ums, delay %u-%ums, drop %u/10000, dup %u/10000, "
               "garbage every %ums, pre-vote %d, check-quorum %d, snapshot "
               "every %u, chunk %u, append bytes %zu, inflight %u, trailing "
               "%llu, durable state machine %d", U(seed), s->n_voters, SIM_SPARES,
               s->p.election_timeout, s->p.heartbeat_interval,
               s->p.delay_min, s->p.delay_max, s->p.drop, s->p.dup,
               s->p.garbage_every, s->p.pre_vote, s->p.check_quorum,
               s->p.snapshot_every, s->p.chunk_bytes, s->p.max_append_bytes,
               s->p.max_inflight, U(s->p.trailing), s->p.durable_sm);

    /* Bootstrap: every initial member persists the same first entry. */
    struct raft_config c;
    memset(&c, 0, sizeof(c));
    c.n = s->n_voters;
    for (unsigned i = 0; i < s->n_voters; i++) {
        c.servers[i].id = i + 1;
        c.servers[i].role = RAFT_VOTER;
        snprintf(c.servers[i].addr, RAFT_ADDR_MAX, "sim-%u", i + 1);
    }
    struct raft_entry boot;
    int rv = raft_bootstrap_entry(&c, &boot);
    if (rv != 0) {
        sim_fail(s, "raft_bootstrap_entry: %s", raft_strerror(rv));
        return;
    }
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        n->id = i + 1;
        n->slot = i;
        sim_store_init(&n->store);
        n->slow_disk = brk == SIM_BREAK_ACK_BEFORE_PERSIST ||
                       sim_rng_chance(&s->rng, 2000);
        n->disk_delay_max = (unsigned)sim_rng_between(&s->rng, 1, 40);
        if (n->skew != 0) {
            sim_tracef(s, "n%llu clock: offset %llu, rate %+lld ppm",
                       U(n->id), U(n->clock_offset), (long long)n->skew);
        }
        char why[128];
        if (i < s->n_voters &&
            sim_store_append(&n->store, &boot, 1, why, sizeof(why)) != 0) {
            sim_fail(s, "bootstrap: %s", why);
        }
    }
    free(boot.data.base);
    for (unsigned i = 0; i < s->n_slots && !s->chk.failed; i++) {
        sim_node_start(s, &s->nodes[i]);
    }
    struct sim_event ev = {.time = 1, .node = SIM_MAX_SLOTS};
    ev.kind = SIM_EV_WORKLOAD;
    sim_queue_push(&s->q, &ev);
    ev.kind = SIM_EV_FAULT;
    ev.time = s->p.fault_every;
    sim_queue_push(&s->q, &ev);
    if (s->p.garbage_every > 0) {
        ev.kind = SIM_EV_GARBAGE;
        ev.time = s->p.garbage_every;
        sim_queue_push(&s->q, &ev);
    }
}

void sim_close(struct sim *s)
{
    memset(&s->reads, 0, sizeof(s->reads));
    for (unsigned i = 0; i < s->n_slots; i++) {
        sim_node_close(&s->nodes[i]);
        sim_store_close(&s->nodes[i].store);
        s->reads.lease_reads += s->nodes[i].reads_acc.lease_reads;
        s->reads.round_reads += s->nodes[i].reads_acc.round_reads;
        s->reads.rounds += s->nodes[i].reads_acc.rounds;
        s->reads.window_reads += s->nodes[i].reads_acc.window_reads;
    }
    sim_queue_close(&s->q);
    sim_check_close(&s->chk);
    free(s->pending);
    s->pending = NULL;
}

static void dispatch(struct sim *s, struct sim_event *ev)
{
    bool faults = s->phase == SIM_PHASE_FAULTS;
    struct sim_node *n =
        ev->node < SIM_MAX_SLOTS ? &s->nodes[ev->node] : NULL;
    switch (ev->kind) {
    case SIM_EV_PERSIST:
        if (n->alive && ev->epoch == n->epoch) {
            sim_node_persist_done(s, n);
        }
        break;
    case SIM_EV_DELIVER:
        sim_net_deliver(s, ev);
        break;
    case SIM_EV_TICK:
        if (n->alive && ev->epoch == n->epoch && ev->time == n->next_tick &&
            n->tick_pending) {
            n->tick_pending = false;
            int rv = raft_tick(n->r, sim_clock(s, n));
            if (rv != 0) {
                sim_tracef(s, "n%llu: tick: %s", U(n->id), raft_strerror(rv));
            }
            sim_node_process(s, n);
        }
        break;
    case SIM_EV_GARBAGE:
        if (faults) {
            sim_net_garbage(s);
            struct sim_event next = {
                .time = s->now + sim_rng_between(&s->rng, 1,
                                                 2 * s->p.garbage_every),
                .node = SIM_MAX_SLOTS, .kind = SIM_EV_GARBAGE};
            sim_queue_push(&s->q, &next);
        }
        break;
    case SIM_EV_WORKLOAD:
        if (faults) {
            sim_workload(s);
        }
        break;
    case SIM_EV_FAULT:
        if (faults) {
            sim_fault(s);
        }
        break;
    case SIM_EV_LIVENESS:
        if (s->phase == SIM_PHASE_LIVENESS) {
            sim_liveness_probe(s);
        }
        break;
    default:
        break;
    }
}

static void config_str(const struct raft_config *c, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < c->n && i < RAFT_MAX_SERVERS && k + 24 < len;
         i++) {
        k += (size_t)snprintf(buf + k, len - k, "%s%llu%s", i ? "," : "",
                              U(c->servers[i].id),
                              c->servers[i].role == RAFT_VOTER ? "" : "L");
    }
}

/* The state of every node, for the trace of a failed run. */
static void dump(struct sim *s)
{
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        char c1[128], c2[128];
        if (!n->alive) {
            sim_tracef(s, "state n%llu: down; store term %llu vote %llu "
                       "snap %llu last %llu", U(n->id), U(n->store.term),
                       U(n->store.vote), U(n->store.snap_index),
                       U(sim_store_last_index(&n->store)));
            continue;
        }
        config_str(raft_configuration(n->r), c1, sizeof(c1));
        config_str(raft_committed_configuration(n->r), c2, sizeof(c2));
        sim_tracef(s, "state n%llu: role %d term %llu leader %llu commit "
                   "%llu applied %llu log [%llu..%llu] config {%s} "
                   "committed config {%s}", U(n->id), raft_role(n->r),
                   U(raft_current_term(n->r)), U(raft_leader(n->r)),
                   U(raft_commit_index(n->r)), U(n->applied),
                   U(raft_first_index(n->r)), U(raft_last_index(n->r)), c1,
                   c2);
    }
}

bool sim_run(struct sim *s)
{
    struct sim_event ev;
    while (!s->chk.failed && s->phase != SIM_PHASE_DONE) {
        if (!sim_queue_pop(&s->q, &ev)) {
            sim_fail(s, "the event queue ran dry");
            break;
        }
        if (ev.time < s->now) {
            sim_fail(s, "simulator bug: event in the past");
            sim_msg_free(ev.msg);
            break;
        }
        if (ev.time == s->now) {
            if (++s->same_time_events > 200000) {
                sim_fail(s, "virtual time stuck at %llu (livelock)",
                         U(s->now));
            }
        } else {
            s->same_time_events = 0;
        }
        s->now = ev.time;
        dispatch(s, &ev);
        sim_msg_free(ev.msg);
        s->steps++;
        /* Every step: Election Safety, commits (State Machine Safety, durable
         * majority), Leader Completeness; Log Matching on every appended
         * entry. Every 8 steps (5x cheaper than every step): the full scan
         * of every in-memory log and of every committed entry's durability. */
        sim_observe(s);
        if ((s->steps & 7) == 0) {
            sim_observe_full(s);
        }
        if (s->phase == SIM_PHASE_FAULTS && s->steps >= s->max_steps &&
            !s->chk.failed) {
            if (s->safety_only) {
                break;
            }
            sim_heal(s);
        }
    }
    if (!s->chk.failed) {
        sim_observe_full(s);
    }
    if (s->chk.failed) {
        sim_tracef(s, "VIOLATION: %s", s->chk.why);
        dump(s);
    }
    return !s->chk.failed;
}
