/* Placeholder until the FUSE frontend lands: --mount is refused clearly. */
#include <errno.h>
#include <stddef.h>

#include "daemon.h"
#include "fuse_mount.h"

int fs_mount_start(struct fs_daemon *d, struct fs_mount **out)
{
    fs_log(d, FS_LOG_ERROR, "--mount is not implemented yet in this build");
    *out = NULL;
    return -ENOTSUP;
}

void fs_mount_stop(struct fs_mount *m)
{
    (void)m;
}

void fs_mount_free(struct fs_mount *m)
{
    (void)m;
}
