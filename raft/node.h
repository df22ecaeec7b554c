/* The node driver: runs one Raft core on a libuv loop. */
#ifndef RAFT_NODE_H
#define RAFT_NODE_H

/*
 * The driver carries out raft.h's contract in one place. It owns a
 * `struct raft` and, on one uv loop:
 *
 *   - ticks the core from a uv timer armed at the update's next_timeout;
 *   - once per loop iteration (a uv_prepare handle: Redis's beforeSleep)
 *     collects the core's update, sends its messages, and queues what must
 *     be persisted and applied into a write batch;
 *   - runs write batches one at a time on the libuv thread pool through the
 *     storage interface: everything produced while one batch syncs goes into
 *     the next one, so one sync serves many proposals;
 *   - after a batch is durable, sends the messages that promised it, tells
 *     the core what is persisted, and completes proposals and reads.
 *
 * Proposals and read requests made on a follower are forwarded to the
 * leader (a forward to the leader's driver, which proposes and answers with
 * the entry's index and term; the follower then waits for its own apply of
 * that index). While there is no leader they wait, retried on every change
 * of leader, until the operation timeout.
 *
 * Storage and transport are interfaces, so the driver has no idea of LMDB,
 * sockets or protobuf: fs/ wires store/ and net/ in, the unit tests wire
 * in-memory fakes.
 */

#include <uv.h>

#include "raft.h"

struct raft_node;

/* What one storage write must make durable and apply, in this order:
 * snapshot chunk, snapshot install, hard state, entries (truncating the
 * stored log at entries[0].index first), then apply `committed`, then drop
 * stored entries <= compact_to. The batch and everything it points to is
 * owned by the driver and valid until the write completes. */
struct raft_node_batch {
    bool has_install;
    struct raft_snapshot_meta install;

    bool has_chunk;
    struct raft_snapshot_meta chunk_meta;
    uint64_t chunk_offset;
    struct raft_buf chunk;

    bool has_hard_state;
    raft_term term;
    raft_id vote;

    struct raft_entry *entries;
    size_t n_entries;

    struct raft_entry *committed;
    size_t n_committed;

    raft_index compact_to;

    /* Filled by the storage: one result per committed entry (same order).
     * `result` is an application-defined blob (malloc'd by the storage,
     * freed by the driver with free() after the proposal's callback). */
    int *statuses;
    void **results;
    /* Filled by the storage: the applied index after this write. */
    raft_index applied;
};

/*
 * The storage interface. `write` and `snapshot` run on a thread-pool thread,
 * never two at once and always in the order they were queued; the other
 * calls run on the loop thread.
 */
struct raft_node_storage {
    void *data;
    /* Makes the batch durable and applies it; returns 0 or -errno. On error
     * nothing of the batch may be half done (one transaction). */
    int (*write)(void *data, struct raft_node_batch *b);
    /* Takes a snapshot of the state machine as of its applied index;
     * returns 0 and its index and size in bytes, or -errno. */
    int (*snapshot)(void *data, raft_index *index, uint64_t *size);
    /* Reads `len` bytes at `offset` of the snapshot with `index` into buf;
     * returns the number of bytes read, or -ENOENT if that snapshot is no
     * longer the current one, or another -errno. */
    int (*snapshot_read)(void *data, raft_index index, uint64_t offset,
                         void *buf, uint32_t len);
    /* True if `write` is cheap for a batch that only applies committed
     * entries (no sync: it ends in the page cache): the driver then calls
     * it on the loop thread when no other write runs, which saves the
     * two thread hand-offs of the pool (on a write's path: the commit is
     * answered without them). The driver also splits the applies off a
     * batch that has entries to make durable and runs them first, so that
     * they do not wait for that batch's sync (node_batch.c). */
    bool inline_apply;
    /* True if `write` of a small batch that must be made durable is one
     * append and one sync (a preallocated log): the driver then calls it on
     * the loop thread when the node is quiet, that is, when the batch holds
     * one entry, no other write is queued and at most one operation waits
     * on this node. Under load the pool keeps the loop free during syncs;
     * a lone write saves the two hand-offs and the pool thread's wake-up,
     * which on a machine with few cores are a large part of its latency.
     * The cost: while such a sync lasts, the loop does nothing else (a disk
     * that stalls for seconds stalls the quiet node's loop with it; its
     * peers see a silent node, as they would see a node whose log cannot
     * be written). */
    bool inline_sync;
};

/*
 * Every RAFT_ENTRY_COMMAND proposed through the driver starts with an
 * envelope that lets the proposing driver recognise its own entry when it
 * is applied (even when it was forwarded and the answer raced the apply):
 *
 *   +------------------+------------------+----------------------+
 *   | u64 LE origin id | u64 LE request id| application command  |
 *   +------------------+------------------+----------------------+
 *
 * The storage skips RAFT_NODE_ENVELOPE bytes before decoding a command.
 */
#define RAFT_NODE_ENVELOPE 16

/* Forwarding between drivers (a follower asks the leader). */
enum raft_node_forward_kind {
    RAFT_NODE_FWD_PROPOSE = 1, /* payload: the command */
    RAFT_NODE_FWD_CHANGE,      /* op, id, addr */
    RAFT_NODE_FWD_TRANSFER,    /* id */
    RAFT_NODE_FWD_RESULT,      /* answer: status, index, term */
};

struct raft_node_forward {
    uint8_t kind; /* enum raft_node_forward_kind */
    uint64_t req_id;
    struct raft_buf payload; /* PROPOSE: borrowed for the call only */
    uint8_t op;              /* CHANGE: enum raft_change_op */
    raft_id id;              /* CHANGE, TRANSFER */
    char addr[RAFT_ADDR_MAX];
    int status;              /* RESULT */
    raft_index index;        /* RESULT */
    raft_term term;          /* RESULT */
};

/*
 * The transport interface (loop thread). Both calls copy what they need
 * before returning; a message may be dropped (Raft tolerates loss).
 */
struct raft_node_transport {
    void *data;
    int (*send)(void *data, const struct raft_message *m);
    int (*forward)(void *data, raft_id to, const struct raft_node_forward *f);
    /* Optional: write what send and forward queued, now. The driver calls
     * it before it hands a storage job to the thread pool, so that the
     * followers' work starts before the leader's own write takes the CPU.
     * NULL: the transport writes when it likes. */
    void (*flush)(void *data);
};

struct raft_node_options {
    raft_id id;                    /* this node (as given to the core) */
    unsigned op_timeout_ms;        /* proposals and reads; default 5000 */
    unsigned election_timeout_ms;  /* as given to the core */
    raft_index snapshot_entries;   /* snapshot after this many applied */
    uint64_t snapshot_bytes;       /* ... or this many bytes of entries */
    void (*log)(void *data, int level, const char *line);
    void *log_data;
};

/* Completion of a proposal. status: 0 applied (result is the storage's blob
 * for it, valid during the call), -ETIMEDOUT (may still apply), -EIO (surely
 * not applied), or a RAFT_ERR_* code. */
typedef void (*raft_node_propose_cb)(void *data, int status, raft_index index,
                                     const void *result);
/* Completion of a read: 0 when the local state machine may be read
 * linearizably, or -ETIMEDOUT / -EIO / RAFT_ERR_*. */
typedef void (*raft_node_read_cb)(void *data, int status);
/* Completion of a membership change or transfer. */
typedef void (*raft_node_done_cb)(void *data, int status);

/*
 * Creates a driver for `r` (the driver takes ownership of the core and frees
 * it at close). storage, transport and options are copied. `applied` is the
 * state machine's applied index as loaded. Returns 0 or -errno.
 */
int raft_node_init(struct raft_node **out, uv_loop_t *loop, struct raft *r,
                   const struct raft_node_storage *storage,
                   const struct raft_node_transport *transport,
                   const struct raft_node_options *o, raft_index applied);

/*
 * Stops the node: a leader first hands leadership to the most up-to-date
 * voter (waiting up to two election timeouts), then pending operations fail
 * with RAFT_ERR_SHUTDOWN, in-flight writes finish, handles close, and `cb`
 * runs; after it the node is freed. Call once.
 */
void raft_node_close(struct raft_node *n, bool transfer,
                     void (*cb)(void *data), void *data);

/* Inputs from the transport. The message stays the caller's. */
void raft_node_receive(struct raft_node *n, const struct raft_message *m);
void raft_node_receive_forward(struct raft_node *n, raft_id from,
                               const struct raft_node_forward *f);

/* Operations. Each completes exactly once through its callback, never from
 * within the call itself. The command is copied. */
void raft_node_propose(struct raft_node *n, const struct raft_buf *cmd,
                       raft_node_propose_cb cb, void *data);
/* A linearizable read point. raft_node_read confirms with a heartbeat round
 * that a quorum follows the leader now (raft_read_index_confirm): use it
 * where the read also answers "can this node reach a quorum?". Other reads
 * use raft_node_read_lease: the leader may answer from its lease (thesis
 * §6.4.1, raft_options.lease_reads) without a round. */
void raft_node_read(struct raft_node *n, raft_node_read_cb cb, void *data);
void raft_node_read_lease(struct raft_node *n, raft_node_read_cb cb,
                          void *data);
void raft_node_change(struct raft_node *n, enum raft_change_op op, raft_id id,
                      const char *addr, raft_node_done_cb cb, void *data);
void raft_node_transfer(struct raft_node *n, raft_id target,
                        raft_node_done_cb cb, void *data);
/* Takes a snapshot now (completion: 0 or -errno). */
void raft_node_snapshot(struct raft_node *n, raft_node_done_cb cb, void *data);

/* Quick, local: can this node reach a quorum right now? True on a leader
 * whose check-quorum saw a majority recently, and on a follower that heard
 * from a leader within the election timeout. */
bool raft_node_quorum_ok(const struct raft_node *n);

/* Observed state, for status output. */
const struct raft *raft_node_core(const struct raft_node *n);
raft_index raft_node_applied(const struct raft_node *n);
uint64_t raft_node_pending(const struct raft_node *n);

#endif /* RAFT_NODE_H */
