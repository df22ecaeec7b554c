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
            "usage: loadgen [options] [--] DIR [DIR...]\n"
            "  -w, --workload W     write|read|mix|excl|append|ls "
            "(default write)\n"
            "  -c, --workers N      concurrent workers (1-4096), spread over "
            "the DIRs\n"
            "                       (default 1)\n"
            "  -d, --duration S     run for S seconds, 0 < S <= 86400 "
            "(default 10)\n"
            "  -n, --ops N          run N operations in total instead "
            "(1-10^12)\n"
            "  -k, --keys K         key space size (1-10^8, default 1000)\n"
            "  -s, --value-size V   bytes per write (0-16777216, default 64)\n"
            "  -p, --prefix P       subdirectory of each DIR holding the keys "
            "(default bench; created)\n"
            "  -r, --read-pct R     reads in the mix workload (0-100, "
            "default 90)\n"
            "      --prefill        write every key once before the run\n"
            "      --worker-dirs    excl: worker i creates in PREFIX/w<i> "
            "(the kernel\n"
            "                       serializes creates in one directory per "
            "mount)\n"
            "      --label L        name of the run in the output\n"
            "Prints a report and one line 'LOADGEN_RESULT {json}'. Workers "
            "run closed loops\n(one operation at a time, no target rate).\n");
}

/* Bounds of the numeric options. A value outside them is refused rather
 * than wrapped or truncated: "-c -5" must not become 4294967291 workers. */
#define MAX_WORKERS 4096u
#define MAX_KEYS 100000000u
#define MAX_VALUE_SIZE (16u << 20)
#define MAX_OPS 1000000000000ull
#define MAX_DURATION_S 86400.0

/* Parses v, the value of option opt, as a whole decimal number in
 * [min, max]: digits only (no sign, space or suffix), no overflow. Prints
 * why on failure. Returns 0 or -EINVAL. */
static int parse_whole(const char *opt, const char *v, uint64_t min,
                       uint64_t max, uint64_t *out)
{
    uint64_t x = 0;
    const char *c = v;
    for (; *c >= '0' && *c <= '9'; c++) {
        unsigned d = (unsigned)(*c - '0');
        if (x > (UINT64_MAX - d) / 10) {
            break;
        }
        x = x * 10 + d;
    }
    if (c == v || *c != '\0' || x < min || x > max) {
        fprintf(stderr,
                "loadgen: %s needs a whole number from %llu to %llu, "
                "not '%s'\n",
                opt, (unsigned long long)min, (unsigned long long)max, v);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

/* As parse_whole, for the options that fit an unsigned. */
static int parse_uint(const char *opt, const char *v, unsigned min,
                      unsigned max, unsigned *out)
{
    uint64_t x;
    int rv = parse_whole(opt, v, min, max, &x);
    if (rv == 0) {
        *out = (unsigned)x;
    }
    return rv;
}

/* Parses v as seconds: a plain decimal number ("2", "0.5", ".5"), above 0
 * and at most a day. strtod alone would also take " 1", "1e3", "0x10",
 * "inf" and "nan". Returns 0 or -EINVAL. */
static int parse_seconds(const char *opt, const char *v, double *out)
{
    size_t digits = 0, dots = 0;
    const char *c;
    for (c = v; (*c >= '0' && *c <= '9') || *c == '.'; c++) {
        if (*c == '.') {
            dots++;
        } else {
            digits++;
        }
    }
    double x = 0;
    if (*c == '\0' && digits > 0 && dots <= 1) {
        x = strtod(v, NULL);
    }
    if (!(x > 0 && x <= MAX_DURATION_S)) {
        fprintf(stderr,
                "loadgen: %s needs a number of seconds above 0 and at most "
                "%.0f, not '%s'\n",
                opt, MAX_DURATION_S, v);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

/* Parses the command line into o; on a bad argument prints why and returns
 * -EINVAL (exit code 2). o->dirs points into argv. */
static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.w = W_WRITE, .workers = 1, .keys = 1000,
                       .value_size = 64, .read_pct = 90, .duration_s = 10,
                       .prefix = "bench", .label = ""};
    bool dashdash = false;
    int i;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            dashdash = true;
            i++;
            break;
        }
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
#define IS(s, l) (strcmp(a, s) == 0 || strcmp(a, l) == 0)
        if (!IS("-w", "--workload") && !IS("-c", "--workers") &&
            !IS("-d", "--duration") && !IS("-n", "--ops") &&
            !IS("-k", "--keys") && !IS("-s", "--value-size") &&
            !IS("-p", "--prefix") && !IS("-r", "--read-pct") &&
            strcmp(a, "--label") != 0) {
            fprintf(stderr, "loadgen: unknown option '%s' (try --help)\n", a);
            return -EINVAL;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return -EINVAL;
        }
        const char *v = argv[++i];
        int rv = 0;
        if (IS("-w", "--workload")) {
            size_t j, nw = sizeof workload_names / sizeof workload_names[0];
            for (j = 0; j < nw && strcmp(v, workload_names[j]) != 0; j++) {
            }
            if (j == nw) {
                fprintf(stderr,
                        "loadgen: unknown workload '%s' (one of write, read, "
                        "mix, excl, append, ls)\n",
                        v);
                return -EINVAL;
            }
            o->w = (enum workload)j;
        } else if (IS("-c", "--workers")) {
            rv = parse_uint(a, v, 1, MAX_WORKERS, &o->workers);
        } else if (IS("-d", "--duration")) {
            rv = parse_seconds(a, v, &o->duration_s);
        } else if (IS("-n", "--ops")) {
            rv = parse_whole(a, v, 1, MAX_OPS, &o->ops);
        } else if (IS("-k", "--keys")) {
            rv = parse_uint(a, v, 1, MAX_KEYS, &o->keys);
        } else if (IS("-s", "--value-size")) {
            /* 0 is allowed: excl -s 0 creates empty files. */
            rv = parse_uint(a, v, 0, MAX_VALUE_SIZE, &o->value_size);
        } else if (IS("-p", "--prefix")) {
            o->prefix = v;
        } else if (IS("-r", "--read-pct")) {
            rv = parse_uint(a, v, 0, 100, &o->read_pct);
        } else {
            o->label = v;
        }
#undef IS
        if (rv != 0) {
            return rv;
        }
    }
    o->dirs = argv + i;
    o->ndirs = (unsigned)(argc - i);
    if (o->ndirs == 0) {
        fprintf(stderr, "loadgen: no DIR given (usage: loadgen [options] DIR "
                        "[DIR...]; try --help)\n");
        return -EINVAL;
    }
    for (unsigned d = 0; d < o->ndirs; d++) {
        /* Options come first; "loadgen M1 -c 4" would otherwise run with
         * one worker and fail on a directory named "-c". */
        if (o->dirs[d][0] == '-' && !dashdash) {
            fprintf(stderr,
                    "loadgen: option '%s' after the DIRs (options go first; "
                    "a DIR starting with '-' goes after --)\n",
                    o->dirs[d]);
            return -EINVAL;
        }
        /* Room for PREFIX/w<id>/x<nonce>-<id>-<seq>, the longest path. */
        if (strlen(o->dirs[d]) + strlen(o->prefix) + 64 >= PATH_MAX) {
            fprintf(stderr, "loadgen: DIR '%s' with prefix '%s' is too long\n",
                    o->dirs[d], o->prefix);
            return -EINVAL;
        }
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
