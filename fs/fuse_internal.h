/* Private to fs/fuse_*.c: the mount, its requests in flight, its handles. */
#ifndef FS_FUSE_INTERNAL_H
#define FS_FUSE_INTERNAL_H

/*
 * Every FUSE request that cannot be answered at once (it waits for a
 * read-index round or a commit) becomes a `struct fs_op`, linked in the
 * mount's list until it is freed. `req` is set to NULL by the one reply it
 * gets (fs__op_reply_*), so that a late completion after fs_mount_stop
 * answered it never replies twice. An op registered with the driver
 * (in_driver) is freed by that callback only, never before: the driver
 * holds its pointer.
 *
 * Reads go through fs__op_read: a read-index round (thesis §6.4), unless
 * the mount is `stale` and the op does not need the quorum check, then
 * op->run. Writes go through fs__op_propose: the command is encoded and
 * proposed; op->done gets the errno of its application.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon.h"
#include "fsmodel.h"

struct fs_op;
typedef void (*fs_op_run_fn)(struct fs_op *op);
typedef void (*fs_op_done_fn)(struct fs_op *op, int err,
                              const struct store_apply_result *r,
                              raft_index index);

/*
 * A deferred create (O_CREAT without O_EXCL on a name the kernel just found
 * absent) makes nothing in the log at open: the handle gets a provisional
 * inode number with this bit set, and its first publish is a CREATE that
 * carries the content, so no reader anywhere sees the file before its
 * content (`echo v > k`). Store inode numbers never reach this bit.
 */
#define FS_PENDING_BIT (UINT64_C(1) << 62)

/* An open regular file (fi->fh). */
struct fs_handle {
    struct fs_mount *m;
    struct fs_model_file f;
    /* A deferred create: pino is its provisional number (0: the handle
     * is not one), the kernel's node id for it as long as it holds it.
     * `pending` until the CREATE is applied: f.ino is pino till then, the
     * store's inode after; (parent, name, mode) is what it makes. */
    uint64_t pino;
    bool pending;
    uint64_t parent;
    uint32_t mode;
    char name[STORE_NAME_MAX + 1];
    /* One proposal at a time. `batch`: the flush/fsync ops it answers;
     * `queue`: those that came after more writes and wait for the next. */
    bool inflight;
    bool inflight_release; /* counted in m->releasing */
    enum fs_model_publish inflight_kind;
    size_t inflight_len;
    uint64_t inflight_gen;
    struct fs_op *batch;
    struct fs_op *queue;
    bool released; /* the kernel is done with it: free once idle */
    struct fs_handle *prev, *next; /* m->handles */
};

/* An open directory (fi->fh): a snapshot taken at opendir. */
struct fs_dirh {
    struct fs_model_dir dir;
    struct fs_dirh *prev, *next; /* m->dirs */
};

struct fs_op {
    struct fs_mount *m;
    fuse_req_t req;  /* NULL once answered */
    bool write;      /* answered ETIMEDOUT (not EIO) at stop */
    bool quorum;     /* needs the round even on a stale mount */
    bool in_driver;  /* the driver will call back with this op */
    fs_op_run_fn run;
    fs_op_done_fn done;

    uint64_t ino; /* store inodes */
    uint64_t parent;
    uint64_t newparent;
    char name[STORE_NAME_MAX + 1];
    char newname[STORE_NAME_MAX + 1];
    char *link;    /* symlink target (owned) */
    struct fuse_file_info fi;
    mode_t mode;
    unsigned flags;
    int to_set;
    struct stat attr;
    size_t size;
    struct fs_handle *h;
    /* Queued behind a deferred create's publish: run once it succeeded
     * (instead of being answered with its result). */
    fs_op_run_fn after;

    struct fs_op *prev, *next; /* m->ops */
    struct fs_op *wnext;       /* a handle's batch/queue, m->barrier */
};

struct fs_mount {
    struct fs_daemon *d;
    struct fuse_session *se;
    uv_poll_t poll;
    bool polling;
    bool stopped;
    bool mounted;
    struct fuse_buf buf;
    struct fs_model_opts opts;
    uint64_t root; /* store inode of the FUSE root */
    uid_t uid;     /* the owner every file shows */
    gid_t gid;
    struct fs_model_hints hints;
    struct fs_op *ops;
    struct fs_handle *handles;
    struct fs_dirh *dirs;
    uint64_t next_pending; /* provisional inode numbers (FS_PENDING_BIT) */
    /* Proposals made at release (nobody waits for them): reads on this
     * mount wait until they are applied, so that `: > k; cat k` sees the
     * truncation although close(2) does not wait for release. */
    unsigned releasing;
    struct fs_op *barrier;
    struct fs_op *barrier_tail;
    /* uv_now of the last read round that failed (0: none). While it is
     * recent and the node still sees no quorum, reads fail at once: the
     * kernel retries a failed lookup once, and every request of a path
     * walk would otherwise wait out the op timeout again. */
    uint64_t read_failed_at;
};

/* ---- fuse_mount.c: ops and their replies ---- */

/* A new op for `req` (linked in m->ops), or NULL after answering ENOMEM. */
struct fs_op *fs__op_new(struct fs_mount *m, fuse_req_t req);
/* Unlinks and frees (the link target too). */
void fs__op_free(struct fs_op *op);
/* Replies (if not answered yet) and frees. */
void fs__op_fail(struct fs_op *op, int err);
/* Reply helpers: no-ops once answered; they do not free. */
void fs__op_reply_err(struct fs_op *op, int err);
void fs__op_reply_entry(struct fs_op *op, const struct store_attr *a);
void fs__op_reply_attr(struct fs_op *op, const struct store_attr *a);

/* Runs op->run after a read-index round (see above). */
void fs__op_read(struct fs_op *op);
/* Proposes `c` (names borrowed for the call); op->done gets the result.
 * Never calls op->done from within the call unless proposing failed. */
void fs__op_propose(struct fs_op *op, struct store_cmd *c);

/* A release proposal finished: reads held behind it may go. */
void fs__barrier_done(struct fs_mount *m);

/* fuse attributes and entries for a store inode. */
void fs__stat(struct fs_mount *m, const struct store_attr *a, struct stat *st);

/*
 * The attributes of `ino` for an inode-addressed request, with the name
 * hint fallback (fsmodel.h): when the inode was replaced at its name right
 * after the kernel looked it up, the file now at that name (of the same
 * type). Returns 0, -ESTALE (gone: the kernel retries the path walk), or
 * another -errno.
 */
int fs__getattr_hinted(struct fs_mount *m, uint64_t ino,
                       struct store_attr *a);

/* ---- fuse_read.c, fuse_file.c, fuse_dir.c: the lowlevel ops ---- */

void fs__ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs__ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs__ll_readlink(fuse_req_t req, fuse_ino_t ino);
void fs__ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs__ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi);
void fs__ll_releasedir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi);
void fs__ll_statfs(fuse_req_t req, fuse_ino_t ino);
void fs__ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                     size_t size);
void fs__ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs__ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                     const char *value, size_t size, int flags);
void fs__ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

void fs__ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs__ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                   mode_t mode, struct fuse_file_info *fi);
void fs__ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi);
void fs__ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                  size_t size, off_t off, struct fuse_file_info *fi);
void fs__ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs__ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                  struct fuse_file_info *fi);
void fs__ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Frees a handle at unmount (no proposal). */
void fs__handle_free(struct fs_handle *h);
/* The open handle of deferred create `ino` (FS_PENDING_BIT set), whether
 * published since or not, or NULL. */
struct fs_handle *fs__pending_find(struct fs_mount *m, uint64_t ino);
/* Queues `op` behind the publish of pending handle h (made now, as an
 * fsync would): op->after runs when the file exists, or op is answered
 * with the publish's errno. */
void fs__pending_wait(struct fs_handle *h, struct fs_op *op,
                      fs_op_run_fn after);

void fs__ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                    int to_set, struct fuse_file_info *fi);
void fs__ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                  mode_t mode, dev_t rdev);
void fs__ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                  mode_t mode);
void fs__ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs__ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs__ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                    const char *name);
void fs__ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                   fuse_ino_t newparent, const char *newname,
                   unsigned int flags);
void fs__ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                 const char *newname);

#endif /* FS_FUSE_INTERNAL_H */
