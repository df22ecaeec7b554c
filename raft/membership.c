/* Membership changes one server at a time (thesis §4.1), with learners. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

static int find(const struct raft_config *c, raft_id id)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            return (int)i;
        }
    }
    return -1;
}

int raft_change(struct raft *r, raft_time now, enum raft_change_op op,
                raft_id id, const char *addr, raft_index *index)
{
    const struct raft__conf_ent *cur;
    struct raft_config c;
    struct raft_buf buf;
    struct raft__progress *p;
    int k, rv;
    if (r == NULL || id == 0) {
        return RAFT_ERR_INVALID;
    }
    if (now > r->now) {
        r->now = now;
    }
    if (r->role != RAFT_LEADER) {
        return RAFT_ERR_NOT_LEADER;
    }
    if (r->transfer_target != 0) {
        return RAFT_ERR_TRANSFERRING;
    }
    cur = raft__confs_last(&r->confs);
    /* Thesis §4.1: one change at a time. Also wait for this term's no-op:
     * a new leader must commit in its term before changing membership, or
     * two single-server changes of different terms could both commit with
     * disjoint majorities (Ongaro, raft-dev 2015). */
    if (cur->index > r->commit ||
        raft__log_term(&r->log, r->commit) != r->term) {
        return RAFT_ERR_BUSY;
    }
    c = cur->c;
    k = find(&c, id);
    switch (op) {
    case RAFT_ADD_LEARNER:
        if (k >= 0) {
            return RAFT_ERR_EXISTS;
        }
        if (c.n >= RAFT_MAX_SERVERS || addr == NULL ||
            strnlen(addr, RAFT_ADDR_MAX) >= RAFT_ADDR_MAX) {
            return RAFT_ERR_INVALID;
        }
        memset(&c.servers[c.n], 0, sizeof c.servers[c.n]);
        c.servers[c.n].id = id;
        c.servers[c.n].role = RAFT_LEARNER;
        strcpy(c.servers[c.n].addr, addr);
        c.n++;
        break;
    case RAFT_PROMOTE:
        if (k < 0) {
            return RAFT_ERR_NOT_FOUND;
        }
        if (c.servers[k].role == RAFT_VOTER) {
            return RAFT_ERR_EXISTS;
        }
        /* Thesis §4.2.1: a new voter must have caught up first, or the
         * cluster could stall while it copies the log. */
        p = raft__progress_get(r, id);
        if (p == NULL || p->match + r->o.learner_catchup < r->commit) {
            return RAFT_ERR_NOT_CAUGHT_UP;
        }
        c.servers[k].role = RAFT_VOTER;
        break;
    case RAFT_REMOVE:
        if (k < 0) {
            return RAFT_ERR_NOT_FOUND;
        }
        if (c.servers[k].role == RAFT_VOTER && raft__n_voters(&c) == 1) {
            return RAFT_ERR_INVALID;
        }
        memmove(&c.servers[k], &c.servers[k + 1],
                (c.n - (unsigned)k - 1) * sizeof c.servers[0]);
        c.n--;
        break;
    default:
        return RAFT_ERR_INVALID;
    }
    rv = raft_config_encode(&c, &buf);
    if (rv != 0) {
        return rv;
    }
    rv = raft__append_local(r, r->term, RAFT_ENTRY_CONFIG, buf.base, buf.len);
    free(buf.base);
    if (rv != 0) {
        return rv;
    }
    if (index != NULL) {
        *index = raft__log_last(&r->log);
    }
    raft__trace(r, "configuration change %d for %llu at index %llu", (int)op,
                (unsigned long long)id,
                (unsigned long long)raft__log_last(&r->log));
    raft__bcast_append(r, false);
    return r->nomem;
}

void raft__conf_changed(struct raft *r)
{
    if (r->role == RAFT_LEADER) {
        /* §6.4.1: acks counted under the old quorum prove nothing about
         * the new one (read_index.c). */
        raft__lease_void(r, false, "configuration changed");
        raft__progress_sync(r);
        /* The quorum changed: the commit index may move (e.g. a voter was
         * removed). */
        raft__maybe_commit(r);
    }
}

void raft__conf_commit_check(struct raft *r)
{
    const struct raft__conf_ent *cur = raft__confs_last(&r->confs);
    if (r->role != RAFT_LEADER || cur->index > r->commit ||
        raft__is_voter(&cur->c, r->o.id)) {
        return;
    }
    /* Thesis §4.2.2: a leader removed from the configuration steps down
     * once the change is committed. It hands over at once (§3.10) to the
     * most up-to-date voter rather than leave the cluster waiting for an
     * election timeout. */
    raft__trace(r, "removed from the configuration (committed at %llu) -> "
                   "step down",
                (unsigned long long)cur->index);
    {
        struct raft__progress *best = NULL;
        unsigned i;
        for (i = 0; i < RAFT_MAX_SERVERS; i++) {
            struct raft__progress *p = &r->prs[i];
            if (p->id != 0 && raft__is_voter(&cur->c, p->id) &&
                (best == NULL || p->match > best->match)) {
                best = p;
            }
        }
        if (best != NULL && best->match == raft__log_last(&r->log)) {
            raft__send(r, RAFT_MSG_TIMEOUT_NOW, best->id, false);
            raft__lease_void(r, true, "timeout now sent");
        }
    }
    raft__become_follower(r, r->term, 0);
}

const struct raft_config *raft_configuration(const struct raft *r)
{
    return &raft__confs_last(&r->confs)->c;
}

const struct raft_config *raft_committed_configuration(const struct raft *r)
{
    return &raft__confs_at(&r->confs, r->commit)->c;
}
