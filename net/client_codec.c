/* Client codec: net_client_req / net_client_resp <-> client.proto frames. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.pb-c.h"
#include "codec.h"

typedef Raftfs__Client__Request Request;
typedef Raftfs__Client__Response Response;

/* enum net_client_op <-> the Request oneof case, in the same order. */
static const Raftfs__Client__Request__OpCase op_cases[] = {
    [NET_CLIENT_STATUS] = RAFTFS__CLIENT__REQUEST__OP_STATUS,
    [NET_CLIENT_MEMBERS] = RAFTFS__CLIENT__REQUEST__OP_MEMBERS,
    [NET_CLIENT_MEMBER_ADD] = RAFTFS__CLIENT__REQUEST__OP_MEMBER_ADD,
    [NET_CLIENT_MEMBER_PROMOTE] = RAFTFS__CLIENT__REQUEST__OP_MEMBER_PROMOTE,
    [NET_CLIENT_MEMBER_REMOVE] = RAFTFS__CLIENT__REQUEST__OP_MEMBER_REMOVE,
    [NET_CLIENT_LEADER_TRANSFER] = RAFTFS__CLIENT__REQUEST__OP_LEADER_TRANSFER,
    [NET_CLIENT_SNAPSHOT] = RAFTFS__CLIENT__REQUEST__OP_SNAPSHOT,
    [NET_CLIENT_GET] = RAFTFS__CLIENT__REQUEST__OP_GET,
    [NET_CLIENT_PUT] = RAFTFS__CLIENT__REQUEST__OP_PUT,
    [NET_CLIENT_RM] = RAFTFS__CLIENT__REQUEST__OP_RM,
    [NET_CLIENT_LS] = RAFTFS__CLIENT__REQUEST__OP_LS,
    [NET_CLIENT_MKDIR] = RAFTFS__CLIENT__REQUEST__OP_MKDIR,
};

int net__encode_client_req(const struct net_client_req *r, size_t frame_max,
                           struct net__wframe **out)
{
    Request q = RAFTFS__CLIENT__REQUEST__INIT;
    Raftfs__Client__Empty empty = RAFTFS__CLIENT__EMPTY__INIT;
    Raftfs__Client__MemberAdd add = RAFTFS__CLIENT__MEMBER_ADD__INIT;
    Raftfs__Client__MemberId mid = RAFTFS__CLIENT__MEMBER_ID__INIT;
    Raftfs__Client__Path path = RAFTFS__CLIENT__PATH__INIT;
    Raftfs__Client__Put put = RAFTFS__CLIENT__PUT__INIT;

    if (r->op < 1 || r->op > NET_CLIENT_OP_MAX ||
        strnlen(r->path, sizeof r->path) > NET_PATH_MAX ||
        strnlen(r->addr, sizeof r->addr) >= RAFT_ADDR_MAX)
        return NET_ERR_MALFORMED;
    q.id = r->id;
    q.op_case = op_cases[r->op];
    path.path = (char *)r->path;
    mid.id = r->member_id;
    switch (r->op) {
    case NET_CLIENT_STATUS:
        q.status = &empty;
        break;
    case NET_CLIENT_MEMBERS:
        q.members = &empty;
        break;
    case NET_CLIENT_SNAPSHOT:
        q.snapshot = &empty;
        break;
    case NET_CLIENT_MEMBER_ADD:
        add.id = r->member_id;
        add.addr = (char *)r->addr;
        add.has_learner = true;
        add.learner = r->learner;
        q.member_add = &add;
        break;
    case NET_CLIENT_MEMBER_PROMOTE:
        q.member_promote = &mid;
        break;
    case NET_CLIENT_MEMBER_REMOVE:
        q.member_remove = &mid;
        break;
    case NET_CLIENT_LEADER_TRANSFER:
        q.leader_transfer = &mid;
        break;
    case NET_CLIENT_PUT:
        put.path = (char *)r->path;
        put.has_value = true;
        put.value.data = r->value.base;
        put.value.len = r->value.len;
        q.put = &put;
        break;
    case NET_CLIENT_GET:
        q.get = &path;
        break;
    case NET_CLIENT_RM:
        q.rm = &path;
        break;
    case NET_CLIENT_LS:
        q.ls = &path;
        break;
    case NET_CLIENT_MKDIR:
        q.mkdir = &path;
        break;
    }
    return net__pack(&q.base, frame_max, out);
}

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

static int decode_req(const Request *q, struct net_client_req *r)
{
    const char *p = NULL;

    r->id = q->id;
    switch (q->op_case) {
    case RAFTFS__CLIENT__REQUEST__OP_STATUS:
        r->op = NET_CLIENT_STATUS;
        return 0;
    case RAFTFS__CLIENT__REQUEST__OP_MEMBERS:
        r->op = NET_CLIENT_MEMBERS;
        return 0;
    case RAFTFS__CLIENT__REQUEST__OP_SNAPSHOT:
        r->op = NET_CLIENT_SNAPSHOT;
        return 0;
    case RAFTFS__CLIENT__REQUEST__OP_MEMBER_ADD:
        r->op = NET_CLIENT_MEMBER_ADD;
        r->member_id = q->member_add->id;
        r->learner = q->member_add->learner;
        if (r->member_id == 0)
            return NET_ERR_MALFORMED;
        return copy_str(q->member_add->addr, r->addr, sizeof r->addr);
    case RAFTFS__CLIENT__REQUEST__OP_MEMBER_PROMOTE:
        r->op = NET_CLIENT_MEMBER_PROMOTE;
        r->member_id = q->member_promote->id;
        return r->member_id != 0 ? 0 : NET_ERR_MALFORMED;
    case RAFTFS__CLIENT__REQUEST__OP_MEMBER_REMOVE:
        r->op = NET_CLIENT_MEMBER_REMOVE;
        r->member_id = q->member_remove->id;
        return r->member_id != 0 ? 0 : NET_ERR_MALFORMED;
    case RAFTFS__CLIENT__REQUEST__OP_LEADER_TRANSFER:
        r->op = NET_CLIENT_LEADER_TRANSFER;
        r->member_id = q->leader_transfer->id;
        return 0;
    case RAFTFS__CLIENT__REQUEST__OP_PUT:
        r->op = NET_CLIENT_PUT;
        if (copy_str(q->put->path, r->path, sizeof r->path) != 0)
            return NET_ERR_MALFORMED;
        if (q->put->value.len > 0) {
            r->value.base = malloc(q->put->value.len);
            if (r->value.base == NULL)
                return -ENOMEM;
            memcpy(r->value.base, q->put->value.data, q->put->value.len);
            r->value.len = q->put->value.len;
        }
        return 0;
    case RAFTFS__CLIENT__REQUEST__OP_GET:
        r->op = NET_CLIENT_GET;
        p = q->get->path;
        break;
    case RAFTFS__CLIENT__REQUEST__OP_RM:
        r->op = NET_CLIENT_RM;
        p = q->rm->path;
        break;
    case RAFTFS__CLIENT__REQUEST__OP_LS:
        r->op = NET_CLIENT_LS;
        p = q->ls->path;
        break;
    case RAFTFS__CLIENT__REQUEST__OP_MKDIR:
        r->op = NET_CLIENT_MKDIR;
        p = q->mkdir->path;
        break;
    default:
        return NET_ERR_MALFORMED;
    }
    return copy_str(p, r->path, sizeof r->path);
}

int net__decode_client_req(const uint8_t *buf, size_t len,
                           struct net_client_req *out)
{
    Request *q;
    int rv;

    memset(out, 0, sizeof *out);
    q = raftfs__client__request__unpack(NULL, len, buf);
    if (q == NULL)
        return NET_ERR_MALFORMED;
    rv = decode_req(q, out);
    raftfs__client__request__free_unpacked(q, NULL);
    if (rv != 0) {
        net__client_req_close(out);
        memset(out, 0, sizeof *out);
    }
    return rv;
}

void net__client_req_close(struct net_client_req *r)
{
    free(r->value.base);
    r->value.base = NULL;
    r->value.len = 0;
}

/* Scratch space for encoding one response without a malloc per element. */
struct resp_parts {
    Raftfs__Client__StatusInfo info;
    Raftfs__Client__PeerInfo peers[RAFT_MAX_SERVERS];
    Raftfs__Client__PeerInfo *peer_ptrs[RAFT_MAX_SERVERS];
    Raftfs__Client__Members members;
    Raftfs__Client__Member member[RAFT_MAX_SERVERS];
    Raftfs__Client__Member *member_ptrs[RAFT_MAX_SERVERS];
    Raftfs__Client__DirEntries dir;
};

static void fill_status(const struct net_client_status *s,
                        struct resp_parts *p)
{
    size_t i, n = s->n_peers < RAFT_MAX_SERVERS ? s->n_peers
                                                : RAFT_MAX_SERVERS;

    raftfs__client__status_info__init(&p->info);
    p->info.id = s->id;
    p->info.role = s->role;
    p->info.term = s->term;
    p->info.has_leader_id = true;
    p->info.leader_id = s->leader;
    p->info.leader_addr = (char *)s->leader_addr;
    p->info.has_commit = true;
    p->info.commit = s->commit;
    p->info.has_applied = true;
    p->info.applied = s->applied;
    p->info.has_last_index = true;
    p->info.last_index = s->last_index;
    for (i = 0; i < n; i++) {
        Raftfs__Client__PeerInfo *pi = &p->peers[i];
        raftfs__client__peer_info__init(pi);
        pi->id = s->peers[i].id;
        pi->has_match = pi->has_next = pi->has_lag = pi->has_state = true;
        pi->match = s->peers[i].match;
        pi->next = s->peers[i].next;
        pi->lag = s->peers[i].lag;
        pi->state = s->peers[i].state;
        p->peer_ptrs[i] = pi;
    }
    p->info.n_peers = n;
    p->info.peers = p->peer_ptrs;
}

static void fill_members(const struct net_client_resp *r,
                         struct resp_parts *p)
{
    size_t i, n = r->n_members < RAFT_MAX_SERVERS ? r->n_members
                                                  : RAFT_MAX_SERVERS;

    raftfs__client__members__init(&p->members);
    for (i = 0; i < n; i++) {
        Raftfs__Client__Member *m = &p->member[i];
        raftfs__client__member__init(m);
        m->id = r->members[i].id;
        m->addr = (char *)r->members[i].addr;
        m->role = r->members[i].role;
        m->has_is_leader = true;
        m->is_leader = r->members[i].is_leader;
        p->member_ptrs[i] = m;
    }
    p->members.n_members = n;
    p->members.members = p->member_ptrs;
}

int net__encode_client_resp(const struct net_client_resp *r, uint64_t id,
                            size_t frame_max, struct net__wframe **out)
{
    Response q = RAFTFS__CLIENT__RESPONSE__INIT;
    struct resp_parts *p;
    Raftfs__Client__DirEntry *de = NULL;
    Raftfs__Client__DirEntry **dp = NULL;
    size_t i;
    int rv;

    if (r->n_entries > NET_DIR_MAX)
        return NET_ERR_MALFORMED;
    p = malloc(sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    q.id = id;
    q.status = r->status;
    q.message = (char *)r->message;
    switch (r->payload) {
    case NET_PAYLOAD_STATUS:
        fill_status(&r->info, p);
        q.payload_case = RAFTFS__CLIENT__RESPONSE__PAYLOAD_STATUS_INFO;
        q.status_info = &p->info;
        break;
    case NET_PAYLOAD_MEMBERS:
        fill_members(r, p);
        q.payload_case = RAFTFS__CLIENT__RESPONSE__PAYLOAD_MEMBERS;
        q.members = &p->members;
        break;
    case NET_PAYLOAD_VALUE:
        q.payload_case = RAFTFS__CLIENT__RESPONSE__PAYLOAD_VALUE;
        q.value.data = r->value.base;
        q.value.len = r->value.len;
        break;
    case NET_PAYLOAD_DIR:
        raftfs__client__dir_entries__init(&p->dir);
        if (r->n_entries > 0) {
            de = malloc(r->n_entries * (sizeof *de + sizeof *dp));
            if (de == NULL) {
                free(p);
                return -ENOMEM;
            }
            dp = (Raftfs__Client__DirEntry **)(de + r->n_entries);
        }
        for (i = 0; i < r->n_entries; i++) {
            raftfs__client__dir_entry__init(&de[i]);
            de[i].name = (char *)r->entries[i].name;
            de[i].type = r->entries[i].type;
            de[i].has_size = true;
            de[i].size = r->entries[i].size;
            dp[i] = &de[i];
        }
        p->dir.n_entries = r->n_entries;
        p->dir.entries = dp;
        q.payload_case = RAFTFS__CLIENT__RESPONSE__PAYLOAD_DIR;
        q.dir = &p->dir;
        break;
    default:
        break;
    }
    rv = net__pack(&q.base, frame_max, out);
    free(de);
    free(p);
    return rv;
}

static int decode_status(const Raftfs__Client__StatusInfo *i,
                         struct net_client_status *s)
{
    size_t k;

    if (i->role < 1 || i->role > 4 || i->n_peers > RAFT_MAX_SERVERS)
        return NET_ERR_MALFORMED;
    s->id = i->id;
    s->role = (uint8_t)i->role;
    s->term = i->term;
    s->leader = i->leader_id;
    if (copy_str(i->leader_addr, s->leader_addr, sizeof s->leader_addr))
        return NET_ERR_MALFORMED;
    s->commit = i->commit;
    s->applied = i->applied;
    s->last_index = i->last_index;
    s->n_peers = i->n_peers;
    for (k = 0; k < i->n_peers; k++) {
        if (i->peers[k]->state > 3)
            return NET_ERR_MALFORMED;
        s->peers[k].id = i->peers[k]->id;
        s->peers[k].match = i->peers[k]->match;
        s->peers[k].next = i->peers[k]->next;
        s->peers[k].lag = i->peers[k]->lag;
        s->peers[k].state = (uint8_t)i->peers[k]->state;
    }
    return 0;
}

static int decode_resp(const Response *q, struct net_client_resp *r)
{
    size_t k;

    r->id = q->id;
    r->status = q->status;
    /* Human text: truncate rather than refuse. */
    if (q->message != NULL)
        snprintf(r->message, sizeof r->message, "%s", q->message);
    switch (q->payload_case) {
    case RAFTFS__CLIENT__RESPONSE__PAYLOAD__NOT_SET:
        r->payload = NET_PAYLOAD_NONE;
        return 0;
    case RAFTFS__CLIENT__RESPONSE__PAYLOAD_STATUS_INFO:
        r->payload = NET_PAYLOAD_STATUS;
        return decode_status(q->status_info, &r->info);
    case RAFTFS__CLIENT__RESPONSE__PAYLOAD_MEMBERS:
        r->payload = NET_PAYLOAD_MEMBERS;
        if (q->members->n_members > RAFT_MAX_SERVERS)
            return NET_ERR_MALFORMED;
        for (k = 0; k < q->members->n_members; k++) {
            const Raftfs__Client__Member *m = q->members->members[k];
            struct net_client_member *d = &r->members[k];
            if (m->role < RAFT_VOTER || m->role > RAFT_LEARNER)
                return NET_ERR_MALFORMED;
            d->id = m->id;
            d->role = (uint8_t)m->role;
            d->is_leader = m->is_leader;
            if (copy_str(m->addr, d->addr, sizeof d->addr) != 0)
                return NET_ERR_MALFORMED;
        }
        r->n_members = q->members->n_members;
        return 0;
    case RAFTFS__CLIENT__RESPONSE__PAYLOAD_VALUE:
        r->payload = NET_PAYLOAD_VALUE;
        if (q->value.len == 0)
            return 0;
        r->value.base = malloc(q->value.len);
        if (r->value.base == NULL)
            return -ENOMEM;
        memcpy(r->value.base, q->value.data, q->value.len);
        r->value.len = q->value.len;
        return 0;
    case RAFTFS__CLIENT__RESPONSE__PAYLOAD_DIR:
        r->payload = NET_PAYLOAD_DIR;
        if (q->dir->n_entries > NET_DIR_MAX)
            return NET_ERR_MALFORMED;
        if (q->dir->n_entries == 0)
            return 0;
        r->entries = calloc(q->dir->n_entries, sizeof *r->entries);
        if (r->entries == NULL)
            return -ENOMEM;
        r->n_entries = q->dir->n_entries;
        for (k = 0; k < q->dir->n_entries; k++) {
            const Raftfs__Client__DirEntry *e = q->dir->entries[k];
            if (e->type < NET_DIRENT_FILE || e->type > NET_DIRENT_DIR ||
                e->name[0] == '\0' ||
                copy_str(e->name, r->entries[k].name,
                         sizeof r->entries[k].name) != 0)
                return NET_ERR_MALFORMED;
            r->entries[k].type = (uint8_t)e->type;
            r->entries[k].size = e->size;
        }
        return 0;
    default:
        return NET_ERR_MALFORMED;
    }
}

int net__decode_client_resp(const uint8_t *buf, size_t len,
                            struct net_client_resp *out)
{
    Response *q;
    int rv;

    memset(out, 0, sizeof *out);
    q = raftfs__client__response__unpack(NULL, len, buf);
    if (q == NULL)
        return NET_ERR_MALFORMED;
    rv = decode_resp(q, out);
    raftfs__client__response__free_unpacked(q, NULL);
    if (rv != 0) {
        net_client_resp_close(out);
        memset(out, 0, sizeof *out);
    }
    return rv;
}

void net_client_resp_close(struct net_client_resp *r)
{
    free(r->value.base);
    r->value.base = NULL;
    r->value.len = 0;
    free(r->entries);
    r->entries = NULL;
    r->n_entries = 0;
}
