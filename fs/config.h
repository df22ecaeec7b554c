/* raftfsd's configuration: flags, RAFTFS_* environment, KEY=VALUE files. */
#ifndef FS_CONFIG_H
#define FS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define FS_CONFIG_MAX_PEERS RAFT_MAX_SERVERS
#define FS_DEFAULT_PEER_ADDR "127.0.0.1:7701"
#define FS_DEFAULT_CLIENT_ADDR "127.0.0.1:7700"

struct fs_peer {
    raft_id id;
    char addr[RAFT_ADDR_MAX];
};

struct fs_config {
    raft_id id;
    struct fs_peer peers[FS_CONFIG_MAX_PEERS];
    unsigned n_peers;
    char data_dir[1024];
    char client_addr[RAFT_ADDR_MAX];
    char mount[1024];        /* "" = headless */
    char mount_options[512]; /* stale, root=, uid=, gid=, allow_other, ... */
    char cluster_id[64];     /* refuses peers and data dirs of others */
    bool join;               /* --join or --initial-state existing */
    bool no_lease_reads;     /* every read index takes a heartbeat round */
    bool no_sched_batch;     /* threads stay SCHED_OTHER (raftfsd.c) */
    unsigned election_timeout_ms;
    unsigned heartbeat_ms;
    unsigned confirm_window_ms; /* raft_options.confirm_window */
    unsigned op_timeout_ms;
    uint64_t max_value_size;
    uint64_t snapshot_entries;
    uint64_t map_size_mb;
    int log_level; /* 0 error, 1 warn, 2 info, 3 debug */
    bool foreground_mount_check;
};

/* Fills c with the defaults (a single node with id 1 on the default
 * addresses, election 1000 ms, heartbeat 100 ms, op timeout 5000 ms, value
 * limit 1 MiB, snapshot every 10000 entries, map 1 GiB, log level info). */
void fs_config_default(struct fs_config *c);

/*
 * Builds the configuration from, in increasing precedence: defaults, the
 * file named by --config or RAFTFS_CONFIG (KEY=VALUE lines, '#' comments,
 * keys as the environment names: RAFTFS_ID=1), the RAFTFS_* environment,
 * then the flags in argv. Validates the result. Returns 0, 1 when --help or
 * --version was printed, or -1 with a one-line reason in err.
 */
int fs_config_load(struct fs_config *c, int argc, char **argv, char *err,
                   size_t errlen);

/* Prints the usage text to `out` (a FILE *). */
void fs_config_usage(void *out);

/* Returns this node's peer address (its own entry of the peer list). */
const char *fs_config_self_addr(const struct fs_config *c);

#endif /* FS_CONFIG_H */
