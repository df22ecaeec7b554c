/* The filesystem state machine: a replicated tree of inodes in LMDB. */
#ifndef STORE_FSM_H
#define STORE_FSM_H

/*
 * The state machine lives in four named DBIs of the store's one LMDB
 * environment (the storelog side owns the env and the "meta"/"log" DBIs).
 * Every integer is big-endian, so LMDB's memcmp order of a key is numeric
 * order and the bytes are the same on every machine.
 *
 * "dirent": one record per directory entry.
 *
 *     key   +-------------------+-----------------------------+
 *           | u64 parent ino BE | name (1..255 bytes, no NUL) |
 *           +-------------------+-----------------------------+
 *     value +-------------+---------+
 *           | u64 ino BE  | u8 type |        (9 bytes)
 *           +-------------+---------+
 *
 *   A directory's entries are the contiguous key range with its ino as the
 *   8-byte prefix, in name byte order: lookup is one get, readdir one scan.
 *
 * "inode": one record per inode, key = u64 ino BE, value (72 bytes):
 *
 *      0       1       2       4        8        12       16
 *     +-------+-------+-------+--------+--------+--------+
 *     | u8 ver| u8    | u16 0 | u32    | u32    | u32 0  |
 *     |  = 1  | type  |       | mode   | nlink  |        |
 *     +-------+-------+-------+--------+--------+--------+
 *     16          24          32          40          48
 *     +-----------+-----------+-----------+-----------+
 *     | u64 size  | u64 parent| u64 mtime | u64 ctime |
 *     +-----------+-----------+-----------+-----------+
 *     48          56          64          72
 *     +-----------+-----------+-----------+
 *     | u64 atime | u64 crev  | u64 mrev  |
 *     +-----------+-----------+-----------+
 *
 *   mode holds the permission bits only (& 07777), the type is `type`.
 *   Times are ns since the epoch, chosen by the proposer. crev/mrev are the
 *   log indexes of the command that created / last changed the inode.
 *   parent is the directory holding the inode's one entry (no hard links);
 *   the root's parent is itself. nlink: files and symlinks 1, directories
 *   2 + number of subdirectories.
 *
 * "data": key = u64 ino BE, value = the file's content or the symlink's
 *   target, absent when empty. Kept apart from "inode" so that lookup,
 *   getattr and readdir never touch big values.
 *
 * "fsm": key "state" -> (40 bytes)
 *     +--------+--------+-------------+------------+-------------+---------+
 *     | u32 ver| u32 0  | u64 applied | u64 applied| u64 next_ino| u64     |
 *     |  = 1   |        |   index     |   term     |             | bytes   |
 *     +--------+--------+-------------+------------+-------------+---------+
 *   applied: index of the last applied entry; written in the same txn as
 *   the entry's effects, so replay after a crash skips what is done.
 *   next_ino: the next inode number to assign (apply takes it, so all
 *   replicas agree). bytes: sum of all data values (statfs).
 *   Invariant: every inode number in use is < next_ino.
 *
 * The root directory is inode 1, created by store__fsm_open() with mode
 * 0755, times 0 and revisions 0 (deterministic, the same on every replica).
 */

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapres.h"
#include "raft.h"

#define STORE_ROOT_INO 1
#define STORE_NAME_MAX 255     /* bytes of one name */
#define STORE_PATH_MAX 4096    /* bytes of a path given to resolve */
#define STORE_SYMLINK_MAX 4095 /* bytes of a symlink target */
/* No value may exceed this, whatever limit a command carries: a command
 * asking for more fails with EFBIG on every replica instead of failing to
 * allocate on some. */
#define STORE_FSM_VALUE_HARD_MAX (256u << 20)
/* Every COMMAND entry's data starts with the driver's envelope (raft/node.h
 * RAFT_NODE_ENVELOPE); the command follows it. */
#define STORE_FSM_ENVELOPE 16

enum store_type {
    STORE_TYPE_DIR = 1,
    STORE_TYPE_FILE = 2,
    STORE_TYPE_SYMLINK = 3,
};

/* The attributes of one inode. */
struct store_attr {
    uint64_t ino;
    uint8_t type;   /* enum store_type */
    uint32_t mode;  /* S_IFDIR/S_IFREG/S_IFLNK | permission bits */
    uint32_t nlink; /* 0 in the result of the command that removed it */
    uint64_t size;  /* bytes of the value (symlink: of the target) */
    uint64_t parent;
    uint64_t mtime_ns;
    uint64_t ctime_ns;
    uint64_t atime_ns;
    uint64_t create_rev; /* log index that created it: a fencing token */
    uint64_t mod_rev;    /* log index that last changed it */
};

/* The DBI handles of the state machine; a complete type so that the store
 * embeds it by value. Zero it before store__fsm_open(). */
struct store_fsm {
    MDB_env *env; /* not owned: the store's env */
    MDB_dbi state;
    MDB_dbi inode;
    MDB_dbi dirent;
    MDB_dbi data;
    bool open;
    /* The store's reservation (mapres.h), or NULL: every put reserves what
     * it may add before it writes. Set after store__fsm_open. */
    struct store_mapres *mapres;
};

/* What applying one entry produced. Fixed size, no pointers. */
struct store_apply_result {
    int status;   /* 0 or a negative POSIX errno for this command */
    bool skipped; /* index <= applied: nothing was done (replay) */
    uint8_t type; /* enum store_cmd_type, 0 for non-command entries */
    uint64_t node; /* the request id from the command */
    uint64_t seq;
    /* The affected inode after the command (status 0 only): the created,
     * changed or moved inode; for unlink/rmdir the removed one (nlink 0);
     * for an exchange the inode that was at (parent, name). */
    struct store_attr attr;
};

/*
 * ---- For the store (storelog side): called inside its transactions. ----
 */

/*
 * Opens (creates if absent) the fsm's DBIs in the write txn `txn` and
 * creates the root inode and the state record if absent. The caller commits
 * the txn before any read call. Returns 0, STORE_ERR_VERSION for a state
 * record of an unknown version, or -errno (-ENOSPC: map full).
 */
int store__fsm_open(struct store_fsm *f, MDB_txn *txn);

/* Forgets the handles (LMDB closes DBIs with the env). */
void store__fsm_close(struct store_fsm *f);

/*
 * What each command does and the status it can yield (checks happen in
 * this order; the first failing one decides; a failed command changes
 * nothing). "name" errors: -ENAMETOOLONG (> 255 bytes), -EINVAL (empty,
 * '/' or NUL inside, "." or ".."). "parent" errors: -ENOENT (no such
 * inode), -ENOTDIR (not a directory).
 *
 *   create   name, parent; exists and EXCL: -EEXIST; exists, a directory:
 *            -EISDIR; exists, a symlink: -EEXIST (the kernel resolves
 *            symlinks before it creates); exists, a file: 0 and that file,
 *            emptied (or set to the value) if TRUNC, else untouched; new:
 *            the next inode number, the value if VALUE. Value over
 *            STORE_FSM_VALUE_HARD_MAX: -EFBIG.
 *   put      -ENOENT, -EISDIR, -EINVAL (symlink), -EFBIG (hard max).
 *   append   as put; -EFBIG if the new size exceeds max_size (0: none) or
 *            the hard max. Empty data: 0, nothing changes.
 *   setattr  -EINVAL (unknown mask bits), -ENOENT; with SIZE: -EISDIR,
 *            -EINVAL (symlink), -EFBIG; size truncates or zero-extends and
 *            sets mtime; ctime is always the command's time.
 *   unlink   name, parent, -ENOENT, -EISDIR (a directory, as Linux).
 *   mkdir    name, parent, -EEXIST. Parent nlink + 1.
 *   rmdir    name, parent, -ENOENT, -ENOTDIR, -ENOTEMPTY. Parent nlink - 1.
 *   symlink  name, target: -ENOENT (empty), -ENAMETOOLONG (> 4095), -EINVAL
 *            (NUL inside); parent; -EEXIST. Mode 0777.
 *   rename   -EINVAL (unknown flags, NOREPLACE|EXCHANGE), names, parents;
 *            source missing -ENOENT; NOREPLACE and target exists -EEXIST
 *            (even the same name); EXCHANGE and target missing -ENOENT;
 *            same inode: 0, nothing changes; a directory into its own
 *            subtree (or, exchanging, the other way round) -EINVAL;
 *            replacing: dir over non-dir -ENOTDIR, non-dir over dir -EISDIR,
 *            over a non-empty dir -ENOTEMPTY; the replaced inode and its
 *            value are deleted. A directory moves as one entry.
 *
 * Every change sets the changed inodes' ctime (and mtime for content) to
 * the command's time and their mod_rev to the entry's index; a directory
 * whose entries change gets mtime, ctime and mod_rev too. atime is only
 * set by setattr (the store is effectively noatime).
 */

/*
 * Applies one committed entry at `index` (== e->index) in the write txn
 * `txn`, and records index and e->term as applied in the same txn.
 *
 * RAFT_ENTRY_COMMAND: the data is STORE_FSM_ENVELOPE bytes then a command
 * (store/cmd.h). NOOP and CONFIG entries only advance the applied index.
 * An entry with index <= applied is skipped (res->skipped): replaying the
 * log after a crash is idempotent.
 *
 * Returns 0 with the command's own result in res->status (0, -EEXIST,
 * -ENOENT, ...; a command that cannot be decoded is -EINVAL). A failed
 * command changes nothing but the applied index. Deterministic: no clock,
 * no randomness, no node-local setting is read.
 *
 * Returns < 0 only for an environment failure (-ENOSPC when the map is
 * full, -E2BIG when the txn has too many dirty pages, -EIO, ...). Such a
 * failure must NEVER become a per-command result (replicas whose map is not
 * full would diverge): the caller aborts the whole txn and retries the
 * batch later. The fsm keeps no state outside LMDB, so an aborted txn
 * leaves it consistent.
 */
int store__fsm_apply(struct store_fsm *f, MDB_txn *txn, raft_index index,
                     const struct raft_entry *e,
                     struct store_apply_result *res);

/* The applied index / the term of that entry in `txn` (0 if none or on a
 * read error). */
raft_index store__fsm_applied(struct store_fsm *f, MDB_txn *txn);
raft_term store__fsm_applied_term(struct store_fsm *f, MDB_txn *txn);

/*
 * Snapshots (store/snapshot.c; file layout drawn there).
 *
 * build: writes the whole state as of the read txn `rtxn` (LMDB MVCC: the
 * writer keeps committing meanwhile) to a new file at `path` and fsyncs it;
 * the caller renames it into place and fsyncs the directory. *index is the
 * applied index in that txn, *size the file's size. Returns 0 or -errno
 * (the partial file is removed).
 *
 * restore: reads and verifies the whole file at `path` first (magic,
 * version, framing, key order, record contents, checksum); a corrupt or
 * truncated file returns STORE_ERR_CORRUPT (STORE_ERR_VERSION for an
 * unknown version) without touching `txn`. Then, in the caller's write txn,
 * empties the fsm DBIs and loads the records; applied index and term become
 * the snapshot's. *index is that index. After an LMDB failure (< 0) the
 * caller aborts the txn.
 *
 * verify: the first phase of restore alone, no LMDB. index/term may be NULL.
 */
int store__fsm_snapshot_build(struct store_fsm *f, MDB_txn *rtxn,
                              const char *path, raft_index *index,
                              uint64_t *size);
int store__fsm_snapshot_restore(struct store_fsm *f, MDB_txn *txn,
                                const char *path, raft_index *index);
int store__fsm_snapshot_verify(const char *path, raft_index *index,
                               raft_term *term);

/*
 * ---- Reads: each opens and closes its own short read txn. ----
 *
 * Safe on any thread while the store's writer commits (MDB_NOTLS). They see
 * the last committed state. Names are byte strings of 1..255 bytes without
 * '/' or NUL and not "." or ".." (else -EINVAL; > 255: -ENAMETOOLONG).
 */

/* The entry `name` in directory `parent`: -ENOENT, -ENOTDIR (parent not a
 * directory), -EINVAL/-ENAMETOOLONG (bad name). */
int store_fsm_lookup(struct store_fsm *f, uint64_t parent, const char *name,
                     size_t name_len, struct store_attr *attr);

/* Attributes of inode `ino`, or -ENOENT. */
int store_fsm_getattr(struct store_fsm *f, uint64_t ino,
                      struct store_attr *attr);

/* One directory entry as readdir reports it. `name` points into the read
 * txn: valid only during the callback; not NUL-terminated. */
struct store_dirent {
    uint64_t ino;
    uint8_t type; /* enum store_type */
    const char *name;
    size_t name_len;
};

/* Called for each entry. Return 0 to go on, > 0 to stop without consuming
 * this entry (e.g. the reply buffer is full), < 0 to stop with that error.
 * attr is NULL unless readdir was asked for attributes. */
typedef int (*store_readdir_cb)(void *arg, const struct store_dirent *d,
                                const struct store_attr *attr);

/*
 * Lists directory `ino` in name byte order, starting after the name
 * `after` (after_len 0: from the first entry), at most `max` entries (0: no
 * limit). "." and ".." are not listed. A page ends when the callback stops
 * it or `max` is reached; resume with after = the last consumed name.
 * Returns the number of entries consumed (0 at the end of the directory),
 * -ENOENT, -ENOTDIR, or the callback's negative value.
 */
int store_fsm_readdir(struct store_fsm *f, uint64_t ino, const char *after,
                      size_t after_len, bool with_attr, size_t max,
                      store_readdir_cb cb, void *arg);

/*
 * Copies up to `len` bytes of file `ino`'s value from `offset` into buf and
 * sets *n to the count (0 at or past the end). -ENOENT, -EISDIR,
 * -EINVAL (symlink). attr, if not NULL, gets the attributes from the same
 * txn.
 */
int store_fsm_read(struct store_fsm *f, uint64_t ino, uint64_t offset,
                   void *buf, size_t len, size_t *n, struct store_attr *attr);

/* The whole value of file `ino` in a malloc'd buffer (*buf, owned by the
 * caller, free(); NULL when empty) and its attributes from the same txn
 * (attr may be NULL). -ENOENT, -EISDIR, -EINVAL (symlink), -ENOMEM. */
int store_fsm_read_all(struct store_fsm *f, uint64_t ino, void **buf,
                       size_t *len, struct store_attr *attr);

/* The target of symlink `ino` as a malloc'd NUL-terminated string owned by
 * the caller. -ENOENT, -EINVAL (not a symlink), -ENOMEM. */
int store_fsm_readlink(struct store_fsm *f, uint64_t ino, char **target);

/*
 * Resolves a relative path "a/b/c" from directory `root` (repeated and
 * trailing slashes and "." are ignored, ".." goes to the parent but never
 * above `root`; "" is root itself). Symlinks are not followed: one in the
 * middle of the path is -ENOTDIR. Returns 0 and the final inode's attr,
 * -ENOENT, -ENOTDIR, -ENAMETOOLONG (path > 4096 bytes or a component > 255),
 * -EINVAL (a NUL inside path_len).
 */
int store_fsm_resolve(struct store_fsm *f, uint64_t root, const char *path,
                      size_t path_len, struct store_attr *attr);

struct store_fsm_statfs {
    uint64_t inodes;    /* inodes in use (including the root) */
    uint64_t bytes;     /* sum of all values */
    uint64_t map_size;  /* LMDB map size, bytes */
    uint64_t map_used;  /* bytes of the map in use (pages not free) */
    uint64_t page_size;
    raft_index applied;
};

/* statfs figures from one read txn. Returns 0 or -errno. */
int store_fsm_statfs(struct store_fsm *f, struct store_fsm_statfs *st);

/*
 * Cheap check for the proposer before it proposes a write of about `need`
 * bytes: returns 0 if the map has room for it plus a safety margin, or
 * -ENOSPC, so a full store refuses writes up front instead of the apply
 * failing. Deletions (unlink, rmdir) should be proposed without this check
 * since they free space. Not a guarantee: apply may still hit MAP_FULL
 * (then the batch is retried).
 */
int store_fsm_space_ok(struct store_fsm *f, uint64_t need);

/* The applied index of the last committed txn (0 on error). */
raft_index store_fsm_applied(struct store_fsm *f);

/*
 * A canonical byte dump of the whole state (the snapshot's record stream
 * without header and checksum) in a malloc'd buffer owned by the caller.
 * Two replicas with the same state have byte-identical dumps. For tests
 * and debugging. Returns 0, -ENOMEM or -errno.
 */
int store_fsm_dump(struct store_fsm *f, void **buf, size_t *len);

#endif /* STORE_FSM_H */
