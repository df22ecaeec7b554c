/* Applying committed entries: every command except rename. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_internal.h"

/* A command's own failure: recorded in the result, nothing changed. */
static int fail(struct fsm_op *op, int status)
{
    op->res->status = status;
    return 0;
}

/* Assigns the next inode number and fills a new inode's attributes. */
static void new_inode(struct fsm_op *op, struct store_attr *a, uint8_t type,
                      uint32_t mode, uint64_t parent)
{
    memset(a, 0, sizeof *a);
    a->ino = op->st->next_ino++;
    a->type = type;
    a->mode = fsm__type_mode(type) | (mode & 07777);
    a->nlink = type == STORE_TYPE_DIR ? 2 : 1;
    a->parent = parent;
    a->mtime_ns = op->cmd->time_ns;
    a->ctime_ns = op->cmd->time_ns;
    a->atime_ns = op->cmd->time_ns;
    a->create_rev = op->index;
    a->mod_rev = op->index;
}

/* The inode an existing entry names; a dangling entry is corruption of the
 * local store, not a command result. */
static int entry_inode(struct fsm_op *op, uint64_t ino, struct store_attr *a)
{
    int rv = fsm__inode_get(op->f, op->txn, ino, a);
    return rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
}

/* Replaces the value of file `a` with buf/len and records the change. */
static int set_value(struct fsm_op *op, struct store_attr *a, const void *buf,
                     size_t len)
{
    int rv = fsm__data_put(op->f, op->txn, a->ino, buf, len);
    if (rv != 0) {
        return rv;
    }
    op->st->bytes = op->st->bytes - a->size + len;
    a->size = len;
    a->mtime_ns = op->cmd->time_ns;
    a->ctime_ns = op->cmd->time_ns;
    a->mod_rev = op->index;
    return 0;
}

/* Links new inode `a` as (dir, name) and updates the directory. */
static int link_new(struct fsm_op *op, struct store_attr *dir,
                    struct store_attr *a)
{
    const struct store_cmd *c = op->cmd;
    int rv;

    if (a->type == STORE_TYPE_DIR) {
        dir->nlink++;
    }
    fsm__touch_dir(op, dir);
    if ((rv = fsm__inode_put(op->f, op->txn, a)) != 0 ||
        (rv = fsm__dirent_put(op->f, op->txn, dir->ino, c->name.base,
                              c->name.len, a->ino, a->type)) != 0 ||
        (rv = fsm__inode_put(op->f, op->txn, dir)) != 0) {
        return rv;
    }
    op->res->attr = *a;
    return 0;
}

static int value_too_big(uint64_t size, uint64_t max)
{
    return size > STORE_FSM_VALUE_HARD_MAX || (max != 0 && size > max);
}

static int resize_value(struct fsm_op *op, struct store_attr *a,
                        uint64_t size, const void *tail, size_t tail_len);

static int do_create(struct fsm_op *op)
{
    const struct store_cmd *c = op->cmd;
    struct store_attr dir, a;
    uint64_t ino;
    uint8_t type;
    int status;
    int rv;

    if ((status = fsm__name_check(c->name.base, c->name.len)) != 0) {
        return fail(op, status);
    }
    if ((c->flags & STORE_CREATE_VALUE) &&
        value_too_big(c->data.len, 0)) {
        return fail(op, -EFBIG);
    }
    rv = fsm__parent_get(op->f, op->txn, c->parent, &dir, &status);
    if (rv != 0 || status != 0) {
        return rv != 0 ? rv : fail(op, status);
    }
    rv = fsm__dirent_get(op->f, op->txn, c->parent, c->name.base, c->name.len,
                         &ino, &type);
    if (rv < 0) {
        return rv;
    }
    if (rv == 0) {
        /* open(2) with O_CREAT on an existing name. */
        if (c->flags & STORE_CREATE_EXCL) {
            return fail(op, -EEXIST);
        }
        if (type == STORE_TYPE_DIR) {
            return fail(op, -EISDIR);
        }
        if (type != STORE_TYPE_FILE) {
            /* The kernel resolves symlinks before it asks to create. */
            return fail(op, -EEXIST);
        }
        if ((rv = entry_inode(op, ino, &a)) != 0) {
            return rv;
        }
        if ((c->flags & STORE_CREATE_VALUE) &&
            (c->flags & STORE_CREATE_APPEND)) {
            /* `>>` to a name that did not exist when the appender opened
             * it, made meanwhile by someone else: append to it. */
            if (value_too_big(a.size + c->data.len, c->max_size)) {
                return fail(op, -EFBIG);
            }
            if (c->data.len > 0 &&
                ((rv = resize_value(op, &a, a.size + c->data.len,
                                    c->data.base, c->data.len)) != 0 ||
                 (rv = fsm__inode_put(op->f, op->txn, &a)) != 0)) {
                return rv;
            }
        } else if (c->flags & STORE_CREATE_TRUNC) {
            const void *buf = (c->flags & STORE_CREATE_VALUE) ? c->data.base
                                                              : NULL;
            size_t len = (c->flags & STORE_CREATE_VALUE) ? c->data.len : 0;
            if ((rv = set_value(op, &a, buf, len)) != 0 ||
                (rv = fsm__inode_put(op->f, op->txn, &a)) != 0) {
                return rv;
            }
        }
        op->res->attr = a;
        return 0;
    }

    new_inode(op, &a, STORE_TYPE_FILE, c->mode, c->parent);
    if ((c->flags & STORE_CREATE_VALUE) && c->data.len > 0) {
        if ((rv = set_value(op, &a, c->data.base, c->data.len)) != 0) {
            return rv;
        }
    }
    return link_new(op, &dir, &a);
}

/* The regular file a value command targets, or a command failure. */
static int value_target(struct fsm_op *op, uint64_t ino, struct store_attr *a,
                        int *status)
{
    int rv = fsm__inode_get(op->f, op->txn, ino, a);

    *status = 0;
    if (rv < 0) {
        return rv;
    }
    if (rv == FSM_ABSENT) {
        *status = -ENOENT;
    } else if (a->type == STORE_TYPE_DIR) {
        *status = -EISDIR;
    } else if (a->type != STORE_TYPE_FILE) {
        *status = -EINVAL;
    }
    return 0;
}

static int do_put(struct fsm_op *op)
{
    const struct store_cmd *c = op->cmd;
    struct store_attr a;
    int status;
    int rv;

    rv = value_target(op, c->ino, &a, &status);
    if (rv != 0 || status != 0) {
        return rv != 0 ? rv : fail(op, status);
    }
    if (value_too_big(c->data.len, 0)) {
        return fail(op, -EFBIG);
    }
    if ((rv = set_value(op, &a, c->data.base, c->data.len)) != 0 ||
        (rv = fsm__inode_put(op->f, op->txn, &a)) != 0) {
        return rv;
    }
    op->res->attr = a;
    return 0;
}

/*
 * Builds a value of `size` bytes: the first bytes of the current value
 * (zero-extended), then `tail`. The current value lives in the map and a
 * write may move it, so it is copied out before anything is written.
 */
static int resize_value(struct fsm_op *op, struct store_attr *a,
                        uint64_t size, const void *tail, size_t tail_len)
{
    MDB_val old;
    uint8_t *buf = NULL;
    size_t keep;
    int rv;

    if ((rv = fsm__data_get(op->f, op->txn, a->ino, &old)) != 0) {
        return rv;
    }
    if (old.mv_size != a->size) {
        return STORE_ERR_CORRUPT;
    }
    if (size > 0) {
        buf = malloc(size);
        if (buf == NULL) {
            return -ENOMEM;
        }
        keep = old.mv_size < size - tail_len ? old.mv_size : size - tail_len;
        if (keep > 0) {
            memcpy(buf, old.mv_data, keep);
        }
        memset(buf + keep, 0, size - tail_len - keep);
        if (tail_len > 0) {
            memcpy(buf + size - tail_len, tail, tail_len);
        }
    }
    rv = set_value(op, a, buf, size);
    free(buf);
    return rv;
}

static int do_append(struct fsm_op *op)
{
    const struct store_cmd *c = op->cmd;
    struct store_attr a;
    int status;
    int rv;

    rv = value_target(op, c->ino, &a, &status);
    if (rv != 0 || status != 0) {
        return rv != 0 ? rv : fail(op, status);
    }
    if (c->data.len > STORE_FSM_VALUE_HARD_MAX ||
        value_too_big(a.size + c->data.len, c->max_size)) {
        return fail(op, -EFBIG);
    }
    if (c->data.len > 0) {
        rv = resize_value(op, &a, a.size + c->data.len, c->data.base,
                          c->data.len);
        if (rv != 0 || (rv = fsm__inode_put(op->f, op->txn, &a)) != 0) {
            return rv;
        }
    }
    op->res->attr = a;
    return 0;
}

static int do_setattr(struct fsm_op *op)
{
    const struct store_cmd *c = op->cmd;
    struct store_attr a;
    int rv;

    if ((c->mask & ~(uint32_t)STORE_SET_ALL) != 0) {
        return fail(op, -EINVAL);
    }
    rv = fsm__inode_get(op->f, op->txn, c->ino, &a);
    if (rv < 0) {
        return rv;
    }
    if (rv == FSM_ABSENT) {
        return fail(op, -ENOENT);
    }
    if (c->mask & STORE_SET_SIZE) {
        if (a.type == STORE_TYPE_DIR) {
            return fail(op, -EISDIR);
        }
        if (a.type != STORE_TYPE_FILE) {
            return fail(op, -EINVAL);
        }
        if (value_too_big(c->size, c->max_size)) {
            return fail(op, -EFBIG);
        }
    }

    /* Checks done: from here on only the environment can fail. */
    if ((c->mask & STORE_SET_SIZE) && c->size != a.size) {
        if ((rv = resize_value(op, &a, c->size, NULL, 0)) != 0) {
            return rv;
        }
    }
    if (c->mask & STORE_SET_MODE) {
        a.mode = fsm__type_mode(a.type) | (c->mode & 07777);
    }
    if (c->mask & STORE_SET_MTIME) {
        a.mtime_ns = c->mtime_ns;
    }
    if (c->mask & STORE_SET_ATIME) {
        a.atime_ns = c->atime_ns;
    }
    a.ctime_ns = c->time_ns;
    a.mod_rev = op->index;
    if ((rv = fsm__inode_put(op->f, op->txn, &a)) != 0) {
        return rv;
    }
    op->res->attr = a;
    return 0;
}

/* unlink (dir == false) and rmdir (dir == true). */
static int do_remove(struct fsm_op *op, bool dir_wanted)
{
    const struct store_cmd *c = op->cmd;
    struct store_attr dir, a;
    uint64_t ino;
    uint8_t type;
    int status;
    int rv;

    if ((status = fsm__name_check(c->name.base, c->name.len)) != 0) {
        return fail(op, status);
    }
    rv = fsm__parent_get(op->f, op->txn, c->parent, &dir, &status);
    if (rv != 0 || status != 0) {
        return rv != 0 ? rv : fail(op, status);
    }
    rv = fsm__dirent_get(op->f, op->txn, c->parent, c->name.base, c->name.len,
                         &ino, &type);
    if (rv < 0) {
        return rv;
    }
    if (rv == FSM_ABSENT) {
        return fail(op, -ENOENT);
    }
    if (dir_wanted && type != STORE_TYPE_DIR) {
        return fail(op, -ENOTDIR);
    }
    if (!dir_wanted && type == STORE_TYPE_DIR) {
        return fail(op, -EISDIR); /* Linux unlink(2) on a directory */
    }
    if ((rv = entry_inode(op, ino, &a)) != 0) {
        return rv;
    }
    if (dir_wanted) {
        rv = fsm__dir_empty(op->f, op->txn, ino);
        if (rv < 0) {
            return rv;
        }
        if (rv == FSM_ABSENT) {
            return fail(op, -ENOTEMPTY);
        }
        dir.nlink--;
    }

    op->st->bytes -= a.size;
    fsm__touch_dir(op, &dir);
    if ((rv = fsm__dirent_del(op->f, op->txn, c->parent, c->name.base,
                              c->name.len)) != 0 ||
        (rv = fsm__inode_del(op->f, op->txn, ino)) != 0 ||
        (rv = fsm__inode_put(op->f, op->txn, &dir)) != 0) {
        return rv;
    }
    a.nlink = 0;
    a.ctime_ns = c->time_ns;
    a.mod_rev = op->index;
    op->res->attr = a;
    return 0;
}

/* mkdir and symlink: a new inode under a name that must not exist. */
static int do_make(struct fsm_op *op, uint8_t type)
{
    const struct store_cmd *c = op->cmd;
    struct store_attr dir, a;
    uint64_t ino;
    uint8_t old_type;
    int status;
    int rv;

    if ((status = fsm__name_check(c->name.base, c->name.len)) != 0) {
        return fail(op, status);
    }
    if (type == STORE_TYPE_SYMLINK) {
        /* symlink(2): an empty target is ENOENT. */
        if (c->data.len == 0) {
            return fail(op, -ENOENT);
        }
        if (c->data.len > STORE_SYMLINK_MAX) {
            return fail(op, -ENAMETOOLONG);
        }
        if (memchr(c->data.base, '\0', c->data.len) != NULL) {
            return fail(op, -EINVAL);
        }
    }
    rv = fsm__parent_get(op->f, op->txn, c->parent, &dir, &status);
    if (rv != 0 || status != 0) {
        return rv != 0 ? rv : fail(op, status);
    }
    rv = fsm__dirent_get(op->f, op->txn, c->parent, c->name.base, c->name.len,
                         &ino, &old_type);
    if (rv < 0) {
        return rv;
    }
    if (rv == 0) {
        return fail(op, -EEXIST);
    }
    if (type == STORE_TYPE_DIR) {
        new_inode(op, &a, type, c->mode, c->parent);
    } else {
        new_inode(op, &a, type, 0777, c->parent);
        if ((rv = set_value(op, &a, c->data.base, c->data.len)) != 0) {
            return rv;
        }
    }
    return link_new(op, &dir, &a);
}

int fsm__exec(struct fsm_op *op)
{
    switch (op->cmd->type) {
    case STORE_CMD_NOOP: return 0;
    case STORE_CMD_CREATE: return do_create(op);
    case STORE_CMD_PUT: return do_put(op);
    case STORE_CMD_APPEND: return do_append(op);
    case STORE_CMD_SETATTR: return do_setattr(op);
    case STORE_CMD_UNLINK: return do_remove(op, false);
    case STORE_CMD_RMDIR: return do_remove(op, true);
    case STORE_CMD_MKDIR: return do_make(op, STORE_TYPE_DIR);
    case STORE_CMD_SYMLINK: return do_make(op, STORE_TYPE_SYMLINK);
    case STORE_CMD_RENAME: return fsm__rename(op);
    default: return fail(op, -EINVAL);
    }
}

int store__fsm_apply(struct store_fsm *f, MDB_txn *txn, raft_index index,
                     const struct raft_entry *e,
                     struct store_apply_result *res)
{
    struct fsm_state st;
    struct store_cmd cmd;
    struct fsm_op op;
    int rv;

    memset(res, 0, sizeof *res);
    rv = fsm__state_get(f, txn, &st);
    if (rv != 0) {
        return rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
    }
    /* Raft paper Figure 2 (lastApplied): entries are applied once, in log
     * order. lastApplied lives in the same txn as the effects, so the replay
     * of the log after a restart skips exactly what was applied. */
    if (index <= st.applied) {
        res->skipped = true;
        return 0;
    }

    store_cmd_init(&cmd);
    if (e->type == RAFT_ENTRY_COMMAND) {
        const uint8_t *p = e->data.base;
        /* Same bytes, same verdict on every replica: a command that does
         * not decode is this command's EINVAL. Running out of memory is
         * this replica's failure, not the command's. */
        rv = e->data.len < STORE_FSM_ENVELOPE
                 ? STORE_ERR_CORRUPT
                 : store_cmd_decode(p + STORE_FSM_ENVELOPE,
                                    e->data.len - STORE_FSM_ENVELOPE, &cmd);
        if (rv == -ENOMEM) {
            return rv;
        }
        if (rv != 0) {
            res->status = -EINVAL;
        } else {
            res->type = cmd.type;
            res->node = cmd.node;
            res->seq = cmd.seq;
            op.f = f;
            op.txn = txn;
            op.index = index;
            op.st = &st;
            op.cmd = &cmd;
            op.res = res;
            rv = fsm__exec(&op);
            if (rv != 0) {
                store_cmd_close(&cmd);
                return rv;
            }
        }
    }
    store_cmd_close(&cmd);

    st.applied = index;
    st.applied_term = e->term;
    return fsm__state_put(f, txn, &st);
}
