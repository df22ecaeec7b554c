/* The node driver: runs a Raft core on a libuv loop (see node.h). */
#include "node.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

/* Retries of operations waiting for a leader happen at most this often. */
#define RETRY_MS 50
/* The sweep timer that expires operations. */
#define SWEEP_MS 20

void node__log(struct raft_node *n, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (n->o.log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    n->o.log(n->o.log_data, level, line);
}

/* The time every input to the core carries. Read fresh, not the loop time
 * cached when this iteration started: lease reads need it (raft.h, "Time
 * is ..."): a node stopped (SIGSTOP, a stalled disk) between the start of
 * an iteration and a read must not judge its lease by the time before the
 * stall, nor a follower date a heartbeat from it. uv_update_time reads
 * the monotonic clock (libuv's fast clock: no syscall, a resolution of a
 * few ms at worst, well inside the lease's margin). */
static raft_time now_ms(struct raft_node *n)
{
    uv_update_time(n->loop);
    return uv_now(n->loop);
}

/* Inputs mark the node dirty; the prepare handle flushes once per loop
 * iteration, before the loop blocks. */
static void mark_dirty(struct raft_node *n)
{
    n->dirty = true;
}

static void complete_op(struct raft_node *n, struct node_op *op, int status,
                        const void *result)
{
    node__op_unlink(n, op);
    switch (op->kind) {
    case NODE_OP_PROPOSE:
        if (op->propose_cb != NULL) {
            op->propose_cb(op->data, status, op->index, result);
        }
        break;
    case NODE_OP_READ:
        if (op->read_cb != NULL) {
            op->read_cb(op->data, status);
        }
        break;
    default:
        if (op->done_cb != NULL) {
            op->done_cb(op->data, status);
        }
        break;
    }
    free(op->cmd.base);
    free(op);
}

/* The status an operation fails with when it gives up: -EIO if it surely
 * never reached a log, -ETIMEDOUT if it may still be applied. */
static int give_up_status(const struct node_op *op)
{
    return op->state == NODE_OP_WAITING ? -EIO : -ETIMEDOUT;
}

/* Operations: submission on the leader or forwarding to it. */

static int encode_envelope(struct raft_node *n, struct node_op *op,
                           const struct raft_buf *cmd)
{
    size_t len = RAFT_NODE_ENVELOPE + cmd->len;
    uint8_t *p = malloc(len);
    uint64_t v;
    int i;
    if (p == NULL) {
        return -ENOMEM;
    }
    v = n->id;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    v = op->req_id;
    for (i = 0; i < 8; i++) {
        p[8 + i] = (uint8_t)(v >> (8 * i));
    }
    if (cmd->len > 0) {
        memcpy(p + RAFT_NODE_ENVELOPE, cmd->base, cmd->len);
    }
    op->cmd.base = p;
    op->cmd.len = len;
    return 0;
}

static bool decode_envelope(const struct raft_entry *e, raft_id *origin,
                            uint64_t *req_id)
{
    const uint8_t *p = e->data.base;
    uint64_t a = 0;
    uint64_t b = 0;
    int i;
    if (e->type != RAFT_ENTRY_COMMAND || e->data.len < RAFT_NODE_ENVELOPE) {
        return false;
    }
    for (i = 0; i < 8; i++) {
        a |= (uint64_t)p[i] << (8 * i);
        b |= (uint64_t)p[8 + i] << (8 * i);
    }
    *origin = a;
    *req_id = b;
    return true;
}

/* Errors after which an operation may simply be tried again: the request
 * surely did not enter any log. */
static bool retryable(int rv)
{
    return rv == RAFT_ERR_NOT_LEADER || rv == RAFT_ERR_TRANSFERRING ||
           rv == RAFT_ERR_LEADERSHIP_LOST || rv == RAFT_ERR_BUSY;
}

/* Tries to move one waiting operation forward: submit it on the leader or
 * forward it to the leader. */
static void try_submit(struct raft_node *n, struct node_op *op)
{
    raft_id leader = raft_leader(n->raft);
    raft_time now = now_ms(n);
    int rv;

    if (op->state != NODE_OP_WAITING) {
        return;
    }
    op->last_try = now;

    if (op->kind == NODE_OP_READ) {
        /* Reads join the next read round (one read index for all). */
        op->state = NODE_OP_QUEUED;
        n->reads_unsent++;
        mark_dirty(n);
        return;
    }
    if (op->kind == NODE_OP_SNAPSHOT) {
        return; /* handled by the job queue */
    }

    if (raft_role(n->raft) == RAFT_LEADER) {
        switch (op->kind) {
        case NODE_OP_PROPOSE:
            rv = raft_propose(n->raft, now, &op->cmd, &op->index, &op->term);
            break;
        case NODE_OP_CHANGE:
            rv = raft_change(n->raft, now, op->change_op, op->target,
                             op->addr, &op->index);
            op->term = raft_current_term(n->raft);
            break;
        case NODE_OP_TRANSFER:
            rv = raft_transfer(n->raft, now, op->target);
            op->old_leader = n->id;
            break;
        default:
            rv = RAFT_ERR_INVALID;
            break;
        }
        mark_dirty(n);
        if (rv == 0) {
            op->state = NODE_OP_APPENDED;
            return;
        }
        if (!retryable(rv)) {
            complete_op(n, op, rv, NULL);
        }
        return;
    }

    if (leader == 0 || leader == n->id) {
        return; /* wait for a leader; retried by the sweep */
    }

    {
        struct raft_node_forward f;
        memset(&f, 0, sizeof f);
        f.req_id = op->req_id;
        switch (op->kind) {
        case NODE_OP_PROPOSE:
            f.kind = RAFT_NODE_FWD_PROPOSE;
            f.payload = op->cmd;
            break;
        case NODE_OP_CHANGE:
            f.kind = RAFT_NODE_FWD_CHANGE;
            f.op = (uint8_t)op->change_op;
            f.id = op->target;
            snprintf(f.addr, sizeof f.addr, "%s", op->addr);
            break;
        case NODE_OP_TRANSFER:
            f.kind = RAFT_NODE_FWD_TRANSFER;
            f.id = op->target;
            op->old_leader = leader;
            break;
        default:
            return;
        }
        rv = n->tr.forward(n->tr.data, leader, &f);
        if (rv == 0) {
            op->state = NODE_OP_FORWARDED;
            op->forwarded_to = leader;
        }
    }
}

static struct node_op *new_op(struct raft_node *n, enum node_op_kind kind,
                              void *data)
{
    struct node_op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        return NULL;
    }
    op->kind = kind;
    op->data = data;
    op->req_id = ++n->next_req_id;
    op->deadline = now_ms(n) + n->o.op_timeout_ms;
    op->state = NODE_OP_WAITING;
    node__op_link(n, op);
    return op;
}

/* Completion must never happen inside the caller's call: operations that
 * fail at once are completed from the next sweep. */
static void fail_soon(struct raft_node *n, struct node_op *op, int status)
{
    op->state = NODE_OP_FAILED;
    op->fail_status = status;
    op->deadline = 0;
    (void)n;
}

void raft_node_propose(struct raft_node *n, const struct raft_buf *cmd,
                       raft_node_propose_cb cb, void *data)
{
    struct node_op *op = new_op(n, NODE_OP_PROPOSE, data);
    if (op == NULL) {
        cb(data, -ENOMEM, 0, NULL);
        return;
    }
    op->propose_cb = cb;
    if (n->closing) {
        fail_soon(n, op, RAFT_ERR_SHUTDOWN);
        return;
    }
    if (encode_envelope(n, op, cmd) != 0) {
        fail_soon(n, op, -ENOMEM);
        return;
    }
    try_submit(n, op);
}

static void read_op(struct raft_node *n, raft_node_read_cb cb, void *data,
                    bool lease)
{
    struct node_op *op = new_op(n, NODE_OP_READ, data);
    if (op == NULL) {
        cb(data, -ENOMEM);
        return;
    }
    op->read_cb = cb;
    op->lease = lease;
    if (n->closing) {
        fail_soon(n, op, RAFT_ERR_SHUTDOWN);
        return;
    }
    try_submit(n, op);
}

void raft_node_read(struct raft_node *n, raft_node_read_cb cb, void *data)
{
    read_op(n, cb, data, false);
}

void raft_node_read_lease(struct raft_node *n, raft_node_read_cb cb,
                          void *data)
{
    read_op(n, cb, data, true);
}

void raft_node_change(struct raft_node *n, enum raft_change_op op_kind,
                      raft_id id, const char *addr, raft_node_done_cb cb,
                      void *data)
{
    struct node_op *op = new_op(n, NODE_OP_CHANGE, data);
    if (op == NULL) {
        cb(data, -ENOMEM);
        return;
    }
    op->done_cb = cb;
    op->change_op = op_kind;
    op->target = id;
    if (addr != NULL) {
        snprintf(op->addr, sizeof op->addr, "%s", addr);
    }
    if (n->closing) {
        fail_soon(n, op, RAFT_ERR_SHUTDOWN);
        return;
    }
    try_submit(n, op);
}

void raft_node_transfer(struct raft_node *n, raft_id target,
                        raft_node_done_cb cb, void *data)
{
    struct node_op *op = new_op(n, NODE_OP_TRANSFER, data);
    if (op == NULL) {
        cb(data, -ENOMEM);
        return;
    }
    op->done_cb = cb;
    op->target = target;
    if (n->closing) {
        fail_soon(n, op, RAFT_ERR_SHUTDOWN);
        return;
    }
    try_submit(n, op);
}

void raft_node_snapshot(struct raft_node *n, raft_node_done_cb cb, void *data)
{
    struct node_op *op = new_op(n, NODE_OP_SNAPSHOT, data);
    if (op == NULL) {
        cb(data, -ENOMEM);
        return;
    }
    op->done_cb = cb;
    if (n->closing) {
        fail_soon(n, op, RAFT_ERR_SHUTDOWN);
        return;
    }
    op->state = NODE_OP_APPENDED;
    n->snapshot_wanted = true;
    node__jobs_kick(n);
}

/* Forwards from followers, answered by the leader's driver. */

static void answer(struct raft_node *n, raft_id to, uint64_t req_id, int status,
                   raft_index index, raft_term term)
{
    struct raft_node_forward r;
    memset(&r, 0, sizeof r);
    r.kind = RAFT_NODE_FWD_RESULT;
    r.req_id = req_id;
    r.status = status;
    r.index = index;
    r.term = term;
    n->tr.forward(n->tr.data, to, &r);
}

static void on_result(struct raft_node *n, raft_id from,
                      const struct raft_node_forward *f)
{
    struct node_op *op = node__op_find(n, f->req_id);
    if (op == NULL || op->state != NODE_OP_FORWARDED ||
        op->forwarded_to != from) {
        return; /* completed already, or a stale answer */
    }
    if (f->status != 0) {
        if (retryable(f->status)) {
            op->state = NODE_OP_WAITING; /* surely not appended: retry */
            return;
        }
        complete_op(n, op, f->status, NULL);
        return;
    }
    op->state = NODE_OP_APPENDED;
    op->index = f->index;
    op->term = f->term;
    if (op->kind == NODE_OP_PROPOSE || op->kind == NODE_OP_CHANGE) {
        /* The apply may have overtaken this answer. */
        node__check_applied_op(n, op);
    }
}

void raft_node_receive_forward(struct raft_node *n, raft_id from,
                               const struct raft_node_forward *f)
{
    raft_time now = now_ms(n);
    raft_index index = 0;
    raft_term term = 0;
    int rv;

    if (n->closing && f->kind != RAFT_NODE_FWD_RESULT) {
        answer(n, from, f->req_id, RAFT_ERR_SHUTDOWN, 0, 0);
        return;
    }
    switch (f->kind) {
    case RAFT_NODE_FWD_PROPOSE:
        rv = raft_propose(n->raft, now, &f->payload, &index, &term);
        if (rv == 0) {
            /* The proposer answers its caller once it applied the entry. */
            raft_commit_wanted(n->raft, from, index);
        }
        answer(n, from, f->req_id, rv, index, term);
        break;
    case RAFT_NODE_FWD_CHANGE:
        if (f->op < RAFT_ADD_LEARNER || f->op > RAFT_REMOVE) {
            answer(n, from, f->req_id, RAFT_ERR_INVALID, 0, 0);
            break;
        }
        rv = raft_change(n->raft, now, (enum raft_change_op)f->op, f->id,
                         f->addr, &index);
        if (rv == 0) {
            raft_commit_wanted(n->raft, from, index);
        }
        answer(n, from, f->req_id, rv, index, raft_current_term(n->raft));
        break;
    case RAFT_NODE_FWD_TRANSFER:
        rv = raft_transfer(n->raft, now, f->id);
        answer(n, from, f->req_id, rv, 0, 0);
        break;
    case RAFT_NODE_FWD_RESULT:
        on_result(n, from, f);
        break;
    default:
        break;
    }
    mark_dirty(n);
}

void raft_node_receive(struct raft_node *n, const struct raft_message *m)
{
    if (n->closed) {
        return;
    }
    if (m->to != n->id) {
        return;
    }
    if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
         m->type == RAFT_MSG_SNAPSHOT) &&
        m->term >= raft_current_term(n->raft)) {
        n->last_leader_contact = now_ms(n);
    }
    raft_step(n->raft, now_ms(n), m);
    mark_dirty(n);
}

/* Called for every committed entry once it is applied (in index order). */
void node__applied_entry(struct raft_node *n, const struct raft_entry *e,
                         int status, const void *result)
{
    raft_id origin;
    uint64_t req_id;
    struct node_op *op;

    node__term_ring_put(n, e->index, e->term);
    if (decode_envelope(e, &origin, &req_id) && origin == n->id) {
        op = node__op_find(n, req_id);
        if (op != NULL && op->kind == NODE_OP_PROPOSE) {
            op->index = e->index;
            complete_op(n, op, status, result);
        }
    }
}

/* After `applied` advanced: finish operations that are now decided. */
void node__after_apply(struct raft_node *n)
{
    struct node_op *op;
    struct node_op *next;
    for (op = n->ops_head; op != NULL; op = next) {
        next = op->next;
        node__check_applied_op(n, op);
    }
}

void node__check_applied_op(struct raft_node *n, struct node_op *op)
{
    raft_term t;
    if (op->state == NODE_OP_READY && op->kind == NODE_OP_READ &&
        op->index <= n->applied) {
        complete_op(n, op, 0, NULL);
        return;
    }
    if (op->state != NODE_OP_APPENDED || op->index == 0 ||
        op->index > n->applied) {
        return;
    }
    switch (op->kind) {
    case NODE_OP_PROPOSE:
        /* Applied past its index without the entry being ours: it was
         * overwritten and will never apply. */
        complete_op(n, op, -EIO, NULL);
        break;
    case NODE_OP_CHANGE:
        t = node__term_ring_get(n, op->index);
        if (t == 0) {
            complete_op(n, op, -ETIMEDOUT, NULL); /* cannot tell any more */
        } else {
            complete_op(n, op, t == op->term ? 0 : -EIO, NULL);
        }
        break;
    default:
        break;
    }
}

/* Leader changes: transfers finish, waiting operations retry. */
static void on_soft_state(struct raft_node *n, const struct raft_update *u)
{
    struct node_op *op;
    struct node_op *next;
    bool leader_changed = u->leader != n->last_leader;

    if (leader_changed) {
        node__log(n, 2, "leader is now %llu (term %llu, role %d)",
                  (unsigned long long)u->leader, (unsigned long long)u->term,
                  (int)u->role);
    }
    n->last_leader = u->leader;
    if (!leader_changed) {
        return;
    }
    for (op = n->ops_head; op != NULL; op = next) {
        next = op->next;
        if (op->kind == NODE_OP_TRANSFER && op->state != NODE_OP_WAITING &&
            u->leader != 0 && u->leader != op->old_leader) {
            complete_op(n, op, 0, NULL);
            continue;
        }
        if (op->state == NODE_OP_WAITING) {
            try_submit(n, op);
        } else if (op->state == NODE_OP_FORWARDED &&
                   op->kind == NODE_OP_READ) {
            /* unused: reads go through the core */
        }
    }
}

/* Read rounds: every read queued since the last flush shares one ctx, one
 * for those that may be answered from the lease, one for those that need
 * the round. */
static void start_read_round(struct raft_node *n)
{
    struct node_op *op;
    uint64_t ctx[2] = {0, 0}; /* [lease] */
    if (n->reads_unsent == 0) {
        return;
    }
    for (op = n->ops_head; op != NULL; op = op->next) {
        if (op->kind == NODE_OP_READ && op->state == NODE_OP_QUEUED) {
            if (ctx[op->lease] == 0) {
                ctx[op->lease] = ++n->next_read_ctx;
            }
            op->state = NODE_OP_FORWARDED;
            op->read_ctx = ctx[op->lease];
        }
    }
    n->reads_unsent = 0;
    if (ctx[0] != 0) {
        raft_read_index_confirm(n->raft, now_ms(n), ctx[0]);
    }
    if (ctx[1] != 0) {
        raft_read_index(n->raft, now_ms(n), ctx[1]);
    }
}

static void on_read_states(struct raft_node *n, const struct raft_update *u)
{
    size_t i;
    struct node_op *op;
    struct node_op *next;
    for (i = 0; i < u->n_reads; i++) {
        const struct raft_read_state *rs = &u->reads[i];
        for (op = n->ops_head; op != NULL; op = next) {
            next = op->next;
            if (op->kind != NODE_OP_READ || op->state != NODE_OP_FORWARDED ||
                op->read_ctx != rs->ctx) {
                continue;
            }
            if (rs->status != 0) {
                op->state = NODE_OP_WAITING; /* retried by the sweep */
                continue;
            }
            op->state = NODE_OP_READY;
            op->index = rs->index;
            if (op->index <= n->applied) {
                complete_op(n, op, 0, NULL);
            }
        }
    }
}

/* Fills the data of snapshot chunks the core asked to send. */
static bool fill_snapshot_chunk(struct raft_node *n, struct raft_message *m)
{
    void *buf;
    int rv;
    if (m->type != RAFT_MSG_SNAPSHOT || m->snapshot.chunk_len == 0 ||
        m->snapshot.data.base != NULL) {
        return true;
    }
    buf = malloc(m->snapshot.chunk_len);
    if (buf == NULL) {
        return false;
    }
    rv = n->st.snapshot_read(n->st.data, m->snapshot.index,
                             m->snapshot.offset, buf, m->snapshot.chunk_len);
    if (rv < 0) {
        free(buf);
        return false; /* that snapshot is gone: the core will retry */
    }
    m->snapshot.data.base = buf;
    m->snapshot.data.len = (size_t)rv;
    return true;
}

static void send_messages(struct raft_node *n, struct raft_message *msgs,
                          size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) {
        if (!fill_snapshot_chunk(n, &msgs[i])) {
            continue;
        }
        n->tr.send(n->tr.data, &msgs[i]);
    }
}

void node__send_messages(struct raft_node *n, struct raft_message *msgs,
                         size_t count)
{
    send_messages(n, msgs, count);
}

static void arm_timer(struct raft_node *n, raft_time next);

/* Collects the core's update and carries out the contract (see raft.h). */
static void flush(struct raft_node *n)
{
    struct raft_update u;
    bool any;
    int guard;

    for (guard = 0; guard < 16; guard++) {
        n->dirty = false;
        start_read_round(n);
        any = raft_ready(n->raft, &u);
        on_soft_state(n, &u);
        if (any) {
            send_messages(n, u.messages, u.n_messages);
            on_read_states(n, &u);
            node__batch_take(n, &u); /* steals what must be persisted */
        }
        arm_timer(n, u.next_timeout);
        raft_update_close(&u);
        if (!n->dirty) {
            /* A write done inline (storage.inline_apply) may answer
             * operations whose callbacks feed the core: collect that now,
             * not after the loop's next wake-up. */
            node__jobs_kick(n);
            if (!n->dirty) {
                return;
            }
        }
    }
    node__jobs_kick(n);
}

static void on_prepare(uv_prepare_t *h)
{
    struct raft_node *n = h->data;
    if (n->dirty && !n->closed) {
        flush(n);
    }
}

static void on_tick(uv_timer_t *h)
{
    struct raft_node *n = h->data;
    raft_tick(n->raft, now_ms(n));
    flush(n);
}

static void arm_timer(struct raft_node *n, raft_time next)
{
    raft_time now = now_ms(n);
    uint64_t delay = next > now ? next - now : 0;
    if (n->closed) {
        return;
    }
    if (next == n->timer_due && uv_is_active((uv_handle_t *)&n->timer)) {
        return;
    }
    n->timer_due = next;
    uv_timer_start(&n->timer, on_tick, delay, 0);
}

/* Expires operations and retries the waiting ones. */
static void on_sweep(uv_timer_t *h)
{
    struct raft_node *n = h->data;
    raft_time now = now_ms(n);
    struct node_op *op;
    struct node_op *next;

    for (op = n->ops_head; op != NULL; op = next) {
        next = op->next;
        if (op->state == NODE_OP_FAILED) {
            complete_op(n, op, op->fail_status, NULL);
            continue;
        }
        if (op->kind == NODE_OP_SNAPSHOT) {
            continue; /* completes with its job */
        }
        if (now >= op->deadline) {
            complete_op(n, op, give_up_status(op), NULL);
            continue;
        }
        if (op->state == NODE_OP_WAITING && now - op->last_try >= RETRY_MS) {
            try_submit(n, op);
        }
    }
    if (n->dirty) {
        flush(n);
    }
    node__jobs_kick(n); /* storage retries after a failed write */
}

bool raft_node_quorum_ok(const struct raft_node *n)
{
    struct raft_progress_info info[RAFT_MAX_SERVERS];
    const struct raft_config *c;
    size_t i;
    size_t count;
    unsigned voters = 0;
    unsigned active = 0;

    if (raft_role(n->raft) == RAFT_LEADER) {
        c = raft_configuration(n->raft);
        count = raft_progress(n->raft, info, RAFT_MAX_SERVERS);
        for (i = 0; i < c->n; i++) {
            if (c->servers[i].role == RAFT_VOTER) {
                voters++;
                if (c->servers[i].id == n->id) {
                    active++;
                }
            }
        }
        for (i = 0; i < count && i < RAFT_MAX_SERVERS; i++) {
            const struct raft_server *s = raft_config_get(c, info[i].id);
            if (s != NULL && s->role == RAFT_VOTER && info[i].id != n->id &&
                info[i].recent_active) {
                active++;
            }
        }
        return active * 2 > voters;
    }
    if (raft_leader(n->raft) == 0) {
        return false;
    }
    return uv_now(n->loop) - n->last_leader_contact <
           n->o.election_timeout_ms;
}

const struct raft *raft_node_core(const struct raft_node *n)
{
    return n->raft;
}

raft_index raft_node_applied(const struct raft_node *n)
{
    return n->applied;
}

uint64_t raft_node_pending(const struct raft_node *n)
{
    return n->n_ops;
}

int raft_node_init(struct raft_node **out, uv_loop_t *loop, struct raft *r,
                   const struct raft_node_storage *storage,
                   const struct raft_node_transport *transport,
                   const struct raft_node_options *o, raft_index applied)
{
    struct raft_node *n = calloc(1, sizeof *n);
    if (n == NULL) {
        return -ENOMEM;
    }
    n->loop = loop;
    n->raft = r;
    n->st = *storage;
    n->tr = *transport;
    n->o = *o;
    if (n->o.op_timeout_ms == 0) {
        n->o.op_timeout_ms = 5000;
    }
    if (n->o.election_timeout_ms == 0) {
        n->o.election_timeout_ms = 1000;
    }
    n->applied = applied;
    n->last_snapshot = applied;
    n->id = o->id;
    if (n->id == 0) {
        free(n);
        return -EINVAL;
    }
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    uv_timer_init(loop, &n->sweep);
    n->sweep.data = n;
    uv_timer_init(loop, &n->retry);
    n->retry.data = n;
    uv_prepare_init(loop, &n->prepare);
    n->prepare.data = n;
    uv_prepare_start(&n->prepare, on_prepare);
    uv_timer_start(&n->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    n->dirty = true;
    n->open_handles = 4;
    *out = n;
    return 0;
}

/* Shutdown. */

static void on_handle_closed(uv_handle_t *h)
{
    struct raft_node *n = h->data;
    void (*cb)(void *);
    void *data;
    if (--n->open_handles > 0) {
        return;
    }
    cb = n->close_cb;
    data = n->close_data;
    raft_free(n->raft);
    node__batches_free(n);
    free(n);
    if (cb != NULL) {
        cb(data);
    }
}

/* Called when no job runs any more and the transfer (if any) is over. */
void node__finish_close(struct raft_node *n)
{
    struct node_op *op;
    if (n->closed) {
        return;
    }
    n->closed = true;
    while ((op = n->ops_head) != NULL) {
        complete_op(n, op, RAFT_ERR_SHUTDOWN, NULL);
    }
    uv_close((uv_handle_t *)&n->timer, on_handle_closed);
    uv_close((uv_handle_t *)&n->sweep, on_handle_closed);
    uv_close((uv_handle_t *)&n->retry, on_handle_closed);
    uv_close((uv_handle_t *)&n->prepare, on_handle_closed);
}

static void on_close_wait(uv_timer_t *h)
{
    struct raft_node *n = h->data;
    bool handed_over = raft_role(n->raft) != RAFT_LEADER;
    if (handed_over || now_ms(n) >= n->close_deadline) {
        uv_timer_stop(&n->retry);
        n->closing_transfer_done = true;
        node__jobs_kick(n); /* finishes the close once no job runs */
    }
}

void raft_node_close(struct raft_node *n, bool transfer,
                     void (*cb)(void *data), void *data)
{
    const struct raft_config *c = raft_configuration(n->raft);
    unsigned voters = 0;
    unsigned i;

    n->closing = true;
    n->close_cb = cb;
    n->close_data = data;
    for (i = 0; i < c->n; i++) {
        if (c->servers[i].role == RAFT_VOTER && c->servers[i].id != n->id) {
            voters++;
        }
    }
    if (transfer && voters > 0 && raft_role(n->raft) == RAFT_LEADER &&
        raft_transfer(n->raft, now_ms(n), 0) == 0) {
        node__log(n, 2, "stopping: handing leadership over");
        mark_dirty(n);
        n->close_deadline = now_ms(n) + 2 * n->o.election_timeout_ms;
        uv_timer_start(&n->retry, on_close_wait, 10, 10);
        return;
    }
    n->closing_transfer_done = true;
    node__jobs_kick(n);
}
