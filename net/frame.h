/* Length-prefixed framing of net/ streams and its incremental decoder. */
#ifndef NET_FRAME_H
#define NET_FRAME_H

/*
 * Every peer and client connection is a sequence of frames:
 *
 *   0        4                          4 + len
 *   +--------+--------------------------+--------+-----
 *   | len    | payload (len bytes)      | len    | ...
 *   | u32 BE | one protobuf message     | u32 BE |
 *   +--------+--------------------------+--------+-----
 *
 * The payload is an Envelope (proto/peer.proto) on peer connections and a
 * Request or Response (proto/client.proto) on client connections.
 * len <= frame_max (default NET_FRAME_MAX_DEFAULT, 8 MiB: values are at most
 * 1 MiB, AppendEntries batches and snapshot chunks are bounded by the core);
 * a larger length closes the connection before anything is buffered.
 * len == 0 is a valid frame (an empty message) that decoding then rejects.
 */

#include <stddef.h>
#include <stdint.h>

#define NET_FRAME_HDR 4

/* Writes the 4-byte big-endian header of a len-byte payload at p. */
void net__frame_put_header(uint8_t *p, uint32_t len);

/* Called with each complete frame payload; the bytes are valid only during
 * the call. A nonzero return stops net__frame_feed(), which returns it. */
typedef int (*net__frame_cb)(void *arg, const uint8_t *payload, size_t len);

/*
 * Incremental decoder: feed it the byte stream split anyhow. A frame that
 * arrives whole in one feed is passed straight from the caller's buffer;
 * only a frame split across feeds is assembled in a malloc'd buffer of its
 * exact size (never more than frame_max).
 */
struct net__frame_decoder {
    size_t frame_max;
    uint8_t hdr[NET_FRAME_HDR];
    size_t hdr_len;   /* header bytes gathered so far */
    uint8_t *buf;     /* payload being assembled, NULL if none */
    size_t want;      /* payload length of the current frame */
    size_t have;      /* payload bytes gathered so far */
};

void net__frame_decoder_init(struct net__frame_decoder *d, size_t frame_max);
/* Frees the partial frame, if any, and returns to the initial state. */
void net__frame_decoder_close(struct net__frame_decoder *d);

/*
 * Consumes data[0..len), calling cb for every frame completed. Returns 0,
 * NET_ERR_FRAME_TOO_BIG (a header announced more than frame_max: the stream
 * is unusable), -ENOMEM, or the first nonzero value cb returned. After an
 * error the decoder must only be closed.
 */
int net__frame_feed(struct net__frame_decoder *d, const uint8_t *data,
                    size_t len, net__frame_cb cb, void *arg);

/* True when no partial frame is buffered (a clean place for EOF). */
int net__frame_idle(const struct net__frame_decoder *d);

#endif /* NET_FRAME_H */
