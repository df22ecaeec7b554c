/* The driver's storage: raft/node.h's interface carried out by store/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/* Thread-pool thread: one write at a time (the driver serializes). */
static int st_write(void *data, struct raft_node_batch *nb)
{
    struct fs_daemon *d = data;
    struct store_batch b;
    struct store_write_result r;
    size_t i;
    int rv = 0;

    store_batch_init(&b);
    /* raft.h step 2: the chunk first, the install (which may name it)
     * next. */
    if (nb->has_chunk) {
        rv = store_batch_chunk(&b, &nb->chunk_meta, nb->chunk_offset,
                               &nb->chunk);
    }
    if (rv == 0 && nb->has_install) {
        rv = store_batch_install(&b, &nb->install);
    }
    if (rv == 0 && nb->has_hard_state) {
        rv = store_batch_hard_state(&b, nb->term, nb->vote);
    }
    if (rv == 0 && nb->n_entries > 0) {
        rv = store_batch_append(&b, nb->entries, nb->n_entries);
    }
    if (rv == 0 && nb->n_committed > 0) {
        rv = store_batch_apply(&b, nb->committed, nb->n_committed);
    }
    if (rv == 0 && nb->compact_to > 0) {
        rv = store_batch_compact(&b, nb->compact_to);
    }
    if (rv != 0) {
        store_batch_close(&b);
        return rv;
    }
    memset(&r, 0, sizeof r);
    rv = store_write(&d->store, &b, &r);
    store_batch_close(&b);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < nb->n_committed && i < r.n_results; i++) {
        struct store_apply_result *res = malloc(sizeof *res);
        if (res != NULL) {
            *res = r.results[i];
        }
        nb->results[i] = res;
        nb->statuses[i] = r.results[i].status;
    }
    nb->applied = r.applied;
    store_write_result_close(&r);
    return 0;
}

static int st_snapshot(void *data, raft_index *index, uint64_t *size)
{
    struct fs_daemon *d = data;
    struct raft_snapshot_meta m;
    int rv = store_snapshot_take(&d->store, &m);
    if (rv != 0) {
        return rv;
    }
    *index = m.index;
    *size = m.size;
    return 0;
}

static int st_snapshot_read(void *data, raft_index index, uint64_t offset,
                            void *buf, uint32_t len)
{
    struct fs_daemon *d = data;
    int rv = store_snapshot_read(&d->store, index, offset, buf, len);
    return rv == STORE_ERR_NO_SNAPSHOT ? -ENOENT : rv;
}

void fs__storage_iface(struct fs_daemon *d, struct raft_node_storage *s)
{
    s->data = d;
    s->write = st_write;
    s->snapshot = st_snapshot;
    s->snapshot_read = st_snapshot_read;
    /* Applies commit without a sync when the store can detect a power
     * loss (store/durable.c): cheap enough for the loop thread. */
    s->inline_apply = d->store.nosync;
    /* A batch of entries is one pwrite and one fdatasync of a preallocated
     * WAL segment (store/wal.c), plus unsynced applies. */
    s->inline_sync = d->store.nosync;
}
