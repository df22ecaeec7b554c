/* Benchmark of store/: synced log appends against the raw fdatasync of the
 * same disk, apply throughput, a huge readdir, a million files. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "cmd.h"

/*
 * Usage: store_bench [DIR] [--million]
 *   DIR defaults to ./store-bench.d (created, removed at the end). Put it on
 *   the disk you want to measure. --million also creates 1,000,000 files.
 * Output: markdown table rows for docs/BENCHMARKS.md.
 */

static char dir[PATH_MAX];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static void die(const char *what, int rv)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, store_strerror(rv));
    exit(1);
}

static void open_store(struct store *s, size_t map)
{
    struct store_options o;
    store_options_default(&o);
    o.dir = dir;
    o.create = true;
    o.cluster_id = "bench";
    o.node_id = 1;
    o.map_size = map;
    int rv = store_open(s, &o);
    if (rv != 0) {
        fprintf(stderr, "store_bench: %s\n", store_errmsg(s));
        exit(1);
    }
}

static void wipe(void)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        exit(1);
    }
}

/* Raw: write 4 KiB + fdatasync on a file in the same directory. */
static int raw_fd = -1;
static size_t raw_i;

static void raw_open(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/raw", dir);
    raw_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (raw_fd < 0) {
        perror("raw");
        exit(1);
    }
}

static void raw_close(void)
{
    char path[PATH_MAX + 16];
    close(raw_fd);
    snprintf(path, sizeof path, "%s/raw", dir);
    unlink(path);
}

static double raw_once(void)
{
    static char buf[4096];
    memset(buf, 'r', sizeof buf);
    double t0 = now_s();
    if (pwrite(raw_fd, buf, sizeof buf, (off_t)((raw_i++ % 256) * 4096)) !=
            (ssize_t)sizeof buf ||
        fdatasync(raw_fd) != 0) {
        perror("raw write");
        exit(1);
    }
    return now_s() - t0;
}

static void raw_series(size_t iters)
{
    double *lat = malloc(iters * sizeof *lat);
    for (size_t i = 0; i < iters; i++) {
        lat[i] = raw_once();
    }
    double p50 = pct(lat, iters, 0.5), p99 = pct(lat, iters, 0.99);
    printf("| raw 4 KiB write + fdatasync | %.0f syncs/s | %.3f ms | %.3f ms "
           "| | |\n",
           1.0 / p50, p50 * 1e3, p99 * 1e3);
    free(lat);
}

/* Synced appends of `batch` entries of 64 bytes, `iters` times, each one
 * right after a raw 4 KiB write + fdatasync, so both see the same disk
 * conditions (other processes share this machine). An append-only batch
 * is one WAL pwrite + one fdatasync (store/wal.h), so p50 / raw near 1x is
 * the floor. */
static void appends(struct store *s, raft_index *next, size_t batch,
                    size_t iters)
{
    static char payload[64];
    struct raft_entry *e = calloc(batch, sizeof *e);
    double *lat = malloc(iters * sizeof *lat);
    double *raw = malloc(iters * sizeof *raw);
    struct store_batch b;
    struct store_write_result r;
    double total = 0;
    memset(payload, 'x', sizeof payload);
    store_batch_init(&b);
    for (size_t it = 0; it < iters; it++) {
        for (size_t i = 0; i < batch; i++) {
            e[i] = (struct raft_entry){.index = *next + i,
                                       .term = 1,
                                       .type = RAFT_ENTRY_COMMAND,
                                       .data = {payload, sizeof payload}};
        }
        store_batch_reset(&b);
        store_batch_append(&b, e, batch);
        raw[it] = raw_once();
        double t0 = now_s();
        int rv = store_write(s, &b, &r);
        lat[it] = now_s() - t0;
        if (rv != 0) {
            die("append", rv);
        }
        total += lat[it];
        store_write_result_close(&r);
        *next += batch;
    }
    /* Keep the log from growing across runs. */
    store_batch_reset(&b);
    store_batch_compact(&b, *next - 1 - 1);
    store_write(s, &b, &r);
    store_write_result_close(&r);
    store_batch_close(&b);
    double p50 = pct(lat, iters, 0.5), p99 = pct(lat, iters, 0.99);
    double raw50 = pct(raw, iters, 0.5);
    printf("| synced append, batch %zu x 64 B | %.0f entries/s | %.3f ms | "
           "%.3f ms | %.3f ms | %.2fx |\n",
           batch, (double)(batch * iters) / total, p50 * 1e3, p99 * 1e3,
           raw50 * 1e3, p50 / raw50);
    free(raw);
    free(lat);
    free(e);
}

/* A command entry: envelope + encoded command, malloc'd data. */
static void cmd_entry(struct raft_entry *e, raft_index index,
                      const struct store_cmd *c)
{
    struct raft_buf enc;
    int rv = store_cmd_encode(c, &enc);
    if (rv != 0) {
        die("encode", rv);
    }
    e->index = index;
    e->term = 1;
    e->type = RAFT_ENTRY_COMMAND;
    e->data.len = STORE_FSM_ENVELOPE + enc.len;
    e->data.base = calloc(1, e->data.len);
    memcpy((char *)e->data.base + STORE_FSM_ENVELOPE, enc.base, enc.len);
    free(enc.base);
}

/* Appends and applies `n` entries made by `make` in batches of `per`,
 * compacting as it goes; returns seconds spent in store_write for the
 * apply batches only (apply_only) or append+apply. */
typedef void (*make_fn)(struct raft_entry *e, raft_index index, size_t i,
                        void *arg);

static double run_cmds(struct store *s, raft_index *next, size_t n, size_t per,
                       make_fn make, void *arg, bool apply_only)
{
    struct raft_entry *e = calloc(per, sizeof *e);
    struct store_batch b;
    struct store_write_result r;
    double spent = 0;
    store_batch_init(&b);
    for (size_t done = 0; done < n; done += per) {
        size_t k = n - done < per ? n - done : per;
        for (size_t i = 0; i < k; i++) {
            make(&e[i], *next + i, done + i, arg);
        }
        double t0;
        int rv;
        if (apply_only) {
            store_batch_reset(&b);
            store_batch_append(&b, e, k);
            rv = store_write(s, &b, &r);
            if (rv != 0) {
                die("append", rv);
            }
            store_write_result_close(&r);
            store_batch_reset(&b);
            store_batch_apply(&b, e, k);
        } else {
            store_batch_reset(&b);
            store_batch_append(&b, e, k);
            store_batch_apply(&b, e, k);
        }
        store_batch_compact(&b, *next - 1);
        t0 = now_s();
        rv = store_write(s, &b, &r);
        spent += now_s() - t0;
        if (rv != 0) {
            die("apply", rv);
        }
        for (size_t i = 0; i < r.n_results; i++) {
            if (r.results[i].status != 0) {
                die("command", r.results[i].status);
            }
        }
        store_write_result_close(&r);
        for (size_t i = 0; i < k; i++) {
            free(e[i].data.base);
        }
        *next += k;
    }
    store_batch_close(&b);
    free(e);
    return spent;
}

struct mk_arg {
    uint64_t parent;
    uint64_t first_ino;
    size_t nfiles;
};

static void mk_create(struct raft_entry *e, raft_index index, size_t i,
                      void *arg)
{
    struct mk_arg *a = arg;
    struct store_cmd c;
    char name[32];
    store_cmd_init(&c);
    c.type = STORE_CMD_CREATE;
    c.parent = a->parent;
    c.name.base = name;
    c.name.len = (size_t)snprintf(name, sizeof name, "file-%08zu", i);
    c.mode = 0644;
    c.time_ns = index;
    cmd_entry(e, index, &c);
}

static void mk_mkdir(struct raft_entry *e, raft_index index, size_t i,
                     void *arg)
{
    struct store_cmd c;
    char name[32];
    store_cmd_init(&c);
    c.type = STORE_CMD_MKDIR;
    c.parent = STORE_ROOT_INO;
    c.name.base = name;
    c.name.len = (size_t)snprintf(name, sizeof name, "dir-%zu", *(size_t *)arg);
    c.mode = 0755;
    cmd_entry(e, index, &c);
}

static void mk_put(struct raft_entry *e, raft_index index, size_t i, void *arg)
{
    struct mk_arg *a = arg;
    struct store_cmd c;
    char value[64];
    memset(value, 'a' + (int)(i % 26), sizeof value);
    store_cmd_init(&c);
    c.type = STORE_CMD_PUT;
    c.ino = a->first_ino + i % a->nfiles;
    c.data.base = value;
    c.data.len = sizeof value;
    c.time_ns = index;
    cmd_entry(e, index, &c);
}

static uint64_t make_dir(struct store *s, raft_index *next, size_t id)
{
    char name[32];
    struct store_attr at;
    run_cmds(s, next, 1, 1, mk_mkdir, &id, false);
    int len = snprintf(name, sizeof name, "dir-%zu", id);
    int rv = store_fsm_lookup(&s->fsm, STORE_ROOT_INO, name, (size_t)len, &at);
    if (rv != 0) {
        die("lookup", rv);
    }
    return at.ino;
}

static int count_cb(void *arg, const struct store_dirent *d,
                    const struct store_attr *attr)
{
    (void)d;
    (void)attr;
    (*(size_t *)arg)++;
    return 0;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kb;
}

static double disk_mb(void)
{
    char path[PATH_MAX + 16];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0) {
        return -1;
    }
    return (double)st.st_blocks * 512.0 / (1 << 20);
}

static void fsm_bench(struct store *s, raft_index *next, bool million)
{
    /* Apply: 64-byte puts over 1000 files, applied 1000 per txn. */
    struct mk_arg a = {.parent = make_dir(s, next, 1)};
    raft_index first = *next;
    run_cmds(s, next, 1000, 1000, mk_create, &a, false);
    struct store_attr at;
    int rv = store_fsm_lookup(&s->fsm, a.parent, "file-00000000", 13, &at);
    if (rv != 0) {
        die("lookup", rv);
    }
    (void)first;
    a.first_ino = at.ino;
    a.nfiles = 1000;
    size_t nputs = 200000;
    double t = run_cmds(s, next, nputs, 1000, mk_put, &a, true);
    printf("| apply 64 B puts (1000 per txn, apply only) | %.0f commands/s "
           "| | | | |\n",
           (double)nputs / t);

    /* Readdir of a 100,000-entry directory, pages of 1000. */
    struct mk_arg big = {.parent = make_dir(s, next, 2)};
    double tc = run_cmds(s, next, 100000, 1000, mk_create, &big, false);
    printf("| create 100,000 files (append+apply, 1000 per txn) | %.0f "
           "creates/s | | | | |\n",
           100000 / tc);
    for (int with_attr = 0; with_attr <= 1; with_attr++) {
        char after[32] = "";
        size_t after_len = 0, total = 0;
        double t0 = now_s();
        for (;;) {
            size_t got = 0;
            int n = store_fsm_readdir(&s->fsm, big.parent, after, after_len,
                                      with_attr, 1000, count_cb, &got);
            if (n < 0) {
                die("readdir", n);
            }
            if (n == 0) {
                break;
            }
            total += got;
            after_len =
                (size_t)snprintf(after, sizeof after, "file-%08zu", total - 1);
        }
        double dt = now_s() - t0;
        printf("| readdir 100,000 entries%s, pages of 1000 | %.1f ms total "
               "(%zu entries) | | | | |\n",
               with_attr ? " with attrs" : "", dt * 1e3, total);
    }
    if (!million) {
        return;
    }
    struct mk_arg m = {.parent = make_dir(s, next, 3)};
    double tm = run_cmds(s, next, 1000000, 1000, mk_create, &m, false);
    struct store_fsm_statfs sf;
    store_fsm_statfs(&s->fsm, &sf);
    printf("| 1,000,000 more files (empty) | %.0f creates/s; data.mdb %.0f "
           "MiB on disk, map used %.0f MiB; RSS %ld MiB | | | | |\n",
           1000000 / tm, disk_mb(), (double)sf.map_used / (1 << 20),
           rss_kb() / 1024);
}

int main(int argc, char **argv)
{
    bool million = false;
    snprintf(dir, sizeof dir, "store-bench.d");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--million") == 0) {
            million = true;
        } else {
            snprintf(dir, sizeof dir, "%s", argv[i]);
        }
    }
    wipe();
    if (mkdir(dir, 0755) != 0) {
        perror(dir);
        return 1;
    }
    struct store s;
    open_store(&s, (size_t)8 << 30);
    raw_open();
    printf("| what | throughput | p50 | p99 | raw p50 (interleaved) | "
           "p50 / raw |\n");
    printf("|---|---|---|---|---|---|\n");
    raw_series(2000);
    raft_index next = 1;
    appends(&s, &next, 1, 2000);
    appends(&s, &next, 16, 1000);
    appends(&s, &next, 256, 300);
    raw_close();
    fsm_bench(&s, &next, million);
    printf("\nexplicit syncs (mdb_env_sync + WAL fdatasync): %llu\n",
           (unsigned long long)s.n_syncs);
    store_close(&s);
    wipe();
    return 0;
}
