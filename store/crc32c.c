/* CRC32C, slicing by 8 (see crc32c.h). */
#include "crc32c.h"

void store__crc32c_init(struct store_crc32c *c)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t r = i;
        for (int j = 0; j < 8; j++) {
            r = (r >> 1) ^ (0x82F63B78u & (0u - (r & 1)));
        }
        c->t[0][i] = r;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int s = 1; s < 8; s++) {
            c->t[s][i] = (c->t[s - 1][i] >> 8) ^ c->t[0][c->t[s - 1][i] & 0xff];
        }
    }
}

uint32_t store__crc32c_update(const struct store_crc32c *c, uint32_t v,
                              const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len >= 8) {
        uint32_t lo = v ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        v = c->t[7][lo & 0xff] ^ c->t[6][(lo >> 8) & 0xff] ^
            c->t[5][(lo >> 16) & 0xff] ^ c->t[4][lo >> 24] ^ c->t[3][p[4]] ^
            c->t[2][p[5]] ^ c->t[1][p[6]] ^ c->t[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len-- > 0) {
        v = (v >> 8) ^ c->t[0][(v ^ *p++) & 0xff];
    }
    return v;
}
