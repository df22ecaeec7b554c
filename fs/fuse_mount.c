/* The FUSE session on the node's loop: mount, poll, requests in flight, stop. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuse_internal.h"
#include "fuse_mount.h"

/* Requests taken from the device per poll callback, so that a busy mount
 * does not starve the node's timers and sockets. */
#define REQUESTS_PER_POLL 64

extern char **environ;

/* ---- Ops ---- */

struct fs_op *fs__op_new(struct fs_mount *m, fuse_req_t req)
{
    struct fs_op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    op->m = m;
    op->req = req;
    op->next = m->ops;
    if (m->ops != NULL) {
        m->ops->prev = op;
    }
    m->ops = op;
    return op;
}

void fs__op_free(struct fs_op *op)
{
    struct fs_mount *m = op->m;
    if (op->prev != NULL) {
        op->prev->next = op->next;
    } else {
        m->ops = op->next;
    }
    if (op->next != NULL) {
        op->next->prev = op->prev;
    }
    free(op->link);
    free(op);
}

void fs__op_reply_err(struct fs_op *op, int err)
{
    if (op->req != NULL) {
        fuse_reply_err(op->req, err);
        op->req = NULL;
    }
}

void fs__op_fail(struct fs_op *op, int err)
{
    fs__op_reply_err(op, err);
    fs__op_free(op);
}

void fs__stat(struct fs_mount *m, const struct store_attr *a, struct stat *st)
{
    fs_model_stat(a, m->root, m->uid, m->gid, st);
}

void fs__op_reply_entry(struct fs_op *op, const struct store_attr *a)
{
    struct fuse_entry_param e;
    if (op->req == NULL) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.ino = fs_model_to_fuse(op->m->root, a->ino);
    e.generation = 1; /* inode numbers are never reused */
    fs__stat(op->m, a, &e.attr);
    /* Timeouts 0: the kernel asks again every time, so it never serves
     * anything staler than a read index. */
    e.attr_timeout = 0;
    e.entry_timeout = 0;
    fuse_reply_entry(op->req, &e);
    op->req = NULL;
}

void fs__op_reply_attr(struct fs_op *op, const struct store_attr *a)
{
    struct stat st;
    if (op->req == NULL) {
        return;
    }
    fs__stat(op->m, a, &st);
    fuse_reply_attr(op->req, &st, 0);
    op->req = NULL;
}

int fs__getattr_hinted(struct fs_mount *m, uint64_t ino, struct store_attr *a)
{
    const struct fs_model_hint *h;
    struct fs_handle *fh = fs__pending_find(m, ino);
    int rv;

    if (fh != NULL && fh->pending) {
        fs_model_file_attr(&fh->f, a); /* a deferred create: its handle */
        return 0;
    }
    if (fh != NULL) {
        ino = fh->f.ino; /* made since: the store's inode */
    }
    rv = store_fsm_getattr(&m->d->store.fsm, ino, a);
    if (rv != -ENOENT) {
        return rv;
    }
    h = fs_model_hints_get(&m->hints, ino);
    if (h != NULL && store_fsm_lookup(&m->d->store.fsm, h->parent, h->name,
                                      h->len, a) == 0 &&
        a->type == h->type) {
        fs_log(m->d, FS_LOG_DEBUG, "inode %llu was replaced at '%s': "
               "serving inode %llu", (unsigned long long)ino, h->name,
               (unsigned long long)a->ino);
        return 0;
    }
    return -ESTALE;
}

/* ---- Reads and proposals ---- */

static void on_read(void *data, int status)
{
    struct fs_op *op = data;
    op->in_driver = false;
    if (status != 0 && !op->m->stopped) {
        op->m->read_failed_at = uv_now(&op->m->d->loop);
    }
    if (status != 0 || op->m->stopped) {
        fs__op_fail(op, fs_model_read_errno(status != 0 ? status : -EIO));
        return;
    }
    op->run(op);
}

void fs__op_read(struct fs_op *op)
{
    struct fs_mount *m = op->m;
    if (m->stopped || m->d->node == NULL) {
        fs__op_fail(op, EIO);
        return;
    }
    if (m->releasing > 0) {
        op->wnext = NULL;
        if (m->barrier_tail != NULL) {
            m->barrier_tail->wnext = op;
        } else {
            m->barrier = op;
        }
        m->barrier_tail = op;
        return;
    }
    if (m->opts.stale && !op->quorum) {
        op->run(op);
        return;
    }
    if (m->read_failed_at != 0 &&
        uv_now(&m->d->loop) - m->read_failed_at < m->d->cfg.op_timeout_ms &&
        !raft_node_quorum_ok(m->d->node)) {
        fs__op_fail(op, EIO);
        return;
    }
    /* Thesis §6.4: the leader confirms it still leads (one heartbeat
     * round shared by every read of this loop iteration, or none while
     * its lease holds, §6.4.1), this node applies up to its commit index,
     * then op->run reads LMDB. An open for writing (op->quorum) asks
     * "can this node reach a quorum now?": a lease outlives a lost quorum
     * by up to 0.9 election timeouts, long enough for `echo v > k` to pass
     * its open and lose the write at a close whose error bash ignores. So
     * it is a confirm read: answered at once only if a quorum acknowledged
     * a message the leader sent within the last confirm window (the
     * heartbeat interval; raft.h), else after a new heartbeat round. */
    op->in_driver = true;
    if (op->quorum) {
        raft_node_read(m->d->node, on_read, op);
    } else {
        raft_node_read_lease(m->d->node, on_read, op);
    }
}

void fs__barrier_done(struct fs_mount *m)
{
    struct fs_op *op;
    while (m->releasing == 0 && (op = m->barrier) != NULL) {
        m->barrier = op->wnext;
        if (m->barrier == NULL) {
            m->barrier_tail = NULL;
        }
        fs__op_read(op);
    }
}

static void on_proposed(void *data, int status, raft_index index,
                        const void *result)
{
    struct fs_op *op = data;
    const struct store_apply_result *r = result;
    op->in_driver = false;
    op->done(op, fs_model_write_errno(status, r), status == 0 ? r : NULL,
             index);
}

void fs__op_propose(struct fs_op *op, struct store_cmd *c)
{
    struct fs_mount *m = op->m;
    int rv;

    op->write = true;
    if (m->stopped || m->d->node == NULL) {
        op->done(op, EIO, NULL, 0);
        return;
    }
    rv = fs__propose_cmd(m->d, c, on_proposed, op);
    if (rv != 0) {
        op->done(op, fs_model_write_errno(rv, NULL), NULL, 0);
        return;
    }
    op->in_driver = true;
}

/* ---- The session ---- */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
    struct fs_mount *m = userdata;
    /* O_TRUNC arrives with open, so that the handle starts empty and the
     * truncation is published with the new content, not before it. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) {
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    } else {
        fs_log(m->d, FS_LOG_WARN, "kernel lacks FUSE_CAP_ATOMIC_O_TRUNC");
    }
    /* Entries and attributes are never cached (timeouts 0), so readdirplus
     * would only cost; the page cache lives within one open (no
     * writeback cache, no automatic invalidation games). */
    conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS |
                              FUSE_CAP_READDIRPLUS_AUTO |
                              FUSE_CAP_WRITEBACK_CACHE |
                              FUSE_CAP_AUTO_INVAL_DATA |
                              FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                              FUSE_CAP_SPLICE_MOVE);
#ifdef FUSE_CAP_DIRECT_IO_ALLOW_MMAP
    /* libfuse >= 3.16 on Linux >= 6.6: shared mappings of our direct-IO
     * files work too (fuse_file.c). */
    if (conn->capable & FUSE_CAP_DIRECT_IO_ALLOW_MMAP) {
        conn->want |= FUSE_CAP_DIRECT_IO_ALLOW_MMAP;
    }
#endif
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    /* Node ids are inode numbers: nothing is kept per lookup. */
    (void)ino;
    (void)nlookup;
    fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    (void)count;
    (void)forgets;
    fuse_reply_none(req);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
    /* Directory changes are durable on a majority when they return. */
    (void)ino;
    (void)datasync;
    (void)fi;
    fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ll_ops = {
    .init = ll_init,
    .lookup = fs__ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = fs__ll_getattr,
    .setattr = fs__ll_setattr,
    .readlink = fs__ll_readlink,
    .mknod = fs__ll_mknod,
    .mkdir = fs__ll_mkdir,
    .unlink = fs__ll_unlink,
    .rmdir = fs__ll_rmdir,
    .symlink = fs__ll_symlink,
    .rename = fs__ll_rename,
    .link = fs__ll_link,
    .open = fs__ll_open,
    .read = fs__ll_read,
    .write = fs__ll_write,
    .flush = fs__ll_flush,
    .release = fs__ll_release,
    .fsync = fs__ll_fsync,
    .opendir = fs__ll_opendir,
    .readdir = fs__ll_readdir,
    .releasedir = fs__ll_releasedir,
    .fsyncdir = ll_fsyncdir,
    .statfs = fs__ll_statfs,
    .setxattr = fs__ll_setxattr,
    .getxattr = fs__ll_getxattr,
    .listxattr = fs__ll_listxattr,
    .removexattr = fs__ll_removexattr,
    .create = fs__ll_create,
};

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct fs_mount *m = p->data;
    int i;
    int rv;

    (void)events;
    if (status < 0) {
        fs_log(m->d, FS_LOG_WARN, "polling the FUSE device: %s",
               uv_strerror(status));
    }
    for (i = 0; i < REQUESTS_PER_POLL && !m->stopped; i++) {
        rv = fuse_session_receive_buf(m->se, &m->buf);
        if (rv == -EAGAIN || rv == -EINTR) {
            return;
        }
        if (rv <= 0 || fuse_session_exited(m->se)) {
            /* ENODEV: unmounted by someone else (fusermount -u, umount). The
             * node goes on serving its peers and the client port. */
            fs_log(m->d, FS_LOG_WARN, "%s was unmounted%s%s; serving "
                   "without a mount", m->d->cfg.mount, rv < 0 ? ": " : "",
                   rv < 0 ? strerror(-rv) : "");
            uv_poll_stop(&m->poll);
            return;
        }
        fuse_session_process_buf(m->se, &m->buf);
    }
}

/* Runs `argv` and waits for it (only at start, before serving). */
static int run_wait(char *const argv[])
{
    pid_t pid;
    int st;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) {
        return -1;
    }
    if (waitpid(pid, &st, 0) != pid) {
        return -1;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* A daemon that crashed leaves its mount behind: every access fails with
 * ENOTCONN. Detach it lazily so that we can mount again. */
static int check_mountpoint(struct fs_daemon *d, const char *path)
{
    struct stat st;
    char *argv[] = {"fusermount3", "-u", "-z", "-q", (char *)path, NULL};

    if (stat(path, &st) != 0 && (errno == ENOTCONN || errno == ECONNABORTED)) {
        fs_log(d, FS_LOG_WARN,
               "%s: stale mount of a dead daemon; unmounting it", path);
        if (umount2(path, MNT_DETACH) != 0 && run_wait(argv) != 0) {
            fs_log(d, FS_LOG_ERROR,
                   "%s: cannot unmount the stale mount (try: fusermount3 "
                   "-u -z %s)", path, path);
            return -EBUSY;
        }
    }
    if (stat(path, &st) != 0) {
        int e = errno;
        fs_log(d, FS_LOG_ERROR, "mountpoint %s: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        fs_log(d, FS_LOG_ERROR, "mountpoint %s is not a directory", path);
        return -ENOTDIR;
    }
    return 0;
}

static int resolve_root(struct fs_mount *m)
{
    struct store_attr a;
    const char *root = m->opts.root;
    int rv;

    m->root = STORE_ROOT_INO;
    if (root[0] == '\0') {
        return 0;
    }
    rv = store_fsm_resolve(&m->d->store.fsm, STORE_ROOT_INO, root,
                           strlen(root), &a);
    if (rv == 0 && a.type != STORE_TYPE_DIR) {
        rv = -ENOTDIR;
    }
    if (rv != 0) {
        fs_log(m->d, FS_LOG_ERROR,
               "mount option root=%s: %s (the subtree must exist as a "
               "directory on this node when it starts)",
               root, strerror(-rv));
        return rv;
    }
    m->root = a.ino;
    return 0;
}

static int new_session(struct fs_mount *m)
{
    char opts[256];
    char *argv[] = {"raftfsd", "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);

    snprintf(opts, sizeof opts, "fsname=raftfs,subtype=raftfs%s%s",
             m->opts.allow_other ? ",allow_other" : "",
             m->opts.default_permissions ? ",default_permissions" : "");
    m->se = fuse_session_new(&args, &ll_ops, sizeof ll_ops, m);
    fuse_opt_free_args(&args);
    return m->se != NULL ? 0 : -EINVAL;
}

int fs_mount_start(struct fs_daemon *d, struct fs_mount **out)
{
    struct fs_mount *m;
    char err[256];
    int fd;
    int rv;

    *out = NULL;
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        return -ENOMEM;
    }
    m->d = d;
    fs_model_hints_init(&m->hints);
    rv = fs_model_opts_parse(d->cfg.mount_options, &m->opts, err, sizeof err);
    if (rv != 0) {
        fs_log(d, FS_LOG_ERROR, "%s", err);
        goto err;
    }
    m->uid = m->opts.has_uid ? m->opts.uid : getuid();
    m->gid = m->opts.has_gid ? m->opts.gid : getgid();
    if ((rv = resolve_root(m)) != 0 ||
        (rv = check_mountpoint(d, d->cfg.mount)) != 0) {
        goto err;
    }
    if ((rv = new_session(m)) != 0) {
        fs_log(d, FS_LOG_ERROR, "cannot create the FUSE session");
        goto err;
    }
    if (fuse_session_mount(m->se, d->cfg.mount) != 0) {
        fs_log(d, FS_LOG_ERROR, "cannot mount %s (is /dev/fuse usable? for "
               "allow_other as a user, /etc/fuse.conf needs "
               "user_allow_other)", d->cfg.mount);
        rv = -EIO;
        goto err_session;
    }
    m->mounted = true;
    fd = fuse_session_fd(m->se);
    /* Never block the loop: a wakeup without a request (it was
     * interrupted meanwhile) reads EAGAIN instead of waiting. */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
        uv_poll_init(&d->loop, &m->poll, fd) != 0) {
        rv = -EIO;
        goto err_mounted;
    }
    m->poll.data = m;
    m->polling = true;
    uv_poll_start(&m->poll, UV_READABLE, on_poll);
    fs_log(d, FS_LOG_INFO, "mounted %s%s%s%s", d->cfg.mount,
           m->opts.root[0] ? " (subtree " : "", m->opts.root,
           m->opts.root[0] ? ")" : "");
    *out = m;
    return 0;

err_mounted:
    fuse_session_unmount(m->se);
err_session:
    fuse_session_destroy(m->se);
err:
    free(m);
    return rv;
}

void fs_mount_stop(struct fs_mount *m)
{
    struct fs_op *op;
    struct fs_op *next;

    if (m == NULL || m->stopped) {
        return;
    }
    m->stopped = true;
    fuse_session_exit(m->se);
    if (m->polling) {
        uv_close((uv_handle_t *)&m->poll, NULL);
    }
    /* Every request still waiting gets its one answer now; the driver's
     * late callbacks then only free. */
    while ((op = m->barrier) != NULL) {
        m->barrier = op->wnext;
        fs__op_fail(op, EIO);
    }
    m->barrier_tail = NULL;
    for (op = m->ops; op != NULL; op = next) {
        next = op->next;
        fs__op_reply_err(op, op->write ? ETIMEDOUT : EIO);
    }
    if (m->mounted) {
        fuse_session_unmount(m->se);
        m->mounted = false;
        fs_log(m->d, FS_LOG_INFO, "unmounted %s", m->d->cfg.mount);
    }
}

void fs_mount_free(struct fs_mount *m)
{
    if (m == NULL) {
        return;
    }
    fs_mount_stop(m);
    while (m->handles != NULL) {
        fs__handle_free(m->handles);
    }
    while (m->dirs != NULL) {
        struct fs_dirh *dh = m->dirs;
        m->dirs = dh->next;
        fs_model_dir_close(&dh->dir);
        free(dh);
    }
    /* Ops the driver never completed (it always does before uv_run
     * returns; this is for a loop that stopped early). */
    while (m->ops != NULL) {
        fs__op_free(m->ops);
    }
    fuse_session_destroy(m->se);
    free(m->buf.mem);
    free(m);
}
