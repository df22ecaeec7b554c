/* Unit tests of leader election: paper §5.2, pre-vote (thesis §9.6),
 * check-quorum (§6.2), leases (§4.2.3) and rejection of bad input. */
#include "test_raft_harness.h"

/* Reference: §5.2 — a node whose timer fires wins a majority and leads. */
START_TEST(test_elect_basic)
{
    struct h h;
    unsigned i;
    h_init(&h, 3);
    h_elect(&h, 1);
    ck_assert_uint_eq(raft_current_term(h.nodes[1].r), 2);
    for (i = 2; i <= 3; i++) {
        ck_assert_int_eq(raft_role(h.nodes[i].r), RAFT_FOLLOWER);
        ck_assert_uint_eq(raft_leader(h.nodes[i].r), 1);
        ck_assert_uint_eq(h.nodes[i].vote, 1); /* the vote was persisted */
    }
    /* The no-op of the new term (thesis §6.4) is committed everywhere. */
    h_run(&h, 3 * H_HB);
    for (i = 1; i <= 3; i++) {
        const struct raft_entry *e = raft_entry_at(h.nodes[i].r, 2);
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(e->type, RAFT_ENTRY_NOOP);
        ck_assert_uint_eq(raft_commit_index(h.nodes[i].r), 2);
        ck_assert_uint_eq(h.nodes[i].applied, 2);
    }
    h_close(&h);
}
END_TEST

/* Reference: §5.2 — elections happen on their own with randomized timeouts,
 * and exactly one leader emerges per term (Election Safety). */
START_TEST(test_elect_randomized)
{
    struct h h;
    unsigned i, leaders = 0;
    h_init(&h, 5);
    h_run(&h, 10 * H_ET);
    for (i = 1; i <= 5; i++) {
        leaders += raft_role(h.nodes[i].r) == RAFT_LEADER;
    }
    ck_assert_uint_eq(leaders, 1);
    h_close(&h);
}
END_TEST

/* Reference: §5.2, Election Safety — under random partitions and crashes,
 * at most one leader is ever elected in a term; a leader emerges once the
 * network heals. */
START_TEST(test_election_safety_random)
{
    struct h h;
    struct raft_options o;
    raft_id leader_of[512];
    uint64_t x = 99 + (uint64_t)_i;
    unsigned step, i;
    raft_options_default(&o);
    o.election_timeout = H_ET;
    o.heartbeat_interval = H_HB;
    o.seed = (uint64_t)_i;
    o.pre_vote = _i % 2 == 0;
    o.check_quorum = _i % 3 != 0;
    h_init_opts(&h, 5, 5, &o);
    memset(leader_of, 0, sizeof leader_of);
    for (step = 0; step < 60; step++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        memset(h.cut, 0, sizeof h.cut);
        for (i = 0; i < 6; i++) {
            unsigned a = 1 + (unsigned)((x >> (8 * i)) % 5);
            unsigned b = 1 + (unsigned)((x >> (8 * i + 4)) % 5);
            h.cut[a][b] = h.cut[b][a] = (x >> (50 + i)) & 1;
        }
        if (step % 10 == 3) {
            raft_id v = 1 + (raft_id)((x >> 40) % 5);
            if (h.nodes[v].up) {
                h_stop(&h, v);
            } else {
                h_start(&h, v);
            }
        }
        h_run(&h, 20 + (x >> 58));
        for (i = 1; i <= 5; i++) {
            raft_term t;
            if (!h.nodes[i].up || raft_role(h.nodes[i].r) != RAFT_LEADER) {
                continue;
            }
            t = raft_current_term(h.nodes[i].r);
            ck_assert_uint_lt(t, 512);
            if (leader_of[t] == 0) {
                leader_of[t] = i;
            }
            ck_assert_uint_eq(leader_of[t], i);
        }
    }
    memset(h.cut, 0, sizeof h.cut);
    for (i = 1; i <= 5; i++) {
        if (!h.nodes[i].up) {
            h_start(&h, i);
        }
    }
    h_run(&h, 20 * H_ET);
    ck_assert_uint_ne(h_leader(&h), 0);
    h_close(&h);
}
END_TEST

/* Reference: §5.2 — split vote: two candidates in the same term, neither gets
 * a majority; a later timeout resolves it, one leader per term. */
START_TEST(test_elect_split_vote)
{
    struct h h;
    struct raft_options o;
    raft_options_default(&o);
    o.election_timeout = H_ET;
    o.heartbeat_interval = H_HB;
    o.pre_vote = false;
    o.seed = 7;
    h_init_opts(&h, 4, 4, &o);
    /* 1 and 2 time out together; 1's requests reach 3, 2's reach 4. */
    h.cut[1][4] = h.cut[2][3] = h.cut[1][2] = h.cut[2][1] = true;
    h.now += 2 * H_ET;
    raft_tick(h.nodes[1].r, h.now);
    raft_tick(h.nodes[2].r, h.now);
    h_settle(&h);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_CANDIDATE);
    ck_assert_int_eq(raft_role(h.nodes[2].r), RAFT_CANDIDATE);
    ck_assert_uint_eq(raft_current_term(h.nodes[1].r), 2);
    ck_assert_uint_eq(raft_current_term(h.nodes[2].r), 2);
    memset(h.cut, 0, sizeof h.cut);
    h_run(&h, 10 * H_ET);
    ck_assert_uint_ne(h_leader(&h), 0);
    ck_assert_uint_ge(raft_current_term(h.nodes[h_leader(&h)].r), 3);
    h_close(&h);
}
END_TEST

/* Reference: §5.4.1 — a voter denies its vote to a candidate whose log is
 * less up to date than its own. */
START_TEST(test_elect_up_to_date)
{
    struct h h;
    raft_index idx;
    h_init(&h, 3);
    h_elect(&h, 1);
    /* 3 misses an entry that 1 and 2 commit. */
    h_isolate(&h, 3, true);
    ck_assert_int_eq(h_propose(&h, 1, 9, &idx), 0);
    h_settle(&h);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
    h_isolate(&h, 3, false);
    h_stop(&h, 1);
    /* 3 cannot win: 2's log is more up to date (Leader Completeness). */
    h_timeout(&h, 3);
    h_settle(&h);
    ck_assert_int_ne(raft_role(h.nodes[3].r), RAFT_LEADER);
    h_elect(&h, 2);
    h_run(&h, 3 * H_HB);
    ck_assert_uint_ge(raft_last_index(h.nodes[3].r), idx);
    h_close(&h);
}
END_TEST

/* Reference: §5.2 — a node votes at most once per term; the vote survives a
 * restart because it was persisted before the answer went out. */
START_TEST(test_elect_one_vote_per_term)
{
    struct h h;
    struct raft_message m;
    struct raft_update u;
    size_t i, granted = 0;
    h_init(&h, 3);
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE;
    m.from = 2;
    m.to = 1;
    m.term = 5;
    m.vote.last_index = 1;
    m.vote.last_term = 1;
    h.now += 2 * H_ET; /* outside any lease */
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    m.from = 3;
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    raft_ready(h.nodes[1].r, &u);
    ck_assert(u.hard_state_changed);
    ck_assert_uint_eq(u.hs_term, 5);
    ck_assert_uint_eq(u.hs_vote, 2);
    ck_assert_uint_eq(u.n_messages + u.n_messages_after_persist, 2);
    /* The grant waits for persistence; the rejection may not. */
    for (i = 0; i < u.n_messages_after_persist; i++) {
        const struct raft_message *r = &u.messages_after_persist[i];
        granted += r->vote_resp.granted;
        ck_assert_uint_eq(r->vote_resp.granted, r->to == 2);
    }
    ck_assert_uint_eq(granted, 1);
    raft_update_close(&u);
    h_close(&h);
}
END_TEST

/* Thesis §9.6: with pre-vote, a partitioned node does not bump its term, so
 * it does not disrupt the leader when it rejoins. */
START_TEST(test_prevote_rejoin)
{
    struct h h;
    raft_term t;
    h_init(&h, 3);
    h_elect(&h, 1);
    t = raft_current_term(h.nodes[1].r);
    h_isolate(&h, 3, true);
    h_run(&h, 10 * H_ET);
    ck_assert_uint_eq(raft_current_term(h.nodes[3].r), t);
    ck_assert_int_eq(raft_role(h.nodes[3].r), RAFT_PRE_CANDIDATE);
    h_isolate(&h, 3, false);
    h_run(&h, 3 * H_ET);
    ck_assert_uint_eq(h_leader(&h), 1);
    ck_assert_uint_eq(raft_current_term(h.nodes[1].r), t);
    ck_assert_uint_eq(raft_leader(h.nodes[3].r), 1);
    h_close(&h);
}
END_TEST

/* Without pre-vote the same scenario bumps terms: the control experiment. */
START_TEST(test_no_prevote_disrupts)
{
    struct h h;
    struct raft_options o;
    raft_options_default(&o);
    o.election_timeout = H_ET;
    o.heartbeat_interval = H_HB;
    o.pre_vote = false;
    o.check_quorum = false;
    o.seed = 3;
    h_init_opts(&h, 3, 3, &o);
    h_elect(&h, 1);
    h_isolate(&h, 3, true);
    h_run(&h, 10 * H_ET);
    ck_assert_uint_gt(raft_current_term(h.nodes[3].r),
                      raft_current_term(h.nodes[1].r));
    h_close(&h);
}
END_TEST

/* Thesis §6.2: check-quorum — a leader cut off from the majority steps down
 * within about an election timeout. */
START_TEST(test_check_quorum_steps_down)
{
    struct h h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_isolate(&h, 1, true);
    h_run(&h, 5 * H_ET);
    ck_assert_int_ne(raft_role(h.nodes[1].r), RAFT_LEADER);
    /* Meanwhile the majority elected someone else. */
    ck_assert(h_leader(&h) == 2 || h_leader(&h) == 3);
    h_close(&h);
}
END_TEST

/* Thesis §4.2.3: a follower that hears from its leader ignores vote requests
 * of a higher term (leader lease); the leader is not deposed. */
START_TEST(test_lease_ignores_votes)
{
    struct h h;
    struct raft_message m;
    raft_term t;
    h_init(&h, 3);
    h_elect(&h, 1);
    t = raft_current_term(h.nodes[2].r);
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 2;
    m.term = t + 5;
    m.vote.last_index = 100;
    m.vote.last_term = t + 4;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_current_term(h.nodes[2].r), t);
    ck_assert_uint_eq(raft_leader(h.nodes[2].r), 1);
    /* With transfer set (TimeoutNow), the lease does not hold. */
    m.vote.transfer = true;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_current_term(h.nodes[2].r), t + 5);
    h_close(&h);
}
END_TEST

/* Bad input: unknown senders, own id, bogus types, stale terms. */
START_TEST(test_bad_input)
{
    struct h h;
    struct raft_message m;
    struct raft_update u;
    raft_term t;
    h_init(&h, 3);
    h_elect(&h, 1);
    t = raft_current_term(h.nodes[2].r);
    memset(&m, 0, sizeof m);
    m.to = 2;
    m.term = t + 10;
    /* Unknown senders: responses, reads and TimeoutNow are ignored. */
    m.from = 9;
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.term = t;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_int_eq(raft_role(h.nodes[2].r), RAFT_FOLLOWER);
    m.type = RAFT_MSG_READ_INDEX;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    m.type = RAFT_MSG_APPEND_RESP;
    m.term = t + 10;
    m.to = 1;
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    m.to = 2;
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(h.nodes[1].r), t);
    raft_ready(h.nodes[2].r, &u);
    ck_assert_uint_eq(u.n_messages + u.n_messages_after_persist, 0);
    raft_update_close(&u);
    /* An unknown candidate with a stale log: within the lease, ignored;
     * outside it, refused (its term is adopted, per §5.1). */
    m.type = RAFT_MSG_VOTE;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_current_term(h.nodes[2].r), t);
    h.now += 5 * H_ET;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_current_term(h.nodes[2].r), t + 10);
    raft_ready(h.nodes[2].r, &u);
    ck_assert_uint_eq(u.n_messages + u.n_messages_after_persist, 1);
    ck_assert(!(u.n_messages ? u.messages : u.messages_after_persist)[0]
                   .vote_resp.granted);
    raft_update_close(&u);
    t += 10;
    m.term = t + 10;
    /* From itself, to someone else, type 0 or out of range. */
    m.from = 2;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), RAFT_ERR_INVALID);
    m.from = 1;
    m.to = 3;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), RAFT_ERR_INVALID);
    m.to = 2;
    m.type = 0;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), RAFT_ERR_INVALID);
    m.type = 200;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), RAFT_ERR_INVALID);
    ck_assert_uint_eq(raft_current_term(h.nodes[2].r), t);
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, NULL), RAFT_ERR_INVALID);
    /* A stale append: answered with our term so its sender steps down. */
    raft_ready(h.nodes[2].r, &u);
    raft_update_close(&u);
    m.type = RAFT_MSG_APPEND;
    m.from = 3;
    m.term = t - 1;
    m.append.prev_index = 50;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert_uint_eq(u.n_messages, 1);
    ck_assert_uint_eq(u.messages[0].type, RAFT_MSG_APPEND_RESP);
    ck_assert_uint_eq(u.messages[0].term, t);
    ck_assert(u.messages[0].append_resp.reject);
    raft_update_close(&u);
    /* Responses that make no sense to a follower are ignored. */
    m.type = RAFT_MSG_APPEND_RESP;
    m.term = t;
    m.append_resp.index = 1000;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    m.type = RAFT_MSG_VOTE_RESP;
    m.vote_resp.granted = true;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_int_eq(raft_role(h.nodes[2].r), RAFT_FOLLOWER);
    h_close(&h);
}
END_TEST

/* Thousands of random (structurally sound) messages: the node never
 * crashes, and its invariants hold (commit <= last index, a leader keeps
 * its term's entries). */
START_TEST(test_random_messages)
{
    struct h h;
    uint64_t x = 0x1234567;
    unsigned k, id;
    struct raft_entry ents[4];
    uint8_t data[4] = {1, 2, 3, 4};
    h_init(&h, 3);
    h_elect(&h, 1);
    for (k = 0; k < 20000; k++) {
        struct raft_message m;
        unsigned j;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        memset(&m, 0, sizeof m);
        id = 1 + (unsigned)((x >> 33) % 3);
        m.to = id;
        m.from = 1 + (unsigned)((x >> 40) % 4);
        m.type = 1 + (uint8_t)((x >> 20) % RAFT_MSG_TYPE_MAX);
        m.term = raft_current_term(h.nodes[id].r) + (x >> 50) % 3 - 1;
        switch (m.type) {
        case RAFT_MSG_APPEND:
            m.append.prev_index = (x >> 8) % 8;
            m.append.prev_term = (x >> 12) % 4;
            m.append.commit = (x >> 16) % 10;
            m.append.n_entries = (x >> 24) % 4;
            for (j = 0; j < m.append.n_entries; j++) {
                ents[j].index = m.append.prev_index + 1 + j;
                ents[j].term = m.append.prev_term + (j > 1);
                ents[j].type = 1 + (uint8_t)((x >> (30 + j)) % 3);
                ents[j].data.base = data;
                ents[j].data.len = (x >> 44) % 5;
            }
            m.append.entries = ents;
            break;
        case RAFT_MSG_APPEND_RESP:
            m.append_resp.reject = (x >> 9) & 1;
            m.append_resp.index = (x >> 10) % 10;
            m.append_resp.hint_index = (x >> 14) % 10;
            m.append_resp.hint_term = (x >> 18) % 4;
            break;
        case RAFT_MSG_VOTE:
            m.vote.last_index = (x >> 10) % 10;
            m.vote.last_term = (x >> 14) % 4;
            m.vote.pre_vote = (x >> 18) & 1;
            m.vote.transfer = (x >> 19) & 1;
            break;
        case RAFT_MSG_HEARTBEAT:
            m.heartbeat.commit = (x >> 10) % 10;
            m.heartbeat.seq = (x >> 14) % 4;
            break;
        case RAFT_MSG_SNAPSHOT:
            m.snapshot.index = (x >> 10) % 10;
            m.snapshot.snap_term = (x >> 14) % 4;
            m.snapshot.size = (x >> 16) % 8;
            m.snapshot.offset = (x >> 20) % 8;
            m.snapshot.data.base = data;
            m.snapshot.data.len = (x >> 24) % 5;
            m.snapshot.last = (x >> 28) & 1;
            break;
        case RAFT_MSG_SNAPSHOT_RESP:
            m.snapshot_resp.index = (x >> 10) % 10;
            m.snapshot_resp.offset = (x >> 14) % 10;
            m.snapshot_resp.reject = (x >> 18) & 1;
            break;
        case RAFT_MSG_VOTE_RESP:
            m.vote_resp.granted = (x >> 10) & 1;
            m.vote_resp.pre_vote = (x >> 11) & 1;
            break;
        case RAFT_MSG_READ_INDEX_RESP:
            m.read_index_resp.ctx = (x >> 10) % 4;
            m.read_index_resp.index = (x >> 14) % 10;
            m.read_index_resp.reject = (x >> 18) & 1;
            break;
        default:
            m.heartbeat_resp.seq = (x >> 10) % 4;
            break;
        }
        raft_step(h.nodes[id].r, h.now, &m);
        h_pump(&h, id);
        if (k % 7 == 0) {
            h_drop_all(&h);
            h.now += (x >> 36) % 30;
            raft_tick(h.nodes[id].r, h.now);
            h_pump(&h, id);
        }
        h_drop_all(&h);
        ck_assert_uint_le(raft_commit_index(h.nodes[id].r),
                          raft_last_index(h.nodes[id].r));
    }
    h_close(&h);
}
END_TEST

/* Options and loads that cannot work are refused. */
START_TEST(test_new_invalid)
{
    struct raft_options o;
    struct raft_load l;
    struct raft_entry e[2];
    struct raft *r = NULL;
    raft_options_default(&o);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(raft_new(&o, &l, 0, &r), RAFT_ERR_INVALID); /* id 0 */
    o.id = 1;
    o.heartbeat_interval = o.election_timeout;
    ck_assert_int_eq(raft_new(&o, &l, 0, &r), RAFT_ERR_INVALID);
    raft_options_default(&o);
    o.id = 1;
    memset(e, 0, sizeof e);
    e[0].index = 1;
    e[0].term = 2;
    e[0].type = RAFT_ENTRY_NOOP;
    e[1].index = 3; /* gap */
    e[1].term = 2;
    e[1].type = RAFT_ENTRY_NOOP;
    l.entries = e;
    l.n_entries = 2;
    ck_assert_int_eq(raft_new(&o, &l, 0, &r), RAFT_ERR_CORRUPT);
    e[1].index = 2;
    e[1].term = 1; /* terms go down */
    ck_assert_int_eq(raft_new(&o, &l, 0, &r), RAFT_ERR_CORRUPT);
    e[1].term = 2;
    e[1].type = RAFT_ENTRY_CONFIG; /* does not decode */
    ck_assert_int_eq(raft_new(&o, &l, 0, &r), RAFT_ERR_CORRUPT);
    e[1].type = RAFT_ENTRY_NOOP;
    l.applied = 3; /* beyond the log */
    ck_assert_int_eq(raft_new(&o, &l, 0, &r), RAFT_ERR_CORRUPT);
    l.applied = 2;
    ck_assert_int_eq(raft_new(&o, &l, 0, &r), 0);
    /* A node that is not a voter of its configuration never campaigns. */
    ck_assert_int_eq(raft_tick(r, 100000), 0);
    ck_assert_int_eq(raft_role(r), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_current_term(r), 2);
    raft_free(r);
}
END_TEST

/* Reference: §5.2 — a single-voter cluster elects itself and commits alone,
 * once its own write is durable (thesis §10.2.1). */
START_TEST(test_single_node)
{
    struct h h;
    raft_index idx;
    h_init(&h, 1);
    h_run(&h, 3 * H_ET);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_int_eq(h_propose(&h, 1, 5, &idx), 0);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
    ck_assert_uint_eq(h.nodes[1].applied, idx);
    h_close(&h);
}
END_TEST

static Suite *election_suite(void)
{
    Suite *s = suite_create("raft_election");
    TCase *tc = tcase_create("election");
    tcase_add_test(tc, test_elect_basic);
    tcase_add_test(tc, test_elect_randomized);
    tcase_add_test(tc, test_elect_split_vote);
    tcase_add_loop_test(tc, test_election_safety_random, 0, 12);
    tcase_add_test(tc, test_elect_up_to_date);
    tcase_add_test(tc, test_elect_one_vote_per_term);
    tcase_add_test(tc, test_single_node);
    suite_add_tcase(s, tc);
    tc = tcase_create("prevote");
    tcase_add_test(tc, test_prevote_rejoin);
    tcase_add_test(tc, test_no_prevote_disrupts);
    suite_add_tcase(s, tc);
    tc = tcase_create("check_quorum");
    tcase_add_test(tc, test_check_quorum_steps_down);
    tcase_add_test(tc, test_lease_ignores_votes);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad_input");
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_random_messages);
    tcase_add_test(tc, test_new_invalid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_run_suite(election_suite());
}
