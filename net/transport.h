/* The peer transport's private state, shared by its two files (internal). */
#ifndef NET_TRANSPORT_H
#define NET_TRANSPORT_H

#include "conn.h"
#include "net.h"

/* Unacknowledged data older than this breaks an outbound connection. */
#define NET_USER_TIMEOUT_MS 20000

enum peer_state {
    PEER_IDLE = 0,   /* no connection; the backoff timer may be running */
    PEER_CONNECTING, /* uv_tcp_connect in flight */
    PEER_HELLO,      /* Hello sent (frames pipelined after it), no reply yet */
    PEER_UP,         /* the peer accepted our Hello */
};

/* One peer we send to: its outbound connection and queue. */
struct net__peer {
    struct net_transport *t;
    raft_id id;
    char addr[RAFT_ADDR_MAX];
    struct sockaddr_storage sa; /* resolved before each connect if a name */
    char host[RAFT_ADDR_MAX];   /* "" if addr holds an IP literal */
    unsigned port;
    uv_getaddrinfo_t gai;       /* in flight while resolving */
    bool resolving;
    struct net__conn conn; /* outbound; conn.open while a tcp handle lives */
    uv_connect_t connect_req;
    uv_timer_t timer;      /* reconnect backoff */
    int state;             /* enum peer_state */
    bool removed;          /* freed once its handles are closed */
    bool logged_down;      /* one log line per outage, not per retry */
    unsigned handles;      /* timer, tcp and resolution still open */
    unsigned attempts;     /* failed connects since the last success */
    struct net_peer_stats stats;
    struct net__peer *next;
};

/* One connection a peer opened to us; we receive on it. */
struct net__inbound {
    struct net_transport *t;
    struct net__conn conn;
    raft_id id;         /* 0 until its Hello is accepted */
    uint64_t deadline;  /* loop time by which the Hello must arrive */
    char name[64];      /* remote "HOST:PORT" for logs */
    struct net__inbound *prev;
    struct net__inbound *next;
};

struct net_transport {
    uv_loop_t *loop;
    struct net_transport_config c;
    char listen_addr[RAFT_ADDR_MAX];
    void *data;
    uv_tcp_t listener;
    /* Redis's beforeSleep: an idle handle started by the first send of a
     * loop iteration. An active idle handle makes that iteration's poll
     * non-blocking, so frames queued from any callback (a timer, a read, the
     * driver's own prepare handle) leave at the start of the next iteration,
     * in one write per peer, and never wait for an unrelated wake-up. */
    uv_idle_t flusher;
    uv_timer_t sweeper;   /* closes inbound connections that never said Hello */
    struct net__peer *peers;
    struct net__inbound *inbound;
    uint64_t prng;
    unsigned handles; /* every handle not yet closed */
    bool closing;
    void (*close_cb)(struct net_transport *t, void *data);
};

#define NET_LOG(t, level, ...)                                                 \
    net__log((t)->c.log, (t)->c.log_data, level, __VA_ARGS__)

/* transport_in.c: the listener's side. */
void net__inbound_accept(struct net_transport *t);
void net__inbound_sweep(struct net_transport *t);
/* transport.c */
struct net__peer *net__peer_find(const struct net_transport *t, raft_id id);
void net__handle_closed(struct net_transport *t);

#endif /* NET_TRANSPORT_H */
