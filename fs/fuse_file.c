/* FUSE files: open/create, read/write on the handle's buffer, publish at flush. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_internal.h"

static struct fs_mount *mount_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static struct fs_handle *handle_of(struct fuse_file_info *fi)
{
    return (struct fs_handle *)(uintptr_t)fi->fh;
}

/* ---- Handles ---- */

static struct fs_handle *handle_new(struct fs_mount *m)
{
    struct fs_handle *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return NULL;
    }
    h->m = m;
    h->next = m->handles;
    if (m->handles != NULL) {
        m->handles->prev = h;
    }
    m->handles = h;
    return h;
}

void fs__handle_free(struct fs_handle *h)
{
    struct fs_mount *m = h->m;
    if (h->prev != NULL) {
        h->prev->next = h->next;
    } else {
        m->handles = h->next;
    }
    if (h->next != NULL) {
        h->next->prev = h->prev;
    }
    fs_model_file_close(&h->f);
    free(h);
}

/* Loads what the handle needs and answers the open (or create). */
static int handle_open(struct fs_op *op, const struct store_attr *a,
                       bool existed, struct fs_handle **out)
{
    struct fs_mount *m = op->m;
    int flags = op->fi.flags;
    int acc = flags & O_ACCMODE;
    bool trunc = (flags & O_TRUNC) != 0 && acc != O_RDONLY;
    /* The old value is the handle's view, unless O_TRUNC drops it or the
     * handle only appends. */
    bool need_value = existed && a->size > 0 && !trunc &&
                      !((flags & O_APPEND) != 0 && acc == O_WRONLY);
    struct store_attr cur = *a;
    struct fs_handle *h;
    void *value = NULL;
    size_t len = 0;
    int rv;

    if (need_value) {
        rv = store_fsm_read_all(&m->d->store.fsm, a->ino, &value, &len, &cur);
        if (rv != 0) {
            return rv == -ENOENT ? -ESTALE : rv;
        }
    }
    h = handle_new(m);
    if (h == NULL) {
        free(value);
        return -ENOMEM;
    }
    rv = fs_model_file_init(&h->f, &cur, flags, existed, value, len,
                            m->d->cfg.max_value_size);
    free(value);
    if (rv != 0) {
        fs__handle_free(h);
        return rv;
    }
    *out = h;
    return 0;
}

static void set_open_flags(struct fuse_file_info *fi, struct fs_handle *h)
{
    fi->fh = (uint64_t)(uintptr_t)h;
    /*
     * Direct IO: every read is served from this handle's snapshot, never
     * from the kernel's page cache. That cache is per inode, not per open:
     * two readers on this node holding different snapshots of an inode
     * overwritten in place would get each other's pages, and reads would
     * be cut at an i_size that belongs to another open (or to a writer's
     * O_TRUNC, which the kernel applies to i_size at open). The cost:
     * MAP_SHARED mappings fail with ENODEV (libfuse 3.14 cannot ask for
     * FUSE_DIRECT_IO_ALLOW_MMAP); MAP_PRIVATE (exec, git) works.
     */
    fi->direct_io = 1;
    fi->keep_cache = 0;
}

/* ---- open ---- */

static void run_open(struct fs_op *op)
{
    struct store_attr a;
    struct fs_handle *h;
    int rv = fs__getattr_hinted(op->m, op->ino, &a);

    if (rv == 0 && (a.ino & FS_PENDING_BIT) != 0) {
        rv = -ENOENT; /* /proc/PID/fd/N of a deferred create: not made */
    } else if (rv == 0 && a.type == STORE_TYPE_DIR) {
        rv = -EISDIR;
    } else if (rv == 0 && a.type != STORE_TYPE_FILE) {
        rv = -ELOOP; /* the kernel follows symlinks before it opens */
    }
    if (rv == 0) {
        rv = handle_open(op, &a, true, &h);
    }
    if (rv != 0) {
        fs__op_fail(op, -rv);
        return;
    }
    if (op->req == NULL) {
        fs__handle_free(h);
        fs__op_free(op);
        return;
    }
    set_open_flags(&op->fi, h);
    if (fuse_reply_open(op->req, &op->fi) != 0) {
        /* The opener is gone (interrupted): no release will come. */
        fs__handle_free(h);
    }
    op->req = NULL;
    fs__op_free(op);
}

void fs__ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_mount *m = mount_of(req);
    struct fs_op *op = fs__op_new(m, req);
    if (op == NULL) {
        return;
    }
    op->ino = fs_model_to_store(m->root, ino);
    op->fi = *fi;
    /* Opening for writing checks that this node reaches a quorum (the
     * read-index round confirms a leader), even on a stale mount: bash
     * ignores errors at close, so `echo v > k` must fail here. */
    op->quorum = (fi->flags & O_ACCMODE) != O_RDONLY;
    op->run = run_open;
    fs__op_read(op);
}

/* ---- create ---- */

/* Answers a create with the entry of handle h's file and frees op (and h,
 * if the creator is gone). */
static void create_reply(struct fs_op *op, struct fs_handle *h)
{
    struct fuse_entry_param e;

    if (op->req == NULL) {
        fs__handle_free(h);
        fs__op_free(op);
        return;
    }
    memset(&e, 0, sizeof e);
    e.ino = fs_model_to_fuse(op->m->root, h->f.ino);
    e.generation = 1;
    fs__stat(op->m, &h->f.attr, &e.attr);
    set_open_flags(&op->fi, h);
    if (fuse_reply_create(op->req, &e, &op->fi) != 0) {
        fs__handle_free(h); /* the creator is gone: no release will come */
    }
    op->req = NULL;
    fs__op_free(op);
}

static void create_done(struct fs_op *op, int err,
                        const struct store_apply_result *r, raft_index index)
{
    struct fs_mount *m = op->m;
    struct fs_handle *h;
    bool existed;
    int rv;

    if (err != 0 || r == NULL) {
        fs__op_fail(op, err != 0 ? err : EIO);
        return;
    }
    /* The log decided: either this command made the file, or it found
     * one (without O_EXCL) that another node made first. */
    existed = r->attr.create_rev != index;
    rv = handle_open(op, &r->attr, existed, &h);
    if (rv != 0) {
        fs__op_fail(op, -rv);
        return;
    }
    fs_model_hints_put(&m->hints, r->attr.ino, r->attr.type, op->parent,
                       op->name, strlen(op->name));
    create_reply(op, h);
}

/* A deferred create: a handle on a file that exists nowhere yet, under a
 * provisional node id (fuse_internal.h). */
static void run_create_pending(struct fs_op *op)
{
    struct fs_mount *m = op->m;
    struct store_attr a;
    struct fs_handle *h;
    uint64_t now = fs__now_ns();
    int rv;

    if (m->stopped) {
        fs__op_fail(op, EIO);
        return;
    }
    memset(&a, 0, sizeof a);
    a.ino = FS_PENDING_BIT | ++m->next_pending;
    a.type = STORE_TYPE_FILE;
    a.mode = S_IFREG | (op->mode & 07777);
    a.nlink = 1;
    a.parent = op->parent;
    a.mtime_ns = now;
    a.ctime_ns = now;
    a.atime_ns = now;
    h = handle_new(m);
    if (h == NULL) {
        fs__op_fail(op, ENOMEM);
        return;
    }
    rv = fs_model_file_init(&h->f, &a, op->fi.flags, false, NULL, 0,
                            m->d->cfg.max_value_size);
    if (rv != 0) {
        fs__handle_free(h);
        fs__op_fail(op, -rv);
        return;
    }
    fs_model_file_set_create_pending(&h->f);
    h->pino = a.ino;
    h->pending = true;
    h->parent = op->parent;
    h->mode = op->mode;
    memcpy(h->name, op->name, sizeof h->name);
    /* Once made, requests for the provisional id that outlive the handle
     * resolve by name (fs__getattr_hinted). */
    fs_model_hints_put(&m->hints, a.ino, STORE_TYPE_FILE, op->parent,
                       op->name, strlen(op->name));
    create_reply(op, h);
}

struct fs_handle *fs__pending_find(struct fs_mount *m, uint64_t ino)
{
    struct fs_handle *h;
    if ((ino & FS_PENDING_BIT) == 0) {
        return NULL;
    }
    for (h = m->handles; h != NULL; h = h->next) {
        if (h->pino == ino) {
            return h;
        }
    }
    return NULL;
}

void fs__ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                   mode_t mode, struct fuse_file_info *fi)
{
    struct fs_mount *m = mount_of(req);
    struct store_cmd c;
    struct fs_op *op;
    int err = fs_model_name_check(name);

    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    if ((op = fs__op_new(m, req)) == NULL) {
        return;
    }
    op->parent = fs_model_to_store(m->root, parent);
    memcpy(op->name, name, strlen(name) + 1);
    op->fi = *fi;
    op->mode = mode;
    if ((fi->flags & O_EXCL) == 0) {
        /* The kernel sends CREATE only after a LOOKUP found no such name
         * (linearizably): defer it. That lookup may have been answered
         * from the leader's lease (or locally, on a stale mount), so the
         * quorum check of an open for writing is a round here, and
         * `echo v > k` fails up front without a quorum. */
        op->quorum = true;
        op->run = run_create_pending;
        fs__op_read(op);
        return;
    }
    op->done = create_done;
    /* O_CREAT|O_EXCL is decided by the log: exactly one contender wins. */
    fs_model_create_cmd(&c, op->parent, op->name, mode, fi->flags);
    fs__op_propose(op, &c);
}

/* ---- read and write: the handle's buffer, no round ---- */

void fs__ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    struct fs_handle *h = handle_of(fi);
    const void *p;
    size_t n;
    (void)ino;
    n = fs_model_file_read(&h->f, off < 0 ? 0 : (uint64_t)off, size, &p);
    fuse_reply_buf(req, p, n);
}

void fs__ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                  size_t size, off_t off, struct fuse_file_info *fi)
{
    struct fs_handle *h = handle_of(fi);
    int64_t n;
    (void)ino;
    if (h->released) {
        fuse_reply_err(req, EBADF);
        return;
    }
    n = fs_model_file_write(&h->f, off < 0 ? 0 : (uint64_t)off, buf, size);
    if (n < 0) {
        fuse_reply_err(req, (int)-n);
        return;
    }
    fuse_reply_write(req, (size_t)n);
}

/* ---- publish: flush, fsync, release ---- */

static void handle_pump(struct fs_handle *h);

static void answer_list(struct fs_op *list, int err)
{
    struct fs_op *op;
    while ((op = list) != NULL) {
        list = op->wnext;
        op->wnext = NULL;
        if (op->after != NULL && err == 0) {
            fs_op_run_fn after = op->after;
            op->after = NULL;
            after(op);
        } else {
            fs__op_fail(op, err);
        }
    }
}

static void publish_done(struct fs_op *op, int err,
                         const struct store_apply_result *r, raft_index index)
{
    struct fs_handle *h = op->h;
    struct fs_mount *m = h->m;
    struct fs_op *batch = h->batch;
    (void)index;

    fs__op_free(op); /* the carrier; the waiters are in the batch */
    if (h->pending && err == 0 && r != NULL) {
        /* The deferred create is made (or found a file made meanwhile):
         * from now on the handle publishes to that inode. */
        h->pending = false;
        h->f.ino = r->attr.ino;
        h->f.attr.ino = r->attr.ino;
        h->f.attr.create_rev = r->attr.create_rev;
        h->f.attr.mod_rev = r->attr.mod_rev;
        if (h->inflight_kind == FS_PUBLISH_APPEND) {
            h->f.attr.size = r->attr.size - h->inflight_len;
        }
        fs_model_hints_put(&m->hints, r->attr.ino, STORE_TYPE_FILE,
                           h->parent, h->name, strlen(h->name));
    }
    err = fs_model_file_published(&h->f, h->inflight_kind, h->inflight_len,
                                  h->inflight_gen, err);
    h->inflight = false;
    h->batch = NULL;
    answer_list(batch, err);
    if (h->inflight_release) {
        h->inflight_release = false;
        m->releasing--;
        if (m->releasing == 0) {
            fs__barrier_done(m);
        }
    }
    handle_pump(h);
}

/* Starts the proposal the handle's state asks for, answering the ops in
 * `batch` when it completes (which may happen before this returns, if
 * proposing fails). `lone_trunc` publishes a pending O_TRUNC with nothing
 * written (fsync, release). Returns false when there was nothing to
 * propose: *err is then the errno to answer and batch is the caller's. */
static bool publish_start(struct fs_handle *h, bool lone_trunc,
                          struct fs_op *batch, int *err)
{
    struct fs_mount *m = h->m;
    enum fs_model_publish kind = fs_model_file_publish(&h->f, lone_trunc, err);
    struct store_cmd c;
    struct fs_op *carrier;
    const void *buf;
    size_t len;

    if (kind == FS_PUBLISH_NONE || m->stopped) {
        if (m->stopped && kind != FS_PUBLISH_NONE) {
            *err = EIO; /* the node is going away: nothing was proposed */
        }
        return false;
    }
    carrier = calloc(1, sizeof *carrier);
    if (carrier == NULL) {
        *err = ENOMEM;
        return false;
    }
    carrier->m = m;
    carrier->next = m->ops;
    if (m->ops != NULL) {
        m->ops->prev = carrier;
    }
    m->ops = carrier;
    carrier->h = h;
    carrier->done = publish_done;
    fs_model_file_payload(&h->f, kind, &buf, &len);
    store_cmd_init(&c);
    c.type = kind == FS_PUBLISH_APPEND ? STORE_CMD_APPEND : STORE_CMD_PUT;
    c.ino = h->f.ino;
    c.data.base = buf;
    c.data.len = len;
    c.max_size = m->d->cfg.max_value_size;
    if (h->pending) {
        /* A deferred create: made with its content in one command; a
         * file someone made meanwhile gets the value (or the lines). */
        c.type = STORE_CMD_CREATE;
        c.ino = 0;
        c.parent = h->parent;
        c.name.base = h->name;
        c.name.len = strlen(h->name);
        c.mode = h->mode;
        c.flags = STORE_CREATE_VALUE | (kind == FS_PUBLISH_APPEND
                                            ? STORE_CREATE_APPEND
                                            : STORE_CREATE_TRUNC);
    }
    h->inflight = true;
    h->batch = batch;
    h->inflight_kind = kind;
    h->inflight_len = len;
    h->inflight_gen = h->f.gen;
    if (h->released) {
        h->inflight_release = true;
        m->releasing++;
    }
    fs__op_propose(carrier, &c);
    return true;
}

/* Moves the handle on once no proposal is in flight: the queued flushes
 * (more was written after the last proposal), then the release. */
static void handle_pump(struct fs_handle *h)
{
    struct fs_op *queue;
    struct fs_op *op;
    bool lone_trunc = false;
    int err = 0;

    if (h->inflight) {
        return;
    }
    if (h->queue != NULL) {
        queue = h->queue;
        h->queue = NULL;
        for (op = queue; op != NULL; op = op->wnext) {
            /* an fsync, or an op waiting for a deferred create */
            lone_trunc = lone_trunc || op->flags != 0 || op->after != NULL;
        }
        if (publish_start(h, lone_trunc, queue, &err)) {
            return;
        }
        answer_list(queue, err);
    }
    if (h->released) {
        if (publish_start(h, true, NULL, &err)) {
            return;
        }
        fs__handle_free(h);
    }
}

/* flush (fsync == false) and fsync: answered with the commit result. */
static void flush_or_fsync(fuse_req_t req, struct fuse_file_info *fi,
                           bool fsync)
{
    struct fs_handle *h = handle_of(fi);
    struct fs_op *op = fs__op_new(h->m, req);
    struct fs_op **tail;

    if (op == NULL) {
        return;
    }
    op->write = true;
    op->flags = fsync ? 1 : 0;
    if (h->inflight && h->f.gen == h->inflight_gen &&
        (!fsync || !h->f.trunc_pending)) {
        /* Nothing new since the proposal in flight: its result is ours. */
        tail = &h->batch;
    } else {
        tail = &h->queue;
    }
    while (*tail != NULL) {
        tail = &(*tail)->wnext;
    }
    *tail = op;
    handle_pump(h);
}

void fs__pending_wait(struct fs_handle *h, struct fs_op *op,
                      fs_op_run_fn after)
{
    struct fs_op **tail = &h->queue;
    op->after = after; /* as an fsync: publish the creation even if empty */
    op->wnext = NULL;
    while (*tail != NULL) {
        tail = &(*tail)->wnext;
    }
    *tail = op;
    handle_pump(h);
}

void fs__ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    flush_or_fsync(req, fi, false);
}

void fs__ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                  struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    flush_or_fsync(req, fi, true);
}

void fs__ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_handle *h = handle_of(fi);
    (void)ino;
    /* close(2) does not wait for release; what is left to publish (a lone
     * O_TRUNC, mmap writes after the last flush) goes on in the
     * background, and reads on this mount wait for it (m->releasing). */
    fuse_reply_err(req, 0);
    h->released = true;
    handle_pump(h);
}
