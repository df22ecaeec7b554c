/* The filesystem model: options, node ids, errnos, attributes, commands. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsmodel.h"

/* ---- Mount options ---- */

/* Options an fstab line or mount(8) may pass that change nothing here. */
static const char *const noops[] = {
    "rw",     "dev",     "suid",   "exec",   "nodev",    "nosuid",
    "noexec", "noatime", "relatime", "atime", "async",   "auto",
    "noauto", "user",    "nouser", "_netdev", "defaults", "nodiratime",
    NULL,
};

static bool is_noop(const char *opt)
{
    size_t i;
    for (i = 0; noops[i] != NULL; i++) {
        if (strcmp(opt, noops[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int parse_id(const char *key, const char *v, unsigned long *out,
                    char *err, size_t errlen)
{
    char *end;
    unsigned long n;
    if (*v == '\0' || *v == '-' || *v == '+') {
        snprintf(err, errlen, "mount option %s= needs a number", key);
        return -EINVAL;
    }
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno != 0 || *end != '\0' || n >= UINT32_MAX) {
        snprintf(err, errlen, "mount option %s=%s: not a valid id", key, v);
        return -EINVAL;
    }
    *out = n;
    return 0;
}

static int parse_one(const char *opt, struct fs_model_opts *o, char *err,
                     size_t errlen)
{
    unsigned long n;
    int rv;

    if (strcmp(opt, "stale") == 0) {
        o->stale = true;
    } else if (strcmp(opt, "allow_other") == 0) {
        o->allow_other = true;
    } else if (strcmp(opt, "default_permissions") == 0) {
        o->default_permissions = true;
    } else if (strncmp(opt, "root=", 5) == 0) {
        const char *v = opt + 5;
        while (*v == '/') {
            v++; /* "root=/a/b" and "root=a/b" name the same subtree */
        }
        if (strlen(v) >= sizeof o->root) {
            snprintf(err, errlen, "mount option root=: path too long");
            return -EINVAL;
        }
        snprintf(o->root, sizeof o->root, "%s", v);
    } else if (strncmp(opt, "uid=", 4) == 0) {
        if ((rv = parse_id("uid", opt + 4, &n, err, errlen)) != 0) {
            return rv;
        }
        o->has_uid = true;
        o->uid = (uid_t)n;
    } else if (strncmp(opt, "gid=", 4) == 0) {
        if ((rv = parse_id("gid", opt + 4, &n, err, errlen)) != 0) {
            return rv;
        }
        o->has_gid = true;
        o->gid = (gid_t)n;
    } else if (strcmp(opt, "ro") == 0) {
        snprintf(err, errlen, "mount option ro is not supported (raftfs "
                              "mounts are read-write)");
        return -EINVAL;
    } else if (!is_noop(opt)) {
        snprintf(err, errlen,
                 "unknown mount option '%s' (known: stale, root=PATH, uid=N, "
                 "gid=N, allow_other, default_permissions)",
                 opt);
        return -EINVAL;
    }
    return 0;
}

int fs_model_opts_parse(const char *s, struct fs_model_opts *o, char *err,
                        size_t errlen)
{
    char opt[FS_MODEL_ROOT_MAX + 16];
    const char *p = s;
    const char *comma;
    size_t len;
    int rv;

    memset(o, 0, sizeof *o);
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (s == NULL) {
        return 0;
    }
    while (*p != '\0') {
        comma = strchr(p, ',');
        len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len >= sizeof opt) {
            snprintf(err, errlen, "mount option too long");
            return -EINVAL;
        }
        memcpy(opt, p, len);
        opt[len] = '\0';
        if (len > 0 && (rv = parse_one(opt, o, err, errlen)) != 0) {
            return rv;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

/* ---- Node ids ---- */

uint64_t fs_model_to_store(uint64_t root, uint64_t fuse_ino)
{
    if (fuse_ino == FUSE_ROOT_ID) {
        return root;
    }
    if (fuse_ino == root) {
        return STORE_ROOT_INO;
    }
    return fuse_ino;
}

uint64_t fs_model_to_fuse(uint64_t root, uint64_t store_ino)
{
    /* The swap is its own inverse. */
    return fs_model_to_store(root, store_ino);
}

/* ---- Errors ---- */

int fs_model_read_errno(int status)
{
    return status == 0 ? 0 : EIO;
}

int fs_model_write_errno(int status, const struct store_apply_result *result)
{
    if (status == 0) {
        return result != NULL && result->status < 0 ? -result->status : 0;
    }
    if (status < 0 && status > -1000) {
        /* A command's own errno arrives as the status too (EEXIST, ...);
         * ETIMEDOUT and EIO are the driver's verdicts. */
        return -status;
    }
    switch (status) {
    case RAFT_ERR_TOO_BIG:
        return EFBIG;
    case RAFT_ERR_NOMEM:
        return ENOMEM;
    case RAFT_ERR_SHUTDOWN:
        /* The node stopped with the entry maybe in a log. */
        return ETIMEDOUT;
    default:
        /* NOT_LEADER and friends are retried by the driver until the op
         * timeout; what is left here never entered a log. */
        return EIO;
    }
}

int fs_model_name_check(const char *name)
{
    size_t len = strlen(name);
    if (len > STORE_NAME_MAX) {
        return ENAMETOOLONG;
    }
    if (len == 0 || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        return EINVAL;
    }
    return 0;
}

/* ---- Attributes ---- */

static void ns_to_ts(uint64_t ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

void fs_model_stat(const struct store_attr *a, uint64_t root, uid_t owner_uid,
                   gid_t owner_gid, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)fs_model_to_fuse(root, a->ino);
    st->st_mode = (mode_t)a->mode;
    st->st_nlink = (nlink_t)(a->nlink > 0 ? a->nlink : 1);
    st->st_uid = owner_uid;
    st->st_gid = owner_gid;
    st->st_size = a->type == STORE_TYPE_DIR ? 4096 : (off_t)a->size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
    ns_to_ts(a->atime_ns, &st->st_atim);
    ns_to_ts(a->mtime_ns, &st->st_mtim);
    ns_to_ts(a->ctime_ns, &st->st_ctim);
}

/* ---- Commands ---- */

static void set_name(struct store_bytes *b, const char *name)
{
    b->base = name;
    b->len = strlen(name);
}

void fs_model_create_cmd(struct store_cmd *c, uint64_t parent,
                         const char *name, mode_t mode, int flags)
{
    store_cmd_init(c);
    c->type = STORE_CMD_CREATE;
    c->parent = parent;
    set_name(&c->name, name);
    c->mode = (uint32_t)(mode & 07777);
    c->flags = (flags & O_EXCL) ? STORE_CREATE_EXCL : 0;
}

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

int fs_model_setattr_cmd(struct store_cmd *c, uint64_t ino,
                         const struct stat *attr, int to_set, uint64_t now_ns,
                         uid_t owner_uid, gid_t owner_gid, uint64_t max_size,
                         bool handle_size)
{
    store_cmd_init(c);
    c->type = STORE_CMD_SETATTR;
    c->ino = ino;
    c->max_size = max_size;
    /* The store keeps no owner: every file shows the mount's. chown to
     * that owner is a no-op (cp -p, sed -i do it), anything else EPERM. */
    if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != owner_uid) ||
        ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != owner_gid)) {
        return -EPERM;
    }
    if (to_set & FUSE_SET_ATTR_MODE) {
        c->mask |= STORE_SET_MODE;
        c->mode = (uint32_t)(attr->st_mode & 07777);
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) && !handle_size) {
        c->mask |= STORE_SET_SIZE;
        c->size = (uint64_t)attr->st_size;
    }
    if (to_set & FUSE_SET_ATTR_MTIME) {
        c->mask |= STORE_SET_MTIME;
        c->mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW)
                          ? now_ns
                          : ts_ns(&attr->st_mtim);
    }
    if (to_set & FUSE_SET_ATTR_ATIME) {
        c->mask |= STORE_SET_ATIME;
        c->atime_ns = (to_set & FUSE_SET_ATTR_ATIME_NOW)
                          ? now_ns
                          : ts_ns(&attr->st_atim);
    }
    return c->mask == 0 ? 1 : 0;
}

int fs_model_rename_cmd(struct store_cmd *c, uint64_t parent,
                        const char *name, uint64_t newparent,
                        const char *newname, unsigned flags)
{
    store_cmd_init(c);
    if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0 ||
        ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))) {
        return -EINVAL;
    }
    c->type = STORE_CMD_RENAME;
    c->parent = parent;
    set_name(&c->name, name);
    c->newparent = newparent;
    set_name(&c->newname, newname);
    c->flags = ((flags & RENAME_NOREPLACE) ? STORE_RENAME_NOREPLACE : 0) |
               ((flags & RENAME_EXCHANGE) ? STORE_RENAME_EXCHANGE : 0);
    return 0;
}

int fs_model_mknod_cmd(struct store_cmd *c, uint64_t parent, const char *name,
                       mode_t mode)
{
    if (!S_ISREG(mode)) {
        store_cmd_init(c);
        return -EPERM;
    }
    fs_model_create_cmd(c, parent, name, mode, O_CREAT | O_EXCL);
    return 0;
}

/* ---- Extended attributes ---- */

static const char *const xattr_names[] = {
    FS_XATTR_REVISION,
    FS_XATTR_CREATE_REVISION,
    FS_XATTR_LEADER,
    FS_XATTR_TERM,
};
#define N_XATTRS (sizeof xattr_names / sizeof xattr_names[0])

size_t fs_model_xattr_list(char *buf, size_t size)
{
    size_t total = 0;
    size_t i;
    for (i = 0; i < N_XATTRS; i++) {
        total += strlen(xattr_names[i]) + 1;
    }
    if (buf != NULL && size >= total) {
        char *p = buf;
        for (i = 0; i < N_XATTRS; i++) {
            size_t n = strlen(xattr_names[i]) + 1;
            memcpy(p, xattr_names[i], n);
            p += n;
        }
    }
    return total;
}

bool fs_model_xattr_is_ours(const char *name)
{
    size_t i;
    for (i = 0; i < N_XATTRS; i++) {
        if (strcmp(name, xattr_names[i]) == 0) {
            return true;
        }
    }
    return false;
}

int fs_model_xattr_get(const char *name, const struct store_attr *a,
                       const struct fs_model_cluster *c, char *buf,
                       size_t size)
{
    char text[32];
    uint64_t v;
    int n;

    if (strcmp(name, FS_XATTR_REVISION) == 0) {
        v = a->mod_rev;
    } else if (strcmp(name, FS_XATTR_CREATE_REVISION) == 0) {
        v = a->create_rev;
    } else if (strcmp(name, FS_XATTR_LEADER) == 0) {
        v = c->leader;
    } else if (strcmp(name, FS_XATTR_TERM) == 0) {
        v = c->term;
    } else {
        return -ENODATA;
    }
    n = snprintf(text, sizeof text, "%" PRIu64, v);
    if (size == 0 && buf == NULL) {
        return n;
    }
    if ((size_t)n > size) {
        return -ERANGE;
    }
    memcpy(buf, text, (size_t)n);
    return n;
}

int fs_model_xattr_set(const char *name)
{
    return strncmp(name, "user.raftfs.", 12) == 0 ? -EPERM : -ENOTSUP;
}
