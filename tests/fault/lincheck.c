/* Wing-Gong/Lowe linearizability search with memoization, one key at a time. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

/*
 * The search follows Lowe, "Testing for linearizability" (2017), as
 * Porcupine implements it: the calls and returns of the key's operations
 * form one doubly-linked list in time order. Walking from the head, a call
 * whose operation the model accepts in the current state is linearized: its
 * call and return are lifted out of the list, the (linearized set, state)
 * pair is memoized, and the walk restarts. Reaching a return means its
 * operation should have been linearized by then: backtrack to the last
 * choice. Unknown operations return at +infinity, so they may be linearized
 * anywhere after their invoke or never: the search succeeds as soon as the
 * first return left in the list is at +infinity. A maybe operation has two
 * alternatives, its effect or none, both within its interval: backtracking
 * into it tries the second before moving on.
 */

#define ABSENT 0u

/* String interning: state and values are small integers; 0 is "absent". */
struct strtab {
    char **s;      /* s[id] for id >= 1; owned */
    size_t *len;
    size_t n;      /* ids in use, including the absent slot */
    size_t cap;
    uint32_t *slots; /* open addressing: id or 0 */
    size_t nslots;
};

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void strtab_close(struct strtab *t)
{
    for (size_t i = 1; i < t->n; i++) {
        free(t->s[i]);
    }
    free(t->s);
    free(t->len);
    free(t->slots);
}

static int strtab_grow(struct strtab *t)
{
    size_t nslots = t->nslots ? 2 * t->nslots : 1024;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL) {
        return -ENOMEM;
    }
    for (size_t id = 1; id < t->n; id++) {
        size_t i = hash_bytes(t->s[id], t->len[id], 14695981039346656037ull) &
                   (nslots - 1);
        while (slots[i] != 0) {
            i = (i + 1) & (nslots - 1);
        }
        slots[i] = (uint32_t)id;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

/* Returns the id of s[0..len) (interning a copy) in *id; 0 or -ENOMEM. */
static int strtab_intern(struct strtab *t, const char *s, size_t len,
                         uint32_t *id)
{
    if (2 * (t->n + 1) > t->nslots && strtab_grow(t) != 0) {
        return -ENOMEM;
    }
    size_t i = hash_bytes(s, len, 14695981039346656037ull) & (t->nslots - 1);
    while (t->slots[i] != 0) {
        uint32_t c = t->slots[i];
        if (t->len[c] == len && memcmp(t->s[c], s, len) == 0) {
            *id = c;
            return 0;
        }
        i = (i + 1) & (t->nslots - 1);
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **ns = realloc(t->s, cap * sizeof *ns);
        if (ns == NULL) {
            return -ENOMEM;
        }
        t->s = ns;
        size_t *nl = realloc(t->len, cap * sizeof *nl);
        if (nl == NULL) {
            return -ENOMEM;
        }
        t->len = nl;
        t->cap = cap;
        if (t->n == 0) {
            t->s[0] = NULL; /* the absent slot */
            t->len[0] = 0;
            t->n = 1;
        }
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    t->s[t->n] = copy;
    t->len[t->n] = len;
    t->slots[i] = (uint32_t)t->n;
    *id = (uint32_t)t->n++;
    return 0;
}

/* The memo: a set of (linearized bitset, state) pairs. */
struct memo {
    uint64_t *arena; /* records of 1 + words uint64s: state, bits */
    size_t used;     /* uint64s used */
    size_t cap;
    size_t *slots;   /* record offset + 1, or 0 */
    size_t nslots;
    size_t count;
    size_t words;
};

static void memo_close(struct memo *m)
{
    free(m->arena);
    free(m->slots);
}

static uint64_t memo_hash(const uint64_t *bits, size_t words, uint64_t state)
{
    uint64_t h = state * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < words; i++) {
        h ^= bits[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return h ^ (h >> 29);
}

static size_t memo_bytes(const struct memo *m)
{
    return m->cap * sizeof(uint64_t) + m->nslots * sizeof(size_t);
}

static int memo_rehash(struct memo *m)
{
    size_t nslots = m->nslots ? 2 * m->nslots : 4096;
    size_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL) {
        return -ENOMEM;
    }
    size_t rec = 1 + m->words;
    for (size_t off = 0; off < m->used; off += rec) {
        size_t i = memo_hash(m->arena + off + 1, m->words, m->arena[off]) &
                   (nslots - 1);
        while (slots[i] != 0) {
            i = (i + 1) & (nslots - 1);
        }
        slots[i] = off + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

/* Adds (bits, state) unless present. Returns 1 if added, 0 if it was there,
 * -ENOMEM. */
static int memo_add(struct memo *m, const uint64_t *bits, uint64_t state)
{
    if (2 * (m->count + 1) > m->nslots && memo_rehash(m) != 0) {
        return -ENOMEM;
    }
    size_t rec = 1 + m->words;
    size_t i = memo_hash(bits, m->words, state) & (m->nslots - 1);
    while (m->slots[i] != 0) {
        const uint64_t *r = m->arena + m->slots[i] - 1;
        if (r[0] == state && memcmp(r + 1, bits, m->words * 8) == 0) {
            return 0;
        }
        i = (i + 1) & (m->nslots - 1);
    }
    if (m->used + rec > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64 * rec;
        uint64_t *a = realloc(m->arena, cap * sizeof *a);
        if (a == NULL) {
            return -ENOMEM;
        }
        m->arena = a;
        m->cap = cap;
    }
    m->arena[m->used] = state;
    memcpy(m->arena + m->used + 1, bits, m->words * 8);
    m->slots[i] = m->used + 1;
    m->used += rec;
    m->count++;
    return 1;
}

struct entry {
    size_t op; /* index into the kept ops */
    bool is_call;
    int64_t time;
    struct entry *match;
    struct entry *prev;
    struct entry *next;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->time != y->time) {
        return x->time < y->time ? -1 : 1;
    }
    /* Calls first at equal times: touching intervals count as concurrent,
     * which can only make the checker more permissive, never wrong. */
    if (x->is_call != y->is_call) {
        return x->is_call ? -1 : 1;
    }
    return x->op < y->op ? -1 : (x->op > y->op ? 1 : 0);
}

struct kept {
    const struct fault_op *op;
    size_t orig;     /* index in the caller's array */
    uint32_t arg_id; /* interned arg (w, x) */
    uint32_t out_id; /* interned read output, ABSENT when absent */
};

/* The model's step: is op legal in state, and what state follows. */
static int step(struct strtab *t, const struct kept *k, uint32_t state,
                uint32_t *next, bool *legal)
{
    const struct fault_op *op = k->op;
    bool ok = op->result == FAULT_RES_OK;
    *legal = true;
    *next = state;
    switch (op->kind) {
    case FAULT_OP_READ:
        *legal = state == k->out_id;
        return 0;
    case FAULT_OP_WRITE:
        *next = k->arg_id;
        return 0;
    case FAULT_OP_DELETE:
        if (ok) {
            *legal = op->out_present ? state != ABSENT : state == ABSENT;
        }
        *next = ABSENT;
        return 0;
    case FAULT_OP_CREATE:
        if (ok) {
            *legal = op->out_present ? state != ABSENT : state == ABSENT;
        }
        if (state == ABSENT) {
            *next = k->arg_id;
        }
        return 0;
    case FAULT_OP_APPEND: {
        size_t a = state == ABSENT ? 0 : t->len[state];
        size_t b = strlen(op->arg);
        char *buf = malloc(a + b + 1);
        if (buf == NULL) {
            return -ENOMEM;
        }
        if (a > 0) {
            memcpy(buf, t->s[state], a);
        }
        memcpy(buf + a, op->arg, b);
        int rv = strtab_intern(t, buf, a + b, next);
        free(buf);
        return rv;
    }
    }
    return 0;
}

static void lift(struct entry *e)
{
    e->prev->next = e->next;
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    struct entry *m = e->match;
    m->prev->next = m->next;
    if (m->next != NULL) {
        m->next->prev = m->prev;
    }
}

static void unlift(struct entry *e)
{
    struct entry *m = e->match;
    m->prev->next = m;
    if (m->next != NULL) {
        m->next->prev = m;
    }
    e->prev->next = e;
    if (e->next != NULL) {
        e->next->prev = e;
    }
}

struct frame {
    struct entry *e;
    uint32_t state; /* the state before e was linearized */
    int alt;        /* which of the op's alternatives was taken */
};

/* The search's working state, shared by the loop and try_linearize. */
struct search {
    const struct kept *kept;
    struct strtab *t;
    struct memo *memo;
    uint64_t *bits;
    struct frame *stack;
    size_t depth;
    uint32_t state;
    uint64_t max_steps;
    uint64_t max_bytes;
    struct fault_key_result *res;
};

/* A maybe op has two alternatives (0: its effect, 1: nothing); every other
 * op has one. */
static int alternatives(const struct kept *k)
{
    return k->op->result == FAULT_RES_MAYBE ? 2 : 1;
}

/* Tries to linearize e's op now, from alternative alt on. Returns 1 if it
 * did (pushed, lifted), 0 if no alternative is legal and new, -ERANGE when
 * the budget ran out, -ENOMEM. */
static int try_linearize(struct search *s, struct entry *e, int alt)
{
    const struct kept *k = &s->kept[e->op];
    for (; alt < alternatives(k); alt++) {
        if (s->res->steps++ >= s->max_steps ||
            memo_bytes(s->memo) > s->max_bytes) {
            return -ERANGE;
        }
        uint32_t next = s->state;
        bool legal = true;
        if (alt == 0 && step(s->t, k, s->state, &next, &legal) != 0) {
            return -ENOMEM;
        }
        if (!legal) {
            continue;
        }
        s->bits[e->op / 64] |= (uint64_t)1 << (e->op % 64);
        int added = memo_add(s->memo, s->bits, next);
        if (added < 0) {
            return added;
        }
        if (added) {
            s->stack[s->depth++] =
                (struct frame){.e = e, .state = s->state, .alt = alt};
            s->state = next;
            lift(e);
            return 1;
        }
        s->bits[e->op / 64] &= ~((uint64_t)1 << (e->op % 64));
    }
    return 0;
}

void fault_key_result_close(struct fault_key_result *res)
{
    free(res->prefix);
    free(res->prefix_state);
    free(res->pending);
    memset(res, 0, sizeof *res);
}


static int search(const struct kept *kept, size_t m, struct strtab *t,
                  const struct fault_check_opts *opts,
                  struct fault_key_result *res);

int fault_check_key(const struct fault_op *ops, size_t n,
                    const struct fault_check_opts *opts,
                    struct fault_key_result *res)
{
    memset(res, 0, sizeof *res);
    struct strtab t = {0};
    struct kept *kept = calloc(n ? n : 1, sizeof *kept);
    int rv = -ENOMEM;
    if (kept == NULL) {
        goto out;
    }
    uint32_t dummy;
    if (strtab_intern(&t, "", 0, &dummy) != 0) { /* sets up the absent slot */
        goto out;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct fault_op *op = &ops[i];
        /* A failed op surely did nothing; a read that did not return
         * tells nothing. */
        if (op->result == FAULT_RES_FAIL ||
            (op->kind == FAULT_OP_READ && op->result != FAULT_RES_OK)) {
            continue;
        }
        struct kept *k = &kept[m++];
        k->op = op;
        k->orig = i;
        k->out_id = ABSENT;
        if (op->arg != NULL &&
            strtab_intern(&t, op->arg, strlen(op->arg), &k->arg_id) != 0) {
            goto out;
        }
        if (op->kind == FAULT_OP_READ && op->out_present &&
            strtab_intern(&t, op->out ? op->out : "",
                          op->out ? strlen(op->out) : 0, &k->out_id) != 0) {
            goto out;
        }
    }
    res->n_ops = m;
    rv = search(kept, m, &t, opts, res);
out:
    free(kept);
    strtab_close(&t);
    return rv;
}

/* On a violation: the ops that were pending when the search got stuck. */
static int fill_violation(const struct kept *kept, size_t m,
                          const struct strtab *t, const size_t *best,
                          size_t n_best, uint32_t best_state, size_t blocking,
                          struct fault_key_result *res)
{
    bool *in = calloc(m ? m : 1, sizeof *in);
    res->prefix = malloc((n_best ? n_best : 1) * sizeof *res->prefix);
    res->pending = malloc((m ? m : 1) * sizeof *res->pending);
    if (in == NULL || res->prefix == NULL || res->pending == NULL) {
        free(in);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n_best; i++) {
        in[best[i]] = true;
        res->prefix[i] = kept[best[i]].orig;
    }
    res->n_prefix = n_best;
    if (best_state != ABSENT) {
        res->prefix_state = strdup(t->s[best_state]);
        if (res->prefix_state == NULL) {
            free(in);
            return -ENOMEM;
        }
    }
    res->blocking = kept[blocking].orig;
    int64_t until = kept[blocking].op->complete;
    res->n_pending = 0;
    for (size_t i = 0; i < m; i++) {
        if (!in[i] && kept[i].op->invoke <= until) {
            res->pending[res->n_pending++] = kept[i].orig;
        }
    }
    free(in);
    return 0;
}

static int search(const struct kept *kept, size_t m, struct strtab *t,
                  const struct fault_check_opts *opts,
                  struct fault_key_result *res)
{
    uint64_t max_steps = opts && opts->max_steps ? opts->max_steps : 50000000;
    uint64_t max_bytes = opts && opts->max_cache_bytes
                             ? opts->max_cache_bytes
                             : (uint64_t)1 << 30;
    size_t words = (m + 63) / 64;
    struct entry *ents = calloc(2 * m + 1, sizeof *ents);
    uint64_t *bits = calloc(words ? words : 1, sizeof *bits);
    struct frame *stack = calloc(m ? m : 1, sizeof *stack);
    size_t *best = calloc(m ? m : 1, sizeof *best);
    struct memo memo = {.words = words};
    int rv = -ENOMEM;
    if (ents == NULL || bits == NULL || stack == NULL || best == NULL) {
        goto out;
    }
    struct entry *list = ents + 1;
    for (size_t i = 0; i < m; i++) {
        const struct fault_op *op = kept[i].op;
        list[2 * i] = (struct entry){.op = i, .is_call = true,
                                     .time = op->invoke};
        list[2 * i + 1] = (struct entry){
            .op = i, .is_call = false,
            .time = op->result == FAULT_RES_UNKNOWN ? FAULT_TIME_INF
                                                    : op->complete};
    }
    qsort(list, 2 * m, sizeof *list, entry_cmp);
    /* Link the matches: find each op's call and return after sorting. */
    {
        struct entry **callp = calloc(m ? m : 1, sizeof *callp);
        if (callp == NULL) {
            goto out;
        }
        for (size_t i = 0; i < 2 * m; i++) {
            if (list[i].is_call) {
                callp[list[i].op] = &list[i];
            }
        }
        for (size_t i = 0; i < 2 * m; i++) {
            if (!list[i].is_call) {
                list[i].match = callp[list[i].op];
                callp[list[i].op]->match = &list[i];
            }
        }
        free(callp);
    }
    struct entry *head = &ents[0];
    head->prev = NULL;
    head->next = m ? &list[0] : NULL;
    for (size_t i = 0; i < 2 * m; i++) {
        list[i].prev = i == 0 ? head : &list[i - 1];
        list[i].next = i + 1 < 2 * m ? &list[i + 1] : NULL;
    }

    struct search ctx = {.kept = kept, .t = t, .memo = &memo, .bits = bits,
                         .stack = stack, .state = ABSENT,
                         .max_steps = max_steps, .max_bytes = max_bytes,
                         .res = res};
    size_t n_best = 0, blocking = 0;
    uint32_t best_state = ABSENT;
    bool have_best = false;
    struct entry *e = head->next;
    res->verdict = FAULT_VERDICT_OK;
    while (e != NULL) {
        if (!e->is_call && e->time == FAULT_TIME_INF) {
            break; /* every op with a known completion is linearized */
        }
        if (e->is_call) {
            int got = try_linearize(&ctx, e, 0);
            if (got < 0) {
                rv = got == -ERANGE ? 0 : got;
                if (got == -ERANGE) {
                    res->verdict = FAULT_VERDICT_UNKNOWN;
                }
                goto out;
            }
            e = got ? head->next : e->next;
            continue;
        }
        /* A return: its op had to be linearized by now. */
        if (!have_best || ctx.depth > n_best) {
            have_best = true;
            n_best = ctx.depth;
            for (size_t i = 0; i < ctx.depth; i++) {
                best[i] = stack[i].e->op;
            }
            best_state = ctx.state;
            blocking = e->op;
        }
        if (ctx.depth == 0) {
            res->verdict = FAULT_VERDICT_BAD;
            rv = fill_violation(kept, m, t, best, n_best, best_state,
                                blocking, res);
            goto out;
        }
        /* Backtrack: undo the last choice, try its next alternative, else
         * the calls after it. */
        struct frame f = stack[--ctx.depth];
        ctx.state = f.state;
        bits[f.e->op / 64] &= ~((uint64_t)1 << (f.e->op % 64));
        unlift(f.e);
        int got = try_linearize(&ctx, f.e, f.alt + 1);
        if (got < 0) {
            rv = got == -ERANGE ? 0 : got;
            if (got == -ERANGE) {
                res->verdict = FAULT_VERDICT_UNKNOWN;
            }
            goto out;
        }
        e = got ? head->next : f.e->next;
    }
    rv = 0;
out:
    free(ents);
    free(bits);
    free(stack);
    free(best);
    memo_close(&memo);
    return rv;
}
