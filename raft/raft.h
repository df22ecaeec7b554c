/* Public API of the Raft core: a pure, deterministic state machine. */
#ifndef RAFT_H
#define RAFT_H

/*
 * The core does no IO, reads no clock, opens no socket, starts no thread and
 * has no global state. Randomness comes from a PRNG seeded by the caller.
 * Everything happens through calls on a `struct raft`:
 *
 *   inputs   raft_step()          a message from a peer
 *            raft_tick()          time passed (the caller passes `now`)
 *            raft_persisted()     the driver made entries durable
 *            raft_propose()       append a command (leader only)
 *            raft_read_index()    ask for a linearizable read point
 *            raft_transfer()      hand leadership to another voter
 *            raft_change()        one membership change
 *            raft_snapshot_taken() the application has a snapshot at an index
 *
 *   output   raft_ready()         collect everything the inputs produced since
 *                                 the last raft_ready() into one update.
 *
 * Time is a monotonic count of milliseconds chosen by the caller (a virtual
 * clock in the simulator, uv_now() in the daemon). The core never asks for
 * it: every input that may depend on time takes `now`. Lease reads
 * (raft_options.lease_reads) also need it fresh: a `now` older than the
 * real time by more than the clock_drift_permille margin (a loop time
 * cached across a long stall) can make a leader serve a stale read, or a
 * follower stop honoring its leader too early.
 *
 * THE DRIVER CONTRACT (what the code running the core must do with each
 * update, in this order; updates are processed in the order they were
 * produced):
 *
 *  1. Send `u.messages` at once. They do not depend on anything in this
 *     update being durable (the leader's AppendEntries may go out while its
 *     own copy of the same entries is still being written, thesis §10.2.1).
 *  2. Make durable, in this order and atomically per step:
 *       a. `u.snapshot_chunk`: write the chunk at its offset (not installed
 *          until an update's snapshot_install names it; the last chunk and
 *          the install may come in the same update: chunk first);
 *       b. `u.snapshot_install`: restore the state machine from the snapshot
 *          whose chunks were written (including this update's chunk), drop
 *          every stored log entry, and record the snapshot's index, term and
 *          configuration;
 *       c. `u.hard_state` when `u.hard_state_changed`: term and vote;
 *       d. `u.entries`: first delete every stored entry with an index >=
 *          `u.entries[0].index` (a conflicting suffix), then append them.
 *     Persistence may run off the caller's thread and may batch several
 *     updates in one synced commit, as long as their order is kept.
 *  3. Once 2 is durable: send `u.messages_after_persist` (votes, append
 *     responses: they promise what 2 wrote), then call raft_persisted() with
 *     the index and term of the last entry of `u.entries` (or of the
 *     installed snapshot) so the core may count it toward commit.
 *  4. Apply `u.committed` to the state machine in order. They are committed
 *     and durable locally. Apply may lag; the core does not wait for it.
 *  5. Complete `u.reads`: a read with status 0 may be served once the
 *     state machine's applied index is >= its index (thesis §6.4).
 *  6. `u.compact_to` > 0: stored entries with index <= compact_to may be
 *     deleted (the application's snapshot covers them).
 *  7. Call raft_tick() no later than `u.next_timeout`.
 *
 * Memory: an update owns every array and buffer it points to (deep copies);
 * nothing in it points into the core. Free it with raft_update_close(). The
 * core copies everything it is given: callers may free their arguments as
 * soon as a call returns.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_id;    /* 0 means "none" */
typedef uint64_t raft_term;
typedef uint64_t raft_index; /* 0 means "before the first entry" */
typedef uint64_t raft_time;  /* milliseconds on the caller's monotonic clock */

/* Domain errors: negative, outside the errno range so -errno can coexist. */
#define RAFT_ERRORS(X)                                                         \
    X(NOT_LEADER, 1001, "not the leader")                                      \
    X(TRANSFERRING, 1002, "leadership transfer in progress")                   \
    X(BUSY, 1003, "a configuration change is already in progress")             \
    X(NOT_FOUND, 1004, "no such server")                                       \
    X(EXISTS, 1005, "server already in the configuration")                     \
    X(NOT_CAUGHT_UP, 1006, "learner has not caught up with the leader")        \
    X(INVALID, 1007, "invalid argument")                                       \
    X(CORRUPT, 1008, "corrupt persisted state")                                \
    X(LEADERSHIP_LOST, 1009, "leadership lost before the request completed")   \
    X(TOO_BIG, 1010, "entry too large")                                        \
    X(NOMEM, 1011, "out of memory")                                            \
    X(SHUTDOWN, 1012, "node is shutting down")

enum {
#define RAFT_ERR_ENUM(name, num, text) RAFT_ERR_##name = -(num),
    RAFT_ERRORS(RAFT_ERR_ENUM)
#undef RAFT_ERR_ENUM
};

/* Returns a static string for a RAFT_ERR_* code or a -errno value. */
const char *raft_strerror(int rv);

/* A byte buffer. Ownership is stated wherever one is passed. */
struct raft_buf {
    void *base;
    size_t len;
};

enum raft_entry_type {
    RAFT_ENTRY_COMMAND = 1, /* opaque application command */
    RAFT_ENTRY_NOOP = 2,    /* appended by a new leader, thesis §6.4 */
    RAFT_ENTRY_CONFIG = 3,  /* a struct raft_config, see raft_config_encode */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type; /* enum raft_entry_type */
    struct raft_buf data;
};

/* Cluster membership. */
#define RAFT_MAX_SERVERS 16
#define RAFT_ADDR_MAX 64 /* including the terminating NUL */

enum raft_server_role {
    RAFT_VOTER = 1,
    RAFT_LEARNER = 2, /* receives the log, never votes, never counts */
};

struct raft_server {
    raft_id id;
    uint8_t role;              /* enum raft_server_role */
    char addr[RAFT_ADDR_MAX];  /* opaque to the core, carried for the driver */
};

struct raft_config {
    unsigned n;
    struct raft_server servers[RAFT_MAX_SERVERS];
};

/*
 * Encoded configuration (the data of a RAFT_ENTRY_CONFIG entry and of a
 * snapshot's configuration), little-endian:
 *
 *   +---------+---------+------------------------------------------+
 *   | u8 ver=1| u8 n    | n x { u64 id | u8 role | u8 alen | addr } |
 *   +---------+---------+------------------------------------------+
 *
 * raft_config_encode() fills *out with a malloc'd buffer owned by the caller.
 * raft_config_decode() returns 0 or RAFT_ERR_CORRUPT; it never reads past
 * buf->len.
 */
int raft_config_encode(const struct raft_config *c, struct raft_buf *out);
int raft_config_decode(const struct raft_buf *buf, struct raft_config *c);
/* Returns the server with `id`, or NULL. */
const struct raft_server *raft_config_get(const struct raft_config *c,
                                          raft_id id);

/*
 * Builds the first entry (index 1, term 1, RAFT_ENTRY_CONFIG) of a new
 * cluster. Every member of a new cluster persists the same entry before it
 * first starts, so their logs agree (Log Matching). The data is malloc'd and
 * owned by the caller.
 */
int raft_bootstrap_entry(const struct raft_config *c, struct raft_entry *out);

/* Messages between cores. The driver carries them; net/ encodes them. */
enum raft_message_type {
    RAFT_MSG_APPEND = 1,
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_HEARTBEAT,
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT,
    RAFT_MSG_SNAPSHOT_RESP,
    RAFT_MSG_TIMEOUT_NOW,
    RAFT_MSG_READ_INDEX,
    RAFT_MSG_READ_INDEX_RESP,
};
#define RAFT_MSG_TYPE_MAX RAFT_MSG_READ_INDEX_RESP

struct raft_message {
    uint8_t type; /* enum raft_message_type */
    raft_id from;
    raft_id to;
    raft_term term;
    union {
        struct {
            raft_index prev_index;
            raft_term prev_term;
            raft_index commit;
            struct raft_entry *entries; /* owned by the message */
            size_t n_entries;
            uint64_t seq; /* as heartbeat.seq; 0: none */
        } append;
        struct {
            bool reject;
            /* Accepted: the follower's last index matching the leader.
             * Rejected: the prev_index that did not match. */
            raft_index index;
            /* Rejected only: fast backtracking hints (the follower's term at
             * hint_index, and the first index it holds of that term, or its
             * last index + 1 when its log is too short; hint_term 0 then). */
            raft_index hint_index;
            raft_term hint_term;
            uint64_t seq; /* the append's seq, echoed */
        } append_resp;
        struct {
            raft_index last_index;
            raft_term last_term;
            bool pre_vote; /* thesis §9.6: no term bump, nobody votes */
            bool transfer; /* sent because of TimeoutNow: ignore leases */
        } vote;
        struct {
            bool granted;
            bool pre_vote;
        } vote_resp;
        struct {
            raft_index commit;
            /* The leader's numbering of what it sends in a term (read
             * index rounds and leases, read_index.c), echoed in the
             * response. Heartbeats and appends share it. */
            uint64_t seq;
        } heartbeat;
        struct {
            uint64_t seq;
        } heartbeat_resp;
        struct {
            raft_index index; /* last index covered by the snapshot */
            raft_term snap_term;
            struct raft_config config; /* configuration as of index */
            uint64_t size;   /* total bytes of the snapshot */
            uint64_t offset; /* of this chunk */
            /* Emitted by the core: data is empty and chunk_len says how many
             * bytes the driver reads from its stored snapshot at offset and
             * puts in data before sending. Received: data holds the chunk. */
            uint32_t chunk_len;
            struct raft_buf data; /* owned by the message */
            bool last;
        } snapshot;
        struct {
            raft_index index;
            uint64_t offset; /* bytes received so far (next offset wanted) */
            bool reject;     /* resend from offset (0: restart the transfer);
                              * else an acknowledgement up to offset */
        } snapshot_resp;
        struct {
            uint64_t ctx; /* the follower's read request id */
        } read_index;
        struct {
            uint64_t ctx;
            raft_index index;
            bool reject;
        } read_index_resp;
    };
};

/* Frees what a message owns (entries and their data, snapshot data). */
void raft_message_close(struct raft_message *m);

enum raft_role {
    RAFT_FOLLOWER = 1,
    RAFT_PRE_CANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER,
};

struct raft_options {
    raft_id id;                  /* this node, != 0 */
    uint64_t seed;               /* PRNG seed: same seed, same run */
    unsigned election_timeout;   /* ms; randomized in [t, 2t) */
    unsigned heartbeat_interval; /* ms; < election_timeout */
    size_t max_append_bytes;     /* soft cap of entry bytes per AppendEntries */
    unsigned max_inflight;       /* AppendEntries in flight per follower */
    uint32_t snapshot_chunk_bytes;
    raft_index snapshot_trailing; /* entries kept behind a snapshot */
    raft_index learner_catchup;   /* promote only if match >= commit - this */
    bool pre_vote;
    bool check_quorum;
    /* Lease-based reads (thesis §6.4.1): a leader that a quorum heard from
     * recently answers read-index requests at once, without a heartbeat
     * round. Safe only while clocks run at nearly the same rate, see
     * clock_drift_permille; every voter must run a core that keeps vote
     * leases (any version with this field does, whatever its value). */
    bool lease_reads;
    /* The bound, in thousandths, on how much faster any server's clock may
     * run than the leader's over an election timeout (rate drift plus the
     * staleness of the `now` the driver passes, see the driver contract).
     * The lease lasts election_timeout * (1000 - clock_drift_permille) /
     * 1000 from the send time of the heartbeat a quorum acknowledged.
     * Default 100 (a lease of 0.9 election timeouts). 1000: no lease. */
    unsigned clock_drift_permille;
    /* ms. A confirm read (raft_read_index_confirm) is answered without a
     * new heartbeat round when the lease holds (so never with lease_reads
     * off) and a majority of the voters of the configuration in effect,
     * the leader included, acknowledged a heartbeat or AppendEntries that
     * the leader sent less than confirm_window ms before `now`. 0: every
     * confirm read waits for a round started after it (the behaviour
     * before this option). RAFT_CONFIRM_WINDOW_HEARTBEAT (the default):
     * the heartbeat interval. A window of a lease or longer makes confirm
     * reads no stronger than lease reads. */
    unsigned confirm_window;
    /* How a leader tells followers of a new commit index when it has no
     * new entries for them. false: at once, with an empty AppendEntries to
     * each (so followers apply within a round trip). true: only to a
     * follower that waits on it, because it forwarded the entry
     * (raft_commit_wanted) or asked for a read index the leader just
     * answered; the others learn it with the next AppendEntries or
     * heartbeat (their state machines lag by up to a heartbeat interval
     * when the leader has nothing else to send). Saves a message, its
     * answer and the follower's wake-up per commit. Default false. */
    bool lazy_commit;
    /* Optional: called with a readable line for every decision. */
    void (*trace)(void *data, raft_id id, const char *line);
    void *trace_data;
};

/* Fills o with defaults: election 1000ms, heartbeat 100ms, 1 MiB per
 * AppendEntries, 64 appends in flight, 1 MiB snapshot chunks, 1024 entries
 * kept behind a snapshot, learner_catchup 64, pre-vote and check-quorum on,
 * lease reads on with clock_drift_permille 100, confirm_window
 * RAFT_CONFIRM_WINDOW_HEARTBEAT, seed 0, no trace; id = 0 (the caller must
 * set it). */
void raft_options_default(struct raft_options *o);
/* raft_options.confirm_window: as long as heartbeat_interval. */
#define RAFT_CONFIRM_WINDOW_HEARTBEAT (~0u)

/*
 * What a node had persisted when it stopped. The core copies everything.
 * entries are the stored log after the snapshot, contiguous, the first one
 * at snap_index + 1. A new node of a new cluster passes the bootstrap entry;
 * a node joining a running cluster passes nothing (it waits to be contacted).
 */
struct raft_load {
    raft_term term;
    raft_id vote;
    raft_index snap_index; /* 0 if no snapshot */
    raft_term snap_term;
    struct raft_config snap_config;
    uint64_t snap_size;
    raft_index applied; /* state machine applied index, >= snap_index */
    const struct raft_entry *entries;
    size_t n_entries;
};

struct raft; /* opaque */

/*
 * Creates a core. Returns 0, RAFT_ERR_INVALID (bad options), RAFT_ERR_CORRUPT
 * (entries not contiguous, bad config entry) or RAFT_ERR_NOMEM. `now` starts
 * the election timer.
 */
int raft_new(const struct raft_options *o, const struct raft_load *l,
             raft_time now, struct raft **out);
void raft_free(struct raft *r);

/* Inputs. Each returns 0 or an error; none ever asserts on bad input. */

/* A message from a peer. Unknown senders, stale terms, out-of-range indexes
 * are ignored or answered per the protocol (return 0). Structurally bad
 * messages (type out of range, from 0 or from this node, to another node)
 * return RAFT_ERR_INVALID and change nothing. Messages from servers outside
 * the configuration are ignored except APPEND/HEARTBEAT/SNAPSHOT (handled as
 * from any leader: accepted at a term >= ours, else answered with our term)
 * and VOTE (answered per §5.2; leases and pre-vote keep removed servers
 * from disrupting), and TIMEOUT_NOW from our current leader (a leader that
 * removed itself hands over with it): a joining node knows no one, and a lagging node may not
 * yet know a leader or candidate added after its log ends (Raft's safety
 * does not depend on the sender being a member). The message stays the
 * caller's. */
int raft_step(struct raft *r, raft_time now, const struct raft_message *m);

/* Time passed: election timeouts, heartbeats, check-quorum, retries. */
int raft_tick(struct raft *r, raft_time now);

/* The driver made entries up to (index, term) durable (contract step 3).
 * (index, term) is the last entry of an update's entries, or its installed
 * snapshot. Reports are matched, in order, with the updates the core handed
 * out: one report also covers every earlier update (a driver that batches
 * may report only the last); a report matching no outstanding update is
 * stale and ignored. Entries truncated or wiped by an install after the
 * update was produced are never counted. */
int raft_persisted(struct raft *r, raft_time now, raft_index index,
                   raft_term term);

/* Appends a command. Returns 0 and the entry's index and term, or
 * RAFT_ERR_NOT_LEADER, RAFT_ERR_TRANSFERRING, RAFT_ERR_TOO_BIG. The command
 * applied at *index is this one only if the entry there has term *term. */
int raft_propose(struct raft *r, raft_time now, const struct raft_buf *cmd,
                 raft_index *index, raft_term *term);

/* On the leader: follower `id` waits for `index` to commit (it forwarded
 * the entry there), so with lazy_commit it is told as soon as it does.
 * Does nothing on a follower or for an unknown id. */
void raft_commit_wanted(struct raft *r, raft_id id, raft_index index);

/* Asks for a read index (thesis §6.4) under the caller's id `ctx`. The answer
 * arrives in a later update's reads, exactly once per call: status 0 and the
 * index, or RAFT_ERR_NOT_LEADER / RAFT_ERR_LEADERSHIP_LOST. Followers ask the
 * leader; their read fails with RAFT_ERR_NOT_LEADER if the leader changes or
 * does not answer within two election timeouts. A leader batches: all reads
 * asked before an update is collected share one heartbeat round. With
 * lease_reads, a leader whose lease holds at `now` answers in the next
 * update without a round (so does it for reads its followers forward):
 * `now` must then be fresh, read from the clock just before the call, not
 * a time cached since before the process could have been stopped. */
int raft_read_index(struct raft *r, raft_time now, uint64_t ctx);

/* The same, but not answered from the lease alone: for a caller that asks
 * "could this node reach a quorum just now?" (a lease outlives the quorum
 * by up to 0.9 election timeouts), such as raftfs's open for writing. The
 * leader answers once a quorum acknowledged a heartbeat round started
 * after the call, or at once (next update, no round) if its lease holds
 * and a quorum acknowledged a heartbeat or AppendEntries sent less than
 * raft_options.confirm_window ms before `now` (the same `now` freshness
 * rule as above applies). Forwarded by a follower, the leader's `now` and
 * window decide. ctx must be below 2^63 (for both calls): a follower
 * marks its request to the leader with the top bit (RAFT_ERR_INVALID). */
int raft_read_index_confirm(struct raft *r, raft_time now, uint64_t ctx);

/* Leadership transfer (thesis §3.10) to `target` (0: the most up-to-date
 * voter). New proposals are refused until it completes or times out after
 * an election timeout. */
int raft_transfer(struct raft *r, raft_time now, raft_id target);

enum raft_change_op {
    RAFT_ADD_LEARNER = 1,
    RAFT_PROMOTE,
    RAFT_REMOVE,
};

/* One membership change (thesis §4.1), leader only, one at a time
 * (RAFT_ERR_BUSY while the last one is uncommitted, and until the leader
 * has committed an entry of its term). The new configuration takes effect
 * when appended, and reverts if its entry is truncated. *index is its
 * entry's index. Errors: RAFT_ERR_NOT_LEADER, RAFT_ERR_TRANSFERRING,
 * RAFT_ERR_BUSY, RAFT_ERR_EXISTS (add an existing id, promote a voter),
 * RAFT_ERR_NOT_FOUND, RAFT_ERR_NOT_CAUGHT_UP (promote: the learner's match
 * is below commit - learner_catchup), RAFT_ERR_INVALID (id 0, address
 * missing or too long, full configuration, removing the last voter).
 * A leader that removes itself leads, without counting itself, until the
 * change commits, then steps down and sends TimeoutNow to the most
 * up-to-date voter if one is caught up. Elections are started only by voters of
 * the latest configuration, or by a voter of the previous one while its
 * removal is uncommitted (it may hold the only up-to-date log; it counts
 * only the new configuration's voters). */
int raft_change(struct raft *r, raft_time now, enum raft_change_op op,
                raft_id id, const char *addr, raft_index *index);

/* The application holds a snapshot of its state as of `index` (<= applied),
 * `size` bytes, readable by offset. The core compacts its log up to
 * index - snapshot_trailing (u.compact_to) and uses this snapshot for
 * lagging followers, in chunks of snapshot_chunk_bytes, a window of up to
 * min(max_inflight, 16) chunks in flight. Transfers of an older snapshot
 * restart with the new one (chunk requests carry the index: a driver that
 * no longer has it drops the request; the core resends after an election
 * timeout). Snapshotting more often than a transfer takes starves slow
 * followers. Returns 0 (also for an index <= the current snapshot's) or
 * RAFT_ERR_INVALID (0, beyond what was handed out to apply, or unknown). */
int raft_snapshot_taken(struct raft *r, raft_index index, uint64_t size);

/* Output. */

struct raft_read_state {
    uint64_t ctx;
    raft_index index;
    int status; /* 0, RAFT_ERR_NOT_LEADER, RAFT_ERR_LEADERSHIP_LOST */
};

struct raft_snapshot_meta {
    raft_index index;
    raft_term term;
    struct raft_config config;
    uint64_t size;
};

struct raft_update {
    /* Soft state, always filled. */
    uint8_t role; /* enum raft_role */
    raft_id leader;
    raft_term term;
    raft_index commit;

    bool hard_state_changed;
    raft_term hs_term;
    raft_id hs_vote;

    bool has_snapshot_install;
    struct raft_snapshot_meta snapshot_install;

    bool has_snapshot_chunk;
    struct raft_snapshot_meta snapshot_chunk_meta;
    uint64_t snapshot_chunk_offset;
    struct raft_buf snapshot_chunk;

    struct raft_entry *entries;
    size_t n_entries;

    struct raft_message *messages;
    size_t n_messages;
    struct raft_message *messages_after_persist;
    size_t n_messages_after_persist;

    struct raft_entry *committed;
    size_t n_committed;

    struct raft_read_state *reads;
    size_t n_reads;

    raft_index compact_to;
    raft_time next_timeout;
};

/* Moves everything produced since the last call into *u (which the caller
 * owns and must release with raft_update_close). Returns true if the update
 * holds anything to do besides the soft state and next_timeout. A leader
 * sends new entries and commit-index news here, once per follower per
 * update: call it after each batch of inputs (once per loop iteration). */
bool raft_ready(struct raft *r, struct raft_update *u);
void raft_update_close(struct raft_update *u);

/* Introspection (cheap, no side effects). */
enum raft_role raft_role(const struct raft *r);
raft_id raft_leader(const struct raft *r);
raft_term raft_current_term(const struct raft *r);
raft_index raft_commit_index(const struct raft *r);
raft_index raft_last_index(const struct raft *r);
/* The configuration in effect (the last one appended). */
const struct raft_config *raft_configuration(const struct raft *r);
/* The last committed configuration. */
const struct raft_config *raft_committed_configuration(const struct raft *r);

struct raft_progress_info {
    raft_id id;
    raft_index match;
    raft_index next;
    uint8_t state; /* 1 probe, 2 replicate, 3 snapshot */
    bool recent_active;
};
/* Leader only: fills up to `cap` entries, returns how many peers there are. */
size_t raft_progress(const struct raft *r, struct raft_progress_info *out,
                     size_t cap);

/* Counters of how reads were answered, since raft_new (for measurement). */
struct raft_read_stats {
    uint64_t lease_reads; /* answered under the leader's lease, no round */
    uint64_t round_reads; /* answered after a heartbeat round */
    uint64_t rounds;      /* heartbeat rounds started for waiting reads */
    /* Confirm reads answered under the lease from a quorum contact less
     * than confirm_window old, no round (not in lease_reads). */
    uint64_t window_reads;
};
void raft_read_stats(const struct raft *r, struct raft_read_stats *out);
/* Leader only: true if the lease holds at `now` (lease_reads on, a quorum
 * acknowledged a recent enough heartbeat sent since the last configuration
 * change, an entry of this term committed, no TimeoutNow sent this term).
 * For tests and diagnostics. */
bool raft_lease_valid(const struct raft *r, raft_time now);

/* Entries the core holds in memory, for inspection by tests and the
 * simulator: returns the entry at index or NULL (compacted or beyond). The
 * pointer is valid until the next input call. */
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index);
raft_index raft_first_index(const struct raft *r);

#endif /* RAFT_H */
