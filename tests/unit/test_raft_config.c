/* Unit tests of the core's pure pieces: configuration codec, the in-memory
 * log ring, quorum arithmetic, errors, and the update's ownership. */
#include "core.h"
#include "test_raft_harness.h"

static void fill(struct raft_config *c, unsigned n)
{
    unsigned i;
    memset(c, 0, sizeof *c);
    c->n = n;
    for (i = 0; i < n; i++) {
        c->servers[i].id = 1000 + i;
        c->servers[i].role = i % 3 == 2 ? RAFT_LEARNER : RAFT_VOTER;
        snprintf(c->servers[i].addr, RAFT_ADDR_MAX, "host-%u.example:%u", i,
                 9000 + i);
    }
}

START_TEST(test_config_roundtrip)
{
    struct raft_config c, d;
    struct raft_buf b;
    unsigned n, i;
    for (n = 0; n <= RAFT_MAX_SERVERS; n++) {
        fill(&c, n);
        ck_assert_int_eq(raft_config_encode(&c, &b), 0);
        ck_assert_int_eq(raft_config_decode(&b, &d), 0);
        ck_assert_uint_eq(d.n, n);
        for (i = 0; i < n; i++) {
            ck_assert_uint_eq(d.servers[i].id, c.servers[i].id);
            ck_assert_uint_eq(d.servers[i].role, c.servers[i].role);
            ck_assert_str_eq(d.servers[i].addr, c.servers[i].addr);
        }
        free(b.base);
    }
    ck_assert_ptr_nonnull(raft_config_get(&c, 1003));
    ck_assert_ptr_null(raft_config_get(&c, 1));
    ck_assert_ptr_null(raft_config_get(&c, 0));
    c.n = RAFT_MAX_SERVERS + 1;
    ck_assert_int_eq(raft_config_encode(&c, &b), RAFT_ERR_INVALID);
}
END_TEST

/* Every truncation and every single-byte change of a valid encoding either
 * decodes to a valid configuration or is refused; nothing reads past len. */
START_TEST(test_config_corrupt)
{
    struct raft_config c, d;
    struct raft_buf b, t;
    uint8_t *copy;
    size_t len, k;
    unsigned v;
    fill(&c, 5);
    ck_assert_int_eq(raft_config_encode(&c, &b), 0);
    for (len = 0; len < b.len; len++) {
        copy = malloc(len + 1);
        memcpy(copy, b.base, len);
        t.base = copy;
        t.len = len;
        ck_assert_int_eq(raft_config_decode(&t, &d), RAFT_ERR_CORRUPT);
        free(copy);
    }
    copy = malloc(b.len);
    for (k = 0; k < b.len; k++) {
        for (v = 0; v < 256; v += 17) {
            memcpy(copy, b.base, b.len);
            copy[k] = (uint8_t)v;
            t.base = copy;
            t.len = b.len;
            if (raft_config_decode(&t, &d) == 0) {
                ck_assert_uint_le(d.n, RAFT_MAX_SERVERS);
            }
        }
    }
    free(copy);
    /* Version, duplicate ids, zero id, bad role, trailing bytes. */
    ((uint8_t *)b.base)[0] = 2;
    ck_assert_int_eq(raft_config_decode(&b, &d), RAFT_ERR_CORRUPT);
    free(b.base);
    c.servers[1].id = c.servers[0].id;
    ck_assert_int_eq(raft_config_encode(&c, &b), 0);
    ck_assert_int_eq(raft_config_decode(&b, &d), RAFT_ERR_CORRUPT);
    free(b.base);
    fill(&c, 2);
    c.servers[1].role = 9;
    ck_assert_int_eq(raft_config_encode(&c, &b), 0);
    ck_assert_int_eq(raft_config_decode(&b, &d), RAFT_ERR_CORRUPT);
    free(b.base);
    fill(&c, 1);
    ck_assert_int_eq(raft_config_encode(&c, &b), 0);
    t.base = malloc(b.len + 1);
    memcpy(t.base, b.base, b.len);
    t.len = b.len + 1;
    ck_assert_int_eq(raft_config_decode(&t, &d), RAFT_ERR_CORRUPT);
    free(t.base);
    free(b.base);
    ck_assert_int_eq(raft_config_decode(NULL, &d), RAFT_ERR_CORRUPT);
}
END_TEST

START_TEST(test_bootstrap_entry)
{
    struct raft_config c, d;
    struct raft_entry e;
    fill(&c, 3);
    ck_assert_int_eq(raft_bootstrap_entry(&c, &e), 0);
    ck_assert_uint_eq(e.index, 1);
    ck_assert_uint_eq(e.term, 1);
    ck_assert_uint_eq(e.type, RAFT_ENTRY_CONFIG);
    ck_assert_int_eq(raft_config_decode(&e.data, &d), 0);
    ck_assert_uint_eq(d.n, 3);
    free(e.data.base);
    /* No voter, no cluster. */
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(raft_bootstrap_entry(&c, &e), RAFT_ERR_INVALID);
}
END_TEST

START_TEST(test_strerror)
{
    ck_assert_str_eq(raft_strerror(RAFT_ERR_NOT_LEADER), "not the leader");
    ck_assert_str_eq(raft_strerror(RAFT_ERR_SHUTDOWN),
                     "node is shutting down");
    ck_assert_str_eq(raft_strerror(0), "success");
    ck_assert_ptr_nonnull(raft_strerror(-5));
    ck_assert_str_eq(raft_strerror(-99999), "unknown error");
}
END_TEST

/* The ring buffer: wrap-around, truncation, compaction, O(1) terms,
 * binary searches of term boundaries. */
START_TEST(test_log_ring)
{
    struct raft__log l;
    raft_index i;
    raft__log_init(&l, 10, 3);
    ck_assert_uint_eq(raft__log_last(&l), 10);
    ck_assert_uint_eq(raft__log_last_term(&l), 3);
    ck_assert_uint_eq(raft__log_term(&l, 10), 3);
    ck_assert_uint_eq(raft__log_term(&l, 9), 0);
    for (i = 11; i <= 300; i++) {
        uint8_t b = (uint8_t)i;
        ck_assert_int_eq(
            raft__log_append(&l, 3 + (i - 11) / 50, RAFT_ENTRY_COMMAND, &b, 1),
            0);
        if (i % 70 == 0 && i < 250) {
            raft__log_compact(&l, i - 20); /* make the ring wrap */
        }
    }
    ck_assert_uint_eq(raft__log_last(&l), 300);
    for (i = l.offset + 1; i <= 300; i++) {
        const struct raft_entry *e = raft__log_get(&l, i);
        ck_assert_uint_eq(e->index, i);
        ck_assert_uint_eq(e->term, 3 + (i - 11) / 50);
        ck_assert_uint_eq(((uint8_t *)e->data.base)[0], (uint8_t)i);
    }
    ck_assert_ptr_null(raft__log_get(&l, l.offset));
    ck_assert_ptr_null(raft__log_get(&l, 301));
    /* Terms: 3 for 11..60, 4 for 61..110, ... 8 for 261..300. */
    ck_assert_uint_eq(raft__log_first_of_term(&l, 300), 261);
    ck_assert_uint_eq(raft__log_first_of_term(&l, 261), 261);
    ck_assert_uint_eq(raft__log_last_of_term(&l, 7), 260);
    ck_assert_uint_eq(raft__log_last_of_term(&l, 8), 300);
    ck_assert_uint_eq(raft__log_last_of_term(&l, 9), 0);
    ck_assert_uint_eq(raft__log_last_of_term(&l, 1), 0);
    raft__log_truncate(&l, 250);
    ck_assert_uint_eq(raft__log_last(&l), 249);
    ck_assert_uint_eq(raft__log_last_term(&l), 7);
    raft__log_compact(&l, 249);
    ck_assert_uint_eq(raft__log_last(&l), 249);
    ck_assert_uint_eq(raft__log_term(&l, 249), 7);
    ck_assert_uint_eq(raft__log_last_of_term(&l, 7), 249);
    raft__log_reset(&l, 500, 9);
    ck_assert_uint_eq(raft__log_last(&l), 500);
    ck_assert_int_eq(raft__log_append(&l, 9, RAFT_ENTRY_NOOP, NULL, 0), 0);
    ck_assert_uint_eq(raft__log_get(&l, 501)->term, 9);
    raft__log_close(&l);
}
END_TEST

START_TEST(test_quorum)
{
    uint64_t v3[3] = {5, 9, 7};
    uint64_t v4[4] = {5, 9, 7, 1};
    uint64_t v5[5] = {1, 2, 3, 4, 5};
    uint64_t v1[1] = {4};
    ck_assert_uint_eq(raft__quorum_value(v3, 3), 7);
    ck_assert_uint_eq(raft__quorum_value(v4, 4), 5); /* 3 of 4 have >= 5 */
    ck_assert_uint_eq(raft__quorum_value(v5, 5), 3);
    ck_assert_uint_eq(raft__quorum_value(v1, 1), 4);
    ck_assert_uint_eq(raft__quorum_value(v1, 0), 0);
    ck_assert(raft__quorum_ok(2, 3));
    ck_assert(!raft__quorum_ok(2, 4));
    ck_assert(raft__quorum_ok(3, 4));
    ck_assert(!raft__quorum_ok(0, 0));
}
END_TEST

/* The update owns deep copies: freeing the core first leaves it valid. */
START_TEST(test_update_owns_copies)
{
    struct h h;
    struct raft_update u;
    raft_index idx;
    struct raft_buf b = {(void *)"hello", 5};
    raft_term t;
    h_init(&h, 3);
    h_elect(&h, 1);
    ck_assert_int_eq(raft_propose(h.nodes[1].r, h.now, &b, &idx, &t), 0);
    ck_assert(raft_ready(h.nodes[1].r, &u));
    h_stop(&h, 1);
    ck_assert_uint_eq(u.n_entries, 1);
    ck_assert_mem_eq(u.entries[0].data.base, "hello", 5);
    ck_assert_uint_ge(u.n_messages, 1);
    ck_assert_mem_eq(u.messages[0].append.entries[0].data.base, "hello", 5);
    raft_update_close(&u);
    raft_update_close(&u); /* idempotent */
    h_close(&h);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("raft_config");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_config_roundtrip);
    tcase_add_test(tc, test_config_corrupt);
    tcase_add_test(tc, test_bootstrap_entry);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);
    tc = tcase_create("internals");
    tcase_add_test(tc, test_log_ring);
    tcase_add_test(tc, test_quorum);
    tcase_add_test(tc, test_update_owns_copies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return h_run_suite(config_suite());
}
