/* CRC32C (Castagnoli, reflected 0x82F63B78), slicing by 8: the checksum of
 * snapshot files (snapshot.c, fsm_restore.c) and of WAL records (wal*.c). */
#ifndef STORE_CRC32C_H
#define STORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The tables live in whoever checksums: no globals. */
struct store_crc32c {
    uint32_t t[8][256];
};

void store__crc32c_init(struct store_crc32c *c);

/* Feeds buf into the running value v: start with 0xffffffff; the CRC of
 * everything fed is the last v ^ 0xffffffff. */
uint32_t store__crc32c_update(const struct store_crc32c *c, uint32_t v,
                              const void *buf, size_t len);

#endif /* STORE_CRC32C_H */
