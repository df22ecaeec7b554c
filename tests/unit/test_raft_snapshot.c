/* Unit tests of snapshots: log compaction and chunked InstallSnapshot
 * (paper §7), restarts of a transfer, stale and duplicate chunks. */
#include "test_raft_harness.h"

#define SNAP_SIZE 50
#define CHUNK 7

/* Node id's application snapshots its state at its applied index. */
static raft_index h_snapshot(struct h *h, raft_id id)
{
    struct h_node *nd = &h->nodes[id];
    raft_index idx = nd->applied;
    free(nd->snap_data);
    nd->snap_data = calloc(1, SNAP_SIZE);
    memcpy(nd->snap_data, &nd->applied_sum, sizeof nd->applied_sum);
    memset(nd->snap_data + 8, (int)idx, SNAP_SIZE - 8);
    nd->snap_size = SNAP_SIZE;
    nd->snap_index = idx;
    nd->snap_term = raft_entry_at(nd->r, idx)->term;
    nd->snap_config = *raft_configuration(nd->r);
    ck_assert_int_eq(raft_snapshot_taken(nd->r, idx, SNAP_SIZE), 0);
    h_pump(h, id);
    return idx;
}

static void init_small_chunks(struct h *h)
{
    struct raft_options o;
    raft_options_default(&o);
    o.election_timeout = H_ET;
    o.heartbeat_interval = H_HB;
    o.snapshot_chunk_bytes = CHUNK;
    o.snapshot_trailing = 0;
    o.seed = 9;
    h_init_opts(h, 3, 3, &o);
    h_elect(h, 1);
    h_run(h, 2 * H_HB);
}

/* Paper §7: the application snapshots, the core drops the covered entries
 * (keeping snapshot_trailing of them) and tells the driver. */
START_TEST(test_compaction)
{
    struct h h;
    struct raft_options o;
    raft_index idx, snap;
    unsigned k;
    raft_options_default(&o);
    o.election_timeout = H_ET;
    o.heartbeat_interval = H_HB;
    o.snapshot_trailing = 3;
    o.seed = 1;
    h_init_opts(&h, 3, 3, &o);
    h_elect(&h, 1);
    for (k = 0; k < 10; k++) {
        ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    }
    h_settle(&h);
    /* Not beyond what was applied; an older one is a no-op. */
    ck_assert_int_eq(raft_snapshot_taken(h.nodes[1].r, idx + 1, 10),
                     RAFT_ERR_INVALID);
    ck_assert_int_eq(raft_snapshot_taken(h.nodes[1].r, 0, 10),
                     RAFT_ERR_INVALID);
    snap = h_snapshot(&h, 1);
    ck_assert_uint_eq(snap, idx);
    ck_assert_uint_eq(raft_first_index(h.nodes[1].r), idx - 3 + 1);
    ck_assert_ptr_null(raft_entry_at(h.nodes[1].r, idx - 3));
    ck_assert_ptr_nonnull(raft_entry_at(h.nodes[1].r, idx - 2));
    ck_assert_uint_eq(h.nodes[1].log_base, idx - 3);
    ck_assert_int_eq(raft_snapshot_taken(h.nodes[1].r, 2, 10), 0);
    /* Replication goes on after compaction, and a restart loads the
     * snapshot plus the entries after it. */
    ck_assert_int_eq(h_propose(&h, 1, 1, &idx), 0);
    h_settle(&h);
    h_stop(&h, 1);
    h_start(&h, 1);
    ck_assert_uint_eq(raft_last_index(h.nodes[1].r), idx);
    ck_assert_uint_eq(raft_first_index(h.nodes[1].r), snap + 1);
    h_run(&h, 10 * H_ET);
    ck_assert_uint_ne(h_leader(&h), 0);
    h_close(&h);
}
END_TEST

/* Paper §7: a follower whose next entry was compacted away gets the
 * snapshot in chunks of snapshot_chunk_bytes, installs it, then catches up
 * from the log. */
START_TEST(test_chunked_install)
{
    struct h h;
    raft_index idx, snap;
    unsigned k;
    init_small_chunks(&h);
    h_isolate(&h, 3, true);
    for (k = 0; k < 20; k++) {
        ck_assert_int_eq(h_propose(&h, 1, 2, &idx), 0);
    }
    h_settle(&h);
    snap = h_snapshot(&h, 1);
    ck_assert_int_eq(h_propose(&h, 1, 2, &idx), 0);
    h_settle(&h);
    h_isolate(&h, 3, false);
    h.delivered[RAFT_MSG_SNAPSHOT] = 0;
    h_run(&h, 5 * H_HB);
    ck_assert_uint_eq(h.delivered[RAFT_MSG_SNAPSHOT],
                      (SNAP_SIZE + CHUNK - 1) / CHUNK);
    ck_assert_uint_eq(h.nodes[3].n_installs, 1);
    ck_assert_uint_eq(h.nodes[3].snap_index, snap);
    ck_assert_mem_eq(h.nodes[3].snap_data, h.nodes[1].snap_data, SNAP_SIZE);
    ck_assert_uint_eq(raft_last_index(h.nodes[3].r), idx);
    ck_assert_uint_eq(h.nodes[3].applied, idx);
    ck_assert_uint_eq(h.nodes[3].applied_sum, h.nodes[1].applied_sum);
    ck_assert_uint_eq(raft_first_index(h.nodes[3].r), snap + 1);
    /* The follower restarts from the installed snapshot. */
    h_stop(&h, 3);
    h_start(&h, 3);
    ck_assert_uint_eq(raft_last_index(h.nodes[3].r), idx);
    h_close(&h);
}
END_TEST

/* A follower that restarts in the middle of a transfer forgets it; the
 * leader's next chunk is refused and the transfer restarts from 0. A lost
 * chunk is resent after an election timeout. */
START_TEST(test_install_restart)
{
    struct h h;
    raft_index idx;
    unsigned k;
    init_small_chunks(&h);
    h_isolate(&h, 3, true);
    for (k = 0; k < 20; k++) {
        ck_assert_int_eq(h_propose(&h, 1, 2, &idx), 0);
    }
    h_settle(&h);
    h_snapshot(&h, 1);
    h_isolate(&h, 3, false);
    /* Run until a couple of chunks went through, then restart 3. */
    h.delivered[RAFT_MSG_SNAPSHOT] = 0;
    while (h.delivered[RAFT_MSG_SNAPSHOT] < 3) {
        h.now++;
        raft_tick(h.nodes[1].r, h.now);
        h_pump(&h, 1);
        h_deliver(&h);
    }
    h_stop(&h, 3);
    h_start(&h, 3);
    /* And lose one chunk on the way. */
    h_drop_all(&h);
    h_run(&h, 5 * H_ET);
    ck_assert_uint_eq(h.nodes[3].n_installs, 1);
    ck_assert_uint_eq(h.nodes[3].applied, idx);
    ck_assert_uint_eq(h.nodes[3].applied_sum, h.nodes[1].applied_sum);
    h_close(&h);
}
END_TEST

/* The leader pipelines chunks; an acknowledgement from an earlier round
 * that puts it ahead of the follower is corrected by the follower's gap
 * refusal (it rewinds), and the transfer completes. */
START_TEST(test_install_rewind)
{
    struct h h;
    struct raft_message m;
    raft_index idx, snap;
    unsigned k;
    init_small_chunks(&h);
    h_isolate(&h, 3, true);
    for (k = 0; k < 20; k++) {
        ck_assert_int_eq(h_propose(&h, 1, 2, &idx), 0);
    }
    h_settle(&h);
    snap = h_snapshot(&h, 1);
    h_isolate(&h, 3, false);
    /* A heartbeat round trip makes the leader probe, then snapshot. */
    while (h_count(&h, RAFT_MSG_SNAPSHOT, 1, 3) == 0) {
        h.now++;
        raft_tick(h.nodes[1].r, h.now);
        h_pump(&h, 1);
        h_deliver(&h);
    }
    ck_assert_uint_gt(h_count(&h, RAFT_MSG_SNAPSHOT, 1, 3), 1); /* window */
    /* Only the first chunk of the window arrives; its ack is lost. */
    for (k = 0; k < h.nq; k++) {
        if (h.q[k].type == RAFT_MSG_SNAPSHOT && h.q[k].snapshot.offset > 0) {
            h.q[k].to = 99; /* nowhere */
        }
    }
    h_deliver(&h);
    h_drop_all(&h);
    ck_assert_uint_eq(h.nodes[3].rx_size, SNAP_SIZE);
    /* A stale ack claims 3 chunks arrived. */
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_SNAPSHOT_RESP;
    m.from = 3;
    m.to = 1;
    m.term = raft_current_term(h.nodes[1].r);
    m.snapshot_resp.index = snap;
    m.snapshot_resp.offset = 3 * CHUNK;
    ck_assert_int_eq(raft_step(h.nodes[1].r, h.now, &m), 0);
    h_pump(&h, 1);
    h_run(&h, 5 * H_ET);
    ck_assert_uint_eq(h.nodes[3].n_installs, 1);
    ck_assert_mem_eq(h.nodes[3].snap_data, h.nodes[1].snap_data, SNAP_SIZE);
    ck_assert_uint_eq(h.nodes[3].applied, idx);
    h_close(&h);
}
END_TEST

/* Chunks at wrong offsets, duplicates, bogus sizes, and a snapshot the
 * follower already has. */
START_TEST(test_bad_chunks)
{
    struct h h;
    struct raft_message m;
    struct raft_update u;
    uint8_t data[8] = {0};
    h_init(&h, 3);
    h_elect(&h, 1);
    h_run(&h, 2 * H_HB);
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 1;
    m.to = 2;
    m.term = raft_current_term(h.nodes[2].r);
    m.snapshot.index = 100;
    m.snapshot.snap_term = m.term;
    m.snapshot.config = *raft_configuration(h.nodes[2].r);
    m.snapshot.size = 16;
    m.snapshot.data.base = data;
    m.snapshot.data.len = 8;
    /* Offset 8 with no transfer started: refused (restart from 0). */
    m.snapshot.offset = 8;
    m.snapshot.last = true;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert(!u.has_snapshot_chunk);
    ck_assert_uint_eq(u.n_messages, 1);
    ck_assert(u.messages[0].snapshot_resp.reject);
    raft_update_close(&u);
    /* First chunk: written, acknowledged after persistence. */
    m.snapshot.offset = 0;
    m.snapshot.last = false;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert(u.has_snapshot_chunk);
    ck_assert(!u.has_snapshot_install);
    ck_assert_uint_eq(u.n_messages_after_persist, 1);
    ck_assert_uint_eq(u.messages_after_persist[0].snapshot_resp.offset, 8);
    raft_update_close(&u);
    /* The same chunk again: nothing written, the same answer. */
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert(!u.has_snapshot_chunk);
    ck_assert_uint_eq(u.n_messages + u.n_messages_after_persist, 1);
    raft_update_close(&u);
    /* Inconsistent: last flag that does not end it, data beyond size. */
    m.snapshot.offset = 8;
    m.snapshot.last = false;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    m.snapshot.data.len = 9;
    m.snapshot.last = true;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert(!u.has_snapshot_chunk);
    ck_assert_uint_eq(u.n_messages + u.n_messages_after_persist, 0);
    raft_update_close(&u);
    /* The last chunk: written and installed in one update, chunk first. */
    m.snapshot.data.len = 8;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert(u.has_snapshot_chunk);
    ck_assert(u.has_snapshot_install);
    ck_assert_uint_eq(u.snapshot_install.index, 100);
    ck_assert_uint_eq(u.commit, 100);
    ck_assert_uint_eq(raft_last_index(h.nodes[2].r), 100);
    raft_update_close(&u);
    /* A snapshot covering what is committed already: answered as done. */
    m.snapshot.index = 50;
    m.snapshot.offset = 0;
    m.snapshot.last = false;
    ck_assert_int_eq(raft_step(h.nodes[2].r, h.now, &m), 0);
    raft_ready(h.nodes[2].r, &u);
    ck_assert(!u.has_snapshot_chunk);
    ck_assert_uint_eq(u.n_messages_after_persist, 1);
    ck_assert_uint_eq(u.messages_after_persist[0].snapshot_resp.offset, 16);
    raft_update_close(&u);
    h_close(&h);
}
END_TEST

static Suite *snapshot_suite(void)
{
    Suite *s = suite_create("raft_snapshot");
    TCase *tc = tcase_create("compaction");
    tcase_add_test(tc, test_compaction);
    suite_add_tcase(s, tc);
    tc = tcase_create("install");
    tcase_add_test(tc, test_chunked_install);
    tcase_add_test(tc, test_install_restart);
    tcase_add_test(tc, test_install_rewind);
    tcase_add_test(tc, test_bad_chunks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_run_suite(snapshot_suite());
}
