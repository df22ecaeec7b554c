/* raftfsd: one node — store, Raft driver, transport, client port, mount. */
#ifndef FS_DAEMON_H
#define FS_DAEMON_H

#include <uv.h>

#include "cmd.h"
#include "config.h"
#include "net.h"
#include "node.h"
#include "store.h"

struct fs_mount; /* fs/fuse_*.c */

struct fs_daemon {
    uv_loop_t loop;
    struct fs_config cfg;
    uint64_t cluster_hash; /* cluster_id hashed, for the handshake */

    struct store store;
    struct raft_node *node;
    struct net_transport *net;
    struct net_client_server *client;
    struct fs_mount *mount;

    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t config_timer; /* keeps net's peers in step with the config */
    raft_index synced_config_index;
    struct raft_config synced_config;

    uint64_t next_seq; /* request ids of commands proposed by this node */
    bool stopping;
    int exit_code;
    bool ready_notified;
};

enum fs_log_level { FS_LOG_ERROR = 0, FS_LOG_WARN, FS_LOG_INFO, FS_LOG_DEBUG };

void fs_log(struct fs_daemon *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The storage and transport the driver runs on (fs/glue.c). */
void fs__storage_iface(struct fs_daemon *d, struct raft_node_storage *s);
void fs__transport_iface(struct fs_daemon *d, struct raft_node_transport *t);
/* net_transport callbacks that feed the driver. */
void fs__on_net_message(struct net_transport *t, raft_id from,
                        struct raft_message *m);
void fs__on_net_forward(struct net_transport *t, raft_id from,
                        const struct net_forward *f);
void fs__on_net_forward_result(struct net_transport *t, raft_id from,
                               const struct net_forward_result *r);
bool fs__net_is_known(struct net_transport *t, raft_id id);
/* Adds/removes net peers so that they match the configuration. */
void fs__sync_peers(struct fs_daemon *d);

/* The client port's request handler (fs/client.c). */
void fs__on_client_request(struct net_client_server *s,
                           struct net_client_handle *h,
                           const struct net_client_req *req);

/* Stops the daemon (as SIGTERM does) and exits with `code`. */
void fs__daemon_stop(struct fs_daemon *d, int code);

/* The wall clock in ns: the time a proposer puts in its commands. */
uint64_t fs__now_ns(void);

/* Proposes a command built by the caller (store/cmd.h), filling its
 * node/seq/time. cb gets the apply result (struct store_apply_result *). */
int fs__propose_cmd(struct fs_daemon *d, struct store_cmd *c,
                    raft_node_propose_cb cb, void *data);

#endif /* FS_DAEMON_H */
