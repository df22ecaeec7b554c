/* rename(2)/renameat2(2) on the inode tree: replace, NOREPLACE, EXCHANGE. */
#include <errno.h>
#include <string.h>

#include "fsm_internal.h"

/*
 * Sets *inside when directory `ino` is `top` or lies below it, by walking
 * parent pointers up to the root. A walk longer than the number of inode
 * numbers ever assigned means a cycle: local corruption.
 */
static int in_subtree(struct fsm_op *op, uint64_t ino, uint64_t top,
                      bool *inside)
{
    struct store_attr a;
    uint64_t steps = 0;
    int rv;

    for (;;) {
        if (ino == top) {
            *inside = true;
            return 0;
        }
        if (ino == STORE_ROOT_INO) {
            *inside = false;
            return 0;
        }
        if (++steps > op->st->next_ino) {
            return STORE_ERR_CORRUPT;
        }
        rv = fsm__inode_get(op->f, op->txn, ino, &a);
        if (rv != 0) {
            return rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
        }
        ino = a.parent;
    }
}

/* One side of a rename: the directory and the entry in it (if any). */
struct side {
    uint64_t parent;
    const char *name;
    size_t len;
    struct store_attr *dir; /* both sides share one when parents are equal */
    bool exists;
    struct store_attr node; /* the entry's inode, if exists */
};

static int load_side(struct fsm_op *op, struct side *s)
{
    uint64_t ino;
    uint8_t type;
    int rv;

    rv = fsm__dirent_get(op->f, op->txn, s->parent, s->name, s->len, &ino,
                         &type);
    if (rv < 0) {
        return rv;
    }
    s->exists = rv == 0;
    if (!s->exists) {
        return 0;
    }
    rv = fsm__inode_get(op->f, op->txn, ino, &s->node);
    if (rv != 0) {
        return rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
    }
    if (s->node.type != type) {
        return STORE_ERR_CORRUPT;
    }
    return 0;
}

/* Inode `a` now lives in directory `to` (coming from `from`). */
static void move_inode(struct fsm_op *op, struct store_attr *a,
                       struct store_attr *from, struct store_attr *to)
{
    if (a->type == STORE_TYPE_DIR && from != to) {
        from->nlink--;
        to->nlink++;
    }
    a->parent = to->ino;
    a->ctime_ns = op->cmd->time_ns;
    a->mod_rev = op->index;
}

/* Checks everything rename(2) checks; a failure is a command result. */
static int check(struct fsm_op *op, struct side *src, struct side *dst,
                 int *status)
{
    bool exchange = (op->cmd->flags & STORE_RENAME_EXCHANGE) != 0;
    bool inside;
    int rv;

    /* In the order Linux checks (do_renameat2, then vfs_rename). */
    if (!src->exists) {
        *status = -ENOENT;
        return 0;
    }
    if ((op->cmd->flags & STORE_RENAME_NOREPLACE) && dst->exists) {
        *status = -EEXIST; /* even onto itself */
        return 0;
    }
    if (exchange && !dst->exists) {
        *status = -ENOENT;
        return 0;
    }
    if (dst->exists && dst->node.ino == src->node.ino) {
        return 0; /* the same file: rename(2) does nothing */
    }
    /* A directory cannot move into its own subtree (nor, in an exchange,
     * the other one into its subtree). */
    if (src->node.type == STORE_TYPE_DIR) {
        if ((rv = in_subtree(op, dst->parent, src->node.ino, &inside)) != 0) {
            return rv;
        }
        if (inside) {
            *status = -EINVAL;
            return 0;
        }
    }
    if (exchange) {
        if (dst->node.type == STORE_TYPE_DIR) {
            rv = in_subtree(op, src->parent, dst->node.ino, &inside);
            if (rv != 0) {
                return rv;
            }
            if (inside) {
                *status = -EINVAL;
            }
        }
        return 0;
    }
    if (!dst->exists) {
        return 0;
    }
    if (src->node.type == STORE_TYPE_DIR && dst->node.type != STORE_TYPE_DIR) {
        *status = -ENOTDIR;
    } else if (src->node.type != STORE_TYPE_DIR &&
               dst->node.type == STORE_TYPE_DIR) {
        *status = -EISDIR;
    } else if (dst->node.type == STORE_TYPE_DIR) {
        rv = fsm__dir_empty(op->f, op->txn, dst->node.ino);
        if (rv < 0) {
            return rv;
        }
        if (rv == FSM_ABSENT) {
            *status = -ENOTEMPTY;
        }
    }
    return 0;
}

int fsm__rename(struct fsm_op *op)
{
    const struct store_cmd *c = op->cmd;
    bool exchange = (c->flags & STORE_RENAME_EXCHANGE) != 0;
    struct store_attr pdir, ndir;
    struct side src, dst;
    int status = 0;
    int rv;

    if ((c->flags & ~(uint32_t)(STORE_RENAME_NOREPLACE |
                                STORE_RENAME_EXCHANGE)) != 0 ||
        (exchange && (c->flags & STORE_RENAME_NOREPLACE))) {
        op->res->status = -EINVAL;
        return 0;
    }
    if ((status = fsm__name_check(c->name.base, c->name.len)) != 0 ||
        (status = fsm__name_check(c->newname.base, c->newname.len)) != 0) {
        op->res->status = status;
        return 0;
    }

    memset(&src, 0, sizeof src);
    memset(&dst, 0, sizeof dst);
    src.parent = c->parent;
    src.name = c->name.base;
    src.len = c->name.len;
    src.dir = &pdir;
    dst.parent = c->newparent;
    dst.name = c->newname.base;
    dst.len = c->newname.len;
    dst.dir = c->newparent == c->parent ? &pdir : &ndir;

    rv = fsm__parent_get(op->f, op->txn, c->parent, &pdir, &status);
    if (rv == 0 && status == 0 && dst.dir == &ndir) {
        rv = fsm__parent_get(op->f, op->txn, c->newparent, &ndir, &status);
    }
    if (rv == 0 && status == 0) {
        rv = load_side(op, &src);
    }
    if (rv == 0 && status == 0) {
        rv = load_side(op, &dst);
    }
    if (rv == 0 && status == 0) {
        rv = check(op, &src, &dst, &status);
    }
    if (rv != 0 || status != 0) {
        op->res->status = status;
        return rv;
    }
    if (dst.exists && dst.node.ino == src.node.ino) {
        op->res->attr = src.node;
        return 0;
    }

    /* Checks done: from here on only the environment can fail. A directory
     * moves as one entry: its subtree is keyed by its inode number, which
     * does not change. */
    if (exchange) {
        move_inode(op, &src.node, src.dir, dst.dir);
        move_inode(op, &dst.node, dst.dir, src.dir);
        if ((rv = fsm__dirent_put(op->f, op->txn, src.parent, src.name,
                                  src.len, dst.node.ino, dst.node.type)) ||
            (rv = fsm__inode_put(op->f, op->txn, &dst.node))) {
            return rv;
        }
    } else {
        if (dst.exists) {
            /* The replaced inode goes away with its value. */
            if (dst.node.type == STORE_TYPE_DIR) {
                dst.dir->nlink--;
            }
            op->st->bytes -= dst.node.size;
            if ((rv = fsm__inode_del(op->f, op->txn, dst.node.ino)) != 0) {
                return rv;
            }
        }
        move_inode(op, &src.node, src.dir, dst.dir);
        rv = fsm__dirent_del(op->f, op->txn, src.parent, src.name, src.len);
        if (rv != 0) {
            return rv;
        }
    }
    fsm__touch_dir(op, src.dir);
    fsm__touch_dir(op, dst.dir);
    if ((rv = fsm__dirent_put(op->f, op->txn, dst.parent, dst.name, dst.len,
                              src.node.ino, src.node.type)) ||
        (rv = fsm__inode_put(op->f, op->txn, &src.node)) ||
        (rv = fsm__inode_put(op->f, op->txn, src.dir))) {
        return rv;
    }
    if (dst.dir != src.dir && (rv = fsm__inode_put(op->f, op->txn, dst.dir))) {
        return rv;
    }
    op->res->attr = src.node;
    return 0;
}
