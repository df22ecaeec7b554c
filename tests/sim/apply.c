/* The model state machine: apply, serve reads, restore and take snapshots. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

void sim_apply_push(struct sim_node *n, struct sim_apply_item *it)
{
    it->next = NULL;
    if (n->apply_tail != NULL) {
        n->apply_tail->next = it;
    } else {
        n->apply_head = it;
    }
    n->apply_tail = it;
}

/* ---- Apply (contract steps 4-5) ---- */

/* With a durable state machine, each apply is atomic with its record. */
static void save_sm(struct sim *s, struct sim_node *n)
{
    if (!s->p.durable_sm) {
        return;
    }
    struct sim_store *st = &n->store;
    st->has_sm = true;
    memcpy(st->sm_regs, n->regs, sizeof(st->sm_regs));
    st->sm_applied = n->applied;
    st->sm_term = n->applied_term;
    st->sm_config = n->sm_config;
}

static void serve_read(struct sim *s, struct sim_node *n,
                       const struct sim_read *rd)
{
    uint64_t v = n->regs[rd->key];
    sim_tracef(s, "n%llu read %llu key %u = %llu (read index %llu, applied "
               "%llu, lo %llu)", U(n->id), U(rd->ctx), rd->key, U(v),
               U(rd->index), U(n->applied), U(rd->lo));
    s->n_reads_ok++;
    sim_check_read(&s->chk, n->id, rd, v, n->applied);
}

static void serve_waiting_reads(struct sim *s, struct sim_node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_reads; i++) {
        if (n->reads[i].index <= n->applied) {
            serve_read(s, n, &n->reads[i]);
        } else {
            n->reads[k++] = n->reads[i];
        }
    }
    n->n_reads = k;
}

static void apply_entry(struct sim *s, struct sim_node *n,
                        const struct raft_entry *e)
{
    if (e->index != n->applied + 1) {
        sim_fail(s, "n%llu: applies entry %llu after %llu", U(n->id),
                 U(e->index), U(n->applied));
        return;
    }
    if (e->index > raft_commit_index(n->r)) {
        sim_fail(s, "n%llu: applies %llu beyond its commit index %llu",
                 U(n->id), U(e->index), U(raft_commit_index(n->r)));
        return;
    }
    if (!sim_store_holds(&n->store, e->index, e->term)) {
        sim_fail(s, "n%llu: applies %llu/%llu, which is not durable locally "
                 "(contract step 4)", U(n->id), U(e->index), U(e->term));
        return;
    }
    int key = -1;
    uint64_t value = 0;
    if (e->type == RAFT_ENTRY_COMMAND) {
        char cmd[64];
        size_t len = e->data.len < sizeof(cmd) - 1 ? e->data.len
                                                   : sizeof(cmd) - 1;
        memcpy(cmd, e->data.base, len);
        cmd[len] = '\0';
        unsigned k;
        unsigned long long v;
        if (sscanf(cmd, "set %u %llu", &k, &v) != 2 || k >= SIM_KEYS) {
            sim_fail(s, "n%llu: applies a command it never proposed at %llu",
                     U(n->id), U(e->index));
            return;
        }
        key = (int)k;
        value = v;
        n->regs[k] = v;
    } else if (e->type == RAFT_ENTRY_CONFIG) {
        struct raft_config c;
        if (raft_config_decode(&e->data, &c) != 0) {
            sim_fail(s, "n%llu: committed config entry %llu does not decode",
                     U(n->id), U(e->index));
            return;
        }
        n->sm_config = c;
    } else if (e->type != RAFT_ENTRY_NOOP) {
        sim_fail(s, "n%llu: committed entry %llu has type %u", U(n->id),
                 U(e->index), e->type);
        return;
    }
    n->applied = e->index;
    n->applied_term = e->term;
    save_sm(s, n);
    sim_check_applied(&s->chk, n->id, e->index, e->term, sim_entry_hash(e),
                      key, value, raft_current_term(n->r));
}

static void restore(struct sim *s, struct sim_node *n,
                    const struct raft_snapshot_meta *m)
{
    struct sim_store *st = &n->store;
    raft_index idx;
    uint64_t regs[SIM_KEYS];
    if (st->snap_index != m->index ||
        sim_snap_decode(st->snap, st->snap_len, regs, &idx) != 0 ||
        idx != m->index) {
        sim_fail(s, "n%llu: installed snapshot %llu does not decode",
                 U(n->id), U(m->index));
        return;
    }
    if (m->index < n->applied) {
        sim_fail(s, "n%llu: installs snapshot %llu behind its applied %llu",
                 U(n->id), U(m->index), U(n->applied));
        return;
    }
    if (m->index > s->chk.applied_max) {
        sim_fail(s, "n%llu: snapshot %llu beyond anything applied (%llu)",
                 U(n->id), U(m->index), U(s->chk.applied_max));
        return;
    }
    for (unsigned k = 0; k < SIM_KEYS; k++) {
        if (regs[k] != sim_check_value_at(&s->chk, k, m->index)) {
            sim_fail(s, "State Machine Safety: n%llu installs snapshot "
                     "%llu whose key %u differs from the model", U(n->id),
                     U(m->index), k);
            return;
        }
    }
    memcpy(n->regs, regs, sizeof(regs));
    n->applied = m->index;
    n->applied_term = m->term;
    n->sm_config = m->config;
    save_sm(s, n);
    s->n_installs++;
    sim_tracef(s, "n%llu restored snapshot %llu/%llu", U(n->id), U(m->index),
               U(m->term));
}

/* The application's snapshot policy: every K applied entries. */
static void maybe_snapshot(struct sim *s, struct sim_node *n)
{
    struct sim_store *st = &n->store;
    if (n->apply_head != NULL || n->applied < st->snap_index + s->p.snapshot_every) {
        return;
    }
    uint8_t *bytes = malloc(SIM_SNAP_LEN);
    if (bytes == NULL) {
        abort();
    }
    sim_snap_encode(n->regs, n->applied, bytes);
    sim_store_set_snapshot(st, n->applied, n->applied_term, &n->sm_config,
                           bytes, SIM_SNAP_LEN);
    s->n_snapshots++;
    int rv = raft_snapshot_taken(n->r, n->applied, SIM_SNAP_LEN);
    sim_tracef(s, "n%llu took snapshot %llu/%llu: %s", U(n->id),
               U(n->applied), U(n->applied_term),
               rv ? raft_strerror(rv) : "ok");
}

void sim_apply_drain(struct sim *s, struct sim_node *n)
{
    while (n->apply_head != NULL && !s->chk.failed) {
        struct sim_apply_item *it = n->apply_head;
        if (it->kind == ITEM_RESTORE && !it->ready) {
            break;
        }
        n->apply_head = it->next;
        if (n->apply_head == NULL) {
            n->apply_tail = NULL;
        }
        if (it->kind == ITEM_ENTRY) {
            apply_entry(s, n, &it->e);
            serve_waiting_reads(s, n);
        } else if (it->kind == ITEM_RESTORE) {
            restore(s, n, &it->meta);
            serve_waiting_reads(s, n);
        } else if (it->rd.index <= n->applied) {
            serve_read(s, n, &it->rd);
        } else {
            if (n->n_reads == n->cap_reads) {
                n->cap_reads = n->cap_reads ? 2 * n->cap_reads : 8;
                n->reads = realloc(n->reads, n->cap_reads * sizeof(*n->reads));
                if (n->reads == NULL) {
                    abort();
                }
            }
            n->reads[n->n_reads++] = it->rd;
        }
        free(it->e.data.base);
        free(it);
    }
    if (!s->chk.failed) {
        maybe_snapshot(s, n);
    }
}

