/* The leader's view of each follower: match/next, probe/replicate/snapshot
 * states and the window of appends in flight (etcd's Progress, Inflights). */
#include <string.h>

#include "core.h"

struct raft__progress *raft__progress_get(struct raft *r, raft_id id)
{
    unsigned i;
    if (id == 0) {
        return NULL;
    }
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        if (r->prs[i].id == id) {
            return &r->prs[i];
        }
    }
    return NULL;
}

static void init_slot(struct raft *r, unsigned i, raft_id id)
{
    struct raft__progress *p = &r->prs[i];
    memset(p, 0, sizeof *p);
    p->id = id;
    p->infl = r->infl_slab + (size_t)i * r->o.max_inflight;
    p->match = 0;
    p->next = raft__log_last(&r->log) + 1;
    p->state = RAFT__PROBE;
}

void raft__progress_sync(struct raft *r)
{
    const struct raft_config *c = &raft__confs_last(&r->confs)->c;
    unsigned i, k;
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        if (r->prs[i].id != 0 && raft_config_get(c, r->prs[i].id) == NULL) {
            r->prs[i].id = 0;
        }
    }
    for (k = 0; k < c->n; k++) {
        raft_id id = c->servers[k].id;
        if (id == r->o.id || raft__progress_get(r, id) != NULL) {
            continue;
        }
        for (i = 0; i < RAFT_MAX_SERVERS; i++) {
            if (r->prs[i].id == 0) {
                init_slot(r, i, id);
                break;
            }
        }
    }
}

void raft__progress_reset_all(struct raft *r)
{
    unsigned i;
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        r->prs[i].id = 0;
    }
    raft__progress_sync(r);
}

void raft__progress_become_probe(struct raft *r, struct raft__progress *p)
{
    (void)r;
    p->state = RAFT__PROBE;
    p->probe_sent = false;
    p->infl_head = p->infl_n = 0;
    if (p->next <= p->match) {
        p->next = p->match + 1;
    }
}

void raft__progress_become_replicate(struct raft *r, struct raft__progress *p)
{
    (void)r;
    p->state = RAFT__REPLICATE;
    p->probe_sent = false;
    p->infl_head = p->infl_n = 0;
    p->next = p->match + 1;
}

bool raft__progress_infl_full(const struct raft *r,
                              const struct raft__progress *p)
{
    return p->infl_n >= r->o.max_inflight;
}

void raft__progress_infl_add(struct raft *r, struct raft__progress *p,
                             raft_index last)
{
    unsigned cap = r->o.max_inflight;
    if (p->infl_n == cap) {
        return; /* callers check infl_full first */
    }
    p->infl[(p->infl_head + p->infl_n) % cap] = last;
    p->infl_n++;
}

void raft__progress_infl_free_to(struct raft *r, struct raft__progress *p,
                                 raft_index index)
{
    unsigned cap = r->o.max_inflight;
    while (p->infl_n > 0 && p->infl[p->infl_head] <= index) {
        p->infl_head = (p->infl_head + 1) % cap;
        p->infl_n--;
    }
}

size_t raft_progress(const struct raft *r, struct raft_progress_info *out,
                     size_t cap)
{
    size_t n = 0;
    unsigned i;
    if (r->role != RAFT_LEADER) {
        return 0;
    }
    for (i = 0; i < RAFT_MAX_SERVERS; i++) {
        const struct raft__progress *p = &r->prs[i];
        if (p->id == 0) {
            continue;
        }
        if (n < cap && out != NULL) {
            out[n].id = p->id;
            out[n].match = p->match;
            out[n].next = p->next;
            out[n].state = p->state;
            out[n].recent_active = p->recent_active;
        }
        n++;
    }
    return n;
}
