/* The filesystem model: how FUSE requests map onto store reads and commands. */
#ifndef FS_FSMODEL_H
#define FS_FSMODEL_H

/*
 * Everything here is pure (no loop, no session, no LMDB), so that the rules
 * of the FUSE frontend are unit-tested without a mount
 * (tests/unit/test_fs_model.c). fs/fuse_*.c decode a request, ask the model
 * what to do, run it against the node and reply.
 *
 *   mount options      fs_model_opts_parse
 *   node ids           fs_model_to_store / fs_model_to_fuse (root=SUBTREE)
 *   errors             fs_model_read_errno / fs_model_write_errno
 *   attributes         fs_model_stat
 *   commands           fs_model_create_cmd, fs_model_setattr_cmd, ...
 *   open file handles  struct fs_model_file (fsmodel_file.c)
 *   directory handles  struct fs_model_dir  (fsmodel_file.c)
 *   name hints         struct fs_model_hints (fsmodel_file.c)
 */

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cmd.h"
#include "fsm.h"

/* ---- Mount options ---- */

#define FS_MODEL_ROOT_MAX 1024

struct fs_model_opts {
    bool stale;               /* local reads, no read-index round */
    char root[FS_MODEL_ROOT_MAX]; /* "" or the subtree's path */
    bool has_uid;
    uid_t uid;
    bool has_gid;
    gid_t gid;
    bool allow_other;
    bool default_permissions;
};

/*
 * Parses the comma-separated mount options `s` (NULL or "" for none):
 * stale, root=PATH, uid=N, gid=N, allow_other, default_permissions, and the
 * no-ops rw, dev, suid, exec, nodev, nosuid, noexec, noatime, relatime,
 * atime, async, auto, noauto, user, nouser, _netdev, defaults (so that an
 * fstab line works). Returns 0, or -EINVAL with a one-line reason in err
 * (unknown option, empty or bad value, ro which is not supported).
 */
int fs_model_opts_parse(const char *s, struct fs_model_opts *o, char *err,
                        size_t errlen);

/* ---- Node ids ---- */

/*
 * FUSE node ids are the replicated inode numbers, except with root=SUBTREE:
 * the kernel's root (FUSE_ROOT_ID = 1) is the subtree's inode `root`, and
 * inode 1 takes `root`'s number (a swap, so the mapping is a bijection; the
 * store's root never appears below a subtree anyway).
 */
uint64_t fs_model_to_store(uint64_t root, uint64_t fuse_ino);
uint64_t fs_model_to_fuse(uint64_t root, uint64_t store_ino);

/* ---- Errors ---- */

/*
 * The errno (positive) a request that needed a read-index round fails with
 * when the round failed with `status` (driver status: -ETIMEDOUT, -EIO,
 * RAFT_ERR_*): always EIO, since a read changes nothing.
 */
int fs_model_read_errno(int status);

/*
 * The errno (positive, 0 for success) of a proposal completed with `status`
 * and `result` (a struct store_apply_result or NULL): the command's own
 * result when it was applied; ETIMEDOUT when it may still apply (including
 * a shutdown of the node while it was pending); EIO when it surely did not;
 * ENOSPC, EFBIG, ENOMEM for those failures before or at proposal.
 */
int fs_model_write_errno(int status, const struct store_apply_result *result);

/* 0, ENAMETOOLONG (> 255 bytes) or EINVAL (empty, "/", ".", ".."). */
int fs_model_name_check(const char *name);

/* ---- Attributes ---- */

/*
 * Fills st for inode `a` as the kernel sees it on this mount: st_ino is the
 * FUSE node id, the owner is the uid=/gid= option or the daemon's
 * (owner_uid/owner_gid), times are the replicated ones, st_blksize 4096.
 */
void fs_model_stat(const struct store_attr *a, uint64_t root, uid_t owner_uid,
                   gid_t owner_gid, struct stat *st);

/* ---- Commands (store/cmd.h); names are borrowed from the caller ---- */

/*
 * create(2) with open flags `flags` and `mode`: create-if-absent, EXCL with
 * O_EXCL. O_TRUNC is never put in the command: an existing file found by a
 * racing create is truncated by the handle's later put (or at release), so
 * no empty intermediate value is published.
 */
void fs_model_create_cmd(struct store_cmd *c, uint64_t parent,
                         const char *name, mode_t mode, int flags);

/*
 * setattr: builds the SETATTR command for the FUSE_SET_ATTR_* bits in
 * `to_set` with values from `attr`. `now_ns` is used for the *_NOW bits.
 * uid/gid may only be "changed" to the owner shown (owner_uid/owner_gid):
 * anything else is EPERM. When `handle_size` is true the size is not part
 * of the command (the open handle's buffer takes it). Returns 0 with a
 * command to propose, 1 when there is nothing to propose, or -EPERM.
 */
int fs_model_setattr_cmd(struct store_cmd *c, uint64_t ino,
                         const struct stat *attr, int to_set, uint64_t now_ns,
                         uid_t owner_uid, gid_t owner_gid, uint64_t max_size,
                         bool handle_size);

/* rename with renameat2(2) flags: 0 or -EINVAL (RENAME_WHITEOUT, unknown,
 * or NOREPLACE together with EXCHANGE). */
int fs_model_rename_cmd(struct store_cmd *c, uint64_t parent,
                        const char *name, uint64_t newparent,
                        const char *newname, unsigned flags);

/* mknod(2): regular files become an exclusive create; devices, FIFOs and
 * sockets are -EPERM (not representable in the replicated tree). */
int fs_model_mknod_cmd(struct store_cmd *c, uint64_t parent, const char *name,
                       mode_t mode);

/* ---- Extended attributes (read-only) ---- */

#define FS_XATTR_REVISION "user.raftfs.revision"
#define FS_XATTR_CREATE_REVISION "user.raftfs.create_revision"
#define FS_XATTR_LEADER "user.raftfs.leader"
#define FS_XATTR_TERM "user.raftfs.term"

/* Cluster facts for the leader/term xattrs. */
struct fs_model_cluster {
    uint64_t leader; /* 0: none known */
    uint64_t term;
};

/* The NUL-separated list of our xattr names; returns its length. `buf`
 * (may be NULL) gets it if `size` is large enough. */
size_t fs_model_xattr_list(char *buf, size_t size);

/* True if getxattr `name` needs the inode's attributes (a read). */
bool fs_model_xattr_is_ours(const char *name);

/*
 * The value of xattr `name` for inode `a` as decimal text in buf (no NUL).
 * Returns its length, or -ENODATA for any other name, -ERANGE when it does
 * not fit in `size` (size 0 never fits: the caller asks for the length with
 * buf NULL and size 0 and gets the length).
 */
int fs_model_xattr_get(const char *name, const struct store_attr *a,
                       const struct fs_model_cluster *c, char *buf,
                       size_t size);

/* setxattr/removexattr: -EPERM for user.raftfs.*, -ENOTSUP otherwise (so
 * cp -a and rsync -X go on without them). */
int fs_model_xattr_set(const char *name);

/* ---- Open file handles (fsmodel_file.c) ---- */

/*
 * The buffering rules of one open file. The handle holds the whole content:
 * the value as of open (a snapshot, unless O_TRUNC), edited by write() and
 * ftruncate(). Nothing is published until a flush or fsync finds it dirty:
 * then ONE whole-value put (or, with O_APPEND, one append of what was
 * written) is proposed. A lone O_TRUNC with nothing written is published at
 * release, never at flush, because bash's `echo v > k` flushes (dup2)
 * before it writes. A write over the value limit poisons the handle:
 * nothing of it is ever published.
 */
struct fs_model_file {
    uint64_t ino;          /* store inode */
    struct store_attr attr; /* as of open (size kept == len) */
    bool readable;
    bool writable;
    bool append;         /* O_APPEND: data[base..len) is pending */
    bool trunc_pending;  /* O_TRUNC seen, not published yet */
    bool create_pending; /* a deferred create: the file exists nowhere
                          * yet; fsync/release publish it even empty */
    bool dirty;          /* written since the last publish */
    int poisoned;        /* 0 or the errno every flush returns (EFBIG) */
    uint8_t *data;       /* owned */
    size_t len;
    size_t cap;
    size_t base;         /* append: bytes of data that are the file's view */
    uint64_t max_size;   /* the value limit */
    uint64_t gen;        /* bumped by every write/truncate */
};

/* What a flush, fsync or release has to propose. */
enum fs_model_publish {
    FS_PUBLISH_NONE = 0, /* nothing: answer 0 (or the poison errno) */
    FS_PUBLISH_PUT,      /* put(ino, data, len) */
    FS_PUBLISH_APPEND,   /* append(ino, data, len) */
};

/*
 * Initializes a handle for open flags `flags` on inode `a`. `value`/`len`
 * is the content as of open (copied; ignored with O_TRUNC or for an
 * append-only handle), existed says whether the file was there before
 * (false after a create that made it: O_TRUNC has nothing to truncate).
 * Returns 0 or -ENOMEM.
 */
int fs_model_file_init(struct fs_model_file *f, const struct store_attr *a,
                       int flags, bool existed, const void *value, size_t len,
                       uint64_t max_size);
void fs_model_file_close(struct fs_model_file *f);

/* read(): points *out at up to `size` bytes at `off` of the handle's view;
 * returns the count (0 at or past the end). */
size_t fs_model_file_read(const struct fs_model_file *f, uint64_t off,
                          size_t size, const void **out);

/* write(): returns `size`, -EBADF (not writable), -EFBIG (over the limit:
 * the handle is poisoned) or -ENOMEM. */
int64_t fs_model_file_write(struct fs_model_file *f, uint64_t off,
                            const void *buf, size_t size);

/* ftruncate() through this handle: 0, -EBADF, -EFBIG (poisons) or -ENOMEM. */
int fs_model_file_truncate(struct fs_model_file *f, uint64_t size);

/*
 * Marks the handle as a deferred create (fs/fuse_file.c): the name did not
 * exist at open, and nothing is in the log until the handle publishes. A
 * flush with nothing written still proposes nothing (bash's early flush);
 * an fsync or release publishes the creation, empty if nothing was written.
 */
void fs_model_file_set_create_pending(struct fs_model_file *f);

/* The attributes the kernel gets for getattr on this handle (size = the
 * handle's view). */
void fs_model_file_attr(const struct fs_model_file *f, struct store_attr *a);

/*
 * What a flush (lone_trunc == false) or an fsync or release (true) has to
 * propose now. A lone O_TRUNC is published only with lone_trunc. *err gets
 * the errno to answer when nothing is proposed (0, or the poison errno:
 * release ignores it). After a PUT/APPEND is proposed the caller calls
 * fs_model_file_published with its result.
 */
enum fs_model_publish fs_model_file_publish(struct fs_model_file *f,
                                            bool lone_trunc, int *err);

/* The bytes a proposal of `kind` carries: the whole view for a put, the
 * pending appended bytes for an append. Valid until the next call on f. */
void fs_model_file_payload(const struct fs_model_file *f,
                           enum fs_model_publish kind, const void **buf,
                           size_t *len);

/*
 * The proposal of `kind` (what fs_model_file_publish returned), made when
 * the handle's generation was `gen` and carrying the first `len` bytes of
 * its data, completed with errno `err` (0: applied). An append handle drops
 * those bytes (they are published, or failed and reported). A put handle is
 * clean again unless it was written after the proposal. A failed proposal is
 * reported once, to the flush or fsync that made it, and its data is then
 * dropped, never published later behind the program's back (the errno said
 * EIO: not applied). A put or append on a file deleted meanwhile (ENOENT)
 * counts as done, as POSIX writes to an unlinked file vanish. Returns the
 * errno to answer.
 */
int fs_model_file_published(struct fs_model_file *f,
                            enum fs_model_publish kind, size_t len,
                            uint64_t gen, int err);

/* ---- Directory handles ---- */

/* A snapshot of one directory taken at opendir: entries in name order. */
struct fs_model_dirent {
    uint64_t ino; /* store inode */
    uint8_t type;
    char *name; /* owned, NUL-terminated */
};

struct fs_model_dir {
    uint64_t ino;    /* store inode of the directory */
    uint64_t parent; /* store inode of its parent */
    struct fs_model_dirent *ents;
    size_t n;
    size_t cap;
};

void fs_model_dir_init(struct fs_model_dir *d, uint64_t ino, uint64_t parent);
void fs_model_dir_close(struct fs_model_dir *d);
/* Appends one entry (name copied). 0 or -ENOMEM. */
int fs_model_dir_add(struct fs_model_dir *d, uint64_t ino, uint8_t type,
                     const char *name, size_t len);

/*
 * The readdir view: offset 0 is ".", 1 is "..", 2.. are the entries; the
 * "next offset" of entry i is i + 1. Returns false past the end, else fills
 * name/ino/type for offset `off`.
 */
bool fs_model_dir_at(const struct fs_model_dir *d, uint64_t off,
                     const char **name, uint64_t *ino, uint8_t *type);

/* ---- Name hints ---- */

/*
 * The last (parent, name) under which each recently looked-up inode was
 * seen, in a fixed-size direct-mapped table. When an open or getattr
 * arrives for an inode that a rename replaced right after the kernel's
 * lookup (mv over a key while readers loop), the frontend re-resolves the
 * name: the open then sees the file now at that name, as if the open had
 * happened a moment later, instead of failing.
 */
#define FS_MODEL_HINTS 1024

struct fs_model_hint {
    uint64_t ino; /* 0: empty slot */
    uint64_t parent;
    uint8_t type; /* enum store_type the inode had */
    uint8_t len;
    char name[STORE_NAME_MAX + 1];
};

struct fs_model_hints {
    struct fs_model_hint slot[FS_MODEL_HINTS];
};

void fs_model_hints_init(struct fs_model_hints *h);
/* Records that `ino` is entry (parent, name); names over 255 bytes are
 * ignored. */
void fs_model_hints_put(struct fs_model_hints *h, uint64_t ino,
                        uint8_t type, uint64_t parent, const char *name,
                        size_t len);
/* The hint for `ino`, or NULL. Valid until the next put. */
const struct fs_model_hint *fs_model_hints_get(const struct fs_model_hints *h,
                                               uint64_t ino);

#endif /* FS_FSMODEL_H */
