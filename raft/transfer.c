/* Leadership transfer (thesis §3.10): catch the target up, TimeoutNow. */
#include "core.h"

int raft_transfer(struct raft *r, raft_time now, raft_id target)
{
    const struct raft_config *c;
    struct raft__progress *p;
    if (r == NULL) {
        return RAFT_ERR_INVALID;
    }
    if (now > r->now) {
        r->now = now;
    }
    if (r->role != RAFT_LEADER) {
        return RAFT_ERR_NOT_LEADER;
    }
    c = &raft__confs_last(&r->confs)->c;
    if (target == 0) {
        unsigned i;
        raft_index best = 0;
        for (i = 0; i < RAFT_MAX_SERVERS; i++) {
            p = &r->prs[i];
            if (p->id != 0 && raft__is_voter(c, p->id) &&
                (target == 0 || p->match > best)) {
                target = p->id;
                best = p->match;
            }
        }
        if (target == 0) {
            return RAFT_ERR_NOT_FOUND;
        }
    }
    if (target == r->o.id) {
        return RAFT_ERR_INVALID;
    }
    if (!raft__is_voter(c, target)) {
        return RAFT_ERR_NOT_FOUND;
    }
    if (r->transfer_target != 0) {
        return r->transfer_target == target ? 0 : RAFT_ERR_TRANSFERRING;
    }
    p = raft__progress_get(r, target);
    if (p == NULL) {
        return RAFT_ERR_NOT_FOUND;
    }
    raft__trace(r, "transfer leadership to %llu", (unsigned long long)target);
    r->transfer_target = target;
    r->transfer_deadline = r->now + r->o.election_timeout;
    if (p->match == raft__log_last(&r->log)) {
        raft__transfer_check(r, p);
    } else {
        raft__send_append(r, p, true);
    }
    return r->nomem;
}

void raft__transfer_check(struct raft *r, struct raft__progress *p)
{
    struct raft_message *m;
    if (r->transfer_target != p->id || p->match != raft__log_last(&r->log)) {
        return;
    }
    /* Thesis §3.10: the target is caught up: tell it to start an election
     * now, without waiting for its timeout and ignoring leases. */
    raft__trace(r, "%llu caught up -> send timeout now",
                (unsigned long long)p->id);
    m = raft__send(r, RAFT_MSG_TIMEOUT_NOW, p->id, false);
    (void)m;
    /* The target will campaign ignoring vote leases (§3.10), whenever the
     * message arrives: no read lease for the rest of this term. */
    raft__lease_void(r, true, "timeout now sent");
}

void raft__transfer_abort(struct raft *r, const char *why)
{
    raft__trace(r, "leadership transfer to %llu ends: %s",
                (unsigned long long)r->transfer_target, why);
    r->transfer_target = 0;
}

void raft__recv_timeout_now(struct raft *r, const struct raft_message *m)
{
    if (r->role == RAFT_LEADER || m->term != r->term) {
        return;
    }
    if (!raft__can_campaign(r)) {
        return;
    }
    raft__campaign(r, false, true);
}
