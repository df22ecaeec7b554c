/* Error strings and the log helper of net/. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

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
