/* The simulator's PRNG, its event heap, and the model snapshot format. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sim_rng_init(struct sim_rng *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        g->s[i] = splitmix64(&x);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(struct sim_rng *g, uint64_t n)
{
    return n == 0 ? 0 : sim_rng_next(g) % n;
}

uint64_t sim_rng_between(struct sim_rng *g, uint64_t lo, uint64_t hi)
{
    return hi <= lo ? lo : lo + sim_rng_below(g, hi - lo + 1);
}

bool sim_rng_chance(struct sim_rng *g, unsigned per10k)
{
    return sim_rng_below(g, 10000) < per10k;
}

uint64_t sim_mix(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed ^ (a * 0x9e3779b97f4a7c15ULL) ^ (b << 32);
    splitmix64(&x);
    return splitmix64(&x);
}

/* ---- Event heap ---- */

void sim_queue_init(struct sim_queue *q)
{
    memset(q, 0, sizeof(*q));
}

void sim_queue_close(struct sim_queue *q)
{
    for (size_t i = 0; i < q->n; i++) {
        sim_msg_free(q->heap[i].msg);
    }
    free(q->heap);
    memset(q, 0, sizeof(*q));
}

static bool ev_less(const struct sim_event *a, const struct sim_event *b)
{
    if (a->time != b->time) {
        return a->time < b->time;
    }
    if (a->node != b->node) {
        return a->node < b->node;
    }
    if (a->kind != b->kind) {
        return a->kind < b->kind;
    }
    return a->seq < b->seq;
}

void sim_queue_push(struct sim_queue *q, struct sim_event *e)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 256;
        q->heap = realloc(q->heap, q->cap * sizeof(*q->heap));
        if (q->heap == NULL) {
            abort();
        }
    }
    e->seq = q->next_seq++;
    size_t i = q->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(e, &q->heap[parent])) {
            break;
        }
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = *e;
}

bool sim_queue_pop(struct sim_queue *q, struct sim_event *e)
{
    if (q->n == 0) {
        return false;
    }
    *e = q->heap[0];
    struct sim_event last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < q->n && ev_less(&q->heap[l], best)) {
            m = l;
            best = &q->heap[l];
        }
        if (r < q->n && ev_less(&q->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        q->heap[i] = q->heap[m];
        i = m;
    }
    if (q->n > 0) {
        q->heap[i] = last;
    }
    return true;
}

/* ---- Model snapshot bytes ---- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

void sim_snap_encode(const uint64_t *regs, raft_index index, uint8_t *out)
{
    memcpy(out, "RSNP", 4);
    put64(out + 4, index);
    uint32_t n = SIM_KEYS;
    for (int i = 0; i < 4; i++) {
        out[12 + i] = (uint8_t)(n >> (8 * i));
    }
    for (unsigned k = 0; k < SIM_KEYS; k++) {
        put64(out + 16 + 8 * k, regs[k]);
    }
}

int sim_snap_decode(const uint8_t *buf, size_t len, uint64_t *regs,
                    raft_index *index)
{
    if (buf == NULL || len != SIM_SNAP_LEN || memcmp(buf, "RSNP", 4) != 0) {
        return -1;
    }
    uint32_t n = 0;
    for (int i = 0; i < 4; i++) {
        n |= (uint32_t)buf[12 + i] << (8 * i);
    }
    if (n != SIM_KEYS) {
        return -1;
    }
    *index = get64(buf + 4);
    for (unsigned k = 0; k < SIM_KEYS; k++) {
        regs[k] = get64(buf + 16 + 8 * k);
    }
    return 0;
}
