/* Unit tests of raftfsd's configuration: defaults, flags, environment,
 * KEY=VALUE files, precedence, and the errors for bad input. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char err[512];

static int load(struct fs_config *c, int argc, char **argv)
{
    err[0] = '\0';
    return fs_config_load(c, argc, argv, err, sizeof err);
}

static void clear_env(void)
{
    static const char *vars[] = {
        "RAFTFS_ID", "RAFTFS_PEERS", "RAFTFS_DATA_DIR", "RAFTFS_CLIENT_ADDR",
        "RAFTFS_MOUNT", "RAFTFS_CONFIG", "RAFTFS_HEARTBEAT_MS",
        "RAFTFS_ELECTION_TIMEOUT_MS", "RAFTFS_LOG_LEVEL", "RAFTFS_JOIN",
        "RAFTFS_INITIAL_STATE", "RAFTFS_CLUSTER_ID", "RAFTFS_MAX_VALUE_SIZE",
        "RAFTFS_NO_LEASE_READS", "RAFTFS_CONFIRM_WINDOW_MS",
        "RAFTFS_NO_SCHED_BATCH"};
    size_t i;
    for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        unsetenv(vars[i]);
    }
}

START_TEST(test_single_node_default)
{
    struct fs_config c;
    char *argv[] = {"raftfsd", "--data-dir", "/tmp/x", NULL};
    clear_env();
    ck_assert_int_eq(load(&c, 3, argv), 0);
    ck_assert_uint_eq(c.id, 1);
    ck_assert_uint_eq(c.n_peers, 1);
    ck_assert_uint_eq(c.confirm_window_ms, 20);
    ck_assert_uint_eq(c.peers[0].id, 1);
    ck_assert_str_eq(fs_config_self_addr(&c), FS_DEFAULT_PEER_ADDR);
    ck_assert_str_eq(c.client_addr, FS_DEFAULT_CLIENT_ADDR);
    ck_assert_str_eq(c.data_dir, "/tmp/x");
    ck_assert(!c.join);
    ck_assert(!c.no_lease_reads);
    ck_assert(!c.no_sched_batch);
    ck_assert_uint_eq(c.max_value_size, 1u << 20);
    ck_assert_uint_eq(c.election_timeout_ms, 1000);
}
END_TEST

START_TEST(test_flags)
{
    struct fs_config c;
    char *argv[] = {"raftfsd", "--id", "2",
                    "--peers=1=127.0.0.1:9001,2=127.0.0.1:9002",
                    "--data-dir", "/d", "--client-addr", "127.0.0.1:9100",
                    "--join", "--election-timeout-ms", "400",
                    "--heartbeat-ms=40", "--log-level", "debug",
                    "--no-lease-reads", "--confirm-window-ms", "0",
                    "--no-sched-batch", NULL};
    clear_env();
    ck_assert_int_eq(load(&c, 18, argv), 0);
    ck_assert(c.no_lease_reads);
    ck_assert(c.no_sched_batch);
    ck_assert_uint_eq(c.confirm_window_ms, 0);
    ck_assert_uint_eq(c.id, 2);
    ck_assert_uint_eq(c.n_peers, 2);
    ck_assert_str_eq(fs_config_self_addr(&c), "127.0.0.1:9002");
    ck_assert(c.join);
    ck_assert_uint_eq(c.election_timeout_ms, 400);
    ck_assert_uint_eq(c.heartbeat_ms, 40);
    ck_assert_int_eq(c.log_level, 3);
}
END_TEST

START_TEST(test_file_env_flag_precedence)
{
    struct fs_config c;
    char path[] = "/tmp/raftfs-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    char *argv[] = {"raftfsd", "--config", path, "--op-timeout-ms", "777",
                    NULL};
    clear_env();
    fprintf(f, "# a node\n"
               "RAFTFS_ID=3\n"
               "RAFTFS_PEERS=3=127.0.0.1:9003\n"
               "RAFTFS_DATA_DIR=\"/from/file\"\n"
               "export RAFTFS_OP_TIMEOUT_MS=100\n"
               "RAFTFS_HEARTBEAT_MS=50\n");
    fclose(f);
    setenv("RAFTFS_DATA_DIR", "/from/env", 1);
    ck_assert_int_eq(load(&c, 5, argv), 0);
    ck_assert_uint_eq(c.id, 3);                 /* file */
    ck_assert_str_eq(c.data_dir, "/from/env");  /* env beats file */
    ck_assert_uint_eq(c.op_timeout_ms, 777);    /* flag beats file */
    ck_assert_uint_eq(c.heartbeat_ms, 50);      /* file */
    clear_env();
    unlink(path);
}
END_TEST

START_TEST(test_errors_are_clear)
{
    struct fs_config c;
    char *no_dir[] = {"raftfsd", NULL};
    char *bad_id[] = {"raftfsd", "--data-dir", "/d", "--id", "x1", NULL};
    char *zero_id[] = {"raftfsd", "--data-dir", "/d", "--id", "0", NULL};
    char *not_in_peers[] = {"raftfsd", "--data-dir", "/d", "--id", "4",
                            "--peers", "1=127.0.0.1:1,2=127.0.0.1:2", NULL};
    char *bad_peers[] = {"raftfsd", "--data-dir", "/d", "--peers",
                         "1=nohostport", NULL};
    char *hb[] = {"raftfsd", "--data-dir", "/d", "--heartbeat-ms", "2000",
                  NULL};
    char *unknown[] = {"raftfsd", "--data-dir", "/d", "--frob", NULL};
    char *missing[] = {"raftfsd", "--data-dir", NULL};
    char *state[] = {"raftfsd", "--data-dir", "/d", "--initial-state",
                     "maybe", NULL};
    char *level[] = {"raftfsd", "--data-dir", "/d", "--log-level", "loud",
                     NULL};
    char *same[] = {"raftfsd", "--data-dir", "/d", "--client-addr",
                    FS_DEFAULT_PEER_ADDR, NULL};
    char *nofile[] = {"raftfsd", "--config", "/nonexistent/raftfs.conf",
                      NULL};
    clear_env();
    ck_assert_int_eq(load(&c, 1, no_dir), -1);
    ck_assert_ptr_nonnull(strstr(err, "--data-dir is required"));
    ck_assert_int_eq(load(&c, 5, bad_id), -1);
    ck_assert_ptr_nonnull(strstr(err, "--id"));
    ck_assert_int_eq(load(&c, 5, zero_id), -1);
    ck_assert_int_eq(load(&c, 7, not_in_peers), -1);
    ck_assert_ptr_nonnull(strstr(err, "not in --peers"));
    ck_assert_int_eq(load(&c, 5, bad_peers), -1);
    ck_assert_ptr_nonnull(strstr(err, "--peers"));
    ck_assert_int_eq(load(&c, 5, hb), -1);
    ck_assert_ptr_nonnull(strstr(err, "--heartbeat-ms"));
    ck_assert_int_eq(load(&c, 4, unknown), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown option '--frob'"));
    ck_assert_int_eq(load(&c, 2, missing), -1);
    ck_assert_ptr_nonnull(strstr(err, "needs a value"));
    ck_assert_int_eq(load(&c, 5, state), -1);
    ck_assert_ptr_nonnull(strstr(err, "--initial-state"));
    ck_assert_int_eq(load(&c, 5, level), -1);
    ck_assert_ptr_nonnull(strstr(err, "--log-level"));
    ck_assert_int_eq(load(&c, 5, same), -1);
    ck_assert_ptr_nonnull(strstr(err, "also this node's peer address"));
    ck_assert_int_eq(load(&c, 3, nofile), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/raftfs.conf"));
    setenv("RAFTFS_ID", "-3", 1);
    ck_assert_int_eq(load(&c, 1, no_dir), -1);
    ck_assert_ptr_nonnull(strstr(err, "RAFTFS_ID"));
    clear_env();
}
END_TEST

START_TEST(test_bad_file_lines)
{
    struct fs_config c;
    char path[] = "/tmp/raftfs-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    char *argv[] = {"raftfsd", "--config", path, NULL};
    clear_env();
    fprintf(f, "RAFTFS_DATA_DIR=/d\nRAFTFS_NOPE=1\n");
    fclose(f);
    ck_assert_int_eq(load(&c, 3, argv), -1);
    ck_assert_ptr_nonnull(strstr(err, ":2: unknown key 'RAFTFS_NOPE'"));
    f = fopen(path, "w");
    fprintf(f, "just words\n");
    fclose(f);
    ck_assert_int_eq(load(&c, 3, argv), -1);
    ck_assert_ptr_nonnull(strstr(err, ":1: expected KEY=VALUE"));
    unlink(path);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("fs_config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_single_node_default);
    tcase_add_test(tc, test_flags);
    tcase_add_test(tc, test_file_env_flag_precedence);
    tcase_add_test(tc, test_errors_are_clear);
    tcase_add_test(tc, test_bad_file_lines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
