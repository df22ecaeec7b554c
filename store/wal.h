/* The Raft log's write-ahead log: append-only, preallocated segment files. */
#ifndef STORE_WAL_H
#define STORE_WAL_H

/*
 * ON-DISK FORMAT. All integers big-endian. Files in the data directory:
 *
 *   wal-<seq as 16 hex digits>  segments, seq 1, 2, 3, ... with no gaps
 *   wal.tmp                     a segment being prepared (removed at open)
 *
 * A segment is created at its full size (zeros written, not a sparse
 * file, not fallocate's unwritten extents), fsynced, renamed into place and
 * the directory fsynced: appending into it never changes the file size or
 * its block map, so the fdatasync that makes a batch durable writes only
 * the data (no journal commit). Segment header, 64 bytes:
 *
 *   0         8         12        16        24        32        40      60
 *   +---------+---------+---------+---------+---------+---------+-------+-----+
 *   | magic   | u32 ver | u32 hdr | u64 seq | u64 salt| u64 size| zeros | crc |
 *   |"RAFTFSWL"|  = 1   | len =64 |         | (random)| created |       |     |
 *   +---------+---------+---------+---------+---------+---------+-------+-----+
 *   crc: u32 CRC32C of bytes 0..60.
 *
 * Then records, each at an 8-byte aligned offset:
 *
 *   0          4          8          12     13     14      15
 *   +----------+----------+----------+------+------+-------+----+
 *   | u32 hcrc | u32 dcrc | u32 len  | kind | type | flags | 0  |
 *   +----------+----------+----------+------+------+-------+----+
 *   16         24          32         40
 *   +----------+-----------+----------+------+-----+
 *   | u64 bseq | u64 index | u64 term | data | pad |
 *   +----------+-----------+----------+------+-----+
 *   hcrc: CRC32C of the segment's salt (8 bytes BE) then header bytes 4..40
 *         (a record copied from another segment, e.g. a WAL file stored as
 *         a value, does not verify here);
 *   dcrc: CRC32C of the data; len: data bytes; kind 1 = entry; type: the
 *   raft entry type; flags bit 0 = last record of its batch; bseq: the
 *   batch's sequence number; pad: zeros up to the next multiple of 8.
 *   An all-zero header ends the records of a segment.
 *
 * Meaning. Replaying the records of all segments in order rebuilds the log:
 * a record at index i (i <= last) first deletes every entry >= i (Raft
 * paper §5.3, a conflicting suffix), so a truncation is written as an
 * append. A batch (the records of one store_write, one bseq, bseq + 1 per
 * batch) counts only if its last record (flags bit 0) is there: a batch is
 * atomic. Two numbers kept in LMDB (meta "wal", see meta.c) finish the
 * picture: records of batches with bseq <= `dead` are ignored (a snapshot
 * install discarded them), and entries <= `compacted` are not part of the
 * log (store_batch_compact).
 *
 * RECOVERY (store__wal_open) accepts damage only where a crash can leave it:
 *   - the last segment may end in a torn batch (missing records, a bad
 *     checksum, garbage or zeros): the incomplete batch is dropped and the
 *     tail from its first byte is overwritten with zeros (and synced), so
 *     the next append continues cleanly after the last complete batch;
 *   - anywhere else (a bad record in an earlier segment, non-zero bytes
 *     after the end of an earlier segment, a valid record of ANOTHER batch
 *     after the damaged spot in the last segment, a bseq or segment number
 *     out of sequence, a bad segment header) is STORE_ERR_CORRUPT: those
 *     bytes were synced, a crash cannot have damaged them.
 * Damage inside the last batch cannot be told apart from a torn write of
 * that batch: the batch is dropped (it is the newest; an entry it held is
 * lost only if it was also damaged after its sync).
 *
 * Deleting segments. A segment is unlinked (oldest first, the directory
 * fsynced after each) only when every record in it has an index <=
 * min(compacted, snapshot index) - the snapshot's metadata is always
 * durable, so even if a compaction mark is lost in a power failure what is
 * gone is covered by the snapshot - or a bseq <= the `dead` mark (made
 * durable by its install). The active (last) segment is never deleted.
 *
 * Threads: one writer (store_write's thread) changes the WAL; the read
 * functions may run on any thread at the same time. `mu` guards the index
 * and the segment list; no lock is held across an fdatasync.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crc32c.h"
#include "raft.h"

#define STORE_WAL_SEGMENT_SIZE ((size_t)8 << 20) /* default: 8 MiB */
#define STORE_WAL_SEG_HDR 64
#define STORE_WAL_REC_HDR 40

struct store_wal_seg {
    uint64_t seq;
    uint64_t salt;
    uint64_t size;      /* file size */
    uint64_t end;       /* offset after the last complete batch */
    raft_index max_idx; /* largest index of a record in it (0: none) */
    uint64_t max_bseq;  /* largest bseq of a record in it (0: none) */
    int fd;             /* O_RDWR, owned */
};

/* Where one entry of the log is. */
struct store_wal_ent {
    uint64_t seq; /* segment */
    uint64_t off; /* of the record header */
    uint32_t len; /* data bytes */
    uint8_t type;
    raft_term term;
};

struct store_wal {
    pthread_mutex_t mu;
    int dir_fd; /* borrowed: the data directory (the store's lock fd) */
    char *dir;  /* borrowed */
    size_t seg_size;
    /* Segments, oldest first, consecutive seq; segs[n_segs - 1] is the
     * active one. Guarded by mu (readers use the fds). */
    struct store_wal_seg *segs;
    size_t n_segs, cap_segs;
    /* The log: entry first + i at ents[head + i], i < n. Guarded by mu.
     * Invariant: indexes contiguous; n == 0 means an empty log (first is
     * then meaningless). */
    struct store_wal_ent *ents;
    size_t head, n, cap;
    raft_index first;
    uint64_t next_bseq; /* bseq of the next batch */
    bool broken;        /* a write failed half-way: refuse further writes */
    uint8_t *buf;       /* the writer's encode buffer */
    size_t buf_cap;
    struct store_crc32c crc; /* CRC32C tables */
};

/* Opens the WAL in dir (dir_fd: that directory, borrowed), creating the
 * first segment if there is none, and recovers it as described above.
 * `compacted` and `dead` are the LMDB marks. Returns 0, STORE_ERR_CORRUPT
 * (msg says which file and where), -ENOSPC, or another -errno; on failure
 * nothing needs closing. msg: a buffer of msglen bytes for the reason. */
int store__wal_open(struct store_wal *w, int dir_fd, char *dir, size_t seg_size,
                    raft_index compacted, uint64_t dead, char *msg,
                    size_t msglen);
void store__wal_close(struct store_wal *w);

/* Reads (any thread). bounds: *n = 0 for an empty log, else first..last. */
void store__wal_bounds(struct store_wal *w, raft_index *first,
                       raft_index *last);
/* Term of a stored entry; -ENOENT if not stored. */
int store__wal_term(struct store_wal *w, raft_index index, raft_term *term);
/* Copies the stored entries lo..hi (hi clamped to the last index) into one
 * malloc'd block (array then data), owned by the caller. -ENOENT if lo is
 * not stored, STORE_ERR_CORRUPT if a record no longer verifies. */
int store__wal_get(struct store_wal *w, raft_index lo, raft_index hi,
                   struct raft_entry **out, size_t *n);

/* Writer thread only. */

/* The bytes n entries take in a segment. */
size_t store__wal_bytes(const struct raft_entry *const *e, size_t n);
/* Makes sure the active segment has `bytes` of room, rolling over to a new
 * preallocated segment if not (file + directory fsynced). -ENOSPC if the
 * disk is full; nothing else changes then. */
int store__wal_reserve(struct store_wal *w, size_t bytes);
/* Writes e[0..n) as one batch into the room reserved, fdatasyncs, then
 * makes them part of the log (replay rule: an index <= last truncates).
 * On a failure the WAL refuses further writes until reopened. */
int store__wal_write(struct store_wal *w, const struct raft_entry *const *e,
                     size_t n);
/* The bseq of the last batch written (the `dead` mark of an install). */
uint64_t store__wal_last_bseq(const struct store_wal *w);
/* Logical changes, after the LMDB transaction recording them committed:
 * reset empties the log (snapshot install); compact drops entries <= to. */
void store__wal_reset(struct store_wal *w);
void store__wal_compact(struct store_wal *w, raft_index to);
/* Deletes the oldest segments whose records all have index <= upto or
 * bseq <= dead (both durable), fsyncing the directory after each. */
int store__wal_gc(struct store_wal *w, raft_index upto, uint64_t dead);

#endif /* STORE_WAL_H */
