/* Peer codec: Hello, raft messages and forwards <-> peer.proto Envelopes. */
#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "peer.pb-c.h"

typedef Raftfs__Peer__Envelope Envelope;
typedef Raftfs__Peer__RaftMessage RaftMessage;

static int pack_envelope(const Envelope *e, size_t frame_max,
                         struct net__wframe **out)
{
    return net__pack(&e->base, frame_max, out);
}

int net__encode_hello(const struct net__hello *h, size_t frame_max,
                      struct net__wframe **out)
{
    Envelope e = RAFTFS__PEER__ENVELOPE__INIT;
    Raftfs__Peer__Hello hello = RAFTFS__PEER__HELLO__INIT;

    hello.version = h->version;
    hello.cluster_id = h->cluster_id;
    hello.from = h->from;
    hello.to = h->to;
    e.msg_case = RAFTFS__PEER__ENVELOPE__MSG_HELLO;
    e.hello = &hello;
    return pack_envelope(&e, frame_max, out);
}

int net__encode_hello_reply(bool accepted, const char *reason,
                            size_t frame_max, struct net__wframe **out)
{
    Envelope e = RAFTFS__PEER__ENVELOPE__INIT;
    Raftfs__Peer__HelloReply r = RAFTFS__PEER__HELLO_REPLY__INIT;

    r.accepted = accepted;
    r.reason = (char *)reason;
    e.msg_case = RAFTFS__PEER__ENVELOPE__MSG_HELLO_REPLY;
    e.hello_reply = &r;
    return pack_envelope(&e, frame_max, out);
}

/* Every body lives on this struct so that one encode call needs no malloc
 * except the entries and servers arrays. */
struct raft_bodies {
    Raftfs__Peer__Append append;
    Raftfs__Peer__AppendResp append_resp;
    Raftfs__Peer__Vote vote;
    Raftfs__Peer__VoteResp vote_resp;
    Raftfs__Peer__Heartbeat heartbeat;
    Raftfs__Peer__HeartbeatResp heartbeat_resp;
    Raftfs__Peer__Snapshot snapshot;
    Raftfs__Peer__SnapshotResp snapshot_resp;
    Raftfs__Peer__TimeoutNow timeout_now;
    Raftfs__Peer__ReadIndex read_index;
    Raftfs__Peer__ReadIndexResp read_index_resp;
    Raftfs__Peer__Server servers[RAFT_MAX_SERVERS];
    Raftfs__Peer__Server *server_ptrs[RAFT_MAX_SERVERS];
};

static int fill_append(const struct raft_message *m, RaftMessage *rm,
                       struct raft_bodies *b, void **to_free)
{
    Raftfs__Peer__Append *a = &b->append;
    Raftfs__Peer__Entry *es;
    Raftfs__Peer__Entry **ps;
    size_t i, n = m->append.n_entries;

    raftfs__peer__append__init(a);
    a->prev_index = m->append.prev_index;
    a->prev_term = m->append.prev_term;
    a->commit = m->append.commit;
    a->has_seq = m->append.seq != 0;
    a->seq = m->append.seq;
    if (n > 0) {
        void *mem = malloc(n * (sizeof *es + sizeof *ps));
        if (mem == NULL)
            return -ENOMEM;
        *to_free = mem;
        es = mem;
        ps = (Raftfs__Peer__Entry **)(es + n);
        for (i = 0; i < n; i++) {
            const struct raft_entry *src = &m->append.entries[i];
            raftfs__peer__entry__init(&es[i]);
            es[i].term = src->term;
            es[i].index = src->index;
            es[i].type = src->type;
            es[i].has_data = src->data.len > 0;
            es[i].data.data = src->data.base;
            es[i].data.len = src->data.len;
            ps[i] = &es[i];
        }
        a->n_entries = n;
        a->entries = ps;
    }
    rm->body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_APPEND;
    rm->append = a;
    return 0;
}

static void fill_snapshot(const struct raft_message *m, RaftMessage *rm,
                          struct raft_bodies *b)
{
    Raftfs__Peer__Snapshot *s = &b->snapshot;
    unsigned i, n = m->snapshot.config.n;

    raftfs__peer__snapshot__init(s);
    s->index = m->snapshot.index;
    s->snap_term = m->snapshot.snap_term;
    s->size = m->snapshot.size;
    s->offset = m->snapshot.offset;
    s->last = m->snapshot.last;
    s->has_data = m->snapshot.data.len > 0;
    s->data.data = m->snapshot.data.base;
    s->data.len = m->snapshot.data.len;
    if (n > RAFT_MAX_SERVERS)
        n = RAFT_MAX_SERVERS; /* a broken config is refused by the decoder */
    for (i = 0; i < n; i++) {
        const struct raft_server *src = &m->snapshot.config.servers[i];
        raftfs__peer__server__init(&b->servers[i]);
        b->servers[i].id = src->id;
        b->servers[i].role = src->role;
        b->servers[i].addr = (char *)src->addr;
        b->server_ptrs[i] = &b->servers[i];
    }
    s->n_servers = n;
    s->servers = b->server_ptrs;
    rm->body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_SNAPSHOT;
    rm->snapshot = s;
}

int net__encode_raft(const struct raft_message *m, size_t frame_max,
                     struct net__wframe **out)
{
    Envelope e = RAFTFS__PEER__ENVELOPE__INIT;
    RaftMessage rm = RAFTFS__PEER__RAFT_MESSAGE__INIT;
    struct raft_bodies b;
    void *to_free = NULL;
    int rv = 0;

    rm.from = m->from;
    rm.to = m->to;
    rm.term = m->term;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        rv = fill_append(m, &rm, &b, &to_free);
        break;
    case RAFT_MSG_APPEND_RESP:
        raftfs__peer__append_resp__init(&b.append_resp);
        b.append_resp.reject = m->append_resp.reject;
        b.append_resp.index = m->append_resp.index;
        b.append_resp.has_hint_index = true;
        b.append_resp.hint_index = m->append_resp.hint_index;
        b.append_resp.has_hint_term = true;
        b.append_resp.hint_term = m->append_resp.hint_term;
        b.append_resp.has_seq = m->append_resp.seq != 0;
        b.append_resp.seq = m->append_resp.seq;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_APPEND_RESP;
        rm.append_resp = &b.append_resp;
        break;
    case RAFT_MSG_VOTE:
        raftfs__peer__vote__init(&b.vote);
        b.vote.last_index = m->vote.last_index;
        b.vote.last_term = m->vote.last_term;
        b.vote.has_pre_vote = true;
        b.vote.pre_vote = m->vote.pre_vote;
        b.vote.has_transfer = true;
        b.vote.transfer = m->vote.transfer;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_VOTE;
        rm.vote = &b.vote;
        break;
    case RAFT_MSG_VOTE_RESP:
        raftfs__peer__vote_resp__init(&b.vote_resp);
        b.vote_resp.granted = m->vote_resp.granted;
        b.vote_resp.has_pre_vote = true;
        b.vote_resp.pre_vote = m->vote_resp.pre_vote;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_VOTE_RESP;
        rm.vote_resp = &b.vote_resp;
        break;
    case RAFT_MSG_HEARTBEAT:
        raftfs__peer__heartbeat__init(&b.heartbeat);
        b.heartbeat.commit = m->heartbeat.commit;
        b.heartbeat.has_seq = true;
        b.heartbeat.seq = m->heartbeat.seq;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_HEARTBEAT;
        rm.heartbeat = &b.heartbeat;
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        raftfs__peer__heartbeat_resp__init(&b.heartbeat_resp);
        b.heartbeat_resp.has_seq = true;
        b.heartbeat_resp.seq = m->heartbeat_resp.seq;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_HEARTBEAT_RESP;
        rm.heartbeat_resp = &b.heartbeat_resp;
        break;
    case RAFT_MSG_SNAPSHOT:
        fill_snapshot(m, &rm, &b);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        raftfs__peer__snapshot_resp__init(&b.snapshot_resp);
        b.snapshot_resp.index = m->snapshot_resp.index;
        b.snapshot_resp.offset = m->snapshot_resp.offset;
        b.snapshot_resp.has_reject = true;
        b.snapshot_resp.reject = m->snapshot_resp.reject;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_SNAPSHOT_RESP;
        rm.snapshot_resp = &b.snapshot_resp;
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        raftfs__peer__timeout_now__init(&b.timeout_now);
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_TIMEOUT_NOW;
        rm.timeout_now = &b.timeout_now;
        break;
    case RAFT_MSG_READ_INDEX:
        raftfs__peer__read_index__init(&b.read_index);
        b.read_index.ctx = m->read_index.ctx;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_READ_INDEX;
        rm.read_index = &b.read_index;
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        raftfs__peer__read_index_resp__init(&b.read_index_resp);
        b.read_index_resp.ctx = m->read_index_resp.ctx;
        b.read_index_resp.index = m->read_index_resp.index;
        b.read_index_resp.has_reject = true;
        b.read_index_resp.reject = m->read_index_resp.reject;
        rm.body_case = RAFTFS__PEER__RAFT_MESSAGE__BODY_READ_INDEX_RESP;
        rm.read_index_resp = &b.read_index_resp;
        break;
    default:
        return NET_ERR_MALFORMED;
    }
    if (rv == 0) {
        e.msg_case = RAFTFS__PEER__ENVELOPE__MSG_RAFT;
        e.raft = &rm;
        rv = pack_envelope(&e, frame_max, out);
    }
    free(to_free);
    return rv;
}

int net__encode_forward(const struct net_forward *f, size_t frame_max,
                        struct net__wframe **out)
{
    Envelope e = RAFTFS__PEER__ENVELOPE__INIT;
    Raftfs__Peer__Forward fw;
    Raftfs__Peer__MemberChange mc = RAFTFS__PEER__MEMBER_CHANGE__INIT;
    Raftfs__Peer__LeaderTransfer lt = RAFTFS__PEER__LEADER_TRANSFER__INIT;

    /* The _INIT macro of a message with a bytes oneof trips
     * -Wmissing-braces; the init function does the same. */
    raftfs__peer__forward__init(&fw);
    fw.req_id = f->req_id;
    switch (f->op) {
    case NET_FORWARD_PROPOSE:
        fw.op_case = RAFTFS__PEER__FORWARD__OP_PROPOSE;
        fw.propose.data = f->command.base;
        fw.propose.len = f->command.len;
        break;
    case NET_FORWARD_CHANGE:
        mc.op = f->change_op;
        mc.id = f->id;
        mc.addr = (char *)f->addr;
        fw.op_case = RAFTFS__PEER__FORWARD__OP_MEMBER_CHANGE;
        fw.member_change = &mc;
        break;
    case NET_FORWARD_TRANSFER:
        lt.target = f->id;
        fw.op_case = RAFTFS__PEER__FORWARD__OP_LEADER_TRANSFER;
        fw.leader_transfer = &lt;
        break;
    default:
        return NET_ERR_MALFORMED;
    }
    e.msg_case = RAFTFS__PEER__ENVELOPE__MSG_FORWARD;
    e.forward = &fw;
    return pack_envelope(&e, frame_max, out);
}

int net__encode_forward_result(const struct net_forward_result *r,
                               size_t frame_max, struct net__wframe **out)
{
    Envelope e = RAFTFS__PEER__ENVELOPE__INIT;
    Raftfs__Peer__ForwardResult fr = RAFTFS__PEER__FORWARD_RESULT__INIT;

    fr.req_id = r->req_id;
    fr.status = r->status;
    fr.has_index = true;
    fr.index = r->index;
    fr.has_term = true;
    fr.term = r->term;
    e.msg_case = RAFTFS__PEER__ENVELOPE__MSG_FORWARD_RESULT;
    e.forward_result = &fr;
    return pack_envelope(&e, frame_max, out);
}

void net__message_free(struct raft_message *m)
{
    size_t i;

    if (m->type == RAFT_MSG_APPEND) {
        for (i = 0; i < m->append.n_entries; i++)
            free(m->append.entries[i].data.base);
        free(m->append.entries);
        m->append.entries = NULL;
        m->append.n_entries = 0;
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        free(m->snapshot.data.base);
        m->snapshot.data.base = NULL;
        m->snapshot.data.len = 0;
    }
}

void net__envelope_close(struct net__envelope *e)
{
    if (e->kind == NET__ENV_RAFT)
        net__message_free(&e->raft);
    else if (e->kind == NET__ENV_FORWARD)
        free(e->forward.command.base);
    e->kind = 0;
}

/* Copies protobuf bytes into a malloc'd raft_buf (NULL base when empty). */
static int copy_bytes(const ProtobufCBinaryData *src, struct raft_buf *dst)
{
    dst->base = NULL;
    dst->len = 0;
    if (src->len == 0)
        return 0;
    dst->base = malloc(src->len);
    if (dst->base == NULL)
        return -ENOMEM;
    memcpy(dst->base, src->data, src->len);
    dst->len = src->len;
    return 0;
}

/* An optional string that must fit (with its NUL) in cap bytes. */
static int copy_str(const char *src, char *dst, size_t cap)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= cap)
        return NET_ERR_MALFORMED;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static int decode_append(const Raftfs__Peer__Append *a, raft_term term,
                         struct raft_message *m)
{
    size_t i, n = a->n_entries;
    raft_term last_term = a->prev_term;
    int rv;

    m->append.prev_index = a->prev_index;
    m->append.prev_term = a->prev_term;
    m->append.commit = a->commit;
    m->append.seq = a->has_seq ? a->seq : 0;
    m->append.entries = NULL;
    m->append.n_entries = 0;
    if (a->prev_term > term)
        return NET_ERR_MALFORMED;
    if (n == 0)
        return 0;
    /* Log Matching (§5.3): a batch is contiguous from prev_index + 1, its
     * terms never decrease, and no entry is newer than the sender's term. */
    if (n > NET_MAX_ENTRIES || a->prev_index > UINT64_MAX - n)
        return NET_ERR_MALFORMED;
    for (i = 0; i < n; i++) {
        const Raftfs__Peer__Entry *src = a->entries[i];
        if (src->index != a->prev_index + 1 + i || src->term < last_term ||
            src->term > term || src->term == 0 ||
            src->type < RAFT_ENTRY_COMMAND || src->type > RAFT_ENTRY_CONFIG)
            return NET_ERR_MALFORMED;
        last_term = src->term;
    }
    m->append.entries = calloc(n, sizeof *m->append.entries);
    if (m->append.entries == NULL)
        return -ENOMEM;
    m->append.n_entries = n;
    for (i = 0; i < n; i++) {
        const Raftfs__Peer__Entry *src = a->entries[i];
        struct raft_entry *dst = &m->append.entries[i];
        dst->term = src->term;
        dst->index = src->index;
        dst->type = (uint8_t)src->type;
        rv = copy_bytes(&src->data, &dst->data);
        if (rv != 0)
            return rv; /* the caller frees what was copied */
    }
    return 0;
}

static int decode_snapshot(const Raftfs__Peer__Snapshot *s,
                           struct raft_message *m)
{
    struct raft_config *c = &m->snapshot.config;
    size_t i, j;

    m->snapshot.index = s->index;
    m->snapshot.snap_term = s->snap_term;
    m->snapshot.size = s->size;
    m->snapshot.offset = s->offset;
    m->snapshot.last = s->last;
    if (s->index == 0 || s->snap_term == 0 ||
        s->n_servers > RAFT_MAX_SERVERS || s->data.len > UINT32_MAX ||
        s->offset > s->size || s->data.len > s->size - s->offset)
        return NET_ERR_MALFORMED;
    c->n = (unsigned)s->n_servers;
    for (i = 0; i < s->n_servers; i++) {
        const Raftfs__Peer__Server *src = s->servers[i];
        if (src->id == 0 || src->role < RAFT_VOTER ||
            src->role > RAFT_LEARNER)
            return NET_ERR_MALFORMED;
        for (j = 0; j < i; j++)
            if (c->servers[j].id == src->id)
                return NET_ERR_MALFORMED;
        c->servers[i].id = src->id;
        c->servers[i].role = (uint8_t)src->role;
        if (copy_str(src->addr, c->servers[i].addr, RAFT_ADDR_MAX) != 0)
            return NET_ERR_MALFORMED;
    }
    m->snapshot.chunk_len = (uint32_t)s->data.len;
    return copy_bytes(&s->data, &m->snapshot.data);
}

static int decode_raft(const RaftMessage *rm, struct raft_message *m)
{
    int rv = 0;

    memset(m, 0, sizeof *m);
    m->from = rm->from;
    m->to = rm->to;
    m->term = rm->term;
    if (rm->from == 0 || rm->to == 0)
        return NET_ERR_MALFORMED;
    switch (rm->body_case) {
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_APPEND:
        m->type = RAFT_MSG_APPEND;
        rv = decode_append(rm->append, rm->term, m);
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_APPEND_RESP:
        m->type = RAFT_MSG_APPEND_RESP;
        m->append_resp.reject = rm->append_resp->reject;
        m->append_resp.index = rm->append_resp->index;
        m->append_resp.hint_index = rm->append_resp->hint_index;
        m->append_resp.hint_term = rm->append_resp->hint_term;
        m->append_resp.seq =
            rm->append_resp->has_seq ? rm->append_resp->seq : 0;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_VOTE:
        m->type = RAFT_MSG_VOTE;
        m->vote.last_index = rm->vote->last_index;
        m->vote.last_term = rm->vote->last_term;
        m->vote.pre_vote = rm->vote->pre_vote;
        m->vote.transfer = rm->vote->transfer;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_VOTE_RESP:
        m->type = RAFT_MSG_VOTE_RESP;
        m->vote_resp.granted = rm->vote_resp->granted;
        m->vote_resp.pre_vote = rm->vote_resp->pre_vote;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_HEARTBEAT:
        m->type = RAFT_MSG_HEARTBEAT;
        m->heartbeat.commit = rm->heartbeat->commit;
        m->heartbeat.seq = rm->heartbeat->seq;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_HEARTBEAT_RESP:
        m->type = RAFT_MSG_HEARTBEAT_RESP;
        m->heartbeat_resp.seq = rm->heartbeat_resp->seq;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_SNAPSHOT:
        m->type = RAFT_MSG_SNAPSHOT;
        rv = decode_snapshot(rm->snapshot, m);
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_SNAPSHOT_RESP:
        m->type = RAFT_MSG_SNAPSHOT_RESP;
        m->snapshot_resp.index = rm->snapshot_resp->index;
        m->snapshot_resp.offset = rm->snapshot_resp->offset;
        m->snapshot_resp.reject = rm->snapshot_resp->reject;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_TIMEOUT_NOW:
        m->type = RAFT_MSG_TIMEOUT_NOW;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_READ_INDEX:
        m->type = RAFT_MSG_READ_INDEX;
        m->read_index.ctx = rm->read_index->ctx;
        break;
    case RAFTFS__PEER__RAFT_MESSAGE__BODY_READ_INDEX_RESP:
        m->type = RAFT_MSG_READ_INDEX_RESP;
        m->read_index_resp.ctx = rm->read_index_resp->ctx;
        m->read_index_resp.index = rm->read_index_resp->index;
        m->read_index_resp.reject = rm->read_index_resp->reject;
        break;
    default:
        return NET_ERR_MALFORMED; /* unknown or missing body */
    }
    if (rv != 0)
        net__message_free(m);
    return rv;
}

static int decode_forward(const Raftfs__Peer__Forward *fw,
                          struct net_forward *f)
{
    memset(f, 0, sizeof *f);
    f->req_id = fw->req_id;
    switch (fw->op_case) {
    case RAFTFS__PEER__FORWARD__OP_PROPOSE:
        f->op = NET_FORWARD_PROPOSE;
        return copy_bytes(&fw->propose, &f->command);
    case RAFTFS__PEER__FORWARD__OP_MEMBER_CHANGE:
        f->op = NET_FORWARD_CHANGE;
        if (fw->member_change->op < RAFT_ADD_LEARNER ||
            fw->member_change->op > RAFT_REMOVE ||
            fw->member_change->id == 0)
            return NET_ERR_MALFORMED;
        f->change_op = (uint8_t)fw->member_change->op;
        f->id = fw->member_change->id;
        return copy_str(fw->member_change->addr, f->addr, RAFT_ADDR_MAX);
    case RAFTFS__PEER__FORWARD__OP_LEADER_TRANSFER:
        f->op = NET_FORWARD_TRANSFER;
        f->id = fw->leader_transfer->target;
        return 0;
    default:
        return NET_ERR_MALFORMED;
    }
}

int net__decode_envelope(const uint8_t *buf, size_t len,
                         struct net__envelope *out)
{
    Envelope *e;
    int rv = 0;

    memset(out, 0, sizeof *out);
    e = raftfs__peer__envelope__unpack(NULL, len, buf);
    if (e == NULL)
        return NET_ERR_MALFORMED; /* bad wire format or missing field */
    switch (e->msg_case) {
    case RAFTFS__PEER__ENVELOPE__MSG_HELLO:
        out->kind = NET__ENV_HELLO;
        out->hello.version = e->hello->version;
        out->hello.cluster_id = e->hello->cluster_id;
        out->hello.from = e->hello->from;
        out->hello.to = e->hello->to;
        break;
    case RAFTFS__PEER__ENVELOPE__MSG_HELLO_REPLY:
        out->kind = NET__ENV_HELLO_REPLY;
        out->hello_reply.accepted = e->hello_reply->accepted;
        /* A reason is text for a log line: truncate rather than refuse. */
        if (e->hello_reply->reason != NULL)
            snprintf(out->hello_reply.reason, sizeof out->hello_reply.reason,
                     "%s", e->hello_reply->reason);
        break;
    case RAFTFS__PEER__ENVELOPE__MSG_RAFT:
        out->kind = NET__ENV_RAFT;
        rv = decode_raft(e->raft, &out->raft);
        break;
    case RAFTFS__PEER__ENVELOPE__MSG_FORWARD:
        out->kind = NET__ENV_FORWARD;
        rv = decode_forward(e->forward, &out->forward);
        if (rv != 0)
            free(out->forward.command.base);
        break;
    case RAFTFS__PEER__ENVELOPE__MSG_FORWARD_RESULT:
        out->kind = NET__ENV_FORWARD_RESULT;
        out->result.req_id = e->forward_result->req_id;
        out->result.status = e->forward_result->status;
        out->result.index = e->forward_result->index;
        out->result.term = e->forward_result->term;
        break;
    default:
        rv = NET_ERR_MALFORMED;
        break;
    }
    raftfs__peer__envelope__free_unpacked(e, NULL);
    if (rv != 0)
        memset(out, 0, sizeof *out);
    return rv;
}
