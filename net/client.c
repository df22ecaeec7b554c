/* The blocking client of raftfsctl: one request, one response, with timeouts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "frame.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 0, NET_ERR_TIMEOUT or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rv;

    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return NET_ERR_TIMEOUT;
        rv = poll(&p, 1, (int)(deadline - now));
        if (rv > 0)
            return 0;
        if (rv == 0)
            return NET_ERR_TIMEOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Non-blocking connect bounded by the deadline. Returns the fd or < 0. */
static int connect_to(const struct sockaddr_storage *sa, uint64_t deadline)
{
    socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);
    int rv, soerr = 0;
    socklen_t sl = sizeof soerr;

    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)sa, len) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        rv = -errno;
        close(fd);
        return rv;
    }
    rv = wait_fd(fd, POLLOUT, deadline);
    if (rv == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        rv = -errno;
    if (rv == 0 && soerr != 0)
        rv = -soerr;
    if (rv != 0) {
        close(fd);
        return rv;
    }
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == EPIPE || errno == ECONNRESET ? NET_ERR_CLOSED
                                                         : -errno;
        int rv = wait_fd(fd, POLLOUT, deadline);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return NET_ERR_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == ECONNRESET ? NET_ERR_CLOSED : -errno;
        int rv = wait_fd(fd, POLLIN, deadline);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* Sends the request frame and reads back the response with the same id. */
static int exchange(int fd, const struct net__wframe *f, uint64_t id,
                    struct net_client_resp *resp, uint64_t deadline)
{
    uint8_t hdr[NET_FRAME_HDR];
    uint8_t *buf;
    size_t len;
    int rv = write_all(fd, f->data, f->len, deadline);

    if (rv != 0)
        return rv;
    rv = read_all(fd, hdr, sizeof hdr, deadline);
    if (rv != 0)
        return rv;
    len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 |
          hdr[3];
    if (len > NET_FRAME_MAX_DEFAULT)
        return NET_ERR_FRAME_TOO_BIG;
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return -ENOMEM;
    rv = read_all(fd, buf, len, deadline);
    if (rv == 0)
        rv = net__decode_client_resp(buf, len, resp);
    free(buf);
    if (rv == 0 && resp->id != id) {
        net_client_resp_close(resp);
        rv = NET_ERR_MALFORMED;
    }
    return rv;
}

int net_client_call(const char *endpoints, unsigned timeout_ms,
                    const struct net_client_req *req,
                    struct net_client_resp *resp, char *used, char *err,
                    size_t errlen)
{
    char list[1024], why[160] = "empty endpoint list";
    char *save = NULL, *ep;
    struct net__wframe *f;
    struct sockaddr_storage sa;
    int rv, fd = -1;

    memset(resp, 0, sizeof *resp);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (endpoints == NULL || strlen(endpoints) >= sizeof list) {
        if (err != NULL)
            snprintf(err, errlen, "bad endpoint list");
        return NET_ERR_BAD_ADDR;
    }
    rv = net__encode_client_req(req, NET_FRAME_MAX_DEFAULT, &f);
    if (rv != 0) {
        if (err != NULL)
            snprintf(err, errlen, "cannot encode the request: %s",
                     net_strerror(rv));
        return rv;
    }
    snprintf(list, sizeof list, "%s", endpoints);
    for (ep = strtok_r(list, ",", &save); ep != NULL;
         ep = strtok_r(NULL, ",", &save)) {
        rv = net_addr_parse(ep, &sa, why, sizeof why);
        if (rv != 0) {
            if (err != NULL)
                snprintf(err, errlen, "%s", why);
            free(f);
            return rv;
        }
        fd = connect_to(&sa, now_ms() + timeout_ms);
        if (fd >= 0)
            break;
        snprintf(why, sizeof why, "%s: %s", ep, net_strerror(fd));
    }
    if (fd < 0) {
        if (err != NULL)
            snprintf(err, errlen, "no endpoint reachable (last: %s)", why);
        free(f);
        return NET_ERR_UNAVAILABLE;
    }
    if (used != NULL)
        snprintf(used, RAFT_ADDR_MAX, "%s", ep);
    rv = exchange(fd, f, req->id, resp, now_ms() + timeout_ms);
    close(fd);
    free(f);
    if (rv != 0 && err != NULL)
        snprintf(err, errlen, "%s: %s", ep, net_strerror(rv));
    return rv;
}
