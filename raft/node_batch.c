/* The node driver's write pipeline: batches, the job queue, op lists. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

/* Storage failures (full disk, IO error) are retried after this delay. */
#define WRITE_RETRY_MS 200

/* Operations list. */

void node__op_link(struct raft_node *n, struct node_op *op)
{
    op->prev = n->ops_tail;
    op->next = NULL;
    if (n->ops_tail != NULL) {
        n->ops_tail->next = op;
    } else {
        n->ops_head = op;
    }
    n->ops_tail = op;
    n->n_ops++;
}

void node__op_unlink(struct raft_node *n, struct node_op *op)
{
    if (op->prev != NULL) {
        op->prev->next = op->next;
    } else {
        n->ops_head = op->next;
    }
    if (op->next != NULL) {
        op->next->prev = op->prev;
    } else {
        n->ops_tail = op->prev;
    }
    op->prev = op->next = NULL;
    n->n_ops--;
}

struct node_op *node__op_find(struct raft_node *n, uint64_t req_id)
{
    struct node_op *op;
    /* Newest first: answers usually concern recent operations. */
    for (op = n->ops_tail; op != NULL; op = op->prev) {
        if (op->req_id == req_id) {
            return op;
        }
    }
    return NULL;
}

void node__term_ring_put(struct raft_node *n, raft_index index, raft_term t)
{
    unsigned slot = (unsigned)(index % NODE_TERM_RING);
    n->ring[slot].index = index;
    n->ring[slot].term = t;
}

raft_term node__term_ring_get(struct raft_node *n, raft_index index)
{
    unsigned slot = (unsigned)(index % NODE_TERM_RING);
    return n->ring[slot].index == index ? n->ring[slot].term : 0;
}

/* Batches. */

static void free_entries(struct raft_entry *e, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) {
        free(e[i].data.base);
    }
}

static void batch_free(struct node_batch *nb)
{
    size_t i;
    if (nb == NULL) {
        return;
    }
    free_entries(nb->b.entries, nb->b.n_entries);
    free(nb->b.entries);
    free_entries(nb->b.committed, nb->b.n_committed);
    free(nb->b.committed);
    free(nb->b.chunk.base);
    for (i = 0; i < nb->n_after; i++) {
        raft_message_close(&nb->after[i]);
    }
    free(nb->after);
    if (nb->b.results != NULL) {
        for (i = 0; i < nb->b.n_committed; i++) {
            free(nb->b.results[i]);
        }
    }
    free(nb->b.results);
    free(nb->b.statuses);
    free(nb);
}

static bool batch_empty(const struct node_batch *nb)
{
    return !nb->b.has_install && !nb->b.has_chunk && !nb->b.has_hard_state &&
           nb->b.n_entries == 0 && nb->b.n_committed == 0 &&
           nb->b.compact_to == 0 && nb->n_after == 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap == 0 ? 16 : *cap;
    void *p;
    if (need <= *cap) {
        return 0;
    }
    while (c < need) {
        c *= 2;
    }
    p = realloc(*arr, c * size);
    if (p == NULL) {
        return -ENOMEM;
    }
    *arr = p;
    *cap = c;
    return 0;
}

static void seal(struct raft_node *n)
{
    struct node_batch *nb = n->acc;
    if (nb == NULL) {
        return;
    }
    n->acc = NULL;
    if (batch_empty(nb)) {
        batch_free(nb);
        return;
    }
    nb->next = NULL;
    if (n->queue_tail != NULL) {
        n->queue_tail->next = nb;
    } else {
        n->queue_head = nb;
    }
    n->queue_tail = nb;
}

static struct node_batch *acc(struct raft_node *n)
{
    if (n->acc == NULL) {
        n->acc = calloc(1, sizeof *n->acc);
    }
    return n->acc;
}

/* An allocation failure here is fatal: losing a piece of an update would
 * break the driver contract, so we stop rather than continue wrongly. */
static void oom(void)
{
    abort();
}

void node__batch_take(struct raft_node *n, struct raft_update *u)
{
    struct node_batch *nb;
    size_t i;

    /* A snapshot install or chunk must not follow anything already queued
     * in the same transaction (the order inside one write is fixed). */
    if ((u->has_snapshot_install || u->has_snapshot_chunk) && n->acc != NULL &&
        !batch_empty(n->acc)) {
        seal(n);
    }
    nb = acc(n);
    if (nb == NULL) {
        oom();
    }
    if (u->has_snapshot_install) {
        nb->b.has_install = true;
        nb->b.install = u->snapshot_install;
        nb->persist_mark = true;
        nb->persist_index = u->snapshot_install.index;
        nb->persist_term = u->snapshot_install.term;
    }
    if (u->has_snapshot_chunk) {
        nb->b.has_chunk = true;
        nb->b.chunk_meta = u->snapshot_chunk_meta;
        nb->b.chunk_offset = u->snapshot_chunk_offset;
        nb->b.chunk = u->snapshot_chunk;
        u->snapshot_chunk.base = NULL;
        u->snapshot_chunk.len = 0;
    }
    if (u->hard_state_changed) {
        nb->b.has_hard_state = true;
        nb->b.term = u->hs_term;
        nb->b.vote = u->hs_vote;
    }
    if (u->n_entries > 0) {
        raft_index first = u->entries[0].index;
        /* A later update that rewrites a suffix replaces it in the batch;
         * the storage truncates at the batch's first index anyway. */
        while (nb->b.n_entries > 0 &&
               nb->b.entries[nb->b.n_entries - 1].index >= first) {
            free(nb->b.entries[nb->b.n_entries - 1].data.base);
            nb->b.n_entries--;
        }
        if (grow((void **)&nb->b.entries, &nb->cap_entries,
                 nb->b.n_entries + u->n_entries, sizeof *u->entries) != 0) {
            oom();
        }
        memcpy(&nb->b.entries[nb->b.n_entries], u->entries,
               u->n_entries * sizeof *u->entries);
        nb->b.n_entries += u->n_entries;
        nb->persist_mark = true;
        nb->persist_index = u->entries[u->n_entries - 1].index;
        nb->persist_term = u->entries[u->n_entries - 1].term;
        free(u->entries);
        u->entries = NULL;
        u->n_entries = 0;
    }
    if (u->n_committed > 0) {
        if (grow((void **)&nb->b.committed, &nb->cap_committed,
                 nb->b.n_committed + u->n_committed,
                 sizeof *u->committed) != 0) {
            oom();
        }
        memcpy(&nb->b.committed[nb->b.n_committed], u->committed,
               u->n_committed * sizeof *u->committed);
        for (i = 0; i < u->n_committed; i++) {
            nb->applied_bytes += u->committed[i].data.len;
        }
        nb->b.n_committed += u->n_committed;
        free(u->committed);
        u->committed = NULL;
        u->n_committed = 0;
    }
    if (u->compact_to > nb->b.compact_to) {
        nb->b.compact_to = u->compact_to;
    }
    if (u->n_messages_after_persist > 0) {
        if (grow((void **)&nb->after, &nb->cap_after,
                 nb->n_after + u->n_messages_after_persist,
                 sizeof *u->messages_after_persist) != 0) {
            oom();
        }
        memcpy(&nb->after[nb->n_after], u->messages_after_persist,
               u->n_messages_after_persist * sizeof *nb->after);
        nb->n_after += u->n_messages_after_persist;
        free(u->messages_after_persist);
        u->messages_after_persist = NULL;
        u->n_messages_after_persist = 0;
    }
    if (u->has_snapshot_install || u->has_snapshot_chunk) {
        /* Keep one chunk per write; later updates start a new batch. */
        seal(n);
    }
}

/* Jobs on the thread pool. */

static void work_cb(uv_work_t *w)
{
    struct raft_node *n = w->data;
    if (n->job_is_snapshot) {
        n->job_status = n->st.snapshot(n->st.data, &n->snap_index,
                                       &n->snap_size);
        return;
    }
    n->job_status = n->st.write(n->st.data, &n->running->b);
}

static void complete_snapshot_ops(struct raft_node *n, int status)
{
    struct node_op *op;
    struct node_op *next;
    for (op = n->ops_head; op != NULL; op = next) {
        next = op->next;
        if (op->kind == NODE_OP_SNAPSHOT) {
            op->state = NODE_OP_FAILED;
            op->fail_status = status;
        }
    }
}

static void after_snapshot(struct raft_node *n, int status)
{
    if (status != 0) {
        node__log(n, 1, "snapshot failed: %s", raft_strerror(status));
        complete_snapshot_ops(n, status);
        return;
    }
    if (n->snap_index > n->last_snapshot) {
        raft_snapshot_taken(n->raft, n->snap_index, n->snap_size);
        n->last_snapshot = n->snap_index;
        n->bytes_since_snapshot = 0;
        node__log(n, 3, "snapshot at %llu (%llu bytes)",
                  (unsigned long long)n->snap_index,
                  (unsigned long long)n->snap_size);
    }
    complete_snapshot_ops(n, 0);
    n->dirty = true;
}

static void after_write(struct raft_node *n, struct node_batch *nb, int status)
{
    size_t i;

    if (status != 0) {
        /* Nothing of the batch happened (one transaction): try again later,
         * keeping its place at the head of the queue. */
        node__log(n, 1, "storage write failed: %s; retrying",
                  raft_strerror(status));
        free(nb->b.statuses);
        nb->b.statuses = NULL;
        if (nb->b.results != NULL) {
            for (i = 0; i < nb->b.n_committed; i++) {
                free(nb->b.results[i]);
            }
            free(nb->b.results);
            nb->b.results = NULL;
        }
        nb->next = n->queue_head;
        n->queue_head = nb;
        if (n->queue_tail == NULL) {
            n->queue_tail = nb;
        }
        n->write_retry_at = uv_now(n->loop) + WRITE_RETRY_MS;
        return;
    }

    /* Contract step 3: what this batch promised is durable. */
    node__send_messages(n, nb->after, nb->n_after);
    if (nb->persist_mark) {
        raft_persisted(n->raft, uv_now(n->loop), nb->persist_index,
                       nb->persist_term);
    }
    if (nb->b.has_install && nb->b.install.index > n->applied) {
        n->applied = nb->b.install.index;
        n->last_snapshot = nb->b.install.index;
        node__log(n, 2, "installed the leader's snapshot at %llu",
                  (unsigned long long)nb->b.install.index);
    }
    if (nb->b.applied > n->applied) {
        n->applied = nb->b.applied;
    }
    for (i = 0; i < nb->b.n_committed; i++) {
        node__applied_entry(n, &nb->b.committed[i],
                            nb->b.statuses != NULL ? nb->b.statuses[i] : 0,
                            nb->b.results != NULL ? nb->b.results[i] : NULL);
    }
    n->bytes_since_snapshot += nb->applied_bytes;
    node__after_apply(n);
    if ((n->o.snapshot_entries > 0 &&
         n->applied - n->last_snapshot >= n->o.snapshot_entries) ||
        (n->o.snapshot_bytes > 0 &&
         n->bytes_since_snapshot >= n->o.snapshot_bytes)) {
        n->snapshot_wanted = true;
    }
    batch_free(nb);
    n->dirty = true;
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct raft_node *n = w->data;
    int rv = status != 0 ? status : n->job_status;
    struct node_batch *nb = n->running;

    n->job_running = false;
    n->running = NULL;
    if (n->job_is_snapshot) {
        after_snapshot(n, rv);
    } else {
        after_write(n, nb, rv);
    }
    node__jobs_kick(n);
}

/* What the storage fills in: one status and result per committed entry. */
static void prepare_write(struct node_batch *nb)
{
    if (nb->b.n_committed > 0) {
        nb->b.statuses = calloc(nb->b.n_committed, sizeof(int));
        nb->b.results = calloc(nb->b.n_committed, sizeof(void *));
        if (nb->b.statuses == NULL || nb->b.results == NULL) {
            oom();
        }
    }
    nb->b.applied = 0;
}

/* The messages queued so far (the leader's appends, a follower's acks of the
 * previous batch) leave before a write starts: a pool thread may take this
 * thread's CPU on a machine with few cores, and a write on the loop thread
 * blocks it. */
static void send_queued(struct raft_node *n)
{
    if (n->tr.flush != NULL) {
        n->tr.flush(n->tr.data);
    }
}

static void start_job(struct raft_node *n, struct node_batch *nb)
{
    int rv;
    n->job_running = true;
    n->job_is_snapshot = nb == NULL;
    n->running = nb;
    if (nb != NULL) {
        prepare_write(nb);
    }
    n->work.data = n;
    send_queued(n);
    rv = uv_queue_work(n->loop, &n->work, work_cb, after_work_cb);
    if (rv != 0) {
        node__log(n, 0, "uv_queue_work: %s", uv_strerror(rv));
        abort();
    }
}

/* Applies larger than this go to the pool even when storage.inline_apply
 * says they are cheap: the loop keeps answering meanwhile. */
#define INLINE_APPLY_MAX_BYTES (256u << 10)

/* Nothing to make durable, and small: only applies. Messages may wait on
 * it (an answer to an AppendEntries that carried only a commit index):
 * they wait for the batches before it, all done when it runs, and go right
 * after. */
static bool apply_only(const struct node_batch *nb)
{
    return !nb->b.has_install && !nb->b.has_chunk && !nb->b.has_hard_state &&
           nb->b.n_entries == 0 && nb->b.compact_to == 0 &&
           !nb->persist_mark && nb->b.n_committed > 0 &&
           nb->applied_bytes <= INLINE_APPLY_MAX_BYTES;
}

/* storage.inline_apply: the applies of a batch that also has something to
 * make durable are split off into an apply-only batch in front of it, run
 * on the loop at once. Together, they would become visible only after
 * that batch's sync: every read waiting for its read index and every
 * proposal waiting for its result would wait for one more sync, the
 * next batch's, which under load is most of a write's latency. The
 * entries they apply are durable already (raft.h hands over only entries
 * persisted by an earlier batch), so nothing orders them after this
 * batch's sync. An install or a chunk keeps its applies (they may follow
 * it); so does a batch whose applies are too large to run on the loop. */
static void split_applies(struct raft_node *n, struct node_batch *nb)
{
    struct node_batch *ab;

    if (nb->b.n_committed == 0 || apply_only(nb) || nb->b.has_install ||
        nb->b.has_chunk || nb->applied_bytes > INLINE_APPLY_MAX_BYTES) {
        return;
    }
    ab = calloc(1, sizeof *ab);
    if (ab == NULL) {
        return; /* they stay together, as without the split */
    }
    ab->b.committed = nb->b.committed;
    ab->b.n_committed = nb->b.n_committed;
    ab->cap_committed = nb->cap_committed;
    ab->applied_bytes = nb->applied_bytes;
    nb->b.committed = NULL;
    nb->b.n_committed = 0;
    nb->cap_committed = 0;
    nb->applied_bytes = 0;
    ab->next = nb;
    n->queue_head = ab;
}

/* Durable writes larger than this always go to the pool. */
#define INLINE_SYNC_MAX_BYTES (64u << 10)

/* storage.inline_sync: a lone small write on a quiet node (node.h). Its
 * sync blocks the loop, which has nothing else to do meanwhile. */
static bool lone_write(const struct raft_node *n, const struct node_batch *nb)
{
    if (nb->b.has_install || nb->b.has_chunk || nb->b.has_hard_state ||
        nb->b.compact_to != 0 || nb->b.n_entries != 1 ||
        n->queue_head != NULL || (n->acc != NULL && !batch_empty(n->acc)) ||
        n->n_ops > 1) {
        return false;
    }
    return nb->applied_bytes + nb->b.entries[0].data.len <=
           INLINE_SYNC_MAX_BYTES;
}

/* storage.inline_apply / inline_sync: the write on the loop thread, then
 * what after_work_cb does. */
static void run_inline(struct raft_node *n, struct node_batch *nb)
{
    int rv;
    n->job_running = true;
    n->job_is_snapshot = false;
    n->running = nb;
    prepare_write(nb);
    if (nb->persist_mark) {
        send_queued(n);
    }
    rv = n->st.write(n->st.data, &nb->b);
    n->job_running = false;
    n->running = NULL;
    after_write(n, nb, rv);
}

void node__jobs_kick(struct raft_node *n)
{
    struct node_batch *nb;

    for (;;) {
        if (n->job_running || n->closed) {
            return;
        }
        if (n->closing && n->closing_transfer_done) {
            node__finish_close(n);
            return;
        }
        if (uv_now(n->loop) < n->write_retry_at) {
            return; /* the sweep timer kicks again */
        }
        if (n->queue_head == NULL) {
            seal(n);
        }
        if (n->queue_head == NULL) {
            break;
        }
        if (n->st.inline_apply) {
            split_applies(n, n->queue_head);
        }
        nb = n->queue_head;
        n->queue_head = nb->next;
        if (n->queue_head == NULL) {
            n->queue_tail = NULL;
        }
        nb->next = NULL;
        if ((n->st.inline_apply && apply_only(nb)) ||
            (n->st.inline_sync && lone_write(n, nb))) {
            run_inline(n, nb);
            continue;
        }
        start_job(n, nb);
        return;
    }
    if (n->snapshot_wanted) {
        n->snapshot_wanted = false;
        start_job(n, NULL);
    }
}

void node__batches_free(struct raft_node *n)
{
    struct node_batch *nb;
    batch_free(n->acc);
    n->acc = NULL;
    while ((nb = n->queue_head) != NULL) {
        n->queue_head = nb->next;
        batch_free(nb);
    }
    n->queue_tail = NULL;
}
