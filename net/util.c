/* Shared helpers of net/: error strings, logging, protobuf packing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "codec.h"
#include "frame.h"

const char *net_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define NET_ERR_CASE(name, num, text)                                          \
    case NET_ERR_##name:                                                       \
        return text;
        NET_ERRORS(NET_ERR_CASE)
#undef NET_ERR_CASE
    default:
        break;
    }
    if (rv < 0 && rv > -1000)
        return strerror(-rv);
    return "unknown error";
}

void net__log(net_log_fn fn, void *data, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (fn != NULL) {
        fn(data, level, line);
        return;
    }
    fprintf(stderr, "net: %s\n", line);
}

int net__pack(const void *m, size_t frame_max, struct net__wframe **out)
{
    const ProtobufCMessage *msg = m;
    size_t n = protobuf_c_message_get_packed_size(msg);
    struct net__wframe *f;

    if (n > frame_max || n > UINT32_MAX)
        return NET_ERR_FRAME_TOO_BIG;
    f = malloc(sizeof *f + NET_FRAME_HDR + n);
    if (f == NULL)
        return -ENOMEM;
    f->next = NULL;
    f->len = NET_FRAME_HDR + n;
    net__frame_put_header(f->data, (uint32_t)n);
    protobuf_c_message_pack(msg, f->data + NET_FRAME_HDR);
    *out = f;
    return 0;
}
