/* Test helpers shared by store/ unit tests: a temporary data directory,
 * entries with readable data, writing a batch, and filling the log with
 * entries that make files and directories. All static inline: each test
 * uses some. */
#ifndef TEST_STORE_UTIL_H
#define TEST_STORE_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "store.h"

/* A new directory /tmp/<name>_XXXXXX in dir (cap bytes), and its removal. */
static inline void tmpdir_make(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "/tmp/%s_XXXXXX", name);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline void tmpdir_remove(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Entries idx..idx+n-1 of `term` and `type`, data "e<index>-t<term>". */
struct ents {
    struct raft_entry e[128];
    char data[128][32];
    size_t n;
};

static inline void ents_make(struct ents *x, raft_index idx, size_t n,
                             raft_term term, uint8_t type)
{
    ck_assert_uint_le(n, 128);
    x->n = n;
    for (size_t i = 0; i < n; i++) {
        int len =
            snprintf(x->data[i], sizeof x->data[i], "e%llu-t%llu",
                     (unsigned long long)(idx + i), (unsigned long long)term);
        x->e[i].index = idx + i;
        x->e[i].term = term;
        x->e[i].type = type;
        x->e[i].data.base = x->data[i];
        x->e[i].data.len = (size_t)len;
    }
}

/* Appends entries idx..idx+n-1 (ents_make) in one batch: store_write's
 * return; on success the batch was synced and the log ends there. */
static inline int append_ents(struct store *s, raft_index idx, size_t n,
                              raft_term term, uint8_t type)
{
    struct ents x;
    struct store_batch b;
    struct store_write_result r;
    ents_make(&x, idx, n, term, type);
    store_batch_init(&b);
    ck_assert_int_eq(store_batch_append(&b, x.e, x.n), 0);
    int rv = store_write(s, &b, &r);
    if (rv == 0) {
        ck_assert(r.synced);
        ck_assert_uint_eq(r.last_index, idx + n - 1);
        ck_assert_uint_eq(r.last_term, term);
        store_write_result_close(&r);
    }
    store_batch_close(&b);
    return rv;
}

static inline void write_batch(struct store *s, struct store_batch *b)
{
    struct store_write_result r;
    int rv = store_write(s, b, &r);
    ck_assert_msg(rv == 0, "store_write: %s", store_strerror(rv));
    store_write_result_close(&r);
    store_batch_reset(b);
}

/* e becomes a COMMAND entry idx (term) carrying c after the driver's
 * envelope; e->data.base is malloc'd (the caller frees it). */
static inline void cmd_entry(struct raft_entry *e, raft_index idx,
                             raft_term term, const struct store_cmd *c)
{
    struct raft_buf enc;
    ck_assert_int_eq(store_cmd_encode(c, &enc), 0);
    memset(e, 0, sizeof *e);
    e->index = idx;
    e->term = term;
    e->type = RAFT_ENTRY_COMMAND;
    e->data.len = STORE_FSM_ENVELOPE + enc.len;
    e->data.base = calloc(1, e->data.len);
    ck_assert_ptr_nonnull(e->data.base);
    memcpy((char *)e->data.base + STORE_FSM_ENVELOPE, enc.base, enc.len);
    free(enc.base);
}

/* Appends and applies n mkdir/create commands (entries from..from+n-1,
 * term 2): entry i makes "n<i>" in the root, a directory when i % 3 == 0,
 * a file otherwise; a CONFIG entry (conf) comes first when from == 1. */
static inline void fill(struct store *s, raft_index from, size_t n,
                 const struct raft_config *conf)
{
    struct raft_entry *e = calloc(n, sizeof *e);
    struct store_batch b;
    ck_assert_ptr_nonnull(e);
    for (size_t i = 0; i < n; i++) {
        raft_index idx = from + i;
        e[i].index = idx;
        e[i].term = 2;
        if (idx == 1) {
            uint8_t buf[512];
            /* raft.h's config encoding, written by hand for one server. */
            size_t len = 0;
            buf[len++] = 1;
            buf[len++] = (uint8_t)conf->n;
            for (unsigned k = 0; k < conf->n; k++) {
                uint64_t id = conf->servers[k].id;
                for (int j = 0; j < 8; j++) {
                    buf[len++] = (uint8_t)(id >> (8 * j));
                }
                buf[len++] = conf->servers[k].role;
                size_t alen = strlen(conf->servers[k].addr);
                buf[len++] = (uint8_t)alen;
                memcpy(buf + len, conf->servers[k].addr, alen);
                len += alen;
            }
            e[i].type = RAFT_ENTRY_CONFIG;
            e[i].data.base = malloc(len);
            memcpy(e[i].data.base, buf, len);
            e[i].data.len = len;
            continue;
        }
        char name[32];
        struct store_cmd c;
        store_cmd_init(&c);
        c.type = idx % 3 == 0 ? STORE_CMD_MKDIR : STORE_CMD_CREATE;
        c.parent = STORE_ROOT_INO;
        c.name.base = name;
        c.name.len = (size_t)snprintf(name, sizeof name, "n%llu",
                                      (unsigned long long)idx);
        c.mode = 0755;
        c.time_ns = idx;
        cmd_entry(&e[i], idx, 2, &c);
    }
    store_batch_init(&b);
    store_batch_append(&b, e, n);
    store_batch_apply(&b, e, n);
    write_batch(s, &b);
    store_batch_close(&b);
    for (size_t i = 0; i < n; i++) {
        free(e[i].data.base);
    }
    free(e);
}

#endif /* TEST_STORE_UTIL_H */
