/* Unit tests of net/'s client port (server on a uv loop, blocking client). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "net.h"

static uv_loop_t loop;

/* The server under test and what it saw. */
struct srv {
    struct net_client_server *s;
    unsigned port;
    struct net_client_handle *held[8]; /* answered later */
    struct net_client_req last;
    size_t n_req;
    size_t n_held;
    bool hold;  /* keep handles instead of answering at once */
    bool closed;
    char logs[8][256];
    size_t n_logs;
};

static void log_cb(void *data, int level, const char *line)
{
    struct srv *s = data;
    if (level >= NET_LOG_INFO && s->n_logs < 8)
        snprintf(s->logs[s->n_logs++], sizeof s->logs[0], "%s", line);
}

static void answer(struct net_client_handle *h, const struct net_client_req *q)
{
    struct net_client_resp *r = calloc(1, sizeof *r);
    switch (q->op) {
    case NET_CLIENT_GET:
        r->payload = NET_PAYLOAD_VALUE;
        r->value.base = "the value";
        r->value.len = 9;
        break;
    case NET_CLIENT_STATUS:
        r->payload = NET_PAYLOAD_STATUS;
        r->info.id = 1;
        r->info.role = RAFT_LEADER;
        r->info.term = 3;
        break;
    default:
        r->status = -ENOENT;
        snprintf(r->message, sizeof r->message, "no such key: %.64s", q->path);
    }
    ck_assert_int_eq(net_client_reply(h, r), 0);
    free(r);
}

static void on_request(struct net_client_server *s, struct net_client_handle *h,
                       const struct net_client_req *q)
{
    struct srv *v = net_client_server_data(s);
    v->last = *q;
    v->last.value.base = NULL; /* borrowed: not kept */
    v->n_req++;
    if (v->hold) {
        ck_assert_uint_lt(v->n_held, 8);
        v->held[v->n_held++] = h;
        return;
    }
    answer(h, q);
}

static void start_srv(struct srv *v)
{
    struct net_client_server_config c;
    struct sockaddr_storage ss;

    memset(v, 0, sizeof *v);
    memset(&c, 0, sizeof c);
    c.listen_addr = "127.0.0.1:0";
    c.on_request = on_request;
    c.log = log_cb;
    c.log_data = v;
    ck_assert_int_eq(net_client_server_init(&loop, &c, v, &v->s), 0);
    ck_assert_int_eq(net_client_server_local_addr(v->s, &ss), 0);
    v->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Loop helpers: run until a predicate holds, bounded by 10 s. */
struct waiter {
    uv_timer_t poll, limit;
    bool (*pred)(void *);
    void *arg;
    bool timed_out;
};

static void poll_cb(uv_timer_t *h)
{
    struct waiter *w = h->data;
    if (w->pred(w->arg))
        uv_stop(&loop);
}

static void limit_cb(uv_timer_t *h)
{
    struct waiter *w = h->data;
    w->timed_out = true;
    uv_stop(&loop);
}

static bool run_until(bool (*pred)(void *), void *arg)
{
    struct waiter w = {.pred = pred, .arg = arg};
    uv_timer_init(&loop, &w.poll);
    uv_timer_init(&loop, &w.limit);
    w.poll.data = w.limit.data = &w;
    uv_timer_start(&w.poll, poll_cb, 1, 2);
    uv_timer_start(&w.limit, limit_cb, 10000, 0);
    if (!pred(arg))
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.poll, NULL);
    uv_close((uv_handle_t *)&w.limit, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return !w.timed_out;
}

static void srv_closed(struct net_client_server *s, void *data)
{
    (void)s;
    ((struct srv *)data)->closed = true;
}

static bool is_closed(void *arg)
{
    return ((struct srv *)arg)->closed;
}

static void stop_srv(struct srv *v)
{
    net_client_server_close(v->s, srv_closed);
    ck_assert(run_until(is_closed, v));
}

/* The blocking client runs on its own thread while the loop serves. */
struct call {
    uv_thread_t thread;
    char endpoints[256];
    unsigned timeout_ms;
    struct net_client_req req;
    struct net_client_resp resp;
    char used[RAFT_ADDR_MAX];
    char err[256];
    int rv;
    volatile int done;
};

static void call_thread(void *arg)
{
    struct call *c = arg;
    c->rv = net_client_call(c->endpoints, c->timeout_ms, &c->req, &c->resp,
                            c->used, c->err, sizeof c->err);
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

static bool call_done(void *arg)
{
    return __atomic_load_n(&((struct call *)arg)->done, __ATOMIC_ACQUIRE);
}

static unsigned call_timeout = 5000;

static void start_call(struct call *c, const char *endpoints, uint8_t op,
                       const char *path)
{
    memset(c, 0, sizeof *c);
    snprintf(c->endpoints, sizeof c->endpoints, "%s", endpoints);
    c->timeout_ms = call_timeout;
    c->req.id = 99;
    c->req.op = op;
    snprintf(c->req.path, sizeof c->req.path, "%s", path);
    ck_assert_int_eq(uv_thread_create(&c->thread, call_thread, c), 0);
}

static void finish_call(struct call *c)
{
    ck_assert(run_until(call_done, c));
    uv_thread_join(&c->thread);
}

static void setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    ++*(int *)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void teardown(void)
{
    int left = 0;
    uv_walk(&loop, walk_cb, &left);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(left, 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_call_and_reply)
{
    static struct srv v;
    static struct call c;
    char ep[64];

    start_srv(&v);
    snprintf(ep, sizeof ep, "127.0.0.1:%u", v.port);
    start_call(&c, ep, NET_CLIENT_GET, "app/port");
    finish_call(&c);
    ck_assert_msg(c.rv == 0, "%s", c.err);
    ck_assert_str_eq(c.used, ep);
    ck_assert_uint_eq(c.resp.id, 99);
    ck_assert_int_eq(c.resp.status, 0);
    ck_assert_uint_eq(c.resp.payload, NET_PAYLOAD_VALUE);
    ck_assert_uint_eq(c.resp.value.len, 9);
    ck_assert_mem_eq(c.resp.value.base, "the value", 9);
    ck_assert_str_eq(v.last.path, "app/port");
    net_client_resp_close(&c.resp);

    start_call(&c, ep, NET_CLIENT_RM, "nope");
    finish_call(&c);
    ck_assert_int_eq(c.rv, 0);
    ck_assert_int_eq(c.resp.status, -ENOENT);
    ck_assert_str_eq(c.resp.message, "no such key: nope");
    net_client_resp_close(&c.resp);
    stop_srv(&v);
}
END_TEST

static bool has_held(void *arg)
{
    return ((struct srv *)arg)->n_held >= 1;
}

START_TEST(test_async_reply)
{
    static struct srv v;
    static struct call c;
    char ep[64];

    start_srv(&v);
    v.hold = true;
    snprintf(ep, sizeof ep, "127.0.0.1:%u", v.port);
    start_call(&c, ep, NET_CLIENT_STATUS, "");
    ck_assert(run_until(has_held, &v));
    ck_assert(!call_done(&c)); /* still waiting for the answer */
    answer(v.held[0], &v.last);
    finish_call(&c);
    ck_assert_int_eq(c.rv, 0);
    ck_assert_uint_eq(c.resp.payload, NET_PAYLOAD_STATUS);
    ck_assert_uint_eq(c.resp.info.role, RAFT_LEADER);
    ck_assert_uint_eq(c.resp.info.term, 3);
    net_client_resp_close(&c.resp);
    stop_srv(&v);
}
END_TEST

static bool no_conns(void *arg)
{
    struct srv *v = arg;
    return net_client_server_connections(v->s) == 0;
}

START_TEST(test_reply_after_close)
{
    static struct srv v;
    static struct call c;
    char ep[64];

    start_srv(&v);
    v.hold = true;
    snprintf(ep, sizeof ep, "127.0.0.1:%u", v.port);
    /* The client gives up waiting and closes its connection. */
    call_timeout = 200;
    start_call(&c, ep, NET_CLIENT_GET, "k");
    call_timeout = 5000;
    ck_assert(run_until(has_held, &v));
    finish_call(&c);
    ck_assert_int_eq(c.rv, NET_ERR_TIMEOUT);
    ck_assert(run_until(no_conns, &v));
    /* The driver answers late: dropped, the handle released. */
    struct net_client_resp *r = calloc(1, sizeof *r);
    ck_assert_int_eq(net_client_reply(v.held[0], r), NET_ERR_CLOSED);

    /* A request still pending when the server closes. */
    v.n_held = 0;
    start_call(&c, ep, NET_CLIENT_GET, "k");
    ck_assert(run_until(has_held, &v));
    stop_srv(&v);
    finish_call(&c);
    ck_assert_int_eq(c.rv, NET_ERR_CLOSED);
    ck_assert_int_eq(net_client_reply(v.held[0], r), NET_ERR_CLOSED);
    free(r);
}
END_TEST

START_TEST(test_endpoints)
{
    static struct srv v;
    static struct call c;
    char ep[128];

    start_srv(&v);
    snprintf(ep, sizeof ep, "127.0.0.1:1,127.0.0.1:%u", v.port);
    start_call(&c, ep, NET_CLIENT_GET, "x");
    finish_call(&c);
    ck_assert_msg(c.rv == 0, "%s", c.err);
    ck_assert_str_ne(c.used, "127.0.0.1:1");
    net_client_resp_close(&c.resp);

    start_call(&c, "127.0.0.1:1", NET_CLIENT_GET, "x");
    finish_call(&c);
    ck_assert_int_eq(c.rv, NET_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(c.err, "no endpoint reachable"));

    start_call(&c, "not an address", NET_CLIENT_GET, "x");
    finish_call(&c);
    ck_assert_int_eq(c.rv, NET_ERR_BAD_ADDR);
    stop_srv(&v);
}
END_TEST

/* Raw bytes from a thread: connect, send, read until the server closes. */
struct rawcall {
    uv_thread_t thread;
    unsigned port;
    const void *bytes;
    size_t len;
    volatile int done;
};

static void raw_thread(void *arg)
{
    struct rawcall *r = arg;
    struct sockaddr_in sa;
    char buf[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    uv_ip4_addr("127.0.0.1", (int)r->port, &sa);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        if (send(fd, r->bytes, r->len, MSG_NOSIGNAL) == (ssize_t)r->len)
            while (recv(fd, buf, sizeof buf, 0) > 0)
                ;
    }
    if (fd >= 0)
        close(fd);
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

static bool raw_done(void *arg)
{
    return __atomic_load_n(&((struct rawcall *)arg)->done, __ATOMIC_ACQUIRE);
}

START_TEST(test_garbage)
{
    static struct srv v;
    static struct call c;
    static const uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
    static const uint8_t junk[12] = {0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    struct rawcall r;
    char ep[64];

    start_srv(&v);
    memset(&r, 0, sizeof r);
    r.port = v.port;
    r.bytes = huge;
    r.len = sizeof huge;
    ck_assert_int_eq(uv_thread_create(&r.thread, raw_thread, &r), 0);
    ck_assert(run_until(raw_done, &r));
    uv_thread_join(&r.thread);
    memset(&r, 0, sizeof r);
    r.port = v.port;
    r.bytes = junk;
    r.len = sizeof junk;
    ck_assert_int_eq(uv_thread_create(&r.thread, raw_thread, &r), 0);
    ck_assert(run_until(raw_done, &r));
    uv_thread_join(&r.thread);
    ck_assert_uint_eq(v.n_logs, 2);
    ck_assert_ptr_nonnull(strstr(v.logs[0], "larger than"));
    ck_assert_ptr_nonnull(strstr(v.logs[1], "malformed"));
    ck_assert_uint_eq(v.n_req, 0);
    /* Still serving. */
    snprintf(ep, sizeof ep, "127.0.0.1:%u", v.port);
    start_call(&c, ep, NET_CLIENT_GET, "x");
    finish_call(&c);
    ck_assert_int_eq(c.rv, 0);
    net_client_resp_close(&c.resp);
    stop_srv(&v);
}
END_TEST

static Suite *net_client_suite(void)
{
    Suite *s = suite_create("net_client");
    TCase *tc;

    tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_call_and_reply);
    tcase_add_test(tc, test_async_reply);
    tcase_add_test(tc, test_reply_after_close);
    tcase_add_test(tc, test_garbage);
    suite_add_tcase(s, tc);
    tc = tcase_create("client");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_endpoints);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(net_client_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
