/* Peer transport: lifecycle, outbound connections, backoff and send queues. */
#include "transport.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t prng_next(struct net_transport *t)
{
    /* splitmix64: seeded by the config, no rand(). */
    uint64_t z = (t->prng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Exponential backoff with jitter in [d/2, d]: peers that lost the same node
 * do not all knock at once when it comes back. */
static uint64_t backoff(struct net_transport *t, unsigned attempts)
{
    uint64_t d = t->c.backoff_min_ms;
    unsigned i;

    for (i = 0; i < attempts && d < t->c.backoff_max_ms; i++)
        d *= 2;
    if (d > t->c.backoff_max_ms)
        d = t->c.backoff_max_ms;
    return d / 2 + prng_next(t) % (d / 2 + 1);
}

struct net__peer *net__peer_find(const struct net_transport *t, raft_id id)
{
    struct net__peer *p;

    for (p = t->peers; p != NULL; p = p->next)
        if (p->id == id && !p->removed)
            return p;
    return NULL;
}

static void finish_close(struct net_transport *t)
{
    struct net__peer *p;

    while ((p = t->peers) != NULL) {
        t->peers = p->next;
        net__conn_drop_queue(&p->conn);
        free(p);
    }
    if (t->close_cb != NULL)
        t->close_cb(t, t->data);
    free(t);
}

void net__handle_closed(struct net_transport *t)
{
    t->handles--;
    if (t->closing && t->handles == 0)
        finish_close(t);
}

/* A removed peer is freed once both its handles are closed. */
static void peer_handle_closed(struct net__peer *p)
{
    struct net_transport *t = p->t;
    struct net__peer **pp;

    p->handles--;
    if (p->handles == 0 && p->removed && !t->closing) {
        for (pp = &t->peers; *pp != p; pp = &(*pp)->next)
            ;
        *pp = p->next;
        net__conn_drop_queue(&p->conn);
        free(p);
    }
    net__handle_closed(t);
}

static void peer_connect(struct net__peer *p);

static void timer_cb(uv_timer_t *timer)
{
    struct net__peer *p = container_of(timer, struct net__peer, timer);

    if (p->state == PEER_IDLE && !p->removed && !p->t->closing)
        peer_connect(p);
}

static void timer_close_cb(uv_handle_t *h)
{
    peer_handle_closed(container_of(h, struct net__peer, timer));
}

static void peer_close_cb(struct net__conn *c, int reason)
{
    struct net__peer *p = container_of(c, struct net__peer, conn);
    struct net_transport *t = p->t;
    bool was_up = p->state == PEER_UP;
    size_t dropped;

    p->state = PEER_IDLE;
    if (!t->closing && !p->removed) {
        /* What was queued for a connection that failed is stale by the
         * next attempt; Raft resends what still matters. */
        dropped = net__conn_drop_queue(&p->conn);
        p->stats.dropped += dropped;
        if (was_up || !p->logged_down) {
            NET_LOG(t, was_up ? NET_LOG_WARN : NET_LOG_INFO,
                    "connection to node %llu (%s) %s: %s",
                    (unsigned long long)p->id, p->addr,
                    was_up ? "lost" : "failed", net_strerror(reason));
            p->logged_down = true;
        }
        if (was_up && t->c.on_peer != NULL)
            t->c.on_peer(t, p->id, false);
        uv_timer_start(&p->timer, timer_cb, backoff(t, p->attempts), 0);
        if (p->attempts < 32)
            p->attempts++;
    }
    peer_handle_closed(p);
}

static int peer_frame_cb(struct net__conn *c, const uint8_t *buf, size_t len)
{
    struct net__peer *p = container_of(c, struct net__peer, conn);
    struct net_transport *t = p->t;
    struct net__envelope e;
    int rv = net__decode_envelope(buf, len, &e);

    if (rv != 0)
        return rv;
    if (e.kind != NET__ENV_HELLO_REPLY || p->state != PEER_HELLO) {
        net__envelope_close(&e);
        NET_LOG(t, NET_LOG_WARN,
                "node %llu (%s) sent an unexpected frame on our connection",
                (unsigned long long)p->id, p->addr);
        return NET_ERR_MALFORMED;
    }
    if (!e.hello_reply.accepted) {
        p->stats.refused++;
        NET_LOG(t, NET_LOG_WARN, "node %llu (%s) refused our hello: %s",
                (unsigned long long)p->id, p->addr, e.hello_reply.reason);
        p->logged_down = true; /* said once, with the real reason */
        /* A refusal is a configuration problem: retry slowly. */
        p->attempts = 32;
        return NET_ERR_REFUSED;
    }
    p->state = PEER_UP;
    p->stats.connected = true;
    p->attempts = 0;
    if (p->logged_down)
        NET_LOG(t, NET_LOG_INFO, "connected to node %llu (%s)",
                (unsigned long long)p->id, p->addr);
    p->logged_down = false;
    if (t->c.on_peer != NULL)
        t->c.on_peer(t, p->id, true);
    return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct net__peer *p = container_of(req, struct net__peer, connect_req);
    struct net_transport *t = p->t;
    struct net__hello h = {NET_PROTOCOL_VERSION, t->c.cluster_id, t->c.self,
                           p->id};
    struct net__wframe *f;
    int rv;

    if (status != 0) {
        net__conn_close(&p->conn, status);
        return;
    }
    if (!p->conn.open)
        return;
    net__conn_tune(&p->conn, NET_USER_TIMEOUT_MS);
    rv = net__encode_hello(&h, t->c.frame_max, &f);
    if (rv != 0) {
        net__conn_close(&p->conn, rv);
        return;
    }
    rv = net__conn_start(&p->conn);
    if (rv != 0) {
        free(f);
        net__conn_close(&p->conn, rv);
        return;
    }
    /* Hello goes first; what was queued meanwhile follows in the same
     * write (pipelined: a refusal discards it, Raft resends). */
    net__conn_push(&p->conn, f, true);
    p->state = PEER_HELLO;
    net__conn_flush(&p->conn);
}

static void peer_tcp_connect(struct net__peer *p);

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct net__peer *p = container_of(req, struct net__peer, gai);
    struct net_transport *t = p->t;
    struct addrinfo *ai, *pick = NULL;
    size_t n = 0, k;
    bool ok;

    /* A name may have several addresses (localhost: ::1 and 127.0.0.1):
     * successive attempts rotate through them. */
    for (ai = status == 0 ? res : NULL; ai != NULL; ai = ai->ai_next)
        n++;
    if (n > 0) {
        k = (size_t)(p->stats.connects % n);
        for (pick = res; k > 0; k--)
            pick = pick->ai_next;
    }
    ok = pick != NULL && pick->ai_addrlen <= sizeof p->sa;
    p->resolving = false;
    if (ok) {
        memcpy(&p->sa, pick->ai_addr, pick->ai_addrlen);
        if (pick->ai_family == AF_INET6)
            ((struct sockaddr_in6 *)&p->sa)->sin6_port =
                htons((uint16_t)p->port);
        else
            ((struct sockaddr_in *)&p->sa)->sin_port = htons((uint16_t)p->port);
    }
    uv_freeaddrinfo(res); /* NULL on error */
    if (!p->removed && !t->closing) {
        if (ok) {
            peer_tcp_connect(p);
        } else {
            if (!p->logged_down)
                NET_LOG(t, NET_LOG_WARN, "cannot resolve node %llu (%s): %s",
                        (unsigned long long)p->id, p->addr,
                        status != 0 ? uv_strerror(status) : "no address");
            p->logged_down = true;
            uv_timer_start(&p->timer, timer_cb, backoff(t, p->attempts), 0);
            if (p->attempts < 32)
                p->attempts++;
        }
    }
    peer_handle_closed(p); /* the request counted as a handle; p may go */
}

/* A name is resolved afresh before every attempt (off the loop thread, by
 * libuv's pool), so a node that moved is found again. */
static void peer_connect(struct net__peer *p)
{
    struct net_transport *t = p->t;
    struct addrinfo hints;
    char port[8];
    int rv;

    if (p->host[0] == '\0') {
        peer_tcp_connect(p);
        return;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%u", p->port);
    rv = uv_getaddrinfo(t->loop, &p->gai, gai_cb, p->host, port, &hints);
    if (rv != 0) {
        NET_LOG(t, NET_LOG_ERROR, "cannot resolve node %llu (%s): %s",
                (unsigned long long)p->id, p->addr, uv_strerror(rv));
        uv_timer_start(&p->timer, timer_cb, t->c.backoff_max_ms, 0);
        return;
    }
    p->resolving = true;
    p->handles++;
    t->handles++;
}

static void peer_tcp_connect(struct net__peer *p)
{
    struct net_transport *t = p->t;
    int rv;

    rv = net__conn_init(&p->conn, t->loop, t->c.frame_max);
    if (rv != 0) {
        NET_LOG(t, NET_LOG_ERROR, "cannot create a socket for node %llu: %s",
                (unsigned long long)p->id, uv_strerror(rv));
        uv_timer_start(&p->timer, timer_cb, t->c.backoff_max_ms, 0);
        return;
    }
    p->handles++;
    t->handles++;
    p->stats.connects++;
    p->state = PEER_CONNECTING;
    rv = uv_tcp_connect(&p->connect_req, &p->conn.tcp,
                        (const struct sockaddr *)&p->sa, connect_cb);
    if (rv != 0)
        net__conn_close(&p->conn, rv);
}

/* Closes whatever the peer has open; peer_handle_closed() frees it. */
static void peer_shutdown(struct net__peer *p)
{
    if (p->resolving)
        uv_cancel((uv_req_t *)&p->gai); /* gai_cb runs either way */
    uv_timer_stop(&p->timer);
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, timer_close_cb);
    net__conn_close(&p->conn, NET_ERR_CLOSED);
}

int net_transport_set_peer(struct net_transport *t, raft_id id,
                           const char *addr)
{
    struct net__peer *p;
    struct sockaddr_storage sa;
    char err[128], host[RAFT_ADDR_MAX] = "";
    unsigned port;
    int rv;

    if (id == 0 || id == t->c.self || t->closing)
        return RAFT_ERR_INVALID;
    rv = net_addr_check(addr, err, sizeof err);
    if (rv == 0)
        rv = net__addr_literal(addr, &sa, host, sizeof host, &port);
    if (rv < 0) {
        NET_LOG(t, NET_LOG_ERROR, "node %llu: %s", (unsigned long long)id,
                err);
        return rv;
    }
    p = net__peer_find(t, id);
    if (p != NULL) {
        if (strcmp(p->addr, addr) == 0)
            return 0;
        /* Moved: forget the old one, start afresh at the new address. */
        p->removed = true;
        peer_shutdown(p);
    }
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->t = t;
    p->id = id;
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    if (rv == 1) {
        snprintf(p->host, sizeof p->host, "%s", host);
        p->port = port;
    } else {
        p->sa = sa;
    }
    net__conn_setup(&p->conn, peer_frame_cb, peer_close_cb);
    uv_timer_init(t->loop, &p->timer);
    p->handles = 1;
    t->handles++;
    p->next = t->peers;
    t->peers = p;
    peer_connect(p);
    return 0;
}

int net_transport_remove_peer(struct net_transport *t, raft_id id)
{
    struct net__peer *p = net__peer_find(t, id);

    if (p == NULL)
        return NET_ERR_UNKNOWN_PEER;
    p->removed = true;
    peer_shutdown(p);
    return 0;
}

static void flush_cb(uv_idle_t *h);

/* Queues a frame for `to`, or drops it when the queue is full. */
static int enqueue(struct net_transport *t, raft_id to, int rv,
                   struct net__wframe *f)
{
    struct net__peer *p = net__peer_find(t, to);

    if (rv != 0) {
        if (p != NULL && rv == NET_ERR_FRAME_TOO_BIG)
            p->stats.dropped++;
        return rv;
    }
    if (p == NULL || t->closing) {
        free(f);
        return NET_ERR_UNKNOWN_PEER;
    }
    if (p->conn.queued + p->conn.inflight + f->len > t->c.queue_max) {
        free(f);
        p->stats.dropped++;
        return NET_ERR_QUEUE_FULL;
    }
    net__conn_push(&p->conn, f, false);
    if (!uv_is_active((uv_handle_t *)&t->flusher))
        uv_idle_start(&t->flusher, flush_cb);
    return 0;
}

int net_transport_send(struct net_transport *t, const struct raft_message *m)
{
    struct net__wframe *f = NULL;

    if (net__peer_find(t, m->to) == NULL)
        return NET_ERR_UNKNOWN_PEER;
    int rv = net__encode_raft(m, t->c.frame_max, &f);
    return enqueue(t, m->to, rv, f);
}

int net_transport_forward(struct net_transport *t, raft_id to,
                          const struct net_forward *fw)
{
    struct net__wframe *f = NULL;

    if (net__peer_find(t, to) == NULL)
        return NET_ERR_UNKNOWN_PEER;
    int rv = net__encode_forward(fw, t->c.frame_max, &f);
    return enqueue(t, to, rv, f);
}

int net_transport_forward_result(struct net_transport *t, raft_id to,
                                 const struct net_forward_result *r)
{
    struct net__wframe *f = NULL;

    if (net__peer_find(t, to) == NULL)
        return NET_ERR_UNKNOWN_PEER;
    int rv = net__encode_forward_result(r, t->c.frame_max, &f);
    return enqueue(t, to, rv, f);
}

int net_transport_peer_stats(const struct net_transport *t, raft_id id,
                             struct net_peer_stats *out)
{
    const struct net__peer *p = net__peer_find(t, id);

    if (p == NULL)
        return NET_ERR_UNKNOWN_PEER;
    *out = p->stats;
    out->connected = p->state == PEER_UP;
    out->queued_bytes = p->conn.queued + p->conn.inflight;
    out->sent_frames = p->conn.sent_frames;
    return 0;
}

/* Everything queued since the last flush leaves in one write per peer
 * (frames for a peer still connecting wait for its connect callback). */
void net_transport_flush(struct net_transport *t)
{
    struct net__peer *p;

    if (!uv_is_active((uv_handle_t *)&t->flusher))
        return; /* nothing queued since the last flush */
    uv_idle_stop(&t->flusher);
    for (p = t->peers; p != NULL; p = p->next)
        if (p->state == PEER_HELLO || p->state == PEER_UP)
            net__conn_flush(&p->conn);
}

static void flush_cb(uv_idle_t *h)
{
    net_transport_flush(container_of(h, struct net_transport, flusher));
}

static void sweep_cb(uv_timer_t *h)
{
    net__inbound_sweep(container_of(h, struct net_transport, sweeper));
}

static void listen_cb(uv_stream_t *s, int status)
{
    struct net_transport *t = container_of(s, struct net_transport, listener);

    if (status != 0) {
        NET_LOG(t, NET_LOG_WARN, "accept failed: %s", uv_strerror(status));
        return;
    }
    net__inbound_accept(t);
}

static void handle_close_cb(uv_handle_t *h)
{
    net__handle_closed(h->data);
}

int net_transport_init(uv_loop_t *loop, const struct net_transport_config *c,
                       void *data, struct net_transport **out)
{
    struct net_transport *t;
    struct sockaddr_storage sa;
    char err[128];
    int rv;

    if (c->on_message == NULL || c->self == 0 || c->listen_addr == NULL)
        return RAFT_ERR_INVALID;
    rv = net_addr_parse(c->listen_addr, &sa, err, sizeof err);
    if (rv != 0) {
        net__log(c->log, c->log_data, NET_LOG_ERROR, "listen address: %s",
                 err);
        return rv;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    t->loop = loop;
    t->c = *c;
    snprintf(t->listen_addr, sizeof t->listen_addr, "%s", c->listen_addr);
    t->c.listen_addr = t->listen_addr;
    if (t->c.frame_max == 0)
        t->c.frame_max = NET_FRAME_MAX_DEFAULT;
    if (t->c.queue_max == 0)
        t->c.queue_max = NET_QUEUE_MAX_DEFAULT;
    if (t->c.backoff_min_ms == 0)
        t->c.backoff_min_ms = NET_BACKOFF_MIN_DEFAULT;
    if (t->c.backoff_max_ms == 0)
        t->c.backoff_max_ms = NET_BACKOFF_MAX_DEFAULT;
    if (t->c.hello_timeout_ms == 0)
        t->c.hello_timeout_ms = NET_HELLO_TIMEOUT_DEFAULT;
    if (t->c.queue_max < t->c.frame_max ||
        t->c.backoff_max_ms < t->c.backoff_min_ms ||
        t->c.frame_max > UINT32_MAX) {
        free(t);
        return RAFT_ERR_INVALID;
    }
    t->data = data;
    t->prng = c->seed ^ (c->self * 0xd1b54a32d192ed03ull);
    rv = uv_tcp_init(loop, &t->listener);
    if (rv != 0) {
        free(t);
        return rv;
    }
    t->listener.data = t;
    rv = uv_tcp_bind(&t->listener, (const struct sockaddr *)&sa, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&t->listener, 128, listen_cb);
    if (rv != 0) {
        /* Nothing else exists yet: close the listener and free in its
         * callback, which runs on the next loop iteration. */
        net__log(c->log, c->log_data, NET_LOG_ERROR, "cannot listen on %s: %s",
                 t->listen_addr, uv_strerror(rv));
        t->closing = true;
        t->handles = 1;
        uv_close((uv_handle_t *)&t->listener, handle_close_cb);
        return rv;
    }
    uv_idle_init(loop, &t->flusher);
    t->flusher.data = t;
    uv_timer_init(loop, &t->sweeper);
    t->sweeper.data = t;
    uv_timer_start(&t->sweeper, sweep_cb, 1000, 1000);
    uv_unref((uv_handle_t *)&t->sweeper);
    t->handles = 3;
    *out = t;
    return 0;
}

void net_transport_close(struct net_transport *t,
                         void (*cb)(struct net_transport *t, void *data))
{
    struct net__peer *p;
    struct net__inbound *in;

    t->closing = true;
    t->close_cb = cb;
    for (p = t->peers; p != NULL; p = p->next)
        peer_shutdown(p);
    for (in = t->inbound; in != NULL; in = in->next)
        net__conn_close(&in->conn, NET_ERR_CLOSED);
    uv_close((uv_handle_t *)&t->listener, handle_close_cb);
    uv_close((uv_handle_t *)&t->flusher, handle_close_cb);
    uv_close((uv_handle_t *)&t->sweeper, handle_close_cb);
}

void *net_transport_data(const struct net_transport *t)
{
    return t->data;
}

int net_transport_local_addr(const struct net_transport *t,
                             struct sockaddr_storage *out)
{
    int n = sizeof *out;
    return uv_tcp_getsockname(&t->listener, (struct sockaddr *)out, &n);
}
