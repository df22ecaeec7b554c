/* Unit tests of the node driver: real cores on one libuv loop, an in-memory
 * storage fake on the thread pool and an in-process transport. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node.h"

#define N 3
#define MAXKEYS 64

/* Storage fake: a log, a hard state and registers "k=v", under a mutex
 * (the driver writes on a pool thread, the test reads on the loop). */
struct fake_store {
    pthread_mutex_t mu;
    struct raft_entry *log;
    size_t n_log;
    raft_term term;
    raft_id vote;
    raft_index applied;
    unsigned writes;
    unsigned applies_on_loop; /* apply-only writes on the loop thread */
    unsigned applies_on_pool; /* ... on a thread-pool thread */
    unsigned syncs_on_loop;   /* writes of entries on the loop thread */
    unsigned syncs_on_pool;   /* ... on a thread-pool thread */
    unsigned unsent_at_sync;  /* loop-thread syncs begun with unsent messages */
    unsigned mixed;           /* writes of entries that also apply */
    raft_id id;
    char keys[MAXKEYS][16];
    char vals[MAXKEYS][64];
    unsigned n_keys;
};

struct queued {
    struct queued *next;
    bool is_forward;
    raft_id from;
    raft_id to;
    struct raft_message m;
    struct raft_node_forward f;
    void *payload;
};

struct cluster {
    uv_loop_t loop;
    uv_idle_t deliver;
    struct raft_node *nodes[N + 1];
    struct fake_store st[N + 1];
    bool down[N + 1];
    bool closed[N + 1];
    struct queued *head;
    struct queued *tail;
    /* Messages each node sent since it last called transport.flush (only
     * with a flush: see transport_flush_mode), and its flush calls. Loop
     * thread only. */
    bool with_flush;
    unsigned unsent[N + 1];
    unsigned flushes[N + 1];
};

static struct cluster C;

static void set_reg(struct fake_store *s, const char *k, size_t klen,
                    const char *v, size_t vlen)
{
    unsigned i;
    for (i = 0; i < s->n_keys; i++) {
        if (strlen(s->keys[i]) == klen && memcmp(s->keys[i], k, klen) == 0) {
            break;
        }
    }
    if (i == s->n_keys) {
        ck_assert_uint_lt(s->n_keys, MAXKEYS);
        snprintf(s->keys[i], sizeof s->keys[i], "%.*s", (int)klen, k);
        s->n_keys++;
    }
    snprintf(s->vals[i], sizeof s->vals[i], "%.*s", (int)vlen, v);
}

static bool get_reg(struct fake_store *s, const char *k, char *out)
{
    unsigned i;
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->n_keys; i++) {
        if (strcmp(s->keys[i], k) == 0) {
            strcpy(out, s->vals[i]);
            found = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

static void copy_entry(struct raft_entry *dst, const struct raft_entry *src)
{
    *dst = *src;
    dst->data.base = NULL;
    if (src->data.len > 0) {
        dst->data.base = malloc(src->data.len);
        memcpy(dst->data.base, src->data.base, src->data.len);
    }
}

static pthread_t loop_thread;
static bool inline_apply_mode; /* storage.inline_apply for the next cluster */
static bool inline_sync_mode;  /* storage.inline_sync ... */
static bool transport_flush_mode; /* transport.flush set ... */
static unsigned entries_write_us; /* a write of entries takes this long */

static int st_write(void *data, struct raft_node_batch *b)
{
    struct fake_store *s = data;
    size_t i;
    pthread_mutex_lock(&s->mu);
    s->writes++;
    if (b->n_entries > 0) {
        if (pthread_equal(pthread_self(), loop_thread)) {
            s->syncs_on_loop++;
            /* The appends or acks sent before it have left (only the loop
             * thread touches C.unsent). */
            if (C.unsent[s->id] != 0) {
                s->unsent_at_sync++;
            }
        } else {
            s->syncs_on_pool++;
        }
    }
    if (b->n_entries > 0 && b->n_committed > 0) {
        s->mixed++;
    }
    if (b->n_entries > 0 && entries_write_us > 0) {
        usleep(entries_write_us); /* a sync: things queue up meanwhile */
    }
    if (b->n_entries == 0 && b->n_committed > 0 && !b->has_hard_state) {
        if (pthread_equal(pthread_self(), loop_thread)) {
            s->applies_on_loop++;
        } else {
            s->applies_on_pool++;
        }
    }
    if (b->has_hard_state) {
        s->term = b->term;
        s->vote = b->vote;
    }
    if (b->n_entries > 0) {
        raft_index first = b->entries[0].index;
        while (s->n_log > 0 && s->log[s->n_log - 1].index >= first) {
            free(s->log[--s->n_log].data.base);
        }
        s->log = realloc(s->log, (s->n_log + b->n_entries) * sizeof *s->log);
        for (i = 0; i < b->n_entries; i++) {
            copy_entry(&s->log[s->n_log++], &b->entries[i]);
        }
    }
    for (i = 0; i < b->n_committed; i++) {
        const struct raft_entry *e = &b->committed[i];
        if (e->index <= s->applied) {
            continue;
        }
        if (e->type == RAFT_ENTRY_COMMAND &&
            e->data.len > RAFT_NODE_ENVELOPE) {
            const char *cmd = (const char *)e->data.base + RAFT_NODE_ENVELOPE;
            size_t len = e->data.len - RAFT_NODE_ENVELOPE;
            const char *eq = memchr(cmd, '=', len);
            if (eq != NULL) {
                set_reg(s, cmd, (size_t)(eq - cmd), eq + 1,
                        len - (size_t)(eq - cmd) - 1);
            }
        }
        b->statuses[i] = 0;
        b->results[i] = malloc(sizeof(raft_index));
        *(raft_index *)b->results[i] = e->index;
        s->applied = e->index;
    }
    b->applied = s->applied;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int st_snapshot(void *data, raft_index *index, uint64_t *size)
{
    (void)data;
    (void)index;
    (void)size;
    return -ENOTSUP;
}

static int st_snapshot_read(void *data, raft_index index, uint64_t offset,
                            void *buf, uint32_t len)
{
    (void)data;
    (void)index;
    (void)offset;
    (void)buf;
    (void)len;
    return -ENOENT;
}

/* Transport fake: messages are deep-copied and delivered from an idle
 * handle, so nothing is delivered inside the sender's call. */
static void enqueue(struct queued *q)
{
    q->next = NULL;
    if (C.tail != NULL) {
        C.tail->next = q;
    } else {
        C.head = q;
    }
    C.tail = q;
}

static int tr_send(void *data, const struct raft_message *m)
{
    struct queued *q = calloc(1, sizeof *q);
    size_t i;
    (void)data;
    q->from = m->from;
    q->to = m->to;
    q->m = *m;
    if (C.with_flush) {
        C.unsent[m->from]++;
    }
    if (m->type == RAFT_MSG_APPEND && m->append.n_entries > 0) {
        q->m.append.entries =
            calloc(m->append.n_entries, sizeof *q->m.append.entries);
        for (i = 0; i < m->append.n_entries; i++) {
            copy_entry(&q->m.append.entries[i], &m->append.entries[i]);
        }
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        q->m.snapshot.data.base = NULL;
        q->m.snapshot.data.len = 0;
    }
    enqueue(q);
    return 0;
}

static raft_id self_of(void *data)
{
    return (raft_id)(uintptr_t)data;
}

static int tr_forward(void *data, raft_id to, const struct raft_node_forward *f)
{
    struct queued *q = calloc(1, sizeof *q);
    q->is_forward = true;
    q->from = self_of(data);
    q->to = to;
    q->f = *f;
    if (f->payload.len > 0) {
        q->payload = malloc(f->payload.len);
        memcpy(q->payload, f->payload.base, f->payload.len);
        q->f.payload.base = q->payload;
    }
    enqueue(q);
    return 0;
}

static void tr_flush(void *data)
{
    raft_id id = self_of(data);
    C.unsent[id] = 0;
    C.flushes[id]++;
}

static void on_deliver(uv_idle_t *h)
{
    struct queued *q = C.head;
    (void)h;
    C.head = NULL;
    C.tail = NULL;
    while (q != NULL) {
        struct queued *next = q->next;
        bool drop = q->to < 1 || q->to > N || C.down[q->to] ||
                    C.down[q->from] || C.closed[q->to] ||
                    C.nodes[q->to] == NULL;
        if (!drop) {
            if (q->is_forward) {
                raft_node_receive_forward(C.nodes[q->to], q->from, &q->f);
            } else {
                raft_node_receive(C.nodes[q->to], &q->m);
            }
        }
        if (!q->is_forward) {
            raft_message_close(&q->m);
        }
        free(q->payload);
        free(q);
        q = next;
    }
}

static void start_cluster(unsigned op_timeout_ms)
{
    struct raft_config cfg;
    struct raft_entry boot;
    unsigned i;

    memset(&C, 0, sizeof C);
    C.with_flush = transport_flush_mode;
    loop_thread = pthread_self();
    ck_assert_int_eq(uv_loop_init(&C.loop), 0);
    uv_idle_init(&C.loop, &C.deliver);
    uv_idle_start(&C.deliver, on_deliver);
    memset(&cfg, 0, sizeof cfg);
    for (i = 1; i <= N; i++) {
        cfg.servers[cfg.n].id = i;
        cfg.servers[cfg.n].role = RAFT_VOTER;
        snprintf(cfg.servers[cfg.n].addr, RAFT_ADDR_MAX, "node%u", i);
        cfg.n++;
    }
    ck_assert_int_eq(raft_bootstrap_entry(&cfg, &boot), 0);
    for (i = 1; i <= N; i++) {
        struct raft_options o;
        struct raft_load l;
        struct raft_node_options no;
        struct raft_node_storage st;
        struct raft_node_transport tr;
        struct raft *r;

        pthread_mutex_init(&C.st[i].mu, NULL);
        C.st[i].log = calloc(1, sizeof *C.st[i].log);
        copy_entry(&C.st[i].log[0], &boot);
        C.st[i].n_log = 1;

        raft_options_default(&o);
        o.id = i;
        o.seed = 1000 + i;
        o.election_timeout = 150;
        o.heartbeat_interval = 30;
        memset(&l, 0, sizeof l);
        l.entries = &boot;
        l.n_entries = 1;
        ck_assert_int_eq(raft_new(&o, &l, uv_now(&C.loop), &r), 0);

        memset(&no, 0, sizeof no);
        no.id = i;
        no.op_timeout_ms = op_timeout_ms;
        no.election_timeout_ms = 150;
        st.data = &C.st[i];
        st.write = st_write;
        st.snapshot = st_snapshot;
        st.snapshot_read = st_snapshot_read;
        st.inline_apply = inline_apply_mode;
        st.inline_sync = inline_sync_mode;
        C.st[i].id = i;
        memset(&tr, 0, sizeof tr);
        tr.data = (void *)(uintptr_t)i;
        tr.send = tr_send;
        tr.forward = tr_forward;
        tr.flush = transport_flush_mode ? tr_flush : NULL;
        ck_assert_int_eq(
            raft_node_init(&C.nodes[i], &C.loop, r, &st, &tr, &no, 0), 0);
    }
    free(boot.data.base);
}

/* Runs the loop until *flag is set or timeout_ms of loop time passed. */
static bool run_until(volatile bool *flag, unsigned timeout_ms)
{
    uint64_t end;
    uv_update_time(&C.loop);
    end = uv_now(&C.loop) + timeout_ms;
    while (!*flag && uv_now(&C.loop) < end) {
        uv_run(&C.loop, UV_RUN_ONCE);
    }
    return *flag;
}

static raft_id leader_of_majority(void)
{
    unsigned i;
    for (i = 1; i <= N; i++) {
        if (C.nodes[i] != NULL && !C.down[i] &&
            raft_role(raft_node_core(C.nodes[i])) == RAFT_LEADER) {
            return i;
        }
    }
    return 0;
}

static bool have_leader;
static void poll_leader(uv_timer_t *t)
{
    (void)t;
    if (leader_of_majority() != 0) {
        have_leader = true;
    }
}

static raft_id wait_leader(void)
{
    uv_timer_t t;
    have_leader = false;
    uv_timer_init(&C.loop, &t);
    uv_timer_start(&t, poll_leader, 5, 5);
    run_until(&have_leader, 10000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&C.loop, UV_RUN_NOWAIT);
    return leader_of_majority();
}

struct result {
    bool done;
    int status;
    raft_index index;
    raft_index result_index;
    char seen[64]; /* the register's value when the callback ran */
    const char *key;
    struct fake_store *st;
};

static void on_proposed(void *data, int status, raft_index index,
                        const void *result)
{
    struct result *r = data;
    r->done = true;
    r->status = status;
    r->index = index;
    if (result != NULL) {
        r->result_index = *(const raft_index *)result;
    }
    if (r->key != NULL) {
        get_reg(r->st, r->key, r->seen);
    }
}

static void on_read(void *data, int status)
{
    struct result *r = data;
    r->done = true;
    r->status = status;
    if (r->key != NULL) {
        get_reg(r->st, r->key, r->seen);
    }
}

static void propose(raft_id on, const char *cmd, struct result *r)
{
    struct raft_buf b = {(void *)cmd, strlen(cmd)};
    memset(r, 0, sizeof *r);
    raft_node_propose(C.nodes[on], &b, on_proposed, r);
    ck_assert(!r->done); /* never completes inside the call */
}

/* "<p><i>=<i>" proposed on node `on` (cmd and key are the caller's storage
 * for the command and the key), and then, with wait_kv, its answer: applied
 * on `on` before the answer, with its own index as the storage's result. */
static void propose_kv(raft_id on, const char *p, unsigned i, struct result *r,
                       char cmd[16], char key[8])
{
    snprintf(cmd, 16, "%s%u=%u", p, i, i);
    snprintf(key, 8, "%s%u", p, i);
    propose(on, cmd, r);
    r->key = key;
    r->st = &C.st[on];
}

static void wait_kv(struct result *r, unsigned i)
{
    char want[8];
    ck_assert(run_until(&r->done, 5000));
    ck_assert_int_eq(r->status, 0);
    ck_assert_uint_eq(r->result_index, r->index);
    snprintf(want, sizeof want, "%u", i);
    ck_assert_str_eq(r->seen, want); /* applied before the answer */
}

static unsigned closed_count;
static void on_closed(void *data)
{
    (void)data;
    closed_count++;
}

static void stop_cluster(void)
{
    unsigned i;
    bool all = false;
    closed_count = 0;
    for (i = 1; i <= N; i++) {
        if (C.nodes[i] != NULL) {
            C.closed[i] = true;
            raft_node_close(C.nodes[i], false, on_closed, NULL);
        }
    }
    while (closed_count < N) {
        uv_run(&C.loop, UV_RUN_ONCE);
    }
    uv_idle_stop(&C.deliver);
    on_deliver(&C.deliver); /* frees what is still queued */
    uv_close((uv_handle_t *)&C.deliver, NULL);
    uv_run(&C.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&C.loop), 0);
    for (i = 1; i <= N; i++) {
        size_t k;
        for (k = 0; k < C.st[i].n_log; k++) {
            free(C.st[i].log[k].data.base);
        }
        free(C.st[i].log);
        pthread_mutex_destroy(&C.st[i].mu);
    }
    (void)all;
}

/* Waits until every node in `which` applied `key` = `want`. */
static bool all_have(const char *key, const char *want)
{
    unsigned i;
    char v[64];
    for (i = 1; i <= N; i++) {
        if (C.down[i]) {
            continue;
        }
        if (!get_reg(&C.st[i], key, v) || strcmp(v, want) != 0) {
            return false;
        }
    }
    return true;
}

static bool converged;
static const char *conv_key;
static const char *conv_want;
static void poll_converged(uv_timer_t *t)
{
    (void)t;
    if (all_have(conv_key, conv_want)) {
        converged = true;
    }
}

static bool wait_all_have(const char *key, const char *want)
{
    uv_timer_t t;
    converged = false;
    conv_key = key;
    conv_want = want;
    uv_timer_init(&C.loop, &t);
    uv_timer_start(&t, poll_converged, 5, 5);
    run_until(&converged, 5000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&C.loop, UV_RUN_NOWAIT);
    return converged;
}

START_TEST(test_propose_on_leader)
{
    struct result r;
    raft_id l;
    start_cluster(3000);
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    propose(l, "a=1", &r);
    r.key = "a";
    r.st = &C.st[l];
    ck_assert(run_until(&r.done, 5000));
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_gt(r.index, 1);
    ck_assert_uint_eq(r.result_index, r.index); /* the storage's result */
    ck_assert_str_eq(r.seen, "1"); /* applied locally before the reply */
    ck_assert(wait_all_have("a", "1"));
    /* Without storage.inline_apply / inline_sync every write runs on the
     * pool. */
    ck_assert_uint_eq(C.st[l].applies_on_loop, 0);
    ck_assert_uint_gt(C.st[l].applies_on_pool, 0);
    ck_assert_uint_eq(C.st[l].syncs_on_loop, 0);
    ck_assert_uint_gt(C.st[l].syncs_on_pool, 0);
    stop_cluster();
}
END_TEST

/* storage.inline_apply: batches that only apply run on the loop thread,
 * with the same outcome; the others still go to the pool. */
START_TEST(test_inline_apply)
{
    struct result r[20];
    char cmds[20][16], keys[20][8];
    raft_id l;
    unsigned i;
    inline_apply_mode = true;
    start_cluster(3000);
    inline_apply_mode = false;
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    for (i = 0; i < 20; i++) {
        propose_kv((raft_id)(i % N + 1), "i", i, &r[i], cmds[i], keys[i]);
        wait_kv(&r[i], i);
    }
    ck_assert(wait_all_have("i19", "19"));
    for (i = 1; i <= N; i++) {
        ck_assert_uint_gt(C.st[i].applies_on_loop, 0);
        ck_assert_uint_eq(C.st[i].applies_on_pool, 0);
        ck_assert_uint_gt(C.st[i].writes, C.st[i].applies_on_loop);
    }
    /* A large apply goes to the pool: the loop keeps answering. */
    size_t big_len = 300u << 10;
    char *big = malloc(big_len + 1);
    ck_assert_ptr_nonnull(big);
    memcpy(big, "big=", 4);
    memset(big + 4, 'x', big_len - 4);
    big[big_len] = '\0';
    struct result rb;
    propose(l, big, &rb);
    rb.key = NULL;
    ck_assert(run_until(&rb.done, 5000));
    ck_assert_int_eq(rb.status, 0);
    ck_assert_uint_gt(C.st[l].applies_on_pool, 0);
    free(big);
    stop_cluster();
}
END_TEST

/* 60 proposals on the leader, one every millisecond whatever the answers,
 * while a write of entries takes 2 ms (entries_write_us): the applies of
 * earlier entries become ready while later ones queue up behind a write.
 * Returns the writes, over all nodes, that held entries and applies
 * together. */
#define LOAD_OPS 60
static struct {
    struct result r[LOAD_OPS];
    char cmds[LOAD_OPS][16], keys[LOAD_OPS][8];
    unsigned next;
    raft_id on;
} load;

static void load_tick(uv_timer_t *t)
{
    if (load.next == LOAD_OPS) {
        uv_timer_stop(t);
        return;
    }
    propose_kv(load.on, "m", load.next, &load.r[load.next],
               load.cmds[load.next], load.keys[load.next]);
    load.next++;
}

static unsigned mixed_writes_under_load(raft_id l)
{
    uv_timer_t t;
    unsigned i, mixed = 0;

    memset(&load, 0, sizeof load);
    load.on = l;
    uv_timer_init(&C.loop, &t);
    uv_timer_start(&t, load_tick, 1, 1);
    for (i = 0; i < LOAD_OPS; i++) {
        while (load.next <= i) {
            uv_run(&C.loop, UV_RUN_ONCE);
        }
        wait_kv(&load.r[i], i);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&C.loop, UV_RUN_NOWAIT);
    ck_assert(wait_all_have("m59", "59"));
    for (i = 1; i <= N; i++) {
        mixed += C.st[i].mixed;
    }
    return mixed;
}

/* storage.inline_apply also splits the applies off a batch that has
 * entries to make durable, and runs them first on the loop: a read or a
 * proposal waiting for them does not wait for that batch's sync. Without
 * the option the same load writes entries and applies together. */
START_TEST(test_apply_split)
{
    raft_id l;
    entries_write_us = 2000;
    start_cluster(3000);
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    ck_assert_uint_gt(mixed_writes_under_load(l), 0);
    stop_cluster();

    inline_apply_mode = true;
    start_cluster(3000);
    inline_apply_mode = false;
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    ck_assert_uint_eq(mixed_writes_under_load(l), 0);
    for (unsigned i = 1; i <= N; i++) {
        ck_assert_uint_gt(C.st[i].applies_on_loop, 0);
        ck_assert_uint_eq(C.st[i].applies_on_pool, 0);
    }
    stop_cluster();
    entries_write_us = 0;
}
END_TEST

/* storage.inline_sync: on a quiet node (one entry, nothing queued, at most
 * one operation waiting) the write of entries runs on the loop thread, after
 * the messages queued before it left; under load it goes to the pool. */
START_TEST(test_inline_sync)
{
    struct result r[20];
    char cmds[20][16], keys[20][8];
    raft_id l;
    unsigned i;
    unsigned pool_before;
    inline_apply_mode = true;
    inline_sync_mode = true;
    transport_flush_mode = true;
    start_cluster(3000);
    inline_apply_mode = false;
    inline_sync_mode = false;
    transport_flush_mode = false;
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    for (i = 0; i < 10; i++) {
        propose_kv(l, "s", i, &r[i], cmds[i], keys[i]);
        wait_kv(&r[i], i);
    }
    ck_assert(wait_all_have("s9", "9"));
    for (i = 1; i <= N; i++) {
        /* One write at a time: each node synced its entries on the loop
         * (the leader's first entry of the term may go with its hard state
         * to the pool), and never with appends or acks still unsent. */
        ck_assert_uint_ge(C.st[i].syncs_on_loop, 10);
        ck_assert_uint_eq(C.st[i].unsent_at_sync, 0);
        ck_assert_uint_gt(C.flushes[i], 0);
    }
    /* Ten operations waiting on the leader: its batch goes to the pool. */
    pool_before = C.st[l].syncs_on_pool;
    for (i = 10; i < 20; i++) {
        propose_kv(l, "s", i, &r[i], cmds[i], keys[i]);
    }
    for (i = 10; i < 20; i++) {
        wait_kv(&r[i], i);
    }
    ck_assert_uint_gt(C.st[l].syncs_on_pool, pool_before);
    ck_assert(wait_all_have("s19", "19"));
    for (i = 1; i <= N; i++) {
        ck_assert_uint_eq(C.st[i].unsent_at_sync, 0);
    }
    stop_cluster();
}
END_TEST

START_TEST(test_propose_on_follower_is_forwarded)
{
    struct result r;
    raft_id l;
    raft_id f;
    start_cluster(3000);
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    f = l % N + 1;
    propose(f, "b=2", &r);
    r.key = "b";
    r.st = &C.st[f];
    ck_assert(run_until(&r.done, 5000));
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.seen, "2"); /* visible on the proposing follower */
    ck_assert(wait_all_have("b", "2"));
    stop_cluster();
}
END_TEST

START_TEST(test_many_proposals_batch)
{
    struct result r[50];
    char cmds[50][16];
    raft_id l;
    unsigned i;
    unsigned writes_before;
    bool all = false;
    start_cluster(5000);
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    writes_before = C.st[l].writes;
    for (i = 0; i < 50; i++) {
        snprintf(cmds[i], sizeof cmds[i], "k%u=%u", i, i);
        propose((raft_id)(i % N + 1), cmds[i], &r[i]);
    }
    while (!all) {
        all = true;
        for (i = 0; i < 50; i++) {
            all = all && r[i].done;
        }
        if (!all) {
            uv_run(&C.loop, UV_RUN_ONCE);
        }
    }
    for (i = 0; i < 50; i++) {
        ck_assert_int_eq(r[i].status, 0);
    }
    /* 50 proposals made in one loop iteration need far fewer writes. */
    ck_assert_uint_lt(C.st[l].writes - writes_before, 50);
    ck_assert(wait_all_have("k49", "49"));
    stop_cluster();
}
END_TEST

START_TEST(test_read_on_follower)
{
    struct result w;
    struct result r;
    raft_id l;
    raft_id f;
    start_cluster(3000);
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    propose(l, "c=3", &w);
    ck_assert(run_until(&w.done, 5000));
    ck_assert_int_eq(w.status, 0);
    f = l % N + 1;
    memset(&r, 0, sizeof r);
    r.key = "c";
    r.st = &C.st[f];
    raft_node_read(C.nodes[f], on_read, &r);
    ck_assert(!r.done);
    ck_assert(run_until(&r.done, 5000));
    ck_assert_int_eq(r.status, 0);
    /* Linearizable: the write completed before the read began. */
    ck_assert_str_eq(r.seen, "3");
    stop_cluster();
}
END_TEST

START_TEST(test_no_quorum_times_out)
{
    struct result w;
    struct result r;
    raft_id l;
    raft_id f;
    unsigned i;
    start_cluster(400);
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    /* Cut the leader off from both followers. */
    for (i = 1; i <= N; i++) {
        if (i != l) {
            C.down[i] = true;
        }
    }
    propose(l, "d=4", &w);
    ck_assert(run_until(&w.done, 5000));
    ck_assert(w.status == -ETIMEDOUT || w.status == -EIO);
    memset(&r, 0, sizeof r);
    raft_node_read(C.nodes[l], on_read, &r);
    ck_assert(run_until(&r.done, 5000));
    ck_assert_int_ne(r.status, 0);
    ck_assert(!raft_node_quorum_ok(C.nodes[l]) ||
              raft_role(raft_node_core(C.nodes[l])) == RAFT_LEADER);
    /* Heal: the cluster serves again. */
    for (i = 1; i <= N; i++) {
        C.down[i] = false;
    }
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    f = l % N + 1;
    propose(f, "e=5", &w);
    ck_assert(run_until(&w.done, 5000));
    ck_assert_int_eq(w.status, 0);
    stop_cluster();
}
END_TEST

static bool one_closed;
static void on_one_closed(void *data)
{
    (void)data;
    one_closed = true;
}

START_TEST(test_close_hands_leadership_over)
{
    raft_id l;
    raft_id l2;
    unsigned i;
    start_cluster(3000);
    l = wait_leader();
    ck_assert_uint_ne(l, 0);
    one_closed = false;
    raft_node_close(C.nodes[l], true, on_one_closed, NULL);
    ck_assert(run_until(&one_closed, 5000));
    C.nodes[l] = NULL;
    C.closed[l] = true;
    /* Another node leads at once, without waiting an election timeout of
     * silence: the handover was a TimeoutNow. */
    l2 = 0;
    for (i = 1; i <= N; i++) {
        if (C.nodes[i] != NULL &&
            raft_role(raft_node_core(C.nodes[i])) == RAFT_LEADER) {
            l2 = i;
        }
    }
    ck_assert_uint_ne(l2, 0);
    ck_assert_uint_ne(l2, l);
    closed_count = 0;
    for (i = 1; i <= N; i++) {
        if (C.nodes[i] != NULL) {
            C.closed[i] = true;
            raft_node_close(C.nodes[i], false, on_closed, NULL);
        }
    }
    while (closed_count < N - 1) {
        uv_run(&C.loop, UV_RUN_ONCE);
    }
    for (i = 1; i <= N; i++) {
        C.nodes[i] = NULL;
    }
    uv_idle_stop(&C.deliver);
    on_deliver(&C.deliver);
    uv_close((uv_handle_t *)&C.deliver, NULL);
    uv_run(&C.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&C.loop), 0);
    for (i = 1; i <= N; i++) {
        size_t k;
        for (k = 0; k < C.st[i].n_log; k++) {
            free(C.st[i].log[k].data.base);
        }
        free(C.st[i].log);
    }
}
END_TEST

static Suite *node_suite(void)
{
    Suite *s = suite_create("node");
    TCase *tc = tcase_create("driver");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_propose_on_leader);
    tcase_add_test(tc, test_inline_apply);
    tcase_add_test(tc, test_inline_sync);
    tcase_add_test(tc, test_apply_split);
    tcase_add_test(tc, test_propose_on_follower_is_forwarded);
    tcase_add_test(tc, test_many_proposals_batch);
    tcase_add_test(tc, test_read_on_follower);
    tcase_add_test(tc, test_no_quorum_times_out);
    tcase_add_test(tc, test_close_hands_leadership_over);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(node_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
