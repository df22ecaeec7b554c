/* Length-prefixed framing: header encoding and the incremental decoder. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

void net__frame_put_header(uint8_t *p, uint32_t len)
{
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
}

void net__frame_decoder_init(struct net__frame_decoder *d, size_t frame_max)
{
    memset(d, 0, sizeof *d);
    d->frame_max = frame_max;
}

void net__frame_decoder_close(struct net__frame_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
    d->hdr_len = 0;
    d->want = 0;
    d->have = 0;
}

int net__frame_idle(const struct net__frame_decoder *d)
{
    return d->hdr_len == 0;
}

int net__frame_feed(struct net__frame_decoder *d, const uint8_t *data,
                    size_t len, net__frame_cb cb, void *arg)
{
    int rv;

    while (len > 0) {
        if (d->hdr_len < NET_FRAME_HDR) {
            size_t n = NET_FRAME_HDR - d->hdr_len;
            if (n > len)
                n = len;
            memcpy(d->hdr + d->hdr_len, data, n);
            d->hdr_len += n;
            data += n;
            len -= n;
            if (d->hdr_len < NET_FRAME_HDR)
                return 0;
            d->want = (size_t)d->hdr[0] << 24 | (size_t)d->hdr[1] << 16 |
                      (size_t)d->hdr[2] << 8 | (size_t)d->hdr[3];
            d->have = 0;
            /* Refuse before buffering anything: a garbage header must not
             * make us allocate gigabytes. */
            if (d->want > d->frame_max)
                return NET_ERR_FRAME_TOO_BIG;
            /* Fast path: the whole payload is in this feed. */
            if (len >= d->want) {
                const uint8_t *p = data;
                size_t n_frame = d->want;
                data += n_frame;
                len -= n_frame;
                d->hdr_len = 0;
                rv = cb(arg, p, n_frame);
                if (rv != 0)
                    return rv;
                continue;
            }
            d->buf = malloc(d->want);
            if (d->buf == NULL)
                return -ENOMEM;
        }
        size_t n = d->want - d->have;
        if (n > len)
            n = len;
        memcpy(d->buf + d->have, data, n);
        d->have += n;
        data += n;
        len -= n;
        if (d->have < d->want)
            return 0;
        uint8_t *p = d->buf;
        size_t n_frame = d->want;
        d->buf = NULL;
        d->hdr_len = 0;
        rv = cb(arg, p, n_frame);
        free(p);
        if (rv != 0)
            return rv;
    }
    return 0;
}
