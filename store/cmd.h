/* The state machine's log commands as plain C structs, and their codec. */
#ifndef STORE_CMD_H
#define STORE_CMD_H

/*
 * A command is the data of a RAFT_ENTRY_COMMAND entry. On the wire and in the
 * log it is a protobuf `raftfs.Command` (proto/command.proto); nothing but
 * store/cmd.c sees the generated protobuf-c types.
 *
 * Determinism: everything apply needs is in the command. The proposer picks
 * the time (time_ns) and carries its value limit (max_size) so that every
 * replica computes the same result from the same bytes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* The only version this code encodes and accepts. */
#define STORE_CMD_VERSION 1

/* Domain errors of the codec (negative, outside the errno range). They are
 * part of the store's error table when store.h defines it. */
#ifndef STORE_ERR_CORRUPT
#define STORE_ERR_CORRUPT (-2008)
#endif
#ifndef STORE_ERR_VERSION
#define STORE_ERR_VERSION (-2009)
#endif

enum store_cmd_type {
    STORE_CMD_NOOP = 1,
    STORE_CMD_CREATE,
    STORE_CMD_PUT,
    STORE_CMD_APPEND,
    STORE_CMD_SETATTR,
    STORE_CMD_UNLINK,
    STORE_CMD_MKDIR,
    STORE_CMD_RMDIR,
    STORE_CMD_RENAME,
    STORE_CMD_SYMLINK,
};

/* create flags */
#define STORE_CREATE_EXCL 0x1  /* O_CREAT|O_EXCL: EEXIST if the name exists */
#define STORE_CREATE_TRUNC 0x2 /* O_TRUNC: an existing file becomes empty */
#define STORE_CREATE_VALUE 0x4 /* `data` is the initial content */
#define STORE_CREATE_APPEND 0x8 /* with VALUE: an existing file gets `data`
                                 * appended (max_size applies) */

/* setattr mask */
#define STORE_SET_MODE 0x1
#define STORE_SET_SIZE 0x2
#define STORE_SET_MTIME 0x4
#define STORE_SET_ATIME 0x8
#define STORE_SET_ALL 0xf

/* rename flags: the Linux renameat2(2) values */
#define STORE_RENAME_NOREPLACE 0x1
#define STORE_RENAME_EXCHANGE 0x2

/* A byte string; not NUL-terminated. */
struct store_bytes {
    const void *base;
    size_t len;
};

/*
 * One command. Which fields matter depends on `type`:
 *
 *   CREATE   parent, name, mode, flags (STORE_CREATE_*), data if VALUE,
 *            max_size with APPEND (0: no limit)
 *   PUT      ino, data (the whole new value)
 *   APPEND   ino, data, max_size (0: no limit)
 *   SETATTR  ino, mask (STORE_SET_*), mode, size, mtime_ns, atime_ns,
 *            max_size (limit for size; 0: no limit)
 *   UNLINK   parent, name
 *   MKDIR    parent, name, mode
 *   RMDIR    parent, name
 *   RENAME   parent, name, newparent, newname, flags (STORE_RENAME_*)
 *   SYMLINK  parent, name, data (the target)
 *   NOOP     nothing
 *
 * node/seq identify the request (echoed in the apply result); time_ns is the
 * proposer's clock, used for mtime/ctime.
 *
 * Ownership: name/newname/data point to memory owned by whoever filled the
 * struct. After store_cmd_decode() they point into `priv` and stay valid
 * until store_cmd_close().
 */
struct store_cmd {
    uint8_t type; /* enum store_cmd_type */
    uint64_t node;
    uint64_t seq;
    uint64_t time_ns;
    uint64_t ino;
    uint64_t parent;
    struct store_bytes name;
    uint64_t newparent;
    struct store_bytes newname;
    uint32_t mode;
    uint32_t flags;
    uint32_t mask;
    struct store_bytes data;
    uint64_t size;
    uint64_t mtime_ns;
    uint64_t atime_ns;
    uint64_t max_size;
    void *priv; /* decoder only: the unpacked message the pointers refer to */
};

/* Zeroes a command. */
void store_cmd_init(struct store_cmd *c);

/* Frees what store_cmd_decode() allocated; safe on an init'ed command. */
void store_cmd_close(struct store_cmd *c);

/*
 * Encodes `c` (version STORE_CMD_VERSION) into a malloc'd buffer in *out,
 * owned by the caller (free(out->base)). Returns 0, -EINVAL for an unknown
 * type, or -ENOMEM.
 */
int store_cmd_encode(const struct store_cmd *c, struct raft_buf *out);

/*
 * Decodes `len` bytes at `buf` (not retained: pointers in *c refer to a
 * copy owned by *c). Returns 0, STORE_ERR_CORRUPT for bytes that are not a
 * well-formed command (including a missing operation or one this version
 * does not know), STORE_ERR_VERSION for any version other than
 * STORE_CMD_VERSION, or -ENOMEM (an allocation failed: the bytes may well be
 * valid). On error *c is left init'ed (close is still safe).
 */
int store_cmd_decode(const void *buf, size_t len, struct store_cmd *c);

/* A static name for a command type ("create", ...), "?" if unknown. */
const char *store_cmd_type_name(uint8_t type);

#endif /* STORE_CMD_H */
