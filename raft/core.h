/* Internal state of the Raft core, shared by its files (never installed). */
#ifndef RAFT_CORE_H
#define RAFT_CORE_H

#include "raft.h"

/* Replication state of one follower as seen by the leader (etcd's Progress):
 * PROBE sends one AppendEntries at a time until the follower's match point is
 * found; REPLICATE streams up to max_inflight appends optimistically;
 * SNAPSHOT waits for a chunked InstallSnapshot to finish. */
enum { RAFT__PROBE = 1, RAFT__REPLICATE = 2, RAFT__SNAPSHOT = 3 };

/* In-memory log: the entries after `offset`, in a ring buffer of `cap`
 * slots (a power of two). Term lookup by index is O(1). */
struct raft__log {
    struct raft_entry *ents; /* owned, and so is each entry's data */
    size_t cap;
    size_t head;           /* slot holding index offset + 1 */
    size_t n;              /* entries held: offset + 1 .. offset + n */
    raft_index offset;     /* index before the first entry held */
    raft_term offset_term; /* its term; 0 when offset == 0 */
};

/* The configurations of the log: v[0] is the one in effect at or before the
 * log's offset (the "base"), the others come from CONFIG entries still held in
 * memory. Invariant: n >= 1 and indexes strictly increase. */
struct raft__conf_ent {
    raft_index index;
    struct raft_config c;
};
struct raft__confs {
    struct raft__conf_ent *v; /* owned */
    size_t n, cap;
};

struct raft__progress {
    raft_id id; /* 0: free slot */
    /* Invariant: match < next (while id != 0). */
    raft_index match;
    raft_index next;
    uint8_t state;      /* RAFT__PROBE, RAFT__REPLICATE, RAFT__SNAPSHOT */
    bool probe_sent;    /* PROBE: an append is outstanding, wait */
    bool recent_active; /* heard from since the last check-quorum round */
    /* REPLICATE: last index of each append in flight, a ring of
     * max_inflight slots pointing into raft.infl_slab. */
    raft_index *infl;
    unsigned infl_head, infl_n;
    uint64_t read_seq; /* highest message seq this peer acked */
    raft_index hb_match; /* match at the previous heartbeat response */
    raft_index sent_commit; /* highest commit index sent to this peer */
    raft_index want_commit; /* the peer waits for this commit (lazy_commit) */
    /* SNAPSHOT: the snapshot being sent, the offset the follower wants
     * next (acked), the offset after the last chunk sent, a window of
     * chunks in flight between them. Invariant: snap_offset <= snap_next. */
    raft_index snap_index;
    uint64_t snap_offset;
    uint64_t snap_next;
    uint64_t snap_rewind; /* 1 + offset of the last rewind, 0: none since
                           * the last progress (one rewind per gap) */
    bool snap_last_sent;
    raft_time snap_sent_at;
};

/* A read waiting on the leader (thesis §6.4). seq 0: waits for the leader's
 * no-op to commit; otherwise the heartbeat round that must confirm it. */
struct raft__read {
    uint64_t ctx;
    raft_id from; /* 0: local, else the follower that asked */
    raft_index index;
    uint64_t seq;
    bool confirm; /* raft_read_index_confirm: never from the lease */
};

/* Set in the ctx of a READ_INDEX that a follower sends for a confirm read
 * (the wire has no other room); the leader echoes it, the follower strips
 * it. Callers' ctx values stay below it. */
#define RAFT__READ_CONFIRM (1ull << 63)

struct raft__msgs {
    struct raft_message *v; /* owned, each message owns its content */
    size_t n, cap;
};

struct raft {
    struct raft_options o;
    uint64_t prng; /* splitmix64 state */
    raft_time now; /* latest time seen; never decreases */

    /* Persistent state (paper Fig. 2). */
    raft_term term;
    raft_id vote;
    bool hs_dirty; /* term/vote changed since the last raft_ready() */

    uint8_t role;
    raft_id leader;

    struct raft__log log;
    /* Invariant: log.offset <= applied_out <= commit <= last index. */
    raft_index commit;
    /* Highest index the driver reported durable. Invariant: <= last index. */
    raft_index persisted;
    /* Last index handed out in an update's committed entries.
     * Invariant: applied_out <= min(commit, persisted) after raft_ready. */
    raft_index applied_out;
    /* First index appended since the last raft_ready(), 0 if none. */
    raft_index persist_from;
    /* Updates handed out whose persistence is not reported yet, oldest
     * first: the (index, term) the driver will report, and how far the log
     * is durable once it does (lowered by later truncations and installs,
     * so a late report never vouches for entries written afterwards). */
    struct raft__pend {
        raft_index index; /* last entry, or the install if no entries */
        raft_term term;
        raft_index snap_index; /* the install of that update, or 0 */
        raft_term snap_term;
        raft_index durable;
    } *pend;
    size_t n_pend, cap_pend;

    /* The application's latest snapshot. Invariant: snap_index >= log.offset
     * unless snap_index == 0. */
    raft_index snap_index;
    raft_term snap_term;
    struct raft_config snap_config;
    uint64_t snap_size;

    struct raft__confs confs;

    /* Timers. */
    unsigned randomized_timeout;
    raft_time election_deadline;
    raft_time heartbeat_deadline;
    raft_time cq_deadline;
    raft_time last_heard; /* last message from the current leader */

    /* Candidate / pre-candidate tally: 1 granted, -1 rejected. */
    struct {
        raft_id id;
        int8_t granted;
    } votes[RAFT_MAX_SERVERS];
    unsigned n_votes;

    /* Leader. */
    struct raft__progress prs[RAFT_MAX_SERVERS];
    raft_index *infl_slab; /* RAFT_MAX_SERVERS * max_inflight, owned */
    struct raft__read *reads; /* pending reads, owned */
    size_t n_reads, cap_reads;
    /* Follower: reads asked of the leader, answered once each; seq holds
     * the time asked. */
    struct raft__read *freads;
    size_t n_freads, cap_freads;
    /* What the leader sends in a term is numbered 1, 2, ... (the seq its
     * heartbeats and appends carry, echoed by the followers; read_index.c).
     * Each heartbeat broadcast takes a new seq and is a read-index round;
     * appends take a new seq at most once per RAFT__SEQ_GRANULE, else
     * carry the current one. Acks confirm reads and renew the lease. */
    uint64_t read_seq;   /* last seq sent */
    uint64_t read_acked; /* last seq acked by a quorum (with us) */
    uint64_t read_round; /* last broadcast started for waiting reads */
    bool read_round_wanted; /* reads wait for a round not yet started */
    /* Lease (thesis §6.4.1): hb_sent[seq % RAFT__HB_RING] is the `now` at
     * which the last RAFT__HB_RING seqs were first sent. The lease starts
     * at the send time of read_acked, if read_acked >= lease_from (acks of
     * seqs sent before the lease was last voided do not count) and still
     * in the ring. Invariant: lease_from >= 1 while leader. Appends take
     * at most ~256 seqs per election timeout (the granule), so they cannot
     * push an acked seq out of the ring within a lease; heartbeats take
     * election_timeout / heartbeat_interval. */
#define RAFT__HB_RING 1024
#define RAFT__SEQ_GRANULE(r) RAFT__MAX(1u, (r)->o.election_timeout / 256)
    raft_time hb_sent[RAFT__HB_RING];
    uint64_t lease_from;
    bool lease_barred; /* TimeoutNow sent: no lease for the rest of the term */
    struct raft_read_stats read_stats;
    raft_id transfer_target;
    raft_time transfer_deadline;
    /* New entries or a new commit index wait for raft_ready() to go out:
     * one AppendEntries per follower per update, however many proposals
     * or acknowledgements came in between. */
    bool flush_pending;

    /* Follower: the snapshot being received (thesis §5.3 InstallSnapshot). */
    bool rx_active;
    raft_index rx_index;
    raft_term rx_term;
    uint64_t rx_size;
    uint64_t rx_offset; /* next offset wanted */
    struct raft_config rx_config;

    /* Output accumulated until the next raft_ready(). */
    struct raft__msgs out;
    struct raft__msgs out_after;
    struct raft_read_state *out_reads;
    size_t n_out_reads, cap_out_reads;
    bool has_install;
    struct raft_snapshot_meta install;
    bool has_chunk;
    struct raft_snapshot_meta chunk_meta;
    uint64_t chunk_offset;
    struct raft_buf chunk; /* owned */
    raft_index compact_to;
    int nomem; /* sticky allocation failure to report */
};

/* util.c */
void raft__trace(struct raft *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t raft__rand(struct raft *r);
/* Queues a message for the next update; after_persist: it promises state
 * being persisted by that update. Returns a zeroed message with type, from,
 * to and term filled, or NULL (out of memory, recorded in r->nomem). */
struct raft_message *raft__send(struct raft *r, uint8_t type, raft_id to,
                                bool after_persist);
void raft__msgs_close(struct raft__msgs *q);
void raft__emit_read(struct raft *r, uint64_t ctx, raft_index index,
                     int status);
int raft__copy_entry(struct raft_entry *dst, const struct raft_entry *src);

/* Caps what pending persistence reports may vouch for at `upto`. */
void raft__pend_clamp(struct raft *r, raft_index upto);

/* log.c */
void raft__log_init(struct raft__log *l, raft_index offset, raft_term term);
void raft__log_close(struct raft__log *l);
raft_index raft__log_last(const struct raft__log *l);
raft_term raft__log_last_term(const struct raft__log *l);
/* Term at index i: offset_term at offset, 0 when unknown (compacted/beyond). */
raft_term raft__log_term(const struct raft__log *l, raft_index i);
/* Entry at i, or NULL. Valid until the log changes. */
const struct raft_entry *raft__log_get(const struct raft__log *l,
                                       raft_index i);
/* Appends a copy of data at last + 1. Returns 0 or RAFT_ERR_NOMEM. */
int raft__log_append(struct raft__log *l, raft_term term, uint8_t type,
                     const void *data, size_t len);
/* Drops the entries with index >= from. Precondition: from > offset. */
void raft__log_truncate(struct raft__log *l, raft_index from);
/* Drops the entries with index <= upto. Precondition: offset <= upto <= last.
 */
void raft__log_compact(struct raft__log *l, raft_index upto);
/* Drops everything and restarts after (offset, term). */
void raft__log_reset(struct raft__log *l, raft_index offset, raft_term term);
/* First index held with the same term as index i (offset < i <= last). */
raft_index raft__log_first_of_term(const struct raft__log *l, raft_index i);
/* Last index held (or the offset) with term == t, 0 if none. */
raft_index raft__log_last_of_term(const struct raft__log *l, raft_term t);

/* config.c */
int raft__confs_init(struct raft__confs *cs, raft_index index,
                     const struct raft_config *c);
void raft__confs_close(struct raft__confs *cs);
int raft__confs_push(struct raft__confs *cs, raft_index index,
                     const struct raft_config *c);
/* Drops configurations with index >= from (never the base). Returns true if
 * the latest one changed. */
bool raft__confs_truncate(struct raft__confs *cs, raft_index from);
void raft__confs_compact(struct raft__confs *cs, raft_index upto);
const struct raft__conf_ent *raft__confs_at(const struct raft__confs *cs,
                                            raft_index i);
const struct raft__conf_ent *raft__confs_last(const struct raft__confs *cs);
bool raft__is_voter(const struct raft_config *c, raft_id id);
unsigned raft__n_voters(const struct raft_config *c);

/* quorum.c */
/* The largest value that a majority of the n values reach (n > 0). Sorts
 * vals in place. */
uint64_t raft__quorum_value(uint64_t *vals, unsigned n);
/* True if granted voters out of n form a majority. */
bool raft__quorum_ok(unsigned granted, unsigned n);

/* progress.c */
struct raft__progress *raft__progress_get(struct raft *r, raft_id id);
/* Makes the progress slots match the configuration in effect: keeps known
 * peers, adds new ones at last index + 1 in PROBE. */
void raft__progress_sync(struct raft *r);
void raft__progress_reset_all(struct raft *r);
void raft__progress_become_probe(struct raft *r, struct raft__progress *p);
void raft__progress_become_replicate(struct raft *r, struct raft__progress *p);
bool raft__progress_infl_full(const struct raft *r,
                              const struct raft__progress *p);
void raft__progress_infl_add(struct raft *r, struct raft__progress *p,
                             raft_index last);
void raft__progress_infl_free_to(struct raft *r, struct raft__progress *p,
                                 raft_index index);

/* election.c */
void raft__reset_election_timer(struct raft *r);
void raft__become_follower(struct raft *r, raft_term term, raft_id leader);
void raft__campaign(struct raft *r, bool pre_vote, bool transfer);
void raft__recv_vote(struct raft *r, const struct raft_message *m);
void raft__recv_vote_resp(struct raft *r, const struct raft_message *m);
void raft__election_tick(struct raft *r);
bool raft__self_is_voter(const struct raft *r);
/* Voter of the latest configuration, or of the previous one while the
 * latest (its removal) is uncommitted. */
bool raft__can_campaign(const struct raft *r);
bool raft__in_lease(const struct raft *r);

/* replication.c */
/* Sends what p needs (entries, or a snapshot). allow_empty: send even with
 * no entries (to carry commit or probe). Returns true if something was sent.
 */
bool raft__send_append(struct raft *r, struct raft__progress *p,
                       bool allow_empty);
void raft__bcast_append(struct raft *r, bool allow_empty);
/* A peer waits for index to commit (raft.h: raft_commit_wanted). */
void raft__commit_wanted(struct raft *r, raft_id id, raft_index index);
/* raft_ready(): send what flush_pending deferred. */
void raft__flush_appends(struct raft *r);
void raft__bcast_heartbeat(struct raft *r);
/* Leader: advance commit from the match indexes (paper §5.4.2). */
bool raft__maybe_commit(struct raft *r);
/* Appends one entry to the local log; config entries take effect. */
int raft__append_local(struct raft *r, raft_term term, uint8_t type,
                       const void *data, size_t len);
/* Truncates the local log from `from`, reverting configurations. */
void raft__truncate_local(struct raft *r, raft_index from);
void raft__recv_append(struct raft *r, const struct raft_message *m);
void raft__recv_append_resp(struct raft *r, const struct raft_message *m);
void raft__recv_heartbeat(struct raft *r, const struct raft_message *m);
void raft__recv_heartbeat_resp(struct raft *r, const struct raft_message *m);
void raft__commit_advanced(struct raft *r);

/* read_index.c */
void raft__recv_read_index(struct raft *r, const struct raft_message *m);
void raft__recv_read_index_resp(struct raft *r, const struct raft_message *m);
/* Leader: a quorum may have acked newer rounds, or the no-op committed. */
void raft__reads_progress(struct raft *r);
/* raft_ready(): start the read round the pending reads need. */
void raft__reads_flush(struct raft *r);
/* Leadership ended: fail every pending read. */
void raft__reads_fail(struct raft *r, int status);
/* Follower: the leader changed, or (tick) reads waited too long. */
void raft__freads_fail(struct raft *r, bool only_expired);
/* Leader: a quorum may have acked a newer heartbeat broadcast. */
void raft__reads_acked(struct raft *r);
/* Leader: forget the acks collected so far; only broadcasts sent from now
 * on count toward the lease. bar: and none for the rest of the term. */
void raft__lease_void(struct raft *r, bool bar, const char *why);
/* Leader: the seq an AppendEntries queued now carries (a new one after a
 * granule or a lease void, else the current one). */
uint64_t raft__append_seq(struct raft *r);
/* Leader: p acknowledged a message of this term numbered seq. */
void raft__seq_acked(struct raft *r, struct raft__progress *p, uint64_t seq);

/* transfer.c */
void raft__transfer_check(struct raft *r, struct raft__progress *p);
void raft__transfer_abort(struct raft *r, const char *why);
void raft__recv_timeout_now(struct raft *r, const struct raft_message *m);

/* membership.c */
/* The configuration in effect changed (append, truncate, install). */
void raft__conf_changed(struct raft *r);
/* Commit advanced: the leader steps down if a committed config removed it. */
void raft__conf_commit_check(struct raft *r);

/* snapshot.c */
void raft__send_snapshot_chunk(struct raft *r, struct raft__progress *p);
void raft__recv_snapshot(struct raft *r, const struct raft_message *m);
void raft__recv_snapshot_resp(struct raft *r, const struct raft_message *m);
void raft__snapshot_tick(struct raft *r);

#define RAFT__MIN(a, b) ((a) < (b) ? (a) : (b))
#define RAFT__MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* RAFT_CORE_H */
