/* Converts log commands between struct store_cmd and protobuf-c. */
#include "cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "command.pb-c.h"

void store_cmd_init(struct store_cmd *c)
{
    memset(c, 0, sizeof *c);
}

void store_cmd_close(struct store_cmd *c)
{
    if (c->priv != NULL) {
        raftfs__command__free_unpacked(c->priv, NULL);
    }
    store_cmd_init(c);
}

const char *store_cmd_type_name(uint8_t type)
{
    switch (type) {
    case STORE_CMD_NOOP: return "noop";
    case STORE_CMD_CREATE: return "create";
    case STORE_CMD_PUT: return "put";
    case STORE_CMD_APPEND: return "append";
    case STORE_CMD_SETATTR: return "setattr";
    case STORE_CMD_UNLINK: return "unlink";
    case STORE_CMD_MKDIR: return "mkdir";
    case STORE_CMD_RMDIR: return "rmdir";
    case STORE_CMD_RENAME: return "rename";
    case STORE_CMD_SYMLINK: return "symlink";
    default: return "?";
    }
}

/* protobuf-c takes non-const pointers for what it only reads when packing. */
static ProtobufCBinaryData bin(struct store_bytes b)
{
    ProtobufCBinaryData d;
    d.len = b.len;
    d.data = (uint8_t *)(uintptr_t)b.base;
    return d;
}

static struct store_bytes bytes(ProtobufCBinaryData d)
{
    struct store_bytes b;
    b.base = d.data;
    b.len = d.len;
    return b;
}

int store_cmd_encode(const struct store_cmd *c, struct raft_buf *out)
{
    Raftfs__Command m = RAFTFS__COMMAND__INIT;
    Raftfs__Create create = RAFTFS__CREATE__INIT;
    Raftfs__Put put = RAFTFS__PUT__INIT;
    Raftfs__Append append = RAFTFS__APPEND__INIT;
    Raftfs__SetAttr setattr = RAFTFS__SET_ATTR__INIT;
    Raftfs__Unlink unlink_ = RAFTFS__UNLINK__INIT;
    Raftfs__Mkdir mkdir_ = RAFTFS__MKDIR__INIT;
    Raftfs__Rmdir rmdir_ = RAFTFS__RMDIR__INIT;
    Raftfs__Rename rename_ = RAFTFS__RENAME__INIT;
    Raftfs__Symlink symlink_ = RAFTFS__SYMLINK__INIT;
    Raftfs__Noop noop = RAFTFS__NOOP__INIT;
    size_t len;

    m.version = STORE_CMD_VERSION;
    m.node = c->node;
    m.seq = c->seq;
    m.time_ns = c->time_ns;

    switch (c->type) {
    case STORE_CMD_NOOP:
        m.op_case = RAFTFS__COMMAND__OP_NOOP;
        m.noop = &noop;
        break;
    case STORE_CMD_CREATE:
        if ((c->flags & ~(uint32_t)(STORE_CREATE_EXCL | STORE_CREATE_TRUNC |
                                    STORE_CREATE_VALUE |
                                    STORE_CREATE_APPEND)) != 0) {
            return -EINVAL;
        }
        create.parent = c->parent;
        create.name = bin(c->name);
        create.mode = c->mode;
        create.has_exclusive = (c->flags & STORE_CREATE_EXCL) != 0;
        create.exclusive = create.has_exclusive;
        create.has_truncate = (c->flags & STORE_CREATE_TRUNC) != 0;
        create.truncate = create.has_truncate;
        create.has_append = (c->flags & STORE_CREATE_APPEND) != 0;
        create.append = create.has_append;
        create.has_max_size = c->max_size != 0;
        create.max_size = c->max_size;
        if (c->flags & STORE_CREATE_VALUE) {
            create.has_value = 1;
            create.value = bin(c->data);
        }
        m.op_case = RAFTFS__COMMAND__OP_CREATE;
        m.create = &create;
        break;
    case STORE_CMD_PUT:
        put.ino = c->ino;
        put.value = bin(c->data);
        m.op_case = RAFTFS__COMMAND__OP_PUT;
        m.put = &put;
        break;
    case STORE_CMD_APPEND:
        append.ino = c->ino;
        append.data = bin(c->data);
        append.has_max_size = c->max_size != 0;
        append.max_size = c->max_size;
        m.op_case = RAFTFS__COMMAND__OP_APPEND;
        m.append = &append;
        break;
    case STORE_CMD_SETATTR:
        setattr.ino = c->ino;
        setattr.mask = c->mask;
        setattr.has_mode = (c->mask & STORE_SET_MODE) != 0;
        setattr.mode = c->mode;
        setattr.has_size = (c->mask & STORE_SET_SIZE) != 0;
        setattr.size = c->size;
        setattr.has_mtime_ns = (c->mask & STORE_SET_MTIME) != 0;
        setattr.mtime_ns = c->mtime_ns;
        setattr.has_atime_ns = (c->mask & STORE_SET_ATIME) != 0;
        setattr.atime_ns = c->atime_ns;
        setattr.has_max_size = c->max_size != 0;
        setattr.max_size = c->max_size;
        m.op_case = RAFTFS__COMMAND__OP_SETATTR;
        m.setattr = &setattr;
        break;
    case STORE_CMD_UNLINK:
        unlink_.parent = c->parent;
        unlink_.name = bin(c->name);
        m.op_case = RAFTFS__COMMAND__OP_UNLINK;
        m.unlink = &unlink_;
        break;
    case STORE_CMD_MKDIR:
        mkdir_.parent = c->parent;
        mkdir_.name = bin(c->name);
        mkdir_.mode = c->mode;
        m.op_case = RAFTFS__COMMAND__OP_MKDIR;
        m.mkdir = &mkdir_;
        break;
    case STORE_CMD_RMDIR:
        rmdir_.parent = c->parent;
        rmdir_.name = bin(c->name);
        m.op_case = RAFTFS__COMMAND__OP_RMDIR;
        m.rmdir = &rmdir_;
        break;
    case STORE_CMD_RENAME:
        rename_.parent = c->parent;
        rename_.name = bin(c->name);
        rename_.newparent = c->newparent;
        rename_.newname = bin(c->newname);
        rename_.has_flags = c->flags != 0;
        rename_.flags = c->flags;
        m.op_case = RAFTFS__COMMAND__OP_RENAME;
        m.rename = &rename_;
        break;
    case STORE_CMD_SYMLINK:
        symlink_.parent = c->parent;
        symlink_.name = bin(c->name);
        symlink_.target = bin(c->data);
        m.op_case = RAFTFS__COMMAND__OP_SYMLINK;
        m.symlink = &symlink_;
        break;
    default:
        return -EINVAL;
    }

    len = raftfs__command__get_packed_size(&m);
    out->base = malloc(len > 0 ? len : 1);
    if (out->base == NULL) {
        return -ENOMEM;
    }
    out->len = raftfs__command__pack(&m, out->base);
    return 0;
}

/* protobuf-c's unpack returns NULL both for malformed input and for a
 * failed allocation. Apply must tell them apart: a malformed command is the
 * same on every replica (its EINVAL is deterministic), an allocation failure
 * is this replica's problem and must fail the batch instead. This allocator
 * notes failures; memory from it is released with free() like the default
 * allocator's, so free_unpacked(m, NULL) matches. */
static void *alloc_noting(void *data, size_t size)
{
    void *p = malloc(size);
    if (p == NULL && size > 0) {
        *(bool *)data = true;
    }
    return p;
}

static void free_plain(void *data, void *p)
{
    (void)data;
    free(p);
}

int store_cmd_decode(const void *buf, size_t len, struct store_cmd *c)
{
    ProtobufCAllocator allocator;
    Raftfs__Command *m;
    bool nomem = false;

    store_cmd_init(c);
    allocator.alloc = alloc_noting;
    allocator.free = free_plain;
    allocator.allocator_data = &nomem;
    m = raftfs__command__unpack(&allocator, len, buf);
    if (m == NULL) {
        return nomem ? -ENOMEM : STORE_ERR_CORRUPT;
    }
    if (m->version != STORE_CMD_VERSION) {
        raftfs__command__free_unpacked(m, NULL);
        return STORE_ERR_VERSION;
    }
    c->priv = m;
    c->node = m->node;
    c->seq = m->seq;
    c->time_ns = m->time_ns;

    switch (m->op_case) {
    case RAFTFS__COMMAND__OP_NOOP:
        c->type = STORE_CMD_NOOP;
        break;
    case RAFTFS__COMMAND__OP_CREATE:
        c->type = STORE_CMD_CREATE;
        c->parent = m->create->parent;
        c->name = bytes(m->create->name);
        c->mode = m->create->mode;
        if (m->create->has_exclusive && m->create->exclusive) {
            c->flags |= STORE_CREATE_EXCL;
        }
        if (m->create->has_truncate && m->create->truncate) {
            c->flags |= STORE_CREATE_TRUNC;
        }
        if (m->create->has_value) {
            c->flags |= STORE_CREATE_VALUE;
            c->data = bytes(m->create->value);
        }
        if (m->create->has_append && m->create->append) {
            c->flags |= STORE_CREATE_APPEND;
        }
        c->max_size = m->create->has_max_size ? m->create->max_size : 0;
        break;
    case RAFTFS__COMMAND__OP_PUT:
        c->type = STORE_CMD_PUT;
        c->ino = m->put->ino;
        c->data = bytes(m->put->value);
        break;
    case RAFTFS__COMMAND__OP_APPEND:
        c->type = STORE_CMD_APPEND;
        c->ino = m->append->ino;
        c->data = bytes(m->append->data);
        c->max_size = m->append->has_max_size ? m->append->max_size : 0;
        break;
    case RAFTFS__COMMAND__OP_SETATTR:
        c->type = STORE_CMD_SETATTR;
        c->ino = m->setattr->ino;
        c->mask = m->setattr->mask;
        /* A mask bit without its value is malformed, not "set to 0". */
        if (((c->mask & STORE_SET_MODE) && !m->setattr->has_mode) ||
            ((c->mask & STORE_SET_SIZE) && !m->setattr->has_size) ||
            ((c->mask & STORE_SET_MTIME) && !m->setattr->has_mtime_ns) ||
            ((c->mask & STORE_SET_ATIME) && !m->setattr->has_atime_ns)) {
            store_cmd_close(c);
            return STORE_ERR_CORRUPT;
        }
        c->mode = m->setattr->mode;
        c->size = m->setattr->size;
        c->mtime_ns = m->setattr->mtime_ns;
        c->atime_ns = m->setattr->atime_ns;
        c->max_size = m->setattr->has_max_size ? m->setattr->max_size : 0;
        break;
    case RAFTFS__COMMAND__OP_UNLINK:
        c->type = STORE_CMD_UNLINK;
        c->parent = m->unlink->parent;
        c->name = bytes(m->unlink->name);
        break;
    case RAFTFS__COMMAND__OP_MKDIR:
        c->type = STORE_CMD_MKDIR;
        c->parent = m->mkdir->parent;
        c->name = bytes(m->mkdir->name);
        c->mode = m->mkdir->mode;
        break;
    case RAFTFS__COMMAND__OP_RMDIR:
        c->type = STORE_CMD_RMDIR;
        c->parent = m->rmdir->parent;
        c->name = bytes(m->rmdir->name);
        break;
    case RAFTFS__COMMAND__OP_RENAME:
        c->type = STORE_CMD_RENAME;
        c->parent = m->rename->parent;
        c->name = bytes(m->rename->name);
        c->newparent = m->rename->newparent;
        c->newname = bytes(m->rename->newname);
        c->flags = m->rename->has_flags ? m->rename->flags : 0;
        break;
    case RAFTFS__COMMAND__OP_SYMLINK:
        c->type = STORE_CMD_SYMLINK;
        c->parent = m->symlink->parent;
        c->name = bytes(m->symlink->name);
        c->data = bytes(m->symlink->target);
        break;
    default:
        /* No operation, or one a newer proposer added without bumping the
         * version (an unknown oneof field is skipped by the decoder). */
        store_cmd_close(c);
        return STORE_ERR_CORRUPT;
    }
    return 0;
}
