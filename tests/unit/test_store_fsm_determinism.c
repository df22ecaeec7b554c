/* Determinism of apply: same entries, same bytes, on every replica. */
#include <sys/stat.h>

#include "test_store_fsm_harness.h"

#define N_ENTRIES 4000
#define MAX_DATA 48

/* splitmix64: a seeded PRNG, so a failing seed replays exactly. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t pick(uint64_t *s, uint64_t n)
{
    return next_rand(s) % n;
}

static const char *const names[] = {"a", "b", "c", "d", "e", "long-name-f"};
#define N_NAMES (sizeof names / sizeof names[0])

/* One random entry at `index`: mostly commands over a small namespace (so
 * they collide), some no-ops, config entries and undecodable commands. */
static void gen_entry(struct h *h, uint64_t *s, raft_index index,
                      struct raft_entry *e)
{
    static char data[MAX_DATA];
    uint64_t max_ino = 2 + index / 16; /* roughly how inodes grow */
    struct store_cmd c;
    uint64_t r = pick(s, 100);

    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (char)('a' + pick(s, 26));
    }
    if (r < 2) {
        memset(e, 0, sizeof *e);
        e->index = index;
        e->term = h->term;
        e->type = r == 0 ? RAFT_ENTRY_NOOP : RAFT_ENTRY_CONFIG;
        e->data.base = malloc(4);
        e->data.len = 4;
        memcpy(e->data.base, "conf", 4);
        return;
    }
    if (r < 4) {
        /* Garbage after the envelope: EINVAL everywhere. */
        memset(e, 0, sizeof *e);
        e->index = index;
        e->term = h->term;
        e->type = RAFT_ENTRY_COMMAND;
        e->data.len = STORE_FSM_ENVELOPE + 1 + pick(s, 20);
        e->data.base = malloc(e->data.len);
        for (size_t i = 0; i < e->data.len; i++) {
            ((uint8_t *)e->data.base)[i] = (uint8_t)next_rand(s);
        }
        return;
    }

    store_cmd_init(&c);
    c.node = 1 + pick(s, 3);
    c.seq = index;
    c.time_ns = 1000000 * index;
    /* Often the root, so that directories get made and filled. */
    c.parent = pick(s, 3) == 0 ? STORE_ROOT_INO : 1 + pick(s, max_ino);
    c.ino = 1 + pick(s, max_ino);
    c.name = h_str(names[pick(s, N_NAMES)]);
    c.newparent = pick(s, 2) == 0   ? c.parent
                  : pick(s, 2) == 0 ? STORE_ROOT_INO
                                    : 1 + pick(s, max_ino);
    c.newname = h_str(names[pick(s, N_NAMES)]);
    c.mode = (uint32_t)pick(s, 01000);
    c.data.base = data;
    c.data.len = (size_t)pick(s, MAX_DATA);
    r = pick(s, 100);
    if (r < 22) {
        c.type = STORE_CMD_CREATE;
        c.flags = (uint32_t)pick(s, 8);
    } else if (r < 30) {
        c.type = STORE_CMD_PUT;
    } else if (r < 40) {
        c.type = STORE_CMD_APPEND;
        c.max_size = pick(s, 2) == 0 ? 0 : 100;
    } else if (r < 47) {
        c.type = STORE_CMD_SETATTR;
        c.mask = (uint32_t)pick(s, 16);
        c.size = pick(s, 120);
        c.max_size = pick(s, 2) == 0 ? 0 : 100;
        c.mtime_ns = next_rand(s);
        c.atime_ns = next_rand(s);
    } else if (r < 55) {
        c.type = STORE_CMD_UNLINK;
    } else if (r < 67) {
        c.type = STORE_CMD_MKDIR;
    } else if (r < 73) {
        c.type = STORE_CMD_RMDIR;
    } else if (r < 94) {
        static const uint32_t flags[] = {0, 0, 0, STORE_RENAME_NOREPLACE,
                                         STORE_RENAME_EXCHANGE};
        c.type = STORE_CMD_RENAME;
        c.flags = flags[pick(s, 5)];
    } else if (r < 98) {
        c.type = STORE_CMD_SYMLINK;
        if (c.data.len == 0) {
            c.data.len = 1;
        }
    } else {
        c.type = STORE_CMD_NOOP;
    }
    h_entry(h, &c, index, e);
}

/* Applies entries [from, to) in txns of random sizes (or one each). */
static void apply_range(struct h *h, struct raft_entry *e, size_t from,
                        size_t to, uint64_t *s,
                        struct store_apply_result *res)
{
    size_t i = from;

    while (i < to) {
        size_t n = s == NULL ? 1 : 1 + (size_t)pick(s, 64);
        MDB_txn *txn;

        ck_assert_int_eq(mdb_txn_begin(h->env, NULL, 0, &txn), 0);
        for (size_t j = 0; j < n && i < to; j++, i++) {
            ck_assert_int_eq(store__fsm_apply(&h->f, txn, e[i].index, &e[i],
                                              &res[i]), 0);
            ck_assert(!res[i].skipped);
        }
        ck_assert_int_eq(mdb_txn_commit(txn), 0);
    }
}

static bool same_result(const struct store_apply_result *x,
                        const struct store_apply_result *y)
{
    return x->status == y->status && x->skipped == y->skipped &&
           x->type == y->type && x->node == y->node && x->seq == y->seq &&
           h_same_attr(&x->attr, &y->attr);
}

static void assert_same_dump(struct h *a, struct h *b, uint64_t seed)
{
    void *da, *db;
    size_t la, lb;

    h_dump(a, &da, &la);
    h_dump(b, &db, &lb);
    ck_assert_msg(la == lb && memcmp(da, db, la) == 0,
                  "dumps differ, seed %llu", (unsigned long long)seed);
    free(da);
    free(db);
}

static void run_seed(uint64_t seed)
{
    static struct raft_entry e[N_ENTRIES];
    static struct store_apply_result ra[N_ENTRIES], rb[N_ENTRIES],
        rd[N_ENTRIES];
    int ok[STORE_CMD_SYMLINK + 1] = {0};
    struct h a, b, d;
    uint64_t s = seed;
    uint64_t batch = seed ^ 0x5555;
    char path[128];
    raft_index index;
    uint64_t size;
    MDB_txn *txn;

    h_init(&a);
    h_init(&b);
    h_init(&d);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        gen_entry(&a, &s, i + 1, &e[i]);
    }

    /* a: random batch sizes; b: one entry per txn. */
    apply_range(&a, e, 0, N_ENTRIES, &batch, ra);
    apply_range(&b, e, 0, N_ENTRIES, NULL, rb);
    assert_same_dump(&a, &b, seed);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        ck_assert_msg(same_result(&ra[i], &rb[i]),
                      "result %zu differs, seed %llu", i,
                      (unsigned long long)seed);
        if (ra[i].status == 0 && ra[i].type <= STORE_CMD_SYMLINK) {
            ok[ra[i].type]++;
        }
    }
    if (getenv("FSM_STATS") != NULL) {
        for (int t = STORE_CMD_NOOP; t <= STORE_CMD_SYMLINK; t++) {
            fprintf(stderr, "%s %d\n", store_cmd_type_name((uint8_t)t),
                    ok[t]);
        }
    }
    /* The sequence exercised every command's success path. */
    for (int t = STORE_CMD_CREATE; t <= STORE_CMD_SYMLINK; t++) {
        ck_assert_msg(ok[t] > 0, "no successful %s, seed %llu",
                      store_cmd_type_name((uint8_t)t),
                      (unsigned long long)seed);
    }
    h_fsck(&a);

    /* d: the first half, then a snapshot of it restored into a fresh env
     * (c), which applies the second half. */
    apply_range(&d, e, 0, N_ENTRIES / 2, NULL, rd);
    snprintf(path, sizeof path, "%s/snap", a.dir);
    ck_assert_int_eq(mdb_txn_begin(d.env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(store__fsm_snapshot_build(&d.f, txn, path, &index,
                                               &size), 0);
    mdb_txn_abort(txn);
    ck_assert_uint_eq(index, N_ENTRIES / 2);
    h_close(&d);
    h_init(&d);
    ck_assert_int_eq(mdb_txn_begin(d.env, NULL, 0, &txn), 0);
    ck_assert_int_eq(store__fsm_snapshot_restore(&d.f, txn, path, &index), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    unlink(path);
    apply_range(&d, e, N_ENTRIES / 2, N_ENTRIES, &batch, rd);
    assert_same_dump(&a, &d, seed);

    /* Replaying everything changes nothing. */
    {
        struct store_apply_result res;
        void *d1, *d2;
        size_t l1, l2;

        h_dump(&a, &d1, &l1);
        for (size_t i = 0; i < N_ENTRIES; i += 97) {
            ck_assert_int_eq(h_apply_entry(&a, &e[i], &res), 0);
            ck_assert(res.skipped);
        }
        h_dump(&a, &d2, &l2);
        ck_assert(l1 == l2 && memcmp(d1, d2, l1) == 0);
        free(d1);
        free(d2);
    }

    for (size_t i = 0; i < N_ENTRIES; i++) {
        free(e[i].data.base);
    }
    h_close(&a);
    h_close(&b);
    h_close(&d);
}

START_TEST(test_same_sequence_same_bytes)
{
    static const uint64_t seeds[] = {1, 42, 20261122};
    run_seed(seeds[_i]);
}
END_TEST

static Suite *determinism_suite(void)
{
    Suite *s = suite_create("store_fsm_determinism");
    TCase *tc = tcase_create("replicas");

    tcase_add_loop_test(tc, test_same_sequence_same_bytes, 0, 3);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_main(determinism_suite());
}
