/* The simulated network: delay, drop, duplicate, partitions, garbage. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

int sim_slot_of(const struct sim *s, raft_id id)
{
    if (id == 0 || id > s->n_slots) {
        return -1;
    }
    return (int)(id - 1);
}

void sim_net_send(struct sim *s, unsigned from_slot, struct raft_message *m)
{
    char d[160];
    s->n_msgs++;
    int to = sim_slot_of(s, m->to);
    if (s->trace != NULL) {
        sim_msg_describe(m, d, sizeof(d));
    }
    const char *drop = NULL;
    if (to < 0) {
        drop = "unknown destination";
    } else if (s->blocked[from_slot][to]) {
        drop = "partitioned";
    } else if (sim_rng_chance(&s->rng, s->p.drop)) {
        drop = "lost";
    }
    if (drop != NULL) {
        s->n_dropped++;
        sim_tracef(s, "net: drop (%s) %s", drop, d);
        sim_msg_free(m);
        return;
    }
    unsigned copies = sim_rng_chance(&s->rng, s->p.dup) ? 2 : 1;
    for (unsigned i = 0; i < copies; i++) {
        raft_time delay = sim_rng_between(&s->rng, s->p.delay_min,
                                          s->p.delay_max);
        if (s->p.stale > 0 && sim_rng_chance(&s->rng, s->p.stale)) {
            delay = sim_rng_between(&s->rng, s->p.election_timeout,
                                    5ull * s->p.election_timeout);
        }
        struct sim_event ev = {
            .time = s->now + delay,
            .node = (unsigned)to,
            .kind = SIM_EV_DELIVER,
            .arg = from_slot,
            .msg = i == 0 ? m : sim_msg_copy(m),
        };
        sim_tracef(s, "net: send%s %s arrives at %llu",
                   i ? " (duplicate)" : "", d, U(ev.time));
        sim_queue_push(&s->q, &ev);
    }
}

void sim_net_deliver(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = &s->nodes[ev->node];
    struct raft_message *m = ev->msg;
    ev->msg = NULL;
    char d[160] = "";
    if (s->trace != NULL) {
        sim_msg_describe(m, d, sizeof(d));
    }
    if (!n->alive) {
        sim_tracef(s, "net: n%llu is down, drops %s", U(n->id), d);
    } else if (s->blocked[ev->arg][ev->node]) {
        sim_tracef(s, "net: partitioned, drops %s", d);
    } else {
        sim_tracef(s, "n%llu <- %s", U(n->id), d);
        uint64_t leased = sim_lease_count(n);
        uint64_t windowed = sim_window_count(n);
        int rv = raft_step(n->r, sim_clock(s, n), m);
        if (rv != 0) {
            sim_tracef(s, "n%llu: step: %s", U(n->id), raft_strerror(rv));
        }
        sim_observe_heard(s, n, ev->arg, m);
        sim_observe_lease(s, n, leased);
        sim_observe_window(s, n, windowed);
        sim_node_process(s, n);
    }
    sim_msg_free(m);
}

/* ---- Garbage: messages that do not belong. Non-Byzantine by design: a
 * forged message that a correct node could not tell from a real one (a
 * current-term AppendEntries from the real leader's id) is not sent. ---- */

static raft_index rnd_index(struct sim *s, raft_index last)
{
    switch (sim_rng_below(&s->rng, 4)) {
    case 0:
        return 0;
    case 1:
        return sim_rng_below(&s->rng, last + 3);
    case 2:
        return last + 1 + sim_rng_below(&s->rng, 1000);
    default:
        return sim_rng_next(&s->rng);
    }
}

static void rnd_fill(struct sim *s, struct raft_message *m, raft_index last,
                     struct raft_entry *ents, uint8_t *bytes, size_t nbytes)
{
    for (size_t i = 0; i < nbytes; i++) {
        bytes[i] = (uint8_t)sim_rng_next(&s->rng);
    }
    switch (m->type) {
    case RAFT_MSG_APPEND:
        m->append.prev_index = rnd_index(s, last);
        m->append.prev_term = sim_rng_below(&s->rng, m->term + 2);
        m->append.commit = rnd_index(s, last);
        m->append.n_entries = (size_t)sim_rng_below(&s->rng, 4);
        m->append.entries = m->append.n_entries ? ents : NULL;
        for (size_t i = 0; i < m->append.n_entries; i++) {
            ents[i].index = sim_rng_chance(&s->rng, 5000)
                                ? m->append.prev_index + 1 + i
                                : rnd_index(s, last);
            ents[i].term = sim_rng_below(&s->rng, m->term + 2);
            ents[i].type = (uint8_t)sim_rng_below(&s->rng, 5);
            ents[i].data.base = bytes;
            ents[i].data.len = (size_t)sim_rng_below(&s->rng, nbytes + 1);
        }
        m->append.seq = sim_rng_below(&s->rng, 1000);
        break;
    case RAFT_MSG_APPEND_RESP:
        m->append_resp.reject = sim_rng_chance(&s->rng, 5000);
        m->append_resp.index = rnd_index(s, last);
        m->append_resp.hint_index = rnd_index(s, last);
        m->append_resp.hint_term = sim_rng_below(&s->rng, m->term + 2);
        m->append_resp.seq = sim_rng_below(&s->rng, 1000);
        break;
    case RAFT_MSG_VOTE:
        m->vote.last_index = rnd_index(s, last);
        m->vote.last_term = sim_rng_below(&s->rng, m->term + 2);
        m->vote.pre_vote = sim_rng_chance(&s->rng, 5000);
        m->vote.transfer = sim_rng_chance(&s->rng, 5000);
        break;
    case RAFT_MSG_VOTE_RESP:
        m->vote_resp.granted = sim_rng_chance(&s->rng, 5000);
        m->vote_resp.pre_vote = sim_rng_chance(&s->rng, 5000);
        break;
    case RAFT_MSG_HEARTBEAT:
        m->heartbeat.commit = rnd_index(s, last);
        m->heartbeat.seq = sim_rng_next(&s->rng);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        m->heartbeat_resp.seq = sim_rng_next(&s->rng);
        break;
    case RAFT_MSG_SNAPSHOT:
        m->snapshot.index = rnd_index(s, last);
        m->snapshot.snap_term = sim_rng_below(&s->rng, m->term + 2);
        m->snapshot.config.n = (unsigned)sim_rng_below(&s->rng,
                                                       RAFT_MAX_SERVERS + 1);
        for (unsigned i = 0; i < m->snapshot.config.n; i++) {
            m->snapshot.config.servers[i].id = sim_rng_below(&s->rng, 12);
            m->snapshot.config.servers[i].role =
                (uint8_t)sim_rng_below(&s->rng, 4);
        }
        m->snapshot.size = sim_rng_below(&s->rng, 200);
        m->snapshot.offset = sim_rng_below(&s->rng, 200);
        m->snapshot.data.base = bytes;
        m->snapshot.data.len = (size_t)sim_rng_below(&s->rng, nbytes + 1);
        m->snapshot.chunk_len = (uint32_t)sim_rng_below(&s->rng, 300);
        m->snapshot.last = sim_rng_chance(&s->rng, 5000);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        m->snapshot_resp.index = rnd_index(s, last);
        m->snapshot_resp.offset = sim_rng_below(&s->rng, 300);
        m->snapshot_resp.reject = sim_rng_chance(&s->rng, 5000);
        break;
    case RAFT_MSG_READ_INDEX:
        m->read_index.ctx = sim_rng_next(&s->rng) | (1ull << 62);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        m->read_index_resp.ctx = sim_rng_next(&s->rng) | (1ull << 62);
        m->read_index_resp.index = rnd_index(s, last);
        m->read_index_resp.reject = sim_rng_chance(&s->rng, 5000);
        break;
    default:
        break;
    }
}

void sim_net_garbage(struct sim *s)
{
    unsigned alive[SIM_MAX_SLOTS], na = 0;
    for (unsigned i = 0; i < s->n_slots; i++) {
        if (s->nodes[i].alive) {
            alive[na++] = i;
        }
    }
    if (na == 0) {
        return;
    }
    struct sim_node *n = &s->nodes[alive[sim_rng_below(&s->rng, na)]];
    raft_term cur = raft_current_term(n->r);
    raft_index last = raft_last_index(n->r);
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    struct raft_entry ents[4];
    uint8_t bytes[48];
    m.to = sim_rng_chance(&s->rng, 9000) ? n->id : sim_rng_next(&s->rng);
    unsigned kind = (unsigned)sim_rng_below(&s->rng, 4);
    if (cur == 0) {
        kind = 1; /* nothing is stale to a node that never saw a term */
    }
    const char *what = "";
    switch (kind) {
    case 0: /* a stale term from anyone: ignored, or answered per §5.1 */
        m.type = (uint8_t)(1 + sim_rng_below(&s->rng, RAFT_MSG_TYPE_MAX));
        m.term = sim_rng_below(&s->rng, cur);
        m.from = sim_rng_chance(&s->rng, 7000)
                     ? 1 + sim_rng_below(&s->rng, s->n_slots)
                     : sim_rng_next(&s->rng);
        what = "stale term";
        break;
    case 1: /* not a message type at all */
        m.type = sim_rng_chance(&s->rng, 3000)
                     ? 0
                     : (uint8_t)(RAFT_MSG_TYPE_MAX + 1 +
                                 sim_rng_below(&s->rng, 200));
        m.term = sim_rng_chance(&s->rng, 5000) ? sim_rng_next(&s->rng)
                                               : cur + 1;
        m.from = 1 + sim_rng_below(&s->rng, s->n_slots);
        what = "bad type";
        break;
    case 2: { /* from a server that does not exist, any term; only kinds a
               * leader never sends, so accepting them breaks nothing */
        static const uint8_t types[] = {
            RAFT_MSG_APPEND_RESP,    RAFT_MSG_VOTE,
            RAFT_MSG_VOTE_RESP,      RAFT_MSG_HEARTBEAT_RESP,
            RAFT_MSG_SNAPSHOT_RESP,  RAFT_MSG_READ_INDEX,
            RAFT_MSG_READ_INDEX_RESP, RAFT_MSG_TIMEOUT_NOW};
        m.type = types[sim_rng_below(&s->rng, sizeof(types))];
        m.term = cur + sim_rng_below(&s->rng, 3);
        m.from = 50 + sim_rng_below(&s->rng, 50);
        what = "unknown sender";
        break;
    }
    default: /* a current-term success beyond the receiver's log */
        m.type = RAFT_MSG_APPEND_RESP;
        m.term = cur;
        m.from = 1 + sim_rng_below(&s->rng, s->n_slots);
        what = "index beyond the log";
        break;
    }
    rnd_fill(s, &m, last, ents, bytes, sizeof(bytes));
    if (kind == 3) {
        m.append_resp.reject = false;
        m.append_resp.index = last + 1 + sim_rng_below(&s->rng, 100);
    }
    s->n_garbage++;
    if (s->trace != NULL) {
        char d[160];
        sim_msg_describe(&m, d, sizeof(d));
        sim_tracef(s, "n%llu <- garbage (%s) %s", U(n->id), what, d);
    }
    int rv = raft_step(n->r, sim_clock(s, n), &m);
    if (rv != 0) {
        sim_tracef(s, "n%llu: step: %s", U(n->id), raft_strerror(rv));
    }
    sim_node_process(s, n);
}
