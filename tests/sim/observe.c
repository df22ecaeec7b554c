/* The checks run after every event: they observe the cores and the stores. */
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

bool sim_durable_majority(struct sim *s, const struct raft_config *c,
                          raft_index index, raft_term term, unsigned *count,
                          unsigned *voters)
{
    unsigned v = 0, k = 0;
    for (unsigned i = 0; i < c->n && i < RAFT_MAX_SERVERS; i++) {
        if (c->servers[i].role != RAFT_VOTER) {
            continue;
        }
        v++;
        int slot = sim_slot_of(s, c->servers[i].id);
        if (slot >= 0 && sim_store_holds(&s->nodes[slot].store, index, term)) {
            k++;
        }
    }
    *count = k;
    *voters = v;
    return v > 0 && k > v / 2;
}

/* Commit advanced on n: record the newly committed entries; a leader must
 * have them durable on a majority of its configuration's voters (paper
 * §5.3-5.4; thesis §10.2.1: the leader's own write counts only once it is
 * persisted). */
static void observe_commit(struct sim *s, struct sim_node *n, raft_index c)
{
    raft_term cur = raft_current_term(n->r);
    if (c > raft_last_index(n->r)) {
        sim_fail(s, "n%llu: commit %llu beyond its last index %llu",
                 U(n->id), U(c), U(raft_last_index(n->r)));
        return;
    }
    for (raft_index i = n->seen_commit + 1; i <= c; i++) {
        const struct raft_entry *e = raft_entry_at(n->r, i);
        if (e == NULL) {
            continue; /* compacted: covered by a snapshot */
        }
        if (!sim_check_committed(&s->chk, n->id, i, e->term,
                                 sim_entry_hash(e), cur)) {
            return;
        }
    }
    if (raft_role(n->r) != RAFT_LEADER) {
        return;
    }
    const struct raft_entry *e = raft_entry_at(n->r, c);
    if (e == NULL) {
        return;
    }
    unsigned k, v;
    if (!sim_durable_majority(s, raft_configuration(n->r), c, e->term, &k,
                              &v)) {
        char who[128] = "";
        size_t w = 0;
        const struct raft_config *cf = raft_configuration(n->r);
        for (unsigned i = 0; i < cf->n && w + 24 < sizeof(who); i++) {
            int slot = sim_slot_of(s, cf->servers[i].id);
            const struct sim_store *st =
                slot >= 0 ? &s->nodes[slot].store : NULL;
            w += (size_t)snprintf(who + w, sizeof(who) - w, " n%llu:%s",
                                  U(cf->servers[i].id),
                                  st && sim_store_holds(st, c, e->term)
                                      ? "yes"
                                      : "no");
        }
        sim_fail(s, "leader n%llu commits %llu/%llu, durable on only %u of "
                 "%u voters:%s", U(n->id), U(c), U(e->term), k, v, who);
    }
}

/* Leader Completeness (§5.4): an entry committed in term T is in the log
 * of every leader of a term > T. */
static void observe_leader(struct sim *s, struct sim_node *n, raft_term term)
{
    if (n->lc_term != term) {
        n->lc_term = term;
        n->lc_checked = 0;
    }
    struct sim_check *c = &s->chk;
    raft_index first = raft_first_index(n->r);
    for (raft_index i = n->lc_checked + 1; i <= c->commit_max; i++) {
        const struct sim_commit_rec *r = &c->cm[i];
        if (!r->set || r->cterm >= term) {
            continue;
        }
        const struct raft_entry *e = raft_entry_at(n->r, i);
        if (e == NULL && i < first) {
            continue; /* compacted into its snapshot */
        }
        if (e == NULL || e->term != r->term ||
            sim_entry_hash(e) != r->hash) {
            sim_fail(s, "Leader Completeness: leader n%llu of term %llu "
                     "lacks entry %llu/%llu committed in term %llu "
                     "(has %s%llu)", U(n->id), U(term), U(i), U(r->term),
                     U(r->cterm), e ? "term " : "nothing, last ",
                     e ? U(e->term) : U(raft_last_index(n->r)));
            return;
        }
    }
    n->lc_checked = c->commit_max;
}

/* Thesis §4.2.2: a leader removed from the configuration steps down once
 * the change is committed (here: within two election timeouts). */
static void observe_removed_leader(struct sim *s, struct sim_node *n)
{
    const struct raft_config *cc = raft_committed_configuration(n->r);
    const struct raft_server *a = raft_config_get(cc, n->id);
    const struct raft_server *b =
        raft_config_get(raft_configuration(n->r), n->id);
    /* An empty committed configuration: nothing known committed yet (a
     * restarted leader), so its removal is not known committed either. */
    if (cc->n == 0 || (a != NULL && a->role == RAFT_VOTER) ||
        (b != NULL && b->role == RAFT_VOTER)) {
        n->removed_since = 0;
        return;
    }
    if (n->removed_since == 0) {
        n->removed_since = s->now + 1;
        return;
    }
    if (s->now + 1 - n->removed_since > 2ull * s->p.election_timeout) {
        sim_fail(s, "leader n%llu still leads %llums after its removal "
                 "committed", U(n->id), U(s->now + 1 - n->removed_since));
    }
}

void sim_observe(struct sim *s)
{
    for (unsigned i = 0; i < s->n_slots && !s->chk.failed; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->alive) {
            continue;
        }
        raft_term term = raft_current_term(n->r);
        enum raft_role role = raft_role(n->r);
        raft_index commit = raft_commit_index(n->r);
        if (term < n->seen_term) {
            sim_fail(s, "n%llu: term went back from %llu to %llu", U(n->id),
                     U(n->seen_term), U(term));
            return;
        }
        if (role == RAFT_LEADER &&
            !sim_check_leader(&s->chk, term, n->id)) {
            return;
        }
        if (commit < n->seen_commit) {
            sim_fail(s, "n%llu: commit went back from %llu to %llu",
                     U(n->id), U(n->seen_commit), U(commit));
            return;
        }
        if (commit > n->seen_commit) {
            observe_commit(s, n, commit);
        }
        if (role == RAFT_LEADER && !s->chk.failed) {
            observe_leader(s, n, term);
            observe_removed_leader(s, n);
        } else {
            n->removed_since = 0;
        }
        if (role != n->seen_role || term != n->seen_term) {
            sim_tracef(s, "n%llu is %s in term %llu", U(n->id),
                       role == RAFT_LEADER      ? "LEADER"
                       : role == RAFT_CANDIDATE ? "candidate"
                       : role == RAFT_PRE_CANDIDATE ? "pre-candidate"
                                                    : "follower",
                       U(term));
        }
        n->seen_term = term;
        n->seen_commit = commit;
        n->seen_role = (uint8_t)role;
    }
}

/* The expensive checks, run every so often: Log Matching over every live
 * in-memory log, and every committed entry still held durably somewhere. */
void sim_observe_full(struct sim *s)
{
    struct sim_check *c = &s->chk;
    for (unsigned i = 0; i < s->n_slots && !c->failed; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->alive) {
            continue;
        }
        raft_index first = raft_first_index(n->r);
        raft_index last = raft_last_index(n->r);
        raft_term prev = 0;
        for (raft_index k = first; k <= last && k > 0; k++) {
            const struct raft_entry *e = raft_entry_at(n->r, k);
            if (e == NULL) {
                sim_fail(s, "n%llu: no entry %llu between first %llu and "
                         "last %llu", U(n->id), U(k), U(first), U(last));
                return;
            }
            if (e->index != k) {
                sim_fail(s, "n%llu: entry at %llu says index %llu", U(n->id),
                         U(k), U(e->index));
                return;
            }
            if (!sim_check_log_entry(c, n->id, k, e->term, sim_entry_hash(e),
                                     prev)) {
                return;
            }
            prev = e->term;
        }
    }
    for (raft_index k = 1; k <= c->commit_max && !c->failed; k++) {
        const struct sim_commit_rec *r = &c->cm[k];
        if (!r->set) {
            continue;
        }
        bool held = false;
        for (unsigned i = 0; i < s->n_slots && !held; i++) {
            held = sim_store_holds(&s->nodes[i].store, k, r->term);
        }
        if (!held) {
            sim_fail(s, "committed entry %llu/%llu is durable nowhere: lost",
                     U(k), U(r->term));
        }
    }
}

uint64_t sim_lease_count(const struct sim_node *n)
{
    struct raft_read_stats st;
    if (!n->alive || n->r == NULL) {
        return 0;
    }
    raft_read_stats(n->r, &st);
    return st.lease_reads + st.window_reads;
}

uint64_t sim_window_count(const struct sim_node *n)
{
    struct raft_read_stats st;
    if (!n->alive || n->r == NULL) {
        return 0;
    }
    raft_read_stats(n->r, &st);
    return st.window_reads;
}

void sim_observe_heard(struct sim *s, struct sim_node *n, unsigned from_slot,
                       const struct raft_message *m)
{
    if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) &&
        from_slot < SIM_MAX_SLOTS && n->r != NULL &&
        raft_role(n->r) == RAFT_FOLLOWER &&
        raft_current_term(n->r) == m->term && raft_leader(n->r) == m->from) {
        n->heard_at[from_slot] = s->now;
        n->heard_term[from_slot] = m->term;
    }
}

void sim_observe_window(struct sim *s, struct sim_node *n, uint64_t before)
{
    if (sim_window_count(n) == before) {
        return;
    }
    raft_term t = raft_current_term(n->r);
    const struct raft_config *c = raft_configuration(n->r);
    /* confirm_window of n's clock, in global ms: n's clock may run up to
     * skew_ppm slow. */
    uint64_t slow = 1000000 - s->p.skew_ppm;
    uint64_t span = (s->p.confirm_window * 1000000ull + slow - 1) / slow + 2;
    unsigned voters = 0, heard = 0;
    for (unsigned i = 0; i < c->n; i++) {
        int k;
        if (c->servers[i].role != RAFT_VOTER) {
            continue;
        }
        voters++;
        if (c->servers[i].id == n->id) {
            heard++;
            continue;
        }
        k = sim_slot_of(s, c->servers[i].id);
        if (k >= 0 && s->nodes[k].heard_term[n->slot] == t &&
            s->nodes[k].heard_at[n->slot] + span > s->now) {
            heard++;
        }
    }
    if (heard < voters / 2 + 1) {
        sim_fail(s, "Confirm window: n%llu (leader of term %llu) answers a "
                 "confirm read without a round, but only %u of its %u "
                 "voters accepted a message of its term in the last %llu ms",
                 U(n->id), U(t), heard, voters, U(span));
    }
}

void sim_observe_lease(struct sim *s, struct sim_node *n, uint64_t before)
{
    if (sim_lease_count(n) == before) {
        return;
    }
    raft_term t = raft_current_term(n->r);
    const struct raft_config *c = raft_configuration(n->r);
    unsigned voters = 0, gone = 0;
    for (unsigned i = 0; i < c->n; i++) {
        int k = sim_slot_of(s, c->servers[i].id);
        if (c->servers[i].role != RAFT_VOTER) {
            continue;
        }
        voters++;
        if (k >= 0 && s->nodes[k].vote_term_max > t) {
            gone++;
        }
    }
    if (voters > 0 && gone >= voters / 2 + 1) {
        sim_fail(s, "Lease: n%llu (leader of term %llu) answers a read from "
                 "its lease, but %u of its %u voters voted in a later term",
                 U(n->id), U(t), gone, voters);
        return;
    }
    for (unsigned i = 0; i < s->n_slots; i++) {
        const struct sim_node *o = &s->nodes[i];
        if (o != n && o->alive && raft_role(o->r) == RAFT_LEADER &&
            raft_current_term(o->r) > t) {
            sim_fail(s, "Lease: n%llu (leader of term %llu) answers a read "
                     "from its lease while n%llu leads term %llu",
                     U(n->id), U(t), U(o->id), U(raft_current_term(o->r)));
            return;
        }
    }
}
