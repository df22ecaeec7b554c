/* Unit tests of log replication and commit: paper §5.3, §5.4, Fig. 7 and 8,
 * thesis §10.2.1, batching, pipelining, fast backtracking, bad appends. */
#include "test_raft_harness.h"

/* Reference: §5.3 — entries proposed to the leader reach every follower,
 * commit once on a majority, and are applied everywhere in order. */
START_TEST(test_replicate_basic)
{
    struct h h;
    raft_index idx = 0;
    unsigned i, k;
    h_init(&h, 3);
    h_elect(&h, 1);
    for (k = 0; k < 20; k++) {
        ck_assert_int_eq(h_propose(&h, 1, (uint8_t)k, &idx), 0);
    }
    h_settle(&h);
    h_run(&h, 2 * H_HB);
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(raft_commit_index(h.nodes[i].r), idx);
        ck_assert_uint_eq(h.nodes[i].applied, idx);
        ck_assert_uint_eq(h.nodes[i].applied_sum, 190);
    }
    h_assert_logs_match(&h, 1, 2, idx);
    h_assert_logs_match(&h, 1, 3, idx);
    /* Followers refuse proposals. */
    ck_assert_int_eq(h_propose(&h, 2, 1, &idx), RAFT_ERR_NOT_LEADER);
    h_close(&h);
}
END_TEST

/* Reference: §5.3 Fig. 7 — whatever a follower's log holds (missing
 * entries, extra uncommitted entries, both), the leader's AppendEntries
 * consistency check finds the last matching entry and repairs it. */
static const raft_term fig7_leader[10] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
static const raft_term fig7_a[9] = {1, 1, 1, 4, 4, 5, 5, 6, 6};
static const raft_term fig7_b[4] = {1, 1, 1, 4};
static const raft_term fig7_c[11] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6};
static const raft_term fig7_d[12] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7};
static const raft_term fig7_e[7] = {1, 1, 1, 4, 4, 4, 4};
static const raft_term fig7_f[11] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
static const struct {
    const raft_term *t;
    size_t n;
} fig7[6] = {{fig7_a, 9},  {fig7_b, 4},  {fig7_c, 11},
             {fig7_d, 12}, {fig7_e, 7}, {fig7_f, 11}};

START_TEST(test_fig7_repair)
{
    struct h h;
    raft_index last;
    h_init(&h, 3);
    h_set_log(&h, 1, fig7_leader, 10, 8);
    h_set_log(&h, 3, fig7_leader, 10, 8);
    h_set_log(&h, 2, fig7[_i].t, fig7[_i].n, 8);
    h_elect(&h, 1);
    h_run(&h, 5 * H_HB);
    last = raft_last_index(h.nodes[1].r);
    ck_assert_uint_eq(last, 11); /* the leader's log plus its no-op */
    ck_assert_uint_eq(raft_last_index(h.nodes[2].r), last);
    h_assert_logs_match(&h, 1, 2, last);
    ck_assert_uint_eq(raft_commit_index(h.nodes[2].r), last);
    /* The store fake was repaired the same way (truncate, then append). */
    ck_assert_uint_eq(h.nodes[2].n_log, last);
    ck_assert_uint_eq(h.nodes[2].log[9].term, 6);
    h_close(&h);
}
END_TEST

/* Fast backtracking: follower (f) of Fig. 7 diverges over 8 entries of
 * terms 2 and 3; the hints skip a whole term per round trip. */
START_TEST(test_fast_backtracking)
{
    struct h h;
    h_init(&h, 3);
    h_set_log(&h, 1, fig7_leader, 10, 8);
    h_set_log(&h, 3, fig7_leader, 10, 8);
    h_set_log(&h, 2, fig7_f, 11, 8);
    h.rejects = 0;
    h_elect(&h, 1);
    ck_assert_uint_le(h.rejects, 2);
    h_run(&h, 3 * H_HB);
    h_assert_logs_match(&h, 1, 2, raft_last_index(h.nodes[1].r));
    h_close(&h);
}
END_TEST

/* Reference: §5.4.2, Fig. 8 — a leader does not commit an entry of an
 * earlier term by counting replicas, only through an entry of its own term.
 */
START_TEST(test_fig8_commit_rule)
{
    struct h h;
    static const raft_term logt[2] = {1, 2};
    struct raft_message m;
    h_init(&h, 3);
    h_set_log(&h, 1, logt, 2, 3);
    h_set_log(&h, 2, logt, 2, 3);
    h_timeout(&h, 1);
    h_deliver_until_leader(&h, 1);
    h_drop_all(&h);
    ck_assert_uint_eq(raft_last_index(h.nodes[1].r), 3); /* the no-op */
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), 0);
    /* Node 2 acknowledges index 2 (term 2) only: a majority (1 and 2)
     * holds it, but it is of an older term: no commit. */
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND_RESP;
    m.from = 2;
    m.to = 1;
    m.term = raft_current_term(h.nodes[1].r);
    m.append_resp.index = 2;
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), 0);
    /* Once the no-op of its term is on a majority, both commit. */
    m.append_resp.index = 3;
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), 3);
    h_close(&h);
}
END_TEST

/* Thesis §10.2.1: the leader sends while it writes, but counts itself only
 * once raft_persisted() says its copy is durable. */
START_TEST(test_leader_counts_itself_when_durable)
{
    struct h h;
    struct raft_update u;
    struct raft_buf b = {(void *)"x", 1};
    raft_index idx;
    raft_term t;
    size_t i;
    h_init(&h, 5);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    h.cut[1][4] = h.cut[1][5] = true;
    ck_assert_int_eq(raft_propose(h.nodes[1].r, h.now, &b, &idx, &t), 0);
    ck_assert(raft_ready(h.nodes[1].r, &u));
    ck_assert_uint_eq(u.n_entries, 1);
    ck_assert_uint_ge(u.n_messages, 2); /* appends do not wait for the disk */
    for (i = 0; i < u.n_messages; i++) {
        h_enqueue(&h, &u.messages[i]);
    }
    u.n_messages = 0;
    /* Followers 2 and 3 persist and acknowledge: 2 of 5 without us. */
    h_deliver(&h);
    h_deliver(&h);
    ck_assert_uint_lt(raft_commit_index(h.nodes[1].r), idx);
    ck_assert_int_eq(raft_persisted(h.nodes[1].r, h.now, idx, t), 0);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
    /* A stale or bogus report changes nothing. */
    ck_assert_int_eq(raft_persisted(h.nodes[1].r, h.now, idx + 5, t), 0);
    raft_update_close(&u);
    h_close(&h);
}
END_TEST

/* A driver that batches several updates in one write may report only the
 * last: the report covers the earlier ones too. Unknown reports are
 * ignored. */
START_TEST(test_persisted_covers_batches)
{
    struct h h;
    struct raft_update u1, u2;
    struct raft_buf b = {(void *)"y", 1};
    raft_index i1, i2;
    raft_term t;
    h_init(&h, 1);
    h_run(&h, 3 * H_ET);
    ck_assert_int_eq(raft_role(h.nodes[1].r), RAFT_LEADER);
    ck_assert_int_eq(raft_propose(h.nodes[1].r, h.now, &b, &i1, &t), 0);
    ck_assert(raft_ready(h.nodes[1].r, &u1));
    ck_assert_int_eq(raft_propose(h.nodes[1].r, h.now, &b, &i2, &t), 0);
    ck_assert(raft_ready(h.nodes[1].r, &u2));
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), i1 - 1);
    /* Never handed out: ignored. */
    ck_assert_int_eq(raft_persisted(h.nodes[1].r, h.now, i2 + 1, t), 0);
    ck_assert_int_eq(raft_persisted(h.nodes[1].r, h.now, i2, t + 1), 0);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), i1 - 1);
    ck_assert_int_eq(raft_persisted(h.nodes[1].r, h.now, i2, t), 0);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), i2);
    /* Committed entries come out in the next update, both of them. */
    raft_update_close(&u1);
    raft_update_close(&u2);
    ck_assert(raft_ready(h.nodes[1].r, &u1));
    ck_assert_uint_eq(u1.n_committed, 2);
    ck_assert_uint_eq(u1.committed[0].index, i1);
    ck_assert_uint_eq(u1.committed[1].index, i2);
    raft_update_close(&u1);
    h_close(&h);
}
END_TEST

/* Batching: no AppendEntries carries more than max_append_bytes (unless a
 * single entry is bigger); pipelining: at most max_inflight in flight. */
START_TEST(test_batching_and_pipelining)
{
    struct h h;
    struct raft_options o;
    raft_index idx = 0;
    size_t k;
    unsigned i;
    raft_options_default(&o);
    o.election_timeout = H_ET;
    o.heartbeat_interval = H_HB;
    o.max_append_bytes = 3;
    o.max_inflight = 2;
    o.seed = 11;
    h_init_opts(&h, 3, 3, &o);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB); /* followers now in replicate state */
    for (i = 0; i < 30; i++) {
        ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    }
    ck_assert_uint_le(h_count(&h, RAFT_MSG_APPEND, 1, 2), 2);
    for (k = 0; k < h.nq; k++) {
        if (h.q[k].type == RAFT_MSG_APPEND) {
            ck_assert_uint_le(h.q[k].append.n_entries, 3);
        }
    }
    h_settle(&h);
    h_run(&h, 2 * H_HB);
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(h.nodes[i].applied, idx);
    }
    h_close(&h);
}
END_TEST

/* Lost appends in replicate state are recovered (heartbeat response frees
 * the window, the gap is rejected, the leader probes). */
START_TEST(test_lost_appends_recovered)
{
    struct h h;
    raft_index idx = 0;
    unsigned i;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
        h_drop_all(&h);
    }
    h_run(&h, 5 * H_HB);
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(raft_commit_index(h.nodes[i].r), idx);
    }
    h_close(&h);
}
END_TEST

/* Reference: §5.4 — Leader Completeness: after the leader crashes, the next
 * leader holds every committed entry, and it is never lost. */
START_TEST(test_leader_completeness)
{
    struct h h;
    raft_index idx = 0;
    raft_id l2;
    unsigned k;
    h_init(&h, 5);
    h_elect(&h, 1);
    for (k = 0; k < 5; k++) {
        ck_assert_int_eq(h_propose(&h, 1, 2, &idx), 0);
    }
    h_settle(&h);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
    h_stop(&h, 1);
    h_run(&h, 10 * H_ET);
    l2 = h_leader(&h);
    ck_assert_uint_ne(l2, 0);
    ck_assert_uint_ge(raft_commit_index(h.nodes[l2].r), idx);
    for (k = 1; k <= idx; k++) {
        ck_assert_uint_eq(raft_entry_at(h.nodes[l2].r, k)->term,
                          h.nodes[2].applied_term[k]);
    }
    /* The old leader restarts from its store and catches up. */
    h_start(&h, 1);
    h_run(&h, 5 * H_ET);
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r),
                      raft_commit_index(h.nodes[l2].r));
    h_close(&h);
}
END_TEST

/* Bad appends: beyond the log, out-of-order entries, terms above the
 * sender's, commit beyond the log, conflicts with committed entries. */
START_TEST(test_bad_appends)
{
    struct h h;
    struct raft_message m;
    struct raft_entry e[2];
    struct raft_update u;
    raft_term t;
    raft_index last, commit;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    t = raft_current_term(h.nodes[2].r);
    last = raft_last_index(h.nodes[2].r);
    commit = raft_commit_index(h.nodes[2].r);
    memset(&m, 0, sizeof m);
    memset(e, 0, sizeof e);
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = t;
    /* prev beyond the log: rejected with the follower's last + 1 as hint. */
    m.append.prev_index = last + 50;
    m.append.prev_term = t;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert_uint_eq(u.n_messages, 1);
    ck_assert(u.messages[0].append_resp.reject);
    ck_assert_uint_eq(u.messages[0].append_resp.hint_index, last + 1);
    ck_assert_uint_eq(u.messages[0].append_resp.hint_term, 0);
    raft_update_close(&u);
    /* Entries whose indexes do not follow prev: ignored. */
    m.append.prev_index = last;
    m.append.prev_term = raft_entry_at(h.nodes[2].r, last)->term;
    e[0].index = last + 2;
    e[0].term = t;
    e[0].type = RAFT_ENTRY_NOOP;
    m.append.entries = e;
    m.append.n_entries = 1;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_last_index(h.nodes[2].r), last);
    /* A term above the message's: ignored. */
    e[0].index = last + 1;
    e[0].term = t + 1;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_last_index(h.nodes[2].r), last);
    /* Bad type, missing data: ignored. */
    e[0].term = t;
    e[0].type = 99;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    e[0].type = RAFT_ENTRY_COMMAND;
    e[0].data.len = 10;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_last_index(h.nodes[2].r), last);
    /* Commit far beyond what the message proves: clamped. */
    e[0].data.len = 0;
    m.append.commit = last + 1000;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_last_index(h.nodes[2].r), last + 1);
    ck_assert_uint_eq(raft_commit_index(h.nodes[2].r), last + 1);
    h_pump(&h, 2);
    h_drop_all(&h);
    /* An entry conflicting with a committed one: ignored, nothing lost. */
    m.append.prev_index = commit - 1;
    m.append.prev_term = raft_entry_at(h.nodes[2].r, commit - 1)->term;
    e[0].index = commit;
    e[0].term = t + 1;
    e[0].type = RAFT_ENTRY_NOOP;
    m.term = t + 1;
    m.append.commit = 0;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    ck_assert_uint_eq(raft_entry_at(h.nodes[2].r, commit)->term, t);
    ck_assert_uint_eq(raft_last_index(h.nodes[2].r), last + 1);
    /* From the start of the log, of term 1 all along: the part up to
     * commit is skipped, the rest would go below our terms: ignored. */
    {
        struct raft_entry many[8];
        size_t k;
        memset(many, 0, sizeof many);
        for (k = 0; k < 8; k++) {
            many[k].index = k + 1;
            many[k].term = 1;
            many[k].type = RAFT_ENTRY_NOOP;
        }
        m.append.prev_index = 0;
        m.append.prev_term = 0;
        m.append.entries = many;
        m.append.n_entries = 8;
        ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
        ck_assert_uint_eq(raft_last_index(h.nodes[2].r), last + 1);
        ck_assert_uint_eq(raft_entry_at(h.nodes[2].r, last + 1)->term, t);
    }
    h_close(&h);
}
END_TEST

/* Duplicated and reordered responses do not move the leader backwards. */
START_TEST(test_duplicate_responses)
{
    struct h h;
    struct raft_message m;
    struct raft_progress_info pi[4];
    raft_index idx;
    size_t n, i;
    h_init(&h, 3);
    h_elect(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND_RESP;
    m.from = 2;
    m.to = 1;
    m.term = raft_current_term(h.nodes[1].r);
    m.append_resp.index = 1; /* old */
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    m.append_resp.reject = true; /* stale rejection */
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    m.append_resp.reject = false;
    m.append_resp.index = idx + 100; /* claims entries never sent */
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    n = raft_progress(h.nodes[1].r, pi, 4);
    ck_assert_uint_eq(n, 2);
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(pi[i].match, idx);
        ck_assert_uint_eq(pi[i].state, 2);
    }
    ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
    h_close(&h);
}
END_TEST

/* lazy_commit: once a leader-local write commits, no empty AppendEntries
 * goes out (without it, one to each follower) and followers apply with the
 * next heartbeat; a follower that waits on the entry (raft_commit_wanted)
 * or was just answered a read index is told at once. */
START_TEST(test_lazy_commit)
{
    for (int lazy = 0; lazy <= 1; lazy++) {
        struct h h;
        struct raft_options o;
        raft_index idx;
        size_t reads;
        h_default_opts(&o);
        o.lazy_commit = lazy;
        h_init_opts(&h, 3, 3, &o);
        h_elect(&h, 1);
        h_run(&h, 2 * H_HB);
        /* A leader-local write. */
        ck_assert_int_eq(h_propose(&h, 1, 7, &idx), 0);
        h_deliver(&h); /* the appends; the followers' acks are queued */
        h_deliver(&h); /* the acks: the leader commits */
        ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
        ck_assert_uint_eq(h_count(&h, RAFT_MSG_APPEND, 1, 0), lazy ? 0 : 2);
        h_settle(&h);
        if (lazy) {
            ck_assert_uint_lt(h.nodes[2].applied, idx);
            ck_assert_uint_lt(h.nodes[3].applied, idx);
            h_run(&h, H_HB + 1); /* a heartbeat carries it */
        }
        ck_assert_uint_ge(h.nodes[2].applied, idx);
        ck_assert_uint_ge(h.nodes[3].applied, idx);
        /* An entry follower 2 waits on (it forwarded it). */
        ck_assert_int_eq(h_propose(&h, 1, 8, &idx), 0);
        raft_commit_wanted(h.nodes[1].r, 2, idx);
        h_deliver(&h);
        h_deliver(&h);
        ck_assert_uint_eq(raft_commit_index(h.nodes[1].r), idx);
        ck_assert_uint_eq(h_count(&h, RAFT_MSG_APPEND, 1, 2), 1);
        ck_assert_uint_eq(h_count(&h, RAFT_MSG_APPEND, 1, 3), lazy ? 0 : 1);
        h_settle(&h);
        ck_assert_uint_ge(h.nodes[2].applied, idx);
        /* A read index on follower 3, which has not applied the last write
         * (lazy): the answer brings the commit with it. */
        ck_assert_int_eq(h_propose(&h, 1, 9, &idx), 0);
        h_settle(&h);
        if (lazy) {
            ck_assert_uint_lt(h.nodes[3].applied, idx);
        }
        reads = h.nodes[3].n_reads;
        ck_assert_int_eq(raft_read_index(h.nodes[3].r, h.now, 77), 0);
        h_pump(&h, 3);
        h_settle(&h);
        ck_assert_uint_eq(h.nodes[3].n_reads, reads + 1);
        ck_assert_int_eq(h.nodes[3].reads[reads].status, 0);
        ck_assert_uint_ge(h.nodes[3].reads[reads].index, idx);
        ck_assert_uint_ge(h.nodes[3].applied, idx);
        h_close(&h);
    }
}
END_TEST

static Suite *replication_suite(void)
{
    Suite *s = suite_create("raft_replication");
    TCase *tc = tcase_create("replicate");
    tcase_add_test(tc, test_replicate_basic);
    tcase_add_test(tc, test_batching_and_pipelining);
    tcase_add_test(tc, test_lost_appends_recovered);
    tcase_add_test(tc, test_duplicate_responses);
    suite_add_tcase(s, tc);
    tc = tcase_create("repair");
    tcase_add_loop_test(tc, test_fig7_repair, 0, 6);
    tcase_add_test(tc, test_fast_backtracking);
    suite_add_tcase(s, tc);
    tc = tcase_create("commit");
    tcase_add_test(tc, test_fig8_commit_rule);
    tcase_add_test(tc, test_leader_counts_itself_when_durable);
    tcase_add_test(tc, test_persisted_covers_batches);
    tcase_add_test(tc, test_lazy_commit);
    tcase_add_test(tc, test_leader_completeness);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad_input");
    tcase_add_test(tc, test_bad_appends);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_run_suite(replication_suite());
}
