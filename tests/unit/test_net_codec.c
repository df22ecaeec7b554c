/* Unit tests of net/'s framing and wire codecs (peer and client). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "frame.h"
#include "net.h"
#include "peer.pb-c.h"

#define FMAX (1u << 20)

/* A deterministic PRNG for garbage and splits (no rand()). */
static uint64_t prng_state = 0x9e3779b97f4a7c15ull;
static uint64_t prng(void)
{
    uint64_t z = (prng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t frame_len(const struct net__wframe *f)
{
    return (uint32_t)f->data[0] << 24 | (uint32_t)f->data[1] << 16 |
           (uint32_t)f->data[2] << 8 | f->data[3];
}

/* Encodes m, checks the header, decodes it back into *e. */
static void roundtrip(const struct raft_message *m, struct net__envelope *e)
{
    struct net__wframe *f = NULL;
    int rv = net__encode_raft(m, FMAX, &f);

    ck_assert_int_eq(rv, 0);
    ck_assert_uint_eq(frame_len(f) + NET_FRAME_HDR, f->len);
    rv = net__decode_envelope(f->data + NET_FRAME_HDR, f->len - NET_FRAME_HDR,
                              e);
    ck_assert_int_eq(rv, 0);
    ck_assert_int_eq(e->kind, NET__ENV_RAFT);
    ck_assert_uint_eq(e->raft.type, m->type);
    ck_assert_uint_eq(e->raft.from, m->from);
    ck_assert_uint_eq(e->raft.to, m->to);
    ck_assert_uint_eq(e->raft.term, m->term);
    free(f);
}

static struct raft_message base_msg(uint8_t type)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.from = 1;
    m.to = 2;
    m.term = 7;
    return m;
}

START_TEST(test_append_with_entries)
{
    struct raft_message m = base_msg(RAFT_MSG_APPEND);
    struct raft_entry es[3];
    char big[3000];
    struct net__envelope e;
    size_t i;

    memset(big, 'x', sizeof big);
    memset(es, 0, sizeof es);
    es[0] = (struct raft_entry){6, 11, RAFT_ENTRY_NOOP, {NULL, 0}};
    es[1] = (struct raft_entry){7, 12, RAFT_ENTRY_COMMAND, {"hello", 5}};
    es[2] = (struct raft_entry){7, 13, RAFT_ENTRY_CONFIG, {big, sizeof big}};
    m.append.prev_index = 10;
    m.append.prev_term = 5;
    m.append.commit = 9;
    m.append.entries = es;
    m.append.n_entries = 3;
    m.append.seq = 77;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.append.seq, 77);
    ck_assert_uint_eq(e.raft.append.prev_index, 10);
    ck_assert_uint_eq(e.raft.append.prev_term, 5);
    ck_assert_uint_eq(e.raft.append.commit, 9);
    ck_assert_uint_eq(e.raft.append.n_entries, 3);
    for (i = 0; i < 3; i++) {
        const struct raft_entry *d = &e.raft.append.entries[i];
        ck_assert_uint_eq(d->term, es[i].term);
        ck_assert_uint_eq(d->index, es[i].index);
        ck_assert_uint_eq(d->type, es[i].type);
        ck_assert_uint_eq(d->data.len, es[i].data.len);
        if (d->data.len > 0)
            ck_assert_mem_eq(d->data.base, es[i].data.base, d->data.len);
    }
    net__envelope_close(&e);

    /* An empty append (a probe) decodes to no entries. */
    m.append.n_entries = 0;
    m.append.entries = NULL;
    m.append.seq = 0; /* none (an older sender): 0 again */
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.append.seq, 0);
    ck_assert_uint_eq(e.raft.append.n_entries, 0);
    ck_assert_ptr_null(e.raft.append.entries);
    net__envelope_close(&e);
}
END_TEST

START_TEST(test_small_messages)
{
    struct raft_message m;
    struct net__envelope e;

    m = base_msg(RAFT_MSG_APPEND_RESP);
    m.append_resp.reject = true;
    m.append_resp.index = 44;
    m.append_resp.hint_index = 40;
    m.append_resp.hint_term = 3;
    m.append_resp.seq = 12345;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.append_resp.seq, 12345);
    ck_assert(e.raft.append_resp.reject);
    ck_assert_uint_eq(e.raft.append_resp.index, 44);
    ck_assert_uint_eq(e.raft.append_resp.hint_index, 40);
    ck_assert_uint_eq(e.raft.append_resp.hint_term, 3);

    m = base_msg(RAFT_MSG_VOTE);
    m.vote.last_index = 100;
    m.vote.last_term = 6;
    m.vote.pre_vote = true;
    m.vote.transfer = true;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.vote.last_index, 100);
    ck_assert_uint_eq(e.raft.vote.last_term, 6);
    ck_assert(e.raft.vote.pre_vote && e.raft.vote.transfer);

    m = base_msg(RAFT_MSG_VOTE_RESP);
    m.vote_resp.granted = true;
    m.vote_resp.pre_vote = false;
    roundtrip(&m, &e);
    ck_assert(e.raft.vote_resp.granted && !e.raft.vote_resp.pre_vote);

    m = base_msg(RAFT_MSG_HEARTBEAT);
    m.heartbeat.commit = 77;
    m.heartbeat.seq = 1234567890123ull;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.heartbeat.commit, 77);
    ck_assert_uint_eq(e.raft.heartbeat.seq, 1234567890123ull);

    m = base_msg(RAFT_MSG_HEARTBEAT_RESP);
    m.heartbeat_resp.seq = 99;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.heartbeat_resp.seq, 99);

    m = base_msg(RAFT_MSG_SNAPSHOT_RESP);
    m.snapshot_resp.index = 500;
    m.snapshot_resp.offset = 65536;
    m.snapshot_resp.reject = true;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.snapshot_resp.index, 500);
    ck_assert_uint_eq(e.raft.snapshot_resp.offset, 65536);
    ck_assert(e.raft.snapshot_resp.reject);

    m = base_msg(RAFT_MSG_TIMEOUT_NOW);
    roundtrip(&m, &e);

    m = base_msg(RAFT_MSG_READ_INDEX);
    m.read_index.ctx = 0xfeedull;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.read_index.ctx, 0xfeedull);

    m = base_msg(RAFT_MSG_READ_INDEX_RESP);
    m.read_index_resp.ctx = 5;
    m.read_index_resp.index = 6;
    m.read_index_resp.reject = true;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.read_index_resp.ctx, 5);
    ck_assert_uint_eq(e.raft.read_index_resp.index, 6);
    ck_assert(e.raft.read_index_resp.reject);
}
END_TEST

START_TEST(test_snapshot_chunk)
{
    struct raft_message m = base_msg(RAFT_MSG_SNAPSHOT);
    struct net__envelope e;
    char chunk[1000];
    unsigned i;

    for (i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)i;
    m.snapshot.index = 300;
    m.snapshot.snap_term = 4;
    m.snapshot.config.n = 3;
    for (i = 0; i < 3; i++) {
        m.snapshot.config.servers[i].id = i + 1;
        m.snapshot.config.servers[i].role = i == 2 ? RAFT_LEARNER : RAFT_VOTER;
        snprintf(m.snapshot.config.servers[i].addr, RAFT_ADDR_MAX,
                 "127.0.0.1:%u", 7000 + i);
    }
    m.snapshot.size = 5000;
    m.snapshot.offset = 4000;
    m.snapshot.chunk_len = sizeof chunk;
    m.snapshot.data.base = chunk;
    m.snapshot.data.len = sizeof chunk;
    m.snapshot.last = true;
    roundtrip(&m, &e);
    ck_assert_uint_eq(e.raft.snapshot.index, 300);
    ck_assert_uint_eq(e.raft.snapshot.snap_term, 4);
    ck_assert_uint_eq(e.raft.snapshot.size, 5000);
    ck_assert_uint_eq(e.raft.snapshot.offset, 4000);
    ck_assert_uint_eq(e.raft.snapshot.chunk_len, sizeof chunk);
    ck_assert_uint_eq(e.raft.snapshot.data.len, sizeof chunk);
    ck_assert_mem_eq(e.raft.snapshot.data.base, chunk, sizeof chunk);
    ck_assert(e.raft.snapshot.last);
    ck_assert_uint_eq(e.raft.snapshot.config.n, 3);
    for (i = 0; i < 3; i++) {
        ck_assert_uint_eq(e.raft.snapshot.config.servers[i].id, i + 1);
        ck_assert_uint_eq(e.raft.snapshot.config.servers[i].role,
                          m.snapshot.config.servers[i].role);
        ck_assert_str_eq(e.raft.snapshot.config.servers[i].addr,
                         m.snapshot.config.servers[i].addr);
    }
    net__envelope_close(&e);
}
END_TEST

START_TEST(test_hello_and_forwards)
{
    struct net__hello h = {NET_PROTOCOL_VERSION, 0xc1u, 3, 4};
    struct net_forward f;
    struct net_forward_result r = {42, RAFT_ERR_NOT_LEADER, 9, 2};
    struct net__wframe *w;
    struct net__envelope e;

    ck_assert_int_eq(net__encode_hello(&h, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e), 0);
    ck_assert_int_eq(e.kind, NET__ENV_HELLO);
    ck_assert_uint_eq(e.hello.version, NET_PROTOCOL_VERSION);
    ck_assert_uint_eq(e.hello.cluster_id, 0xc1u);
    ck_assert_uint_eq(e.hello.from, 3);
    ck_assert_uint_eq(e.hello.to, 4);
    free(w);

    ck_assert_int_eq(net__encode_hello_reply(false, "wrong cluster", FMAX, &w),
                     0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e), 0);
    ck_assert_int_eq(e.kind, NET__ENV_HELLO_REPLY);
    ck_assert(!e.hello_reply.accepted);
    ck_assert_str_eq(e.hello_reply.reason, "wrong cluster");
    free(w);

    memset(&f, 0, sizeof f);
    f.req_id = 17;
    f.op = NET_FORWARD_PROPOSE;
    f.command.base = "put a b";
    f.command.len = 7;
    ck_assert_int_eq(net__encode_forward(&f, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e), 0);
    ck_assert_int_eq(e.kind, NET__ENV_FORWARD);
    ck_assert_uint_eq(e.forward.req_id, 17);
    ck_assert_uint_eq(e.forward.op, NET_FORWARD_PROPOSE);
    ck_assert_uint_eq(e.forward.command.len, 7);
    ck_assert_mem_eq(e.forward.command.base, "put a b", 7);
    net__envelope_close(&e);
    free(w);

    memset(&f, 0, sizeof f);
    f.req_id = 18;
    f.op = NET_FORWARD_CHANGE;
    f.change_op = RAFT_ADD_LEARNER;
    f.id = 5;
    strcpy(f.addr, "[::1]:7005");
    ck_assert_int_eq(net__encode_forward(&f, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e), 0);
    ck_assert_uint_eq(e.forward.op, NET_FORWARD_CHANGE);
    ck_assert_uint_eq(e.forward.change_op, RAFT_ADD_LEARNER);
    ck_assert_uint_eq(e.forward.id, 5);
    ck_assert_str_eq(e.forward.addr, "[::1]:7005");
    net__envelope_close(&e);
    free(w);

    memset(&f, 0, sizeof f);
    f.req_id = 19;
    f.op = NET_FORWARD_TRANSFER;
    f.id = 2;
    ck_assert_int_eq(net__encode_forward(&f, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e), 0);
    ck_assert_uint_eq(e.forward.op, NET_FORWARD_TRANSFER);
    ck_assert_uint_eq(e.forward.id, 2);
    free(w);

    ck_assert_int_eq(net__encode_forward_result(&r, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e), 0);
    ck_assert_int_eq(e.kind, NET__ENV_FORWARD_RESULT);
    ck_assert_uint_eq(e.result.req_id, 42);
    ck_assert_int_eq(e.result.status, RAFT_ERR_NOT_LEADER);
    ck_assert_uint_eq(e.result.index, 9);
    ck_assert_uint_eq(e.result.term, 2);
    free(w);
}
END_TEST

/* Encodes a raft message, expecting the decoder to refuse it. */
static void expect_refused(const struct raft_message *m)
{
    struct net__wframe *w = NULL;
    struct net__envelope e;

    ck_assert_int_eq(net__encode_raft(m, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e),
                     NET_ERR_MALFORMED);
    free(w);
}

START_TEST(test_invalid_messages)
{
    struct raft_message m = base_msg(RAFT_MSG_APPEND);
    struct raft_entry es[2] = {{7, 11, RAFT_ENTRY_COMMAND, {"a", 1}},
                               {7, 13, RAFT_ENTRY_COMMAND, {"b", 1}}};
    struct net__wframe *w;
    struct net__envelope e;

    m.append.prev_index = 10;
    m.append.prev_term = 7;
    m.append.entries = es;
    m.append.n_entries = 2;
    expect_refused(&m); /* a gap: 11 then 13 */
    es[1].index = 12;
    es[1].type = 9;
    expect_refused(&m); /* bad entry type */
    es[1].type = RAFT_ENTRY_COMMAND;
    es[1].term = 6;
    expect_refused(&m); /* terms decrease */
    es[1].term = 8;
    expect_refused(&m); /* entry newer than the sender's term */
    es[1].term = 7;
    es[0].index = 12;
    expect_refused(&m); /* does not follow prev_index */

    m = base_msg(RAFT_MSG_VOTE);
    m.from = 0;
    expect_refused(&m);

    m = base_msg(RAFT_MSG_SNAPSHOT);
    m.snapshot.index = 5;
    m.snapshot.snap_term = 1;
    m.snapshot.size = 10;
    m.snapshot.offset = 8;
    m.snapshot.data.base = "abcd";
    m.snapshot.data.len = 4;
    expect_refused(&m); /* chunk beyond the snapshot's size */
    m.snapshot.offset = 0;
    m.snapshot.config.n = 2;
    m.snapshot.config.servers[0].id = 1;
    m.snapshot.config.servers[0].role = RAFT_VOTER;
    m.snapshot.config.servers[1].id = 1;
    m.snapshot.config.servers[1].role = RAFT_VOTER;
    expect_refused(&m); /* duplicate server */
    m.snapshot.config.servers[1].id = 2;
    m.snapshot.config.servers[1].role = 7;
    expect_refused(&m); /* bad role */

    /* An unknown message type is refused by the encoder. */
    m = base_msg(RAFT_MSG_TYPE_MAX + 1);
    ck_assert_int_eq(net__encode_raft(&m, FMAX, &w), NET_ERR_MALFORMED);

    /* Too big for the frame limit. */
    m = base_msg(RAFT_MSG_APPEND);
    m.append.prev_index = 10;
    m.append.prev_term = 7;
    m.append.entries = es;
    m.append.n_entries = 2;
    es[0] = (struct raft_entry){7, 11, RAFT_ENTRY_COMMAND, {"a", 1}};
    es[1] = (struct raft_entry){7, 12, RAFT_ENTRY_COMMAND, {"b", 1}};
    ck_assert_int_eq(net__encode_raft(&m, 8, &w), NET_ERR_FRAME_TOO_BIG);
    ck_assert_int_eq(net__encode_raft(&m, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_envelope(w->data + 4, w->len - 4, &e), 0);
    net__envelope_close(&e);
    free(w);
}
END_TEST

/* Hand-built protobufs that our encoder would never produce. */
START_TEST(test_invalid_wire)
{
    Raftfs__Peer__Envelope env = RAFTFS__PEER__ENVELOPE__INIT;
    Raftfs__Peer__RaftMessage rm = RAFTFS__PEER__RAFT_MESSAGE__INIT;
    Raftfs__Peer__Snapshot s = RAFTFS__PEER__SNAPSHOT__INIT;
    Raftfs__Peer__Server sv[RAFT_MAX_SERVERS + 1];
    Raftfs__Peer__Server *sp[RAFT_MAX_SERVERS + 1];
    char longaddr[RAFT_ADDR_MAX + 10];
    uint8_t buf[4096];
    struct net__envelope e;
    size_t i, n;

    /* An envelope with nothing set. */
    n = raftfs__peer__envelope__pack(&env, buf);
    ck_assert_int_eq(net__decode_envelope(buf, n, &e), NET_ERR_MALFORMED);
    /* A raft message without a body (an unknown type). */
    rm.from = 1;
    rm.to = 2;
    env.msg_case = RAFTFS__PEER__ENVELOPE__MSG_RAFT;
    env.raft = &rm;
    n = raftfs__peer__envelope__pack(&env, buf);
    ck_assert_int_eq(net__decode_envelope(buf, n, &e), NET_ERR_MALFORMED);
    /* A configuration with more than RAFT_MAX_SERVERS servers. */
    for (i = 0; i <= RAFT_MAX_SERVERS; i++) {
        raftfs__peer__server__init(&sv[i]);
        sv[i].id = i + 1;
        sv[i].role = RAFT_VOTER;
        sp[i] = &sv[i];
    }
    s.index = 3;
    s.snap_term = 1;
    s.servers = sp;
    s.n_servers = RAFT_MAX_SERVERS + 1;
    rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_SNAPSHOT;
    rm.snapshot = &s;
    n = raftfs__peer__envelope__pack(&env, buf);
    ck_assert_int_eq(net__decode_envelope(buf, n, &e), NET_ERR_MALFORMED);
    /* An address too long for struct raft_server. */
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    sv[0].addr = longaddr;
    s.n_servers = 1;
    n = raftfs__peer__envelope__pack(&env, buf);
    ck_assert_int_eq(net__decode_envelope(buf, n, &e), NET_ERR_MALFORMED);
    sv[0].addr = "127.0.0.1:1";
    n = raftfs__peer__envelope__pack(&env, buf);
    ck_assert_int_eq(net__decode_envelope(buf, n, &e), 0);
    net__envelope_close(&e);
}
END_TEST

START_TEST(test_garbage_and_truncated)
{
    struct raft_message m = base_msg(RAFT_MSG_APPEND);
    struct raft_entry es[4];
    struct net__wframe *w;
    struct net__envelope e;
    uint8_t junk[512];
    size_t i, j, cut, ok = 0;

    for (i = 0; i < 4; i++)
        es[i] = (struct raft_entry){7, 11 + i, RAFT_ENTRY_COMMAND,
                                    {"payload", 7}};
    m.append.prev_index = 10;
    m.append.prev_term = 7;
    m.append.entries = es;
    m.append.n_entries = 4;
    ck_assert_int_eq(net__encode_raft(&m, FMAX, &w), 0);
    /* Every strict prefix is refused (or, rarely, still valid) and never
     * crashes or leaks. */
    for (cut = 0; cut < w->len - 4; cut++) {
        int rv = net__decode_envelope(w->data + 4, cut, &e);
        ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
        if (rv == 0)
            net__envelope_close(&e);
    }
    /* Bit flips of a valid encoding. */
    for (i = 0; i < 2000; i++) {
        uint8_t copy[256];
        size_t len = w->len - 4;
        ck_assert_uint_le(len, sizeof copy);
        memcpy(copy, w->data + 4, len);
        copy[prng() % len] ^= (uint8_t)(1u << (prng() % 8));
        int rv = net__decode_envelope(copy, len, &e);
        ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
        if (rv == 0) {
            ok++;
            net__envelope_close(&e);
        }
    }
    free(w);
    /* Pure garbage. */
    for (i = 0; i < 5000; i++) {
        size_t len = prng() % sizeof junk;
        struct net_client_req q;
        struct net_client_resp r;
        for (j = 0; j < len; j++)
            junk[j] = (uint8_t)prng();
        int rv = net__decode_envelope(junk, len, &e);
        ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
        if (rv == 0)
            net__envelope_close(&e);
        rv = net__decode_client_req(junk, len, &q);
        ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
        net__client_req_close(&q);
        rv = net__decode_client_resp(junk, len, &r);
        ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
        net_client_resp_close(&r);
    }
    (void)ok;
}
END_TEST

START_TEST(test_client_requests)
{
    struct net_client_req q, d;
    struct net__wframe *w;
    int op;

    for (op = 1; op <= NET_CLIENT_OP_MAX; op++) {
        memset(&q, 0, sizeof q);
        q.id = 1000 + (uint64_t)op;
        q.op = (uint8_t)op;
        q.member_id = 4;
        strcpy(q.addr, "10.0.0.4:7000");
        q.learner = true;
        strcpy(q.path, "app/port");
        q.value.base = "8080";
        q.value.len = 4;
        ck_assert_int_eq(net__encode_client_req(&q, FMAX, &w), 0);
        ck_assert_int_eq(net__decode_client_req(w->data + 4, w->len - 4, &d),
                         0);
        free(w);
        ck_assert_uint_eq(d.id, q.id);
        ck_assert_uint_eq(d.op, op);
        switch (op) {
        case NET_CLIENT_MEMBER_ADD:
            ck_assert_uint_eq(d.member_id, 4);
            ck_assert_str_eq(d.addr, "10.0.0.4:7000");
            ck_assert(d.learner);
            break;
        case NET_CLIENT_MEMBER_PROMOTE:
        case NET_CLIENT_MEMBER_REMOVE:
        case NET_CLIENT_LEADER_TRANSFER:
            ck_assert_uint_eq(d.member_id, 4);
            break;
        case NET_CLIENT_PUT:
            ck_assert_uint_eq(d.value.len, 4);
            ck_assert_mem_eq(d.value.base, "8080", 4);
            /* fall through */
        case NET_CLIENT_GET:
        case NET_CLIENT_RM:
        case NET_CLIENT_LS:
        case NET_CLIENT_MKDIR:
            ck_assert_str_eq(d.path, "app/port");
            break;
        default:
            ck_assert_uint_eq(d.member_id, 0);
            ck_assert_str_eq(d.path, "");
        }
        net__client_req_close(&d);
    }
    q.op = 0;
    ck_assert_int_eq(net__encode_client_req(&q, FMAX, &w), NET_ERR_MALFORMED);
}
END_TEST

START_TEST(test_client_responses)
{
    struct net_client_resp *r = calloc(1, sizeof *r);
    struct net_client_resp *d = calloc(1, sizeof *d);
    struct net_client_dirent ents[3];
    struct net__wframe *w;
    size_t i;

    /* Status. */
    r->status = 0;
    strcpy(r->message, "ok");
    r->payload = NET_PAYLOAD_STATUS;
    r->info.id = 1;
    r->info.role = RAFT_LEADER;
    r->info.term = 5;
    r->info.leader = 1;
    strcpy(r->info.leader_addr, "127.0.0.1:9001");
    r->info.commit = 10;
    r->info.applied = 9;
    r->info.last_index = 11;
    r->info.n_peers = 2;
    r->info.peers[0] = (struct net_client_peer){2, 10, 11, 1, 2};
    r->info.peers[1] = (struct net_client_peer){3, 4, 5, 7, 1};
    ck_assert_int_eq(net__encode_client_resp(r, 77, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_client_resp(w->data + 4, w->len - 4, d), 0);
    free(w);
    ck_assert_uint_eq(d->id, 77);
    ck_assert_str_eq(d->message, "ok");
    ck_assert_uint_eq(d->payload, NET_PAYLOAD_STATUS);
    ck_assert_uint_eq(d->info.role, RAFT_LEADER);
    ck_assert_uint_eq(d->info.term, 5);
    ck_assert_str_eq(d->info.leader_addr, "127.0.0.1:9001");
    ck_assert_uint_eq(d->info.applied, 9);
    ck_assert_uint_eq(d->info.last_index, 11);
    ck_assert_uint_eq(d->info.n_peers, 2);
    ck_assert_uint_eq(d->info.peers[1].id, 3);
    ck_assert_uint_eq(d->info.peers[1].lag, 7);
    ck_assert_uint_eq(d->info.peers[0].state, 2);
    net_client_resp_close(d);

    /* Members. */
    memset(r, 0, sizeof *r);
    r->payload = NET_PAYLOAD_MEMBERS;
    r->n_members = 2;
    r->members[0] = (struct net_client_member){1, "h1:1", RAFT_VOTER, true};
    r->members[1] = (struct net_client_member){9, "h9:9", RAFT_LEARNER, false};
    ck_assert_int_eq(net__encode_client_resp(r, 1, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_client_resp(w->data + 4, w->len - 4, d), 0);
    free(w);
    ck_assert_uint_eq(d->n_members, 2);
    ck_assert(d->members[0].is_leader);
    ck_assert_uint_eq(d->members[1].id, 9);
    ck_assert_uint_eq(d->members[1].role, RAFT_LEARNER);
    ck_assert_str_eq(d->members[1].addr, "h9:9");
    net_client_resp_close(d);

    /* A value, and an error with a message. */
    memset(r, 0, sizeof *r);
    r->payload = NET_PAYLOAD_VALUE;
    r->value.base = "v\0x";
    r->value.len = 3;
    ck_assert_int_eq(net__encode_client_resp(r, 2, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_client_resp(w->data + 4, w->len - 4, d), 0);
    free(w);
    ck_assert_uint_eq(d->value.len, 3);
    ck_assert_mem_eq(d->value.base, "v\0x", 3);
    net_client_resp_close(d);
    memset(r, 0, sizeof *r);
    r->status = -2;
    strcpy(r->message, "no such key");
    ck_assert_int_eq(net__encode_client_resp(r, 3, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_client_resp(w->data + 4, w->len - 4, d), 0);
    free(w);
    ck_assert_int_eq(d->status, -2);
    ck_assert_str_eq(d->message, "no such key");
    ck_assert_uint_eq(d->payload, NET_PAYLOAD_NONE);
    net_client_resp_close(d);

    /* A directory. */
    memset(r, 0, sizeof *r);
    for (i = 0; i < 3; i++) {
        snprintf(ents[i].name, sizeof ents[i].name, "e%zu", i);
        ents[i].type = i == 0 ? NET_DIRENT_DIR : NET_DIRENT_FILE;
        ents[i].size = i * 100;
    }
    r->payload = NET_PAYLOAD_DIR;
    r->entries = ents;
    r->n_entries = 3;
    ck_assert_int_eq(net__encode_client_resp(r, 4, FMAX, &w), 0);
    ck_assert_int_eq(net__decode_client_resp(w->data + 4, w->len - 4, d), 0);
    free(w);
    ck_assert_uint_eq(d->payload, NET_PAYLOAD_DIR);
    ck_assert_uint_eq(d->n_entries, 3);
    for (i = 0; i < 3; i++) {
        ck_assert_str_eq(d->entries[i].name, ents[i].name);
        ck_assert_uint_eq(d->entries[i].type, ents[i].type);
        ck_assert_uint_eq(d->entries[i].size, ents[i].size);
    }
    net_client_resp_close(d);
    free(r);
    free(d);
}
END_TEST

/*
 * Framing.
 */
struct collect {
    size_t n;
    size_t lens[16];
    uint8_t bytes[16][64];
};

static int collect_cb(void *arg, const uint8_t *p, size_t len)
{
    struct collect *c = arg;
    ck_assert_uint_lt(c->n, 16);
    ck_assert_uint_le(len, 64);
    c->lens[c->n] = len;
    memcpy(c->bytes[c->n], p, len);
    c->n++;
    return 0;
}

/* Three frames: 0, 1 and 50 payload bytes. */
static size_t make_stream(uint8_t *s)
{
    size_t n = 0, i;
    net__frame_put_header(s + n, 0);
    n += 4;
    net__frame_put_header(s + n, 1);
    n += 4;
    s[n++] = 0xab;
    net__frame_put_header(s + n, 50);
    n += 4;
    for (i = 0; i < 50; i++)
        s[n++] = (uint8_t)i;
    return n;
}

static void check_stream(const struct collect *c)
{
    size_t i;
    ck_assert_uint_eq(c->n, 3);
    ck_assert_uint_eq(c->lens[0], 0);
    ck_assert_uint_eq(c->lens[1], 1);
    ck_assert_uint_eq(c->bytes[1][0], 0xab);
    ck_assert_uint_eq(c->lens[2], 50);
    for (i = 0; i < 50; i++)
        ck_assert_uint_eq(c->bytes[2][i], i);
}

START_TEST(test_frame_splits)
{
    uint8_t s[128];
    size_t len = make_stream(s), a, b, i, k;
    struct net__frame_decoder d;
    struct collect c;

    /* One byte at a time. */
    memset(&c, 0, sizeof c);
    net__frame_decoder_init(&d, 64);
    for (i = 0; i < len; i++)
        ck_assert_int_eq(net__frame_feed(&d, s + i, 1, collect_cb, &c), 0);
    ck_assert(net__frame_idle(&d));
    net__frame_decoder_close(&d);
    check_stream(&c);
    /* Every split into three pieces. */
    for (a = 0; a <= len; a++) {
        for (b = a; b <= len; b++) {
            memset(&c, 0, sizeof c);
            net__frame_decoder_init(&d, 64);
            ck_assert_int_eq(net__frame_feed(&d, s, a, collect_cb, &c), 0);
            ck_assert_int_eq(net__frame_feed(&d, s + a, b - a, collect_cb, &c),
                             0);
            ck_assert_int_eq(
                net__frame_feed(&d, s + b, len - b, collect_cb, &c), 0);
            net__frame_decoder_close(&d);
            check_stream(&c);
        }
    }
    /* Random splits. */
    for (k = 0; k < 500; k++) {
        memset(&c, 0, sizeof c);
        net__frame_decoder_init(&d, 64);
        for (i = 0; i < len;) {
            size_t n = 1 + prng() % 9;
            if (n > len - i)
                n = len - i;
            ck_assert_int_eq(net__frame_feed(&d, s + i, n, collect_cb, &c), 0);
            i += n;
        }
        net__frame_decoder_close(&d);
        check_stream(&c);
    }
    /* A truncated stream leaves a partial frame, freed by close. */
    memset(&c, 0, sizeof c);
    net__frame_decoder_init(&d, 64);
    ck_assert_int_eq(net__frame_feed(&d, s, len - 10, collect_cb, &c), 0);
    ck_assert(!net__frame_idle(&d));
    ck_assert_uint_eq(c.n, 2);
    net__frame_decoder_close(&d);
}
END_TEST

static int stop_cb(void *arg, const uint8_t *p, size_t len)
{
    (void)p;
    (void)len;
    ++*(int *)arg;
    return NET_ERR_MALFORMED;
}

START_TEST(test_frame_errors)
{
    uint8_t s[128];
    size_t len = make_stream(s);
    struct net__frame_decoder d;
    uint8_t hdr[4];
    int calls = 0;

    /* A header above the limit is refused at once, even split. */
    net__frame_put_header(hdr, 65);
    net__frame_decoder_init(&d, 64);
    ck_assert_int_eq(net__frame_feed(&d, hdr, 3, stop_cb, &calls), 0);
    ck_assert_int_eq(net__frame_feed(&d, hdr + 3, 1, stop_cb, &calls),
                     NET_ERR_FRAME_TOO_BIG);
    net__frame_decoder_close(&d);
    net__frame_put_header(hdr, 0xffffffffu);
    net__frame_decoder_init(&d, 64);
    ck_assert_int_eq(net__frame_feed(&d, hdr, 4, stop_cb, &calls),
                     NET_ERR_FRAME_TOO_BIG);
    net__frame_decoder_close(&d);
    ck_assert_int_eq(calls, 0);
    /* A callback error stops the feed at the first frame. */
    net__frame_decoder_init(&d, 64);
    ck_assert_int_eq(net__frame_feed(&d, s, len, stop_cb, &calls),
                     NET_ERR_MALFORMED);
    ck_assert_int_eq(calls, 1);
    net__frame_decoder_close(&d);
}
END_TEST

/* Bit flips and truncations of every kind of frame: never a crash or leak. */
static void mutate(const struct net__wframe *w, int which)
{
    uint8_t copy[2048];
    size_t len = w->len - 4, i;

    ck_assert_uint_le(len, sizeof copy);
    for (i = 0; i < 3000; i++) {
        struct net__envelope e;
        struct net_client_req q;
        struct net_client_resp r;
        size_t n = i % 3 == 0 ? prng() % (len + 1) : len;
        int rv;
        memcpy(copy, w->data + 4, len);
        copy[prng() % len] ^= (uint8_t)(1u << (prng() % 8));
        if (i % 5 == 0)
            copy[prng() % len] = (uint8_t)prng();
        if (which == 0) {
            rv = net__decode_envelope(copy, n, &e);
            ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
            if (rv == 0)
                net__envelope_close(&e);
        } else if (which == 1) {
            rv = net__decode_client_req(copy, n, &q);
            ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
            net__client_req_close(&q);
        } else {
            rv = net__decode_client_resp(copy, n, &r);
            ck_assert(rv == 0 || rv == NET_ERR_MALFORMED);
            net_client_resp_close(&r);
        }
    }
}

START_TEST(test_mutations)
{
    struct raft_message m = base_msg(RAFT_MSG_SNAPSHOT);
    struct net_client_req q;
    struct net_client_resp *r = calloc(1, sizeof *r);
    struct net_client_dirent ents[4];
    struct net__wframe *w;
    size_t i;

    m.snapshot.index = 9;
    m.snapshot.snap_term = 2;
    m.snapshot.size = 100;
    m.snapshot.data.base = "0123456789";
    m.snapshot.data.len = 10;
    m.snapshot.config.n = 3;
    for (i = 0; i < 3; i++) {
        m.snapshot.config.servers[i].id = i + 1;
        m.snapshot.config.servers[i].role = RAFT_VOTER;
        strcpy(m.snapshot.config.servers[i].addr, "10.1.2.3:4000");
    }
    ck_assert_int_eq(net__encode_raft(&m, FMAX, &w), 0);
    mutate(w, 0);
    free(w);

    memset(&q, 0, sizeof q);
    q.id = 5;
    q.op = NET_CLIENT_PUT;
    strcpy(q.path, "a/b/c");
    q.value.base = "value";
    q.value.len = 5;
    ck_assert_int_eq(net__encode_client_req(&q, FMAX, &w), 0);
    mutate(w, 1);
    free(w);

    r->payload = NET_PAYLOAD_DIR;
    for (i = 0; i < 4; i++) {
        snprintf(ents[i].name, sizeof ents[i].name, "entry%zu", i);
        ents[i].type = NET_DIRENT_FILE;
        ents[i].size = i;
    }
    r->entries = ents;
    r->n_entries = 4;
    strcpy(r->message, "hello");
    ck_assert_int_eq(net__encode_client_resp(r, 1, FMAX, &w), 0);
    mutate(w, 2);
    free(w);
    memset(r, 0, sizeof *r);
    r->payload = NET_PAYLOAD_STATUS;
    r->info.role = RAFT_FOLLOWER;
    r->info.n_peers = 2;
    ck_assert_int_eq(net__encode_client_resp(r, 1, FMAX, &w), 0);
    mutate(w, 2);
    free(w);
    free(r);
}
END_TEST

static Suite *net_codec_suite(void)
{
    Suite *s = suite_create("net_codec");
    TCase *tc;

    tc = tcase_create("raft");
    tcase_add_test(tc, test_append_with_entries);
    tcase_add_test(tc, test_small_messages);
    tcase_add_test(tc, test_snapshot_chunk);
    suite_add_tcase(s, tc);
    tc = tcase_create("forward");
    tcase_add_test(tc, test_hello_and_forwards);
    suite_add_tcase(s, tc);
    tc = tcase_create("validation");
    tcase_add_test(tc, test_invalid_messages);
    tcase_add_test(tc, test_invalid_wire);
    tcase_add_test(tc, test_garbage_and_truncated);
    tcase_add_test(tc, test_mutations);
    suite_add_tcase(s, tc);
    tc = tcase_create("client");
    tcase_add_test(tc, test_client_requests);
    tcase_add_test(tc, test_client_responses);
    suite_add_tcase(s, tc);
    tc = tcase_create("frame");
    tcase_add_test(tc, test_frame_splits);
    tcase_add_test(tc, test_frame_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(net_codec_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
