/* Peer transport, receiving side: accept, check the Hello, deliver frames. */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>

static void unlink_inbound(struct net__inbound *in)
{
    struct net_transport *t = in->t;

    if (in->prev != NULL)
        in->prev->next = in->next;
    else
        t->inbound = in->next;
    if (in->next != NULL)
        in->next->prev = in->prev;
}

static void inbound_close_cb(struct net__conn *c, int reason)
{
    struct net__inbound *in = container_of(c, struct net__inbound, conn);
    struct net_transport *t = in->t;

    if (!t->closing) {
        /* One line per closed connection: an orderly end is routine, any
         * other reason (garbage, oversized frame, refusal) is worth a
         * warning. A refusal was logged with its reason already. */
        if (reason != NET_ERR_REFUSED)
            NET_LOG(t,
                    reason == UV_EOF || reason == NET_ERR_CLOSED
                        ? NET_LOG_DEBUG
                        : NET_LOG_WARN,
                    "closed connection from %s (node %llu): %s", in->name,
                    (unsigned long long)in->id,
                    reason == UV_EOF ? "end of stream" : net_strerror(reason));
    }
    unlink_inbound(in);
    net__conn_drop_queue(&in->conn);
    free(in);
    net__handle_closed(t);
}

static bool is_known(struct net_transport *t, raft_id id)
{
    if (id == 0 || id == t->c.self)
        return false;
    if (net__peer_find(t, id) != NULL)
        return true;
    return t->c.is_known != NULL && t->c.is_known(t, id);
}

static int reply(struct net__inbound *in, bool accepted, const char *reason)
{
    struct net__wframe *f;
    int rv = net__encode_hello_reply(accepted, reason, in->t->c.frame_max, &f);

    if (rv != 0)
        return rv;
    net__conn_push(&in->conn, f, false);
    return net__conn_flush(&in->conn);
}

/* The first frame: refuse (reply, log, close) or accept the Hello. */
static int on_hello(struct net__inbound *in, const struct net__envelope *e)
{
    struct net_transport *t = in->t;
    const struct net__hello *h = &e->hello;
    struct net__inbound *other;
    char why[160];

    if (e->kind != NET__ENV_HELLO)
        snprintf(why, sizeof why, "expected a hello first");
    else if (h->version != NET_PROTOCOL_VERSION)
        snprintf(why, sizeof why, "protocol version %u, this node speaks %u",
                 h->version, NET_PROTOCOL_VERSION);
    else if (h->cluster_id != t->c.cluster_id)
        snprintf(why, sizeof why, "cluster id %llu, this node is in %llu",
                 (unsigned long long)h->cluster_id,
                 (unsigned long long)t->c.cluster_id);
    else if (h->to != t->c.self)
        snprintf(why, sizeof why, "hello meant for node %llu, this is %llu",
                 (unsigned long long)h->to, (unsigned long long)t->c.self);
    else if (!is_known(t, h->from))
        snprintf(why, sizeof why, "unknown node id %llu",
                 (unsigned long long)h->from);
    else
        why[0] = '\0';
    if (why[0] != '\0') {
        NET_LOG(t, NET_LOG_WARN, "refused peer connection from %s: %s",
                in->name, why);
        reply(in, false, why);
        net__conn_close_after_write(&in->conn, NET_ERR_REFUSED);
        return 0;
    }
    in->id = h->from;
    /* A peer that reconnects (it restarted, or its connection broke on its
     * side first) replaces its older connections. */
    for (other = t->inbound; other != NULL; other = other->next)
        if (other != in && other->id == in->id)
            net__conn_close(&other->conn, NET_ERR_CLOSED);
    NET_LOG(t, NET_LOG_DEBUG, "accepted node %llu from %s",
            (unsigned long long)in->id, in->name);
    return reply(in, true, NULL);
}

static int inbound_frame_cb(struct net__conn *c, const uint8_t *buf,
                            size_t len)
{
    struct net__inbound *in = container_of(c, struct net__inbound, conn);
    struct net_transport *t = in->t;
    struct net__envelope e;
    int rv = net__decode_envelope(buf, len, &e);

    if (rv != 0 || t->closing)
        return rv != 0 ? rv : NET_ERR_CLOSED;
    if (in->id == 0) {
        rv = on_hello(in, &e);
        net__envelope_close(&e);
        return rv;
    }
    switch (e.kind) {
    case NET__ENV_RAFT:
        /* The Hello named the sender: a frame must not speak for another
         * node, nor be meant for one. */
        if (e.raft.from != in->id || e.raft.to != t->c.self) {
            net__envelope_close(&e);
            return NET_ERR_MALFORMED;
        }
        t->c.on_message(t, in->id, &e.raft); /* hands the contents over */
        return 0;
    case NET__ENV_FORWARD:
        if (t->c.on_forward != NULL)
            t->c.on_forward(t, in->id, &e.forward);
        net__envelope_close(&e);
        return 0;
    case NET__ENV_FORWARD_RESULT:
        if (t->c.on_forward_result != NULL)
            t->c.on_forward_result(t, in->id, &e.result);
        return 0;
    default:
        net__envelope_close(&e);
        return NET_ERR_MALFORMED;
    }
}

void net__inbound_accept(struct net_transport *t)
{
    struct net__inbound *in = calloc(1, sizeof *in);
    int rv;

    if (in == NULL) {
        NET_LOG(t, NET_LOG_ERROR, "out of memory accepting a connection");
        return;
    }
    in->t = t;
    net__conn_setup(&in->conn, inbound_frame_cb, inbound_close_cb);
    rv = net__conn_init(&in->conn, t->loop, t->c.frame_max);
    if (rv != 0) {
        NET_LOG(t, NET_LOG_ERROR, "cannot accept: %s", uv_strerror(rv));
        free(in);
        return;
    }
    t->handles++;
    in->next = t->inbound;
    if (in->next != NULL)
        in->next->prev = in;
    t->inbound = in;
    in->deadline = uv_now(t->loop) + t->c.hello_timeout_ms;
    rv = uv_accept((uv_stream_t *)&t->listener, (uv_stream_t *)&in->conn.tcp);
    if (rv == 0) {
        net__conn_peer_name(&in->conn, in->name, sizeof in->name);
        net__conn_tune(&in->conn, 0);
        rv = net__conn_start(&in->conn);
    }
    if (rv != 0)
        net__conn_close(&in->conn, rv);
}

void net__inbound_sweep(struct net_transport *t)
{
    struct net__inbound *in;
    uint64_t now = uv_now(t->loop);

    for (in = t->inbound; in != NULL; in = in->next) {
        if (in->id == 0 && in->conn.open && now >= in->deadline) {
            NET_LOG(t, NET_LOG_WARN, "no hello from %s in %u ms", in->name,
                    t->c.hello_timeout_ms);
            net__conn_close(&in->conn, NET_ERR_TIMEOUT);
        }
    }
}
