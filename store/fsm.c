/* State machine records: codecs, LMDB helpers, open and applied index. */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fsm_internal.h"

void fsm__put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t fsm__get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void fsm__put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t fsm__get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int fsm__lmdb_err(int rc)
{
    assert(rc != 0);
    switch (rc) {
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_TXN_FULL:
        /* Too many dirty pages in one txn: the batch must be split. */
        return -E2BIG;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return -EIO;
    default:
        if (rc > 0) {
            return -rc; /* LMDB passes system errors through as errno */
        }
        return -EIO;
    }
}

int fsm__name_check(const char *name, size_t len)
{
    if (len > STORE_NAME_MAX) {
        return -ENAMETOOLONG;
    }
    if (len == 0 || (len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.')) {
        return -EINVAL;
    }
    if (memchr(name, '/', len) != NULL || memchr(name, '\0', len) != NULL) {
        return -EINVAL;
    }
    return 0;
}

uint32_t fsm__type_mode(uint8_t type)
{
    switch (type) {
    case STORE_TYPE_DIR: return S_IFDIR;
    case STORE_TYPE_FILE: return S_IFREG;
    case STORE_TYPE_SYMLINK: return S_IFLNK;
    default: return 0;
    }
}

void fsm__inode_encode(const struct store_attr *a, uint8_t out[FSM_INODE_LEN])
{
    memset(out, 0, FSM_INODE_LEN);
    out[0] = FSM_INODE_VERSION;
    out[1] = a->type;
    fsm__put_u32(out + 4, a->mode & 07777);
    fsm__put_u32(out + 8, a->nlink);
    fsm__put_u64(out + 16, a->size);
    fsm__put_u64(out + 24, a->parent);
    fsm__put_u64(out + 32, a->mtime_ns);
    fsm__put_u64(out + 40, a->ctime_ns);
    fsm__put_u64(out + 48, a->atime_ns);
    fsm__put_u64(out + 56, a->create_rev);
    fsm__put_u64(out + 64, a->mod_rev);
}

int fsm__inode_decode(uint64_t ino, const void *buf, size_t len,
                      struct store_attr *a)
{
    const uint8_t *p = buf;
    uint32_t mode;

    if (len != FSM_INODE_LEN || p[0] != FSM_INODE_VERSION ||
        fsm__type_mode(p[1]) == 0 || p[2] != 0 || p[3] != 0) {
        return STORE_ERR_CORRUPT;
    }
    mode = fsm__get_u32(p + 4);
    if ((mode & ~07777u) != 0) {
        return STORE_ERR_CORRUPT;
    }
    a->ino = ino;
    a->type = p[1];
    a->mode = fsm__type_mode(a->type) | mode;
    a->nlink = fsm__get_u32(p + 8);
    a->size = fsm__get_u64(p + 16);
    a->parent = fsm__get_u64(p + 24);
    a->mtime_ns = fsm__get_u64(p + 32);
    a->ctime_ns = fsm__get_u64(p + 40);
    a->atime_ns = fsm__get_u64(p + 48);
    a->create_rev = fsm__get_u64(p + 56);
    a->mod_rev = fsm__get_u64(p + 64);
    return 0;
}

void fsm__state_encode(const struct fsm_state *s, uint8_t out[FSM_STATE_LEN])
{
    memset(out, 0, FSM_STATE_LEN);
    fsm__put_u32(out, FSM_STATE_VERSION);
    fsm__put_u64(out + 8, s->applied);
    fsm__put_u64(out + 16, s->applied_term);
    fsm__put_u64(out + 24, s->next_ino);
    fsm__put_u64(out + 32, s->bytes);
}

int fsm__state_decode(const void *buf, size_t len, struct fsm_state *s)
{
    const uint8_t *p = buf;

    if (len < 4) {
        return STORE_ERR_CORRUPT;
    }
    if (fsm__get_u32(p) != FSM_STATE_VERSION) {
        return STORE_ERR_VERSION;
    }
    if (len != FSM_STATE_LEN) {
        return STORE_ERR_CORRUPT;
    }
    s->applied = fsm__get_u64(p + 8);
    s->applied_term = fsm__get_u64(p + 16);
    s->next_ino = fsm__get_u64(p + 24);
    s->bytes = fsm__get_u64(p + 32);
    if (s->next_ino <= STORE_ROOT_INO) {
        return STORE_ERR_CORRUPT;
    }
    return 0;
}

size_t fsm__dirent_key(uint8_t *key, uint64_t parent, const char *name,
                       size_t len)
{
    assert(len <= STORE_NAME_MAX);
    fsm__put_u64(key, parent);
    if (len > 0) {
        memcpy(key + 8, name, len);
    }
    return 8 + len;
}

static MDB_val val_of(void *base, size_t len)
{
    MDB_val v;
    v.mv_data = base;
    v.mv_size = len;
    return v;
}

int fsm__state_get(struct store_fsm *f, MDB_txn *txn, struct fsm_state *s)
{
    MDB_val k = val_of(FSM_STATE_KEY, FSM_STATE_KEY_LEN);
    MDB_val v;
    int rc = mdb_get(txn, f->state, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return FSM_ABSENT;
    }
    if (rc != 0) {
        return fsm__lmdb_err(rc);
    }
    return fsm__state_decode(v.mv_data, v.mv_size, s);
}

/* Disk room for what n deletes may add to data.mdb (mapres.h). */
static int reserve_del(struct store_fsm *f, unsigned n)
{
    return store__mapres_add(f->mapres, n * store__mapres_del_bound(f->mapres));
}

/* Disk room for what a put may add to data.mdb (mapres.h): 0 or -errno. */
static int reserve_put(struct store_fsm *f, const MDB_val *k, const MDB_val *v)
{
    return store__mapres_add(
        f->mapres, store__mapres_put_bound(f->mapres, k->mv_size, v->mv_size));
}

int fsm__state_put(struct store_fsm *f, MDB_txn *txn,
                   const struct fsm_state *s)
{
    uint8_t buf[FSM_STATE_LEN];
    MDB_val k = val_of(FSM_STATE_KEY, FSM_STATE_KEY_LEN);
    MDB_val v = val_of(buf, sizeof buf);
    int rc;

    fsm__state_encode(s, buf);
    if ((rc = reserve_put(f, &k, &v)) != 0) {
        return rc;
    }
    rc = mdb_put(txn, f->state, &k, &v, 0);
    return rc == 0 ? 0 : fsm__lmdb_err(rc);
}

int fsm__inode_get(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                   struct store_attr *a)
{
    uint8_t key[8];
    MDB_val k = val_of(key, sizeof key);
    MDB_val v;
    int rc;

    fsm__put_u64(key, ino);
    rc = mdb_get(txn, f->inode, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return FSM_ABSENT;
    }
    if (rc != 0) {
        return fsm__lmdb_err(rc);
    }
    return fsm__inode_decode(ino, v.mv_data, v.mv_size, a);
}

int fsm__inode_put(struct store_fsm *f, MDB_txn *txn,
                   const struct store_attr *a)
{
    uint8_t key[8];
    uint8_t buf[FSM_INODE_LEN];
    MDB_val k = val_of(key, sizeof key);
    MDB_val v = val_of(buf, sizeof buf);
    int rc;

    fsm__put_u64(key, a->ino);
    fsm__inode_encode(a, buf);
    if ((rc = reserve_put(f, &k, &v)) != 0) {
        return rc;
    }
    rc = mdb_put(txn, f->inode, &k, &v, 0);
    return rc == 0 ? 0 : fsm__lmdb_err(rc);
}

int fsm__inode_del(struct store_fsm *f, MDB_txn *txn, uint64_t ino)
{
    uint8_t key[8];
    MDB_val k = val_of(key, sizeof key);
    int rc;

    fsm__put_u64(key, ino);
    if ((rc = reserve_del(f, 2)) != 0) {
        return rc;
    }
    rc = mdb_del(txn, f->inode, &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__lmdb_err(rc);
    }
    rc = mdb_del(txn, f->data, &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__lmdb_err(rc);
    }
    return 0;
}

int fsm__dirent_get(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    const char *name, size_t len, uint64_t *ino,
                    uint8_t *type)
{
    uint8_t key[FSM_DIRENT_KEY_MAX];
    MDB_val k = val_of(key, fsm__dirent_key(key, parent, name, len));
    MDB_val v;
    const uint8_t *p;
    int rc;

    rc = mdb_get(txn, f->dirent, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return FSM_ABSENT;
    }
    if (rc != 0) {
        return fsm__lmdb_err(rc);
    }
    p = v.mv_data;
    if (v.mv_size != FSM_DIRENT_VAL_LEN || fsm__type_mode(p[8]) == 0) {
        return STORE_ERR_CORRUPT;
    }
    *ino = fsm__get_u64(p);
    *type = p[8];
    return 0;
}

int fsm__dirent_put(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    const char *name, size_t len, uint64_t ino, uint8_t type)
{
    uint8_t key[FSM_DIRENT_KEY_MAX];
    uint8_t buf[FSM_DIRENT_VAL_LEN];
    MDB_val k = val_of(key, fsm__dirent_key(key, parent, name, len));
    MDB_val v = val_of(buf, sizeof buf);
    int rc;

    fsm__put_u64(buf, ino);
    buf[8] = type;
    if ((rc = reserve_put(f, &k, &v)) != 0) {
        return rc;
    }
    rc = mdb_put(txn, f->dirent, &k, &v, 0);
    return rc == 0 ? 0 : fsm__lmdb_err(rc);
}

int fsm__dirent_del(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    const char *name, size_t len)
{
    uint8_t key[FSM_DIRENT_KEY_MAX];
    MDB_val k = val_of(key, fsm__dirent_key(key, parent, name, len));
    int rc = reserve_del(f, 1);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_del(txn, f->dirent, &k, NULL);

    return rc == 0 ? 0 : fsm__lmdb_err(rc);
}

int fsm__dir_empty(struct store_fsm *f, MDB_txn *txn, uint64_t ino)
{
    uint8_t key[8];
    MDB_val k = val_of(key, sizeof key);
    MDB_val v;
    MDB_cursor *cur;
    int rc;

    fsm__put_u64(key, ino);
    rc = mdb_cursor_open(txn, f->dirent, &cur);
    if (rc != 0) {
        return fsm__lmdb_err(rc);
    }
    /* The first key >= the bare 8-byte prefix is the directory's first
     * entry, if it has one. */
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return fsm__lmdb_err(rc);
    }
    if (k.mv_size >= 8 && fsm__get_u64(k.mv_data) == ino) {
        return FSM_ABSENT;
    }
    return 0;
}

int fsm__data_put(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                  const void *buf, size_t len)
{
    uint8_t key[8];
    MDB_val k = val_of(key, sizeof key);
    MDB_val v;
    int rc;

    fsm__put_u64(key, ino);
    if (len == 0) {
        if ((rc = reserve_del(f, 1)) != 0) {
            return rc;
        }
        rc = mdb_del(txn, f->data, &k, NULL);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
        }
        return rc == 0 ? 0 : fsm__lmdb_err(rc);
    }
    /* LMDB only reads the value it is given. */
    v.mv_data = (void *)(uintptr_t)buf;
    v.mv_size = len;
    if ((rc = reserve_put(f, &k, &v)) != 0) {
        return rc;
    }
    rc = mdb_put(txn, f->data, &k, &v, 0);
    return rc == 0 ? 0 : fsm__lmdb_err(rc);
}

int fsm__data_get(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                  MDB_val *val)
{
    uint8_t key[8];
    MDB_val k = val_of(key, sizeof key);
    int rc;

    fsm__put_u64(key, ino);
    rc = mdb_get(txn, f->data, &k, val);
    if (rc == MDB_NOTFOUND) {
        val->mv_data = NULL;
        val->mv_size = 0;
        return 0;
    }
    return rc == 0 ? 0 : fsm__lmdb_err(rc);
}

int fsm__parent_get(struct store_fsm *f, MDB_txn *txn, uint64_t parent,
                    struct store_attr *dir, int *status)
{
    int rv = fsm__inode_get(f, txn, parent, dir);

    if (rv < 0) {
        return rv;
    }
    if (rv == FSM_ABSENT) {
        *status = -ENOENT;
    } else if (dir->type != STORE_TYPE_DIR) {
        *status = -ENOTDIR;
    } else {
        *status = 0;
    }
    return 0;
}

void fsm__touch_dir(struct fsm_op *op, struct store_attr *dir)
{
    dir->mtime_ns = op->cmd->time_ns;
    dir->ctime_ns = op->cmd->time_ns;
    dir->mod_rev = op->index;
}

int store__fsm_open(struct store_fsm *f, MDB_txn *txn)
{
    struct fsm_state st;
    struct store_attr root;
    int rc;
    int rv;

    memset(f, 0, sizeof *f);
    f->env = mdb_txn_env(txn);
    if ((rc = mdb_dbi_open(txn, "fsm", MDB_CREATE, &f->state)) != 0 ||
        (rc = mdb_dbi_open(txn, "inode", MDB_CREATE, &f->inode)) != 0 ||
        (rc = mdb_dbi_open(txn, "dirent", MDB_CREATE, &f->dirent)) != 0 ||
        (rc = mdb_dbi_open(txn, "data", MDB_CREATE, &f->data)) != 0) {
        return fsm__lmdb_err(rc);
    }

    rv = fsm__state_get(f, txn, &st);
    if (rv < 0) {
        return rv;
    }
    if (rv == FSM_ABSENT) {
        /* A new state machine: the same root on every replica. */
        memset(&st, 0, sizeof st);
        st.next_ino = STORE_ROOT_INO + 1;
        memset(&root, 0, sizeof root);
        root.ino = STORE_ROOT_INO;
        root.type = STORE_TYPE_DIR;
        root.mode = S_IFDIR | 0755;
        root.nlink = 2;
        root.parent = STORE_ROOT_INO;
        if ((rv = fsm__inode_put(f, txn, &root)) != 0 ||
            (rv = fsm__state_put(f, txn, &st)) != 0) {
            return rv;
        }
    }
    f->open = true;
    return 0;
}

void store__fsm_close(struct store_fsm *f)
{
    memset(f, 0, sizeof *f);
}

raft_index store__fsm_applied(struct store_fsm *f, MDB_txn *txn)
{
    struct fsm_state st;

    if (fsm__state_get(f, txn, &st) != 0) {
        return 0;
    }
    return st.applied;
}

raft_term store__fsm_applied_term(struct store_fsm *f, MDB_txn *txn)
{
    struct fsm_state st;

    if (fsm__state_get(f, txn, &st) != 0) {
        return 0;
    }
    return st.applied_term;
}
