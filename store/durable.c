/* What a power loss may take from data.mdb, and how the store comes back:
 * the state file, the unsynced mark, and the rebuild. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "internal.h"
#include "wal_internal.h"

/*
 * Applies and compaction commit to LMDB with MDB_NOSYNC: no fdatasync at
 * all (batch.c). A write that is answered waits for the WAL's sync only.
 * What that costs, and why it is safe:
 *
 *   - A process crash (kill -9, abort) loses nothing: the committed pages
 *     are in the kernel's page cache, which outlives the process.
 *   - A power loss (or kernel crash) may leave data.mdb torn: LMDB writes
 *     its meta page and data pages with no ordering between them, and may
 *     have reused pages the last synced meta page points to. Nothing in it
 *     can be trusted then: not the state machine, not the hard state.
 *
 * So we must know whether a power loss happened while unsynced commits
 * were pending, and we must be able to rebuild data.mdb without it:
 *
 *   unsynced    (mark) the kernel's boot id while the store is open. It is
 *               written (durably) at open, before the first unsynced
 *               commit, and removed at a clean close after a full sync.
 *               At open, a mark with another boot id than the running
 *               kernel's means the machine went down with the store open:
 *               data.mdb is not trusted. A mark with our own boot id is
 *               a process crash: the page cache had everything.
 *   raft.state  (state file) what Raft needs that is not in the WAL or in
 *               a snapshot file, written and synced whenever it changes
 *               durably in LMDB: identity, term and vote, the current
 *               snapshot's metadata, the WAL's dead mark. Written whole
 *               to raft.state.tmp, synced, renamed, directory synced.
 *
 * Rebuild (store_open, when the mark says so): data.mdb is removed and
 * recreated from raft.state and the snapshot file it names: identity, hard
 * state, snapshot metadata, the WAL's marks (compacted = the snapshot's
 * index), the state machine restored from the file, applied = its index.
 * The WAL is then opened as always; entries after the snapshot are applied
 * again as Raft learns they are committed (Raft paper §5.3: applying is
 * deterministic, the log is the truth). WAL segments are only deleted up
 * to the snapshot index (batch.c), so every entry after it is there.
 *
 * Order. raft.state is written after the LMDB commit (and its sync) that
 * it copies, before the batch completes: a Raft message that depends on
 * the new term or vote is sent only after that (raft.h's contract), so a
 * power loss between the two leaves the older hard state, which no message
 * relied on. A snapshot file is removed only after raft.state names a
 * newer one.
 *
 * Without a readable boot id (no /proc), no commit is made unsynced.
 */

#define STATE_NAME "raft.state"
#define STATE_TMP "raft.state.tmp"
#define MARK_NAME "unsynced"
#define MARK_TMP "unsynced.tmp"
#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"

/*
 * raft.state, integers big-endian:
 *
 *   0  magic "RFSSTATE"      8 u32 version (1)   12 u32 length (all bytes)
 *   16 u64 node id          24 u64 term          32 u64 vote
 *   40 u64 dead             48 u64 snap index    56 u64 snap term
 *   64 u64 snap size        72 u16 cluster length, cluster bytes,
 *   u16 config length, config (meta.c's encoding), u32 CRC32C of all
 *   bytes before it.
 */
#define STATE_MAGIC "RFSSTATE"
#define STATE_VERSION 1u
#define STATE_FIXED 74
#define STATE_MAX (STATE_FIXED + STORE_CLUSTER_MAX + 2 + STORE_CONFIG_MAX + 4)

static uint32_t crc(const void *buf, size_t len)
{
    struct store_crc32c t;
    store__crc32c_init(&t);
    return store__crc32c_update(&t, 0xffffffffu, buf, len) ^ 0xffffffffu;
}

static void put_be16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t get_be16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

size_t store__state_encode(const struct store_state *st, uint8_t *b)
{
    size_t clen = strlen(st->cluster);
    size_t n;
    memcpy(b, STATE_MAGIC, 8);
    store__put_be32(b + 8, STATE_VERSION);
    store__put_be64(b + 16, st->node);
    store__put_be64(b + 24, st->term);
    store__put_be64(b + 32, st->vote);
    store__put_be64(b + 40, st->dead);
    store__put_be64(b + 48, st->snap.index);
    store__put_be64(b + 56, st->snap.term);
    store__put_be64(b + 64, st->snap.size);
    put_be16(b + 72, clen);
    memcpy(b + STATE_FIXED, st->cluster, clen);
    n = STATE_FIXED + clen;
    size_t conf = store__config_encode(&st->snap.config, b + n + 2);
    put_be16(b + n, conf);
    n += 2 + conf;
    store__put_be32(b + 12, (uint32_t)(n + 4));
    store__put_be32(b + n, crc(b, n));
    return n + 4;
}

int store__state_decode(const uint8_t *b, size_t len, struct store_state *st)
{
    memset(st, 0, sizeof *st);
    if (len < STATE_FIXED + 2 + 4 || memcmp(b, STATE_MAGIC, 8) != 0 ||
        store__get_be32(b + 8) != STATE_VERSION ||
        store__get_be32(b + 12) != len ||
        store__get_be32(b + len - 4) != crc(b, len - 4)) {
        return STORE_ERR_CORRUPT;
    }
    size_t clen = get_be16(b + 72);
    if (clen == 0 || clen > STORE_CLUSTER_MAX ||
        STATE_FIXED + clen + 2 + 4 > len) {
        return STORE_ERR_CORRUPT;
    }
    st->node = store__get_be64(b + 16);
    st->term = store__get_be64(b + 24);
    st->vote = store__get_be64(b + 32);
    st->dead = store__get_be64(b + 40);
    st->snap.index = store__get_be64(b + 48);
    st->snap.term = store__get_be64(b + 56);
    st->snap.size = store__get_be64(b + 64);
    memcpy(st->cluster, b + STATE_FIXED, clen);
    st->cluster[clen] = '\0';
    size_t off = STATE_FIXED + clen;
    size_t conf = get_be16(b + off);
    if (off + 2 + conf + 4 != len) {
        return STORE_ERR_CORRUPT;
    }
    return store__config_decode(b + off + 2, conf, &st->snap.config);
}

/* Writes buf as dir/name durably: tmp file, fdatasync, rename, dir fsync. */
static int write_durably(struct store *s, const char *tmp_name,
                         const char *name, const void *buf, size_t len)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    int rv;
    store__path(s, tmp, tmp_name);
    store__path(s, path, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    rv = store__wal_pwrite(fd, buf, len, 0);
    if (rv == 0 && fdatasync(fd) != 0) {
        rv = -errno;
    }
    close(fd);
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = -errno;
    }
    if (rv == 0) {
        rv = store__sync_dir(s);
    }
    if (rv != 0) {
        unlink(tmp);
    }
    return rv;
}

/* Reads at most cap bytes of dir/name: the length, or -errno. */
static ssize_t read_small(const struct store *s, const char *name, void *buf,
                          size_t cap)
{
    char path[PATH_MAX];
    store__path(s, path, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    size_t done = 0;
    while (done < cap) {
        ssize_t n = read(fd, (char *)buf + done, cap - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    close(fd);
    return (ssize_t)done;
}

int store__state_write(struct store *s, const struct store_state *st)
{
    uint8_t b[STATE_MAX];
    size_t len = store__state_encode(st, b);
    int rv = write_durably(s, STATE_TMP, STATE_NAME, b, len);
    if (rv == 0) {
        s->state = *st;
    }
    return rv;
}

int store__state_read(struct store *s, struct store_state *st)
{
    uint8_t b[STATE_MAX + 1];
    ssize_t n = read_small(s, STATE_NAME, b, sizeof b);
    if (n < 0) {
        return (int)n;
    }
    return store__state_decode(b, (size_t)n, st);
}

int store__state_save(struct store *s, MDB_txn *txn)
{
    struct store_state st;
    memset(&st, 0, sizeof st);
    snprintf(st.cluster, sizeof st.cluster, "%s", s->cluster_id);
    st.node = s->node_id;
    raft_index compacted;
    int rv = store__meta_hard_get(s, txn, &st.term, &st.vote);
    if (rv == 0) {
        rv = store__meta_snap_get(s, txn, &st.snap);
    }
    if (rv == 0) {
        rv = store__meta_wal_get(s, txn, &compacted, &st.dead);
    }
    if (rv == 0) {
        rv = store__state_write(s, &st);
    }
    return rv;
}

/* The running kernel's boot id into buf (NUL-terminated), or false. */
static bool boot_id(const struct store *s, char *buf, size_t cap)
{
    const char *file = s->boot_id_file != NULL ? s->boot_id_file
                                               : BOOT_ID_FILE;
    FILE *f = fopen(file, "re");
    if (f == NULL) {
        return false;
    }
    bool ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (ok) {
        buf[strcspn(buf, "\n")] = '\0';
    }
    return ok && buf[0] != '\0';
}

int store__mark_check(struct store *s, bool *power_lost)
{
    char mark[STORE_BOOT_ID_MAX + 1], now[STORE_BOOT_ID_MAX + 1];
    *power_lost = false;
    ssize_t n = read_small(s, MARK_NAME, mark, sizeof mark - 1);
    if (n == -ENOENT) {
        return 0;
    }
    if (n < 0) {
        return store__fail(s, (int)n, "%s/" MARK_NAME ": %s", s->dir,
                           strerror((int)-n));
    }
    mark[n] = '\0';
    mark[strcspn(mark, "\n")] = '\0';
    /* No boot id now: we cannot tell, so we assume the worst. */
    *power_lost = !boot_id(s, now, sizeof now) || strcmp(mark, now) != 0;
    return 0;
}

int store__mark_set(struct store *s)
{
    char now[STORE_BOOT_ID_MAX + 2];
    char cur[STORE_BOOT_ID_MAX + 1];
    s->nosync = false;
    if (!boot_id(s, now, sizeof now - 1)) {
        /* Every commit stays synced, so no mark is needed; one left by an
         * earlier start would force a rebuild at every start. data.mdb is
         * durable here (store_open synced it). */
        char path[PATH_MAX];
        store__path(s, path, MARK_NAME);
        if (unlink(path) == 0) {
            store__sync_dir(s);
        }
        return 0;
    }
    ssize_t n = read_small(s, MARK_NAME, cur, sizeof cur - 1);
    if (n >= 0) {
        cur[n] = '\0';
        cur[strcspn(cur, "\n")] = '\0';
    }
    if (n < 0 || strcmp(cur, now) != 0) {
        size_t len = strlen(now);
        now[len] = '\n';
        int rv = write_durably(s, MARK_TMP, MARK_NAME, now, len + 1);
        if (rv != 0) {
            return store__fail(s, rv, "%s/" MARK_NAME ": %s", s->dir,
                               strerror(-rv));
        }
    }
    /* From now on no commit syncs by itself: durable ones are followed by
     * mdb_env_sync (batch.c, snapfile.c). Flipped while no other thread
     * uses the environment yet. */
    int rc = mdb_env_set_flags(s->env, MDB_NOSYNC, 1);
    if (rc != 0) {
        return store__fail(s, store__lmdb_err(rc), "%s: mdb_env_set_flags: %s",
                           s->dir, mdb_strerror(rc));
    }
    s->nosync = true;
    return 0;
}

void store__mark_clear(struct store *s)
{
    char path[PATH_MAX];
    if (!s->nosync || s->env == NULL) {
        return;
    }
    /* Everything committed unsynced becomes durable; only then may the
     * mark go (a failed sync keeps it: the next open after a power loss
     * rebuilds). */
    if (mdb_env_sync(s->env, 1) != 0) {
        return;
    }
    store__path(s, path, MARK_NAME);
    if (unlink(path) == 0) {
        store__sync_dir(s);
    }
    s->nosync = false;
}

/* The snapshot file named by st into path, finishing an install's rename
 * if a power loss came between raft.state and it (snapfile.c's order). */
static int snap_file(struct store *s, const struct store_state *st,
                     char *path)
{
    store__snap_path(s, path, st->snap.index);
    if (access(path, F_OK) == 0 || store__snap_installed(s, &st->snap) == 0) {
        return 0;
    }
    return store__fail(s, STORE_ERR_CORRUPT,
                       "%s: rebuilding after a power loss needs the "
                       "snapshot at index %llu, but %s is missing",
                       s->dir, (unsigned long long)st->snap.index, path);
}

int store__rebuild_prepare(struct store *s, const struct store_options *o,
                           struct store_state *st)
{
    char path[PATH_MAX];
    int rv = store__state_read(s, st);
    if (rv != 0) {
        return store__fail(
            s, rv == -ENOENT ? STORE_ERR_CORRUPT : rv,
            "%s: the machine went down with this store open (%s names "
            "another boot), so data.mdb is not trusted, and %s/" STATE_NAME
            " cannot be read to rebuild it: %s; remove this member and add "
            "it again with an empty data directory",
            s->dir, MARK_NAME, s->dir,
            rv == -ENOENT ? "no such file" : store_strerror(rv));
    }
    if (strcmp(st->cluster, o->cluster_id) != 0) {
        return store__fail(s, STORE_ERR_FOREIGN_CLUSTER,
                           "%s belongs to cluster \"%s\", not \"%s\"", s->dir,
                           st->cluster, o->cluster_id);
    }
    if (st->node != o->node_id) {
        return store__fail(s, STORE_ERR_FOREIGN_NODE,
                           "%s belongs to node %llu, not %llu", s->dir,
                           (unsigned long long)st->node,
                           (unsigned long long)o->node_id);
    }
    if (st->snap.index > 0) {
        rv = snap_file(s, st, path);
        if (rv != 0) {
            return rv;
        }
    }
    store__path(s, path, "data.mdb");
    if (unlink(path) != 0 && errno != ENOENT) {
        rv = -errno;
        return store__fail(s, rv, "unlink %s: %s", path, strerror(-rv));
    }
    store__path(s, path, "lock.mdb");
    unlink(path);
    return 0;
}

int store__rebuild(struct store *s, const struct store_state *st)
{
    char path[PATH_MAX];
    MDB_txn *txn;
    raft_index index = 0;
    int rv = store__txn_begin(s, &txn);
    if (rv != 0) {
        return store__fail(s, rv, "%s: begin: %s", s->dir, store_strerror(rv));
    }
    int rc;
    rv = store__meta_hard_put(s, txn, st->term, st->vote);
    if (rv == 0) {
        rv = store__meta_wal_put(s, txn, st->snap.index, st->dead);
    }
    if (rv == 0 && st->snap.index > 0) {
        store__snap_path(s, path, st->snap.index); /* checked by _prepare */
        rv = store__fsm_snapshot_restore(&s->fsm, txn, path, &index);
        if (rv == 0 && index != st->snap.index) {
            rv = STORE_ERR_CORRUPT;
        }
        if (rv == 0) {
            rv = store__meta_snap_put(s, txn, &st->snap);
        }
        if (rv == 0) {
            rv = store__meta_conf_put(s, txn, st->snap.index,
                                      &st->snap.config);
        }
    }
    if (rv != 0) {
        mdb_txn_abort(txn);
        return store__fail(s, rv, "%s: rebuilding data.mdb from the "
                                  "snapshot at %llu: %s",
                           s->dir, (unsigned long long)st->snap.index,
                           store_strerror(rv));
    }
    rc = mdb_txn_commit(txn);
    if (rc == 0) {
        rc = mdb_env_sync(s->env, 1);
    }
    if (rc != 0) {
        return store__fail(s, store__lmdb_err(rc), "%s: commit: %s", s->dir,
                           mdb_strerror(rc));
    }
    s->rebuilt = true;
    return 0;
}
