/* Private to store/fsm*.c and snapshot.c: record codecs and txn helpers. */
#ifndef STORE_FSM_INTERNAL_H
#define STORE_FSM_INTERNAL_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd.h"
#include "crc32c.h"
#include "fsm.h"

/* Sizes of the records drawn in fsm.h. */
#define FSM_INODE_VERSION 1
#define FSM_INODE_LEN 72
#define FSM_DIRENT_VAL_LEN 9
#define FSM_DIRENT_KEY_MAX (8 + STORE_NAME_MAX)
#define FSM_STATE_VERSION 1
#define FSM_STATE_LEN 40
#define FSM_STATE_KEY "state"
#define FSM_STATE_KEY_LEN 5

/* A lookup helper's "not there" (positive, so never mistaken for -errno). */
#define FSM_ABSENT 1

/* The decoded "state" record. */
struct fsm_state {
    raft_index applied;
    raft_term applied_term;
    uint64_t next_ino;
    uint64_t bytes;
};

/* Big-endian helpers. */
void fsm__put_u64(uint8_t *p, uint64_t v);
uint64_t fsm__get_u64(const uint8_t *p);
void fsm__put_u32(uint8_t *p, uint32_t v);
uint32_t fsm__get_u32(const uint8_t *p);

/* Maps an LMDB return code to -errno: MDB_MAP_FULL -> -ENOSPC,
 * MDB_TXN_FULL -> -E2BIG, system errors -> -errno, others -> -EIO. */
int fsm__lmdb_err(int rc);

/* 0, -EINVAL ('/' or NUL inside, "", ".", "..") or -ENAMETOOLONG. */
int fsm__name_check(const char *name, size_t len);

/* S_IFxxx for a type. */
uint32_t fsm__type_mode(uint8_t type);

/* Record codecs. decode functions return 0 or STORE_ERR_CORRUPT. */
void fsm__inode_encode(const struct store_attr *a, uint8_t out[FSM_INODE_LEN]);
int fsm__inode_decode(uint64_t ino, const void *buf, size_t len,
                      struct store_attr *a);
void fsm__state_encode(const struct fsm_state *s, uint8_t out[FSM_STATE_LEN]);
int fsm__state_decode(const void *buf, size_t len, struct fsm_state *s);
/* Fills key (FSM_DIRENT_KEY_MAX bytes of room) and returns its length. */
size_t fsm__dirent_key(uint8_t *key, uint64_t parent, const char *name,
                       size_t len);

/*
 * Txn helpers. Getters return 0, FSM_ABSENT, or -errno (LMDB failure or a
 * corrupt record as STORE_ERR_CORRUPT). Putters return 0 or -errno.
 */
int fsm__state_get(struct store_fsm *f, MDB_txn *txn, struct fsm_state *s);
int fsm__state_put(struct store_fsm *f, MDB_txn *txn,
                   const struct fsm_state *s);
int fsm__inode_get(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                   struct store_attr *a);
int fsm__inode_put(struct store_fsm *f, MDB_txn *txn,
                   const struct store_attr *a);
/* Deletes inode `ino` and its data. */
int fsm__inode_del(struct store_fsm *f, MDB_txn *txn, uint64_t ino);
int fsm__dirent_get(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    const char *name, size_t len, uint64_t *ino,
                    uint8_t *type);
int fsm__dirent_put(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    const char *name, size_t len, uint64_t ino, uint8_t type);
int fsm__dirent_del(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    const char *name, size_t len);
/* 0 if directory `ino` has no entry, FSM_ABSENT if it has some (so
 * "absent" reads as "not empty"), or -errno. */
int fsm__dir_empty(struct store_fsm *f, MDB_txn *txn, uint64_t ino);
/* Replaces (len > 0) or deletes (len == 0) the data of `ino`. */
int fsm__data_put(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                  const void *buf, size_t len);
/* Points *val at the data of `ino` (valid until the txn's next write);
 * an absent value is 0 bytes. */
int fsm__data_get(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                  MDB_val *val);

/*
 * A directory (parent) lookup shared by the commands: 0 and *dir, or a
 * per-command status in *status (-ENOENT, -ENOTDIR) and 0, or < 0 for an
 * environment failure.
 */
int fsm__parent_get(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    struct store_attr *dir, int *status);

/* The context of one command being applied. */
struct fsm_op {
    struct store_fsm *f;
    MDB_txn *txn;
    raft_index index;
    struct fsm_state *st;
    const struct store_cmd *cmd;
    struct store_apply_result *res;
};

/* The entry changed in directory `dir`: mtime, ctime, mod_rev. */
void fsm__touch_dir(struct fsm_op *op, struct store_attr *dir);

/* Runs one decoded command: 0 (res->status set) or < 0 environment error. */
int fsm__exec(struct fsm_op *op);
int fsm__rename(struct fsm_op *op);

/* Snapshot files (layout drawn in snapshot.c). */
#define FSM_SNAP_MAGIC "RFSSNAP" /* 8 bytes with its NUL */
#define FSM_SNAP_VERSION 1
#define FSM_SNAP_HDR_LEN 48
#define FSM_SNAP_REC_HDR 7
#define FSM_SNAP_KEY_MAX 511
#define FSM_SNAP_BUF (256 * 1024)
enum {
    FSM_DB_END = 0,
    FSM_DB_FSM = 1,
    FSM_DB_INODE,
    FSM_DB_DIRENT,
    FSM_DB_DATA,
    FSM_DB_N,
};
/* The DBI of a snapshot record's db number. */
MDB_dbi fsm__snap_dbi(struct store_fsm *f, int db);

/* A running CRC32C (crc32c.h) of a snapshot file being written or read. */
struct fsm_crc {
    struct store_crc32c tab;
    uint32_t v;
};
void fsm__crc_init(struct fsm_crc *c);
void fsm__crc_update(struct fsm_crc *c, const void *buf, size_t len);
uint32_t fsm__crc_value(const struct fsm_crc *c);

#endif /* STORE_FSM_INTERNAL_H */
