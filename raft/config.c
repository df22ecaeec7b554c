/* Cluster configurations: the byte codec, lookups, and the log's history. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

int raft_config_encode(const struct raft_config *c, struct raft_buf *out)
{
    size_t len = 2, i, off;
    uint8_t *p;
    if (c == NULL || out == NULL || c->n > RAFT_MAX_SERVERS) {
        return RAFT_ERR_INVALID;
    }
    for (i = 0; i < c->n; i++) {
        size_t alen = strnlen(c->servers[i].addr, RAFT_ADDR_MAX);
        if (alen >= RAFT_ADDR_MAX) {
            return RAFT_ERR_INVALID;
        }
        len += 8 + 1 + 1 + alen;
    }
    p = malloc(len);
    if (p == NULL) {
        return RAFT_ERR_NOMEM;
    }
    p[0] = 1;
    p[1] = (uint8_t)c->n;
    off = 2;
    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        size_t alen = strlen(s->addr);
        unsigned b;
        for (b = 0; b < 8; b++) {
            p[off++] = (uint8_t)(s->id >> (8 * b));
        }
        p[off++] = s->role;
        p[off++] = (uint8_t)alen;
        memcpy(p + off, s->addr, alen);
        off += alen;
    }
    out->base = p;
    out->len = len;
    return 0;
}

int raft_config_decode(const struct raft_buf *buf, struct raft_config *c)
{
    const uint8_t *p;
    size_t off = 2, i, j;
    if (buf == NULL || c == NULL || buf->len < 2 || buf->base == NULL) {
        return RAFT_ERR_CORRUPT;
    }
    p = buf->base;
    if (p[0] != 1 || p[1] > RAFT_MAX_SERVERS) {
        return RAFT_ERR_CORRUPT;
    }
    memset(c, 0, sizeof *c);
    c->n = p[1];
    for (i = 0; i < c->n; i++) {
        struct raft_server *s = &c->servers[i];
        size_t alen;
        unsigned b;
        if (buf->len - off < 10) {
            return RAFT_ERR_CORRUPT;
        }
        s->id = 0;
        for (b = 0; b < 8; b++) {
            s->id |= (uint64_t)p[off++] << (8 * b);
        }
        s->role = p[off++];
        alen = p[off++];
        if (alen >= RAFT_ADDR_MAX || buf->len - off < alen) {
            return RAFT_ERR_CORRUPT;
        }
        memcpy(s->addr, p + off, alen);
        s->addr[alen] = '\0';
        if (memchr(s->addr, '\0', alen) != NULL) {
            return RAFT_ERR_CORRUPT;
        }
        off += alen;
        if (s->id == 0 || (s->role != RAFT_VOTER && s->role != RAFT_LEARNER)) {
            return RAFT_ERR_CORRUPT;
        }
        for (j = 0; j < i; j++) {
            if (c->servers[j].id == s->id) {
                return RAFT_ERR_CORRUPT;
            }
        }
    }
    if (off != buf->len) {
        return RAFT_ERR_CORRUPT;
    }
    return 0;
}

const struct raft_server *raft_config_get(const struct raft_config *c,
                                          raft_id id)
{
    unsigned i;
    if (c == NULL || id == 0) {
        return NULL;
    }
    for (i = 0; i < c->n && i < RAFT_MAX_SERVERS; i++) {
        if (c->servers[i].id == id) {
            return &c->servers[i];
        }
    }
    return NULL;
}

int raft_bootstrap_entry(const struct raft_config *c, struct raft_entry *out)
{
    int rv;
    if (out == NULL || c == NULL || raft__n_voters(c) == 0) {
        return RAFT_ERR_INVALID;
    }
    memset(out, 0, sizeof *out);
    rv = raft_config_encode(c, &out->data);
    if (rv != 0) {
        return rv;
    }
    out->term = 1;
    out->index = 1;
    out->type = RAFT_ENTRY_CONFIG;
    return 0;
}

bool raft__is_voter(const struct raft_config *c, raft_id id)
{
    const struct raft_server *s = raft_config_get(c, id);
    return s != NULL && s->role == RAFT_VOTER;
}

unsigned raft__n_voters(const struct raft_config *c)
{
    unsigned i, n = 0;
    for (i = 0; i < c->n && i < RAFT_MAX_SERVERS; i++) {
        n += c->servers[i].role == RAFT_VOTER;
    }
    return n;
}

int raft__confs_init(struct raft__confs *cs, raft_index index,
                     const struct raft_config *c)
{
    memset(cs, 0, sizeof *cs);
    return raft__confs_push(cs, index, c);
}

void raft__confs_close(struct raft__confs *cs)
{
    free(cs->v);
    memset(cs, 0, sizeof *cs);
}

int raft__confs_push(struct raft__confs *cs, raft_index index,
                     const struct raft_config *c)
{
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 4;
        struct raft__conf_ent *v = realloc(cs->v, cap * sizeof *v);
        if (v == NULL) {
            return RAFT_ERR_NOMEM;
        }
        cs->v = v;
        cs->cap = cap;
    }
    cs->v[cs->n].index = index;
    cs->v[cs->n].c = *c;
    cs->n++;
    return 0;
}

bool raft__confs_truncate(struct raft__confs *cs, raft_index from)
{
    size_t n0 = cs->n;
    while (cs->n > 1 && cs->v[cs->n - 1].index >= from) {
        cs->n--;
    }
    return cs->n != n0;
}

void raft__confs_compact(struct raft__confs *cs, raft_index upto)
{
    size_t k = 0;
    /* Keep the last configuration at or before upto as the base. */
    while (k + 1 < cs->n && cs->v[k + 1].index <= upto) {
        k++;
    }
    if (k > 0) {
        memmove(cs->v, cs->v + k, (cs->n - k) * sizeof *cs->v);
        cs->n -= k;
    }
}

const struct raft__conf_ent *raft__confs_at(const struct raft__confs *cs,
                                            raft_index i)
{
    size_t k = cs->n;
    while (k > 1 && cs->v[k - 1].index > i) {
        k--;
    }
    return &cs->v[k - 1];
}

const struct raft__conf_ent *raft__confs_last(const struct raft__confs *cs)
{
    return &cs->v[cs->n - 1];
}
