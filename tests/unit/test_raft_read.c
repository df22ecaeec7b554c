/* Unit tests of read index (thesis §6.4), lease reads (§6.4.1) and
 * leadership transfer (§3.10). */
#include "test_raft_harness.h"

/* The lease the default clock_drift_permille (100) gives: 0.9 x H_ET. */
#define LEASE_MS (H_ET * 9 / 10)

/* A cluster of n nodes (the first `voters` of them voters), with lease
 * reads on or off and the given confirm_window. */
static void init_window(struct h *h, unsigned n, unsigned voters, bool lease,
                        bool check_quorum, unsigned window)
{
    struct raft_options o;
    h_default_opts(&o);
    o.lease_reads = lease;
    o.check_quorum = check_quorum;
    o.confirm_window = window;
    h_init_opts(h, n, voters, &o);
}

/* The same with the default confirm_window (the heartbeat interval). */
static void init_lease(struct h *h, unsigned n, unsigned voters, bool lease,
                       bool check_quorum)
{
    init_window(h, n, voters, lease, check_quorum,
                RAFT_CONFIRM_WINDOW_HEARTBEAT);
}

/* Round-based reads: the tests of §6.4 proper run with leases off. */
static void init_rounds(struct h *h, unsigned n)
{
    init_lease(h, n, n, false, true);
}

static const struct raft_read_state *find_read(struct h *h, raft_id id,
                                               uint64_t ctx)
{
    size_t i;
    const struct raft_read_state *found = NULL;
    for (i = 0; i < h->nodes[id].n_reads; i++) {
        if (h->nodes[id].reads[i].ctx == ctx) {
            ck_assert_ptr_null(found); /* answered once */
            found = &h->nodes[id].reads[i];
        }
    }
    return found;
}

/* Thesis §6.4: a read on the leader is answered with its commit index after
 * one heartbeat round confirms it still leads. */
START_TEST(test_read_leader)
{
    struct h h;
    const struct raft_read_state *rs;
    raft_index idx;
    init_rounds(&h, 3);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 77), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 77)); /* not before the round */
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_settle(&h);
    rs = find_read(&h, 1, 77);
    ck_assert_ptr_nonnull(rs);
    ck_assert_int_eq(rs->status, 0);
    ck_assert_uint_eq(rs->index, idx);
    h_close(&h);
}
END_TEST

/* Thesis §6.4 batching: every read requested before a round is confirmed
 * by it; reads that arrive while a round is out wait for the next one. */
START_TEST(test_read_batching)
{
    struct h h;
    uint64_t c;
    init_rounds(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    for (c = 1; c <= 10; c++) {
        ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, c), 0);
    }
    h_pump(&h, 1);
    /* Ten reads, one round: one heartbeat per follower. */
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    for (c = 11; c <= 20; c++) {
        ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, c), 0);
    }
    h_pump(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_deliver(&h); /* heartbeats reach the followers */
    h_deliver(&h); /* responses confirm round 1 and start round 2 */
    for (c = 1; c <= 10; c++) {
        ck_assert_ptr_nonnull(find_read(&h, 1, c));
    }
    for (c = 11; c <= 20; c++) {
        ck_assert_ptr_null(find_read(&h, 1, c));
    }
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_settle(&h);
    for (c = 11; c <= 20; c++) {
        ck_assert_ptr_nonnull(find_read(&h, 1, c));
        ck_assert_int_eq(find_read(&h, 1, c)->status, 0);
    }
    h_close(&h);
}
END_TEST

/* Thesis §6.4 step 1: no read is answered before the leader has committed
 * an entry of its own term (its no-op). */
START_TEST(test_read_waits_for_noop)
{
    struct h h;
    init_rounds(&h, 3);
    h_timeout(&h, 1);
    h_deliver_until_leader(&h, 1);
    h_drop_all(&h); /* the no-op's appends are lost */
    ck_assert_uint_lt(raft_commit_index(h.nodes[1].r), 2);
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 5), 0);
    h_pump(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 0);
    ck_assert_ptr_null(find_read(&h, 1, 5));
    /* Heartbeats bring the followers back, the no-op commits, then the
     * round runs and the read is answered at or after the no-op. */
    h_run(&h, 5 * H_HB);
    ck_assert_ptr_nonnull(find_read(&h, 1, 5));
    ck_assert_int_eq(find_read(&h, 1, 5)->status, 0);
    ck_assert_uint_ge(find_read(&h, 1, 5)->index, 2);
    h_close(&h);
}
END_TEST

/* Thesis §6.4: a follower asks the leader and gets the leader's index. */
START_TEST(test_read_follower)
{
    struct h h;
    raft_index idx;
    init_rounds(&h, 3);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    ck_assert_int_eq(raft_read_index(h.nodes[2].r, h.now, 9), 0);
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 2, 9));
    ck_assert_int_eq(find_read(&h, 2, 9)->status, 0);
    ck_assert_uint_eq(find_read(&h, 2, 9)->index, idx);
    /* A node that knows no leader says so at once. */
    h_isolate(&h, 3, true);
    h_run(&h, 5 * H_ET);
    ck_assert_int_eq(raft_read_index(h.nodes[3].r, h.now, 10), 0);
    h_pump(&h, 3);
    ck_assert_ptr_nonnull(find_read(&h, 3, 10));
    ck_assert_int_eq(find_read(&h, 3, 10)->status, RAFT_ERR_NOT_LEADER);
    h_close(&h);
}
END_TEST

/* A leader that loses leadership fails its pending reads; a single-voter
 * cluster answers at once. */
START_TEST(test_read_leadership_lost)
{
    struct h h;
    struct raft_message m;
    init_rounds(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    h_isolate(&h, 1, true);
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 3), 0);
    h_pump(&h, 1);
    /* A higher term arrives: the leader steps down, the read fails. */
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_HEARTBEAT;
    m.from = 2;
    m.to = 1;
    m.term = raft_current_term(h.nodes[1].r) + 1;
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 3));
    ck_assert_int_eq(find_read(&h, 1, 3)->status, RAFT_ERR_LEADERSHIP_LOST);
    h_close(&h);
}
END_TEST

START_TEST(test_read_single_voter)
{
    struct h h;
    h_init(&h, 1);
    h_run(&h, 3 * H_ET);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_uint_eq(find_read(&h, 1, 1)->index,
                      raft_commit_index(h.nodes[1].r));
    h_close(&h);
}
END_TEST

/* Thesis §3.10: the leader catches the target up, sends TimeoutNow, and
 * the target wins at once (ignoring the others' leases). */
START_TEST(test_transfer)
{
    struct h h;
    raft_index idx;
    raft_term t;
    h_init(&h, 3);
    h_elect(&h, 1);
    t = raft_current_term(h.nodes[1].r);
    /* 3 is behind when the transfer starts. */
    h_isolate(&h, 3, true);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    h_isolate(&h, 3, false);
    ck_assert_int_eq(raft_transfer(h.nodes[1].r, h.now, 3), 0);
    /* No proposals meanwhile. */
    ck_assert_int_eq(h_propose(&h, 1, 2, &idx), RAFT_ERR_TRANSFERRING);
    h_settle(&h);
    ck_assert_uint_eq(h.delivered[RAFT_MSG_TIMEOUT_NOW], 1);
    ck_assert_int_eq(raft_role(h.nodes[3].r), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(h.nodes[3].r), t + 1);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_FOLLOWER);
    ck_assert_int_eq(h_propose(&h, 3, 2, &idx), 0);
    h_close(&h);
}
END_TEST

/* Transfer to "the most up-to-date voter", bad targets, and the abort after
 * an election timeout when the target never answers. */
START_TEST(test_transfer_abort)
{
    struct h h;
    struct raft_options o;
    raft_index idx;
    raft_options_default(&o);
    o.election_timeout = H_ET;
    o.heartbeat_interval = H_HB;
    o.check_quorum = false; /* keep the isolated leader leading */
    o.seed = 5;
    h_init_opts(&h, 3, 3, &o);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    ck_assert_int_eq(raft_transfer(h.nodes[2].r, h.now, 1),
                     RAFT_ERR_NOT_LEADER);
    ck_assert_int_eq(raft_transfer(h.nodes[1].r, h.now, 1), RAFT_ERR_INVALID);
    ck_assert_int_eq(raft_transfer(h.nodes[1].r, h.now, 9),
                     RAFT_ERR_NOT_FOUND);
    h_isolate(&h, 2, true);
    h_isolate(&h, 3, true);
    ck_assert_int_eq(raft_propose(h.nodes[1].r, h.now,
                                  &(struct raft_buf){"a", 1}, &idx, NULL),
                     0);
    /* 0: the most up-to-date voter; it is behind, so no TimeoutNow yet. */
    ck_assert_int_eq(raft_transfer(h.nodes[1].r, h.now, 0), 0);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), RAFT_ERR_TRANSFERRING);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_TIMEOUT_NOW, 0, 0), 0);
    h.now += H_ET;
    raft_tick(h.nodes[1].r, h.now);
    h_pump(&h, 1);
    h_drop_all(&h);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_close(&h);
}
END_TEST

/* ---- Lease reads (thesis §6.4.1) ---- */

/* The leader's heartbeat timer fires now: one broadcast, sent at the
 * returned time, is delivered and acknowledged at once. */
static raft_time renew(struct h *h, raft_id l)
{
    raft_time sent;
    h->now += H_HB;
    sent = h->now;
    raft_tick(h->nodes[l].r, h->now);
    h_settle(h);
    return sent;
}

/* Node 1 leads a cluster of n (voters of them) with one entry of its term
 * committed (at *idx, if idx), and a fresh round acked: returns when that
 * round was sent. */
static raft_time lease_leader(struct h *h, unsigned n, unsigned voters,
                              bool lease, bool check_quorum, raft_index *idx)
{
    raft_index i;
    init_lease(h, n, voters, lease, check_quorum);
    h_elect(h, 1);
    ck_assert_int_eq(h_propose(h, 1, 1, &i), 0);
    if (idx != NULL) {
        *idx = i;
    }
    h_settle(h);
    return renew(h, 1);
}

static struct raft_read_stats stats(struct h *h, raft_id id)
{
    struct raft_read_stats st;
    raft_read_stats(h->nodes[id].r, &st);
    return st;
}

/* Reference: §6.4.1. While a quorum acknowledged a recent heartbeat, the
 * leader answers reads at once, its own and those its followers forward,
 * with no heartbeat round. */
START_TEST(test_lease_read_at_once)
{
    struct h h;
    raft_index idx;
    init_lease(&h, 3, 3, true, true);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    /* Appends carry a seq too: their acks alone give a lease. */
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    renew(&h, 1);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_uint_eq(find_read(&h, 1, 1)->index, idx);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 0);
    /* A follower's read: one message there, one answer back. */
    ck_assert_int_eq(raft_read_index(h.nodes[2].r, h.now, 2), 0);
    h_pump(&h, 2);
    h_deliver(&h);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 0);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_READ_INDEX_RESP, 1, 2), 1);
    h_deliver(&h);
    ck_assert_ptr_nonnull(find_read(&h, 2, 2));
    ck_assert_int_eq(find_read(&h, 2, 2)->status, 0);
    ck_assert_uint_eq(find_read(&h, 2, 2)->index, idx);
    ck_assert_uint_eq(stats(&h, 1).lease_reads, 2);
    ck_assert_uint_eq(stats(&h, 1).rounds, 0);
    ck_assert_uint_eq(stats(&h, 1).round_reads, 0);
    h_close(&h);
}
END_TEST

/* Reference: §6.4.1. With confirm_window 0, raft_read_index_confirm is
 * never answered from the lease, on the leader or forwarded by a
 * follower: it proves that a quorum follows the leader now, which a lease
 * does not. */
START_TEST(test_lease_confirm_read)
{
    struct h h;
    raft_index idx;
    init_window(&h, 3, 3, true, true, 0);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    renew(&h, 1);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 1), 0);
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 1));
    ck_assert_ptr_nonnull(find_read(&h, 1, 2));
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_uint_eq(find_read(&h, 1, 1)->index, idx);
    /* Forwarded: the leader waits for a round, then answers. */
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[2].r, h.now, 3), 0);
    h_pump(&h, 2);
    h_deliver(&h);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_READ_INDEX_RESP, 1, 2), 0);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 2, 3));
    ck_assert_int_eq(find_read(&h, 2, 3)->status, 0);
    ck_assert_uint_eq(find_read(&h, 2, 3)->index, idx);
    /* A quorum gone: a confirm read waits even while the lease holds. */
    h_isolate(&h, 1, true);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 4), 0);
    h_settle(&h);
    ck_assert_ptr_null(find_read(&h, 1, 4));
    /* The top bit of ctx is the core's. */
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1ull << 63),
                     RAFT_ERR_INVALID);
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[2].r, h.now, 1ull << 63),
                     RAFT_ERR_INVALID);
    ck_assert_uint_eq(stats(&h, 1).lease_reads, 1);
    ck_assert_uint_eq(stats(&h, 1).round_reads, 2);
    h_close(&h);
}
END_TEST

/* Leases on, node 1 elected: a quorum acked its heartbeats, but its no-op
 * has not committed (its appends were lost twice). */
static void acked_leader_without_noop(struct h *h)
{
    init_lease(h, 3, 3, true, true);
    h_timeout(h, 1);
    h_deliver_until_leader(h, 1);
    h_drop_all(h); /* the no-op's appends are lost */
    h->now += H_HB;
    raft_tick(h->nodes[1].r, h->now);
    h_pump(h, 1);
    h_deliver(h);  /* heartbeats reach the followers */
    h_deliver(h);  /* their acks reach the leader... */
    h_drop_all(h); /* ...whose appends of the no-op are lost again */
    ck_assert_uint_lt(raft_commit_index(h->nodes[1].r), 2);
}

/* Reference: §6.4.1 with §6.4 step 1. Acked heartbeats give no lease
 * before the leader has committed an entry of its term: until then it may
 * not know the latest commit index. */
START_TEST(test_lease_needs_noop)
{
    struct h h;
    acked_leader_without_noop(&h);
    ck_assert(!raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 1));
    h_run(&h, 3 * H_HB);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_uint_ge(find_read(&h, 1, 1)->index, 2);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    h_close(&h);
}
END_TEST

/* Reference: §6.4.1. The lease runs from the SEND time of the heartbeat a
 * quorum acknowledged, for 0.9 election timeouts; then reads fall back to
 * a round. Here the acks arrive 40 ms late: a lease counted from their
 * arrival would still hold at sent + 90. */
START_TEST(test_lease_expiry)
{
    struct h h;
    raft_index idx;
    raft_time sent;
    init_lease(&h, 3, 3, true, true);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    h.now += H_HB;
    sent = h.now;
    raft_tick(h.nodes[1].r, h.now);
    h_pump(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_deliver(&h); /* the followers hear it at `sent` */
    h.now = sent + 40;
    h_settle(&h); /* their acks arrive 40 ms later */
    ck_assert(raft_lease_valid(h.nodes[1].r, sent + LEASE_MS - 1));
    ck_assert(!raft_lease_valid(h.nodes[1].r, sent + LEASE_MS));
    h_isolate(&h, 1, true);
    h.now = sent + LEASE_MS - 1;
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    h.now = sent + LEASE_MS;
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 2));
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    /* Cut off, the round cannot complete; once healed it does. */
    h_settle(&h);
    ck_assert_ptr_null(find_read(&h, 1, 2));
    h_isolate(&h, 1, false);
    h_run(&h, 2 * H_HB);
    ck_assert_ptr_nonnull(find_read(&h, 1, 2));
    ck_assert_int_eq(find_read(&h, 1, 2)->status, 0);
    ck_assert_uint_eq(find_read(&h, 1, 2)->index, idx);
    /* The second read waited; the heartbeats after the heal confirm it,
     * and renew the lease (which then answers it, if first). */
    ck_assert_uint_eq(stats(&h, 1).lease_reads + stats(&h, 1).round_reads, 2);
    h_close(&h);
}
END_TEST

/* Reference: §6.4.1, §3.10. TimeoutNow makes its target campaign ignoring
 * vote leases, whenever it arrives: the lease is void at once and for the
 * rest of the term, even after the transfer times out. */
START_TEST(test_lease_void_timeout_now)
{
    struct h h;
    raft_index idx;
    raft_term t;
    init_lease(&h, 3, 3, true, true);
    h_elect(&h, 1);
    t = raft_current_term(h.nodes[1].r);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    renew(&h, 1);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_transfer(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_TIMEOUT_NOW, 1, 2), 1);
    ck_assert(!raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 1));
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    /* TimeoutNow and the round are lost; the transfer times out; the
     * heartbeats confirm the read, but bring no lease back. */
    h_drop_all(&h);
    h_run(&h, H_ET + 2 * H_HB);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(h.nodes[1].r), t);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_int_eq(h_propose(&h, 1, 2, &idx), 0); /* transfer is over */
    h_settle(&h);
    renew(&h, 1);
    ck_assert(!raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 2));
    ck_assert_uint_eq(stats(&h, 1).lease_reads, 0);
    h_close(&h);
}
END_TEST

/* Reference: §6.4.1. Stepping down voids the lease; leading again, in a
 * new term, starts without one until a heartbeat of that term is acked. */
START_TEST(test_lease_void_step_down)
{
    struct h h;
    struct raft_message m;
    lease_leader(&h, 3, 3, true, true, NULL);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE_RESP; /* a higher term, by any message */
    m.from = 2;
    m.to = 1;
    m.term = raft_current_term(h.nodes[1].r) + 1;
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_FOLLOWER);
    ck_assert(!raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, RAFT_ERR_NOT_LEADER);
    h_drop_all(&h);
    h_timeout(&h, 1);
    h_deliver_until_leader(&h, 1);
    ck_assert(!raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 2));
    h_settle(&h); /* the no-op commits; its acked appends answer it */
    ck_assert_ptr_nonnull(find_read(&h, 1, 2));
    ck_assert_int_eq(find_read(&h, 1, 2)->status, 0);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    renew(&h, 1);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    h_close(&h);
}
END_TEST

/* Reference: §6.4.1, §4.1. Appending a configuration entry voids the
 * lease: acks counted under the old quorum prove nothing about the new
 * one. A heartbeat sent after the change brings it back. */
START_TEST(test_lease_void_config_change)
{
    struct h h;
    raft_index idx, cidx;
    lease_leader(&h, 4, 3, true, true, &idx);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 4,
                                 "127.0.0.1:7003", &cidx),
                     0);
    ck_assert(!raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 1));
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_uint_ge(find_read(&h, 1, 1)->index, idx);
    ck_assert_uint_ge(raft_commit_index(h.nodes[1].r), cidx);
    renew(&h, 1);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 2));
    h_close(&h);
}
END_TEST

/* Reference: §6.4.1, the stale read leases exist to prevent. Leader 1 is
 * cut off right after a quorum acked its heartbeat, and keeps believing it
 * leads (no check-quorum). 2 and 3 elect a new leader, which commits a
 * write. Every ms, 1 is asked for a read: it may answer from its lease
 * only while no one else could have committed anything, and never after
 * the new leader's write. */
START_TEST(test_lease_deposed_leader)
{
    struct h h;
    raft_index old_commit, new_commit = 0;
    raft_time sent, t;
    uint64_t ctx;
    raft_id nl = 0;
    sent = lease_leader(&h, 3, 3, true, false, NULL);
    h_isolate(&h, 1, true);
    old_commit = raft_commit_index(h.nodes[1].r);
    for (ctx = 1, t = 0; t < 4 * H_ET; t++, ctx++) {
        size_t before = h.nodes[1].n_reads;
        bool other = false;
        raft_id i;
        h_run(&h, 1);
        for (i = 2; i <= 3; i++) {
            if (raft_role(h.nodes[i].r) == RAFT_LEADER) {
                other = true;
                if (nl == 0) {
                    nl = i;
                    ck_assert_int_eq(h_propose(&h, nl, 9, &new_commit), 0);
                }
            }
        }
        ck_assert_int_eq(raft_read_index(h.nodes[1].r, h.now, ctx), 0);
        h_pump(&h, 1);
        if (h.nodes[1].n_reads > before) {
            /* Answered from the lease: before it ended, while 2 and 3
             * could not yet have elected anyone. */
            ck_assert_int_eq(find_read(&h, 1, ctx)->status, 0);
            ck_assert_uint_lt(h.now, sent + LEASE_MS);
            ck_assert(!other);
            ck_assert_uint_eq(raft_commit_index(h.nodes[2].r), old_commit);
            ck_assert_uint_eq(raft_commit_index(h.nodes[3].r), old_commit);
        }
    }
    /* The scenario did happen: a new leader committed a write that 1 never
     * saw, and 1 still thinks it leads. */
    ck_assert_uint_ne(nl, 0);
    ck_assert_uint_ge(raft_commit_index(h.nodes[nl].r), new_commit);
    ck_assert_uint_gt(new_commit, old_commit);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), old_commit);
    ck_assert_uint_gt(stats(&h, 1).lease_reads, 0);
    h_close(&h);
}
END_TEST

/* A vote request from 2 to 3, for the term after `term`. */
static struct raft_message vote_req(struct h *h, raft_term term)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE;
    m.from = 2;
    m.to = 3;
    m.term = term;
    m.vote.last_index = raft_last_index(h->nodes[2].r) + 100;
    m.vote.last_term = term;
    return m;
}

static bool granted(struct h *h, raft_id from, raft_id to)
{
    size_t k;
    for (k = 0; k < h->nq; k++) {
        if (h->q[k].type == RAFT_MSG_VOTE_RESP && h->q[k].from == from &&
            h->q[k].to == to && h->q[k].vote_resp.granted) {
            return true;
        }
    }
    return false;
}

/* Reference: §4.2.3, which §6.4.1 relies on. A follower that restarts does
 * not know when it last heard from the leader: it grants no vote for an
 * election timeout, as if it had just heard from it. */
START_TEST(test_lease_restarted_follower_waits)
{
    struct h h;
    struct raft_message m;
    raft_term t;
    init_lease(&h, 3, 3, true, true);
    h_elect(&h, 1);
    h_settle(&h);
    renew(&h, 1);
    t = raft_current_term(h.nodes[1].r);
    h_stop(&h, 3);
    h_start(&h, 3);
    m = vote_req(&h, t + 1);
    ck_assert_int_eq(raft_step(h.nodes[3].r, h.now + H_ET - 1, &m), 0);
    h_pump(&h, 3);
    ck_assert(!granted(&h, 3, 2));
    ck_assert_uint_eq(raft_current_term(h.nodes[3].r), t);
    ck_assert_int_eq(raft_step(h.nodes[3].r, h.now + H_ET, &m), 0);
    h_pump(&h, 3);
    ck_assert(granted(&h, 3, 2));
    h_close(&h);
}
END_TEST

/* Reference: §4.2.3, which §6.4.1 relies on. A follower that a stale
 * message moved to a higher term (it no longer knows a leader, and has not
 * voted) still grants no vote in that term until an election timeout has
 * passed since it heard from its leader. */
START_TEST(test_lease_term_bump_keeps_honoring)
{
    struct h h;
    struct raft_message m;
    raft_term t;
    init_lease(&h, 3, 3, true, true);
    h_elect(&h, 1);
    h_settle(&h);
    renew(&h, 1);
    t = raft_current_term(h.nodes[1].r);
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE_RESP; /* a late answer to an old request */
    m.from = 2;
    m.to = 3;
    m.term = t + 1;
    ck_assert_int_eq(raft_step(h.nodes[3].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_current_term(h.nodes[3].r), t + 1);
    ck_assert_uint_eq(raft_leader(h.nodes[3].r), 0);
    m = vote_req(&h, t + 1);
    ck_assert_int_eq(raft_step(h.nodes[3].r, h.now + H_ET - 1, &m), 0);
    h_pump(&h, 3);
    ck_assert(!granted(&h, 3, 2));
    h_drop_all(&h);
    ck_assert_int_eq(raft_step(h.nodes[3].r, h.now + H_ET, &m), 0);
    h_pump(&h, 3);
    ck_assert(granted(&h, 3, 2));
    h_close(&h);
}
END_TEST

/* ---- Confirm reads from a recent quorum contact (confirm_window) ---- */

/* A confirm read asked less than confirm_window (default: the heartbeat
 * interval) after the send time of a heartbeat a quorum acknowledged is
 * answered in the next update without a round: on the leader, and
 * forwarded by a follower. Counted as window_reads, not lease_reads. */
START_TEST(test_confirm_window_no_round)
{
    struct h h;
    raft_index idx;
    raft_time sent;
    struct raft_read_stats st;
    sent = lease_leader(&h, 3, 3, true, true, &idx);
    st = stats(&h, 1);
    h.now = sent + H_HB - 1; /* no tick: no periodic heartbeat */
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_uint_eq(find_read(&h, 1, 1)->index, idx);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 0);
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds);
    ck_assert_uint_eq(stats(&h, 1).window_reads, st.window_reads + 1);
    ck_assert_uint_eq(stats(&h, 1).lease_reads, st.lease_reads);
    ck_assert_uint_eq(stats(&h, 1).round_reads, st.round_reads);
    /* Forwarded: one message there, one answer back, no round. */
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[2].r, h.now, 2), 0);
    h_pump(&h, 2);
    h_deliver(&h);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 0);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_READ_INDEX_RESP, 1, 2), 1);
    h_deliver(&h);
    ck_assert_ptr_nonnull(find_read(&h, 2, 2));
    ck_assert_int_eq(find_read(&h, 2, 2)->status, 0);
    ck_assert_uint_eq(find_read(&h, 2, 2)->index, idx);
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds);
    ck_assert_uint_eq(stats(&h, 1).window_reads, st.window_reads + 2);
    /* The default window is the heartbeat interval: at its end, a round. */
    h.now = sent + H_HB;
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 3), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 3));
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds + 1);
    h_close(&h);
}
END_TEST

/* The window runs from the SEND time of the newest message a quorum
 * acknowledged, for confirm_window ms (30 here), whenever the acks came
 * (20 ms late here). A confirm read asked at or after its end takes a
 * round started after it. */
START_TEST(test_confirm_window_expired)
{
    struct h h;
    raft_index idx;
    raft_time sent;
    struct raft_read_stats st;
    init_window(&h, 3, 3, true, true, 30);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    h.now += H_HB;
    sent = h.now;
    raft_tick(h.nodes[1].r, h.now);
    h_pump(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_deliver(&h); /* the followers hear it at `sent` */
    h.now = sent + 20;
    h_settle(&h); /* their acks arrive 20 ms later */
    st = stats(&h, 1);
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, sent + 29, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds);
    h.now = sent + 30;
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 2));
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds + 1);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now)); /* not the lease */
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 1, 2));
    ck_assert_int_eq(find_read(&h, 1, 2)->status, 0);
    ck_assert_uint_eq(find_read(&h, 1, 2)->index, idx);
    ck_assert_uint_eq(stats(&h, 1).window_reads, st.window_reads + 1);
    ck_assert_uint_eq(stats(&h, 1).round_reads, st.round_reads + 1);
    h_close(&h);
}
END_TEST

/* confirm_window 0: every confirm read waits for a round started after
 * it, even right after a quorum acked a heartbeat, lease or not. */
START_TEST(test_confirm_window_zero)
{
    struct h h;
    raft_index idx;
    struct raft_read_stats st;
    init_window(&h, 3, 3, true, true, 0);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    renew(&h, 1);
    st = stats(&h, 1);
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 1));
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds + 1);
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    ck_assert_uint_eq(stats(&h, 1).window_reads, 0);
    ck_assert_uint_eq(stats(&h, 1).round_reads, st.round_reads + 1);
    h_close(&h);
}
END_TEST

/* A confirm read asked within the window is answered only when a round
 * answers it: no answer before the leader is known to hold its lease. */
static void assert_confirm_waits(struct h *h, uint64_t ctx)
{
    ck_assert(!raft_lease_valid(h->nodes[1].r, h->now));
    ck_assert_int_eq(raft_read_index_confirm(h->nodes[1].r, h->now, ctx), 0);
    h_pump(h, 1);
    ck_assert_ptr_null(find_read(h, 1, ctx));
    ck_assert_uint_eq(stats(h, 1).window_reads, 0);
}

/* Reference: §6.4 step 1. Heartbeats acked just now, but no entry of the
 * term committed yet: no lease, so no answer from the window. */
START_TEST(test_confirm_window_needs_noop)
{
    struct h h;
    acked_leader_without_noop(&h);
    assert_confirm_waits(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 0);
    h_run(&h, 3 * H_HB);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_uint_ge(find_read(&h, 1, 1)->index, 2);
    h_close(&h);
}
END_TEST

/* Reference: §3.10. After TimeoutNow (no lease for the rest of the term),
 * a confirm read within the window takes a round. */
START_TEST(test_confirm_window_timeout_now)
{
    struct h h;
    lease_leader(&h, 3, 3, true, true, NULL);
    ck_assert_int_eq(raft_transfer(h.nodes[1].r, h.now, 2), 0);
    h_pump(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_TIMEOUT_NOW, 1, 2), 1);
    assert_confirm_waits(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_close(&h);
}
END_TEST

/* Reference: §4.1. Acks counted under the configuration before a change
 * do not answer a confirm read asked after it, within the window. */
START_TEST(test_confirm_window_config_change)
{
    struct h h;
    raft_index cidx;
    lease_leader(&h, 4, 3, true, true, NULL);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 4,
                                 "127.0.0.1:7003", &cidx),
                     0);
    assert_confirm_waits(&h, 1);
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 1, 1));
    ck_assert_int_eq(find_read(&h, 1, 1)->status, 0);
    h_close(&h);
}
END_TEST

/* With lease_reads off, confirm reads always take a round. */
START_TEST(test_confirm_window_lease_off)
{
    struct h h;
    lease_leader(&h, 3, 3, false, true, NULL);
    assert_confirm_waits(&h, 1);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_close(&h);
}
END_TEST

/* Appends carry a seq: under a steady write load with no heartbeat, each
 * write's acked append keeps the quorum contact fresh, and a confirm read
 * after each write is answered with no round, long after the window of
 * the last heartbeat has passed. Without writes it takes a round again. */
START_TEST(test_confirm_window_appends_keep_fresh)
{
    struct h h;
    raft_index idx;
    raft_time sent;
    uint64_t hb, i;
    struct raft_read_stats st;
    sent = lease_leader(&h, 3, 3, true, true, &idx);
    hb = h.delivered[RAFT_MSG_HEARTBEAT];
    st = stats(&h, 1);
    for (i = 1; i <= 10; i++) {
        h.now += H_HB - 3; /* no tick: no periodic heartbeat */
        ck_assert_int_eq(h_propose(&h, 1, (uint8_t)i, &idx), 0);
        h_settle(&h); /* appended, acked, committed */
        ck_assert_uint_ge(raft_commit_index(h.nodes[1].r), idx);
        ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, i), 0);
        h_pump(&h, 1);
        ck_assert_ptr_nonnull(find_read(&h, 1, i));
        ck_assert_int_eq(find_read(&h, 1, i)->status, 0);
        ck_assert_uint_eq(find_read(&h, 1, i)->index, idx);
    }
    ck_assert_uint_gt(h.now, sent + 5 * H_HB);
    ck_assert_uint_eq(h.delivered[RAFT_MSG_HEARTBEAT], hb);
    ck_assert_uint_eq(h_count(&h, RAFT_MSG_HEARTBEAT, 1, 0), 0);
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds);
    ck_assert_uint_eq(stats(&h, 1).window_reads, st.window_reads + 10);
    /* The lease runs from the last acked append too. */
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now + LEASE_MS - 1));
    ck_assert(!raft_lease_valid(h.nodes[1].r, h.now + LEASE_MS));
    h.now += H_HB;
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 99), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 99));
    ck_assert_uint_eq(stats(&h, 1).rounds, st.rounds + 1);
    h_settle(&h);
    ck_assert_ptr_nonnull(find_read(&h, 1, 99));
    h_close(&h);
}
END_TEST

/* Answers to appends echo the append's seq; a success that claims
 * entries the leader never had is not counted as an ack. */
START_TEST(test_confirm_window_append_seq_echo)
{
    struct h h;
    raft_index idx;
    size_t k;
    uint64_t seq = 0;
    struct raft_message m;
    init_lease(&h, 3, 3, true, true);
    h_elect(&h, 1);
    h.now += 2 * H_HB; /* no tick; the election's acks get old */
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_pump(&h, 1);
    for (k = 0; k < h.nq; k++) {
        if (h.q[k].type == RAFT_MSG_APPEND && h.q[k].to == 2) {
            seq = h.q[k].append.seq;
        }
    }
    ck_assert_uint_gt(seq, 0);
    h_deliver(&h);
    h_pump_all(&h);
    for (k = 0; k < h.nq; k++) {
        if (h.q[k].type == RAFT_MSG_APPEND_RESP && h.q[k].from == 2) {
            ck_assert_uint_eq(h.q[k].append_resp.seq, seq);
        }
    }
    h_drop_all(&h); /* the acks are lost */
    h.now += H_HB / 2; /* within the append's window, not the election's */
    ck_assert(raft_lease_valid(h.nodes[1].r, h.now));
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND_RESP;
    m.term = raft_current_term(h.nodes[1].r);
    m.to = 1;
    m.append_resp.index = raft_last_index(h.nodes[1].r) + 5;
    m.append_resp.seq = seq + 1000; /* never sent: ignored anyway */
    for (m.from = 2; m.from <= 3; m.from++) {
        ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    }
    m.append_resp.seq = seq; /* sent, but the answer is bogus */
    for (m.from = 2; m.from <= 3; m.from++) {
        ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    }
    h_drop_all(&h);
    ck_assert_int_eq(raft_read_index_confirm(h.nodes[1].r, h.now, 1), 0);
    h_pump(&h, 1);
    ck_assert_ptr_null(find_read(&h, 1, 1));
    h_close(&h);
}
END_TEST

static Suite *read_suite(void)
{
    Suite *s = suite_create("raft_read");
    TCase *tc = tcase_create("read_index");
    tcase_add_test(tc, test_read_leader);
    tcase_add_test(tc, test_read_batching);
    tcase_add_test(tc, test_read_waits_for_noop);
    tcase_add_test(tc, test_read_follower);
    tcase_add_test(tc, test_read_leadership_lost);
    tcase_add_test(tc, test_read_single_voter);
    suite_add_tcase(s, tc);
    tc = tcase_create("lease");
    tcase_add_test(tc, test_lease_read_at_once);
    tcase_add_test(tc, test_lease_confirm_read);
    tcase_add_test(tc, test_lease_needs_noop);
    tcase_add_test(tc, test_lease_expiry);
    tcase_add_test(tc, test_lease_void_timeout_now);
    tcase_add_test(tc, test_lease_void_step_down);
    tcase_add_test(tc, test_lease_void_config_change);
    tcase_add_test(tc, test_lease_deposed_leader);
    tcase_add_test(tc, test_lease_restarted_follower_waits);
    tcase_add_test(tc, test_lease_term_bump_keeps_honoring);
    suite_add_tcase(s, tc);
    tc = tcase_create("confirm_window");
    tcase_add_test(tc, test_confirm_window_no_round);
    tcase_add_test(tc, test_confirm_window_expired);
    tcase_add_test(tc, test_confirm_window_zero);
    tcase_add_test(tc, test_confirm_window_needs_noop);
    tcase_add_test(tc, test_confirm_window_timeout_now);
    tcase_add_test(tc, test_confirm_window_config_change);
    tcase_add_test(tc, test_confirm_window_lease_off);
    tcase_add_test(tc, test_confirm_window_appends_keep_fresh);
    tcase_add_test(tc, test_confirm_window_append_seq_echo);
    suite_add_tcase(s, tc);

    tc = tcase_create("transfer");
    tcase_add_test(tc, test_transfer);
    tcase_add_test(tc, test_transfer_abort);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_run_suite(read_suite());
}
