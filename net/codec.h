/* Wire codec of net/: plain structs <-> protobuf-c frames (internal). */
#ifndef NET_CODEC_H
#define NET_CODEC_H

/*
 * Encoders produce a ready-to-write frame (header + payload, net/frame.h) in
 * one malloc'd struct net__wframe, owned by the caller. Decoders take one
 * frame payload, validate everything a peer or client could get wrong, and
 * fill plain structs that own their memory; on any error they return
 * NET_ERR_MALFORMED (or -ENOMEM) and leave nothing allocated.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

/* Upper bound of entries in one decoded AppendEntries. */
#define NET_MAX_ENTRIES (1u << 20)

/* A frame waiting in a send queue: data[0..len) is header + payload. */
struct net__wframe {
    struct net__wframe *next;
    size_t len;
    uint8_t data[];
};

struct net__hello {
    uint32_t version;
    uint64_t cluster_id;
    raft_id from;
    raft_id to;
};

enum net__env_kind {
    NET__ENV_HELLO = 1,
    NET__ENV_HELLO_REPLY,
    NET__ENV_RAFT,
    NET__ENV_FORWARD,
    NET__ENV_FORWARD_RESULT,
};

/* A decoded peer frame. Release with net__envelope_close(). */
struct net__envelope {
    int kind; /* enum net__env_kind */
    union {
        struct net__hello hello;
        struct {
            bool accepted;
            char reason[NET_MESSAGE_MAX];
        } hello_reply;
        struct raft_message raft;     /* owns entries / snapshot data */
        struct net_forward forward;   /* owns command.base */
        struct net_forward_result result;
    };
};

/* Peer frames. frame_max bounds the payload: NET_ERR_FRAME_TOO_BIG. */
int net__encode_hello(const struct net__hello *h, size_t frame_max,
                      struct net__wframe **out);
int net__encode_hello_reply(bool accepted, const char *reason,
                            size_t frame_max, struct net__wframe **out);
int net__encode_raft(const struct raft_message *m, size_t frame_max,
                     struct net__wframe **out);
int net__encode_forward(const struct net_forward *f, size_t frame_max,
                        struct net__wframe **out);
int net__encode_forward_result(const struct net_forward_result *r,
                               size_t frame_max, struct net__wframe **out);

int net__decode_envelope(const uint8_t *buf, size_t len,
                         struct net__envelope *out);
/* Frees what a decoded envelope owns. Safe on a zeroed envelope. */
void net__envelope_close(struct net__envelope *e);

/* Frees what a message owns, exactly as raft_message_close() does
 * (malloc'd entries array, each entry's data, snapshot data). */
void net__message_free(struct raft_message *m);

/* Client frames. A decoded request owns value.base: release it with
 * net__client_req_close(). A decoded response is released with
 * net_client_resp_close(). */
int net__encode_client_req(const struct net_client_req *r, size_t frame_max,
                           struct net__wframe **out);
int net__decode_client_req(const uint8_t *buf, size_t len,
                           struct net_client_req *out);
void net__client_req_close(struct net_client_req *r);
int net__encode_client_resp(const struct net_client_resp *r, uint64_t id,
                            size_t frame_max, struct net__wframe **out);
int net__decode_client_resp(const uint8_t *buf, size_t len,
                            struct net_client_resp *out);

/* Packs any protobuf-c message (a `const ProtobufCMessage *`, passed as
 * void to keep protobuf-c out of this header) into a new frame: 0,
 * NET_ERR_FRAME_TOO_BIG or -ENOMEM. */
int net__pack(const void *msg, size_t frame_max, struct net__wframe **out);

/* Parses a "HOST:PORT" whose host is an IP literal into *out and returns
 * 0; returns 1 and copies the host name into host (and *port) when the host
 * is a name to resolve; NET_ERR_BAD_ADDR on bad syntax. Never blocks. */
int net__addr_literal(const char *s, struct sockaddr_storage *out,
                      char *host, size_t hostcap, unsigned *port);

/* Logging helper: formats one line and hands it to fn (or stderr). */
void net__log(net_log_fn fn, void *data, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif /* NET_CODEC_H */
