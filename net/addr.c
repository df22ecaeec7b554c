/* Address parsing: "HOST:PORT", "[V6]:PORT" and "ID=HOST:PORT,..." lists. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define HOST_MAX RAFT_ADDR_MAX

static int fail(char *err, size_t errlen, const char *fmt, const char *s)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, s);
    return NET_ERR_BAD_ADDR;
}

/* Splits s into host (without brackets) and port; *v6 tells whether the
 * host was bracketed. */
static int split(const char *s, char *host, unsigned *port, int *v6,
                 char *err, size_t errlen)
{
    const char *colon, *hs, *he, *p;
    unsigned long n = 0;

    if (s == NULL || *s == '\0')
        return fail(err, errlen, "empty address%s", "");
    if (strlen(s) >= RAFT_ADDR_MAX)
        return fail(err, errlen, "address too long: '%s'", s);
    *v6 = 0;
    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (he == NULL)
            return fail(err, errlen, "missing ']' in '%s'", s);
        if (he[1] != ':')
            return fail(err, errlen, "expected ':PORT' after ']' in '%s'", s);
        colon = he + 1;
        *v6 = 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return fail(err, errlen, "expected HOST:PORT, got '%s'", s);
        hs = s;
        he = colon;
        if (memchr(hs, ':', (size_t)(he - hs)) != NULL)
            return fail(err, errlen,
                        "IPv6 addresses need brackets: '[V6]:PORT', got '%s'",
                        s);
    }
    if (he == hs)
        return fail(err, errlen, "empty host in '%s'", s);
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    p = colon + 1;
    if (*p == '\0')
        return fail(err, errlen, "missing port in '%s'", s);
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return fail(err, errlen, "port is not a number in '%s'", s);
        n = n * 10 + (unsigned long)(*p - '0');
        if (n > 65535)
            return fail(err, errlen, "port out of range in '%s'", s);
    }
    *port = (unsigned)n;
    return 0;
}

int net_addr_check(const char *s, char *err, size_t errlen)
{
    char host[HOST_MAX];
    unsigned port;
    int v6;
    int rv = split(s, host, &port, &v6, err, errlen);

    if (rv != 0)
        return rv;
    if (v6) {
        struct in6_addr a;
        if (inet_pton(AF_INET6, host, &a) != 1)
            return fail(err, errlen, "bad IPv6 address in '%s'", s);
    }
    return 0;
}

int net__addr_literal(const char *s, struct sockaddr_storage *out,
                      char *host, size_t hostcap, unsigned *port)
{
    char h[HOST_MAX];
    int v6;
    int rv = split(s, h, port, &v6, NULL, 0);

    if (rv != 0)
        return rv;
    memset(out, 0, sizeof *out);
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, h, &in6->sin6_addr) != 1)
            return NET_ERR_BAD_ADDR;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)*port);
        return 0;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)*port);
        return 0;
    }
    snprintf(host, hostcap, "%s", h);
    return 1;
}

int net_addr_parse(const char *s, struct sockaddr_storage *out, char *err,
                   size_t errlen)
{
    char host[HOST_MAX];
    unsigned port;
    int v6;
    struct addrinfo hints, *res = NULL;
    int rv = split(s, host, &port, &v6, err, errlen);

    if (rv != 0)
        return rv;
    memset(out, 0, sizeof *out);
    if (!v6) {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
            in->sin_family = AF_INET;
            in->sin_port = htons((uint16_t)port);
            return 0;
        }
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return fail(err, errlen, "bad IPv6 address in '%s'", s);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    /* A host name: resolve it (blocking, see net.h). */
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return fail(err, errlen, "cannot resolve host in '%s'", s);
    if (res->ai_addrlen > sizeof *out) {
        freeaddrinfo(res);
        return fail(err, errlen, "cannot resolve host in '%s'", s);
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    if (res->ai_family == AF_INET)
        ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

int net_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    int n;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        n = snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        n = snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        return NET_ERR_BAD_ADDR;
    }
    return n > 0 && (size_t)n < len ? 0 : -ENOSPC;
}

int net_peers_parse(const char *s, struct net_peer_addr *out, size_t cap,
                    size_t *n, char *err, size_t errlen)
{
    const char *p = s;
    size_t count = 0, i;

    *n = 0;
    if (s == NULL || *s == '\0')
        return fail(err, errlen, "empty peer list%s", "");
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char item[32 + RAFT_ADDR_MAX];
        char *eq, *q;
        uint64_t id = 0;
        int rv;

        if (len == 0)
            return fail(err, errlen, "empty item in peer list '%s'", s);
        if (len >= sizeof item)
            return fail(err, errlen, "peer list item too long in '%s'", s);
        memcpy(item, p, len);
        item[len] = '\0';
        eq = strchr(item, '=');
        if (eq == NULL || eq == item)
            return fail(err, errlen, "expected ID=HOST:PORT, got '%s'", item);
        for (q = item; q < eq; q++) {
            if (*q < '0' || *q > '9' || id > (UINT64_MAX - 9) / 10)
                return fail(err, errlen, "bad node id in '%s'", item);
            id = id * 10 + (uint64_t)(*q - '0');
        }
        if (id == 0)
            return fail(err, errlen, "node id 0 is not allowed in '%s'", item);
        rv = net_addr_check(eq + 1, err, errlen);
        if (rv != 0)
            return rv;
        for (i = 0; i < count; i++)
            if (out[i].id == id)
                return fail(err, errlen, "duplicate node id in '%s'", s);
        if (count == cap)
            return fail(err, errlen, "too many peers in '%s'", s);
        out[count].id = id;
        snprintf(out[count].addr, sizeof out[count].addr, "%s", eq + 1);
        count++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *n = count;
    return 0;
}
