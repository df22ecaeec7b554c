/* Snapshots: log compaction and chunked InstallSnapshot (paper §7). */
#include <stdlib.h>
#include <string.h>

#include "core.h"

int raft_snapshot_taken(struct raft *r, raft_index index, uint64_t size)
{
    raft_term t;
    raft_index upto;
    unsigned i;
    if (r == NULL || index == 0 || index > r->applied_out) {
        return RAFT_ERR_INVALID;
    }
    if (index <= r->snap_index) {
        return 0;
    }
    t = raft__log_term(&r->log, index);
    if (t == 0) {
        return RAFT_ERR_INVALID;
    }
    r->snap_index = index;
    r->snap_term = t;
    r->snap_config = raft__confs_at(&r->confs, index)->c;
    r->snap_size = size;
    raft__trace(r, "snapshot taken at %llu (%llu bytes)",
                (unsigned long long)index, (unsigned long long)size);
    /* Keep a trail of entries so that slightly lagging followers catch up
     * from the log rather than with a whole snapshot. */
    upto = index > r->o.snapshot_trailing ? index - r->o.snapshot_trailing : 0;
    if (upto > r->log.offset) {
        raft__log_compact(&r->log, upto);
        raft__confs_compact(&r->confs, upto);
        r->compact_to = upto;
    }
    /* Transfers of an older snapshot restart with this one. */
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        struct raft__progress *p = &r->prs[i];
        if (r->role == RAFT_LEADER && p->id != 0 &&
            p->state == RAFT__SNAPSHOT) {
            raft__send_snapshot_chunk(r, p);
        }
    }
    return r->nomem;
}

/* Sends chunks from snap_next while the window allows (up to max_inflight
 * chunks, at most 16, beyond what the follower acknowledged). */
static void send_window(struct raft *r, struct raft__progress *p)
{
    uint64_t window = (uint64_t)r->o.snapshot_chunk_bytes *
                      RAFT__MIN(r->o.max_inflight, 16u);
    while (!p->snap_last_sent && p->snap_next - p->snap_offset < window) {
        struct raft_message *m = raft__send(r, RAFT_MSG_SNAPSHOT, p->id, false);
        uint64_t left = r->snap_size - p->snap_next;
        if (m == NULL) {
            return;
        }
        m->snapshot.index = r->snap_index;
        m->snapshot.snap_term = r->snap_term;
        m->snapshot.config = r->snap_config;
        m->snapshot.size = r->snap_size;
        m->snapshot.offset = p->snap_next;
        m->snapshot.chunk_len =
            (uint32_t)RAFT__MIN(left, r->o.snapshot_chunk_bytes);
        m->snapshot.last = m->snapshot.chunk_len == left;
        p->snap_next += m->snapshot.chunk_len;
        p->snap_last_sent = m->snapshot.last;
        p->snap_sent_at = r->now;
    }
}

/* (Re)sends from the follower's acknowledged offset. */
void raft__send_snapshot_chunk(struct raft *r, struct raft__progress *p)
{
    if (p->snap_index != r->snap_index) {
        /* A newer snapshot replaced the one being sent: the driver only
         * serves its latest, so the transfer starts over with it. */
        p->snap_index = r->snap_index;
        p->snap_offset = 0;
        p->snap_rewind = 0;
    }
    p->snap_next = p->snap_offset;
    p->snap_last_sent = false;
    send_window(r, p);
}

static void reply(struct raft *r, const struct raft_message *m,
                  uint64_t offset, bool reject, bool after_persist)
{
    struct raft_message *resp =
        raft__send(r, RAFT_MSG_SNAPSHOT_RESP, m->from, after_persist);
    if (resp == NULL) {
        return;
    }
    resp->snapshot_resp.index = m->snapshot.index;
    resp->snapshot_resp.offset = offset;
    resp->snapshot_resp.reject = reject;
}

static bool chunk_valid(const struct raft_message *m)
{
    const __typeof__(m->snapshot) *s = &m->snapshot;
    if (s->index == 0 || s->snap_term == 0 || s->snap_term > m->term ||
        s->config.n > RAFT_MAX_SERVERS || s->offset > s->size ||
        s->data.len > s->size - s->offset ||
        (s->data.len > 0 && s->data.base == NULL)) {
        return false;
    }
    /* The last chunk ends the snapshot; no other chunk is empty. */
    if (s->last != (s->offset + s->data.len == s->size)) {
        return false;
    }
    return s->last || s->data.len > 0;
}

static void install(struct raft *r, const struct raft_message *m)
{
    const __typeof__(m->snapshot) *s = &m->snapshot;
    raft__trace(r, "install snapshot %llu term %llu",
                (unsigned long long)s->index,
                (unsigned long long)s->snap_term);
    r->has_install = true;
    r->install.index = s->index;
    r->install.term = s->snap_term;
    r->install.config = s->config;
    r->install.size = s->size;
    /* The stored log is dropped by the install: so is ours. */
    raft__log_reset(&r->log, s->index, s->snap_term);
    r->persist_from = 0;
    /* Earlier updates' entries are wiped by the install. */
    raft__pend_clamp(r, s->index);
    r->persisted = s->index;
    r->commit = s->index;
    r->applied_out = s->index;
    r->snap_index = s->index;
    r->snap_term = s->snap_term;
    r->snap_config = s->config;
    r->snap_size = s->size;
    r->confs.n = 1;
    r->confs.v[0].index = s->index;
    r->confs.v[0].c = s->config;
    r->rx_active = false;
    raft__conf_changed(r);
}

void raft__recv_snapshot(struct raft *r, const struct raft_message *m)
{
    const __typeof__(m->snapshot) *s = &m->snapshot;
    if (!chunk_valid(m)) {
        raft__trace(r, "malformed snapshot chunk from %llu ignored",
                    (unsigned long long)m->from);
        return;
    }
    if (s->index <= r->commit) {
        /* We already have everything it covers — maybe only in memory (an
         * install or entries being written): answer once that is durable,
         * since the leader takes it as a match. */
        r->rx_active = false;
        reply(r, m, s->size, false, true);
        return;
    }
    if (raft__log_term(&r->log, s->index) == s->snap_term) {
        /* Our log already holds the snapshot's last entry, so (Log Matching)
         * everything before it: keep the log, entries after it may have been
         * acknowledged already. The answer waits for them to be durable. */
        raft__trace(r, "snapshot %llu already in the log -> commit to it",
                    (unsigned long long)s->index);
        r->rx_active = false;
        r->commit = s->index;
        raft__commit_advanced(r);
        reply(r, m, s->size, false, true);
        return;
    }
    if (r->has_chunk) {
        return; /* one chunk per update; the leader will resend */
    }
    if (r->rx_active && s->index < r->rx_index) {
        /* A late chunk of an older snapshot: the leader moved on. */
        return;
    }
    if (s->offset == 0 &&
        !(r->rx_active && r->rx_index == s->index &&
          r->rx_term == s->snap_term && r->rx_size == s->size)) {
        /* A new transfer (or a new snapshot) starts over. */
        r->rx_active = true;
        r->rx_index = s->index;
        r->rx_term = s->snap_term;
        r->rx_size = s->size;
        r->rx_offset = 0;
    } else if (!r->rx_active || r->rx_index != s->index ||
               r->rx_term != s->snap_term || r->rx_size != s->size) {
        raft__trace(r, "snapshot chunk at %llu unexpected -> restart",
                    (unsigned long long)s->offset);
        r->rx_active = false;
        reply(r, m, 0, true, false);
        return;
    } else if (s->offset != r->rx_offset) {
        /* A duplicate (acknowledge again), or a gap (a chunk lost or
         * reordered): refuse, saying where we are; the leader resends from
         * there even if it believed we were further (a late ack of an
         * earlier round of the same snapshot may have told it so). */
        if (s->offset > r->rx_offset) {
            raft__trace(r, "snapshot chunk at %llu, want %llu -> resend",
                        (unsigned long long)s->offset,
                        (unsigned long long)r->rx_offset);
        }
        reply(r, m, r->rx_offset, s->offset > r->rx_offset, true);
        return;
    }
    r->has_chunk = true;
    r->chunk_meta.index = s->index;
    r->chunk_meta.term = s->snap_term;
    r->chunk_meta.config = s->config;
    r->chunk_meta.size = s->size;
    r->chunk_offset = s->offset;
    r->chunk.len = s->data.len;
    r->chunk.base = NULL;
    if (s->data.len > 0) {
        r->chunk.base = malloc(s->data.len);
        if (r->chunk.base == NULL) {
            r->has_chunk = false;
            r->nomem = RAFT_ERR_NOMEM;
            return;
        }
        memcpy(r->chunk.base, s->data.base, s->data.len);
    }
    r->rx_offset += s->data.len;
    if (s->last) {
        install(r, m);
    }
    /* The ack promises the chunk (and install) are durable. */
    reply(r, m, r->rx_active ? r->rx_offset : s->size, false, true);
}

void raft__recv_snapshot_resp(struct raft *r, const struct raft_message *m)
{
    struct raft__progress *p = raft__progress_get(r, m->from);
    uint64_t off = m->snapshot_resp.offset;
    if (p == NULL) {
        return;
    }
    p->recent_active = true;
    if (p->state != RAFT__SNAPSHOT ||
        m->snapshot_resp.index != p->snap_index ||
        p->snap_index != r->snap_index) {
        return;
    }
    if (m->snapshot_resp.reject) {
        /* Resend from the offset it wants (0: start over) — once: every
         * chunk of the window in flight may report the same gap. */
        off = off <= r->snap_size ? off : 0;
        if (p->snap_rewind == off + 1) {
            return;
        }
        p->snap_rewind = off + 1;
        p->snap_offset = off;
        raft__send_snapshot_chunk(r, p);
        return;
    }
    if (off > r->snap_size || (off <= p->snap_offset && off != r->snap_size)) {
        return; /* bogus, an old or a repeated acknowledgement */
    }
    p->snap_rewind = 0;
    if (off == r->snap_size) {
        raft__trace(r, "%llu installed snapshot %llu -> probe",
                    (unsigned long long)p->id,
                    (unsigned long long)p->snap_index);
        if (p->snap_index > p->match) {
            p->match = p->snap_index;
        }
        p->next = p->snap_index + 1;
        raft__progress_become_probe(r, p);
        if (raft__maybe_commit(r)) {
            r->flush_pending = true;
        }
        if (r->role == RAFT_LEADER) {
            raft__send_append(r, p, true);
        }
        return;
    }
    p->snap_offset = off;
    if (p->snap_next < off) {
        /* It holds more than this round sent (an earlier round's chunks). */
        p->snap_next = off;
        p->snap_last_sent = false;
    }
    send_window(r, p);
}

void raft__snapshot_tick(struct raft *r)
{
    unsigned i;
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        struct raft__progress *p = &r->prs[i];
        if (p->id != 0 && p->state == RAFT__SNAPSHOT &&
            r->now - p->snap_sent_at >= r->o.election_timeout) {
            raft__send_snapshot_chunk(r, p); /* lost: from the last ack */
        }
    }
}
