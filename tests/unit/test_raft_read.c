/* Unit tests of read index (thesis §6.4) and leadership transfer (§3.10). */
#include "test_raft_harness.h"

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
    h_init(&h, 3);
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
    h_init(&h, 3);
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
    h_init(&h, 3);
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
    h_init(&h, 3);
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
    h_init(&h, 3);
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
