/* Unit tests of the command codec (store/cmd.c). */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmd.h"

static struct store_bytes str(const char *s)
{
    struct store_bytes b = {s, strlen(s)};
    return b;
}

static void assert_bytes_eq(struct store_bytes a, struct store_bytes b)
{
    ck_assert_uint_eq(a.len, b.len);
    if (a.len > 0) {
        ck_assert_mem_eq(a.base, b.base, a.len);
    }
}

/* Encodes c, decodes it, and checks every field survived. */
static void roundtrip(const struct store_cmd *c)
{
    struct raft_buf buf;
    struct store_cmd d;

    ck_assert_int_eq(store_cmd_encode(c, &buf), 0);
    ck_assert_int_eq(store_cmd_decode(buf.base, buf.len, &d), 0);
    ck_assert_uint_eq(d.type, c->type);
    ck_assert_uint_eq(d.node, c->node);
    ck_assert_uint_eq(d.seq, c->seq);
    ck_assert_uint_eq(d.time_ns, c->time_ns);
    ck_assert_uint_eq(d.ino, c->ino);
    ck_assert_uint_eq(d.parent, c->parent);
    assert_bytes_eq(d.name, c->name);
    ck_assert_uint_eq(d.newparent, c->newparent);
    assert_bytes_eq(d.newname, c->newname);
    ck_assert_uint_eq(d.mode, c->mode);
    ck_assert_uint_eq(d.flags, c->flags);
    ck_assert_uint_eq(d.mask, c->mask);
    assert_bytes_eq(d.data, c->data);
    ck_assert_uint_eq(d.size, c->size);
    ck_assert_uint_eq(d.mtime_ns, c->mtime_ns);
    ck_assert_uint_eq(d.atime_ns, c->atime_ns);
    ck_assert_uint_eq(d.max_size, c->max_size);
    /* The decoded command does not point into the input buffer. */
    memset(buf.base, 0, buf.len);
    assert_bytes_eq(d.name, c->name);
    assert_bytes_eq(d.data, c->data);
    free(buf.base);
    store_cmd_close(&d);
    ck_assert_ptr_null(d.priv);
}

static struct store_cmd base(uint8_t type)
{
    struct store_cmd c;
    store_cmd_init(&c);
    c.type = type;
    c.node = 3;
    c.seq = 0xfffffffffffull;
    c.time_ns = 1700000000123456789ull;
    return c;
}

START_TEST(test_roundtrip_each_type)
{
    struct store_cmd c;
    char big[70000];

    memset(big, 'x', sizeof big);
    c = base(STORE_CMD_NOOP);
    roundtrip(&c);

    c = base(STORE_CMD_CREATE);
    c.parent = 1;
    c.name = str("lock");
    c.mode = 0640;
    c.flags = STORE_CREATE_EXCL;
    roundtrip(&c);
    c.flags = STORE_CREATE_TRUNC | STORE_CREATE_VALUE;
    c.data = str("initial");
    roundtrip(&c);
    /* An empty initial value is still a value. */
    c.data = str("");
    roundtrip(&c);
    c.flags = STORE_CREATE_VALUE | STORE_CREATE_APPEND;
    c.data = str("line\n");
    c.max_size = 1000;
    roundtrip(&c);
    c.max_size = 0;

    c = base(STORE_CMD_PUT);
    c.ino = 42;
    c.data.base = big;
    c.data.len = sizeof big;
    roundtrip(&c);

    c = base(STORE_CMD_APPEND);
    c.ino = 42;
    c.data = str("line\n");
    c.max_size = 1 << 20;
    roundtrip(&c);

    c = base(STORE_CMD_SETATTR);
    c.ino = 9;
    c.mask = STORE_SET_ALL;
    c.mode = 0600;
    c.size = 12345;
    c.mtime_ns = 11;
    c.atime_ns = 22;
    c.max_size = 1 << 20;
    roundtrip(&c);
    c.mask = STORE_SET_MODE;
    c.size = 0;
    c.mtime_ns = 0;
    c.atime_ns = 0;
    c.max_size = 0;
    roundtrip(&c);

    c = base(STORE_CMD_UNLINK);
    c.parent = 5;
    c.name = str("a");
    roundtrip(&c);

    c = base(STORE_CMD_MKDIR);
    c.parent = 5;
    c.name = str("dir");
    c.mode = 0700;
    roundtrip(&c);

    c = base(STORE_CMD_RMDIR);
    c.parent = 5;
    c.name = str("dir");
    roundtrip(&c);

    c = base(STORE_CMD_RENAME);
    c.parent = 5;
    c.name = str("a");
    c.newparent = 6;
    c.newname = str("b");
    c.flags = STORE_RENAME_EXCHANGE;
    roundtrip(&c);

    c = base(STORE_CMD_SYMLINK);
    c.parent = 1;
    c.name = str("l");
    c.data = str("../target");
    roundtrip(&c);
}
END_TEST

START_TEST(test_encode_rejects_unknown_type)
{
    struct store_cmd c = base(0);
    struct raft_buf buf;

    ck_assert_int_eq(store_cmd_encode(&c, &buf), -EINVAL);
    c.type = STORE_CMD_SYMLINK + 1;
    ck_assert_int_eq(store_cmd_encode(&c, &buf), -EINVAL);
    c = base(STORE_CMD_CREATE);
    c.flags = 0x80;
    ck_assert_int_eq(store_cmd_encode(&c, &buf), -EINVAL);
}
END_TEST

/* Hand-made protobuf bytes. Field tags: (number << 3) | wire type. */
static const uint8_t v1_noop[] = {
    0x08, 0x01,       /* version = 1 */
    0x10, 0x02,       /* node = 2 */
    0x18, 0x03,       /* seq = 3 */
    0x20, 0x04,       /* time_ns = 4 */
    0x9a, 0x01, 0x00, /* field 19 (noop), length 0 */
};

START_TEST(test_decode_handmade)
{
    struct store_cmd c;

    ck_assert_int_eq(store_cmd_decode(v1_noop, sizeof v1_noop, &c), 0);
    ck_assert_uint_eq(c.type, STORE_CMD_NOOP);
    ck_assert_uint_eq(c.node, 2);
    ck_assert_uint_eq(c.seq, 3);
    ck_assert_uint_eq(c.time_ns, 4);
    store_cmd_close(&c);
}
END_TEST

START_TEST(test_decode_unknown_version)
{
    uint8_t buf[sizeof v1_noop];
    struct store_cmd c;

    memcpy(buf, v1_noop, sizeof buf);
    buf[1] = 2;
    ck_assert_int_eq(store_cmd_decode(buf, sizeof buf, &c), STORE_ERR_VERSION);
    ck_assert_ptr_null(c.priv);
    store_cmd_close(&c);
    buf[1] = 0;
    ck_assert_int_eq(store_cmd_decode(buf, sizeof buf, &c), STORE_ERR_VERSION);
    store_cmd_close(&c);
}
END_TEST

START_TEST(test_decode_no_operation)
{
    /* A valid header without an operation, and one with an operation
     * number this version does not know (field 30). */
    static const uint8_t none[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03,
                                   0x20, 0x04};
    static const uint8_t unknown[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03,
                                      0x20, 0x04, 0xf2, 0x01, 0x00};
    struct store_cmd c;

    ck_assert_int_eq(store_cmd_decode(none, sizeof none, &c),
                     STORE_ERR_CORRUPT);
    ck_assert_int_eq(store_cmd_decode(unknown, sizeof unknown, &c),
                     STORE_ERR_CORRUPT);
    ck_assert_ptr_null(c.priv);
}
END_TEST

START_TEST(test_decode_missing_required)
{
    /* No time_ns. */
    static const uint8_t buf[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03,
                                  0x9a, 0x01, 0x00};
    struct store_cmd c;

    ck_assert_int_eq(store_cmd_decode(buf, sizeof buf, &c), STORE_ERR_CORRUPT);
}
END_TEST

START_TEST(test_decode_setattr_mask_without_value)
{
    struct store_cmd c = base(STORE_CMD_SETATTR);
    struct store_cmd d;
    struct raft_buf buf;

    /* Encode sets has_size only for mask bits; craft the bad case by
     * encoding a mode-only command and then patching the mask to claim a
     * size too. mask is field 2 of SetAttr: tag 0x10. */
    c.ino = 9;
    c.mask = STORE_SET_MODE;
    c.mode = 0600;
    ck_assert_int_eq(store_cmd_encode(&c, &buf), 0);
    {
        uint8_t *p = buf.base;
        size_t i;
        bool patched = false;
        /* SetAttr body: ino (0x08 0x09) then mask (0x10 0x01). */
        for (i = 0; i + 3 < buf.len; i++) {
            if (p[i] == 0x08 && p[i + 1] == 9 && p[i + 2] == 0x10 &&
                p[i + 3] == STORE_SET_MODE) {
                p[i + 3] = STORE_SET_MODE | STORE_SET_SIZE;
                patched = true;
                break;
            }
        }
        ck_assert(patched);
    }
    ck_assert_int_eq(store_cmd_decode(buf.base, buf.len, &d),
                     STORE_ERR_CORRUPT);
    free(buf.base);
}
END_TEST

START_TEST(test_decode_garbage)
{
    struct store_cmd c = base(STORE_CMD_RENAME);
    struct store_cmd d;
    struct raft_buf buf;
    uint8_t junk[64];
    unsigned seed = 12345;

    ck_assert_int_eq(store_cmd_decode("", 0, &d), STORE_ERR_CORRUPT);
    ck_assert_int_eq(store_cmd_decode("\xff\xff\xff", 3, &d),
                     STORE_ERR_CORRUPT);

    /* Every strict prefix of a valid command is rejected, never crashes. */
    c.parent = 5;
    c.name = str("name");
    c.newparent = 6;
    c.newname = str("other");
    ck_assert_int_eq(store_cmd_encode(&c, &buf), 0);
    for (size_t n = 0; n < buf.len; n++) {
        int rv = store_cmd_decode(buf.base, n, &d);
        ck_assert_int_ne(rv, 0);
        store_cmd_close(&d);
    }
    free(buf.base);

    /* Random bytes: must not crash; whatever decodes must be closable. */
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof junk);
        for (size_t j = 0; j < n; j++) {
            junk[j] = (uint8_t)rand_r(&seed);
        }
        if (store_cmd_decode(junk, n, &d) == 0) {
            ck_assert(d.type >= STORE_CMD_NOOP && d.type <= STORE_CMD_SYMLINK);
        }
        store_cmd_close(&d);
    }
}
END_TEST

/* An allocation failure while decoding is -ENOMEM, not "corrupt": apply
 * must fail the batch rather than record EINVAL on this replica only. */
START_TEST(test_decode_nomem)
{
#if defined(__SANITIZE_ADDRESS__)
    /* ASan reserves terabytes of address space: no RLIMIT_AS games. */
#else
    enum { SIZE = 64 << 20 };
    struct store_cmd c = base(STORE_CMD_PUT);
    struct store_cmd d;
    struct raft_buf buf;
    struct rlimit old, lim;
    unsigned long pages = 0;
    char *value = malloc(SIZE);
    FILE *f;

    ck_assert_ptr_nonnull(value);
    memset(value, 'v', SIZE);
    c.ino = 5;
    c.data.base = value;
    c.data.len = SIZE;
    ck_assert_int_eq(store_cmd_encode(&c, &buf), 0);
    free(value);

    f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = pages * (rlim_t)sysconf(_SC_PAGESIZE) + (16 << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    ck_assert_int_eq(store_cmd_decode(buf.base, buf.len, &d), -ENOMEM);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    ck_assert_ptr_null(d.priv);
    /* With memory, the same bytes decode. */
    ck_assert_int_eq(store_cmd_decode(buf.base, buf.len, &d), 0);
    ck_assert_uint_eq(d.data.len, SIZE);
    store_cmd_close(&d);
    free(buf.base);
#endif
}
END_TEST

START_TEST(test_type_names)
{
    ck_assert_str_eq(store_cmd_type_name(STORE_CMD_RENAME), "rename");
    ck_assert_str_eq(store_cmd_type_name(0), "?");
}
END_TEST

static Suite *cmd_suite(void)
{
    Suite *s = suite_create("store_cmd");
    TCase *tc;

    tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_roundtrip_each_type);
    tcase_add_test(tc, test_encode_rejects_unknown_type);
    tcase_add_test(tc, test_type_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_add_test(tc, test_decode_handmade);
    tcase_add_test(tc, test_decode_unknown_version);
    tcase_add_test(tc, test_decode_no_operation);
    tcase_add_test(tc, test_decode_missing_required);
    tcase_add_test(tc, test_decode_setattr_mask_without_value);
    tcase_add_test(tc, test_decode_garbage);
    tcase_add_test(tc, test_decode_nomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cmd_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
