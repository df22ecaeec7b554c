/* The client port: raftfsctl's requests, answered asynchronously. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "daemon.h"

/* ls answers at most this many entries in one response (the client
 * protocol's limit); a longer listing is cut and says so. */
#define LS_MAX NET_DIR_MAX

struct creq {
    struct fs_daemon *d;
    struct net_client_handle *h;
    uint8_t op;
    raft_id member_id;
    char addr[RAFT_ADDR_MAX];
    bool learner;
    unsigned learner_tries;
    char path[NET_PATH_MAX + 1];
    struct raft_buf value; /* owned copy */
    struct net_client_resp resp;
};

uint64_t fs__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void finish(struct creq *c, int status, const char *message)
{
    c->resp.status = status;
    if (message != NULL && c->resp.message[0] == '\0') {
        snprintf(c->resp.message, sizeof c->resp.message, "%s", message);
    }
    net_client_reply(c->h, &c->resp);
    free(c->resp.entries);
    free(c->resp.value.base);
    free(c->value.base);
    free(c);
}

static bool is_delete(uint8_t type)
{
    return type == STORE_CMD_UNLINK || type == STORE_CMD_RMDIR;
}

int fs__propose_cmd(struct fs_daemon *d, struct store_cmd *c,
                    raft_node_propose_cb cb, void *data)
{
    struct raft_buf buf;
    int rv;

    if (!is_delete(c->type)) {
        rv = store_fsm_space_ok(&d->store.fsm, c->data.len + 4096);
        if (rv != 0) {
            return rv;
        }
    }
    c->node = d->cfg.id;
    c->seq = ++d->next_seq;
    c->time_ns = fs__now_ns();
    rv = store_cmd_encode(c, &buf);
    if (rv != 0) {
        return rv;
    }
    raft_node_propose(d->node, &buf, cb, data);
    free(buf.base);
    return 0;
}

/* Splits "a/b/c" into the parent's path "a/b" and the name "c". */
static int split(const char *path, char *parent, size_t plen,
                 const char **name)
{
    const char *end = path + strlen(path);
    const char *slash;
    while (end > path && end[-1] == '/') {
        end--;
    }
    if (end == path) {
        return -EINVAL; /* the root has no name */
    }
    slash = end;
    while (slash > path && slash[-1] != '/') {
        slash--;
    }
    if ((size_t)(slash - path) >= plen) {
        return -ENAMETOOLONG;
    }
    memcpy(parent, path, (size_t)(slash - path));
    parent[slash - path] = '\0';
    *name = slash;
    /* The name ends at `end`: cut trailing slashes in place (path is ours). */
    ((char *)path)[end - path] = '\0';
    return 0;
}

static const char *errtext(int status)
{
    if (status < 0 && status > -1000) {
        return strerror(-status);
    }
    return raft_strerror(status);
}

static void on_applied(void *data, int status, raft_index index,
                       const void *result)
{
    struct creq *c = data;
    const struct store_apply_result *r = result;
    char msg[NET_MESSAGE_MAX];
    (void)index;
    if (status == 0 && r != NULL) {
        status = r->status;
    }
    if (status != 0) {
        snprintf(msg, sizeof msg, "%.200s: %s", c->path, errtext(status));
        finish(c, status, msg);
        return;
    }
    finish(c, 0, NULL);
}

static int propose_path_op(struct creq *c)
{
    struct fs_daemon *d = c->d;
    struct store_cmd cmd;
    struct store_attr parent;
    struct store_attr target;
    char dir[NET_PATH_MAX + 1];
    const char *name;
    int rv;

    rv = split(c->path, dir, sizeof dir, &name);
    if (rv != 0) {
        return c->op == NET_CLIENT_MKDIR ? -EEXIST : rv;
    }
    rv = store_fsm_resolve(&d->store.fsm, STORE_ROOT_INO, dir, strlen(dir),
                           &parent);
    if (rv != 0) {
        return rv;
    }
    if (parent.type != STORE_TYPE_DIR) {
        return -ENOTDIR;
    }
    store_cmd_init(&cmd);
    cmd.parent = parent.ino;
    cmd.name.base = name;
    cmd.name.len = strlen(name);
    switch (c->op) {
    case NET_CLIENT_PUT:
        if (c->value.len > d->cfg.max_value_size) {
            return -EFBIG;
        }
        cmd.type = STORE_CMD_CREATE;
        cmd.mode = 0644;
        cmd.flags = STORE_CREATE_TRUNC | STORE_CREATE_VALUE;
        cmd.data.base = c->value.base;
        cmd.data.len = c->value.len;
        break;
    case NET_CLIENT_RM:
        rv = store_fsm_lookup(&d->store.fsm, parent.ino, name, strlen(name),
                              &target);
        if (rv != 0) {
            return rv;
        }
        cmd.type = target.type == STORE_TYPE_DIR ? STORE_CMD_RMDIR
                                                 : STORE_CMD_UNLINK;
        break;
    case NET_CLIENT_MKDIR:
        cmd.type = STORE_CMD_MKDIR;
        cmd.mode = 0755;
        break;
    default:
        return -EINVAL;
    }
    return fs__propose_cmd(d, &cmd, on_applied, c);
}

static int fill_dir_entry(void *arg, const struct store_dirent *e,
                          const struct store_attr *attr)
{
    struct creq *c = arg;
    struct net_client_dirent *de;
    if (c->resp.n_entries >= LS_MAX) {
        return 1;
    }
    de = &c->resp.entries[c->resp.n_entries++];
    memcpy(de->name, e->name, e->name_len);
    de->name[e->name_len] = '\0';
    de->type = e->type == STORE_TYPE_DIR ? NET_DIRENT_DIR : NET_DIRENT_FILE;
    de->size = attr != NULL ? attr->size : 0;
    return 0;
}

/* Runs the read part of get/ls, or the proposal of put/rm/mkdir, once the
 * read index says the local state is current. */
static void on_read(void *data, int status)
{
    struct creq *c = data;
    struct fs_daemon *d = c->d;
    struct store_attr attr;
    char msg[NET_MESSAGE_MAX];
    void *buf = NULL;
    size_t len = 0;
    int rv = status;

    if (rv != 0) {
        snprintf(msg, sizeof msg, "no quorum: %s", errtext(rv));
        finish(c, rv, msg);
        return;
    }
    switch (c->op) {
    case NET_CLIENT_GET:
        rv = store_fsm_resolve(&d->store.fsm, STORE_ROOT_INO, c->path,
                               strlen(c->path), &attr);
        if (rv == 0 && attr.type == STORE_TYPE_DIR) {
            rv = -EISDIR;
        }
        if (rv == 0) {
            rv = store_fsm_read_all(&d->store.fsm, attr.ino, &buf, &len, NULL);
        }
        if (rv == 0) {
            c->resp.payload = NET_PAYLOAD_VALUE;
            c->resp.value.base = buf;
            c->resp.value.len = len;
        }
        break;
    case NET_CLIENT_LS:
        rv = store_fsm_resolve(&d->store.fsm, STORE_ROOT_INO, c->path,
                               strlen(c->path), &attr);
        if (rv == 0 && attr.type != STORE_TYPE_DIR) {
            rv = -ENOTDIR;
        }
        if (rv == 0) {
            c->resp.entries = calloc(LS_MAX, sizeof *c->resp.entries);
            if (c->resp.entries == NULL) {
                rv = -ENOMEM;
            }
        }
        if (rv == 0) {
            rv = store_fsm_readdir(&d->store.fsm, attr.ino, NULL, 0, true,
                                   LS_MAX, fill_dir_entry, c);
            if (rv >= 0) {
                rv = 0;
                c->resp.payload = NET_PAYLOAD_DIR;
                if (c->resp.n_entries == LS_MAX) {
                    snprintf(c->resp.message, sizeof c->resp.message,
                             "listing cut at %d entries", LS_MAX);
                }
            }
        }
        break;
    default:
        rv = propose_path_op(c);
        if (rv == 0) {
            return; /* on_applied answers */
        }
        break;
    }
    if (rv != 0) {
        snprintf(msg, sizeof msg, "%.200s: %s", c->path, errtext(rv));
        finish(c, rv, msg);
        return;
    }
    finish(c, 0, NULL);
}

static void on_done(void *data, int status)
{
    struct creq *c = data;
    char msg[NET_MESSAGE_MAX];
    if (status != 0) {
        snprintf(msg, sizeof msg, "%s", errtext(status));
        finish(c, status, msg);
        return;
    }
    finish(c, 0, NULL);
}

/* Promotion of a new voter: retried while the learner catches up. */
#define PROMOTE_TRIES 150
#define PROMOTE_EVERY_MS 200

static void on_promoted(void *data, int status);

static void on_promote_timer(uv_timer_t *t)
{
    struct creq *c = t->data;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    raft_node_change(c->d->node, RAFT_PROMOTE, c->member_id, NULL,
                     on_promoted, c);
}

static void on_promoted(void *data, int status)
{
    struct creq *c = data;
    uv_timer_t *t;
    if (status == RAFT_ERR_NOT_CAUGHT_UP && c->learner_tries++ < PROMOTE_TRIES &&
        !c->d->stopping) {
        t = malloc(sizeof *t);
        if (t != NULL) {
            uv_timer_init(&c->d->loop, t);
            t->data = c;
            uv_timer_start(t, on_promote_timer, PROMOTE_EVERY_MS, 0);
            return;
        }
    }
    if (status != 0) {
        char msg[NET_MESSAGE_MAX];
        snprintf(msg, sizeof msg,
                 "added as a learner, but not promoted: %s (retry with "
                 "'member promote %llu')",
                 errtext(status), (unsigned long long)c->member_id);
        finish(c, status, msg);
        return;
    }
    finish(c, 0, NULL);
}

static void on_learner_added(void *data, int status)
{
    struct creq *c = data;
    if (status != 0) {
        on_done(c, status);
        return;
    }
    raft_node_change(c->d->node, RAFT_PROMOTE, c->member_id, NULL,
                     on_promoted, c);
}

static void fill_status(struct fs_daemon *d, struct net_client_resp *r)
{
    const struct raft *core = raft_node_core(d->node);
    struct raft_progress_info info[RAFT_MAX_SERVERS];
    const struct raft_server *ls;
    struct net_client_status *s = &r->info;
    raft_index last = raft_last_index(core);
    size_t n;
    size_t i;

    r->payload = NET_PAYLOAD_STATUS;
    s->id = d->cfg.id;
    s->role = (uint8_t)raft_role(core);
    s->term = raft_current_term(core);
    s->leader = raft_leader(core);
    ls = raft_config_get(raft_configuration(core), s->leader);
    if (ls != NULL) {
        snprintf(s->leader_addr, sizeof s->leader_addr, "%s", ls->addr);
    }
    s->commit = raft_commit_index(core);
    s->applied = raft_node_applied(d->node);
    s->last_index = last;
    s->n_peers = 0;
    if (s->role == RAFT_LEADER) {
        n = raft_progress(core, info, RAFT_MAX_SERVERS);
        for (i = 0; i < n && i < RAFT_MAX_SERVERS; i++) {
            struct net_client_peer *p = &s->peers[s->n_peers++];
            p->id = info[i].id;
            p->match = info[i].match;
            p->next = info[i].next;
            p->lag = last > info[i].match ? last - info[i].match : 0;
            p->state = info[i].state;
        }
    }
}

static void fill_members(struct fs_daemon *d, struct net_client_resp *r)
{
    const struct raft *core = raft_node_core(d->node);
    const struct raft_config *c = raft_configuration(core);
    unsigned i;
    r->payload = NET_PAYLOAD_MEMBERS;
    r->n_members = 0;
    for (i = 0; i < c->n && i < RAFT_MAX_SERVERS; i++) {
        struct net_client_member *m = &r->members[r->n_members++];
        m->id = c->servers[i].id;
        snprintf(m->addr, sizeof m->addr, "%s", c->servers[i].addr);
        m->role = c->servers[i].role;
        m->is_leader = m->id == raft_leader(core);
    }
}

void fs__on_client_request(struct net_client_server *s,
                           struct net_client_handle *h,
                           const struct net_client_req *req)
{
    struct fs_daemon *d = net_client_server_data(s);
    struct creq *c = calloc(1, sizeof *c);
    struct net_client_resp err;

    if (c == NULL) {
        memset(&err, 0, sizeof err);
        err.status = -ENOMEM;
        net_client_reply(h, &err);
        return;
    }
    c->d = d;
    c->h = h;
    c->op = req->op;
    c->member_id = req->member_id;
    c->learner = req->learner;
    memcpy(c->addr, req->addr, sizeof c->addr);
    memcpy(c->path, req->path, sizeof c->path);
    c->path[NET_PATH_MAX] = '\0';
    if (d->stopping || d->node == NULL) {
        finish(c, RAFT_ERR_SHUTDOWN, "node is stopping");
        return;
    }
    if (req->op == NET_CLIENT_PUT && req->value.len > 0) {
        if (req->value.len > d->cfg.max_value_size) {
            char msg[NET_MESSAGE_MAX];
            snprintf(msg, sizeof msg,
                     "value of %zu bytes is over the limit of %llu",
                     req->value.len,
                     (unsigned long long)d->cfg.max_value_size);
            finish(c, -EFBIG, msg);
            return;
        }
        c->value.base = malloc(req->value.len);
        if (c->value.base == NULL) {
            finish(c, -ENOMEM, NULL);
            return;
        }
        memcpy(c->value.base, req->value.base, req->value.len);
        c->value.len = req->value.len;
    }

    switch (req->op) {
    case NET_CLIENT_STATUS:
        fill_status(d, &c->resp);
        finish(c, 0, NULL);
        break;
    case NET_CLIENT_MEMBERS:
        fill_members(d, &c->resp);
        finish(c, 0, NULL);
        break;
    case NET_CLIENT_MEMBER_ADD:
        /* A voter joins as a learner first and is promoted once it has
         * caught up (thesis §4.2.1), so it never stalls commits. */
        raft_node_change(d->node, RAFT_ADD_LEARNER, c->member_id, c->addr,
                         c->learner ? on_done : on_learner_added, c);
        break;
    case NET_CLIENT_MEMBER_PROMOTE:
        raft_node_change(d->node, RAFT_PROMOTE, c->member_id, NULL, on_done,
                         c);
        break;
    case NET_CLIENT_MEMBER_REMOVE:
        raft_node_change(d->node, RAFT_REMOVE, c->member_id, NULL, on_done, c);
        break;
    case NET_CLIENT_LEADER_TRANSFER:
        raft_node_transfer(d->node, c->member_id, on_done, c);
        break;
    case NET_CLIENT_SNAPSHOT:
        raft_node_snapshot(d->node, on_done, c);
        break;
    case NET_CLIENT_GET:
    case NET_CLIENT_LS:
        raft_node_read_lease(d->node, on_read, c);
        break;
    case NET_CLIENT_PUT:
    case NET_CLIENT_RM:
    case NET_CLIENT_MKDIR:
        raft_node_read(d->node, on_read, c);
        break;
    default:
        finish(c, -EINVAL, "unknown request");
        break;
    }
}
