/* Public API of net/: peer transport, client port, addresses, wire errors. */
#ifndef NET_H
#define NET_H

/*
 * Everything here runs on one libuv loop (the daemon's) and never blocks it,
 * except where a declaration says so (address resolution of host names and
 * the blocking CLI client, both meant for startup or for raftfsctl).
 *
 * Ownership, in one sentence per direction:
 *  - what the caller passes in (messages to send, replies, configs) stays
 *    the caller's: net/ encodes or copies it before returning;
 *  - what net/ hands to a callback is described on that callback (a decoded
 *    raft message is handed over; everything else is borrowed for the
 *    duration of the call).
 *
 * The byte layout on the wire (u32 length + protobuf payload) is drawn in
 * net/frame.h; the schemas are proto/peer.proto and proto/client.proto.
 * No protobuf-c type appears in this header.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "raft.h"

/* Bumped on any incompatible change of proto/peer.proto. */
#define NET_PROTOCOL_VERSION 1

#define NET_FRAME_MAX_DEFAULT (8u << 20)        /* bytes of one frame */
#define NET_QUEUE_MAX_DEFAULT (32u << 20)       /* bytes queued per peer */
#define NET_BACKOFF_MIN_DEFAULT 100             /* ms */
#define NET_BACKOFF_MAX_DEFAULT 5000            /* ms */
#define NET_HELLO_TIMEOUT_DEFAULT 10000         /* ms for an inbound Hello */
#define NET_PATH_MAX 4096                       /* client paths, w/o NUL */
#define NET_NAME_MAX 255                        /* one directory entry name */
#define NET_MESSAGE_MAX 256                     /* client text, with NUL */
#define NET_DIR_MAX 65536                       /* entries in one ls answer */

/* Domain errors of net/: negative, outside errno and RAFT_ERR_* ranges. */
#define NET_ERRORS(X)                                                          \
    X(MALFORMED, 2001, "malformed or invalid message")                         \
    X(FRAME_TOO_BIG, 2002, "frame larger than the maximum frame size")         \
    X(BAD_ADDR, 2003, "bad address")                                           \
    X(UNKNOWN_PEER, 2004, "unknown peer")                                      \
    X(QUEUE_FULL, 2005, "send queue full, message dropped")                    \
    X(CLOSED, 2006, "connection closed")                                       \
    X(UNAVAILABLE, 2007, "no endpoint reachable")                              \
    X(REFUSED, 2008, "handshake refused")                                      \
    X(TIMEOUT, 2009, "timed out")                                              \
    X(TRUNCATED, 2010, "connection ended in the middle of a frame")

enum {
#define NET_ERR_ENUM(name, num, text) NET_ERR_##name = -(num),
    NET_ERRORS(NET_ERR_ENUM)
#undef NET_ERR_ENUM
};

/* Returns a static string for a NET_ERR_* code or a -errno value (for
 * RAFT_ERR_* codes use raft_strerror()). */
const char *net_strerror(int rv);

enum net_log_level {
    NET_LOG_DEBUG = 1,
    NET_LOG_INFO,
    NET_LOG_WARN,
    NET_LOG_ERROR,
};

/* A log sink: `line` is one line without newline, valid during the call.
 * When a config leaves it NULL, lines go to stderr prefixed with "net: ". */
typedef void (*net_log_fn)(void *data, int level, const char *line);

/*
 * Addresses.
 */

/*
 * Parses "HOST:PORT" or "[V6]:PORT" into *out. HOST may be an IPv4 or IPv6
 * literal or a name; a name is resolved with getaddrinfo() and so may BLOCK
 * (call it at startup or off the loop). Returns 0, or NET_ERR_BAD_ADDR with a
 * NUL-terminated reason in err (if err != NULL, at most errlen bytes).
 */
int net_addr_parse(const char *s, struct sockaddr_storage *out, char *err,
                   size_t errlen);

/* Like net_addr_parse() but checks the syntax only (no resolution): a
 * non-empty host, a port in 1..65535, brackets around IPv6 literals,
 * a length below RAFT_ADDR_MAX. */
int net_addr_check(const char *s, char *err, size_t errlen);

/* Formats a socket address as "HOST:PORT" / "[V6]:PORT" into buf. */
int net_addr_format(const struct sockaddr *sa, char *buf, size_t len);

struct net_peer_addr {
    raft_id id;
    char addr[RAFT_ADDR_MAX];
};

/*
 * Parses "1=HOST:PORT,2=HOST:PORT" (the daemon's --peers). Ids are positive
 * and distinct, addresses pass net_addr_check(). Fills out[0..*n), at most
 * cap entries. Returns 0, or NET_ERR_BAD_ADDR with a reason in err.
 */
int net_peers_parse(const char *s, struct net_peer_addr *out, size_t cap,
                    size_t *n, char *err, size_t errlen);

/*
 * Forwards: a follower hands a client operation to the leader over the
 * peer connection; the leader answers with a result carrying the same
 * req_id (the follower's own id space).
 */
enum net_forward_op {
    NET_FORWARD_PROPOSE = 1, /* command: a store command to propose */
    NET_FORWARD_CHANGE,      /* change_op, id, addr: raft_change() */
    NET_FORWARD_TRANSFER,    /* id: raft_transfer() target, 0 = any */
};

struct net_forward {
    uint64_t req_id;
    uint8_t op;             /* enum net_forward_op */
    struct raft_buf command; /* PROPOSE; see the callback for ownership */
    uint8_t change_op;      /* CHANGE: enum raft_change_op */
    raft_id id;             /* CHANGE: the server; TRANSFER: the target */
    char addr[RAFT_ADDR_MAX]; /* CHANGE: the server's address, may be "" */
};

struct net_forward_result {
    uint64_t req_id;
    int status; /* 0, -errno or RAFT_ERR_* */
    raft_index index;
    raft_term term;
};

/*
 * The peer transport.
 *
 * One outbound TCP connection per peer carries everything this node sends to
 * it (TCP_NODELAY, reconnect with exponential backoff and jitter). Messages
 * from a peer arrive on the connection that peer opened to us (inbound). The
 * first frame of every outbound connection is a Hello {version, cluster id,
 * from, to}; the receiver refuses (HelloReply with a reason, a log line,
 * close) a bad version, another cluster, a sender it does not know, or a
 * Hello meant for another node.
 *
 * Sending encodes at once into the peer's queue; the queues are flushed
 * with one uv_write per peer per loop iteration (Redis's beforeSleep: an
 * idle handle started by the first send of an iteration, so frames queued
 * from any callback, the driver's prepare handle included, leave before the
 * loop next blocks). A queue counts the bytes waiting and the bytes being written;
 * a message that would take it over queue_max is dropped and counted (Raft
 * tolerates loss; a dead or slow peer never grows memory without bound).
 * Snapshot chunks ride the same queue, so the queue limit plus the core's
 * chunk window are the flow control.
 */
struct net_transport;

struct net_transport_config {
    uint64_t cluster_id;
    raft_id self;              /* != 0 */
    const char *listen_addr;   /* "HOST:PORT"; port 0 picks one (tests) */
    size_t frame_max;          /* 0: NET_FRAME_MAX_DEFAULT */
    size_t queue_max;          /* 0: NET_QUEUE_MAX_DEFAULT; >= frame_max */
    unsigned backoff_min_ms;   /* 0: NET_BACKOFF_MIN_DEFAULT */
    unsigned backoff_max_ms;   /* 0: NET_BACKOFF_MAX_DEFAULT */
    unsigned hello_timeout_ms; /* 0: NET_HELLO_TIMEOUT_DEFAULT */
    uint64_t seed;             /* backoff jitter PRNG seed */

    /* A raft message from peer `from` (the sender of the Hello of the
     * connection it came on; m->from == from, m->to == self are checked).
     * The callee takes ownership of *m's contents and must release them with
     * raft_message_close(m); `m` itself is only valid during the call, so
     * copy the struct (shallowly) to keep it. */
    void (*on_message)(struct net_transport *t, raft_id from,
                       struct raft_message *m);
    /* A forward from `from`; *f and f->command are borrowed (valid during
     * the call): raft_propose() copies, so proposing at once is enough. */
    void (*on_forward)(struct net_transport *t, raft_id from,
                       const struct net_forward *f);
    /* The answer to a forward we sent to `from`; borrowed. */
    void (*on_forward_result)(struct net_transport *t, raft_id from,
                              const struct net_forward_result *r);
    /* Optional: our outbound connection to `id` was accepted by the peer
     * (up) or lost (!up). For logs and status only. */
    void (*on_peer)(struct net_transport *t, raft_id id, bool up);
    /* Optional: whether an inbound Hello from `id` may be accepted although
     * `id` was never passed to net_transport_set_peer() (e.g. a node being
     * added that is not in our configuration yet). */
    bool (*is_known)(struct net_transport *t, raft_id id);

    net_log_fn log;
    void *log_data;
};

/* Counters of one peer, for status and tests. */
struct net_peer_stats {
    bool connected;        /* outbound connection accepted by the peer */
    size_t queued_bytes;   /* waiting + being written */
    uint64_t sent_frames;  /* frames handed to the kernel */
    uint64_t dropped;      /* messages dropped because the queue was full */
    uint64_t connects;     /* connection attempts */
    uint64_t refused;      /* handshakes the peer refused */
};

/*
 * Allocates a transport on `loop`, starts listening on c->listen_addr and
 * returns it in *out. The config is copied (listen_addr included); the
 * callbacks must stay valid until the close callback. `data` is for the
 * caller (net_transport_data()). Returns 0, NET_ERR_BAD_ADDR, RAFT_ERR_INVALID
 * (missing on_message, self 0, queue_max < frame_max), -ENOMEM or a libuv
 * error (e.g. UV_EADDRINUSE). After a libuv error the half-made listener is
 * closed and freed by the loop's next iteration: run the loop before
 * uv_loop_close().
 */
int net_transport_init(uv_loop_t *loop, const struct net_transport_config *c,
                       void *data, struct net_transport **out);

/*
 * Closes every connection, timer and the listener; `cb` (may be NULL) runs
 * once every handle's close callback has run, after which the transport is
 * freed. Queued messages are dropped. No callback of the config runs after
 * this call. Call it once.
 */
void net_transport_close(struct net_transport *t,
                         void (*cb)(struct net_transport *t, void *data));

void *net_transport_data(const struct net_transport *t);

/* The address the listener is bound to (port resolved when 0 was asked). */
int net_transport_local_addr(const struct net_transport *t,
                             struct sockaddr_storage *out);

/*
 * Adds peer `id` at `addr` ("HOST:PORT") or, if it exists with another
 * address, reconnects it there. A host name is resolved asynchronously before
 * every connection attempt (never blocks the loop). The first connection is
 * attempted at once. Returns 0, NET_ERR_BAD_ADDR,
 * RAFT_ERR_INVALID (id 0 or self) or -ENOMEM.
 */
int net_transport_set_peer(struct net_transport *t, raft_id id,
                           const char *addr);

/* Removes peer `id`: closes its connection, drops its queue, and refuses its
 * future Hellos (unless is_known says otherwise). Returns 0 or
 * NET_ERR_UNKNOWN_PEER. */
int net_transport_remove_peer(struct net_transport *t, raft_id id);

/*
 * Queues `m` for m->to. The message stays the caller's (it is encoded before
 * this returns). Returns 0, NET_ERR_UNKNOWN_PEER, NET_ERR_QUEUE_FULL (dropped
 * and counted), NET_ERR_FRAME_TOO_BIG (dropped: the encoding exceeds
 * frame_max) or -ENOMEM.
 */
int net_transport_send(struct net_transport *t, const struct raft_message *m);

/* Queues a forward / a forward result for peer `to`. Borrowed arguments;
 * same return codes as net_transport_send(). */
int net_transport_forward(struct net_transport *t, raft_id to,
                          const struct net_forward *f);
int net_transport_forward_result(struct net_transport *t, raft_id to,
                                 const struct net_forward_result *r);

/* Writes everything queued now, one write per peer, instead of at the start
 * of the loop's next iteration. For a caller about to hand the CPU to other
 * work (a thread-pool job) whose frames should leave first. */
void net_transport_flush(struct net_transport *t);

/* Fills *out for peer `id`. Returns 0 or NET_ERR_UNKNOWN_PEER. */
int net_transport_peer_stats(const struct net_transport *t, raft_id id,
                             struct net_peer_stats *out);

/*
 * The client protocol (raftfsctl <-> raftfsd).
 */
enum net_client_op {
    NET_CLIENT_STATUS = 1,
    NET_CLIENT_MEMBERS,
    NET_CLIENT_MEMBER_ADD,     /* id, addr, learner */
    NET_CLIENT_MEMBER_PROMOTE, /* id */
    NET_CLIENT_MEMBER_REMOVE,  /* id */
    NET_CLIENT_LEADER_TRANSFER, /* id (0: any voter) */
    NET_CLIENT_SNAPSHOT,
    NET_CLIENT_GET,            /* path */
    NET_CLIENT_PUT,            /* path, value */
    NET_CLIENT_RM,             /* path */
    NET_CLIENT_LS,             /* path */
    NET_CLIENT_MKDIR,          /* path */
};
#define NET_CLIENT_OP_MAX NET_CLIENT_MKDIR

struct net_client_req {
    uint64_t id;
    uint8_t op; /* enum net_client_op */
    raft_id member_id;
    char addr[RAFT_ADDR_MAX];
    bool learner;
    char path[NET_PATH_MAX + 1];
    struct raft_buf value; /* PUT; see the callback / call for ownership */
};

struct net_client_peer {
    raft_id id;
    raft_index match;
    raft_index next;
    raft_index lag;
    uint8_t state; /* 1 probe, 2 replicate, 3 snapshot */
};

struct net_client_status {
    raft_id id;
    uint8_t role; /* enum raft_role */
    raft_term term;
    raft_id leader; /* 0: unknown */
    char leader_addr[RAFT_ADDR_MAX]; /* the leader's client address */
    raft_index commit;
    raft_index applied;
    raft_index last_index;
    size_t n_peers;
    struct net_client_peer peers[RAFT_MAX_SERVERS];
};

struct net_client_member {
    raft_id id;
    char addr[RAFT_ADDR_MAX];
    uint8_t role; /* enum raft_server_role */
    bool is_leader;
};

enum net_client_dirent_type {
    NET_DIRENT_FILE = 1,
    NET_DIRENT_DIR = 2,
};

struct net_client_dirent {
    char name[NET_NAME_MAX + 1];
    uint8_t type; /* enum net_client_dirent_type */
    uint64_t size;
};

enum net_client_payload {
    NET_PAYLOAD_NONE = 0,
    NET_PAYLOAD_STATUS,
    NET_PAYLOAD_MEMBERS,
    NET_PAYLOAD_VALUE,
    NET_PAYLOAD_DIR,
};

struct net_client_resp {
    uint64_t id;    /* the request's */
    int status;     /* 0, -errno or RAFT_ERR_* */
    char message[NET_MESSAGE_MAX]; /* human text, "" if none */
    uint8_t payload; /* enum net_client_payload */
    struct net_client_status info;                   /* STATUS */
    size_t n_members;                                /* MEMBERS */
    struct net_client_member members[RAFT_MAX_SERVERS];
    struct raft_buf value;                           /* VALUE */
    struct net_client_dirent *entries;               /* DIR */
    size_t n_entries;
};

/* Frees what a DECODED response owns (value, entries) — the ones filled by
 * net_client_call(). Never call it on a response the caller built. */
void net_client_resp_close(struct net_client_resp *r);

/* Client port server. */
struct net_client_server;
/* A pending request: pass it to net_client_reply() exactly once. */
struct net_client_handle;

struct net_client_server_config {
    const char *listen_addr; /* "HOST:PORT"; port 0 picks one */
    size_t frame_max;        /* 0: NET_FRAME_MAX_DEFAULT */
    /* A request arrived. *req and req->value are borrowed (valid during the
     * call). The callee must eventually pass `h` to net_client_reply()
     * exactly once, from the loop's thread, even if the connection closed
     * (the reply is then dropped) or the server was closed meanwhile. */
    void (*on_request)(struct net_client_server *s,
                       struct net_client_handle *h,
                       const struct net_client_req *req);
    net_log_fn log;
    void *log_data;
};

/* Like net_transport_init() for the client port. */
int net_client_server_init(uv_loop_t *loop,
                           const struct net_client_server_config *c,
                           void *data, struct net_client_server **out);
void net_client_server_close(struct net_client_server *s,
                             void (*cb)(struct net_client_server *s,
                                        void *data));
void *net_client_server_data(const struct net_client_server *s);
/* How many client connections are open (for status and tests). */
size_t net_client_server_connections(const struct net_client_server *s);
int net_client_server_local_addr(const struct net_client_server *s,
                                 struct sockaddr_storage *out);

/*
 * Answers the request of `h` and releases `h`. `resp` is borrowed (encoded
 * before return); resp->id is ignored (the request's id is used). Returns 0,
 * NET_ERR_CLOSED (the connection is gone: the reply was dropped, `h` is
 * still released) or another error (the connection is then closed).
 */
int net_client_reply(struct net_client_handle *h,
                     const struct net_client_resp *resp);

/*
 * The blocking client (raftfsctl): tries each "HOST:PORT" of the comma list
 * `endpoints` in order, connecting with a timeout, sends `req` on the first
 * that accepts and reads its response into *resp (release it with
 * net_client_resp_close()). timeout_ms bounds the connect of each endpoint
 * and the whole exchange on the chosen one. Returns 0 (resp->status holds the
 * operation's result), NET_ERR_UNAVAILABLE (no endpoint reachable),
 * NET_ERR_TIMEOUT, NET_ERR_CLOSED, NET_ERR_MALFORMED or NET_ERR_BAD_ADDR; err
 * (if not NULL) receives a message. `used` (if not NULL, at least
 * RAFT_ADDR_MAX bytes) receives the endpoint that answered.
 */
int net_client_call(const char *endpoints, unsigned timeout_ms,
                    const struct net_client_req *req,
                    struct net_client_resp *resp, char *used, char *err,
                    size_t errlen);

#endif /* NET_H */
