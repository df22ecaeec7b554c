/* Linearizable reads without log writes: the read index (thesis §6.4). */
#include <stdlib.h>

#include "core.h"

static void release(struct raft *r, const struct raft__read *rd, int status)
{
    struct raft_message *m;
    if (rd->from == 0) {
        raft__emit_read(r, rd->ctx, rd->index, status);
        return;
    }
    m = raft__send(r, RAFT_MSG_READ_INDEX_RESP, rd->from, false);
    if (m != NULL) {
        m->read_index_resp.ctx = rd->ctx;
        m->read_index_resp.index = rd->index;
        m->read_index_resp.reject = status != 0;
    }
    if (status == 0) {
        /* The follower applies up to the index before it reads. */
        raft__commit_wanted(r, rd->from, rd->index);
    }
}

static int push(struct raft__read **v, size_t *n, size_t *cap, uint64_t ctx,
                raft_id from, uint64_t seq, bool confirm)
{
    struct raft__read *rd;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct raft__read *nv = realloc(*v, c * sizeof *nv);
        if (nv == NULL) {
            return RAFT_ERR_NOMEM;
        }
        *v = nv;
        *cap = c;
    }
    rd = &(*v)[(*n)++];
    rd->ctx = ctx;
    rd->from = from;
    rd->index = 0;
    rd->seq = seq;
    rd->confirm = confirm;
    return 0;
}

static int push_read(struct raft *r, uint64_t ctx, raft_id from, bool confirm)
{
    return push(&r->reads, &r->n_reads, &r->cap_reads, ctx, from, 0,
                confirm);
}

void raft__freads_fail(struct raft *r, bool only_expired)
{
    size_t i, k;
    for (i = 0, k = 0; i < r->n_freads; i++) {
        struct raft__read *rd = &r->freads[i];
        if (!only_expired || r->now - rd->seq >= 2 * r->o.election_timeout) {
            raft__emit_read(r, rd->ctx, 0, RAFT_ERR_NOT_LEADER);
        } else {
            r->freads[k++] = *rd;
        }
    }
    r->n_freads = k;
}

/* The highest seq acknowledged by a majority of voters (counting our own
 * vote: we "ack" the latest seq we sent). */
static uint64_t quorum_seq(struct raft *r)
{
    const struct raft_config *c = &raft__confs_last(&r->confs)->c;
    uint64_t vals[RAFT_MAX_SERVERS];
    unsigned n = 0, i;
    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        struct raft__progress *p;
        if (s->role != RAFT_VOTER) {
            continue;
        }
        if (s->id == r->o.id) {
            vals[n++] = r->read_seq;
        } else {
            p = raft__progress_get(r, s->id);
            vals[n++] = p != NULL ? p->read_seq : 0;
        }
    }
    return raft__quorum_value(vals, n);
}

/*
 * Thesis §6.4.1: a leader may answer reads from a lease instead of a
 * heartbeat round.
 *
 * The lease. Broadcast k of this term was sent at hb_sent[k] (the core's
 * `now` when it queued the heartbeats: no later than the real send). When
 * a majority of the voters of the configuration in effect (the leader
 * included) has acknowledged broadcast k or a later one, the leader holds
 * a lease until hb_sent[k] + election_timeout * (1000 - drift) / 1000.
 * Taking the send time of the broadcast, never the time the acks arrived,
 * is what makes it safe: the follower heard from us no earlier than that.
 *
 * Why no other leader can exist, or have committed anything, before the
 * lease ends. A voter that accepted our heartbeat of term T at time
 * f >= hb_sent[k] (on its clock) does not grant a vote, nor even update
 * its term, for any candidate but a leadership-transfer target until
 * election_timeout has passed since f on its clock, and does not time out
 * itself before then (election.c, thesis §4.2.3 vote leases; a server that
 * (re)starts treats its start as hearing from a leader, so a crash does
 * not reset this). It cannot have voted in a later term before f either,
 * or its term would have been above T and it would have refused the
 * heartbeat. A new leader needs votes from a majority of its own
 * configuration, which intersects ours (see below), so it is elected no
 * earlier than election_timeout after f on that voter's clock. If no
 * clock runs faster than ours by more than `drift` per mille over that
 * interval, election_timeout of the voter's clock is at least
 * election_timeout * (1 - drift) of ours: the election, and any commit
 * of the new leader, comes after the lease ends. Until then our commit
 * index (once an entry of our term is committed, §6.4 step 1) is at
 * least that of every write that completed before the read arrived. The
 * default drift, 100 per mille, leaves a tenth of the timeout for clock
 * rate drift (crystal clocks drift by ~10^-4) and for a `now` that lags
 * real time (a driver's loop time cached for one iteration).
 *
 * The lease is void (only broadcasts sent afterwards count) when:
 *  - we send TimeoutNow: its target campaigns ignoring vote leases
 *    (§3.10); and since the message may arrive at any time later, there
 *    is no lease for the rest of the term;
 *  - a configuration entry is appended (single-server changes, §4.1:
 *    the quorum changes; acks are then counted under the new
 *    configuration only. A new leader's configuration is ours or the one
 *    before it, since its log holds our committed entry of term T, and the
 *    majorities of two configurations one change apart intersect);
 *  - we stop leading (step-down, a higher term): reads are no longer
 *    answered at all, and a new term starts from no lease.
 * The core has no input for clock jumps: drivers give it a monotonic
 * clock.
 *
 * Appends carry the seq too. The argument above uses two facts about
 * message k: it was sent no earlier than hb_sent[k], and a voter that
 * echoes k accepted us as the leader of term T when it arrived (raft.c
 * resets its election timer and last_heard before handing any APPEND,
 * HEARTBEAT or SNAPSHOT of a term >= its own to replication.c; stale-term
 * appends are answered without a seq). Both hold for an AppendEntries as
 * for a heartbeat: the follower echoes the seq of the append it processed
 * in every answer to it, accept or reject, even one sent after its
 * persistence. Nothing needs a seq to reach every follower: a peer's ack
 * of k' >= k is an ack of a message sent at hb_sent[k'] >= hb_sent[k], so
 * "a majority acked k or later" still means that a majority accepted a
 * message of ours sent at or after hb_sent[k]. Duplicated and reordered
 * answers only ever echo a seq that was sent; p->read_seq only rises. And
 * for step 3 of §6.4 a read waits for read_seq + 1 as of its arrival,
 * which no message sent before it carries. An append takes a new seq if
 * the current one was first sent a granule (RAFT__SEQ_GRANULE, 1/256 of
 * an election timeout) ago or more, or predates a lease void; otherwise
 * it reuses it, whose hb_sent is earlier than the append's send time
 * (conservative). The cost: one compare per append, a seq on the wire,
 * and a ring of 1024 send times; in exchange a steady write load keeps
 * read_acked at most a granule plus a round trip (and the followers'
 * persistence, which gates their append answers) old.
 *
 * Confirm reads (raft_read_index_confirm) ask for more than "no one else
 * can have committed": the caller wants to know that a quorum could be
 * reached just now. A round started after the read proves it. So does,
 * within a window the caller accepts, a quorum's ack of a message sent
 * less than confirm_window before `now`: the read is answered at once,
 * no round, when the lease holds (so that the answer is also a
 * linearizable read index, exactly as for a lease read) and
 * now < hb_sent[read_acked] + confirm_window. What it claims is weaker
 * than a round only in time: a majority accepted us as leader at some
 * moment within the last confirm_window ms (by our clock) rather than
 * after the call. A window of 0 never answers this way.
 */
static bool lease_holds(const struct raft *r, raft_time now)
{
    raft_time len;
    if (r->role != RAFT_LEADER || !r->o.lease_reads || r->lease_barred ||
        r->read_acked < r->lease_from ||
        r->read_seq - r->read_acked >= RAFT__HB_RING ||
        raft__log_term(&r->log, r->commit) != r->term) {
        return false;
    }
    len = (raft_time)r->o.election_timeout *
          (1000 - r->o.clock_drift_permille) / 1000;
    return now < r->hb_sent[r->read_acked % RAFT__HB_RING] + len;
}

/* A confirm read may be answered now without a round (see above). */
static bool recent_quorum(const struct raft *r, raft_time now)
{
    return r->o.confirm_window > 0 && lease_holds(r, now) &&
           now < r->hb_sent[r->read_acked % RAFT__HB_RING] +
                     r->o.confirm_window;
}

uint64_t raft__append_seq(struct raft *r)
{
    if (r->read_seq < r->lease_from ||
        r->now >= r->hb_sent[r->read_seq % RAFT__HB_RING] +
                      RAFT__SEQ_GRANULE(r)) {
        r->read_seq++;
        r->hb_sent[r->read_seq % RAFT__HB_RING] = r->now;
    }
    return r->read_seq;
}

void raft__seq_acked(struct raft *r, struct raft__progress *p, uint64_t seq)
{
    /* 0: an answer with no seq (an older peer, or an append sent before a
     * term's first seq); above read_seq: never sent, ignored. */
    if (seq > p->read_seq && seq <= r->read_seq) {
        p->read_seq = seq;
        raft__reads_acked(r);
    }
}

bool raft_lease_valid(const struct raft *r, raft_time now)
{
    return lease_holds(r, RAFT__MAX(now, r->now));
}

void raft__lease_void(struct raft *r, bool bar, const char *why)
{
    if (r->role != RAFT_LEADER) {
        return;
    }
    if (r->o.lease_reads) {
        raft__trace(r, "%s -> lease void%s", why,
                    bar ? " for the rest of the term" : "");
    }
    r->lease_from = r->read_seq + 1;
    if (bar) {
        r->lease_barred = true;
    }
}

void raft__reads_acked(struct raft *r)
{
    uint64_t q;
    if (r->role != RAFT_LEADER) {
        return;
    }
    q = quorum_seq(r);
    if (q > r->read_acked) {
        r->read_acked = q;
    }
    raft__reads_progress(r);
}

void raft__reads_progress(struct raft *r)
{
    size_t i, k;
    uint64_t q;
    bool lease, recent;
    if (r->role != RAFT_LEADER || r->n_reads == 0) {
        return;
    }
    /* Thesis §6.4 step 1: not before an entry of this term has committed;
     * until then the leader may not know the latest commit index. */
    if (raft__log_term(&r->log, r->commit) != r->term) {
        return;
    }
    for (i = 0; i < r->n_reads; i++) {
        if (r->reads[i].seq == 0) {
            r->reads[i].index = r->commit;
            r->reads[i].seq = r->read_seq + 1;
        }
    }
    q = quorum_seq(r);
    if (q > r->read_acked) {
        r->read_acked = q;
    }
    lease = lease_holds(r, r->now);
    recent = recent_quorum(r, r->now);
    for (i = 0, k = 0; i < r->n_reads; i++) {
        if (lease && !r->reads[i].confirm) {
            /* §6.4.1: no other leader can have committed anything yet;
             * every index here was taken after its read arrived. */
            release(r, &r->reads[i], 0);
            r->read_stats.lease_reads++;
        } else if (r->reads[i].seq <= r->read_acked) {
            /* Step 3: a message numbered after the read arrived and acked
             * by a majority proves we still led when it arrived. */
            release(r, &r->reads[i], 0);
            r->read_stats.round_reads++;
        } else if (recent) {
            /* A confirm read: the lease holds and a quorum heard from us
             * within confirm_window (see above). */
            release(r, &r->reads[i], 0);
            r->read_stats.window_reads++;
        } else {
            r->reads[k++] = r->reads[i];
        }
    }
    r->n_reads = k;
    /* Batching: the next round starts when the update is collected, so it
     * covers every read asked until then; one round is out at a time. */
    r->read_round_wanted = r->n_reads > 0;
}

void raft__reads_flush(struct raft *r)
{
    if (r->role == RAFT_LEADER && r->read_round_wanted &&
        r->read_round <= r->read_acked && r->n_reads > 0 &&
        raft__log_term(&r->log, r->commit) == r->term) {
        raft__bcast_heartbeat(r);
        r->read_round = r->read_seq;
        r->read_stats.rounds++;
        raft__reads_progress(r); /* a single voter confirms at once */
    }
    r->read_round_wanted = false;
}

void raft__reads_fail(struct raft *r, int status)
{
    size_t i;
    for (i = 0; i < r->n_reads; i++) {
        release(r, &r->reads[i], status);
    }
    r->n_reads = 0;
}

void raft_read_stats(const struct raft *r, struct raft_read_stats *out)
{
    *out = r->read_stats;
}

static int read_index(struct raft *r, raft_time now, uint64_t ctx,
                      bool confirm)
{
    struct raft_message *m;
    if (r == NULL || (ctx & RAFT__READ_CONFIRM) != 0) {
        return RAFT_ERR_INVALID;
    }
    if (now > r->now) {
        r->now = now;
    }
    if (r->role != RAFT_LEADER) {
        if (r->role == RAFT_FOLLOWER && r->leader != 0) {
            /* Thesis §6.4: a follower asks the leader for its read index. */
            if (push(&r->freads, &r->n_freads, &r->cap_freads, ctx,
                     r->leader, r->now, confirm) != 0) {
                return RAFT_ERR_NOMEM;
            }
            m = raft__send(r, RAFT_MSG_READ_INDEX, r->leader, false);
            if (m != NULL) {
                m->read_index.ctx = ctx | (confirm ? RAFT__READ_CONFIRM : 0);
            }
        } else {
            raft__emit_read(r, ctx, 0, RAFT_ERR_NOT_LEADER);
        }
        return r->nomem;
    }
    if (push_read(r, ctx, 0, confirm) != 0) {
        return RAFT_ERR_NOMEM;
    }
    raft__reads_progress(r);
    return r->nomem;
}

int raft_read_index(struct raft *r, raft_time now, uint64_t ctx)
{
    return read_index(r, now, ctx, false);
}

int raft_read_index_confirm(struct raft *r, raft_time now, uint64_t ctx)
{
    return read_index(r, now, ctx, true);
}

void raft__recv_read_index(struct raft *r, const struct raft_message *m)
{
    struct raft_message *resp;
    /* The ctx goes back as it came, confirm bit included. */
    if (r->role == RAFT_LEADER &&
        push_read(r, m->read_index.ctx, m->from,
                  (m->read_index.ctx & RAFT__READ_CONFIRM) != 0) == 0) {
        raft__reads_progress(r);
        return;
    }
    resp = raft__send(r, RAFT_MSG_READ_INDEX_RESP, m->from, false);
    if (resp != NULL) {
        resp->read_index_resp.ctx = m->read_index.ctx;
        resp->read_index_resp.reject = true;
    }
}

void raft__recv_read_index_resp(struct raft *r, const struct raft_message *m)
{
    size_t i;
    uint64_t ctx = m->read_index_resp.ctx & ~RAFT__READ_CONFIRM;
    /* Each read is answered once: duplicates and answers to reads already
     * failed are dropped. */
    for (i = 0; i < r->n_freads; i++) {
        if (r->freads[i].ctx == ctx && r->freads[i].from == m->from &&
            r->freads[i].confirm ==
                ((m->read_index_resp.ctx & RAFT__READ_CONFIRM) != 0)) {
            raft__emit_read(r, ctx,
                            m->read_index_resp.index,
                            m->read_index_resp.reject ? RAFT_ERR_NOT_LEADER
                                                      : 0);
            r->freads[i] = r->freads[--r->n_freads];
            return;
        }
    }
}
