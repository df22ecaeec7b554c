/* raftfsd's configuration: flags, RAFTFS_* environment, KEY=VALUE files. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

enum opt_kind { OPT_U64, OPT_STR, OPT_BOOL, OPT_SPECIAL };

struct opt {
    const char *flag;  /* without the leading "--" */
    const char *env;   /* RAFTFS_... and the config file's key */
    enum opt_kind kind;
    size_t off;        /* OPT_U64 (uint64_t/unsigned by size), OPT_STR */
    size_t size;
    uint64_t min;
    uint64_t max;
    const char *help;
};

#define OFF(f) offsetof(struct fs_config, f), sizeof(((struct fs_config *)0)->f)

static const struct opt opts[] = {
    {"id", "RAFTFS_ID", OPT_U64, OFF(id), 1, UINT32_MAX,
     "N           this node's id (positive)"},
    {"peers", "RAFTFS_PEERS", OPT_SPECIAL, 0, 0, 0, 0,
     "LIST     the cluster: 1=HOST:PORT,2=HOST:PORT,... (peer addresses)"},
    {"data-dir", "RAFTFS_DATA_DIR", OPT_STR, OFF(data_dir), 0, 0,
     "DIR   where the node keeps its state (required)"},
    {"client-addr", "RAFTFS_CLIENT_ADDR", OPT_STR, OFF(client_addr), 0, 0,
     "A  where raftfsctl connects (default " FS_DEFAULT_CLIENT_ADDR ")"},
    {"mount", "RAFTFS_MOUNT", OPT_STR, OFF(mount), 0, 0,
     "DIR      mount the filesystem there (default: headless)"},
    {"mount-options", "RAFTFS_MOUNT_OPTIONS", OPT_STR, OFF(mount_options), 0,
     0, "O  stale,root=SUBTREE,uid=N,gid=N,allow_other,default_permissions"},
    {"cluster-id", "RAFTFS_CLUSTER_ID", OPT_STR, OFF(cluster_id), 0, 0,
     "S   cluster name; peers and data dirs of others are refused"},
    {"join", "RAFTFS_JOIN", OPT_BOOL, OFF(join), 0, 0,
     "            join a running cluster (same as --initial-state existing)"},
    {"initial-state", "RAFTFS_INITIAL_STATE", OPT_SPECIAL, 0, 0, 0, 0,
     "S new (bootstrap from --peers) or existing (wait to be added)"},
    {"election-timeout-ms", "RAFTFS_ELECTION_TIMEOUT_MS", OPT_U64,
     OFF(election_timeout_ms), 10, 600000, "N (default 1000)"},
    {"heartbeat-ms", "RAFTFS_HEARTBEAT_MS", OPT_U64, OFF(heartbeat_ms), 1,
     60000, "N       (default 100; below the election timeout)"},
    {"op-timeout-ms", "RAFTFS_OP_TIMEOUT_MS", OPT_U64, OFF(op_timeout_ms), 10,
     3600000, "N      how long an operation waits for a quorum (5000)"},
    {"max-value-size", "RAFTFS_MAX_VALUE_SIZE", OPT_U64, OFF(max_value_size),
     1, 64u << 20, "N     largest file content in bytes (1048576)"},
    {"no-lease-reads", "RAFTFS_NO_LEASE_READS", OPT_BOOL,
     OFF(no_lease_reads), 0, 0,
     "      reads always confirm with a heartbeat round (no leader lease)"},
    {"no-sched-batch", "RAFTFS_NO_SCHED_BATCH", OPT_BOOL,
     OFF(no_sched_batch), 0, 0,
     "      keep the daemon's threads under SCHED_OTHER, not SCHED_BATCH"},
    {"confirm-window-ms", "RAFTFS_CONFIRM_WINDOW_MS", OPT_U64,
     OFF(confirm_window_ms), 0, 60000,
     "N  open for writing: no heartbeat round if a majority acked within N ms (20)"},
    {"snapshot-entries", "RAFTFS_SNAPSHOT_ENTRIES", OPT_U64,
     OFF(snapshot_entries), 1, UINT64_MAX / 2,
     "N   snapshot and compact after N entries (10000)"},
    {"map-size-mb", "RAFTFS_MAP_SIZE_MB", OPT_U64, OFF(map_size_mb), 16,
     1u << 24, "N        LMDB map size, the store's capacity (1024)"},
    {"log-level", "RAFTFS_LOG_LEVEL", OPT_SPECIAL, 0, 0, 0, 0,
     "L      error, warn, info or debug (info)"},
    {"config", "RAFTFS_CONFIG", OPT_SPECIAL, 0, 0, 0, 0,
     "FILE     KEY=VALUE lines (RAFTFS_ID=1 ...), as systemd's EnvironmentFile"},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

void fs_config_default(struct fs_config *c)
{
    memset(c, 0, sizeof *c);
    c->id = 1;
    c->n_peers = 0;
    snprintf(c->client_addr, sizeof c->client_addr, "%s",
             FS_DEFAULT_CLIENT_ADDR);
    snprintf(c->cluster_id, sizeof c->cluster_id, "raftfs");
    c->election_timeout_ms = 1000;
    c->heartbeat_ms = 100;
    c->confirm_window_ms = 20;
    c->op_timeout_ms = 5000;
    c->max_value_size = 1u << 20;
    c->snapshot_entries = 10000;
    c->map_size_mb = 1024;
    c->log_level = 2;
}

void fs_config_usage(void *out)
{
    FILE *f = out;
    size_t i;
    fprintf(f, "usage: raftfsd [options]\n"
               "  A raftfs node: a Raft member with its state in LMDB that "
               "mounts the\n  replicated tree with FUSE. With only --data-dir "
               "it runs a single-node cluster.\n\noptions (each also as "
               "an environment variable or a --config line):\n");
    for (i = 0; i < N_OPTS; i++) {
        fprintf(f, "  --%s %s\n      [%s]\n", opts[i].flag, opts[i].help,
                opts[i].env);
    }
    fprintf(f, "  --help, --version\n");
}

static int fail(char *err, size_t errlen, const char *fmt, const char *a,
                const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (*s == '\0' || *s == '-' || isspace((unsigned char)*s)) {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int set_peers(struct fs_config *c, const char *v, char *err,
                     size_t errlen)
{
    struct net_peer_addr peers[FS_CONFIG_MAX_PEERS];
    size_t n = 0;
    size_t i;
    char why[200];
    if (net_peers_parse(v, peers, FS_CONFIG_MAX_PEERS, &n, why,
                        sizeof why) != 0) {
        return fail(err, errlen, "bad --peers '%s': %s", v, why);
    }
    if (n == 0) {
        return fail(err, errlen, "bad --peers '%s': %s", v, "empty list");
    }
    for (i = 0; i < n; i++) {
        c->peers[i].id = peers[i].id;
        snprintf(c->peers[i].addr, sizeof c->peers[i].addr, "%s",
                 peers[i].addr);
    }
    c->n_peers = (unsigned)n;
    return 0;
}

/* label names where the value came from: "--id", "RAFTFS_ID", "f.conf:3". */
static int set_opt(struct fs_config *c, const struct opt *o, const char *v,
                   const char *label, char *err, size_t errlen)
{
    uint64_t u;
    char *p = (char *)c + o->off;

    switch (o->kind) {
    case OPT_U64:
        if (parse_u64(v, &u) != 0 || u < o->min || u > o->max) {
            snprintf(err, errlen, "%s: '%s' is not a number in [%llu, %llu]",
                     label, v, (unsigned long long)o->min,
                     (unsigned long long)o->max);
            return -1;
        }
        if (o->size == sizeof(uint64_t)) {
            *(uint64_t *)(void *)p = u;
        } else {
            *(unsigned *)(void *)p = (unsigned)u;
        }
        return 0;
    case OPT_STR:
        if (strlen(v) >= o->size) {
            snprintf(err, errlen, "%s: value too long (max %zu bytes)",
                     label, o->size - 1);
            return -1;
        }
        memcpy(p, v, strlen(v) + 1);
        return 0;
    case OPT_BOOL:
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ||
            strcmp(v, "yes") == 0 || *v == '\0') {
            *(bool *)(void *)p = true;
        } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 ||
                   strcmp(v, "no") == 0) {
            *(bool *)(void *)p = false;
        } else {
            snprintf(err, errlen, "%s: '%s' is not a boolean", label, v);
            return -1;
        }
        return 0;
    case OPT_SPECIAL:
        break;
    }
    if (strcmp(o->flag, "peers") == 0) {
        return set_peers(c, v, err, errlen);
    }
    if (strcmp(o->flag, "initial-state") == 0) {
        if (strcmp(v, "new") == 0) {
            c->join = false;
        } else if (strcmp(v, "existing") == 0) {
            c->join = true;
        } else {
            return fail(err, errlen,
                        "--initial-state: '%s' is neither 'new' nor "
                        "'existing'%s",
                        v, "");
        }
        return 0;
    }
    if (strcmp(o->flag, "log-level") == 0) {
        static const char *levels[] = {"error", "warn", "info", "debug"};
        int i;
        for (i = 0; i < 4; i++) {
            if (strcmp(v, levels[i]) == 0) {
                c->log_level = i;
                return 0;
            }
        }
        return fail(err, errlen,
                    "--log-level: '%s' is not one of error, warn, info, "
                    "debug%s",
                    v, "");
    }
    return 0; /* --config is handled before */
}

static const struct opt *find_flag(const char *name, size_t len)
{
    size_t i;
    for (i = 0; i < N_OPTS; i++) {
        if (strlen(opts[i].flag) == len &&
            strncmp(opts[i].flag, name, len) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

static const struct opt *find_env(const char *name)
{
    size_t i;
    for (i = 0; i < N_OPTS; i++) {
        if (strcmp(opts[i].env, name) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s)) {
        s++;
    }
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) {
        *--e = '\0';
    }
    /* systemd's EnvironmentFile allows quoted values. */
    if (e - s >= 2 && ((*s == '"' && e[-1] == '"') ||
                       (*s == '\'' && e[-1] == '\''))) {
        e[-1] = '\0';
        s++;
    }
    return s;
}

static int load_file(struct fs_config *c, const char *path, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    char where[1200];
    unsigned lineno = 0;
    if (f == NULL) {
        snprintf(err, errlen, "--config %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *eq;
        char *key;
        char *val;
        const struct opt *o;
        lineno++;
        key = trim(line);
        if (*key == '\0' || *key == '#') {
            continue;
        }
        if (strncmp(key, "export ", 7) == 0) {
            key = trim(key + 7);
        }
        eq = strchr(key, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%u: expected KEY=VALUE", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        val = trim(eq + 1);
        key = trim(key);
        o = find_env(key);
        if (o == NULL) {
            snprintf(err, errlen, "%s:%u: unknown key '%.100s'", path, lineno,
                     key);
            fclose(f);
            return -1;
        }
        if (strcmp(o->flag, "config") == 0) {
            continue;
        }
        snprintf(where, sizeof where, "%s:%u: %s", path, lineno, o->env);
        if (set_opt(c, o, val, where, err, errlen) != 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* Splits "--name=value" / "--name value"; returns the option or NULL. */
static const struct opt *flag_at(int argc, char **argv, int *i,
                                 const char **value, char *err, size_t errlen)
{
    const char *a = argv[*i];
    const char *eq;
    const struct opt *o;
    size_t len;
    if (strncmp(a, "--", 2) != 0) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
        return NULL;
    }
    a += 2;
    eq = strchr(a, '=');
    len = eq != NULL ? (size_t)(eq - a) : strlen(a);
    o = find_flag(a, len);
    if (o == NULL) {
        snprintf(err, errlen, "unknown option '%s' (see --help)", argv[*i]);
        return NULL;
    }
    if (eq != NULL) {
        *value = eq + 1;
    } else if (o->kind == OPT_BOOL) {
        *value = "1";
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        snprintf(err, errlen, "option --%s needs a value", o->flag);
        return NULL;
    }
    return o;
}

static int validate(struct fs_config *c, char *err, size_t errlen)
{
    unsigned i;
    bool self = false;
    char why[200];

    if (c->data_dir[0] == '\0') {
        snprintf(err, errlen, "--data-dir is required");
        return -1;
    }
    if (c->n_peers == 0) {
        /* The embedded default: a single-node cluster. */
        c->peers[0].id = c->id;
        snprintf(c->peers[0].addr, sizeof c->peers[0].addr, "%s",
                 FS_DEFAULT_PEER_ADDR);
        c->n_peers = 1;
    }
    for (i = 0; i < c->n_peers; i++) {
        if (c->peers[i].id == c->id) {
            self = true;
        }
    }
    if (!self) {
        snprintf(err, errlen,
                 "--id %llu is not in --peers: list this node's own address "
                 "there too",
                 (unsigned long long)c->id);
        return -1;
    }
    if (c->heartbeat_ms >= c->election_timeout_ms) {
        snprintf(err, errlen,
                 "--heartbeat-ms (%u) must be below --election-timeout-ms "
                 "(%u)",
                 c->heartbeat_ms, c->election_timeout_ms);
        return -1;
    }
    if (net_addr_check(c->client_addr, why, sizeof why) != 0) {
        snprintf(err, errlen, "bad --client-addr '%s': %s", c->client_addr,
                 why);
        return -1;
    }
    if (strcmp(c->client_addr, fs_config_self_addr(c)) == 0) {
        snprintf(err, errlen,
                 "--client-addr %s is also this node's peer address",
                 c->client_addr);
        return -1;
    }
    if (c->cluster_id[0] == '\0') {
        snprintf(err, errlen, "--cluster-id must not be empty");
        return -1;
    }
    return 0;
}

int fs_config_load(struct fs_config *c, int argc, char **argv, char *err,
                   size_t errlen)
{
    const char *config = getenv("RAFTFS_CONFIG");
    const char *value;
    const struct opt *o;
    size_t k;
    int i;

    fs_config_default(c);

    /* --help, --version and --config first: they decide what else to read. */
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fs_config_usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("raftfsd 0.1.0\n");
            return 1;
        }
        if (strncmp(argv[i], "--config", 8) == 0 &&
            (argv[i][8] == '\0' || argv[i][8] == '=')) {
            if (argv[i][8] == '=') {
                config = argv[i] + 9;
            } else if (i + 1 < argc) {
                config = argv[i + 1];
            } else {
                snprintf(err, errlen, "option --config needs a value");
                return -1;
            }
        }
    }
    if (config != NULL && *config != '\0' &&
        load_file(c, config, err, errlen) != 0) {
        return -1;
    }
    for (k = 0; k < N_OPTS; k++) {
        const char *v = getenv(opts[k].env);
        if (v == NULL || strcmp(opts[k].flag, "config") == 0) {
            continue;
        }
        if (set_opt(c, &opts[k], v, opts[k].env, err, errlen) != 0) {
            return -1;
        }
    }
    for (i = 1; i < argc; i++) {
        o = flag_at(argc, argv, &i, &value, err, errlen);
        if (o == NULL) {
            return -1;
        }
        if (strcmp(o->flag, "config") == 0) {
            continue;
        }
        char label[64];
        snprintf(label, sizeof label, "--%s", o->flag);
        if (set_opt(c, o, value, label, err, errlen) != 0) {
            return -1;
        }
    }
    return validate(c, err, errlen);
}

const char *fs_config_self_addr(const struct fs_config *c)
{
    unsigned i;
    for (i = 0; i < c->n_peers; i++) {
        if (c->peers[i].id == c->id) {
            return c->peers[i].addr;
        }
    }
    return FS_DEFAULT_PEER_ADDR;
}
