/* Unit tests of net/'s peer transport on real loopback sockets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "frame.h"
#include "net.h"

#define MAX_MSGS 256
#define MAX_LOGS 64

/* One node under test: a transport and everything it reported. */
struct node {
    struct net_transport *t;
    raft_id id;
    uint64_t cluster;
    unsigned port;
    struct raft_message msgs[MAX_MSGS];
    size_t n_msgs;
    struct net_forward_result results[8];
    size_t n_results;
    size_t n_forwards;
    int ups;
    int downs;
    char logs[MAX_LOGS][256];
    size_t n_logs;
    bool closed;
};

static uv_loop_t loop;

static void log_cb(void *data, int level, const char *line)
{
    struct node *n = data;
    if (level >= NET_LOG_INFO && n->n_logs < MAX_LOGS)
        snprintf(n->logs[n->n_logs++], sizeof n->logs[0], "%s", line);
}

static bool logged(const struct node *n, const char *needle)
{
    size_t i;
    for (i = 0; i < n->n_logs; i++)
        if (strstr(n->logs[i], needle) != NULL)
            return true;
    return false;
}

static void on_message(struct net_transport *t, raft_id from,
                       struct raft_message *m)
{
    struct node *n = net_transport_data(t);
    ck_assert_uint_eq(from, m->from);
    ck_assert_uint_lt(n->n_msgs, MAX_MSGS);
    n->msgs[n->n_msgs++] = *m; /* takes ownership of the contents */
}

static void on_forward(struct net_transport *t, raft_id from,
                       const struct net_forward *f)
{
    struct node *n = net_transport_data(t);
    struct net_forward_result r = {f->req_id, 0, 100 + f->command.len, 3};
    n->n_forwards++;
    /* Answer at once, like a leader that proposed. */
    ck_assert_int_eq(net_transport_forward_result(t, from, &r), 0);
}

static void on_forward_result(struct net_transport *t, raft_id from,
                              const struct net_forward_result *r)
{
    struct node *n = net_transport_data(t);
    (void)from;
    if (n->n_results < 8)
        n->results[n->n_results++] = *r;
}

static void on_peer(struct net_transport *t, raft_id id, bool up)
{
    struct node *n = net_transport_data(t);
    (void)id;
    if (up)
        n->ups++;
    else
        n->downs++;
}

static bool know_everyone(struct net_transport *t, raft_id id)
{
    (void)t;
    return id < 100;
}

static bool use_is_known;
static unsigned hello_timeout;
static size_t frame_max = 64 * 1024;

static void start_node(struct node *n, raft_id id, uint64_t cluster,
                       unsigned port, size_t queue_max)
{
    struct net_transport_config c;
    struct sockaddr_storage ss;
    char addr[32];

    memset(&c, 0, sizeof c);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    c.cluster_id = cluster;
    c.self = id;
    c.listen_addr = addr;
    c.frame_max = frame_max;
    c.queue_max = queue_max != 0 ? queue_max : 4 * frame_max;
    c.hello_timeout_ms = hello_timeout;
    c.is_known = use_is_known ? know_everyone : NULL;
    c.backoff_min_ms = 5;
    c.backoff_max_ms = 40;
    c.seed = id;
    c.on_message = on_message;
    c.on_forward = on_forward;
    c.on_forward_result = on_forward_result;
    c.on_peer = on_peer;
    c.log = log_cb;
    c.log_data = n;
    n->id = id;
    n->cluster = cluster;
    n->closed = false;
    ck_assert_int_eq(net_transport_init(&loop, &c, n, &n->t), 0);
    ck_assert_int_eq(net_transport_local_addr(n->t, &ss), 0);
    n->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    ck_assert_uint_ne(n->port, 0);
}

static void closed_cb(struct net_transport *t, void *data)
{
    struct node *n = data;
    (void)t;
    n->closed = true;
}

static void set_peer(struct node *n, raft_id id, unsigned port)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    ck_assert_int_eq(net_transport_set_peer(n->t, id, addr), 0);
}

/* Runs the loop until pred(arg) holds; fails the test after 10 s. */
struct waiter {
    uv_timer_t poll;
    uv_timer_t limit;
    bool (*pred)(void *arg);
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

static void noop_close(uv_handle_t *h)
{
    (void)h;
}

static bool run_until(bool (*pred)(void *), void *arg, uint64_t ms)
{
    struct waiter w = {.pred = pred, .arg = arg};
    uv_timer_init(&loop, &w.poll);
    uv_timer_init(&loop, &w.limit);
    w.poll.data = w.limit.data = &w;
    uv_timer_start(&w.poll, poll_cb, 1, 2);
    uv_timer_start(&w.limit, limit_cb, ms, 0);
    if (!pred(arg))
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.poll, noop_close);
    uv_close((uv_handle_t *)&w.limit, noop_close);
    uv_run(&loop, UV_RUN_NOWAIT);
    return !w.timed_out;
}

static bool node_closed(void *arg)
{
    return ((struct node *)arg)->closed;
}

static void stop_node(struct node *n)
{
    size_t i;
    net_transport_close(n->t, closed_cb);
    ck_assert(run_until(node_closed, n, 10000));
    for (i = 0; i < n->n_msgs; i++)
        raft_message_close(&n->msgs[i]); /* the core's, as the driver does */
    n->n_msgs = 0;
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    ++*(int *)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
}

/* libuv's MAKE_VALGRIND_HAPPY: nothing may be left open. */
static void teardown(void)
{
    int left = 0;
    uv_walk(&loop, walk_cb, &left);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(left, 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static struct raft_message heartbeat(raft_id from, raft_id to, uint64_t seq)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_HEARTBEAT;
    m.from = from;
    m.to = to;
    m.term = 1;
    m.heartbeat.seq = seq;
    return m;
}

struct count_goal {
    struct node *n;
    size_t msgs;
};

static bool has_msgs(void *arg)
{
    struct count_goal *g = arg;
    return g->n->n_msgs >= g->msgs;
}

START_TEST(test_exchange_in_order)
{
    static struct node a, b, c;
    struct raft_entry es[2] = {{1, 1, RAFT_ENTRY_COMMAND, {"abc", 3}},
                               {1, 2, RAFT_ENTRY_COMMAND, {"defg", 4}}};
    struct raft_message m;
    struct count_goal g;
    struct net_peer_stats st;
    uint64_t i;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    start_node(&a, 1, 7, 0, 0);
    start_node(&b, 2, 7, 0, 0);
    start_node(&c, 3, 7, 0, 0);
    set_peer(&a, 2, b.port);
    set_peer(&a, 3, c.port);
    set_peer(&b, 1, a.port);
    set_peer(&c, 1, a.port);
    /* Queued before any connection exists: sent after the Hello. */
    for (i = 0; i < 100; i++) {
        m = heartbeat(1, 2, i);
        ck_assert_int_eq(net_transport_send(a.t, &m), 0);
        m = heartbeat(1, 3, 1000 + i);
        ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    }
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.append.entries = es;
    m.append.n_entries = 2;
    ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    m = heartbeat(2, 1, 55);
    ck_assert_int_eq(net_transport_send(b.t, &m), 0);
    m = heartbeat(1, 9, 0);
    ck_assert_int_eq(net_transport_send(a.t, &m), NET_ERR_UNKNOWN_PEER);

    g = (struct count_goal){&b, 101};
    ck_assert(run_until(has_msgs, &g, 10000));
    g = (struct count_goal){&c, 100};
    ck_assert(run_until(has_msgs, &g, 10000));
    g = (struct count_goal){&a, 1};
    ck_assert(run_until(has_msgs, &g, 10000));
    for (i = 0; i < 100; i++) {
        ck_assert_uint_eq(b.msgs[i].type, RAFT_MSG_HEARTBEAT);
        ck_assert_uint_eq(b.msgs[i].heartbeat.seq, i);
        ck_assert_uint_eq(c.msgs[i].heartbeat.seq, 1000 + i);
        ck_assert_uint_eq(c.msgs[i].from, 1);
    }
    ck_assert_uint_eq(b.msgs[100].type, RAFT_MSG_APPEND);
    ck_assert_uint_eq(b.msgs[100].append.n_entries, 2);
    ck_assert_mem_eq(b.msgs[100].append.entries[1].data.base, "defg", 4);
    ck_assert_uint_eq(a.msgs[0].heartbeat.seq, 55);
    ck_assert_int_eq(a.ups, 2);
    ck_assert_int_eq(net_transport_peer_stats(a.t, 2, &st), 0);
    ck_assert(st.connected);
    ck_assert_uint_eq(st.sent_frames, 102); /* Hello + 101 */
    ck_assert_uint_eq(st.dropped, 0);
    ck_assert_uint_eq(b.n_logs, 0);

    stop_node(&a);
    stop_node(&b);
    stop_node(&c);
}
END_TEST

static bool has_result(void *arg)
{
    return ((struct node *)arg)->n_results >= 3;
}

START_TEST(test_forwards)
{
    static struct node a, b;
    struct net_forward f;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    start_node(&a, 1, 7, 0, 0);
    start_node(&b, 2, 7, 0, 0);
    set_peer(&a, 2, b.port);
    set_peer(&b, 1, a.port);
    memset(&f, 0, sizeof f);
    f.req_id = 11;
    f.op = NET_FORWARD_PROPOSE;
    f.command.base = "cmd";
    f.command.len = 3;
    ck_assert_int_eq(net_transport_forward(a.t, 2, &f), 0);
    f.req_id = 12;
    f.op = NET_FORWARD_TRANSFER;
    f.id = 2;
    ck_assert_int_eq(net_transport_forward(a.t, 2, &f), 0);
    f.req_id = 13;
    f.op = NET_FORWARD_CHANGE;
    f.change_op = RAFT_REMOVE;
    f.id = 5;
    ck_assert_int_eq(net_transport_forward(a.t, 2, &f), 0);
    ck_assert(run_until(has_result, &a, 10000));
    ck_assert_uint_eq(b.n_forwards, 3);
    ck_assert_uint_eq(a.results[0].req_id, 11);
    ck_assert_uint_eq(a.results[0].index, 103);
    ck_assert_uint_eq(a.results[1].req_id, 12);
    ck_assert_uint_eq(a.results[2].req_id, 13);
    stop_node(&a);
    stop_node(&b);
}
END_TEST

struct refusal {
    struct node *sender;
    struct node *receiver;
    const char *why;
};

static bool refused(void *arg)
{
    struct refusal *r = arg;
    struct net_peer_stats st;
    net_transport_peer_stats(r->sender->t, 2, &st);
    return st.refused >= 1 && logged(r->receiver, r->why) &&
           logged(r->sender, "refused our hello");
}

/* Node 1 talks to a node listening at `b`'s port with the given setup. */
static void check_refusal(uint64_t cluster_b, raft_id id_b, bool b_knows_a,
                          const char *why)
{
    static struct node a, b;
    struct raft_message m;
    struct refusal r = {&a, &b, why};
    struct net_peer_stats st;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    start_node(&a, 1, 7, 0, 0);
    start_node(&b, id_b, cluster_b, 0, 0);
    set_peer(&a, 2, b.port); /* a believes node 2 listens there */
    if (b_knows_a)
        set_peer(&b, 1, a.port);
    m = heartbeat(1, 2, 1);
    ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    ck_assert_msg(run_until(refused, &r, 10000), "no refusal for '%s'", why);
    ck_assert_uint_eq(b.n_msgs, 0);
    ck_assert_int_eq(a.ups, 0);
    ck_assert_int_eq(net_transport_peer_stats(a.t, 2, &st), 0);
    ck_assert(!st.connected);
    stop_node(&a);
    stop_node(&b);
}

START_TEST(test_refuse_cluster)
{
    check_refusal(8, 2, true, "cluster id 7, this node is in 8");
}
END_TEST

START_TEST(test_refuse_unknown_sender)
{
    check_refusal(7, 2, false, "unknown node id 1");
}
END_TEST

START_TEST(test_refuse_wrong_receiver)
{
    check_refusal(7, 3, true, "hello meant for node 2, this is 3");
}
END_TEST

/* A raw client: writes bytes, reads until the server closes. */
struct raw {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    uv_buf_t out;
    bool half_close; /* shut our side down after writing */
    uint8_t in[4096];
    size_t inlen;
    bool done;
};

static void raw_close_cb(uv_handle_t *h)
{
    struct raw *r = h->data;
    r->done = true;
}

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    struct raw *r = h->data;
    (void)s;
    buf->base = (char *)r->in + r->inlen;
    buf->len = sizeof r->in - r->inlen;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct raw *r = s->data;
    (void)buf;
    if (n > 0)
        r->inlen += (size_t)n;
    else if (n < 0)
        uv_close((uv_handle_t *)&r->tcp, raw_close_cb);
}

static void raw_write_cb(uv_write_t *req, int status)
{
    (void)req;
    (void)status;
}

static void raw_connect_cb(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    ck_assert_int_eq(status, 0);
    if (r->out.len > 0)
        uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &r->out, 1, raw_write_cb);
    if (r->half_close)
        uv_shutdown(&r->sreq, (uv_stream_t *)&r->tcp, NULL);
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

static bool raw_done(void *arg)
{
    return ((struct raw *)arg)->done;
}

/* Sends `bytes` to 127.0.0.1:port and waits until the server closes. */
static bool raw_half_close;

static void raw_exchange(struct raw *r, unsigned port, const void *bytes,
                         size_t len)
{
    struct sockaddr_in sa;
    memset(r, 0, sizeof *r);
    r->half_close = raw_half_close;
    uv_ip4_addr("127.0.0.1", (int)port, &sa);
    uv_tcp_init(&loop, &r->tcp);
    r->tcp.data = r->creq.data = r;
    r->out = uv_buf_init((char *)bytes, (unsigned)len);
    ck_assert_int_eq(uv_tcp_connect(&r->creq, &r->tcp,
                                    (struct sockaddr *)&sa, raw_connect_cb),
                     0);
    ck_assert_msg(run_until(raw_done, r, 10000), "server did not close");
}

START_TEST(test_refuse_version)
{
    static struct node b;
    struct net__hello h = {99, 7, 1, 2};
    struct net__wframe *f;
    struct net__envelope e;
    struct raw r;

    memset(&b, 0, sizeof b);
    start_node(&b, 2, 7, 0, 0);
    set_peer(&b, 1, 1); /* known, never reachable */
    ck_assert_int_eq(net__encode_hello(&h, 1024, &f), 0);
    raw_exchange(&r, b.port, f->data, f->len);
    free(f);
    ck_assert(logged(&b, "protocol version 99"));
    /* The refusal reached the client before the close. */
    ck_assert_uint_gt(r.inlen, NET_FRAME_HDR);
    ck_assert_int_eq(net__decode_envelope(r.in + NET_FRAME_HDR,
                                          r.inlen - NET_FRAME_HDR, &e),
                     0);
    ck_assert_int_eq(e.kind, NET__ENV_HELLO_REPLY);
    ck_assert(!e.hello_reply.accepted);
    ck_assert_ptr_nonnull(strstr(e.hello_reply.reason, "protocol version"));
    stop_node(&b);
}
END_TEST

START_TEST(test_garbage_and_oversized)
{
    static struct node a, b;
    static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    uint8_t junk[64];
    struct raw r;
    struct raft_message m;
    struct count_goal g = {&b, 2};
    struct net__hello h = {NET_PROTOCOL_VERSION, 7, 1, 2};
    struct net__wframe *f1, *f2;
    uint8_t spoof[512];
    size_t i;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    start_node(&a, 1, 7, 0, 0);
    start_node(&b, 2, 7, 0, 0);
    set_peer(&a, 2, b.port);
    set_peer(&b, 1, a.port);
    m = heartbeat(1, 2, 1);
    ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    g.msgs = 1;
    ck_assert(run_until(has_msgs, &g, 10000));

    /* An oversized frame header. */
    raw_exchange(&r, b.port, huge, sizeof huge);
    ck_assert(logged(&b, "larger than the maximum frame size"));
    /* A plausible length followed by garbage. */
    net__frame_put_header(junk, sizeof junk - 4);
    for (i = 4; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    raw_exchange(&r, b.port, junk, sizeof junk);
    ck_assert(logged(&b, "malformed"));
    /* A frame cut short by the end of the stream. */
    raw_half_close = true;
    raw_exchange(&r, b.port, junk, sizeof junk - 5);
    raw_half_close = false;
    ck_assert(logged(&b, "in the middle of a frame"));
    /* A valid Hello, then a message claiming to be from node 3. */
    ck_assert_int_eq(net__encode_hello(&h, 1024, &f1), 0);
    m = heartbeat(3, 2, 9);
    ck_assert_int_eq(net__encode_raft(&m, 1024, &f2), 0);
    memcpy(spoof, f1->data, f1->len);
    memcpy(spoof + f1->len, f2->data, f2->len);
    raw_exchange(&r, b.port, spoof, f1->len + f2->len);
    free(f1);
    free(f2);

    /* The real peer is unaffected. */
    m = heartbeat(1, 2, 2);
    ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    g.msgs = 2;
    ck_assert(run_until(has_msgs, &g, 10000));
    ck_assert_uint_eq(b.n_msgs, 2);
    ck_assert_uint_eq(b.msgs[1].heartbeat.seq, 2);
    stop_node(&a);
    stop_node(&b);
}
END_TEST

static bool is_down(void *arg)
{
    return ((struct node *)arg)->downs >= 1;
}

START_TEST(test_reconnect)
{
    static struct node a, b;
    struct raft_message m;
    struct count_goal g = {&b, 1};
    struct net_peer_stats st;
    unsigned port;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    start_node(&a, 1, 7, 0, 0);
    start_node(&b, 2, 7, 0, 0);
    port = b.port;
    set_peer(&a, 2, port);
    set_peer(&b, 1, a.port);
    m = heartbeat(1, 2, 1);
    ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    ck_assert(run_until(has_msgs, &g, 10000));
    /* The other side restarts. */
    stop_node(&b);
    ck_assert(run_until(is_down, &a, 10000));
    memset(&b, 0, sizeof b);
    start_node(&b, 2, 7, port, 0);
    set_peer(&b, 1, a.port);
    /* Keep sending until one arrives: those sent while down are dropped. */
    for (;;) {
        m = heartbeat(1, 2, 2);
        net_transport_send(a.t, &m);
        g.msgs = 1;
        if (run_until(has_msgs, &g, 50))
            break;
        ck_assert_int_lt(a.ups, 100);
    }
    ck_assert_int_eq(a.ups, 2);
    ck_assert_int_eq(net_transport_peer_stats(a.t, 2, &st), 0);
    ck_assert_uint_ge(st.connects, 2);
    ck_assert(logged(&a, "connection to node 2"));
    stop_node(&a);
    stop_node(&b);
}
END_TEST

static bool many_connects(void *arg)
{
    struct node *n = arg;
    struct net_peer_stats st;
    net_transport_peer_stats(n->t, 2, &st);
    return st.connects >= 4;
}

START_TEST(test_dead_peer_bounded)
{
    static struct node a, dead;
    struct raft_message m;
    struct raft_entry e = {1, 1, RAFT_ENTRY_COMMAND, {NULL, 1000}};
    struct net_peer_stats st;
    char *payload = calloc(1, 1000);
    unsigned port;
    int i, ok = 0, full = 0;

    memset(&a, 0, sizeof a);
    memset(&dead, 0, sizeof dead);
    /* A port nobody listens on: bind one, then close it. */
    start_node(&dead, 9, 7, 0, 0);
    port = dead.port;
    stop_node(&dead);
    start_node(&a, 1, 7, 0, 16 * 1024 * 4);
    set_peer(&a, 2, port);
    e.data.base = payload;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.append.entries = &e;
    m.append.n_entries = 1;
    for (i = 0; i < 1000; i++) {
        int rv = net_transport_send(a.t, &m);
        ck_assert(rv == 0 || rv == NET_ERR_QUEUE_FULL);
        ok += rv == 0;
        full += rv == NET_ERR_QUEUE_FULL;
    }
    ck_assert_int_gt(full, 0);
    ck_assert_int_eq(net_transport_peer_stats(a.t, 2, &st), 0);
    ck_assert_uint_le(st.queued_bytes, 64 * 1024);
    ck_assert_uint_eq(st.dropped, (uint64_t)full);
    /* Retrying never lets the queue grow either. */
    ck_assert(run_until(many_connects, &a, 10000));
    for (i = 0; i < 1000; i++)
        net_transport_send(a.t, &m);
    ck_assert_int_eq(net_transport_peer_stats(a.t, 2, &st), 0);
    ck_assert_uint_le(st.queued_bytes, 64 * 1024);
    ck_assert(!st.connected);
    ck_assert_int_eq(a.ups, 0);
    free(payload);
    stop_node(&a);
}
END_TEST

START_TEST(test_config_errors)
{
    struct net_transport_config c;
    struct net_transport *t;

    memset(&c, 0, sizeof c);
    c.self = 1;
    c.listen_addr = "127.0.0.1:0";
    ck_assert_int_eq(net_transport_init(&loop, &c, NULL, &t),
                     RAFT_ERR_INVALID); /* no on_message */
    c.on_message = on_message;
    c.listen_addr = "nonsense";
    ck_assert_int_eq(net_transport_init(&loop, &c, NULL, &t),
                     NET_ERR_BAD_ADDR);
    c.listen_addr = "127.0.0.1:0";
    c.frame_max = 1000;
    c.queue_max = 10;
    ck_assert_int_eq(net_transport_init(&loop, &c, NULL, &t),
                     RAFT_ERR_INVALID);
}
END_TEST

START_TEST(test_snapshot_chunks)
{
    static struct node a, b;
    struct raft_message m;
    struct count_goal g = {&b, 3};
    size_t chunk = 1u << 20, i;
    uint8_t *data = malloc(3 * chunk);

    for (i = 0; i < 3 * chunk; i++)
        data[i] = (uint8_t)(i * 7 + i / 4096);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    frame_max = 2 * chunk;
    start_node(&a, 1, 7, 0, 0);
    start_node(&b, 2, 7, 0, 0);
    frame_max = 64 * 1024;
    set_peer(&a, 2, b.port);
    set_peer(&b, 1, a.port);
    for (i = 0; i < 3; i++) {
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_SNAPSHOT;
        m.from = 1;
        m.to = 2;
        m.term = 2;
        m.snapshot.index = 1000;
        m.snapshot.snap_term = 2;
        m.snapshot.config.n = 1;
        m.snapshot.config.servers[0].id = 1;
        m.snapshot.config.servers[0].role = RAFT_VOTER;
        m.snapshot.size = 3 * chunk;
        m.snapshot.offset = i * chunk;
        m.snapshot.chunk_len = (uint32_t)chunk;
        m.snapshot.data.base = data + i * chunk;
        m.snapshot.data.len = chunk;
        m.snapshot.last = i == 2;
        ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    }
    ck_assert(run_until(has_msgs, &g, 10000));
    for (i = 0; i < 3; i++) {
        ck_assert_uint_eq(b.msgs[i].type, RAFT_MSG_SNAPSHOT);
        ck_assert_uint_eq(b.msgs[i].snapshot.offset, i * chunk);
        ck_assert_uint_eq(b.msgs[i].snapshot.data.len, chunk);
        ck_assert(memcmp(b.msgs[i].snapshot.data.base, data + i * chunk,
                         chunk) == 0);
        ck_assert(b.msgs[i].snapshot.last == (i == 2));
    }
    free(data);
    stop_node(&a);
    stop_node(&b);
}
END_TEST

static bool is_up(void *arg)
{
    return ((struct node *)arg)->ups >= 1;
}

START_TEST(test_is_known)
{
    static struct node a, b;
    struct raft_message m;
    struct count_goal g = {&b, 1};
    char name[64];

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    start_node(&a, 1, 7, 0, 0);
    use_is_known = true;
    start_node(&b, 2, 7, 0, 0);
    use_is_known = false;
    /* A host name, resolved off the loop; b never heard of node 1 but
     * accepts it. */
    snprintf(name, sizeof name, "localhost:%u", b.port);
    ck_assert_int_eq(net_transport_set_peer(a.t, 2, name), 0);
    m = heartbeat(1, 2, 5);
    ck_assert_int_eq(net_transport_send(a.t, &m), 0);
    ck_assert(run_until(has_msgs, &g, 10000));
    ck_assert(run_until(is_up, &a, 10000));
    /* Removing a peer refuses nothing on b's side but stops a's sends. */
    ck_assert_int_eq(net_transport_remove_peer(a.t, 2), 0);
    ck_assert_int_eq(net_transport_send(a.t, &m), NET_ERR_UNKNOWN_PEER);
    ck_assert_int_eq(net_transport_remove_peer(a.t, 2), NET_ERR_UNKNOWN_PEER);
    /* Removed or closed while a resolution is in flight. */
    ck_assert_int_eq(net_transport_set_peer(a.t, 5, "no-such-host.invalid:7"),
                     0);
    ck_assert_int_eq(net_transport_set_peer(a.t, 6, "no-such-host.invalid:8"),
                     0);
    ck_assert_int_eq(net_transport_remove_peer(a.t, 5), 0);
    ck_assert_int_eq(net_transport_set_peer(a.t, 7, "bad address"),
                     NET_ERR_BAD_ADDR);
    stop_node(&a);
    stop_node(&b);
}
END_TEST

START_TEST(test_hello_timeout)
{
    static struct node b;
    struct raw r;

    memset(&b, 0, sizeof b);
    hello_timeout = 10;
    start_node(&b, 2, 7, 0, 0);
    hello_timeout = 0;
    /* Connects, says nothing: the sweeper closes it. */
    raw_exchange(&r, b.port, "", 0);
    ck_assert(logged(&b, "no hello from"));
    stop_node(&b);
}
END_TEST

/* A peer that accepts and then never reads. */
static void sink_close_cb(uv_handle_t *h)
{
    free(h);
}

static uv_tcp_t *sink_conn;

static void sink_listen_cb(uv_stream_t *l, int status)
{
    ck_assert_int_eq(status, 0);
    sink_conn = malloc(sizeof *sink_conn);
    uv_tcp_init(&loop, sink_conn);
    ck_assert_int_eq(uv_accept(l, (uv_stream_t *)sink_conn), 0);
}

START_TEST(test_slow_peer_bounded)
{
    static struct node a;
    uv_tcp_t sink;
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof ss, round, i;
    struct raft_message m;
    struct raft_entry e = {1, 1, RAFT_ENTRY_COMMAND, {NULL, 60000}};
    struct net_peer_stats st;
    size_t qmax = 256 * 1024;

    e.data.base = calloc(1, 60000);
    uv_tcp_init(&loop, &sink);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    ck_assert_int_eq(uv_tcp_bind(&sink, (struct sockaddr *)&sa, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&sink, 8, sink_listen_cb), 0);
    uv_tcp_getsockname(&sink, (struct sockaddr *)&ss, &len);
    memset(&a, 0, sizeof a);
    start_node(&a, 1, 7, 0, qmax);
    set_peer(&a, 2, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.append.entries = &e;
    m.append.n_entries = 1;
    /* 40 MB offered: more than the kernel buffers of both ends hold. */
    for (round = 0; round < 700; round++) {
        for (i = 0; i < 1; i++)
            net_transport_send(a.t, &m);
        for (i = 0; i < 3; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        ck_assert_int_eq(net_transport_peer_stats(a.t, 2, &st), 0);
        ck_assert_uint_le(st.queued_bytes, qmax);
    }
    ck_assert_ptr_nonnull(sink_conn);
    ck_assert_uint_gt(st.dropped, 0);
    ck_assert_uint_gt(st.sent_frames, 1);
    ck_assert(!st.connected); /* the sink never answered the Hello */
    free(e.data.base);
    stop_node(&a);
    uv_close((uv_handle_t *)sink_conn, sink_close_cb);
    uv_close((uv_handle_t *)&sink, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    sink_conn = NULL;
}
END_TEST

static Suite *net_transport_suite(void)
{
    Suite *s = suite_create("net_transport");
    TCase *tc;

    tc = tcase_create("exchange");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exchange_in_order);
    tcase_add_test(tc, test_forwards);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_snapshot_chunks);
    suite_add_tcase(s, tc);
    tc = tcase_create("handshake");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_refuse_cluster);
    tcase_add_test(tc, test_refuse_unknown_sender);
    tcase_add_test(tc, test_refuse_wrong_receiver);
    tcase_add_test(tc, test_refuse_version);
    tcase_add_test(tc, test_is_known);
    tcase_add_test(tc, test_hello_timeout);
    suite_add_tcase(s, tc);
    tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_garbage_and_oversized);
    tcase_add_test(tc, test_reconnect);
    tcase_add_test(tc, test_dead_peer_bounded);
    tcase_add_test(tc, test_slow_peer_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(net_transport_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
