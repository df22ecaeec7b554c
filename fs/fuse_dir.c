/* FUSE changes to the tree: setattr, mkdir, mknod, symlink, unlink, rename. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_internal.h"

static struct fs_mount *mount_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ---- Entry-making commands: the reply is the new entry ---- */

static void entry_done(struct fs_op *op, int err,
                       const struct store_apply_result *r, raft_index index)
{
    (void)index;
    if (err != 0 || r == NULL) {
        fs__op_fail(op, err != 0 ? err : EIO);
        return;
    }
    fs_model_hints_put(&op->m->hints, r->attr.ino, r->attr.type, op->parent,
                       op->name, strlen(op->name));
    fs__op_reply_entry(op, &r->attr);
    fs__op_free(op);
}

/* ---- Commands answered with their errno alone ---- */

static void err_done(struct fs_op *op, int err,
                     const struct store_apply_result *r, raft_index index)
{
    (void)r;
    (void)index;
    fs__op_fail(op, err);
}

/* A new op for a name-addressed command, or NULL (already answered). */
static struct fs_op *name_op(fuse_req_t req, fuse_ino_t parent,
                             const char *name, fs_op_done_fn done)
{
    struct fs_mount *m = mount_of(req);
    struct fs_op *op;
    int err = fs_model_name_check(name);

    if (err != 0) {
        fuse_reply_err(req, err);
        return NULL;
    }
    if ((op = fs__op_new(m, req)) == NULL) {
        return NULL;
    }
    op->parent = fs_model_to_store(m->root, parent);
    memcpy(op->name, name, strlen(name) + 1);
    op->done = done;
    return op;
}

void fs__ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                  mode_t mode)
{
    struct fs_op *op = name_op(req, parent, name, entry_done);
    struct store_cmd c;
    if (op == NULL) {
        return;
    }
    store_cmd_init(&c);
    c.type = STORE_CMD_MKDIR;
    c.parent = op->parent;
    c.name.base = op->name;
    c.name.len = strlen(op->name);
    c.mode = (uint32_t)(mode & 07777);
    fs__op_propose(op, &c);
}

void fs__ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                  mode_t mode, dev_t rdev)
{
    struct fs_op *op;
    struct store_cmd c;
    (void)rdev;
    if (!S_ISREG(mode)) {
        /* Devices, FIFOs and sockets have no replicated meaning. */
        fuse_reply_err(req, EPERM);
        return;
    }
    if ((op = name_op(req, parent, name, entry_done)) == NULL) {
        return;
    }
    fs_model_mknod_cmd(&c, op->parent, op->name, mode);
    fs__op_propose(op, &c);
}

void fs__ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                    const char *name)
{
    struct fs_op *op = name_op(req, parent, name, entry_done);
    struct store_cmd c;
    if (op == NULL) {
        return;
    }
    store_cmd_init(&c);
    c.type = STORE_CMD_SYMLINK;
    c.parent = op->parent;
    c.name.base = op->name;
    c.name.len = strlen(op->name);
    c.data.base = link;
    c.data.len = strlen(link);
    fs__op_propose(op, &c); /* the command copies the target */
}

void fs__ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs_op *op = name_op(req, parent, name, err_done);
    struct store_cmd c;
    if (op == NULL) {
        return;
    }
    store_cmd_init(&c);
    c.type = STORE_CMD_UNLINK;
    c.parent = op->parent;
    c.name.base = op->name;
    c.name.len = strlen(op->name);
    fs__op_propose(op, &c);
}

void fs__ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs_op *op = name_op(req, parent, name, err_done);
    struct store_cmd c;
    if (op == NULL) {
        return;
    }
    store_cmd_init(&c);
    c.type = STORE_CMD_RMDIR;
    c.parent = op->parent;
    c.name.base = op->name;
    c.name.len = strlen(op->name);
    fs__op_propose(op, &c);
}

void fs__ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                   fuse_ino_t newparent, const char *newname,
                   unsigned int flags)
{
    struct fs_mount *m = mount_of(req);
    struct fs_op *op;
    struct store_cmd c;
    int err = fs_model_name_check(newname);

    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    if ((op = name_op(req, parent, name, err_done)) == NULL) {
        return;
    }
    op->newparent = fs_model_to_store(m->root, newparent);
    memcpy(op->newname, newname, strlen(newname) + 1);
    /* One proposal: the log orders it against every other change, so a
     * reader sees the old file or the new one, never neither. */
    err = fs_model_rename_cmd(&c, op->parent, op->name, op->newparent,
                              op->newname, flags);
    if (err != 0) {
        fs__op_fail(op, -err);
        return;
    }
    fs__op_propose(op, &c);
}

void fs__ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                 const char *newname)
{
    /* An inode has exactly one entry (its parent pointer makes directory
     * renames one move): no hard links. git falls back to rename. */
    (void)ino;
    (void)newparent;
    (void)newname;
    fuse_reply_err(req, EPERM);
}

/* ---- setattr ---- */

static void setattr_reply(struct fs_op *op, const struct store_attr *a)
{
    struct store_attr v = *a;
    if (op->h != NULL && op->h->f.writable && !op->h->f.append) {
        /* The size the handle will publish is the one its writer sees. */
        v.size = op->h->f.len;
    }
    fs__op_reply_attr(op, &v);
}

static void setattr_done(struct fs_op *op, int err,
                         const struct store_apply_result *r, raft_index index)
{
    (void)index;
    if (err == ENOENT) {
        err = ESTALE; /* replaced since the kernel's lookup: walk again */
    }
    if (err != 0 || r == NULL) {
        fs__op_fail(op, err != 0 ? err : EIO);
        return;
    }
    if (op->h != NULL) {
        /* fchmod/futimens on an open file: later gets show it. */
        op->h->f.attr.mode = r->attr.mode;
        op->h->f.attr.mtime_ns = r->attr.mtime_ns;
        op->h->f.attr.atime_ns = r->attr.atime_ns;
        op->h->f.attr.ctime_ns = r->attr.ctime_ns;
    }
    setattr_reply(op, &r->attr);
    fs__op_free(op);
}

/* Nothing to propose (chown to the shown owner, ctime only): current
 * attributes. */
static void run_setattr_noop(struct fs_op *op)
{
    struct store_attr a;
    int rv = fs__getattr_hinted(op->m, op->ino, &a);
    if (rv != 0) {
        fs__op_fail(op, -rv);
        return;
    }
    setattr_reply(op, &a);
    fs__op_free(op);
}

/* Builds and proposes the setattr of op (op->attr, op->to_set; op->flags:
 * the size went to the handle's buffer). */
static void setattr_go(struct fs_op *op)
{
    struct fs_mount *m = op->m;
    struct fs_handle *h = op->h;
    struct fs_handle *p = h != NULL ? h : fs__pending_find(m, op->ino);
    struct store_cmd c;
    uint64_t ino = op->ino;
    int rv;

    if (p != NULL) {
        ino = p->f.ino; /* the handle's file, or a deferred create's */
    }
    rv = fs_model_setattr_cmd(&c, ino, &op->attr, op->to_set, fs__now_ns(),
                              m->uid, m->gid, m->d->cfg.max_value_size,
                              op->flags != 0);
    if (rv < 0) {
        fs__op_fail(op, -rv);
        return;
    }
    if (rv > 0) {
        if (h != NULL) {
            struct store_attr a;
            fs_model_file_attr(&h->f, &a);
            setattr_reply(op, &a);
            fs__op_free(op);
            return;
        }
        op->run = run_setattr_noop;
        fs__op_read(op);
        return;
    }
    if (p != NULL && p->pending) {
        if (op->after == NULL && p->f.create_pending) {
            /* chmod/utimes on a deferred create (touch): make the file
             * first, then change it. */
            fs__pending_wait(p, op, setattr_go);
        } else {
            fs__op_fail(op, ENOENT); /* its creation failed */
        }
        return;
    }
    op->done = setattr_done;
    fs__op_propose(op, &c);
}

void fs__ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                    int to_set, struct fuse_file_info *fi)
{
    struct fs_mount *m = mount_of(req);
    struct fs_handle *h = fi != NULL ? (struct fs_handle *)(uintptr_t)fi->fh
                                     : NULL;
    bool handle_size = false;
    struct fs_op *op;
    int rv;

    if (h != NULL && (to_set & FUSE_SET_ATTR_SIZE) && h->f.writable &&
        !h->f.append) {
        /* ftruncate: the buffer changes, published with the content at
         * the next flush, so no reader sees the cut before the rest. */
        rv = fs_model_file_truncate(&h->f, (uint64_t)attr->st_size);
        if (rv != 0) {
            fuse_reply_err(req, -rv);
            return;
        }
        handle_size = true;
    } else if ((to_set & FUSE_SET_ATTR_SIZE) &&
               (uint64_t)attr->st_size > m->d->cfg.max_value_size) {
        fuse_reply_err(req, EFBIG); /* nothing proposed */
        return;
    }
    if ((op = fs__op_new(m, req)) == NULL) {
        return;
    }
    op->ino = fs_model_to_store(m->root, ino);
    op->h = h;
    op->attr = *attr;
    op->to_set = to_set;
    op->flags = handle_size ? 1 : 0;
    setattr_go(op);
}
