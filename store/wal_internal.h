/* Internals of the WAL shared by wal.c, wal_file.c, wal_recover.c. */
#ifndef STORE_WAL_INTERNAL_H
#define STORE_WAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The byte layout is drawn in wal.h. */
#define WAL_MAGIC "RAFTFSWL"
#define WAL_VERSION 1u
#define WAL_SEG_HDR STORE_WAL_SEG_HDR
#define WAL_REC_HDR STORE_WAL_REC_HDR
#define WAL_KIND_ENTRY 1
#define WAL_FLAG_END 0x1 /* last record of its batch */
#define WAL_TMP_NAME "wal.tmp"
#define WAL_ZERO_CHUNK ((size_t)1 << 20)

/* Bytes a record with len bytes of data takes. */
static inline size_t store__wal_rec_size(size_t len)
{
    return WAL_REC_HDR + ((len + 7) & ~(size_t)7);
}

static inline bool store__wal_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* The segment with this seq (segments are consecutive). Caller holds mu or
 * is the writer. */
static inline struct store_wal_seg *store__wal_seg_of(struct store_wal *w,
                                                      uint64_t seq)
{
    return &w->segs[seq - w->segs[0].seq];
}

/* wal_file.c */

/* CRC32C (crc32c.h) with the tables in w: of buf; and of a record
 * header h (the hcrc: the segment's salt, then bytes 4..40). */
uint32_t store__wal_crc32c(const struct store_wal *w, const void *buf,
                           size_t len);
uint32_t store__wal_hdr_crc(const struct store_wal *w, uint64_t salt,
                            const uint8_t *h);

/* pwrite/pread all of len at off, retrying EINTR; pread says -EIO when the
 * file is shorter. 0 or -errno. */
int store__wal_pwrite(int fd, const void *buf, size_t len, uint64_t off);
int store__wal_pread(int fd, void *buf, size_t len, uint64_t off);
/* dir/wal-<seq> into buf (PATH_MAX). */
void store__wal_seg_path(const struct store_wal *w, char *buf, uint64_t seq);
int store__wal_sync_dir(struct store_wal *w);
/* Creates segment seq of `size` bytes (zeros and header, fsynced, renamed
 * into place, directory fsynced) and fills *seg (its fd owned by it).
 * 0 or -errno (-ENOSPC); nothing is left behind on failure. */
int store__wal_seg_create(struct store_wal *w, uint64_t seq, uint64_t size,
                          struct store_wal_seg *seg);
/* Appends *seg to w->segs (caller holds mu once readers may run). */
int store__wal_segs_push(struct store_wal *w, const struct store_wal_seg *seg);

/* The in-memory index (caller holds mu, or runs alone at open): room for
 * `more` entries; add one entry by the replay rule (STORE_ERR_GAP if it
 * would leave a gap); look one up (NULL if not stored); drop <= to. */
int store__wal_idx_room(struct store_wal *w, size_t more);
int store__wal_idx_put(struct store_wal *w, raft_index index,
                       const struct store_wal_ent *e);
const struct store_wal_ent *store__wal_idx_get(const struct store_wal *w,
                                               raft_index index);
void store__wal_idx_compact(struct store_wal *w, raft_index to);

#endif /* STORE_WAL_INTERNAL_H */
