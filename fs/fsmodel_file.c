/* The model's handles: file buffering rules, directory snapshots, name hints. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fsmodel.h"

/* ---- Open files ---- */

static int reserve(struct fs_model_file *f, size_t need)
{
    size_t cap = f->cap > 0 ? f->cap : 4096;
    uint8_t *p;
    if (need <= f->cap) {
        return 0;
    }
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    p = realloc(f->data, cap);
    if (p == NULL) {
        return -ENOMEM;
    }
    f->data = p;
    f->cap = cap;
    return 0;
}

int fs_model_file_init(struct fs_model_file *f, const struct store_attr *a,
                       int flags, bool existed, const void *value, size_t len,
                       uint64_t max_size)
{
    int acc = flags & O_ACCMODE;
    bool trunc = (flags & O_TRUNC) != 0 && acc != O_RDONLY;

    memset(f, 0, sizeof *f);
    f->ino = a->ino;
    f->attr = *a;
    f->readable = acc == O_RDONLY || acc == O_RDWR;
    f->writable = acc == O_WRONLY || acc == O_RDWR;
    f->max_size = max_size;
    /* O_APPEND|O_TRUNC starts empty: a whole-value put says it better. */
    f->append = f->writable && (flags & O_APPEND) != 0 && !trunc;
    f->trunc_pending = trunc && existed && a->size > 0;
    if (trunc || (f->append && !f->readable)) {
        len = 0; /* nothing of the old value is needed */
    }
    if (f->append && len != a->size) {
        len = 0; /* a view that is not the whole value is no view */
    }
    if (len > 0) {
        if (reserve(f, len) != 0) {
            return -ENOMEM;
        }
        memcpy(f->data, value, len);
        f->len = len;
    }
    if (f->append) {
        f->base = f->len;
    } else {
        f->attr.size = f->len;
    }
    return 0;
}

void fs_model_file_close(struct fs_model_file *f)
{
    free(f->data);
    f->data = NULL;
    f->len = 0;
    f->cap = 0;
}

size_t fs_model_file_read(const struct fs_model_file *f, uint64_t off,
                          size_t size, const void **out)
{
    size_t n;
    *out = NULL;
    if ((f->append && !f->readable) || off >= f->len) {
        return 0;
    }
    n = f->len - (size_t)off;
    if (n > size) {
        n = size;
    }
    *out = f->data + off;
    return n;
}

int64_t fs_model_file_write(struct fs_model_file *f, uint64_t off,
                            const void *buf, size_t size)
{
    uint64_t end;

    if (!f->writable) {
        return -EBADF;
    }
    if (f->poisoned != 0) {
        return -f->poisoned;
    }
    if (f->append) {
        /* The kernel passes its idea of the end of the file as `off`; the
         * bytes go at the end of whatever the log holds when they apply. */
        if (f->attr.size + (f->len - f->base) + size > f->max_size) {
            f->poisoned = EFBIG;
            return -EFBIG;
        }
        if (reserve(f, f->len + size) != 0) {
            return -ENOMEM;
        }
        memcpy(f->data + f->len, buf, size);
        f->len += size;
        f->dirty = true;
        f->gen++;
        return (int64_t)size;
    }
    end = off + size;
    if (end < off || end > f->max_size) {
        f->poisoned = EFBIG;
        return -EFBIG;
    }
    if (reserve(f, (size_t)end) != 0) {
        return -ENOMEM;
    }
    if (off > f->len) {
        memset(f->data + f->len, 0, (size_t)off - f->len); /* a hole */
    }
    memcpy(f->data + off, buf, size);
    if (end > f->len) {
        f->len = (size_t)end;
    }
    f->attr.size = f->len;
    f->dirty = true;
    f->gen++;
    return (int64_t)size;
}

int fs_model_file_truncate(struct fs_model_file *f, uint64_t size)
{
    if (!f->writable || f->append) {
        return -EBADF;
    }
    if (f->poisoned != 0) {
        return -f->poisoned;
    }
    if (size > f->max_size) {
        f->poisoned = EFBIG;
        return -EFBIG;
    }
    if (reserve(f, (size_t)size) != 0) {
        return -ENOMEM;
    }
    if (size > f->len) {
        memset(f->data + f->len, 0, (size_t)size - f->len);
    }
    f->len = (size_t)size;
    f->attr.size = f->len;
    f->dirty = true;
    f->gen++;
    return 0;
}

void fs_model_file_set_create_pending(struct fs_model_file *f)
{
    f->create_pending = true;
}

void fs_model_file_attr(const struct fs_model_file *f, struct store_attr *a)
{
    *a = f->attr;
    if (f->append) {
        a->size = f->attr.size + (f->len - f->base);
    }
}

enum fs_model_publish fs_model_file_publish(struct fs_model_file *f,
                                            bool lone_trunc, int *err)
{
    *err = 0;
    if (f->poisoned != 0) {
        /* Nothing of a handle that went over the limit is published, and
         * every flush says so (the program may ignore the write error). */
        *err = f->poisoned;
        return FS_PUBLISH_NONE;
    }
    if (f->dirty) {
        return f->append ? FS_PUBLISH_APPEND : FS_PUBLISH_PUT;
    }
    if ((f->trunc_pending || f->create_pending) && lone_trunc) {
        /* The lone O_TRUNC (an empty value), or a deferred create with
         * nothing written (an empty file). */
        return f->append ? FS_PUBLISH_APPEND : FS_PUBLISH_PUT;
    }
    return FS_PUBLISH_NONE;
}

void fs_model_file_payload(const struct fs_model_file *f,
                           enum fs_model_publish kind, const void **buf,
                           size_t *len)
{
    if (kind == FS_PUBLISH_APPEND) {
        *buf = f->data + f->base;
        *len = f->len - f->base;
    } else {
        *buf = f->data;
        *len = f->len;
    }
}

int fs_model_file_published(struct fs_model_file *f,
                            enum fs_model_publish kind, size_t len,
                            uint64_t gen, int err)
{
    if (err == ENOENT) {
        err = 0; /* deleted meanwhile: the write went to an unlinked file */
    }
    f->create_pending = false; /* made, or reported failed: never again */
    if (kind == FS_PUBLISH_APPEND) {
        if (len > f->len - f->base) {
            len = f->len - f->base;
        }
        if (err == 0) {
            /* Published: part of the file now, and of this handle's view
             * when it has one (a+ readers see their own lines). */
            f->attr.size += len;
            if (f->readable && f->base == f->attr.size - len) {
                f->base += len;
            } else {
                memmove(f->data + f->base, f->data + f->base + len,
                        f->len - f->base - len);
                f->len -= len;
            }
        } else {
            memmove(f->data + f->base, f->data + f->base + len,
                    f->len - f->base - len);
            f->len -= len;
        }
        f->dirty = f->len > f->base;
        return err;
    }
    if (kind == FS_PUBLISH_PUT) {
        f->trunc_pending = false;
        if (f->gen == gen) {
            f->dirty = false;
        }
    }
    return err;
}

/* ---- Directories ---- */

void fs_model_dir_init(struct fs_model_dir *d, uint64_t ino, uint64_t parent)
{
    memset(d, 0, sizeof *d);
    d->ino = ino;
    d->parent = parent;
}

void fs_model_dir_close(struct fs_model_dir *d)
{
    size_t i;
    for (i = 0; i < d->n; i++) {
        free(d->ents[i].name);
    }
    free(d->ents);
    d->ents = NULL;
    d->n = 0;
    d->cap = 0;
}

int fs_model_dir_add(struct fs_model_dir *d, uint64_t ino, uint8_t type,
                     const char *name, size_t len)
{
    struct fs_model_dirent *e;
    char *copy;

    if (d->n == d->cap) {
        size_t cap = d->cap > 0 ? d->cap * 2 : 16;
        e = realloc(d->ents, cap * sizeof *e);
        if (e == NULL) {
            return -ENOMEM;
        }
        d->ents = e;
        d->cap = cap;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, name, len);
    copy[len] = '\0';
    e = &d->ents[d->n++];
    e->ino = ino;
    e->type = type;
    e->name = copy;
    return 0;
}

bool fs_model_dir_at(const struct fs_model_dir *d, uint64_t off,
                     const char **name, uint64_t *ino, uint8_t *type)
{
    if (off == 0) {
        *name = ".";
        *ino = d->ino;
        *type = STORE_TYPE_DIR;
        return true;
    }
    if (off == 1) {
        *name = "..";
        *ino = d->parent;
        *type = STORE_TYPE_DIR;
        return true;
    }
    if (off - 2 >= d->n) {
        return false;
    }
    *name = d->ents[off - 2].name;
    *ino = d->ents[off - 2].ino;
    *type = d->ents[off - 2].type;
    return true;
}

/* ---- Name hints ---- */

static size_t slot_of(uint64_t ino)
{
    /* Fibonacci hashing: consecutive inode numbers spread out. */
    return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 54) % FS_MODEL_HINTS;
}

void fs_model_hints_init(struct fs_model_hints *h)
{
    memset(h, 0, sizeof *h);
}

void fs_model_hints_put(struct fs_model_hints *h, uint64_t ino,
                        uint8_t type, uint64_t parent, const char *name,
                        size_t len)
{
    struct fs_model_hint *s;
    if (ino == 0 || len == 0 || len > STORE_NAME_MAX) {
        return;
    }
    s = &h->slot[slot_of(ino)];
    s->ino = ino;
    s->type = type;
    s->parent = parent;
    s->len = (uint8_t)len;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
}

const struct fs_model_hint *fs_model_hints_get(const struct fs_model_hints *h,
                                               uint64_t ino)
{
    const struct fs_model_hint *s = &h->slot[slot_of(ino)];
    return ino != 0 && s->ino == ino ? s : NULL;
}
