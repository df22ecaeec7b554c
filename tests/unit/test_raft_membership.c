/* Unit tests of membership changes (thesis §4.1-§4.2): learners, catch-up,
 * promotion, removal of a follower and of the leader itself. */
#include "test_raft_harness.h"

static bool is_voter(const struct raft_config *c, raft_id id)
{
    const struct raft_server *s = raft_config_get(c, id);
    return s != NULL && s->role == RAFT_VOTER;
}

/* 3 voters (1-3) and node 4, which starts empty and knows no one. */
static void init4(struct h *h)
{
    h_init_opts(h, 4, 3, NULL);
    h_elect(h, 1);
    h_run(h, 2 * H_HB);
}

/* Thesis §4.2.1: a learner is added, receives the whole log, never votes or
 * counts, and is promoted once caught up. */
START_TEST(test_add_learner_promote)
{
    struct h h;
    raft_index idx, cidx;
    const struct raft_config *c;
    unsigned k;
    init4(&h);
    for (k = 0; k < 10; k++) {
        ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    }
    h_settle(&h);
    /* A learner cannot be promoted before it is one. */
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_PROMOTE, 4, NULL,
                                 &cidx),
                     RAFT_ERR_NOT_FOUND);
    /* Cut off, it cannot catch up: its promotion is refused. */
    h_isolate(&h, 4, true);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 4,
                                 "127.0.0.1:7003", &cidx),
                     0);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 5,
                                 "x", &idx),
                     RAFT_ERR_BUSY); /* one change at a time */
    h_pump(&h, 1);
    h_settle(&h);
    c = raft_configuration(h.nodes[1].r);
    ck_assert_uint_eq(c->n, 4);
    ck_assert_uint_eq(raft_config_get(c, 4)->role, RAFT_LEARNER);
    ck_assert_uint_ge(raft_commit_index(h.nodes[1].r), cidx);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_PROMOTE, 4, NULL,
                                 &idx),
                     RAFT_ERR_NOT_CAUGHT_UP);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 4,
                                 "y", &idx),
                     RAFT_ERR_EXISTS);
    /* Reconnected, it learns the log from the leader (no configuration of
     * its own yet: it accepts the leader's appends). */
    h_isolate(&h, 4, false);
    h_run(&h, 5 * H_HB);
    ck_assert_uint_eq(raft_last_index(h.nodes[4].r),
                      raft_last_index(h.nodes[1].r));
    ck_assert_uint_eq(h.nodes[4].applied, raft_commit_index(h.nodes[1].r));
    ck_assert_uint_eq(raft_config_get(raft_configuration(h.nodes[4].r), 4)->role,
                      RAFT_LEARNER);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_PROMOTE, 4, NULL,
                                 &idx),
                     0);
    /* Thesis §4.1: in effect as soon as appended, not when committed. */
    ck_assert(is_voter(raft_configuration(h.nodes[1].r), 4));
    h_settle(&h);
    h_run(&h, 2 * H_HB);
    ck_assert(is_voter(raft_committed_configuration(h.nodes[4].r), 4));
    /* 4 voters now: a majority is 3, so one down is fine, two are not. */
    h_stop(&h, 3);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx); /* 1,2,4 */
    h_stop(&h, 2);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    ck_assert_uint_lt(raft_commit_index(h.nodes[1].r), idx); /* 1,4 of 4 */
    h_close(&h);
}
END_TEST

/* A learner never votes and never campaigns. */
START_TEST(test_learner_never_campaigns)
{
    struct h h;
    raft_index idx;
    init4(&h);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 4,
                                 "l", &idx),
                     0);
    h_settle(&h);
    h_run(&h, 2 * H_HB);
    h_isolate(&h, 4, true);
    h_run(&h, 10 * H_ET);
    ck_assert_int_eq(raft_role(h.nodes[4].r), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_current_term(h.nodes[4].r),
                      raft_current_term(h.nodes[1].r));
    h_close(&h);
}
END_TEST

/* Thesis §4.1: removing a follower; the rest keeps committing with the new
 * majority (2 of 2), the removed node is no longer contacted. */
START_TEST(test_remove_follower)
{
    struct h h;
    raft_index idx;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_REMOVE, 3, NULL,
                                 &idx),
                     0);
    h_settle(&h);
    h_run(&h, 2 * H_HB);
    ck_assert_uint_eq(raft_configuration(h.nodes[1].r)->n, 2);
    ck_assert_uint_eq(raft_progress(h.nodes[1].r, NULL, 0), 1);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_REMOVE, 3, NULL,
                                 &idx),
                     RAFT_ERR_NOT_FOUND);
    h_stop(&h, 3);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
    h_close(&h);
}
END_TEST

/* Thesis §4.2.2: the leader removes itself: it keeps leading (without
 * counting itself) until the change commits, then steps down and never
 * campaigns again; the others elect a leader. */
START_TEST(test_remove_leader)
{
    struct h h;
    raft_index idx;
    raft_id l2;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_REMOVE, 1, NULL,
                                 &idx),
                     0);
    h_pump(&h, 1);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    h_settle(&h);
    ck_assert_uint_ge(raft_commit_index(h.nodes[1].r), idx);
    ck_assert_int_ne(raft_role(h.nodes[1].r), RAFT_LEADER);
    /* It handed over with TimeoutNow: a new leader without waiting for an
     * election timeout. */
    ck_assert_uint_eq(h.delivered[RAFT_MSG_TIMEOUT_NOW], 1);
    l2 = h_leader(&h);
    ck_assert(l2 == 2 || l2 == 3);
    h_run(&h, 10 * H_ET);
    l2 = h_leader(&h);
    ck_assert(l2 == 2 || l2 == 3);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_FOLLOWER);
    ck_assert_int_eq(h_propose(&h, l2, 1, &idx), 0);
    h_settle(&h);
    ck_assert_uint_eq(raft_commit_index(h.nodes[l2].r), idx);
    h_close(&h);
}
END_TEST

/* Thesis §4.1: a configuration takes effect when appended and reverts when
 * its entry is truncated by a new leader. */
START_TEST(test_config_reverts_on_truncate)
{
    struct h h;
    raft_index idx;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    /* 1 appends a change that reaches nobody. */
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 4,
                                 "z", &idx),
                     0);
    h_pump(&h, 1);
    h_drop_all(&h);
    ck_assert_uint_eq(raft_configuration(h.nodes[1].r)->n, 4);
    h_isolate(&h, 1, true);
    h_run(&h, 10 * H_ET);
    ck_assert_uint_ne(h_leader(&h), 0);
    ck_assert_uint_ne(h_leader(&h), 1);
    ck_assert_int_eq(h_propose(&h, h_leader(&h), 1, &idx), 0);
    h_settle(&h);
    h_isolate(&h, 1, false);
    h_run(&h, 10 * H_HB);
    /* 1's uncommitted entry was overwritten: back to 3 servers. */
    ck_assert_uint_eq(raft_configuration(h.nodes[1].r)->n, 3);
    ck_assert_ptr_null(raft_config_get(raft_configuration(h.nodes[1].r), 4));
    h_close(&h);
}
END_TEST

/* Changes are leader-only, bad ids and addresses refused, the last voter
 * cannot be removed. */
START_TEST(test_change_errors)
{
    struct h h;
    raft_index idx;
    char longaddr[RAFT_ADDR_MAX + 8];
    h_init(&h, 1);
    h_run(&h, 3 * H_ET);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_REMOVE, 1, NULL,
                                 &idx),
                     RAFT_ERR_INVALID);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 0,
                                 "a", &idx),
                     RAFT_ERR_INVALID);
    memset(longaddr, 'a', sizeof longaddr);
    longaddr[sizeof longaddr - 1] = '\0';
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_ADD_LEARNER, 2,
                                 longaddr, &idx),
                     RAFT_ERR_INVALID);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, 99, 2, "a", &idx),
                     RAFT_ERR_INVALID);
    ck_assert_int_eq(raft_change(h.nodes[1].r, h.now, RAFT_PROMOTE, 1, NULL,
                                 &idx),
                     RAFT_ERR_EXISTS);
    h_close(&h);
    h_init(&h, 3);
    h_elect(&h, 1);
    ck_assert_int_eq(raft_change(h.nodes[2].r, h.now, RAFT_ADD_LEARNER, 4,
                                 "a", &idx),
                     RAFT_ERR_NOT_LEADER);
    h_close(&h);
}
END_TEST

static Suite *membership_suite(void)
{
    Suite *s = suite_create("raft_membership");
    TCase *tc = tcase_create("learners");
    tcase_add_test(tc, test_add_learner_promote);
    tcase_add_test(tc, test_learner_never_campaigns);
    suite_add_tcase(s, tc);
    tc = tcase_create("remove");
    tcase_add_test(tc, test_remove_follower);
    tcase_add_test(tc, test_remove_leader);
    suite_add_tcase(s, tc);
    tc = tcase_create("effect");
    tcase_add_test(tc, test_config_reverts_on_truncate);
    tcase_add_test(tc, test_change_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_run_suite(membership_suite());
}
