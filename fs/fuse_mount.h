/* The FUSE frontend of raftfsd: the replicated tree mounted on the loop. */
#ifndef FS_FUSE_MOUNT_H
#define FS_FUSE_MOUNT_H

struct fs_daemon;
struct fs_mount;

/*
 * Mounts d->cfg.mount with d->cfg.mount_options and serves it on d->loop
 * (the session fd polled by a uv_poll_t; every request answered
 * asynchronously, nothing blocks the loop). A stale mount left at that path
 * by a crashed daemon is detected and lazily unmounted first. Returns 0 and
 * the mount in *out, or -errno with a log line saying why.
 */
int fs_mount_start(struct fs_daemon *d, struct fs_mount **out);

/* Stops serving: every request still waiting is answered (EIO for reads,
 * ETIMEDOUT for writes, which may still commit), the session is unmounted
 * and the poll handle closed. Called once, on the loop thread, before the
 * node is closed; the driver's late completions only free. The mount is
 * freed by fs_mount_free after uv_run returned. */
void fs_mount_stop(struct fs_mount *m);
void fs_mount_free(struct fs_mount *m);

#endif /* FS_FUSE_MOUNT_H */
