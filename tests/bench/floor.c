/* The machine's floor for a replicated write: fdatasync latency of a disk
 * and the loopback TCP round trip of a small message. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

/*
 * Usage: floor DIR [SYNCS] [ROUNDTRIPS]
 *   SYNCS (default 2000) iterations of pwrite(4 KiB) + fdatasync on a file
 *   preallocated in DIR (written in place, so each sync is one data block
 *   and no size change), then ROUNDTRIPS (default 20000) ping-pongs of a
 *   64-byte message over one TCP connection on 127.0.0.1 (TCP_NODELAY,
 *   a second thread echoes), twice: both threads pinned to one CPU, then
 *   to two different CPUs (when the process may use two). Left to the
 *   scheduler, the two threads land on one CPU or on two from run to run,
 *   and on a VM whose idle vCPUs halt the two differ tenfold (4 against
 *   60-70 us here): the floor is the first; the second is what waking a
 *   process on another, idle vCPU costs. Prints a report and one line
 *   'FLOOR_RESULT {json}' (rtt_cross_* are -1 with a single CPU).
 */

#define BLOCK 4096
#define SLOTS 256
#define MSG 64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v (n > 0) and returns its pct-th percentile (nearest rank, as
 * loadgen's) in microseconds. */
static double pct_us(uint64_t *v, size_t n, unsigned pct)
{
    qsort(v, n, sizeof *v, cmp_u64);
    return (double)v[lg_rank(n, pct) - 1] / 1e3;
}

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void sync_floor(const char *dir, size_t n, double *p50, double *p99)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/floor-sync.%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        die(path);
    }
    static char block[BLOCK];
    memset(block, 'f', sizeof block);
    for (size_t i = 0; i < SLOTS; i++) {
        if (pwrite(fd, block, BLOCK, (off_t)(i * BLOCK)) != BLOCK) {
            die("pwrite");
        }
    }
    if (fsync(fd) != 0) {
        die("fsync");
    }
    uint64_t *lat = malloc(n * sizeof *lat);
    if (lat == NULL) {
        die("malloc");
    }
    for (size_t i = 0; i < n; i++) {
        block[0] = (char)i;
        uint64_t t0 = now_ns();
        if (pwrite(fd, block, BLOCK, (off_t)((i % SLOTS) * BLOCK)) != BLOCK ||
            fdatasync(fd) != 0) {
            die("pwrite+fdatasync");
        }
        lat[i] = now_ns() - t0;
    }
    close(fd);
    unlink(path);
    *p50 = pct_us(lat, n, 50);
    *p99 = pct_us(lat, n, 99);
    free(lat);
}

static int read_full(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t r = read(fd, buf, len);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += r;
        len -= (size_t)r;
    }
    return 0;
}

struct echo {
    int fd;
    int cpu; /* pin to this CPU */
};

static void pin(pthread_t th, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rv = pthread_setaffinity_np(th, sizeof set, &set);
    if (rv != 0) {
        errno = rv;
        die("pthread_setaffinity_np");
    }
}

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    int fd = e->fd;
    char buf[MSG];
    pin(pthread_self(), e->cpu);
    while (read_full(fd, buf, MSG) == 0) {
        if (write(fd, buf, MSG) != MSG) {
            break;
        }
    }
    close(fd);
    return NULL;
}

/* Round trips with the pinger on CPU a and the echoing thread on CPU b. */
static void rtt_floor(size_t n, int a_cpu, int b_cpu, double *p50,
                      double *p99)
{
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        die("listen");
    }
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&a, sizeof a) != 0) {
        die("connect");
    }
    int sfd = accept(lfd, NULL, NULL);
    if (sfd < 0) {
        die("accept");
    }
    close(lfd);
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t th;
    struct echo e = {.fd = sfd, .cpu = b_cpu};
    pin(pthread_self(), a_cpu);
    if (pthread_create(&th, NULL, echo_main, &e) != 0) {
        die("pthread_create");
    }
    uint64_t *lat = malloc(n * sizeof *lat);
    char buf[MSG];
    memset(buf, 'p', sizeof buf);
    if (lat == NULL) {
        die("malloc");
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        if (write(cfd, buf, MSG) != MSG || read_full(cfd, buf, MSG) != 0) {
            die("ping-pong");
        }
        lat[i] = now_ns() - t0;
    }
    shutdown(cfd, SHUT_WR);
    pthread_join(th, NULL);
    close(cfd);
    *p50 = pct_us(lat, n, 50);
    *p99 = pct_us(lat, n, 99);
    free(lat);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: floor DIR [SYNCS] [ROUNDTRIPS]\n");
        return 2;
    }
    size_t syncs = 2000, rtts = 20000;
    for (int i = 2; i < argc && i < 4; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[i], &end, 10);
        if (argv[i][0] < '0' || argv[i][0] > '9' || *end != '\0' ||
            errno != 0 || v == 0 || v > 100000000ull) {
            fprintf(stderr, "floor: %s needs a whole number from 1 to "
                            "100000000, not '%s'\n",
                    i == 2 ? "SYNCS" : "ROUNDTRIPS", argv[i]);
            return 2;
        }
        *(i == 2 ? &syncs : &rtts) = (size_t)v;
    }
    if (argc > 4) {
        fprintf(stderr, "usage: floor DIR [SYNCS] [ROUNDTRIPS]\n");
        return 2;
    }
    /* The first two CPUs this process may use. */
    cpu_set_t allowed;
    int cpus[2] = {-1, -1}, ncpu = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        die("sched_getaffinity");
    }
    for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++) {
        if (CPU_ISSET(c, &allowed)) {
            cpus[ncpu++] = c;
        }
    }
    double s50, s99, r50, r99, x50 = -1, x99 = -1;
    sync_floor(argv[1], syncs, &s50, &s99);
    rtt_floor(rtts, cpus[0], cpus[0], &r50, &r99);
    if (ncpu == 2) {
        rtt_floor(rtts, cpus[0], cpus[1], &x50, &x99);
    }
    printf("4 KiB pwrite + fdatasync in %s: p50 %.1f us, p99 %.1f us "
           "(%zu syncs)\n", argv[1], s50, s99, syncs);
    printf("loopback TCP round trip, %d-byte messages, both threads on CPU "
           "%d: p50 %.1f us, p99 %.1f us (%zu round trips)\n",
           MSG, cpus[0], r50, r99, rtts);
    if (ncpu == 2) {
        printf("the same across CPUs %d and %d: p50 %.1f us, p99 %.1f us\n",
               cpus[0], cpus[1], x50, x99);
    } else {
        printf("the same across two CPUs: not measured (one CPU)\n");
    }
    printf("FLOOR_RESULT {\"fdatasync_p50_us\":%.1f,\"fdatasync_p99_us\":%.1f,"
           "\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,"
           "\"rtt_cross_p50_us\":%.1f,\"rtt_cross_p99_us\":%.1f}\n",
           s50, s99, r50, r99, x50, x99);
    return 0;
}
