/* The driver's transport: raft/node.h's interface carried by net/. */
#include <string.h>

#include "daemon.h"

static int tr_send(void *data, const struct raft_message *m)
{
    struct fs_daemon *d = data;
    return net_transport_send(d->net, m);
}

static int tr_forward(void *data, raft_id to, const struct raft_node_forward *f)
{
    struct fs_daemon *d = data;
    struct net_forward nf;
    struct net_forward_result r;

    if (f->kind == RAFT_NODE_FWD_RESULT) {
        memset(&r, 0, sizeof r);
        r.req_id = f->req_id;
        r.status = f->status;
        r.index = f->index;
        r.term = f->term;
        return net_transport_forward_result(d->net, to, &r);
    }
    memset(&nf, 0, sizeof nf);
    nf.req_id = f->req_id;
    switch (f->kind) {
    case RAFT_NODE_FWD_PROPOSE:
        nf.op = NET_FORWARD_PROPOSE;
        nf.command = f->payload;
        break;
    case RAFT_NODE_FWD_CHANGE:
        nf.op = NET_FORWARD_CHANGE;
        nf.change_op = f->op;
        nf.id = f->id;
        memcpy(nf.addr, f->addr, sizeof nf.addr);
        break;
    case RAFT_NODE_FWD_TRANSFER:
        nf.op = NET_FORWARD_TRANSFER;
        nf.id = f->id;
        break;
    default:
        return RAFT_ERR_INVALID;
    }
    return net_transport_forward(d->net, to, &nf);
}

static void tr_flush(void *data)
{
    struct fs_daemon *d = data;
    net_transport_flush(d->net);
}

void fs__transport_iface(struct fs_daemon *d, struct raft_node_transport *t)
{
    t->data = d;
    t->send = tr_send;
    t->forward = tr_forward;
    t->flush = tr_flush;
}

void fs__on_net_message(struct net_transport *t, raft_id from,
                        struct raft_message *m)
{
    struct fs_daemon *d = net_transport_data(t);
    (void)from;
    /* Messages flow while stopping too: the handover of leadership needs
     * the new leader's term to reach us. */
    if (d->node != NULL) {
        raft_node_receive(d->node, m);
    }
    raft_message_close(m);
}

void fs__on_net_forward(struct net_transport *t, raft_id from,
                        const struct net_forward *f)
{
    struct fs_daemon *d = net_transport_data(t);
    struct raft_node_forward nf;

    if (d->node == NULL) {
        return;
    }
    memset(&nf, 0, sizeof nf);
    nf.req_id = f->req_id;
    switch (f->op) {
    case NET_FORWARD_PROPOSE:
        nf.kind = RAFT_NODE_FWD_PROPOSE;
        nf.payload = f->command;
        break;
    case NET_FORWARD_CHANGE:
        nf.kind = RAFT_NODE_FWD_CHANGE;
        nf.op = f->change_op;
        nf.id = f->id;
        memcpy(nf.addr, f->addr, sizeof nf.addr);
        break;
    case NET_FORWARD_TRANSFER:
        nf.kind = RAFT_NODE_FWD_TRANSFER;
        nf.id = f->id;
        break;
    default:
        return;
    }
    raft_node_receive_forward(d->node, from, &nf);
}

void fs__on_net_forward_result(struct net_transport *t, raft_id from,
                               const struct net_forward_result *r)
{
    struct fs_daemon *d = net_transport_data(t);
    struct raft_node_forward nf;

    if (d->node == NULL) {
        return;
    }
    memset(&nf, 0, sizeof nf);
    nf.kind = RAFT_NODE_FWD_RESULT;
    nf.req_id = r->req_id;
    nf.status = r->status;
    nf.index = r->index;
    nf.term = r->term;
    raft_node_receive_forward(d->node, from, &nf);
}

bool fs__net_is_known(struct net_transport *t, raft_id id)
{
    struct fs_daemon *d = net_transport_data(t);
    unsigned i;
    if (d->node != NULL &&
        raft_config_get(raft_configuration(raft_node_core(d->node)), id) !=
            NULL) {
        return true;
    }
    for (i = 0; i < d->cfg.n_peers; i++) {
        if (d->cfg.peers[i].id == id) {
            return true;
        }
    }
    return false;
}

/* The configuration is the authority on who the peers are once the node has
 * one; --peers only seeds the addresses before that. */
void fs__sync_peers(struct fs_daemon *d)
{
    const struct raft_config *c;
    struct raft_config *old = &d->synced_config;
    unsigned i;

    if (d->node == NULL) {
        return;
    }
    c = raft_configuration(raft_node_core(d->node));
    if (c->n == 0) {
        return;
    }
    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        const struct raft_server *was = raft_config_get(old, s->id);
        if (s->id == d->cfg.id || s->addr[0] == '\0') {
            continue;
        }
        if (was == NULL || strcmp(was->addr, s->addr) != 0) {
            if (net_transport_set_peer(d->net, s->id, s->addr) != 0) {
                fs_log(d, FS_LOG_WARN, "peer %llu: bad address '%s'",
                       (unsigned long long)s->id, s->addr);
            }
        }
    }
    for (i = 0; i < old->n; i++) {
        if (old->servers[i].id != d->cfg.id &&
            raft_config_get(c, old->servers[i].id) == NULL) {
            net_transport_remove_peer(d->net, old->servers[i].id);
        }
    }
    *old = *c;
}
