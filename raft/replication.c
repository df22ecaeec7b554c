/* Log replication (paper §5.3), commit (§5.4.2), proposals, persistence. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

int raft__append_local(struct raft *r, raft_term term, uint8_t type,
                       const void *data, size_t len)
{
    raft_index idx;
    int rv = raft__log_append(&r->log, term, type, data, len);
    if (rv != 0) {
        r->nomem = rv;
        return rv;
    }
    idx = raft__log_last(&r->log);
    if (r->persist_from == 0 || idx < r->persist_from) {
        r->persist_from = idx;
    }
    if (type == RAFT_ENTRY_CONFIG) {
        struct raft_config c;
        struct raft_buf b = {(void *)data, len};
        /* Thesis §4.1: a configuration takes effect as soon as it is in the
         * log, committed or not. */
        if (raft_config_decode(&b, &c) != 0) {
            raft__trace(r, "config entry %llu does not decode: ignored",
                        (unsigned long long)idx);
        } else if (raft__confs_push(&r->confs, idx, &c) != 0) {
            r->nomem = RAFT_ERR_NOMEM;
        } else {
            raft__conf_changed(r);
        }
    }
    return 0;
}

void raft__truncate_local(struct raft *r, raft_index from)
{
    raft__trace(r, "truncate log from %llu", (unsigned long long)from);
    raft__log_truncate(&r->log, from);
    if (r->persisted >= from) {
        r->persisted = from - 1;
    }
    raft__pend_clamp(r, from - 1);
    /* The driver deletes stored entries >= the first entry of the next
     * update's entries: make sure that update starts at `from`. */
    if (r->persist_from == 0 || r->persist_from > from) {
        r->persist_from = from;
    }
    /* Thesis §4.1: a configuration whose entry is removed reverts. */
    if (raft__confs_truncate(&r->confs, from)) {
        raft__conf_changed(r);
    }
}

bool raft__send_append(struct raft *r, struct raft__progress *p,
                       bool allow_empty)
{
    raft_index last = raft__log_last(&r->log), prev, i;
    size_t n = 0, bytes = 0;
    struct raft_message *m;

    if (p->state == RAFT__SNAPSHOT ||
        (p->state == RAFT__PROBE && p->probe_sent) ||
        (p->state == RAFT__REPLICATE && raft__progress_infl_full(r, p))) {
        return false;
    }
    if (p->next > last + 1) {
        p->next = last + 1;
    }
    prev = p->next - 1;
    if (prev < r->log.offset) {
        /* Paper §7: the entries it needs were compacted: send the snapshot. */
        if (r->snap_index == 0) {
            return false;
        }
        raft__trace(r, "%llu needs %llu which is compacted -> send snapshot",
                    (unsigned long long)p->id, (unsigned long long)p->next);
        p->state = RAFT__SNAPSHOT;
        p->snap_index = 0;
        raft__send_snapshot_chunk(r, p);
        return true;
    }
    /* Batching: at least one entry, then up to max_append_bytes. */
    for (i = p->next; i <= last; i++) {
        size_t len = raft__log_get(&r->log, i)->data.len;
        if (n > 0 && bytes + len > r->o.max_append_bytes) {
            break;
        }
        bytes += len;
        n++;
    }
    if (n == 0 && !allow_empty) {
        return false;
    }
    m = raft__send(r, RAFT_MSG_APPEND, p->id, false);
    if (m == NULL) {
        return false;
    }
    m->append.seq = raft__append_seq(r);
    m->append.prev_index = prev;
    m->append.prev_term = raft__log_term(&r->log, prev);
    m->append.commit = r->commit;
    p->sent_commit = r->commit;
    if (n > 0) {
        m->append.entries = calloc(n, sizeof *m->append.entries);
        if (m->append.entries == NULL) {
            r->nomem = RAFT_ERR_NOMEM;
            n = 0;
        }
        for (i = 0; i < n; i++) {
            if (raft__copy_entry(&m->append.entries[i],
                                 raft__log_get(&r->log, p->next + i)) != 0) {
                r->nomem = RAFT_ERR_NOMEM;
            }
        }
        m->append.n_entries = n;
    }
    if (p->state == RAFT__PROBE) {
        p->probe_sent = true;
    } else if (n > 0) {
        /* Pipelining: optimistically assume it arrives. */
        p->next += n;
        raft__progress_infl_add(r, p, p->next - 1);
    }
    return true;
}

void raft__bcast_append(struct raft *r, bool allow_empty)
{
    unsigned i;
    if (r->role != RAFT_LEADER) {
        return;
    }
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        struct raft__progress *p = &r->prs[i];
        if (p->id == 0) {
            continue;
        }
        if (raft__send_append(r, p, allow_empty)) {
            while (p->state == RAFT__REPLICATE &&
                   raft__send_append(r, p, false)) {
            }
        }
    }
}

/* Whether p should hear of the commit index even without new entries. */
static bool commit_news(const struct raft *r, const struct raft__progress *p)
{
    if (p->sent_commit >= r->commit) {
        return false;
    }
    return !r->o.lazy_commit || p->want_commit > p->sent_commit;
}

void raft__commit_wanted(struct raft *r, raft_id id, raft_index index)
{
    struct raft__progress *p;
    if (r->role != RAFT_LEADER || (p = raft__progress_get(r, id)) == NULL) {
        return;
    }
    if (index > p->want_commit) {
        p->want_commit = index;
    }
    if (r->o.lazy_commit && index <= r->commit && index > p->sent_commit) {
        /* Committed already: tell it with the next update. */
        r->flush_pending = true;
    }
}

void raft_commit_wanted(struct raft *r, raft_id id, raft_index index)
{
    raft__commit_wanted(r, id, index);
}

void raft__flush_appends(struct raft *r)
{
    unsigned i;
    if (r->role != RAFT_LEADER || !r->flush_pending) {
        r->flush_pending = false;
        return;
    }
    r->flush_pending = false;
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        struct raft__progress *p = &r->prs[i];
        if (p->id == 0) {
            continue;
        }
        /* An empty append only if the follower lacks the commit index (and,
         * with lazy_commit, waits on it). */
        if (raft__send_append(r, p, commit_news(r, p))) {
            while (p->state == RAFT__REPLICATE &&
                   raft__send_append(r, p, false)) {
            }
        }
    }
}

void raft__bcast_heartbeat(struct raft *r)
{
    unsigned i;
    if (r->role != RAFT_LEADER) {
        return;
    }
    /* Every broadcast takes a new seq: its acks confirm the reads that
     * arrived before it (§6.4) and renew the lease from its send time
     * (§6.4.1). */
    r->read_seq++;
    r->hb_sent[r->read_seq % RAFT__HB_RING] = r->now;
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        struct raft__progress *p = &r->prs[i];
        struct raft_message *m;
        if (p->id == 0) {
            continue;
        }
        m = raft__send(r, RAFT_MSG_HEARTBEAT, p->id, false);
        if (m == NULL) {
            return;
        }
        /* Never more than what the follower is known to match: its log may
         * still hold a divergent suffix. */
        m->heartbeat.commit = RAFT__MIN(r->commit, p->match);
        if (m->heartbeat.commit > p->sent_commit) {
            p->sent_commit = m->heartbeat.commit;
        }
        m->heartbeat.seq = r->read_seq;
    }
}

bool raft__maybe_commit(struct raft *r)
{
    const struct raft_config *c = &raft__confs_last(&r->confs)->c;
    uint64_t vals[RAFT_MAX_SERVERS];
    unsigned n = 0, i;
    raft_index q;
    if (r->role != RAFT_LEADER) {
        return false;
    }
    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        struct raft__progress *p;
        if (s->role != RAFT_VOTER) {
            continue;
        }
        if (s->id == r->o.id) {
            /* Thesis §10.2.1: the leader's own entries count once durable. */
            vals[n++] = r->persisted;
        } else {
            p = raft__progress_get(r, s->id);
            vals[n++] = p != NULL ? p->match : 0;
        }
    }
    if (n == 0) {
        return false;
    }
    q = raft__quorum_value(vals, n);
    /* Paper §5.4.2 / Fig. 8: only entries of the current term are committed
     * by counting replicas; earlier ones follow by Log Matching. */
    if (q <= r->commit || raft__log_term(&r->log, q) != r->term) {
        return false;
    }
    raft__trace(r, "commit index %llu -> %llu", (unsigned long long)r->commit,
                (unsigned long long)q);
    r->commit = q;
    raft__commit_advanced(r);
    return true;
}

void raft__commit_advanced(struct raft *r)
{
    raft__reads_progress(r);
    raft__conf_commit_check(r);
}

static void reply_append(struct raft *r, const struct raft_message *m,
                         bool reject, raft_index index, raft_index hint_index,
                         raft_term hint_term)
{
    /* An acceptance promises the entries are durable: after persistence. */
    struct raft_message *resp =
        raft__send(r, RAFT_MSG_APPEND_RESP, m->from, !reject);
    if (resp == NULL) {
        return;
    }
    resp->append_resp.reject = reject;
    resp->append_resp.index = index;
    resp->append_resp.hint_index = hint_index;
    resp->append_resp.hint_term = hint_term;
    /* Echoed whatever the answer: we accepted the sender as the leader of
     * this term when the append arrived (read_index.c). */
    resp->append_resp.seq = m->append.seq;
}

/* Entries must be contiguous after prev, of non-decreasing terms no higher
 * than the sender's, and of a known type. */
static bool entries_valid(const struct raft_message *m)
{
    raft_term t = m->append.prev_term;
    size_t i;
    if (m->append.n_entries > 0 && m->append.entries == NULL) {
        return false;
    }
    for (i = 0; i < m->append.n_entries; i++) {
        const struct raft_entry *e = &m->append.entries[i];
        if (e->index != m->append.prev_index + 1 + i || e->term < t ||
            e->term > m->term || e->term == 0 ||
            e->type < RAFT_ENTRY_COMMAND || e->type > RAFT_ENTRY_CONFIG ||
            (e->data.len > 0 && e->data.base == NULL)) {
            return false;
        }
        t = e->term;
    }
    return true;
}

void raft__recv_append(struct raft *r, const struct raft_message *m)
{
    raft_index prev = m->append.prev_index, last = raft__log_last(&r->log);
    size_t n = m->append.n_entries, skip = 0, i;
    raft_index last_new, commit;

    if (!entries_valid(m) || (prev == 0 && m->append.prev_term != 0)) {
        raft__trace(r, "malformed append from %llu ignored",
                    (unsigned long long)m->from);
        return;
    }
    if (prev < r->commit) {
        /* Entries up to commit are known to match any current leader. */
        skip = (size_t)RAFT__MIN((raft_index)n, r->commit - prev);
        if (skip == n) {
            reply_append(r, m, false, r->commit, 0, 0);
            return;
        }
    } else if (prev > last) {
        raft__trace(r, "append prev %llu beyond last %llu -> reject",
                    (unsigned long long)prev, (unsigned long long)last);
        reply_append(r, m, true, prev, last + 1, 0);
        return;
    } else if (raft__log_term(&r->log, prev) != m->append.prev_term) {
        raft_term t = raft__log_term(&r->log, prev);
        raft_index hint = prev > r->log.offset
                              ? raft__log_first_of_term(&r->log, prev)
                              : prev;
        raft__trace(r, "append prev %llu term %llu != %llu -> reject",
                    (unsigned long long)prev,
                    (unsigned long long)m->append.prev_term,
                    (unsigned long long)t);
        reply_append(r, m, true, prev, hint, t);
        return;
    }
    /* Paper §5.3: delete a conflicting suffix, append what is new. */
    for (i = skip; i < n; i++) {
        const struct raft_entry *e = &m->append.entries[i];
        /* Terms never decrease along a log: an entry below its
         * predecessor's term is bogus (possible when entries up to commit
         * were skipped unchecked). */
        if (e->term < raft__log_term(&r->log, e->index - 1)) {
            raft__trace(r, "append entry %llu term %llu below its "
                           "predecessor's: ignored",
                        (unsigned long long)e->index,
                        (unsigned long long)e->term);
            return;
        }
        if (e->index <= raft__log_last(&r->log)) {
            if (raft__log_term(&r->log, e->index) == e->term) {
                continue;
            }
            if (e->index <= r->commit) {
                raft__trace(r, "append conflicts with committed entry %llu",
                            (unsigned long long)e->index);
                return;
            }
            raft__truncate_local(r, e->index);
        }
        if (raft__append_local(r, e->term, e->type, e->data.base,
                               e->data.len) != 0) {
            return;
        }
    }
    last_new = prev + n;
    commit = RAFT__MIN(m->append.commit, last_new);
    if (commit > r->commit) {
        r->commit = commit;
        raft__commit_advanced(r);
    }
    reply_append(r, m, false, last_new, 0, 0);
}

/* Fast backtracking (thesis §5.3 optimisation, etcd's findConflictByTerm):
 * where the next append should start after a rejection. */
static raft_index backtrack(struct raft *r, const struct raft_message *m)
{
    raft_index rejected = m->append_resp.index, next;
    raft_term ht = m->append_resp.hint_term;
    if (ht == 0) {
        next = m->append_resp.hint_index; /* follower's last + 1 */
    } else {
        raft_index l = raft__log_last_of_term(&r->log, ht);
        next = l > 0 ? l + 1 : m->append_resp.hint_index;
    }
    if (next > rejected) {
        next = rejected;
    }
    if (next == 0) {
        next = 1;
    }
    return next;
}

void raft__recv_append_resp(struct raft *r, const struct raft_message *m)
{
    struct raft__progress *p = raft__progress_get(r, m->from);
    raft_index idx = m->append_resp.index;
    bool updated = false;
    if (p == NULL) {
        return;
    }
    p->recent_active = true;
    if (m->append_resp.reject) {
        raft__seq_acked(r, p, m->append_resp.seq);
        if ((p->state == RAFT__REPLICATE && idx <= p->match) ||
            (p->state == RAFT__PROBE && idx + 1 != p->next) ||
            p->state == RAFT__SNAPSHOT || idx <= p->match) {
            return; /* stale or duplicate */
        }
        p->next = RAFT__MAX(backtrack(r, m), p->match + 1);
        raft__trace(r, "%llu rejected %llu -> probe from %llu",
                    (unsigned long long)m->from, (unsigned long long)idx,
                    (unsigned long long)p->next);
        raft__progress_become_probe(r, p);
        raft__send_append(r, p, true);
        return;
    }
    if (idx > raft__log_last(&r->log)) {
        return; /* claims entries we never had */
    }
    raft__seq_acked(r, p, m->append_resp.seq);
    if (idx > p->match) {
        p->match = idx;
        updated = true;
    }
    if (p->next <= idx) {
        p->next = idx + 1;
    }
    if (p->state == RAFT__PROBE && idx >= p->match) {
        raft__progress_become_replicate(r, p);
    } else if (p->state == RAFT__SNAPSHOT && p->match >= p->snap_index) {
        /* It caught up from the log after all. */
        raft__progress_become_probe(r, p);
    } else if (p->state == RAFT__REPLICATE) {
        raft__progress_infl_free_to(r, p, idx);
    }
    if (updated && raft__maybe_commit(r)) {
        r->flush_pending = true;
    }
    if (r->role == RAFT_LEADER) {
        while (raft__send_append(r, p, false) &&
               p->state == RAFT__REPLICATE) {
        }
    }
    if (r->role == RAFT_LEADER) {
        raft__transfer_check(r, p);
    }
}

void raft__recv_heartbeat(struct raft *r, const struct raft_message *m)
{
    raft_index commit =
        RAFT__MIN(m->heartbeat.commit, raft__log_last(&r->log));
    struct raft_message *resp;
    if (commit > r->commit) {
        r->commit = commit;
        raft__commit_advanced(r);
    }
    resp = raft__send(r, RAFT_MSG_HEARTBEAT_RESP, m->from, false);
    if (resp != NULL) {
        resp->heartbeat_resp.seq = m->heartbeat.seq;
    }
}

void raft__recv_heartbeat_resp(struct raft *r, const struct raft_message *m)
{
    struct raft__progress *p = raft__progress_get(r, m->from);
    bool freed = false;
    if (p == NULL) {
        return;
    }
    p->recent_active = true;
    raft__seq_acked(r, p, m->heartbeat_resp.seq);
    if (r->role != RAFT_LEADER) {
        return;
    }
    if (p->state == RAFT__PROBE) {
        p->probe_sent = false;
    } else if (p->state == RAFT__REPLICATE && raft__progress_infl_full(r, p)) {
        /* Appends may have been lost: let one more through. */
        p->infl_head = (p->infl_head + 1) % r->o.max_inflight;
        p->infl_n--;
        freed = true;
    }
    /* Behind and no progress since the last heartbeat: appends were lost.
     * An append at next - 1 makes the follower reject and the leader
     * probe from where it really is. */
    if (p->match < raft__log_last(&r->log) &&
        (p->state == RAFT__PROBE || p->infl_n == 0 || freed ||
         p->hb_match == p->match)) {
        raft__send_append(r, p, true);
    }
    p->hb_match = p->match;
}

int raft_propose(struct raft *r, raft_time now, const struct raft_buf *cmd,
                 raft_index *index, raft_term *term)
{
    int rv;
    if (r == NULL || cmd == NULL || (cmd->len > 0 && cmd->base == NULL)) {
        return RAFT_ERR_INVALID;
    }
    if (now > r->now) {
        r->now = now;
    }
    if (r->role != RAFT_LEADER) {
        return RAFT_ERR_NOT_LEADER;
    }
    if (r->transfer_target != 0) {
        return RAFT_ERR_TRANSFERRING; /* thesis §3.10 */
    }
    if (cmd->len > ((size_t)1 << 30)) {
        return RAFT_ERR_TOO_BIG;
    }
    rv = raft__append_local(r, r->term, RAFT_ENTRY_COMMAND, cmd->base,
                            cmd->len);
    if (rv != 0) {
        return rv;
    }
    if (index != NULL) {
        *index = raft__log_last(&r->log);
    }
    if (term != NULL) {
        *term = r->term;
    }
    r->flush_pending = true;
    return 0;
}

void raft__pend_clamp(struct raft *r, raft_index upto)
{
    size_t k;
    for (k = 0; k < r->n_pend; k++) {
        if (r->pend[k].durable > upto) {
            r->pend[k].durable = upto;
        }
    }
}

int raft_persisted(struct raft *r, raft_time now, raft_index index,
                   raft_term term)
{
    raft_index durable;
    size_t k;
    if (r == NULL) {
        return RAFT_ERR_INVALID;
    }
    if (now > r->now) {
        r->now = now;
    }
    /* Match the report with the oldest update it covers (the driver reports
     * in order and may skip reports when it batches). Unknown reports are
     * stale or bogus: ignored. */
    for (k = 0; k < r->n_pend; k++) {
        const struct raft__pend *pd = &r->pend[k];
        if ((pd->index == index && pd->term == term) ||
            (pd->snap_index == index && pd->snap_term == term &&
             index != 0)) {
            break; /* an update with an install may be reported by it */
        }
    }
    if (k == r->n_pend) {
        return 0;
    }
    durable = RAFT__MIN(r->pend[k].durable, raft__log_last(&r->log));
    memmove(r->pend, r->pend + k + 1, (r->n_pend - k - 1) * sizeof *r->pend);
    r->n_pend -= k + 1;
    if (durable <= r->persisted) {
        return 0;
    }
    r->persisted = durable;
    if (r->role == RAFT_LEADER && raft__maybe_commit(r)) {
        r->flush_pending = true;
    }
    return r->nomem;
}
