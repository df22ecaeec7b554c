/*
 * Disk blocks of data.mdb, reserved ahead of LMDB's writable map.
 *
 * The store opens LMDB with MDB_WRITEMAP when the file system can fallocate:
 * a transaction then writes its pages straight into the shared map, and a
 * commit has no page to copy out with pwrite. A create touches four DBIs,
 * about a dozen pages per node once the tree has some depth; those pwrites
 * were a large part of an apply (docs/BENCHMARKS.md, 2026-12-06).
 *
 * The price: LMDB makes data.mdb as large as the map (a sparse ftruncate),
 * and a page with no disk block behind it gets one when it is first written
 * through the map. On a full disk that first write is a SIGBUS, where a
 * pwrite returned ENOSPC. So every write transaction first makes sure that
 * blocks are allocated for all of LMDB's pages and for what the transaction
 * may add (fallocate, which never returns before the blocks are there): on
 * a full disk the write fails with -ENOSPC before anything is done, and the
 * driver retries it later, as before.
 *
 * What a transaction may add past LMDB's last page: the values and keys it
 * puts with their page overhead (store__mapres_put_bound, added by each put
 * in fsm.c), the copied leaf of each delete (store__mapres_del_bound), a
 * whole restored snapshot (fsm_restore.c), and TXN_SLACK for the rest
 * (copies of branch pages, the meta DBI's small records, the free list).
 * Pages below the last page were written before, so they are backed.
 * Reserving goes up to the next multiple of CHUNK (so at most CHUNK ahead)
 * and fallocate is rare; when the disk cannot give that, exactly what is
 * needed is enough.
 */
#include "mapres.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64u << 20)
#define TXN_SLACK (256u << 10)

bool store__mapres_supported(const char *dir)
{
    char path[PATH_MAX];
    bool ok;
    int fd;

    snprintf(path, sizeof path, "%s/.fallocate-probe", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return false;
    }
    ok = fallocate(fd, 0, 0, 4096) == 0;
    close(fd);
    unlink(path);
    return ok;
}

int store__mapres_init(struct store_mapres *r, MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    int rc;

    memset(r, 0, sizeof *r);
    r->fd = -1;
    if ((rc = mdb_env_get_fd(env, &fd)) != 0 ||
        (rc = mdb_env_info(env, &info)) != 0 ||
        (rc = mdb_env_stat(env, &st)) != 0) {
        return rc > 0 ? -rc : -EIO;
    }
    r->env = env;
    r->fd = fd;
    r->psize = st.ms_psize;
    r->map_size = info.me_mapsize;
    return 0;
}

/* Blocks for [0, upto), rounded up to a CHUNK boundary when the disk has
 * room for that. */
static int reserve(struct store_mapres *r, uint64_t upto)
{
    uint64_t want;

    if (upto > r->map_size) {
        upto = r->map_size; /* LMDB fails with MDB_MAP_FULL past it */
    }
    if (upto <= r->reserved) {
        return 0;
    }
    want = (upto + CHUNK - 1) / CHUNK * CHUNK; /* at most CHUNK ahead */
    if (want > r->map_size) {
        want = r->map_size;
    }
    if (fallocate(r->fd, 0, (off_t)r->reserved,
                  (off_t)(want - r->reserved)) == 0) {
        r->reserved = want;
        r->fallocs++;
        return 0;
    }
    if (errno != ENOSPC) {
        return -errno;
    }
    if (fallocate(r->fd, 0, (off_t)r->reserved, (off_t)(upto - r->reserved)) !=
        0) {
        return -errno;
    }
    r->reserved = upto;
    r->fallocs++;
    return 0;
}

int store__mapres_begin(struct store_mapres *r)
{
    MDB_envinfo info;
    int rc;

    if (r == NULL || r->env == NULL) {
        return 0;
    }
    rc = mdb_env_info(r->env, &info);
    if (rc != 0) {
        return rc > 0 ? -rc : -EIO;
    }
    r->base = ((uint64_t)info.me_last_pgno + 1) * r->psize;
    r->need = TXN_SLACK;
    return reserve(r, r->base + r->need);
}

int store__mapres_add(struct store_mapres *r, uint64_t bytes)
{
    if (r == NULL || r->env == NULL) {
        return 0;
    }
    r->need += bytes;
    return reserve(r, r->base + r->need);
}

uint64_t store__mapres_del_bound(const struct store_mapres *r)
{
    /* The leaf copied before the record leaves it (freed overflow pages
     * are not reusable before the commit, but need no new ones). */
    return r == NULL ? 0 : 2 * r->psize;
}

uint64_t store__mapres_put_bound(const struct store_mapres *r, uint64_t klen,
                                 uint64_t vlen)
{
    /* The record (an overflow run for a large value) and a split leaf or
     * branch page on the way. */
    return r == NULL ? 0 : klen + vlen + 2 * r->psize;
}
