/* Disk blocks of data.mdb reserved ahead of LMDB's writable map (mapres.c). */
#ifndef STORE_MAPRES_H
#define STORE_MAPRES_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

struct store_mapres {
    MDB_env *env;      /* NULL: not in use (the env has no MDB_WRITEMAP) */
    int fd;            /* data.mdb, LMDB's */
    uint64_t psize;    /* LMDB's page size */
    uint64_t map_size; /* data.mdb's size: LMDB made it the map's */
    uint64_t reserved; /* bytes from offset 0 known to have blocks */
    uint64_t base;     /* end of LMDB's pages when the txn began */
    uint64_t need;     /* bound on what the txn may add after base */
    uint64_t fallocs;  /* fallocate calls that succeeded (stats, tests) */
};

/* True if fallocate works for files in dir (probed with a temporary file
 * that is removed again). */
bool store__mapres_supported(const char *dir);

/* After mdb_env_open(MDB_WRITEMAP): starts with nothing known reserved. */
int store__mapres_init(struct store_mapres *r, MDB_env *env);

/* At the start of each write transaction (before its first write). 0, or
 * -ENOSPC when the disk cannot back what the transaction may write, or
 * another -errno. A no-op when r is NULL or not in use. */
int store__mapres_begin(struct store_mapres *r);

/* Before a write that may add up to `bytes` to data.mdb past its current
 * end: 0, or -ENOSPC / -errno as for begin (abort the transaction). */
int store__mapres_add(struct store_mapres *r, uint64_t bytes);

/* What one mdb_del may add (mapres.c). */
uint64_t store__mapres_del_bound(const struct store_mapres *r);

/* What one mdb_put of a key and value may add (mapres.c). */
uint64_t store__mapres_put_bound(const struct store_mapres *r, uint64_t klen,
                                 uint64_t vlen);

#endif
