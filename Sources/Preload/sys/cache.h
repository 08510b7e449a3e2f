/*
 * sys/cache.h — privbox's caches (plans, decoded copies, the calibration) under the cache root that
 * pb_cache_path (Sources/CShim/cache_path.c) names: read only when the user alone can have written
 * them, written atomically in place of a missing or regular file (sys/cache.c).
 */
#ifndef PRIVBOX_SYS_CACHE_H
#define PRIVBOX_SYS_CACHE_H

#include "privbox_shim.h"
#include "sys/attributes.h"

#include <stddef.h>

/*
 * The one trust check of privbox's caches (plans, copies, the calibration): path, as pb_cache_path
 * made it, is opened only if every directory from the cache root down to it and the file itself
 * are the user's (geteuid) and writable by nobody else, none of them is a symbolic link and the
 * file is regular. Each step is opened relative to the directory checked before it, so what is
 * checked is what is read. The descriptor, or -1: a missing file silently, anything else with one
 * line ("ignoring cache X: why", then `remedy` if not null) at warn level.
 */
long pb_open_trusted_cache_file(const char *path, const char *remedy) PB_HIDDEN;
/* pb_open_trusted_cache_file, then pb_read_fd; -1 if refused or missing. */
long pb_read_trusted_cache_file(const char *path, const char *remedy, char *buf, size_t cap) PB_HIDDEN;
/* Writes a cache file atomically, mode 0600, creating its directories; a failure leaves no file
 * (the plans' and the copies' writer). */
void pb_cache_file_write(const char *path, const void *buf, size_t len) PB_HIDDEN;

#endif
