/* Load generator: N closed-loop worker threads driving raftfs FUSE mounts
 * (or any directories) with file workloads; reports ops/s and latency. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

/*
 * Each worker runs a closed loop: it issues one operation, waits for its
 * result, records the latency, and issues the next. There is no target rate,
 * so there is no coordinated omission to correct: throughput is what the
 * workers achieved and latency is per completed operation (what a program
 * doing the same thing would see). Worker i uses directory i % ndirs.
 */

enum workload { W_WRITE, W_READ, W_MIX, W_EXCL, W_APPEND, W_LS };

static const char *const workload_names[] = {"write", "read",   "mix",
                                             "excl",  "append", "ls"};

struct opts {
    enum workload w;
    unsigned workers, keys, value_size, read_pct;
    double duration_s; /* used when ops == 0 */
    uint64_t ops;      /* total operations over all workers, 0: duration */
    const char *prefix;
    const char *label;
    bool prefill;
    bool worker_dirs; /* excl: worker i creates in PREFIX/w<i> */
    char **dirs;
    unsigned ndirs;
};

struct shared {
    const struct opts *o;
    pthread_barrier_t start;
    atomic_bool stop;
    atomic_uint_fast64_t claimed; /* operations handed out (--ops mode) */
    unsigned nonce;               /* makes excl names unique per run */
};

struct worker {
    struct shared *sh;
    unsigned id;
    const char *dir;
    uint64_t rng;
    char *buf; /* value_size + 1 bytes, owned */
    size_t buflen;
    struct lg_rec rec;
    pthread_t thread;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a per-worker PRNG, so workers share no state. */
static uint64_t rnd(struct worker *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ull;
}

static void key_path(char *out, size_t len, const char *dir,
                     const char *prefix, unsigned k)
{
    snprintf(out, len, "%s/%s/k%06u", dir, prefix, k);
}

/* Writes all of buf; returns 0 or a positive errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* open + write + close; close reports the commit result on raftfs. */
static int op_write(struct worker *w, const char *path, int flags,
                    const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | flags, 0644);
    if (fd < 0) {
        return errno;
    }
    int err = write_all(fd, data, len);
    if (close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err == 0) {
        w->rec.bytes += len;
    }
    return err;
}

static int op_read(struct worker *w, const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return errno;
    }
    int err = 0;
    for (;;) {
        ssize_t n = read(fd, w->buf, w->buflen);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            err = errno;
            break;
        }
        if (n == 0) {
            break;
        }
        w->rec.bytes += (uint64_t)n;
    }
    if (close(fd) != 0 && err == 0) {
        err = errno;
    }
    return err;
}

static int op_ls(struct worker *w, const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return errno;
    }
    errno = 0;
    uint64_t n = 0;
    while (readdir(d) != NULL) {
        n++;
    }
    int err = errno;
    if (closedir(d) != 0 && err == 0) {
        err = errno;
    }
    w->rec.bytes += n; /* entries, for ls */
    return err;
}

/* One operation of the workload; returns 0 or a positive errno. */
static int one_op(struct worker *w, uint64_t seq)
{
    const struct opts *o = w->sh->o;
    char path[PATH_MAX];
    unsigned k = (unsigned)(rnd(w) % o->keys);
    enum workload kind = o->w;
    if (kind == W_MIX) {
        kind = rnd(w) % 100 < o->read_pct ? W_READ : W_WRITE;
    }
    switch (kind) {
    case W_WRITE:
        key_path(path, sizeof path, w->dir, o->prefix, k);
        return op_write(w, path, O_CREAT | O_TRUNC, w->buf, o->value_size);
    case W_READ:
        key_path(path, sizeof path, w->dir, o->prefix, k);
        return op_read(w, path);
    case W_EXCL:
        if (o->worker_dirs) {
            snprintf(path, sizeof path, "%s/%s/w%u/x%u-%llu", w->dir,
                     o->prefix, w->id, w->sh->nonce, (unsigned long long)seq);
        } else {
            snprintf(path, sizeof path, "%s/%s/x%u-%u-%llu", w->dir,
                     o->prefix, w->sh->nonce, w->id, (unsigned long long)seq);
        }
        return op_write(w, path, O_CREAT | O_EXCL, w->buf, o->value_size);
    case W_APPEND: {
        char line[64];
        int n = snprintf(line, sizeof line, "w%u %llu\n", w->id,
                         (unsigned long long)seq);
        key_path(path, sizeof path, w->dir, o->prefix, k);
        return op_write(w, path, O_CREAT | O_APPEND, line, (size_t)n);
    }
    case W_LS:
        snprintf(path, sizeof path, "%s/%s", w->dir, o->prefix);
        return op_ls(w, path);
    case W_MIX:
        break;
    }
    return EINVAL;
}

/* Claims the next operation; false when the run is over. */
static bool next_op(struct worker *w)
{
    struct shared *sh = w->sh;
    if (sh->o->ops > 0) {
        return atomic_fetch_add(&sh->claimed, 1) < sh->o->ops;
    }
    return !atomic_load_explicit(&sh->stop, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(&w->sh->start);
    uint64_t seq = 0;
    while (next_op(w)) {
        uint64_t t0 = now_ns();
        int err = one_op(w, seq++);
        lg_rec_add(&w->rec, now_ns() - t0, err);
    }
    return NULL;
}

/* Writes every key once, with the workers' directories, in parallel. */
struct prefill_arg {
    const struct opts *o;
    unsigned id, nthreads;
    int err;
    uint64_t errors;
    char *buf;
};

static void *prefill_main(void *arg)
{
    struct prefill_arg *p = arg;
    const struct opts *o = p->o;
    char path[PATH_MAX];
    struct worker w = {.buf = p->buf}; /* only w.rec.bytes is used */
    for (unsigned k = p->id; k < o->keys; k += p->nthreads) {
        key_path(path, sizeof path, o->dirs[k % o->ndirs], o->prefix, k);
        int err = op_write(&w, path, O_CREAT | O_TRUNC, p->buf,
                           o->value_size);
        if (err != 0) {
            p->errors++;
            p->err = err;
        }
    }
    return NULL;
}

static int prefill(const struct opts *o, char *value)
{
    unsigned n = o->workers < 16 ? o->workers : 16;
    struct prefill_arg args[16];
    pthread_t th[16];
    uint64_t t0 = now_ns(), errors = 0;
    for (unsigned i = 0; i < n; i++) {
        args[i] = (struct prefill_arg){.o = o, .id = i, .nthreads = n,
                                       .buf = value};
    }
    int err = 0;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&th[i], NULL, prefill_main, &args[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start prefill thread\n");
            exit(1);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        errors += args[i].errors;
        if (args[i].err) {
            err = args[i].err;
        }
    }
    fprintf(stderr, "loadgen: prefilled %u keys in %.2f s (%llu errors%s%s)\n",
            o->keys, (double)(now_ns() - t0) / 1e9,
            (unsigned long long)errors, err ? ", last: " : "",
            err ? strerror(err) : "");
    return errors ? -err : 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen [options] DIR [DIR...]\n"
            "  -w, --workload W     write|read|mix|excl|append|ls "
            "(default write)\n"
            "  -c, --workers N      concurrent workers, spread over the DIRs "
            "(default 1)\n"
            "  -d, --duration S     run for S seconds (default 10)\n"
            "  -n, --ops N          run N operations in total instead\n"
            "  -k, --keys K         key space size (default 1000)\n"
            "  -s, --value-size V   bytes per write (default 64)\n"
            "  -p, --prefix P       subdirectory of each DIR holding the keys "
            "(default bench; created)\n"
            "  -r, --read-pct R     reads in the mix workload (default 90)\n"
            "      --prefill        write every key once before the run\n"
            "      --worker-dirs    excl: worker i creates in PREFIX/w<i> "
            "(the kernel\n"
            "                       serializes creates in one directory per "
            "mount)\n"
            "      --label L        name of the run in the output\n"
            "Prints a report and one line 'LOADGEN_RESULT {json}'. Workers "
            "run closed loops\n(one operation at a time, no target rate).\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.w = W_WRITE, .workers = 1, .keys = 1000,
                       .value_size = 64, .read_pct = 90, .duration_s = 10,
                       .prefix = "bench", .label = ""};
    int i;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s, l) (strcmp(a, s) == 0 || strcmp(a, l) == 0)
        if (strcmp(a, "--prefill") == 0) {
            o->prefill = true;
            continue;
        }
        if (strcmp(a, "--worker-dirs") == 0) {
            o->worker_dirs = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return -EINVAL;
        }
        i++;
        if (IS("-w", "--workload")) {
            size_t j, nw = sizeof workload_names / sizeof workload_names[0];
            for (j = 0; j < nw && strcmp(v, workload_names[j]) != 0; j++) {
            }
            if (j == nw) {
                fprintf(stderr, "loadgen: unknown workload %s\n", v);
                return -EINVAL;
            }
            o->w = (enum workload)j;
        } else if (IS("-c", "--workers")) {
            o->workers = (unsigned)strtoul(v, NULL, 10);
        } else if (IS("-d", "--duration")) {
            o->duration_s = strtod(v, NULL);
        } else if (IS("-n", "--ops")) {
            o->ops = strtoull(v, NULL, 10);
        } else if (IS("-k", "--keys")) {
            o->keys = (unsigned)strtoul(v, NULL, 10);
        } else if (IS("-s", "--value-size")) {
            o->value_size = (unsigned)strtoul(v, NULL, 10);
        } else if (IS("-p", "--prefix")) {
            o->prefix = v;
        } else if (IS("-r", "--read-pct")) {
            o->read_pct = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--label") == 0) {
            o->label = v;
        } else {
            fprintf(stderr, "loadgen: unknown option %s\n", a);
            return -EINVAL;
        }
#undef IS
    }
    o->dirs = argv + i;
    o->ndirs = (unsigned)(argc - i);
    if (o->ndirs == 0 || o->workers == 0 || o->keys == 0 ||
        (o->ops == 0 && o->duration_s <= 0) || o->read_pct > 100) {
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, &o) != 0) {
        return 2;
    }
    char path[PATH_MAX];
    for (unsigned i = 0; i < o.ndirs; i++) {
        snprintf(path, sizeof path, "%s/%s", o.dirs[i], o.prefix);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "loadgen: mkdir %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    for (unsigned i = 0; o.worker_dirs && i < o.workers; i++) {
        snprintf(path, sizeof path, "%s/%s/w%u", o.dirs[i % o.ndirs],
                 o.prefix, i);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "loadgen: mkdir %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    size_t buflen = o.value_size > 65536 ? o.value_size : 65536;
    char *value = malloc(buflen + 1);
    struct worker *ws = calloc(o.workers, sizeof *ws);
    struct lg_rec *recs = calloc(o.workers, sizeof *recs);
    struct shared sh = {.o = &o, .nonce = (unsigned)getpid() ^
                                          (unsigned)(now_ns() >> 10)};
    if (value == NULL || ws == NULL || recs == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    memset(value, 'v', buflen);
    if (o.value_size > 0) {
        value[o.value_size - 1] = '\n';
    }
    if (o.prefill && prefill(&o, value) != 0) {
        fprintf(stderr, "loadgen: prefill failed; running anyway\n");
    }
    atomic_init(&sh.stop, false);
    atomic_init(&sh.claimed, 0);
    pthread_barrier_init(&sh.start, NULL, o.workers + 1);
    int rv = 0;
    for (unsigned i = 0; i < o.workers; i++) {
        struct worker *w = &ws[i];
        w->sh = &sh;
        w->id = i;
        w->dir = o.dirs[i % o.ndirs];
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1) ^ sh.nonce;
        w->buflen = buflen;
        w->buf = malloc(buflen);
        if (w->buf == NULL || lg_rec_init(&w->rec) != 0) {
            fprintf(stderr, "loadgen: out of memory\n");
            return 1;
        }
        memcpy(w->buf, value, buflen);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            fprintf(stderr, "loadgen: cannot start worker %u\n", i);
            return 1;
        }
    }
    pthread_barrier_wait(&sh.start);
    uint64_t t0 = now_ns();
    if (o.ops == 0) {
        struct timespec ts = {.tv_sec = (time_t)o.duration_s};
        ts.tv_nsec = (long)((o.duration_s - (double)ts.tv_sec) * 1e9);
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        atomic_store(&sh.stop, true);
    }
    for (unsigned i = 0; i < o.workers; i++) {
        pthread_join(ws[i].thread, NULL);
    }
    double seconds = (double)(now_ns() - t0) / 1e9;
    for (unsigned i = 0; i < o.workers; i++) {
        recs[i] = ws[i].rec;
        free(ws[i].buf);
    }
    struct lg_summary s;
    if (lg_summarize(recs, o.workers, seconds, &s) != 0) {
        fprintf(stderr, "loadgen: out of memory\n");
        rv = 1;
    } else {
        lg_report(&s, o.label, workload_names[o.w], o.workers, o.ndirs,
                  o.keys, o.value_size);
        rv = s.errors == s.ops && s.ops > 0 ? 1 : 0;
    }
    for (unsigned i = 0; i < o.workers; i++) {
        lg_rec_close(&recs[i]);
    }
    pthread_barrier_destroy(&sh.start);
    free(recs);
    free(ws);
    free(value);
    return rv;
}
