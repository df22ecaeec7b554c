/* Unit tests of store/'s data directory checks: identity, format, corrupt
 * files, exclusive use, a full map. */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "test_store_util.h"
#include "cmd.h"

static char dir[PATH_MAX];

static void setup(void)
{
    tmpdir_make(dir, sizeof dir, "store_meta");
}

static void teardown(void)
{
    tmpdir_remove(dir);
}

static int open_as(struct store *s, const char *cluster, raft_id node,
                   bool create, size_t map_size)
{
    struct store_options o;
    store_options_default(&o);
    o.dir = dir;
    o.create = create;
    o.cluster_id = cluster;
    o.node_id = node;
    if (map_size != 0) {
        o.map_size = map_size;
    }
    return store_open(s, &o);
}

static void create_store(void)
{
    struct store s;
    int rv = open_as(&s, "alpha", 1, true, 0);
    ck_assert_msg(rv == 0, "%s", store_errmsg(&s));
    struct raft_entry e = {.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP};
    struct store_batch b;
    struct store_write_result r;
    store_batch_init(&b);
    store_batch_hard_state(&b, 1, 1);
    store_batch_append(&b, &e, 1);
    ck_assert_int_eq(store_write(&s, &b, &r), 0);
    store_write_result_close(&r);
    store_batch_close(&b);
    store_close(&s);
}

/* A fingerprint of the directory: every name, size, mtime and a hash of the
 * content, and the directory's own mtime ("."), so "touches nothing" can be
 * checked. */
static unsigned long long fingerprint(void)
{
    unsigned long long h = 1469598103934665603ull;
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 256];
        struct stat st;
        if (strcmp(names[i]->d_name, "..") == 0) {
            free(names[i]); /* /tmp itself: other tests change it */
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        ck_assert_int_eq(stat(path, &st), 0);
        for (const char *p = names[i]->d_name; *p; p++) {
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        }
        h = (h ^ (unsigned long long)st.st_size) * 1099511628211ull;
        h = (h ^ (unsigned long long)st.st_mtim.tv_nsec) * 1099511628211ull;
        h = (h ^ (unsigned long long)st.st_mtim.tv_sec) * 1099511628211ull;
        if (S_ISREG(st.st_mode)) {
            /* Every 4 KiB block that is not all zeros, with its offset:
             * data.mdb is as large as the map, sparse, with blocks
             * reserved ahead (store/mapres.c), so holes are skipped
             * (SEEK_DATA) and zeros count the same however stored. */
            static const unsigned char zero[4096];
            unsigned char blk[4096];
            int fd = open(path, O_RDONLY);
            off_t off = 0;
            ck_assert_int_ge(fd, 0);
            while ((off = lseek(fd, off, SEEK_DATA)) >= 0) {
                off_t end = lseek(fd, off, SEEK_HOLE);
                ck_assert_int_gt(end, off);
                for (; off < end; off += (off_t)sizeof blk) {
                    ssize_t got = pread(fd, blk, sizeof blk, off);
                    ck_assert_int_gt(got, 0);
                    if (memcmp(blk, zero, (size_t)got) == 0) {
                        continue;
                    }
                    h = (h ^ (unsigned long long)off) * 1099511628211ull;
                    for (ssize_t j = 0; j < got; j++) {
                        h = (h ^ blk[j]) * 1099511628211ull;
                    }
                }
            }
            close(fd);
        }
        free(names[i]);
    }
    free(names);
    return h;
}

START_TEST(test_create_reopen)
{
    struct store s;
    raft_term term;
    raft_id vote;
    create_store();
    ck_assert_int_eq(open_as(&s, "alpha", 1, false, 0), 0);
    ck_assert_str_eq(store_errmsg(&s), "");
    ck_assert_int_eq(store_hard_state(&s, &term, &vote), 0);
    ck_assert_uint_eq(term, 1);
    ck_assert_uint_eq(vote, 1);
    store_close(&s);
}
END_TEST

START_TEST(test_missing)
{
    struct store s;
    char sub[PATH_MAX + 8];
    ck_assert_int_eq(open_as(&s, "alpha", 1, false, 0), -ENOENT);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "no raftfs store"));
    /* create makes the directory itself too. */
    snprintf(sub, sizeof sub, "%s/sub", dir);
    struct store_options o;
    store_options_default(&o);
    o.dir = sub;
    o.create = true;
    o.cluster_id = "alpha";
    o.node_id = 1;
    ck_assert_int_eq(store_open(&s, &o), 0);
    store_close(&s);
}
END_TEST

START_TEST(test_bad_options)
{
    struct store s;
    ck_assert_int_eq(open_as(&s, "", 1, true, 0), -EINVAL);
    ck_assert_int_eq(open_as(&s, "alpha", 0, true, 0), -EINVAL);
    char longid[STORE_CLUSTER_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    ck_assert_int_eq(open_as(&s, longid, 1, true, 0), -EINVAL);
}
END_TEST

START_TEST(test_foreign_cluster)
{
    struct store s;
    create_store();
    unsigned long long before = fingerprint();
    ck_assert_int_eq(open_as(&s, "beta", 1, true, 0),
                     STORE_ERR_FOREIGN_CLUSTER);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "\"alpha\""));
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "\"beta\""));
    ck_assert(fingerprint() == before);
}
END_TEST

START_TEST(test_foreign_node)
{
    struct store s;
    create_store();
    unsigned long long before = fingerprint();
    ck_assert_int_eq(open_as(&s, "alpha", 2, true, 0), STORE_ERR_FOREIGN_NODE);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "node 1, not node 2"));
    ck_assert(fingerprint() == before);
}
END_TEST

/* Rewrites the "format" record behind the store's back. */
static void set_format(uint32_t v)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    MDB_val k = {6, "format"}, val = {4, b};
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, STORE_MAX_DBS);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    ck_assert_int_eq(mdb_put(txn, meta, &k, &val, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

START_TEST(test_format_version)
{
    struct store s;
    create_store();
    set_format(STORE_FORMAT_VERSION + 1);
    unsigned long long before = fingerprint();
    ck_assert_int_eq(open_as(&s, "alpha", 1, true, 0), STORE_ERR_FORMAT);
    char want[64];
    snprintf(want, sizeof want, "format version %u",
             STORE_FORMAT_VERSION + 1);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), want));
    ck_assert(fingerprint() == before);
    /* Format 1 kept the Raft log in LMDB: refused, with the remedy. */
    set_format(1);
    before = fingerprint();
    ck_assert_int_eq(open_as(&s, "alpha", 1, false, 0), STORE_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "format version 1"));
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "WAL"));
    ck_assert(fingerprint() == before);
    set_format(STORE_FORMAT_VERSION);
    ck_assert_int_eq(open_as(&s, "alpha", 1, false, 0), 0);
    store_close(&s);
}
END_TEST

static void write_file(const char *name, const void *data, size_t len)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

START_TEST(test_corrupt_file)
{
    struct store s;
    char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (char)(i * 7 + 3);
    }
    write_file("data.mdb", junk, sizeof junk);
    unsigned long long before = fingerprint();
    ck_assert_int_eq(open_as(&s, "alpha", 1, true, 0), STORE_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&s), "data.mdb"));
    ck_assert(fingerprint() == before);
}
END_TEST

/* A valid store whose meta page was overwritten (both meta pages). */
START_TEST(test_corrupt_meta_pages)
{
    struct store s;
    char path[PATH_MAX + 32];
    create_store();
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    char junk[8192];
    memset(junk, 0x5a, sizeof junk);
    ck_assert_int_eq(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    close(fd);
    unsigned long long before = fingerprint();
    ck_assert_int_eq(open_as(&s, "alpha", 1, true, 0), STORE_ERR_CORRUPT);
    ck_assert(fingerprint() == before);
}
END_TEST

/* An LMDB environment that is not a raftfs store. */
START_TEST(test_not_raftfs)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {3, "foo"}, v = {3, "bar"};
    struct store s;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    unsigned long long before = fingerprint();
    ck_assert_int_eq(open_as(&s, "alpha", 1, true, 0), STORE_ERR_NOT_RAFTFS);
    ck_assert(fingerprint() == before);
}
END_TEST

START_TEST(test_exclusive)
{
    struct store a, b;
    ck_assert_int_eq(open_as(&a, "alpha", 1, true, 0), 0);
    ck_assert_int_eq(open_as(&b, "alpha", 1, true, 0), -EBUSY);
    ck_assert_ptr_nonnull(strstr(store_errmsg(&b), "in use"));
    store_close(&a);
    ck_assert_int_eq(open_as(&b, "alpha", 1, true, 0), 0);
    store_close(&b);
}
END_TEST

/* A create of file "f<index>" holding `value` (an fsm command entry). */
static void create_entry(struct raft_entry *e, raft_index index,
                         const void *value, size_t len)
{
    char name[32];
    struct store_cmd c;
    struct raft_buf enc;
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = STORE_ROOT_INO;
    c.name.base = name;
    c.name.len =
        (size_t)snprintf(name, sizeof name, "f%llu", (unsigned long long)index);
    c.mode = 0644;
    c.flags = STORE_CREATE_VALUE;
    c.data.base = value;
    c.data.len = len;
    ck_assert_int_eq(store_cmd_encode(&c, &enc), 0);
    *e = (struct raft_entry){.index = index,
                             .term = 1,
                             .type = RAFT_ENTRY_COMMAND,
                             .data = {calloc(1, STORE_FSM_ENVELOPE + enc.len),
                                      STORE_FSM_ENVELOPE + enc.len}};
    memcpy((char *)e->data.base + STORE_FSM_ENVELOPE, enc.base, enc.len);
    free(enc.base);
}

/* MDB_MAP_FULL: -ENOSPC for the batch, nothing of it stored, reads work.
 * The log is in the WAL now: the state machine fills the map (each batch
 * appends 4 entries and applies the 4 of the batch before). */
START_TEST(test_map_full)
{
    struct store s;
    static char big[32768];
    struct raft_entry e[8];
    struct store_batch b;
    struct store_write_result r;
    raft_index next = 1;
    int rv = 0;
    memset(big, 'v', sizeof big);
    ck_assert_int_eq(open_as(&s, "alpha", 1, true, 1 << 20), 0);
    store_batch_init(&b);
    memset(e, 0, sizeof e);
    while (next < 1000) {
        store_batch_reset(&b);
        for (int i = 0; i < 4; i++) {
            free(e[i].data.base);
            e[i] = e[4 + i];
            create_entry(&e[4 + i], next + (raft_index)i, big, sizeof big);
        }
        if (next == 1) {
            store_batch_hard_state(&b, 1, 1);
        }
        store_batch_append(&b, e + 4, 4);
        if (next > 1) {
            store_batch_apply(&b, e, 4);
        }
        rv = store_write(&s, &b, &r);
        if (rv != 0) {
            break;
        }
        store_write_result_close(&r);
        next += 4;
    }
    ck_assert_int_eq(rv, -ENOSPC);
    ck_assert_uint_gt(next, 5);
    /* Nothing of the failed batch, everything before it. */
    raft_index first, last, applied;
    raft_term term;
    raft_id vote;
    ck_assert_int_eq(store_log_bounds(&s, &first, &last), 0);
    ck_assert_uint_eq(first, 1);
    ck_assert_uint_eq(last, next - 1);
    ck_assert_int_eq(store_hard_state(&s, &term, &vote), 0);
    ck_assert_uint_eq(term, 1);
    ck_assert_int_eq(store_applied(&s, &applied), 0);
    ck_assert_uint_eq(applied, next - 5);
    struct raft_load l;
    ck_assert_int_eq(store_load(&s, &l), 0);
    ck_assert_uint_eq(l.n_entries, next - 1);
    ck_assert_uint_eq(l.entries[next - 2].data.len, e[3].data.len);
    ck_assert(memcmp(l.entries[next - 2].data.base, e[3].data.base,
                     e[3].data.len) == 0);
    store_load_close(&l);
    store_close(&s);
    /* A batch that also changes the hard state commits that before the
     * WAL write and applies after it: on a full map the hard state and the
     * entries may stay (never acknowledged), the applies do not. */
    ck_assert_int_eq(open_as(&s, "alpha", 1, false, 1 << 20), 0);
    store_batch_hard_state(&b, 2, 1);
    ck_assert_int_eq(store_write(&s, &b, &r), -ENOSPC);
    ck_assert_int_eq(store_applied(&s, &applied), 0);
    ck_assert_uint_eq(applied, next - 5);
    store_close(&s);
    /* Reopening with a larger map is the remedy: the same batch fits. */
    ck_assert_int_eq(open_as(&s, "alpha", 1, false, 8 << 20), 0);
    ck_assert_int_eq(store_write(&s, &b, &r), 0);
    ck_assert_uint_eq(r.applied, next - 1);
    ck_assert_uint_eq(r.last_index, next + 3);
    store_write_result_close(&r);
    ck_assert_int_eq(store_hard_state(&s, &term, &vote), 0);
    ck_assert_uint_eq(term, 2);
    store_batch_close(&b);
    for (int i = 0; i < 8; i++) {
        free(e[i].data.base);
    }
    store_close(&s);
}
END_TEST

static Suite *store_meta_suite(void)
{
    Suite *s = suite_create("store_meta");
    TCase *tc;
#define ADD(name, fn)                                                          \
    tc = tcase_create(name);                                                   \
    tcase_add_checked_fixture(tc, setup, teardown);                            \
    tcase_add_test(tc, fn);                                                    \
    suite_add_tcase(s, tc)
    ADD("create_reopen", test_create_reopen);
    ADD("missing", test_missing);
    ADD("bad_options", test_bad_options);
    ADD("foreign_cluster", test_foreign_cluster);
    ADD("foreign_node", test_foreign_node);
    ADD("format_version", test_format_version);
    ADD("corrupt_file", test_corrupt_file);
    ADD("corrupt_meta_pages", test_corrupt_meta_pages);
    ADD("not_raftfs", test_not_raftfs);
    ADD("exclusive", test_exclusive);
    ADD("map_full", test_map_full);
#undef ADD
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_meta_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
