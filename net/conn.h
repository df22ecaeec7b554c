/* One framed TCP stream on a libuv loop: read frames, queue and write (internal). */
#ifndef NET_CONN_H
#define NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "codec.h"
#include "frame.h"

#ifndef container_of
#define container_of(ptr, type, member)                                        \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

struct net__conn;

/* A complete frame arrived (bytes valid during the call). A nonzero return
 * closes the connection with that value as the reason. */
typedef int (*net__conn_frame_cb)(struct net__conn *c, const uint8_t *payload,
                                  size_t len);
/* The handle is closed (every write callback has run). `reason` is what was
 * passed to net__conn_close() or the error that closed it (UV_EOF for an
 * orderly end). The owner may free the memory holding `c` now, or
 * net__conn_init() it again. */
typedef void (*net__conn_close_cb)(struct net__conn *c, int reason);

/*
 * The send queue belongs to the struct, not to one TCP connection: it
 * survives net__conn_close() and a later net__conn_init() (an outbound peer
 * keeps what it queued while it reconnects). Frames are written in order,
 * all queued frames in one uv_write per net__conn_flush().
 */
struct net__conn {
    uv_tcp_t tcp;
    struct net__frame_decoder dec;
    struct net__wframe *head; /* queued, not yet handed to uv_write */
    struct net__wframe *tail;
    size_t queued;            /* bytes from head to tail */
    size_t n_queued;          /* frames from head to tail */
    size_t inflight;          /* bytes in uv_write requests not completed */
    uint64_t sent_frames;     /* frames whose write completed */
    int reason;               /* why it is closing */
    bool open;                /* tcp initialised and not closing */
    bool close_after_write;   /* close once the queue is written */
    net__conn_frame_cb on_frame;
    net__conn_close_cb on_close;
    char rbuf[64 * 1024];
};

/* Zeroes the queue. Call once when the owner allocates the struct. */
void net__conn_setup(struct net__conn *c, net__conn_frame_cb on_frame,
                     net__conn_close_cb on_close);

/* uv_tcp_init()s c->tcp and resets the decoder. Returns 0 or a libuv
 * error (then there is nothing to close). */
int net__conn_init(struct net__conn *c, uv_loop_t *loop, size_t frame_max);

/* Sets TCP_NODELAY, keepalive and (if > 0) TCP_USER_TIMEOUT on an open
 * socket. Best effort: failures are ignored. */
void net__conn_tune(struct net__conn *c, unsigned user_timeout_ms);

/* Starts reading. Returns 0 or a libuv error (the caller closes). */
int net__conn_start(struct net__conn *c);

/* Appends (or, front, prepends) f to the queue; the queue owns it. */
void net__conn_push(struct net__conn *c, struct net__wframe *f, bool front);

/* Writes everything queued with one uv_write. Returns 0 or a libuv error
 * (the connection is then closing). No-op while closing or not open. */
int net__conn_flush(struct net__conn *c);

/* Closes the TCP handle (idempotent); on_close runs from its close callback.
 * Writes not completed are cancelled, the queue is kept. */
void net__conn_close(struct net__conn *c, int reason);

/* Stops reading, writes what is queued, then closes (a refusal that must
 * reach the other side before the connection ends). */
void net__conn_close_after_write(struct net__conn *c, int reason);

/* Frees the queue; returns how many frames it held. */
size_t net__conn_drop_queue(struct net__conn *c);

/* "HOST:PORT" of the remote end into buf ("?" if unknown). */
void net__conn_peer_name(struct net__conn *c, char *buf, size_t len);

#endif /* NET_CONN_H */
