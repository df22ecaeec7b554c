/* Internals of the node driver shared by node.c and node_batch.c. */
#ifndef RAFT_NODE_INTERNAL_H
#define RAFT_NODE_INTERNAL_H

#include "node.h"

enum node_op_kind {
    NODE_OP_PROPOSE = 1,
    NODE_OP_READ,
    NODE_OP_CHANGE,
    NODE_OP_TRANSFER,
    NODE_OP_SNAPSHOT,
};

/* Where an operation stands. WAITING: not yet in any log or read round
 * (giving up is -EIO). QUEUED: read waiting for the next round. FORWARDED:
 * sent to the leader (or read index asked), no answer yet. APPENDED: in the
 * leader's log at (index, term). READY: read index known, waiting for
 * apply. FAILED: completes with fail_status at the next sweep. */
enum node_op_state {
    NODE_OP_WAITING = 1,
    NODE_OP_QUEUED,
    NODE_OP_FORWARDED,
    NODE_OP_APPENDED,
    NODE_OP_READY,
    NODE_OP_FAILED,
};

struct node_op {
    struct node_op *prev;
    struct node_op *next;
    uint8_t kind;  /* enum node_op_kind */
    uint8_t state; /* enum node_op_state */
    uint64_t req_id;
    uint64_t read_ctx;
    bool lease; /* READ: may be answered from the leader's lease */
    raft_time deadline;
    raft_time last_try;
    raft_index index;
    raft_term term;
    raft_id forwarded_to;
    raft_id old_leader; /* TRANSFER: who led when it started */
    raft_id target;
    uint8_t change_op;
    char addr[RAFT_ADDR_MAX];
    int fail_status;
    struct raft_buf cmd; /* PROPOSE: envelope + command, owned */
    raft_node_propose_cb propose_cb;
    raft_node_read_cb read_cb;
    raft_node_done_cb done_cb;
    void *data;
};

/* One storage write being assembled or in flight. */
struct node_batch {
    struct raft_node_batch b;
    size_t cap_entries;
    size_t cap_committed;
    struct raft_message *after; /* messages_after_persist, owned */
    size_t n_after;
    size_t cap_after;
    bool persist_mark;
    raft_index persist_index;
    raft_term persist_term;
    uint64_t applied_bytes;
    struct node_batch *next;
};

#define NODE_TERM_RING 4096

struct raft_node {
    uv_loop_t *loop;
    struct raft *raft; /* owned */
    raft_id id;
    struct raft_node_storage st;
    struct raft_node_transport tr;
    struct raft_node_options o;

    uv_timer_t timer;     /* the core's next_timeout */
    uv_timer_t sweep;     /* expiry and retries of operations */
    uv_timer_t retry;     /* shutdown: waits for the handover */
    uv_prepare_t prepare; /* flush once per loop iteration */
    unsigned open_handles;
    raft_time timer_due;
    bool dirty;

    /* Operations, oldest first. */
    struct node_op *ops_head;
    struct node_op *ops_tail;
    uint64_t n_ops;
    uint64_t next_req_id;
    uint64_t next_read_ctx;
    unsigned reads_unsent;

    raft_id last_leader;
    raft_time last_leader_contact;

    /* Jobs on the thread pool: one at a time, in order. */
    struct node_batch *acc;        /* being assembled */
    struct node_batch *queue_head; /* sealed, waiting */
    struct node_batch *queue_tail;
    struct node_batch *running;    /* in flight (NULL: none or snapshot) */
    bool job_running;
    bool job_is_snapshot;
    int job_status;
    raft_index snap_index;
    uint64_t snap_size;
    uv_work_t work;
    raft_time write_retry_at;

    /* Invariant: last_snapshot <= applied. */
    raft_index applied;
    raft_index last_snapshot;
    uint64_t bytes_since_snapshot;
    bool snapshot_wanted;

    struct {
        raft_index index;
        raft_term term;
    } ring[NODE_TERM_RING];

    bool closing;
    bool closing_transfer_done;
    bool closed;
    raft_time close_deadline;
    void (*close_cb)(void *data);
    void *close_data;
};

void node__log(struct raft_node *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void node__op_link(struct raft_node *n, struct node_op *op);
void node__op_unlink(struct raft_node *n, struct node_op *op);
struct node_op *node__op_find(struct raft_node *n, uint64_t req_id);

void node__term_ring_put(struct raft_node *n, raft_index index, raft_term t);
/* Returns the term of an applied entry still remembered, or 0. */
raft_term node__term_ring_get(struct raft_node *n, raft_index index);

/* Moves what `u` asks to persist and apply into the batch being assembled
 * (emptying those fields of u). */
void node__batch_take(struct raft_node *n, struct raft_update *u);
/* Starts the next job if none runs; finishes a close when idle. */
void node__jobs_kick(struct raft_node *n);
void node__batches_free(struct raft_node *n);

void node__send_messages(struct raft_node *n, struct raft_message *msgs,
                         size_t count);
void node__applied_entry(struct raft_node *n, const struct raft_entry *e,
                         int status, const void *result);
void node__after_apply(struct raft_node *n);
void node__check_applied_op(struct raft_node *n, struct node_op *op);
void node__finish_close(struct raft_node *n);

#endif /* RAFT_NODE_INTERNAL_H */
