/* FUSE reads: lookup, getattr, readlink, readdir, statfs, xattrs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_internal.h"

static struct fs_mount *mount_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ---- lookup ---- */

static void run_lookup(struct fs_op *op)
{
    struct fs_mount *m = op->m;
    struct store_attr a;
    int rv = store_fsm_lookup(&m->d->store.fsm, op->parent, op->name,
                              strlen(op->name), &a);
    if (rv != 0) {
        fs__op_fail(op, -rv);
        return;
    }
    fs_model_hints_put(&m->hints, a.ino, a.type, op->parent, op->name,
                       strlen(op->name));
    fs__op_reply_entry(op, &a);
    fs__op_free(op);
}

void fs__ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs_mount *m = mount_of(req);
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
    op->run = run_lookup;
    fs__op_read(op);
}

/* ---- getattr ---- */

static void run_getattr(struct fs_op *op)
{
    struct store_attr a;
    int rv = fs__getattr_hinted(op->m, op->ino, &a);
    if (rv != 0) {
        fs__op_fail(op, -rv);
        return;
    }
    fs__op_reply_attr(op, &a);
    fs__op_free(op);
}

void fs__ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_mount *m = mount_of(req);
    struct fs_op *op;

    if (fi != NULL && fi->fh != 0) {
        /* The kernel asks with the handle when it reads past what it
         * believes is the end: it gets the size of the handle's view, the
         * value as of open (close-to-open), so it never cuts a read short
         * because the file changed between its lookup and the open. */
        struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
        struct store_attr a;
        struct stat st;
        fs_model_file_attr(&h->f, &a);
        fs__stat(m, &a, &st);
        st.st_ino = ino;
        fuse_reply_attr(req, &st, 0);
        return;
    }
    if ((op = fs__op_new(m, req)) == NULL) {
        return;
    }
    op->ino = fs_model_to_store(m->root, ino);
    op->run = run_getattr;
    fs__op_read(op);
}

/* ---- readlink ---- */

static void run_readlink(struct fs_op *op)
{
    char *target = NULL;
    int rv = store_fsm_readlink(&op->m->d->store.fsm, op->ino, &target);
    if (rv != 0) {
        fs__op_fail(op, rv == -ENOENT ? ESTALE : -rv);
        return;
    }
    if (op->req != NULL) {
        fuse_reply_readlink(op->req, target);
        op->req = NULL;
    }
    free(target);
    fs__op_free(op);
}

void fs__ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct fs_mount *m = mount_of(req);
    struct fs_op *op = fs__op_new(m, req);
    if (op == NULL) {
        return;
    }
    op->ino = fs_model_to_store(m->root, ino);
    op->run = run_readlink;
    fs__op_read(op);
}

/* ---- directories ---- */

static int add_entry(void *arg, const struct store_dirent *e,
                     const struct store_attr *attr)
{
    (void)attr;
    return fs_model_dir_add(arg, e->ino, e->type, e->name, e->name_len);
}

static void run_opendir(struct fs_op *op)
{
    struct fs_mount *m = op->m;
    struct store_attr a;
    struct fs_dirh *dh;
    int rv = fs__getattr_hinted(m, op->ino, &a);

    if (rv == 0 && a.type != STORE_TYPE_DIR) {
        rv = -ENOTDIR;
    }
    if (rv != 0) {
        fs__op_fail(op, -rv);
        return;
    }
    dh = calloc(1, sizeof *dh);
    if (dh == NULL) {
        fs__op_fail(op, ENOMEM);
        return;
    }
    /* The mount's root shows itself as its parent: the kernel answers
     * ".." above a mount by itself. */
    fs_model_dir_init(&dh->dir, a.ino, a.ino == m->root ? a.ino : a.parent);
    rv = store_fsm_readdir(&m->d->store.fsm, a.ino, NULL, 0, false, 0,
                           add_entry, &dh->dir);
    if (rv < 0 || op->req == NULL) {
        fs_model_dir_close(&dh->dir);
        free(dh);
        fs__op_fail(op, rv == -ENOENT ? ESTALE : rv < 0 ? -rv : EIO);
        return;
    }
    dh->next = m->dirs;
    if (m->dirs != NULL) {
        m->dirs->prev = dh;
    }
    m->dirs = dh;
    op->fi.fh = (uint64_t)(uintptr_t)dh;
    op->fi.keep_cache = 0;
    op->fi.cache_readdir = 0;
    fuse_reply_open(op->req, &op->fi);
    op->req = NULL;
    fs__op_free(op);
}

void fs__ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_mount *m = mount_of(req);
    struct fs_op *op = fs__op_new(m, req);
    if (op == NULL) {
        return;
    }
    op->ino = fs_model_to_store(m->root, ino);
    op->fi = *fi;
    op->run = run_opendir;
    fs__op_read(op);
}

static mode_t type_mode(uint8_t type)
{
    switch (type) {
    case STORE_TYPE_DIR: return S_IFDIR;
    case STORE_TYPE_SYMLINK: return S_IFLNK;
    default: return S_IFREG;
    }
}

void fs__ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct fs_mount *m = mount_of(req);
    struct fs_dirh *dh = (struct fs_dirh *)(uintptr_t)fi->fh;
    const char *name;
    uint64_t eino;
    uint8_t type;
    struct stat st;
    size_t used = 0;
    size_t n;
    char *buf;
    uint64_t i;

    (void)ino;
    buf = malloc(size);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    for (i = off < 0 ? 0 : (uint64_t)off;
         fs_model_dir_at(&dh->dir, i, &name, &eino, &type); i++) {
        memset(&st, 0, sizeof st);
        st.st_ino = fs_model_to_fuse(m->root, eino);
        st.st_mode = type_mode(type);
        n = fuse_add_direntry(req, buf + used, size - used, name, &st,
                              (off_t)(i + 1));
        if (n > size - used) {
            break; /* full: the kernel asks again from offset i */
        }
        used += n;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

void fs__ll_releasedir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct fs_mount *m = mount_of(req);
    struct fs_dirh *dh = (struct fs_dirh *)(uintptr_t)fi->fh;
    (void)ino;
    if (dh->prev != NULL) {
        dh->prev->next = dh->next;
    } else {
        m->dirs = dh->next;
    }
    if (dh->next != NULL) {
        dh->next->prev = dh->prev;
    }
    fs_model_dir_close(&dh->dir);
    free(dh);
    fuse_reply_err(req, 0);
}

/* ---- statfs ---- */

void fs__ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct fs_mount *m = mount_of(req);
    struct store_fsm_statfs s;
    struct statvfs v;
    uint64_t free_bytes;
    int rv = store_fsm_statfs(&m->d->store.fsm, &s);

    (void)ino;
    if (rv != 0) {
        fuse_reply_err(req, -rv);
        return;
    }
    free_bytes = s.map_size > s.map_used ? s.map_size - s.map_used : 0;
    memset(&v, 0, sizeof v);
    v.f_bsize = 4096;
    v.f_frsize = 4096;
    v.f_blocks = s.map_size / 4096;
    v.f_bfree = free_bytes / 4096;
    v.f_bavail = v.f_bfree;
    /* An inode costs a few hundred bytes of the map: roughly one per
     * free page is a fair promise. */
    v.f_files = s.inodes + v.f_bfree;
    v.f_ffree = v.f_bfree;
    v.f_favail = v.f_bfree;
    v.f_namemax = STORE_NAME_MAX;
    fuse_reply_statfs(req, &v);
}

/* ---- xattrs ---- */

static void reply_xattr_value(struct fs_op *op, const struct store_attr *a)
{
    struct fs_daemon *d = op->m->d;
    struct fs_model_cluster c;
    char buf[32];
    int n;

    memset(&c, 0, sizeof c);
    if (d->node != NULL) {
        c.leader = raft_leader(raft_node_core(d->node));
        c.term = raft_current_term(raft_node_core(d->node));
    }
    n = fs_model_xattr_get(op->name, a, &c, buf, sizeof buf);
    if (n < 0) {
        fs__op_reply_err(op, -n);
    } else if (op->size == 0) {
        if (op->req != NULL) {
            fuse_reply_xattr(op->req, (size_t)n);
            op->req = NULL;
        }
    } else if ((size_t)n > op->size) {
        fs__op_reply_err(op, ERANGE);
    } else if (op->req != NULL) {
        fuse_reply_buf(op->req, buf, (size_t)n);
        op->req = NULL;
    }
}

static void run_getxattr(struct fs_op *op)
{
    struct store_attr a;
    int rv = fs__getattr_hinted(op->m, op->ino, &a);
    if (rv != 0) {
        fs__op_fail(op, -rv);
        return;
    }
    reply_xattr_value(op, &a);
    fs__op_free(op);
}

void fs__ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                     size_t size)
{
    struct fs_mount *m = mount_of(req);
    struct fs_op *op;

    /* The kernel asks for security.capability on every write: answer
     * what is not ours at once, without a round. */
    if (!fs_model_xattr_is_ours(name)) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    if ((op = fs__op_new(m, req)) == NULL) {
        return;
    }
    op->ino = fs_model_to_store(m->root, ino);
    op->size = size;
    snprintf(op->name, sizeof op->name, "%s", name);
    op->run = run_getxattr;
    fs__op_read(op);
}

void fs__ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    char buf[256];
    size_t len = fs_model_xattr_list(buf, sizeof buf);
    (void)ino;
    if (size == 0) {
        fuse_reply_xattr(req, len);
    } else if (size < len) {
        fuse_reply_err(req, ERANGE);
    } else {
        fuse_reply_buf(req, buf, len);
    }
}

void fs__ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                     const char *value, size_t size, int flags)
{
    (void)ino;
    (void)value;
    (void)size;
    (void)flags;
    fuse_reply_err(req, -fs_model_xattr_set(name));
}

void fs__ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    (void)ino;
    fuse_reply_err(req, -fs_model_xattr_set(name));
}
