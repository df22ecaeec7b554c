/* Reads of the state machine, each in its own short LMDB read txn. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_internal.h"

/* Reads never hold a txn across calls: a long-lived reader would pin old
 * pages and grow the map while the writer keeps committing. */
static int rbegin(struct store_fsm *f, MDB_txn **txn)
{
    int rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, txn);
    return rc == 0 ? 0 : fsm__lmdb_err(rc);
}

/* Getter results to errno: absent -> -ENOENT. */
static int found(int rv)
{
    return rv == FSM_ABSENT ? -ENOENT : rv;
}

int store_fsm_lookup(struct store_fsm *f, uint64_t parent, const char *name,
                     size_t name_len, struct store_attr *attr)
{
    struct store_attr dir;
    MDB_txn *txn;
    uint64_t ino;
    uint8_t type;
    int status;
    int rv;

    if ((rv = fsm__name_check(name, name_len)) != 0) {
        return rv;
    }
    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = fsm__parent_get(f, txn, parent, &dir, &status);
    if (rv == 0) {
        rv = status;
    }
    if (rv == 0) {
        rv = found(fsm__dirent_get(f, txn, parent, name, name_len, &ino,
                                   &type));
    }
    if (rv == 0) {
        /* A dangling entry is corruption, not "no such file". */
        rv = fsm__inode_get(f, txn, ino, attr);
        if (rv == FSM_ABSENT) {
            rv = STORE_ERR_CORRUPT;
        }
    }
    mdb_txn_abort(txn);
    return rv;
}

int store_fsm_getattr(struct store_fsm *f, uint64_t ino,
                      struct store_attr *attr)
{
    MDB_txn *txn;
    int rv;

    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = found(fsm__inode_get(f, txn, ino, attr));
    mdb_txn_abort(txn);
    return rv;
}

static int readdir_txn(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                       const char *after, size_t after_len, bool with_attr,
                       size_t max, store_readdir_cb cb, void *arg)
{
    uint8_t key[FSM_DIRENT_KEY_MAX];
    struct store_attr dir, a;
    struct store_dirent d;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t start_len;
    int count = 0;
    int status;
    int rc;
    int rv;

    rv = fsm__parent_get(f, txn, ino, &dir, &status);
    if (rv != 0 || status != 0) {
        return rv != 0 ? rv : status;
    }
    if (after_len > STORE_NAME_MAX) {
        return -ENAMETOOLONG;
    }
    if ((rc = mdb_cursor_open(txn, f->dirent, &cur)) != 0) {
        return fsm__lmdb_err(rc);
    }
    start_len = fsm__dirent_key(key, ino, after, after_len);
    k.mv_data = key;
    k.mv_size = start_len;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    /* The cursor name itself was consumed by the previous page. */
    if (rc == 0 && after_len > 0 && k.mv_size == start_len &&
        memcmp(k.mv_data, key, start_len) == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    while (rc == 0) {
        const uint8_t *kp = k.mv_data;
        const uint8_t *vp = v.mv_data;
        int r;

        if (k.mv_size < 9 || fsm__get_u64(kp) != ino) {
            break; /* past the directory's key range */
        }
        if (v.mv_size != FSM_DIRENT_VAL_LEN) {
            rv = STORE_ERR_CORRUPT;
            break;
        }
        d.ino = fsm__get_u64(vp);
        d.type = vp[8];
        d.name = (const char *)kp + 8;
        d.name_len = k.mv_size - 8;
        if (with_attr) {
            rv = fsm__inode_get(f, txn, d.ino, &a);
            if (rv != 0) {
                rv = rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
                break;
            }
        }
        r = cb(arg, &d, with_attr ? &a : NULL);
        if (r < 0) {
            rv = r;
            break;
        }
        if (r > 0) {
            break;
        }
        count++;
        if (max != 0 && (size_t)count == max) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND && rv == 0) {
        rv = fsm__lmdb_err(rc);
    }
    mdb_cursor_close(cur);
    return rv != 0 ? rv : count;
}

int store_fsm_readdir(struct store_fsm *f, uint64_t ino, const char *after,
                      size_t after_len, bool with_attr, size_t max,
                      store_readdir_cb cb, void *arg)
{
    MDB_txn *txn;
    int rv;

    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = readdir_txn(f, txn, ino, after, after_len, with_attr, max, cb, arg);
    mdb_txn_abort(txn);
    return rv;
}

/* The value of `ino` in txn: regular files only, or -errno. */
static int file_value(struct store_fsm *f, MDB_txn *txn, uint64_t ino,
                      struct store_attr *a, MDB_val *val)
{
    int rv = found(fsm__inode_get(f, txn, ino, a));

    if (rv != 0) {
        return rv;
    }
    if (a->type == STORE_TYPE_DIR) {
        return -EISDIR;
    }
    if (a->type != STORE_TYPE_FILE) {
        return -EINVAL;
    }
    if ((rv = fsm__data_get(f, txn, ino, val)) != 0) {
        return rv;
    }
    return val->mv_size == a->size ? 0 : STORE_ERR_CORRUPT;
}

int store_fsm_read(struct store_fsm *f, uint64_t ino, uint64_t offset,
                   void *buf, size_t len, size_t *n, struct store_attr *attr)
{
    struct store_attr a;
    MDB_txn *txn;
    MDB_val val;
    int rv;

    *n = 0;
    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = file_value(f, txn, ino, &a, &val);
    if (rv == 0 && offset < val.mv_size) {
        size_t avail = val.mv_size - (size_t)offset;
        *n = len < avail ? len : avail;
        memcpy(buf, (const uint8_t *)val.mv_data + offset, *n);
    }
    if (rv == 0 && attr != NULL) {
        *attr = a;
    }
    mdb_txn_abort(txn);
    return rv;
}

int store_fsm_read_all(struct store_fsm *f, uint64_t ino, void **buf,
                       size_t *len, struct store_attr *attr)
{
    struct store_attr a;
    MDB_txn *txn;
    MDB_val val;
    int rv;

    *buf = NULL;
    *len = 0;
    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = file_value(f, txn, ino, &a, &val);
    if (rv == 0 && val.mv_size > 0) {
        *buf = malloc(val.mv_size);
        if (*buf == NULL) {
            rv = -ENOMEM;
        } else {
            memcpy(*buf, val.mv_data, val.mv_size);
            *len = val.mv_size;
        }
    }
    if (rv == 0 && attr != NULL) {
        *attr = a;
    }
    mdb_txn_abort(txn);
    return rv;
}

int store_fsm_readlink(struct store_fsm *f, uint64_t ino, char **target)
{
    struct store_attr a;
    MDB_txn *txn;
    MDB_val val;
    int rv;

    *target = NULL;
    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = found(fsm__inode_get(f, txn, ino, &a));
    if (rv == 0 && a.type != STORE_TYPE_SYMLINK) {
        rv = -EINVAL;
    }
    if (rv == 0) {
        rv = fsm__data_get(f, txn, ino, &val);
    }
    if (rv == 0) {
        *target = malloc(val.mv_size + 1);
        if (*target == NULL) {
            rv = -ENOMEM;
        } else {
            if (val.mv_size > 0) {
                memcpy(*target, val.mv_data, val.mv_size);
            }
            (*target)[val.mv_size] = '\0';
        }
    }
    mdb_txn_abort(txn);
    return rv;
}

static int resolve_txn(struct store_fsm *f, MDB_txn *txn, uint64_t root,
                       const char *path, size_t path_len,
                       struct store_attr *attr)
{
    size_t i = 0;
    int rv;

    if ((rv = found(fsm__inode_get(f, txn, root, attr))) != 0) {
        return rv;
    }
    while (i < path_len) {
        const char *comp = path + i;
        size_t len = 0;
        uint64_t ino;
        uint8_t type;

        while (i + len < path_len && comp[len] != '/') {
            len++;
        }
        i += len + 1;
        if (len == 0 || (len == 1 && comp[0] == '.')) {
            continue;
        }
        if (len > STORE_NAME_MAX) {
            return -ENAMETOOLONG;
        }
        if (attr->type != STORE_TYPE_DIR) {
            return -ENOTDIR;
        }
        if (len == 2 && comp[0] == '.' && comp[1] == '.') {
            if (attr->ino != root) {
                rv = fsm__inode_get(f, txn, attr->parent, attr);
                if (rv != 0) {
                    return rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
                }
            }
            continue;
        }
        rv = found(fsm__dirent_get(f, txn, attr->ino, comp, len, &ino, &type));
        if (rv != 0) {
            return rv;
        }
        rv = fsm__inode_get(f, txn, ino, attr);
        if (rv != 0) {
            return rv == FSM_ABSENT ? STORE_ERR_CORRUPT : rv;
        }
    }
    return 0;
}

int store_fsm_resolve(struct store_fsm *f, uint64_t root, const char *path,
                      size_t path_len, struct store_attr *attr)
{
    MDB_txn *txn;
    int rv;

    if (path_len > STORE_PATH_MAX) {
        return -ENAMETOOLONG;
    }
    if (path_len > 0 && memchr(path, '\0', path_len) != NULL) {
        return -EINVAL;
    }
    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = resolve_txn(f, txn, root, path, path_len, attr);
    mdb_txn_abort(txn);
    return rv;
}

/* Pages on LMDB's freelist (FREE_DBI, dbi 0): each record is an ID list
 * whose first word is its length. Readable in a read-only txn. */
static int free_pages(MDB_txn *txn, uint64_t *pages)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *pages = 0;
    if ((rc = mdb_cursor_open(txn, 0, &cur)) != 0) {
        return fsm__lmdb_err(rc);
    }
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        size_t n;
        if (v.mv_size >= sizeof n) {
            memcpy(&n, v.mv_data, sizeof n);
            *pages += n;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : fsm__lmdb_err(rc);
}

/* Map figures; with `exact` the freelist is counted too (a scan). */
static int map_use(struct store_fsm *f, MDB_txn *txn, bool exact,
                   struct store_fsm_statfs *st)
{
    MDB_envinfo info;
    MDB_stat ms;
    uint64_t free_ = 0;
    int rc;
    int rv;

    if ((rc = mdb_env_info(f->env, &info)) != 0 ||
        (rc = mdb_env_stat(f->env, &ms)) != 0) {
        return fsm__lmdb_err(rc);
    }
    if (exact && (rv = free_pages(txn, &free_)) != 0) {
        return rv;
    }
    st->page_size = ms.ms_psize;
    st->map_size = info.me_mapsize;
    /* me_last_pgno is the high-water mark; pages below it may be free. */
    st->map_used = ((uint64_t)info.me_last_pgno + 1 - free_) * ms.ms_psize;
    return 0;
}

int store_fsm_statfs(struct store_fsm *f, struct store_fsm_statfs *st)
{
    struct fsm_state s;
    MDB_txn *txn;
    MDB_stat ms;
    int rc;
    int rv;

    memset(st, 0, sizeof *st);
    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    rv = fsm__state_get(f, txn, &s);
    if (rv == FSM_ABSENT) {
        rv = STORE_ERR_CORRUPT;
    }
    if (rv == 0 && (rc = mdb_stat(txn, f->inode, &ms)) != 0) {
        rv = fsm__lmdb_err(rc);
    }
    if (rv == 0) {
        st->inodes = ms.ms_entries;
        st->bytes = s.bytes;
        st->applied = s.applied;
        rv = map_use(f, txn, true, st);
    }
    mdb_txn_abort(txn);
    return rv;
}

int store_fsm_space_ok(struct store_fsm *f, uint64_t need)
{
    struct store_fsm_statfs st;
    MDB_txn *txn;
    uint64_t want;
    int rv;

    if ((rv = rbegin(f, &txn)) != 0) {
        return rv;
    }
    /* Copy-on-write: a replaced value needs new pages before the old ones
     * are freed, and the B-tree paths to it are copied too; keep 1/32 of
     * the map as headroom for those and for the log. */
    rv = map_use(f, txn, false, &st);
    want = 2 * need + st.map_size / 32;
    if (rv == 0 && st.map_used + want > st.map_size) {
        /* Near the high-water mark: count what the freelist gives back. */
        rv = map_use(f, txn, true, &st);
        if (rv == 0 && st.map_used + want > st.map_size) {
            rv = -ENOSPC;
        }
    }
    mdb_txn_abort(txn);
    return rv;
}

raft_index store_fsm_applied(struct store_fsm *f)
{
    raft_index index;
    MDB_txn *txn;

    if (rbegin(f, &txn) != 0) {
        return 0;
    }
    index = store__fsm_applied(f, txn);
    mdb_txn_abort(txn);
    return index;
}
