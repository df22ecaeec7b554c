/* Deep copies, hashing and readable descriptions of Raft messages. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void *xmemdup(const void *p, size_t len)
{
    if (len == 0 || p == NULL) {
        return NULL;
    }
    void *q = malloc(len);
    if (q == NULL) {
        abort();
    }
    memcpy(q, p, len);
    return q;
}

struct raft_entry *sim_entries_copy(const struct raft_entry *e, size_t n)
{
    if (n == 0) {
        return NULL;
    }
    struct raft_entry *c = malloc(n * sizeof(*c));
    if (c == NULL) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        c[i] = e[i];
        c[i].data.base = xmemdup(e[i].data.base, e[i].data.len);
        if (c[i].data.base == NULL) {
            c[i].data.len = 0;
        }
    }
    return c;
}

void sim_entries_free(struct raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].data.base);
    }
    free(e);
}

struct raft_message *sim_msg_copy(const struct raft_message *m)
{
    struct raft_message *c = malloc(sizeof(*c));
    if (c == NULL) {
        abort();
    }
    *c = *m;
    if (m->type == RAFT_MSG_APPEND) {
        c->append.entries =
            sim_entries_copy(m->append.entries, m->append.n_entries);
        if (c->append.entries == NULL) {
            c->append.n_entries = 0;
        }
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        c->snapshot.data.base =
            xmemdup(m->snapshot.data.base, m->snapshot.data.len);
        if (c->snapshot.data.base == NULL) {
            c->snapshot.data.len = 0;
        }
    }
    return c;
}

void sim_msg_free(struct raft_message *m)
{
    if (m == NULL) {
        return;
    }
    if (m->type == RAFT_MSG_APPEND) {
        sim_entries_free(m->append.entries, m->append.n_entries);
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        free(m->snapshot.data.base);
    }
    free(m);
}

uint64_t sim_entry_hash(const struct raft_entry *e)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = (h ^ e->type) * 0x100000001b3ULL;
    const uint8_t *p = e->data.base;
    for (size_t i = 0; i < e->data.len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

const char *sim_msg_type_name(unsigned type)
{
    static const char *names[] = {
        "?",         "APPEND",     "APPEND_RESP",    "VOTE",
        "VOTE_RESP", "HEARTBEAT",  "HEARTBEAT_RESP", "SNAPSHOT",
        "SNAPSHOT_RESP", "TIMEOUT_NOW", "READ_INDEX", "READ_INDEX_RESP",
    };
    return type <= RAFT_MSG_TYPE_MAX ? names[type] : "BAD_TYPE";
}

#define U(x) ((unsigned long long)(x))

void sim_msg_describe(const struct raft_message *m, char *buf, size_t len)
{
    int k = snprintf(buf, len, "%s %llu->%llu term=%llu",
                     sim_msg_type_name(m->type), U(m->from), U(m->to),
                     U(m->term));
    if (k < 0 || (size_t)k >= len) {
        return;
    }
    buf += k;
    len -= (size_t)k;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        snprintf(buf, len, " prev=%llu/%llu commit=%llu n=%zu%s seq=%llu",
                 U(m->append.prev_index), U(m->append.prev_term),
                 U(m->append.commit), m->append.n_entries,
                 m->append.n_entries ? "" : " (empty)", U(m->append.seq));
        break;
    case RAFT_MSG_APPEND_RESP:
        snprintf(buf, len, " %s index=%llu hint=%llu/%llu seq=%llu",
                 m->append_resp.reject ? "reject" : "ok",
                 U(m->append_resp.index), U(m->append_resp.hint_index),
                 U(m->append_resp.hint_term), U(m->append_resp.seq));
        break;
    case RAFT_MSG_VOTE:
        snprintf(buf, len, " last=%llu/%llu%s%s", U(m->vote.last_index),
                 U(m->vote.last_term), m->vote.pre_vote ? " pre" : "",
                 m->vote.transfer ? " transfer" : "");
        break;
    case RAFT_MSG_VOTE_RESP:
        snprintf(buf, len, " %s%s",
                 m->vote_resp.granted ? "granted" : "denied",
                 m->vote_resp.pre_vote ? " pre" : "");
        break;
    case RAFT_MSG_HEARTBEAT:
        snprintf(buf, len, " commit=%llu seq=%llu", U(m->heartbeat.commit),
                 U(m->heartbeat.seq));
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        snprintf(buf, len, " seq=%llu", U(m->heartbeat_resp.seq));
        break;
    case RAFT_MSG_SNAPSHOT:
        snprintf(buf, len, " snap=%llu/%llu size=%llu off=%llu len=%zu%s",
                 U(m->snapshot.index), U(m->snapshot.snap_term),
                 U(m->snapshot.size), U(m->snapshot.offset),
                 m->snapshot.data.len, m->snapshot.last ? " last" : "");
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        snprintf(buf, len, " index=%llu off=%llu%s",
                 U(m->snapshot_resp.index), U(m->snapshot_resp.offset),
                 m->snapshot_resp.reject ? " reject" : "");
        break;
    case RAFT_MSG_READ_INDEX:
        snprintf(buf, len, " ctx=%llu", U(m->read_index.ctx));
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        snprintf(buf, len, " ctx=%llu index=%llu%s",
                 U(m->read_index_resp.ctx), U(m->read_index_resp.index),
                 m->read_index_resp.reject ? " reject" : "");
        break;
    default:
        break;
    }
}
