/* Unit tests of net/'s address and peer-list parsing. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

START_TEST(test_parse_good)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    char buf[64];

    ck_assert_int_eq(net_addr_parse("127.0.0.1:7001", &ss, NULL, 0), 0);
    ck_assert_int_eq(in->sin_family, AF_INET);
    ck_assert_uint_eq(ntohs(in->sin_port), 7001);
    ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), 0x7f000001u);
    ck_assert_int_eq(net_addr_format((struct sockaddr *)&ss, buf, sizeof buf),
                     0);
    ck_assert_str_eq(buf, "127.0.0.1:7001");

    ck_assert_int_eq(net_addr_parse("[::1]:65535", &ss, NULL, 0), 0);
    ck_assert_int_eq(in6->sin6_family, AF_INET6);
    ck_assert_uint_eq(ntohs(in6->sin6_port), 65535);
    ck_assert_int_eq(net_addr_format((struct sockaddr *)&ss, buf, sizeof buf),
                     0);
    ck_assert_str_eq(buf, "[::1]:65535");

    ck_assert_int_eq(net_addr_parse("0.0.0.0:0", &ss, NULL, 0), 0);
    ck_assert_uint_eq(ntohs(in->sin_port), 0);
    /* A name resolves (localhost is in every /etc/hosts). */
    ck_assert_int_eq(net_addr_parse("localhost:80", &ss, NULL, 0), 0);
    ck_assert(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
    ck_assert_int_eq(net_addr_check("node-1.example:7000", NULL, 0), 0);
}
END_TEST

START_TEST(test_parse_bad)
{
    static const char *bad[] = {
        "",           "127.0.0.1",  "127.0.0.1:", ":7000",
        "1.2.3.4:x",  "1.2.3.4:65536", "::1:7000", "[::1]7000",
        "[::1:7000",  "[zz]:7000",  "[]:7000",    "1.2.3.4:-1",
        "1.2.3.4:99999999999999999999",
        "a-very-long-host-name-that-does-not-fit-in-raft-addr-max.example:1",
    };
    struct sockaddr_storage ss;
    char err[128];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(net_addr_parse(bad[i], &ss, err, sizeof err) ==
                          NET_ERR_BAD_ADDR,
                      "accepted '%s'", bad[i]);
        ck_assert_msg(err[0] != '\0', "no reason for '%s'", bad[i]);
        ck_assert_int_eq(net_addr_check(bad[i], NULL, 0), NET_ERR_BAD_ADDR);
    }
    ck_assert_int_eq(net_addr_parse(NULL, &ss, err, sizeof err),
                     NET_ERR_BAD_ADDR);
    ck_assert_int_eq(net_addr_parse("no-such-host.invalid:1", &ss, err,
                                    sizeof err),
                     NET_ERR_BAD_ADDR);
    ck_assert_ptr_nonnull(strstr(err, "resolve"));
}
END_TEST

START_TEST(test_peers_good)
{
    struct net_peer_addr p[8];
    size_t n;

    ck_assert_int_eq(net_peers_parse("1=127.0.0.1:7001,2=[::1]:7002,"
                                     "30=host.example:7003",
                                     p, 8, &n, NULL, 0),
                     0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(p[0].id, 1);
    ck_assert_str_eq(p[0].addr, "127.0.0.1:7001");
    ck_assert_uint_eq(p[1].id, 2);
    ck_assert_str_eq(p[1].addr, "[::1]:7002");
    ck_assert_uint_eq(p[2].id, 30);
    ck_assert_str_eq(p[2].addr, "host.example:7003");
    ck_assert_int_eq(net_peers_parse("7=10.0.0.7:1", p, 8, &n, NULL, 0), 0);
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(test_peers_bad)
{
    static const struct {
        const char *in;
        const char *why; /* a word the reason must contain */
    } bad[] = {
        {"", "empty"},
        {"1=127.0.0.1:1,", "empty item"},
        {",1=127.0.0.1:1", "empty item"},
        {"127.0.0.1:1", "ID=HOST:PORT"},
        {"=127.0.0.1:1", "ID=HOST:PORT"},
        {"x=127.0.0.1:1", "node id"},
        {"0=127.0.0.1:1", "0"},
        {"1=127.0.0.1:1,1=127.0.0.1:2", "duplicate"},
        {"1=127.0.0.1", "HOST:PORT"},
        {"1=127.0.0.1:0x10", "port"},
        {"99999999999999999999999=h:1", "node id"},
        {"1=a:1,2=b:2,3=c:3", "too many"},
    };
    struct net_peer_addr p[2];
    char err[160];
    size_t i, n;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(net_peers_parse(bad[i].in, p, 2, &n, err, sizeof err) ==
                          NET_ERR_BAD_ADDR,
                      "accepted '%s'", bad[i].in);
        ck_assert_msg(strstr(err, bad[i].why) != NULL,
                      "reason for '%s' is '%s'", bad[i].in, err);
        ck_assert_uint_eq(n, 0);
    }
}
END_TEST

START_TEST(test_strerror)
{
    ck_assert_str_eq(net_strerror(NET_ERR_QUEUE_FULL),
                     "send queue full, message dropped");
    ck_assert_str_eq(net_strerror(0), "success");
    ck_assert_ptr_nonnull(net_strerror(-ECONNREFUSED));
    ck_assert_str_ne(net_strerror(-ECONNREFUSED), "unknown error");
}
END_TEST

static Suite *net_addr_suite(void)
{
    Suite *s = suite_create("net_addr");
    TCase *tc = tcase_create("addr");

    tcase_add_test(tc, test_parse_good);
    tcase_add_test(tc, test_parse_bad);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);
    tc = tcase_create("peers");
    tcase_add_test(tc, test_peers_good);
    tcase_add_test(tc, test_peers_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(net_addr_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
