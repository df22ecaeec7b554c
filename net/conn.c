/* One framed TCP stream: incremental reads, a write queue, orderly close. */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One uv_write of every frame that was queued when it was issued. */
struct wreq {
    uv_write_t req;
    struct net__conn *c;
    struct net__wframe *frames;
    size_t bytes;
    size_t n;
    uv_buf_t bufs[];
};

void net__conn_setup(struct net__conn *c, net__conn_frame_cb on_frame,
                     net__conn_close_cb on_close)
{
    memset(c, 0, offsetof(struct net__conn, rbuf));
    c->on_frame = on_frame;
    c->on_close = on_close;
}

int net__conn_init(struct net__conn *c, uv_loop_t *loop, size_t frame_max)
{
    int rv = uv_tcp_init(loop, &c->tcp);

    if (rv != 0)
        return rv;
    net__frame_decoder_init(&c->dec, frame_max);
    c->reason = 0;
    c->open = true;
    c->close_after_write = false;
    return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct net__conn *c = container_of(h, struct net__conn, tcp);
    (void)suggested;
    buf->base = c->rbuf;
    buf->len = sizeof c->rbuf;
}

static int frame_cb(void *arg, const uint8_t *payload, size_t len)
{
    struct net__conn *c = arg;
    int rv = c->on_frame(c, payload, len);

    /* The owner may have closed us from inside the callback: ignore the
     * rest of what was read. */
    if (rv == 0 && (!c->open || c->close_after_write))
        rv = NET_ERR_CLOSED;
    return rv;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct net__conn *c = container_of(s, struct net__conn, tcp);
    int rv;

    if (nread == 0)
        return;
    if (nread < 0) {
        /* An end of stream inside a frame is a truncated frame, not an
         * orderly close: the owner logs it as such. */
        if (nread == UV_EOF && !net__frame_idle(&c->dec))
            nread = NET_ERR_TRUNCATED;
        net__conn_close(c, (int)nread);
        return;
    }
    if (!c->open || c->close_after_write)
        return;
    rv = net__frame_feed(&c->dec, (const uint8_t *)buf->base, (size_t)nread,
                         frame_cb, c);
    if (rv != 0 && !c->close_after_write)
        net__conn_close(c, rv);
}

void net__conn_tune(struct net__conn *c, unsigned user_timeout_ms)
{
    uv_os_fd_t fd;

    uv_tcp_nodelay(&c->tcp, 1);
    /* A peer host that vanished without a RST is noticed by keepalive
     * (idle connections) and, for connections we write on, by the user
     * timeout (unacknowledged data), instead of TCP's ~15 minutes. */
    uv_tcp_keepalive(&c->tcp, 1, 10);
#ifdef TCP_USER_TIMEOUT
    if (user_timeout_ms > 0 && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
                   sizeof user_timeout_ms);
#else
    (void)fd;
    (void)user_timeout_ms;
#endif
}

int net__conn_start(struct net__conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

void net__conn_push(struct net__conn *c, struct net__wframe *f, bool front)
{
    if (front) {
        f->next = c->head;
        c->head = f;
        if (c->tail == NULL)
            c->tail = f;
    } else {
        f->next = NULL;
        if (c->tail != NULL)
            c->tail->next = f;
        else
            c->head = f;
        c->tail = f;
    }
    c->queued += f->len;
    c->n_queued++;
}

static void free_frames(struct net__wframe *f)
{
    while (f != NULL) {
        struct net__wframe *next = f->next;
        free(f);
        f = next;
    }
}

size_t net__conn_drop_queue(struct net__conn *c)
{
    size_t n = c->n_queued;

    free_frames(c->head);
    c->head = c->tail = NULL;
    c->queued = 0;
    c->n_queued = 0;
    return n;
}

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = container_of(req, struct wreq, req);
    struct net__conn *c = w->c;

    c->inflight -= w->bytes;
    if (status == 0)
        c->sent_frames += w->n;
    free_frames(w->frames);
    free(w);
    if (status < 0) {
        net__conn_close(c, status);
        return;
    }
    if (c->close_after_write && c->open && c->inflight == 0 &&
        c->head == NULL)
        net__conn_close(c, c->reason);
}

int net__conn_flush(struct net__conn *c)
{
    struct wreq *w;
    struct net__wframe *f;
    size_t i;
    int rv;

    if (!c->open || c->head == NULL)
        return 0;
    w = malloc(sizeof *w + c->n_queued * sizeof(uv_buf_t));
    if (w == NULL) {
        net__conn_close(c, -ENOMEM);
        return -ENOMEM;
    }
    w->c = c;
    w->frames = c->head;
    w->bytes = c->queued;
    w->n = c->n_queued;
    for (f = c->head, i = 0; f != NULL; f = f->next, i++)
        w->bufs[i] = uv_buf_init((char *)f->data, (unsigned)f->len);
    c->head = c->tail = NULL;
    c->queued = 0;
    c->n_queued = 0;
    c->inflight += w->bytes;
    rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs,
                  (unsigned)w->n, write_cb);
    if (rv != 0) {
        c->inflight -= w->bytes;
        free_frames(w->frames);
        free(w);
        net__conn_close(c, rv);
    }
    return rv;
}

static void close_cb(uv_handle_t *h)
{
    struct net__conn *c = container_of(h, struct net__conn, tcp);

    net__frame_decoder_close(&c->dec);
    c->on_close(c, c->reason);
}

void net__conn_close(struct net__conn *c, int reason)
{
    if (!c->open)
        return;
    c->open = false;
    if (c->reason == 0)
        c->reason = reason;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
}

void net__conn_close_after_write(struct net__conn *c, int reason)
{
    if (!c->open)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reason = reason;
    c->close_after_write = true;
    if (c->head != NULL)
        net__conn_flush(c);
    else if (c->inflight == 0)
        net__conn_close(c, reason);
}

void net__conn_peer_name(struct net__conn *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int n = sizeof ss;

    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &n) != 0 ||
        net_addr_format((struct sockaddr *)&ss, buf, len) != 0)
        snprintf(buf, len, "?");
}
