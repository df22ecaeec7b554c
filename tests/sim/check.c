/* The safety checker: Raft's properties (paper Fig. 3) over what was seen. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

void sim_check_init(struct sim_check *c)
{
    memset(c, 0, sizeof(*c));
}

void sim_check_close(struct sim_check *c)
{
    free(c->tl_keys);
    free(c->tl_vals);
    for (size_t i = 0; i < c->lm_cap; i++) {
        free(c->lm[i].v);
    }
    free(c->lm);
    free(c->cm);
    for (unsigned k = 0; k < SIM_KEYS; k++) {
        free(c->wr[k]);
    }
    memset(c, 0, sizeof(*c));
}

void sim_check_fail(struct sim_check *c, const char *fmt, ...)
{
    if (c->failed) {
        return; /* keep the first */
    }
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return p;
    }
    size_t n = *cap ? *cap : 256;
    while (n < need) {
        n *= 2;
    }
    p = realloc(p, n * size);
    if (p == NULL) {
        abort();
    }
    memset((char *)p + *cap * size, 0, (n - *cap) * size);
    *cap = n;
    return p;
}

/* ---- Election Safety (§5.2): at most one leader per term ---- */

static size_t tl_find(const struct sim_check *c, uint64_t term)
{
    size_t mask = c->tl_cap - 1;
    size_t i = (size_t)(term * 0x9e3779b97f4a7c15ULL) & mask;
    while (c->tl_keys[i] != 0 && c->tl_keys[i] != term) {
        i = (i + 1) & mask;
    }
    return i;
}

bool sim_check_leader(struct sim_check *c, raft_term term, raft_id id)
{
    if (term == 0) {
        sim_check_fail(c, "Election Safety: node %llu leads in term 0", U(id));
        return false;
    }
    if (c->tl_n * 2 >= c->tl_cap) {
        uint64_t *ok = c->tl_keys, *ov = c->tl_vals;
        size_t ocap = c->tl_cap;
        c->tl_cap = ocap ? ocap * 2 : 64;
        c->tl_keys = calloc(c->tl_cap, sizeof(uint64_t));
        c->tl_vals = calloc(c->tl_cap, sizeof(uint64_t));
        if (c->tl_keys == NULL || c->tl_vals == NULL) {
            abort();
        }
        for (size_t i = 0; i < ocap; i++) {
            if (ok[i] != 0) {
                size_t j = tl_find(c, ok[i]);
                c->tl_keys[j] = ok[i];
                c->tl_vals[j] = ov[i];
            }
        }
        free(ok);
        free(ov);
    }
    size_t i = tl_find(c, term);
    if (c->tl_keys[i] == 0) {
        c->tl_keys[i] = term;
        c->tl_vals[i] = id;
        c->tl_n++;
        return true;
    }
    if (c->tl_vals[i] != id) {
        sim_check_fail(c,
                       "Election Safety: two leaders in term %llu: "
                       "node %llu and node %llu",
                       U(term), U(c->tl_vals[i]), U(id));
        return false;
    }
    return true;
}

/* ---- Log Matching (§5.3): same index and term => same entry and same
 * prefix. By induction, it suffices that (index, term) always names the
 * same data and the same term at index - 1. ---- */

bool sim_check_log_entry(struct sim_check *c, raft_id id, raft_index index,
                         raft_term term, uint64_t hash, raft_term prev_term)
{
    if (index == 0 || index > SIM_MAX_INDEX) {
        sim_check_fail(c, "Log Matching: node %llu holds absurd index %llu",
                       U(id), U(index));
        return false;
    }
    c->lm = grow(c->lm, &c->lm_cap, (size_t)index + 1, sizeof(*c->lm));
    struct sim_lm_slot *s = &c->lm[index];
    for (unsigned i = 0; i < s->n; i++) {
        struct sim_lm_variant *v = &s->v[i];
        if (v->term != term) {
            continue;
        }
        if (v->hash != hash) {
            sim_check_fail(c,
                           "Log Matching: node %llu has entry %llu/%llu with "
                           "different content than another node",
                           U(id), U(index), U(term));
            return false;
        }
        if (prev_term != 0 && v->prev_term != 0 && v->prev_term != prev_term) {
            sim_check_fail(c,
                           "Log Matching: node %llu has entry %llu/%llu after "
                           "term %llu, another node after term %llu",
                           U(id), U(index), U(term), U(prev_term),
                           U(v->prev_term));
            return false;
        }
        if (v->prev_term == 0) {
            v->prev_term = prev_term;
        }
        return true;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 2;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (s->v == NULL) {
            abort();
        }
    }
    s->v[s->n++] = (struct sim_lm_variant){term, hash, prev_term};
    return true;
}

/* ---- Committed entries: once committed, (index, term, data) is fixed
 * forever (State Machine Safety, §5.4.3). ---- */

static bool record_commit(struct sim_check *c, raft_id id, raft_index index,
                          raft_term term, uint64_t hash, raft_term obs_term,
                          const char *what)
{
    if (index == 0 || index > SIM_MAX_INDEX) {
        sim_check_fail(c, "%s: node %llu at absurd index %llu", what, U(id),
                       U(index));
        return false;
    }
    c->cm = grow(c->cm, &c->cm_cap, (size_t)index + 1, sizeof(*c->cm));
    struct sim_commit_rec *r = &c->cm[index];
    if (!r->set) {
        r->set = true;
        r->cterm = obs_term;
        r->term = term;
        r->hash = hash;
        return true;
    }
    if (r->term != term || r->hash != hash) {
        sim_check_fail(c,
                       "%s: node %llu has %llu/%llu (hash %016llx) but "
                       "%llu/%llu (hash %016llx) was committed there",
                       what, U(id), U(index), U(term), U(hash), U(index),
                       U(r->term), U(r->hash));
        return false;
    }
    return true;
}

bool sim_check_committed(struct sim_check *c, raft_id id, raft_index index,
                         raft_term term, uint64_t hash, raft_term obs_term)
{
    if (index > c->commit_max) {
        c->commit_max = index;
    }
    return record_commit(c, id, index, term, hash, obs_term,
                         "committed entry changed");
}

bool sim_check_applied(struct sim_check *c, raft_id id, raft_index index,
                       raft_term term, uint64_t hash, int key, uint64_t value,
                       raft_term obs_term)
{
    if (!record_commit(c, id, index, term, hash, obs_term,
                       "State Machine Safety")) {
        return false;
    }
    if (index > c->commit_max) {
        c->commit_max = index;
    }
    if (c->cm[index].applied) {
        return true;
    }
    if (index != c->applied_max + 1) {
        sim_check_fail(c,
                       "State Machine Safety: node %llu applied %llu first, "
                       "but the highest applied index anywhere is %llu",
                       U(id), U(index), U(c->applied_max));
        return false;
    }
    c->cm[index].applied = true;
    c->applied_max = index;
    if (key >= 0 && key < SIM_KEYS) {
        unsigned k = (unsigned)key;
        c->wr[k] = grow(c->wr[k], &c->cap_wr[k], c->n_wr[k] + 1,
                        sizeof(*c->wr[k]));
        c->wr[k][c->n_wr[k]++] = (struct sim_write){index, value};
        c->n_commands++;
    }
    return true;
}

uint64_t sim_check_value_at(const struct sim_check *c, unsigned key,
                            raft_index index)
{
    const struct sim_write *w = c->wr[key];
    size_t lo = 0, hi = c->n_wr[key];
    while (lo < hi) { /* first write with w.index > index */
        size_t mid = (lo + hi) / 2;
        if (w[mid].index <= index) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? 0 : w[lo - 1].value;
}

/* Thesis §6.4: a read-index read must see every write committed before it
 * was invoked, and may see writes committed up to the moment it is served.
 * So its value must be the register's value at some index in
 * [commit known at invocation, index applied when served]. */
bool sim_check_read(struct sim_check *c, raft_id id, const struct sim_read *rd,
                    uint64_t value, raft_index hi)
{
    if (rd->index < rd->lo) {
        sim_check_fail(c,
                       "Linearizability: read %llu on node %llu got read "
                       "index %llu, but %llu was committed when it was "
                       "invoked (t=%llu)",
                       U(rd->ctx), U(id), U(rd->index), U(rd->lo),
                       U(rd->invoked));
        return false;
    }
    if (sim_check_value_at(c, rd->key, rd->lo) == value) {
        return true;
    }
    for (size_t i = 0; i < c->n_wr[rd->key]; i++) {
        const struct sim_write *w = &c->wr[rd->key][i];
        if (w->index > rd->lo && w->index <= hi && w->value == value) {
            return true;
        }
    }
    sim_check_fail(c,
                   "Linearizability: read %llu of key %u on node %llu "
                   "returned %llu, not the value at any index in "
                   "[%llu, %llu] (value at %llu is %llu)",
                   U(rd->ctx), rd->key, U(id), U(value), U(rd->lo), U(hi),
                   U(rd->lo), U(sim_check_value_at(c, rd->key, rd->lo)));
    return false;
}
