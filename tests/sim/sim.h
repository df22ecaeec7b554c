/* Internal declarations of the deterministic cluster simulator (raft-sim). */
#ifndef SIM_H
#define SIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "raft.h"

#define SIM_MAX_SLOTS 10 /* 7 initial voters + spares that may be added */
#define SIM_SPARES 2
#define SIM_KEYS 8       /* registers of the model state machine */
#define SIM_MAX_INDEX 10000000u /* an index beyond this is absurd */

/* ---- PRNG (xoshiro256**, seeded by splitmix64): one per run ---- */

struct sim_rng {
    uint64_t s[4];
};
void sim_rng_init(struct sim_rng *g, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *g);
/* Uniform in [0, n); n == 0 returns 0. */
uint64_t sim_rng_below(struct sim_rng *g, uint64_t n);
/* Uniform in [lo, hi]. */
uint64_t sim_rng_between(struct sim_rng *g, uint64_t lo, uint64_t hi);
/* True with probability per10k / 10000. */
bool sim_rng_chance(struct sim_rng *g, unsigned per10k);
/* A seed derived from (seed, a, b), for the cores' own PRNGs. */
uint64_t sim_mix(uint64_t seed, uint64_t a, uint64_t b);

/* ---- Event queue: a binary heap ordered by (time, node, kind, seq) ---- */

enum sim_event_kind {
    SIM_EV_PERSIST = 1, /* a node's oldest pending disk write completes */
    SIM_EV_DELIVER,     /* a message arrives */
    SIM_EV_TICK,        /* a node's next_timeout */
    SIM_EV_GARBAGE,     /* a garbage message is stepped into a node */
    SIM_EV_WORKLOAD,    /* a client operation */
    SIM_EV_FAULT,       /* crash, restart, partition, slow disk */
    SIM_EV_LIVENESS,    /* liveness-phase probe */
};

struct sim_event {
    raft_time time;
    unsigned node; /* slot; SIM_MAX_SLOTS for cluster-wide events */
    unsigned kind; /* enum sim_event_kind */
    uint64_t seq;  /* insertion order: ties break deterministically */
    uint32_t epoch; /* the node's incarnation the event belongs to */
    uint64_t arg;
    struct raft_message *msg; /* DELIVER: owned by the event (sim_msg_free) */
};

struct sim_queue {
    struct sim_event *heap;
    size_t n, cap;
    uint64_t next_seq;
};
void sim_queue_init(struct sim_queue *q);
/* Frees the heap and every message still held by an event. */
void sim_queue_close(struct sim_queue *q);
/* Copies *e (taking ownership of e->msg) and assigns its seq. */
void sim_queue_push(struct sim_queue *q, struct sim_event *e);
/* Pops the smallest event into *e (caller owns e->msg). False if empty. */
bool sim_queue_pop(struct sim_queue *q, struct sim_event *e);

/* ---- Messages: deep copies owned by the simulator ---- */

/* Returns a malloc'd deep copy of m; free it with sim_msg_free. */
struct raft_message *sim_msg_copy(const struct raft_message *m);
/* Frees a message made by sim_msg_copy or sim_msg_garbage (NULL is fine). */
void sim_msg_free(struct raft_message *m);
/* Writes a one-line readable description of m into buf. */
void sim_msg_describe(const struct raft_message *m, char *buf, size_t len);
const char *sim_msg_type_name(unsigned type);
/* Deep-copies n entries into a malloc'd array (NULL when n == 0). */
struct raft_entry *sim_entries_copy(const struct raft_entry *e, size_t n);
void sim_entries_free(struct raft_entry *e, size_t n);
/* FNV-1a over an entry's type and data: "same entry" for the checks. */
uint64_t sim_entry_hash(const struct raft_entry *e);

/* ---- Store fake: what a node has made durable ---- */

struct sim_store {
    raft_term term;
    raft_id vote;
    /* The installed or locally taken snapshot. */
    raft_index snap_index;
    raft_term snap_term;
    struct raft_config snap_config;
    uint8_t *snap; /* owned, snap_len bytes */
    size_t snap_len;
    /* A snapshot being received in chunks (not installed yet). */
    bool has_in;
    struct raft_snapshot_meta in_meta;
    uint8_t *in_buf; /* owned, in_meta.size bytes */
    uint64_t in_filled; /* contiguous bytes written from offset 0 */
    /* A durable state machine (like the daemon's LMDB one), when the seed
     * says so: updated atomically with each apply, survives crashes. */
    bool has_sm;
    uint64_t sm_regs[SIM_KEYS];
    raft_index sm_applied;
    raft_term sm_term;
    struct raft_config sm_config;
    /* The log: contiguous, log[0].index is the first stored index. */
    struct raft_entry *log; /* owned, with owned data */
    size_t n_log, cap_log;
};
void sim_store_init(struct sim_store *st);
void sim_store_close(struct sim_store *st);
/* Deletes entries >= e[0].index, then appends copies. Returns 0, or -1 with
 * a reason in why when the append would leave a gap. */
int sim_store_append(struct sim_store *st, const struct raft_entry *e,
                     size_t n, char *why, size_t wlen);
/* Deletes stored entries with index <= to. */
void sim_store_compact(struct sim_store *st, raft_index to);
/* Writes a received chunk (contract step 2b). */
void sim_store_chunk(struct sim_store *st, const struct raft_snapshot_meta *m,
                     uint64_t offset, const struct raft_buf *data);
/* Installs the received snapshot named by m (contract step 2a): returns 0,
 * or -1 with a reason when its bytes are not all there. */
int sim_store_install(struct sim_store *st, const struct raft_snapshot_meta *m,
                      char *why, size_t wlen);
/* Replaces the snapshot with one taken locally; takes ownership of bytes. */
void sim_store_set_snapshot(struct sim_store *st, raft_index index,
                            raft_term term, const struct raft_config *c,
                            uint8_t *bytes, size_t len);
/* The stored entry at index, or NULL. Valid until the next store call. */
const struct raft_entry *sim_store_entry(const struct sim_store *st,
                                         raft_index index);
/* True if (index, term) is durable: in the log, or covered by the snapshot. */
bool sim_store_holds(const struct sim_store *st, raft_index index,
                     raft_term term);
raft_index sim_store_last_index(const struct sim_store *st);

/* ---- Model state machine snapshot format ----
 *
 *   +----------+-----------+----------+----------------------+
 *   | u32 'RSNP'| u64 index | u32 nkeys| nkeys x u64 register |
 *   +----------+-----------+----------+----------------------+
 *   little-endian
 */
#define SIM_SNAP_LEN (4 + 8 + 4 + 8 * SIM_KEYS)
void sim_snap_encode(const uint64_t *regs, raft_index index, uint8_t *out);
int sim_snap_decode(const uint8_t *buf, size_t len, uint64_t *regs,
                    raft_index *index);

/* ---- Nodes (the driver) ---- */

struct sim_job; /* a pending persist, see node.c */
struct sim_apply_item;

struct sim_read {
    uint64_t ctx;
    unsigned slot;
    unsigned key;
    raft_time invoked;
    raft_index lo; /* highest index known committed at invocation */
    raft_index index; /* read index granted */
    bool waiting_apply;
};

struct sim_node {
    raft_id id;
    unsigned slot;
    bool alive;
    uint32_t epoch; /* incremented at each crash: stale events are dropped */
    struct raft *r;
    struct sim_store store;

    /* The model state machine (lost at a crash, rebuilt from the snapshot). */
    uint64_t regs[SIM_KEYS];
    raft_index applied;
    raft_term applied_term;
    struct raft_config sm_config;

    /* Persistence pipeline, in order. */
    struct sim_job *jobs_head, *jobs_tail;
    raft_time last_done;
    bool slow_disk;
    unsigned disk_delay_max;

    /* Apply pipeline, in order (entries, reads, snapshot restores). */
    struct sim_apply_item *apply_head, *apply_tail;
    struct sim_read *reads; /* granted, waiting for applied >= index */
    size_t n_reads, cap_reads;

    /* The node's own clock: the time its core is given at global time g
     * is clock_offset + g + g * skew / 10^6 (monotonic; a restart keeps
     * it, like a machine's monotonic clock across a process restart). */
    int64_t skew;          /* ppm, |skew| <= p.skew_ppm */
    raft_time clock_offset;

    raft_time next_tick; /* global time */
    bool tick_pending;
    /* Observations for the checks. */
    raft_term seen_term;
    raft_index seen_commit;
    uint8_t seen_role;
    raft_index lc_checked;
    raft_term lc_term;
    raft_term la_term;  /* Leader Append-Only: last leader term seen... */
    raft_index la_last; /* ...and the last index it emitted in that term */
    raft_time removed_since; /* leads outside its committed config (+1) */
    bool in_process;
    /* The last term in which it persisted a vote for a server of the
     * cluster (votes for ids that garbage made up do not count). */
    raft_term vote_term_max;
    /* Read stats of the node's earlier incarnations (cores freed). */
    struct raft_read_stats reads_acc;
    /* For the confirm_window check: the global time at which this node
     * last accepted an AppendEntries or heartbeat from slot j as the
     * leader of term heard_term[j] (kept across restarts: it happened). */
    raft_time heard_at[SIM_MAX_SLOTS];
    raft_term heard_term[SIM_MAX_SLOTS];
};

/* ---- The checker: safety properties over everything observed ---- */

struct sim_lm_variant {
    raft_term term;
    uint64_t hash;
    raft_term prev_term; /* 0: unknown */
};
struct sim_lm_slot {
    struct sim_lm_variant *v;
    unsigned n, cap;
};
struct sim_commit_rec {
    raft_term cterm; /* observer's term when first seen: committed by then */
    raft_term term;
    uint64_t hash;
    bool set;
    bool applied;
};
struct sim_write {
    raft_index index;
    uint64_t value;
};
struct sim_check {
    /* Election Safety: term -> leader (open addressing). */
    uint64_t *tl_keys, *tl_vals;
    size_t tl_cap, tl_n;
    /* Log Matching: index -> every (term, hash, prev term) seen. */
    struct sim_lm_slot *lm;
    size_t lm_cap;
    /* Committed entries: index -> (term, hash). */
    struct sim_commit_rec *cm;
    size_t cm_cap;
    raft_index commit_max;  /* highest index known committed */
    raft_index applied_max; /* highest index applied anywhere */
    /* Register history, from the applied entries in index order. */
    struct sim_write *wr[SIM_KEYS];
    size_t n_wr[SIM_KEYS], cap_wr[SIM_KEYS];
    uint64_t n_commands; /* committed commands */
    /* The first violation, if any. */
    bool failed;
    char why[1024];
};
void sim_check_init(struct sim_check *c);
void sim_check_close(struct sim_check *c);
/* Each returns true if the property still holds (else fills c->why). */
bool sim_check_leader(struct sim_check *c, raft_term term, raft_id id);
bool sim_check_log_entry(struct sim_check *c, raft_id id, raft_index index,
                         raft_term term, uint64_t hash, raft_term prev_term);
bool sim_check_committed(struct sim_check *c, raft_id id, raft_index index,
                         raft_term term, uint64_t hash, raft_term obs_term);
/* An entry was applied; cmd_key/cmd_value describe a "set" (key < 0: none). */
bool sim_check_applied(struct sim_check *c, raft_id id, raft_index index,
                       raft_term term, uint64_t hash, int key,
                       uint64_t value, raft_term obs_term);
/* The model's register value at index (from the applied history). */
uint64_t sim_check_value_at(const struct sim_check *c, unsigned key,
                            raft_index index);
/* A read of key returned value at the node's applied index hi. */
bool sim_check_read(struct sim_check *c, raft_id id, const struct sim_read *rd,
                    uint64_t value, raft_index hi);
void sim_check_fail(struct sim_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- The simulation ---- */

enum sim_phase { SIM_PHASE_FAULTS = 1, SIM_PHASE_LIVENESS, SIM_PHASE_DONE };

/* Deliberate driver bugs, for --self-test: the checker must catch them. */
enum sim_break {
    SIM_BREAK_NONE = 0,
    SIM_BREAK_ACK_BEFORE_PERSIST, /* promise, then lose it at a crash */
    SIM_BREAK_DROP_PERSISTED,     /* the store forgets its last entry */
    SIM_BREAK_FORGET_VOTE,        /* the store forgets the vote: a node
                                   * may vote twice in one term */
};

struct sim_params {
    unsigned election_timeout, heartbeat_interval;
    unsigned delay_min, delay_max; /* ms */
    unsigned drop, dup;            /* per10k */
    unsigned stale;                /* per10k: delayed by 1-5 election
                                    * timeouts (arrives very late) */
    unsigned garbage_every;        /* mean ms between garbage (0: none) */
    unsigned fault_every;          /* mean ms between faults */
    unsigned work_every;           /* mean ms between client operations */
    unsigned w_propose, w_propose_follower, w_read, w_transfer, w_change;
    unsigned w_crash, w_restart, w_partition, w_heal, w_slow;
    unsigned snapshot_every; /* take a snapshot every K applied entries */
    bool durable_sm;         /* the state machine survives crashes */
    bool pre_vote, check_quorum;
    size_t max_append_bytes;
    unsigned max_inflight;
    uint32_t chunk_bytes;
    raft_index trailing;
    bool lease_reads;      /* the cores' lease reads (thesis §6.4.1) */
    unsigned lease_drift;  /* the cores' clock_drift_permille */
    unsigned skew_ppm;     /* bound on each node's clock rate error */
    /* The cores' confirm_window, in ms as they use it (resolved from
     * RAFT_CONFIRM_WINDOW_HEARTBEAT). */
    unsigned confirm_window;
    bool lazy_commit; /* the cores' lazy_commit */
};

/* How a run's lease option is chosen (--lease). */
enum sim_lease { SIM_LEASE_SEED = 0, SIM_LEASE_ON, SIM_LEASE_OFF };

struct sim {
    uint64_t seed;
    struct sim_rng rng;
    raft_time now;
    struct sim_queue q;
    unsigned n_voters; /* initial cluster size */
    unsigned n_slots;  /* voters + spares */
    struct sim_node nodes[SIM_MAX_SLOTS];
    struct sim_params p;
    bool blocked[SIM_MAX_SLOTS][SIM_MAX_SLOTS]; /* [from][to] */
    enum sim_phase phase;
    uint64_t steps, max_steps;
    raft_time heal_time;
    /* Liveness probe. */
    bool probe_active;
    unsigned probe_slot;
    raft_index probe_index;
    raft_term probe_term;
    bool probe_committed;     /* then: every member must catch up... */
    raft_time converge_limit; /* ...by this time */
    uint64_t next_value, next_ctx;
    struct sim_read *pending; /* reads asked, not yet answered */
    size_t n_pending, cap_pending;
    struct sim_check chk;
    enum sim_break brk;
    bool lenient_reads; /* --lenient-reads: an unknown read answer is traced */
    bool safety_only;   /* --safety-only: no liveness phase */
    FILE *trace; /* NULL: no trace */
    /* Counters. */
    uint64_t n_msgs, n_dropped, n_garbage, n_crashes, n_reads_ok, n_changes,
        n_transfers, n_snapshots, n_installs;
    /* Read answers, summed over every core incarnation (raft_read_stats). */
    struct raft_read_stats reads;
    raft_time same_time_since;
    uint64_t same_time_events;
};

/* Knobs of a run beyond its seed (0 / SIM_LEASE_SEED: the seed decides). */
struct sim_knobs {
    enum sim_lease lease;
    int skew_ppm;    /* < 0: the seed decides; else every seed's bound */
    int lease_drift; /* < 0: the core's default clock_drift_permille */
    /* < 0: the seed decides; else every core's confirm_window (ms). */
    long confirm_window;
};

/* run.c */
void sim_init(struct sim *s, uint64_t seed, unsigned nodes, uint64_t steps,
              FILE *trace, enum sim_break brk);
/* Same, with knobs (sim_init uses the defaults: all from the seed). */
void sim_init_knobs(struct sim *s, uint64_t seed, unsigned nodes,
                    uint64_t steps, FILE *trace, enum sim_break brk,
                    const struct sim_knobs *k);
/* Node n's clock at the current global time, and the first global time
 * (>= now) at which its clock reads at least `local`. */
raft_time sim_clock(const struct sim *s, const struct sim_node *n);
raft_time sim_clock_global(const struct sim *s, const struct sim_node *n,
                           raft_time local);
void sim_close(struct sim *s);
/* Runs to the end; returns true if no violation was found. */
bool sim_run(struct sim *s);
void sim_tracef(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_fail(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* net.c */
void sim_net_send(struct sim *s, unsigned from_slot, struct raft_message *m);
void sim_net_deliver(struct sim *s, struct sim_event *ev);
void sim_net_garbage(struct sim *s);
int sim_slot_of(const struct sim *s, raft_id id); /* -1 if unknown */

enum sim_item_kind { ITEM_ENTRY = 1, ITEM_READ, ITEM_RESTORE };

/* Contract steps 4-5 in production order; a restore waits for its install. */
struct sim_apply_item {
    struct sim_apply_item *next;
    int kind;
    struct raft_entry e; /* ITEM_ENTRY, data owned */
    struct sim_read rd;  /* ITEM_READ */
    struct raft_snapshot_meta meta; /* ITEM_RESTORE */
    bool ready;
};

/* apply.c (contract steps 4-5) */
/* Appends it to n's apply pipeline; n owns it from now on. */
void sim_apply_push(struct sim_node *n, struct sim_apply_item *it);
/* Applies, serves and restores in order, up to a restore still waiting for
 * its install to be durable; then takes a snapshot if the policy says so. */
void sim_apply_drain(struct sim *s, struct sim_node *n);

/* node.c */
/* Starts (or restarts) n from exactly what its store holds (raft_load). */
void sim_node_start(struct sim *s, struct sim_node *n);
/* A crash: everything not yet persisted is lost (pending writes, the model
 * state machine unless durable, reads in flight). */
void sim_node_crash(struct sim *s, struct sim_node *n);
/* Collects and executes every pending update of n (the driver loop). */
void sim_node_process(struct sim *s, struct sim_node *n);
/* n's oldest pending write is durable: store it, send what waited for it
 * (contract step 3), call raft_persisted, apply, process. */
void sim_node_persist_done(struct sim *s, struct sim_node *n);
/* Frees the core and everything pending (not the store). */
void sim_node_close(struct sim_node *n);

/* observe.c: checks run after every event */
/* Election Safety, commits (durable majority, committed-entry records),
 * Leader Completeness, terms and commits never going back, removed
 * leaders stepping down. */
void sim_observe(struct sim *s);
/* Log Matching over every live in-memory log; every committed entry still
 * durable somewhere. */
void sim_observe_full(struct sim *s);
/* Lease reads (thesis §6.4.1): n's core answered reads from its lease in
 * the call just made if its lease count passed `before`. Then a majority
 * of its configuration's voters must still honor it: not one of them may
 * have voted in a later term (so no node may lead a later term either).
 * Stricter than the linearizability of the reads: it fails even when no
 * write followed, or no election completed. */
void sim_observe_lease(struct sim *s, struct sim_node *n, uint64_t before);
/* Reads n's core answered without a round under its lease: lease reads
 * and confirm reads answered from the window (both need the lease). */
uint64_t sim_lease_count(const struct sim_node *n);
/* Confirm reads (raft_read_index_confirm): n's core answered some from a
 * recent quorum contact, without a round, in the call just made if its
 * window count passed `before`. Then a majority of the voters of its
 * configuration (itself included) must have accepted an append or
 * heartbeat of its term within confirm_window of its clock before now
 * (with the clocks' skew bound and 2 ms of rounding slack). */
void sim_observe_window(struct sim *s, struct sim_node *n, uint64_t before);
uint64_t sim_window_count(const struct sim_node *n);
/* n accepted m from its leader (call after raft_step). */
void sim_observe_heard(struct sim *s, struct sim_node *n, unsigned from_slot,
                       const struct raft_message *m);
/* Majority of the voters of c durably hold (index, term)? */
bool sim_durable_majority(struct sim *s, const struct raft_config *c,
                          raft_index index, raft_term term, unsigned *count,
                          unsigned *voters);

/* workload.c: each reschedules itself */
/* One client operation: propose (to the leader, or to a follower that must
 * refuse), read index, leadership transfer, membership change. */
void sim_workload(struct sim *s);
/* One fault: crash, restart, partition (symmetric, one-way, isolate the
 * leader, minority/majority), heal, slow or fast disk. */
void sim_fault(struct sim *s);
/* Ends the fault phase (see workload.c). */
void sim_heal(struct sim *s);
/* Liveness phase: propose, wait for a majority, then for every member. */
void sim_liveness_probe(struct sim *s);

#endif /* SIM_H */
