/* raftfsd: the raftfs node daemon. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon.h"
#include "fuse_mount.h"

#define CONFIG_SYNC_MS 100

static const char *level_names[] = {"error", "warn", "info", "debug"};

static void vlog(raft_id id, int level, const char *fmt, va_list ap)
{
    struct timespec ts;
    struct tm tm;
    char line[1024];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%02d:%02d:%02d.%03ld raftfsd[%llu] %s: %s\n", tm.tm_hour,
            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            (unsigned long long)id, level_names[level & 3], line);
}

void fs_log(struct fs_daemon *d, int level, const char *fmt, ...)
{
    va_list ap;
    if (level > d->cfg.log_level) {
        return;
    }
    va_start(ap, fmt);
    vlog(d->cfg.id, level, fmt, ap);
    va_end(ap);
}

static void log_line(struct fs_daemon *d, int level, const char *line)
{
    fs_log(d, level, "%s", line);
}

static void node_log(void *data, int level, const char *line)
{
    log_line(data, level, line);
}

static void net_log(void *data, int level, const char *line)
{
    /* net levels: 1 debug .. 4 error */
    static const int map[] = {FS_LOG_DEBUG, FS_LOG_DEBUG, FS_LOG_INFO,
                              FS_LOG_WARN, FS_LOG_ERROR};
    log_line(data, map[level < 0 || level > 4 ? 0 : level], line);
}

static void core_trace(void *data, raft_id id, const char *line)
{
    (void)id;
    log_line(data, FS_LOG_DEBUG, line);
}

static uint64_t hash_cluster(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s != '\0') {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

/* A new cluster's members all persist the same first entry (raft.h). */
static int bootstrap(struct fs_daemon *d)
{
    struct raft_config c;
    struct raft_entry e;
    struct store_batch b;
    struct store_write_result r;
    unsigned i;
    int rv;

    memset(&c, 0, sizeof c);
    for (i = 0; i < d->cfg.n_peers; i++) {
        c.servers[i].id = d->cfg.peers[i].id;
        c.servers[i].role = RAFT_VOTER;
        snprintf(c.servers[i].addr, sizeof c.servers[i].addr, "%s",
                 d->cfg.peers[i].addr);
    }
    c.n = d->cfg.n_peers;
    rv = raft_bootstrap_entry(&c, &e);
    if (rv != 0) {
        return rv;
    }
    store_batch_init(&b);
    rv = store_batch_append(&b, &e, 1);
    if (rv == 0) {
        memset(&r, 0, sizeof r);
        rv = store_write(&d->store, &b, &r);
        if (rv == 0) {
            store_write_result_close(&r);
        }
    }
    store_batch_close(&b);
    free(e.data.base);
    if (rv == 0) {
        fs_log(d, FS_LOG_INFO, "bootstrapped a new cluster of %u member(s)",
               c.n);
    }
    return rv;
}

static int open_store(struct fs_daemon *d, struct raft_load *l)
{
    struct store_options o;
    int rv;

    store_options_default(&o);
    o.dir = d->cfg.data_dir;
    o.create = true;
    o.map_size = (size_t)d->cfg.map_size_mb << 20;
    o.max_value = d->cfg.max_value_size;
    o.cluster_id = d->cfg.cluster_id;
    o.node_id = d->cfg.id;
    /* Tests only: play a reboot by changing this file's content. */
    o.boot_id_file = getenv("RAFTFS_TEST_BOOT_ID_FILE");
    rv = store_open(&d->store, &o);
    if (rv != 0) {
        fs_log(d, FS_LOG_ERROR, "cannot open data dir %s: %s",
               d->cfg.data_dir,
               store_errmsg(&d->store)[0] ? store_errmsg(&d->store)
                                          : store_strerror(rv));
        return rv;
    }
    if (d->store.rebuilt) {
        fs_log(d, FS_LOG_WARN,
               "the machine went down with %s open: rebuilt data.mdb from "
               "the snapshot at index %llu; the entries after it are "
               "applied again from the log",
               d->cfg.data_dir,
               (unsigned long long)d->store.state.snap.index);
    }
    if (!d->store.nosync) {
        fs_log(d, FS_LOG_WARN,
               "no boot id (/proc/sys/kernel/random/boot_id): every apply "
               "is synced, writes are slower");
    }
    rv = store_load(&d->store, l);
    if (rv != 0) {
        fs_log(d, FS_LOG_ERROR, "cannot load the log from %s: %s",
               d->cfg.data_dir, store_strerror(rv));
        store_close(&d->store);
        return rv;
    }
    if (l->n_entries == 0 && l->snap_index == 0 && l->term == 0) {
        if (d->cfg.join) {
            fs_log(d, FS_LOG_INFO,
                   "empty data dir: waiting to be added to the cluster");
            return 0;
        }
        store_load_close(l);
        rv = bootstrap(d);
        if (rv == 0) {
            rv = store_load(&d->store, l);
        }
        if (rv != 0) {
            fs_log(d, FS_LOG_ERROR, "cannot bootstrap in %s: %s",
                   d->cfg.data_dir, store_strerror(rv));
            store_close(&d->store);
            return rv;
        }
    }
    return 0;
}

static uint64_t seed(raft_id id)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) {
        s = (uint64_t)time(NULL);
    }
    return s ^ (id * 0x9e3779b97f4a7c15ull);
}

static int start_node(struct fs_daemon *d, struct raft_load *l)
{
    struct raft_options ro;
    struct raft_node_options no;
    struct raft_node_storage st;
    struct raft_node_transport tr;
    struct raft *r;
    int rv;

    raft_options_default(&ro);
    ro.id = d->cfg.id;
    ro.seed = seed(d->cfg.id);
    ro.election_timeout = d->cfg.election_timeout_ms;
    ro.lease_reads = !d->cfg.no_lease_reads;
    ro.heartbeat_interval = d->cfg.heartbeat_ms;
    ro.confirm_window = d->cfg.confirm_window_ms;
    /* Followers hear of a commit at once only when they wait on it: a
     * leader-local write does not wake them again (raft.h). */
    ro.lazy_commit = true;
    ro.pre_vote = true;
    ro.check_quorum = true;
    /* Keep half a snapshot interval of log behind each snapshot (at most the
     * core's default), so a briefly lagging follower catches up from the
     * log and a long-gone one by snapshot. */
    if (ro.snapshot_trailing > d->cfg.snapshot_entries / 2) {
        ro.snapshot_trailing = d->cfg.snapshot_entries / 2;
    }
    if (d->cfg.log_level >= FS_LOG_DEBUG) {
        ro.trace = core_trace;
        ro.trace_data = d;
    }
    rv = raft_new(&ro, l, uv_now(&d->loop), &r);
    if (rv != 0) {
        fs_log(d, FS_LOG_ERROR, "cannot start the Raft core: %s",
               raft_strerror(rv));
        return rv;
    }
    memset(&no, 0, sizeof no);
    no.id = d->cfg.id;
    no.op_timeout_ms = d->cfg.op_timeout_ms;
    no.election_timeout_ms = d->cfg.election_timeout_ms;
    no.snapshot_entries = d->cfg.snapshot_entries;
    /* The core keeps the log since the last snapshot in memory: bound it
     * in bytes too (large values), not only in entries. */
    no.snapshot_bytes = 64u << 20;
    no.log = node_log;
    no.log_data = d;
    fs__storage_iface(d, &st);
    fs__transport_iface(d, &tr);
    rv = raft_node_init(&d->node, &d->loop, r, &st, &tr, &no, l->applied);
    if (rv != 0) {
        raft_free(r);
        return rv;
    }
    return 0;
}

static int start_net(struct fs_daemon *d)
{
    struct net_transport_config tc;
    struct net_client_server_config cc;
    unsigned i;
    int rv;

    memset(&tc, 0, sizeof tc);
    tc.cluster_id = d->cluster_hash;
    tc.self = d->cfg.id;
    tc.listen_addr = fs_config_self_addr(&d->cfg);
    tc.seed = seed(d->cfg.id + 1);
    tc.on_message = fs__on_net_message;
    tc.on_forward = fs__on_net_forward;
    tc.on_forward_result = fs__on_net_forward_result;
    tc.is_known = fs__net_is_known;
    tc.log = net_log;
    tc.log_data = d;
    rv = net_transport_init(&d->loop, &tc, d, &d->net);
    if (rv != 0) {
        fs_log(d, FS_LOG_ERROR, "cannot listen for peers on %s: %s",
               tc.listen_addr,
               rv > -1000 ? uv_strerror(rv) : net_strerror(rv));
        return rv;
    }
    for (i = 0; i < d->cfg.n_peers; i++) {
        if (d->cfg.peers[i].id != d->cfg.id) {
            net_transport_set_peer(d->net, d->cfg.peers[i].id,
                                   d->cfg.peers[i].addr);
        }
    }
    memset(&cc, 0, sizeof cc);
    cc.listen_addr = d->cfg.client_addr;
    cc.on_request = fs__on_client_request;
    cc.log = net_log;
    cc.log_data = d;
    rv = net_client_server_init(&d->loop, &cc, d, &d->client);
    if (rv != 0) {
        fs_log(d, FS_LOG_ERROR, "cannot listen for clients on %s: %s",
               cc.listen_addr,
               rv > -1000 ? uv_strerror(rv) : net_strerror(rv));
        return rv;
    }
    return 0;
}

static void on_config_timer(uv_timer_t *t)
{
    struct fs_daemon *d = t->data;
    fs__sync_peers(d);
    if (!d->ready_notified && d->node != NULL &&
        raft_leader(raft_node_core(d->node)) != 0) {
        d->ready_notified = true;
        fs_log(d, FS_LOG_INFO, "leader is %llu",
               (unsigned long long)raft_leader(raft_node_core(d->node)));
    }
}

static void on_client_closed(struct net_client_server *s, void *data)
{
    (void)s;
    (void)data;
}

static void on_net_closed(struct net_transport *t, void *data)
{
    (void)t;
    (void)data;
}

static void on_node_closed(void *data)
{
    struct fs_daemon *d = data;
    d->node = NULL;
    if (d->client != NULL) {
        net_client_server_close(d->client, on_client_closed);
        d->client = NULL;
    }
    if (d->net != NULL) {
        net_transport_close(d->net, on_net_closed);
        d->net = NULL;
    }
    uv_close((uv_handle_t *)&d->config_timer, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    fs_log(d, FS_LOG_INFO, "stopped");
}

static void stop(struct fs_daemon *d)
{
    if (d->stopping) {
        return;
    }
    d->stopping = true;
    fs_log(d, FS_LOG_INFO, "stopping");
#ifdef HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    if (d->mount != NULL) {
        fs_mount_stop(d->mount);
    }
    raft_node_close(d->node, true, on_node_closed, d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct fs_daemon *d = s->data;
    fs_log(d, FS_LOG_INFO, "received %s", strsignal(signum));
    stop(d);
}

void fs__daemon_stop(struct fs_daemon *d, int code)
{
    if (d->exit_code == 0) {
        d->exit_code = code;
    }
    stop(d);
}

/*
 * SCHED_BATCH for every thread of the daemon (threads inherit the policy;
 * libuv's pool starts later). A woken batch thread never preempts the
 * running thread: the leader writing its appends to two followers is not
 * interrupted between the two writes by the first follower, and a client
 * that sends a FUSE request runs on until it blocks waiting for the reply.
 * Its share of the CPU is unchanged (same nice level). On the 2-core machine of
 * docs/BENCHMARKS.md this measured +4% to +10% writes/s at 64 clients.
 */
static void sched_batch(struct fs_daemon *d)
{
    struct sched_param p;
    if (d->cfg.no_sched_batch) {
        return;
    }
    memset(&p, 0, sizeof p);
    if (sched_setscheduler(0, SCHED_BATCH, &p) != 0) {
        fs_log(d, FS_LOG_WARN, "SCHED_BATCH: %s; staying SCHED_OTHER",
               strerror(errno));
    }
}

int main(int argc, char **argv)
{
    static struct fs_daemon daemon; /* large: keep it off the stack */
    struct fs_daemon *d = &daemon;
    struct raft_load l;
    char err[512];
    int rv;

    signal(SIGPIPE, SIG_IGN);
    rv = fs_config_load(&d->cfg, argc, argv, err, sizeof err);
    if (rv == 1) {
        return 0;
    }
    if (rv != 0) {
        fprintf(stderr, "raftfsd: %s\n", err);
        return 2;
    }
    d->cluster_hash = hash_cluster(d->cfg.cluster_id);
    sched_batch(d);
    if (uv_loop_init(&d->loop) != 0) {
        fprintf(stderr, "raftfsd: cannot create the event loop\n");
        return 1;
    }
    memset(&l, 0, sizeof l);
    if (open_store(d, &l) != 0) {
        return 1;
    }
    if (start_net(d) != 0 || start_node(d, &l) != 0) {
        store_load_close(&l);
        store_close(&d->store);
        return 1;
    }
    store_load_close(&l);

    uv_signal_init(&d->loop, &d->sigterm);
    d->sigterm.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_init(&d->loop, &d->sigint);
    d->sigint.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_timer_init(&d->loop, &d->config_timer);
    d->config_timer.data = d;
    uv_timer_start(&d->config_timer, on_config_timer, 0, CONFIG_SYNC_MS);

    if (d->cfg.mount[0] != '\0') {
        rv = fs_mount_start(d, &d->mount);
        if (rv != 0) {
            fs_log(d, FS_LOG_ERROR, "cannot mount %s: %s", d->cfg.mount,
                   strerror(-rv));
            d->exit_code = 1;
            stop(d);
        }
    }
    /* Serving: listening on both ports and mounted. READY does not wait for
     * a leader, so that systemd can start the members of a new cluster one
     * after the other. */
#ifdef HAVE_SYSTEMD
    if (!d->stopping) {
        sd_notify(0, "READY=1");
    }
#endif
    fs_log(d, FS_LOG_INFO, "node %llu: peers on %s, clients on %s%s%s",
           (unsigned long long)d->cfg.id, fs_config_self_addr(&d->cfg),
           d->cfg.client_addr, d->mount != NULL ? ", mounted on " : "",
           d->mount != NULL ? d->cfg.mount : "");

    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (d->mount != NULL) {
        fs_mount_free(d->mount);
        d->mount = NULL;
    }
    store_close(&d->store);
    rv = uv_loop_close(&d->loop);
    if (rv != 0) {
        fs_log(d, FS_LOG_WARN, "event loop closed with handles open");
    }
    return d->exit_code;
}
