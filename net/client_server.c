/* The client port: accept raftfsctl connections, decode requests, reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "net.h"

struct cconn;

/* Handed to the driver with each request; lives until net_client_reply(). */
struct net_client_handle {
    struct cconn *c; /* NULL once the connection closed */
    uint64_t id;
    struct net_client_handle *prev;
    struct net_client_handle *next;
};

struct cconn {
    struct net_client_server *s;
    struct net__conn conn;
    struct net_client_handle *pending; /* handles not yet replied to */
    char name[64];
    struct cconn *prev;
    struct cconn *next;
};

struct net_client_server {
    uv_loop_t *loop;
    struct net_client_server_config c;
    void *data;
    uv_tcp_t listener;
    uv_idle_t flusher; /* started by a reply: see net/transport.h */
    struct cconn *conns;
    unsigned handles;
    bool closing;
    void (*close_cb)(struct net_client_server *s, void *data);
};

#define SLOG(s, level, ...)                                                    \
    net__log((s)->c.log, (s)->c.log_data, level, __VA_ARGS__)

static void handle_closed(struct net_client_server *s)
{
    s->handles--;
    if (s->closing && s->handles == 0) {
        if (s->close_cb != NULL)
            s->close_cb(s, s->data);
        free(s);
    }
}

static void cconn_close_cb(struct net__conn *nc, int reason)
{
    struct cconn *c = container_of(nc, struct cconn, conn);
    struct net_client_server *s = c->s;
    struct net_client_handle *h;

    if (!s->closing && reason != UV_EOF && reason != NET_ERR_CLOSED)
        SLOG(s, NET_LOG_WARN, "closed client connection from %s: %s",
             c->name, net_strerror(reason));
    /* Pending handles stay valid; their replies are dropped. */
    for (h = c->pending; h != NULL; h = h->next)
        h->c = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    net__conn_drop_queue(&c->conn);
    free(c);
    handle_closed(s);
}

static int cconn_frame_cb(struct net__conn *nc, const uint8_t *buf,
                          size_t len)
{
    struct cconn *c = container_of(nc, struct cconn, conn);
    struct net_client_server *s = c->s;
    struct net_client_handle *h;
    struct net_client_req *req;
    int rv;

    if (s->closing)
        return NET_ERR_CLOSED;
    req = malloc(sizeof *req);
    h = malloc(sizeof *h);
    if (req == NULL || h == NULL) {
        free(req);
        free(h);
        return -ENOMEM;
    }
    rv = net__decode_client_req(buf, len, req);
    if (rv != 0) {
        free(req);
        free(h);
        return rv;
    }
    h->c = c;
    h->id = req->id;
    h->prev = NULL;
    h->next = c->pending;
    if (h->next != NULL)
        h->next->prev = h;
    c->pending = h;
    s->c.on_request(s, h, req);
    net__client_req_close(req);
    free(req);
    return 0;
}

static void flush_cb(uv_idle_t *p);

int net_client_reply(struct net_client_handle *h,
                     const struct net_client_resp *resp)
{
    struct cconn *c = h->c;
    struct net__wframe *f;
    int rv;

    if (c == NULL) {
        free(h);
        return NET_ERR_CLOSED;
    }
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        c->pending = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    rv = net__encode_client_resp(resp, h->id, c->s->c.frame_max, &f);
    free(h);
    if (rv != 0) {
        SLOG(c->s, NET_LOG_ERROR, "cannot encode a reply to %s: %s", c->name,
             net_strerror(rv));
        net__conn_close(&c->conn, rv);
        return rv;
    }
    net__conn_push(&c->conn, f, false);
    if (!uv_is_active((uv_handle_t *)&c->s->flusher))
        uv_idle_start(&c->s->flusher, flush_cb);
    return 0;
}

static void flush_cb(uv_idle_t *p)
{
    struct net_client_server *s = p->data;
    struct cconn *c;

    uv_idle_stop(p);
    for (c = s->conns; c != NULL; c = c->next)
        net__conn_flush(&c->conn);
}

static void listen_cb(uv_stream_t *l, int status)
{
    struct net_client_server *s = l->data;
    struct cconn *c;
    int rv;

    if (status != 0) {
        SLOG(s, NET_LOG_WARN, "accept failed: %s", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->s = s;
    net__conn_setup(&c->conn, cconn_frame_cb, cconn_close_cb);
    rv = net__conn_init(&c->conn, s->loop, s->c.frame_max);
    if (rv != 0) {
        free(c);
        return;
    }
    s->handles++;
    c->next = s->conns;
    if (c->next != NULL)
        c->next->prev = c;
    s->conns = c;
    rv = uv_accept(l, (uv_stream_t *)&c->conn.tcp);
    if (rv == 0) {
        net__conn_peer_name(&c->conn, c->name, sizeof c->name);
        net__conn_tune(&c->conn, 0);
        rv = net__conn_start(&c->conn);
    }
    if (rv != 0)
        net__conn_close(&c->conn, rv);
}

static void close_handle_cb(uv_handle_t *h)
{
    handle_closed(h->data);
}

int net_client_server_init(uv_loop_t *loop,
                           const struct net_client_server_config *c,
                           void *data, struct net_client_server **out)
{
    struct net_client_server *s;
    struct sockaddr_storage sa;
    char err[128];
    int rv;

    if (c->on_request == NULL || c->listen_addr == NULL)
        return RAFT_ERR_INVALID;
    rv = net_addr_parse(c->listen_addr, &sa, err, sizeof err);
    if (rv != 0) {
        net__log(c->log, c->log_data, NET_LOG_ERROR,
                 "client listen address: %s", err);
        return rv;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->c = *c;
    s->c.listen_addr = NULL; /* not kept */
    if (s->c.frame_max == 0)
        s->c.frame_max = NET_FRAME_MAX_DEFAULT;
    s->data = data;
    rv = uv_tcp_init(loop, &s->listener);
    if (rv != 0) {
        free(s);
        return rv;
    }
    s->listener.data = s;
    rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->listener, 128, listen_cb);
    if (rv != 0) {
        net__log(c->log, c->log_data, NET_LOG_ERROR,
                 "cannot listen on %s: %s", c->listen_addr, uv_strerror(rv));
        s->closing = true;
        s->handles = 1;
        uv_close((uv_handle_t *)&s->listener, close_handle_cb);
        return rv;
    }
    uv_idle_init(loop, &s->flusher);
    s->flusher.data = s;
    s->handles = 2;
    *out = s;
    return 0;
}

void net_client_server_close(struct net_client_server *s,
                             void (*cb)(struct net_client_server *s,
                                        void *data))
{
    struct cconn *c;

    s->closing = true;
    s->close_cb = cb;
    for (c = s->conns; c != NULL; c = c->next)
        net__conn_close(&c->conn, NET_ERR_CLOSED);
    uv_close((uv_handle_t *)&s->listener, close_handle_cb);
    uv_close((uv_handle_t *)&s->flusher, close_handle_cb);
}

size_t net_client_server_connections(const struct net_client_server *s)
{
    const struct cconn *c;
    size_t n = 0;

    for (c = s->conns; c != NULL; c = c->next)
        n++;
    return n;
}

void *net_client_server_data(const struct net_client_server *s)
{
    return s->data;
}

int net_client_server_local_addr(const struct net_client_server *s,
                                 struct sockaddr_storage *out)
{
    int n = sizeof *out;
    return uv_tcp_getsockname(&s->listener, (struct sockaddr *)out, &n);
}
