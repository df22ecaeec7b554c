/* Leader election (paper §5.2), pre-vote (thesis §9.6), leases (§4.2.3). */
#include "core.h"

void raft__reset_election_timer(struct raft *r)
{
    unsigned t = r->o.election_timeout;
    /* Paper §5.2: randomized in [t, 2t) so that split votes are rare. */
    r->randomized_timeout = t + (unsigned)(raft__rand(r) % t);
    r->election_deadline = r->now + r->randomized_timeout;
}

bool raft__self_is_voter(const struct raft *r)
{
    return raft__is_voter(&raft__confs_last(&r->confs)->c, r->o.id);
}

bool raft__can_campaign(const struct raft *r)
{
    const struct raft__conf_ent *cur = raft__confs_last(&r->confs);
    if (raft__is_voter(&cur->c, r->o.id)) {
        return true;
    }
    /* A voter whose own removal is appended but not known committed may
     * still be needed: it may hold the only up-to-date log (it was the
     * leader that appended it). It campaigns, counting only the new
     * configuration's voters, so it can only win with their majority
     * (thesis §4.2.2). The previous configuration, not the one at our
     * commit index: after a restart commit restarts at the applied index. */
    return cur->index > r->commit && r->confs.n >= 2 &&
           raft__is_voter(&r->confs.v[r->confs.n - 2].c, r->o.id);
}

bool raft__in_lease(const struct raft *r)
{
    /* Thesis §4.2.3: a server that heard from a current leader within the
     * minimum election timeout does not let anyone disrupt it — the leader
     * included (it is the current leader): a removed server that keeps
     * campaigning must not depose it. A leader cut off from its majority
     * steps down by check-quorum, or on hearing a newer leader's term.
     * A follower keeps honoring the leader it last heard even after a
     * higher term reached it by another message (a late vote response, a
     * stale reply) that made it forget who leads: the leader's read lease
     * (§6.4.1, read_index.c) counts on it until the timeout has passed.
     * last_heard starts at raft_new's `now`: a server that restarts does
     * not know when it last heard from a leader, so it waits a timeout. */
    if (r->role == RAFT_LEADER) {
        return true;
    }
    return r->role == RAFT_FOLLOWER &&
           r->now - r->last_heard < r->o.election_timeout;
}

void raft__become_follower(struct raft *r, raft_term term, raft_id leader)
{
    if (r->role == RAFT_LEADER) {
        raft__reads_fail(r, RAFT_ERR_LEADERSHIP_LOST);
        if (r->transfer_target != 0) {
            raft__transfer_abort(r, "stepped down");
        }
    }
    if (term > r->term || leader != r->leader) {
        if (r->n_freads > 0) {
            raft__freads_fail(r, false);
        }
        /* A snapshot transfer belongs to the leader that started it. */
        r->rx_active = false;
    }
    if (term > r->term) {
        raft__trace(r, "term %llu is higher than %llu -> become follower",
                    (unsigned long long)term, (unsigned long long)r->term);
        r->term = term;
        r->vote = 0;
        r->hs_dirty = true;
    } else if (r->role != RAFT_FOLLOWER) {
        raft__trace(r, "become follower in term %llu",
                    (unsigned long long)term);
    }
    /* Paper Fig. 2: only a leader's message or a granted vote resets the
     * timer. A candidate that steps down on a higher-term request keeps its
     * deadline: resetting it would let a stale candidate whose requests
     * keep arriving first win the race for every term. */
    if (r->role == RAFT_LEADER || leader != 0) {
        raft__reset_election_timer(r);
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->n_votes = 0;
    if (leader != 0) {
        r->last_heard = r->now;
    }
}

static void record_vote(struct raft *r, raft_id id, bool granted)
{
    unsigned i;
    for (i = 0; i < r->n_votes; i++) {
        if (r->votes[i].id == id) {
            return; /* a duplicate response counts once */
        }
    }
    if (r->n_votes < RAFT_MAX_SERVERS) {
        r->votes[r->n_votes].id = id;
        r->votes[r->n_votes].granted = granted ? 1 : -1;
        r->n_votes++;
    }
}

/* Returns 1 if a majority of voters granted, -1 if a majority rejected. */
static int tally(const struct raft *r)
{
    const struct raft_config *c = &raft__confs_last(&r->confs)->c;
    unsigned n = raft__n_voters(c), yes = 0, no = 0, i;
    for (i = 0; i < r->n_votes; i++) {
        if (!raft__is_voter(c, r->votes[i].id)) {
            continue;
        }
        if (r->votes[i].granted > 0) {
            yes++;
        } else {
            no++;
        }
    }
    if (raft__quorum_ok(yes, n)) {
        return 1;
    }
    if (raft__quorum_ok(no, n)) {
        return -1;
    }
    return 0;
}

static void become_leader(struct raft *r)
{
    unsigned i;
    raft__trace(r, "won the election in term %llu -> become leader",
                (unsigned long long)r->term);
    r->role = RAFT_LEADER;
    r->leader = r->o.id;
    r->n_votes = 0;
    r->transfer_target = 0;
    r->read_seq = r->read_acked = r->read_round = 0;
    /* A new term starts without a lease; acks of any broadcast of this
     * term count. */
    r->lease_from = 1;
    r->lease_barred = false;
    raft__progress_reset_all(r);
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        r->prs[i].recent_active = false;
    }
    r->heartbeat_deadline = r->now + r->o.heartbeat_interval;
    r->cq_deadline = r->now + r->o.election_timeout;
    /* Thesis §6.4 and §8: a no-op at the start of the term commits the
     * entries of earlier terms and lets the leader serve reads. */
    if (raft__append_local(r, r->term, RAFT_ENTRY_NOOP, NULL, 0) != 0) {
        r->nomem = RAFT_ERR_NOMEM;
    }
    raft__bcast_append(r, true);
    raft__maybe_commit(r);
}

void raft__campaign(struct raft *r, bool pre_vote, bool transfer)
{
    const struct raft_config *c = &raft__confs_last(&r->confs)->c;
    raft_term vote_term;
    unsigned i;
    if (!raft__can_campaign(r)) {
        raft__trace(r, "not a voter -> no election");
        raft__reset_election_timer(r);
        return;
    }
    if (r->role == RAFT_LEADER) {
        return;
    }
    r->n_votes = 0;
    r->leader = 0;
    raft__freads_fail(r, false);
    if (pre_vote) {
        r->role = RAFT_PRE_CANDIDATE;
        vote_term = r->term + 1;
        raft__trace(r, "election timeout -> pre-vote for term %llu",
                    (unsigned long long)vote_term);
    } else {
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->o.id;
        r->hs_dirty = true;
        vote_term = r->term;
        raft__trace(r, "%s -> become candidate in term %llu",
                    transfer ? "timeout now" : "election timeout",
                    (unsigned long long)vote_term);
    }
    raft__reset_election_timer(r);
    record_vote(r, r->o.id, true);
    if (tally(r) > 0) {
        if (pre_vote) {
            raft__campaign(r, false, transfer);
        } else {
            become_leader(r);
        }
        return;
    }
    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        struct raft_message *m;
        if (s->id == r->o.id || s->role != RAFT_VOTER) {
            continue;
        }
        /* A real vote request depends on the new term and self-vote being
         * durable: raft__send() routes it after persistence (hs_dirty). */
        m = raft__send(r, RAFT_MSG_VOTE, s->id, false);
        if (m == NULL) {
            return;
        }
        m->term = vote_term;
        m->vote.last_index = raft__log_last(&r->log);
        m->vote.last_term = raft__log_last_term(&r->log);
        m->vote.pre_vote = pre_vote;
        m->vote.transfer = transfer;
    }
}

void raft__recv_vote(struct raft *r, const struct raft_message *m)
{
    bool pre = m->vote.pre_vote;
    bool can, up_to_date;
    raft_index last = raft__log_last(&r->log);
    raft_term last_term = raft__log_last_term(&r->log);
    struct raft_message *resp;
    const char *why;

    if (m->term > r->term && !m->vote.transfer && raft__in_lease(r)) {
        raft__trace(r, "%svote from %llu ignored: leader lease",
                    pre ? "pre-" : "", (unsigned long long)m->from);
        return;
    }
    if (m->term < r->term) {
        resp = raft__send(r, RAFT_MSG_VOTE_RESP, m->from, false);
        if (resp != NULL) {
            resp->vote_resp.granted = false;
            resp->vote_resp.pre_vote = pre;
        }
        return;
    }
    if (!pre && m->term > r->term) {
        raft__become_follower(r, m->term, 0);
    }
    /* Not even in our current term may a vote go to anyone but a transfer
     * target while the lease holds (§4.2.3 "does not grant its vote"): we
     * may have reached this term without voting, by a stale message. */
    can = r->vote == m->from ||
          (r->vote == 0 && r->leader == 0 &&
           (m->vote.transfer || !raft__in_lease(r))) ||
          (pre && m->term > r->term);
    /* Paper §5.4.1: grant only to a candidate at least as up to date. */
    up_to_date = m->vote.last_term > last_term ||
                 (m->vote.last_term == last_term && m->vote.last_index >= last);
    if (can && up_to_date) {
        if (pre) {
            resp = raft__send(r, RAFT_MSG_VOTE_RESP, m->from, false);
            if (resp != NULL) {
                resp->term = m->term; /* so the pre-candidate counts it */
            }
        } else {
            raft__trace(r, "grant vote to %llu in term %llu",
                        (unsigned long long)m->from,
                        (unsigned long long)r->term);
            r->vote = m->from;
            r->hs_dirty = true;
            raft__reset_election_timer(r);
            resp = raft__send(r, RAFT_MSG_VOTE_RESP, m->from, true);
        }
        if (resp != NULL) {
            resp->vote_resp.granted = true;
            resp->vote_resp.pre_vote = pre;
        }
        return;
    }
    if (!up_to_date) {
        why = "log not up to date";
    } else if (r->vote != 0 || r->leader != 0) {
        why = "already voted";
    } else {
        why = "leader lease";
    }
    raft__trace(r, "reject %svote from %llu (%s)", pre ? "pre-" : "",
                (unsigned long long)m->from, why);
    resp = raft__send(r, RAFT_MSG_VOTE_RESP, m->from, false);
    if (resp != NULL) {
        resp->vote_resp.granted = false;
        resp->vote_resp.pre_vote = pre;
    }
}

void raft__recv_vote_resp(struct raft *r, const struct raft_message *m)
{
    int t;
    if (m->vote_resp.pre_vote) {
        /* A grant carries the term we proposed; a refusal, the voter's. A
         * grant from an earlier round (another proposed term) is stale. */
        if (r->role != RAFT_PRE_CANDIDATE || m->term < r->term ||
            (m->vote_resp.granted && m->term != r->term + 1)) {
            return;
        }
    } else if (r->role != RAFT_CANDIDATE || m->term != r->term) {
        return;
    }
    record_vote(r, m->from, m->vote_resp.granted);
    t = tally(r);
    if (t > 0) {
        if (r->role == RAFT_PRE_CANDIDATE) {
            raft__campaign(r, false, false);
        } else {
            become_leader(r);
        }
    } else if (t < 0) {
        raft__trace(r, "lost the %selection -> become follower",
                    r->role == RAFT_PRE_CANDIDATE ? "pre-" : "");
        raft__become_follower(r, r->term, 0);
    }
}

void raft__election_tick(struct raft *r)
{
    if (r->now < r->election_deadline) {
        return;
    }
    if (!raft__can_campaign(r)) {
        raft__reset_election_timer(r);
        return;
    }
    raft__campaign(r, r->o.pre_vote, false);
}
