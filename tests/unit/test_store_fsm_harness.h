/* Test harness for the state machine: a private LMDB env and command helpers. */
#ifndef TEST_STORE_FSM_HARNESS_H
#define TEST_STORE_FSM_HARNESS_H

#include <check.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "fsm.h"

/*
 * One state machine in its own LMDB environment under a temp dir, the way
 * the store opens it (MDB_NOTLS, named DBIs). Each h_* command is encoded,
 * wrapped in the driver's envelope, and applied as the next log entry in
 * its own write txn.
 */
struct h {
    char dir[64];
    MDB_env *env;
    struct store_fsm f;
    raft_index next; /* index of the next entry */
    raft_term term;
    uint64_t seq;
    uint64_t now; /* ns, advanced by 1000 per command */
};

static inline void h_open_env(struct h *h, size_t map_size)
{
    MDB_txn *txn;

    ck_assert_int_eq(mdb_env_create(&h->env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(h->env, 8), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(h->env, map_size), 0);
    /* No syncs: these tests are about content, not durability. */
    ck_assert_int_eq(mdb_env_open(h->env, h->dir, MDB_NOTLS | MDB_NOSYNC,
                                  0600), 0);
    ck_assert_int_eq(mdb_txn_begin(h->env, NULL, 0, &txn), 0);
    ck_assert_int_eq(store__fsm_open(&h->f, txn), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
}

static inline void h_init_size(struct h *h, size_t map_size)
{
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "/tmp/test_fsm_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(h->dir));
    h_open_env(h, map_size);
    h->next = 1;
    h->term = 1;
    h->now = 1000000000;
}

static inline void h_init(struct h *h)
{
    h_init_size(h, (size_t)256 << 20);
}

/* Closes the env and removes the directory with everything a test left in
 * it (snapshot files, forged inputs). */
static inline void h_close(struct h *h)
{
    char cmd[160];

    store__fsm_close(&h->f);
    mdb_env_close(h->env);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Builds the entry for c (envelope + encoded command); data is malloc'd. */
static inline void h_entry(struct h *h, const struct store_cmd *c,
                           raft_index index, struct raft_entry *e)
{
    struct raft_buf enc;
    uint8_t *p;

    ck_assert_int_eq(store_cmd_encode(c, &enc), 0);
    p = malloc(STORE_FSM_ENVELOPE + enc.len);
    ck_assert_ptr_nonnull(p);
    memset(p, 0xab, STORE_FSM_ENVELOPE);
    memcpy(p + STORE_FSM_ENVELOPE, enc.base, enc.len);
    free(enc.base);
    e->term = h->term;
    e->index = index;
    e->type = RAFT_ENTRY_COMMAND;
    e->data.base = p;
    e->data.len = STORE_FSM_ENVELOPE + enc.len;
}

/* Applies entry e at its index in one write txn; commits if apply
 * returned 0, aborts otherwise. Returns apply's return value. */
static inline int h_apply_entry(struct h *h, const struct raft_entry *e,
                                struct store_apply_result *res)
{
    MDB_txn *txn;
    int rv;

    ck_assert_int_eq(mdb_txn_begin(h->env, NULL, 0, &txn), 0);
    rv = store__fsm_apply(&h->f, txn, e->index, e, res);
    if (rv == 0) {
        ck_assert_int_eq(mdb_txn_commit(txn), 0);
    } else {
        mdb_txn_abort(txn);
    }
    return rv;
}

/* Applies c as the next entry; returns the command's status (the apply
 * itself must succeed). *res may be NULL. */
static inline int h_run(struct h *h, struct store_cmd *c,
                        struct store_apply_result *out)
{
    struct store_apply_result res;
    struct raft_entry e;

    c->node = 7;
    c->seq = ++h->seq;
    c->time_ns = (h->now += 1000);
    h_entry(h, c, h->next, &e);
    ck_assert_int_eq(h_apply_entry(h, &e, &res), 0);
    free(e.data.base);
    ck_assert(!res.skipped);
    ck_assert_uint_eq(res.node, 7);
    ck_assert_uint_eq(res.seq, h->seq);
    ck_assert_uint_eq(res.type, c->type);
    h->next++;
    if (out != NULL) {
        *out = res;
    }
    return res.status;
}

static inline struct store_bytes h_str(const char *s)
{
    struct store_bytes b;
    b.base = s;
    b.len = s == NULL ? 0 : strlen(s);
    return b;
}

static inline int h_create(struct h *h, uint64_t parent, const char *name,
                           uint32_t flags, const char *value,
                           struct store_attr *attr)
{
    struct store_apply_result res;
    struct store_cmd c;
    int rv;

    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = parent;
    c.name = h_str(name);
    c.mode = 0644;
    c.flags = flags | (value != NULL ? STORE_CREATE_VALUE : 0);
    c.data = h_str(value);
    rv = h_run(h, &c, &res);
    if (attr != NULL) {
        *attr = res.attr;
    }
    return rv;
}

static inline int h_mkdir(struct h *h, uint64_t parent, const char *name,
                          struct store_attr *attr)
{
    struct store_apply_result res;
    struct store_cmd c;
    int rv;

    store_cmd_init(&c);
    c.type = STORE_CMD_MKDIR;
    c.parent = parent;
    c.name = h_str(name);
    c.mode = 0755;
    rv = h_run(h, &c, &res);
    if (attr != NULL) {
        *attr = res.attr;
    }
    return rv;
}

/* unlink, rmdir */
static inline int h_remove(struct h *h, uint8_t type, uint64_t parent,
                           const char *name)
{
    struct store_cmd c;

    store_cmd_init(&c);
    c.type = type;
    c.parent = parent;
    c.name = h_str(name);
    return h_run(h, &c, NULL);
}

static inline int h_rename(struct h *h, uint64_t parent, const char *name,
                           uint64_t newparent, const char *newname,
                           uint32_t flags, struct store_attr *attr)
{
    struct store_apply_result res;
    struct store_cmd c;
    int rv;

    store_cmd_init(&c);
    c.type = STORE_CMD_RENAME;
    c.parent = parent;
    c.name = h_str(name);
    c.newparent = newparent;
    c.newname = h_str(newname);
    c.flags = flags;
    rv = h_run(h, &c, &res);
    if (attr != NULL) {
        *attr = res.attr;
    }
    return rv;
}

/* Field by field: the struct has padding. */
static inline bool h_same_attr(const struct store_attr *x,
                               const struct store_attr *y)
{
    return x->ino == y->ino && x->type == y->type && x->mode == y->mode &&
           x->nlink == y->nlink && x->size == y->size &&
           x->parent == y->parent && x->mtime_ns == y->mtime_ns &&
           x->ctime_ns == y->ctime_ns && x->atime_ns == y->atime_ns &&
           x->create_rev == y->create_rev && x->mod_rev == y->mod_rev;
}

/* The inode number at a path from the root (asserts it exists). */
static inline uint64_t h_ino(struct h *h, const char *path)
{
    struct store_attr a;
    ck_assert_int_eq(store_fsm_resolve(&h->f, STORE_ROOT_INO, path,
                                       strlen(path), &a), 0);
    return a.ino;
}

static inline int h_exists(struct h *h, const char *path)
{
    struct store_attr a;
    return store_fsm_resolve(&h->f, STORE_ROOT_INO, path, strlen(path),
                             &a) == 0;
}

static inline struct store_attr h_attr(struct h *h, uint64_t ino)
{
    struct store_attr a;
    ck_assert_int_eq(store_fsm_getattr(&h->f, ino, &a), 0);
    return a;
}

/* The value of a file at path as a NUL-terminated malloc'd string. */
static inline char *h_value(struct h *h, const char *path)
{
    void *buf;
    size_t len;
    char *s;

    ck_assert_int_eq(store_fsm_read_all(&h->f, h_ino(h, path), &buf, &len,
                                        NULL), 0);
    s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    if (len > 0) {
        memcpy(s, buf, len);
    }
    s[len] = '\0';
    free(buf);
    return s;
}

static inline void h_dump(struct h *h, void **buf, size_t *len)
{
    ck_assert_int_eq(store_fsm_dump(&h->f, buf, len), 0);
}

/* fsck: walks the tree from the root through readdir and checks the
 * invariants of fsm.h: every inode reachable exactly once, parent pointers,
 * directory nlink = 2 + subdirectories, statfs counters. */
struct h_fsck {
    struct h *h;
    uint64_t inodes;
    uint64_t bytes;
    uint64_t dir;
    uint32_t subdirs;
    int depth;
};

static inline void h_fsck_dir(struct h_fsck *k, uint64_t ino);

static inline int h_fsck_cb(void *arg, const struct store_dirent *d,
                            const struct store_attr *a)
{
    struct h_fsck *k = arg;
    uint64_t dir = k->dir;
    uint32_t subdirs = k->subdirs;

    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->type, d->type);
    ck_assert_uint_eq(a->parent, k->dir);
    ck_assert_uint_gt(a->nlink, 0);
    k->inodes++;
    k->bytes += a->size;
    if (a->type == STORE_TYPE_DIR) {
        ck_assert_uint_eq(a->size, 0);
        k->subdirs++;
        subdirs = k->subdirs;
        ck_assert_int_lt(k->depth, 10000); /* no cycle */
        h_fsck_dir(k, a->ino);
        k->dir = dir;
        k->subdirs = subdirs;
    } else {
        ck_assert_uint_eq(a->nlink, 1);
    }
    return 0;
}

static inline void h_fsck_dir(struct h_fsck *k, uint64_t ino)
{
    struct store_attr a = h_attr(k->h, ino);

    k->dir = ino;
    k->subdirs = 0;
    k->depth++;
    ck_assert_int_ge(store_fsm_readdir(&k->h->f, ino, NULL, 0, true, 0,
                                       h_fsck_cb, k), 0);
    k->depth--;
    ck_assert_uint_eq(a.nlink, 2 + k->subdirs);
}

static inline void h_fsck(struct h *h)
{
    struct store_fsm_statfs st;
    struct h_fsck k;

    memset(&k, 0, sizeof k);
    k.h = h;
    k.inodes = 1;
    h_fsck_dir(&k, STORE_ROOT_INO);
    ck_assert_int_eq(store_fsm_statfs(&h->f, &st), 0);
    ck_assert_uint_eq(st.inodes, k.inodes);
    ck_assert_uint_eq(st.bytes, k.bytes);
}

/* Runs a suite; returns the process exit code. */
static inline int h_main(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* TEST_STORE_FSM_HARNESS_H */
