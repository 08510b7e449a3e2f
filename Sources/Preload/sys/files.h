/*
 * sys/files.h — the preload's reads and writes of files (sys/files.c): reads that cannot block
 * (pb_open_regular, Sources/CShim/files.c, underneath), the one rule for what is trusted only from
 * the user, and replacing nothing but a missing path or a regular file. Raw system calls only;
 * every descriptor is closed before the function returns.
 */
#ifndef PRIVBOX_SYS_FILES_H
#define PRIVBOX_SYS_FILES_H

#include "privbox_shim.h"
#include "sys/attributes.h"

#include <stddef.h>

/* All of buf to fd with raw write calls, retrying EINTR: 0, or -errno (-EIO when the descriptor
 * took nothing). */
long pb_write_all(int fd, const char *buf, size_t len) PB_HIDDEN;
/* Up to cap-1 bytes from fd, NUL-terminated; fd is closed. Bytes read. */
long pb_read_fd(long fd, char *buf, size_t cap) PB_HIDDEN;
/* Up to cap-1 bytes of the regular file at path, NUL-terminated, read with raw calls (nothing
 * interposed; the descriptor is closed before returning). Bytes read, or -1 if it cannot be
 * opened or is not a regular file. For files of the system (/proc); caches use sys/cache.h. */
long pb_read_file(const char *path, char *buf, size_t cap) PB_HIDDEN;
/* The one rule for what privbox trusts only from the user: owned by the effective uid (or by
 * root, where allow_root says so: a profile may be a system's, a cache never is) and writable by
 * nobody else. 0 when trusted; 1 with why ("owned by uid N", "writable by group or others (mode
 * 0NNN)"), which callers put into their own sentence. */
struct stat;
int pb_distrusted(const struct stat *st, int allow_root, char *why, size_t whylen) PB_HIDDEN;
/* Whether `name` in dirfd may be replaced: it is missing or a regular file (not followed if a
 * link). Otherwise 0 with *kind saying what it is. */
int pb_replaceable(int dirfd, const char *name, const char **kind) PB_HIDDEN;
/* Renames tmp over name (both in dirfd) only if name is missing or a regular file: 0, -errno, or 1
 * with *kind saying what is there instead (then nothing is renamed). */
int pb_replace_regular(int dirfd, const char *tmp, const char *name, const char **kind) PB_HIDDEN;

#endif
