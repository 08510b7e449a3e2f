/*
 * sys/hash.h — the one hash of the preload, FNV-1a: the names of the cache files, the copies
 * cache's checksum and the identity of a captured stack. Pure, inline; it touches nothing.
 */
#ifndef PRIVBOX_SYS_HASH_H
#define PRIVBOX_SYS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a over n bytes, from h (PB_FNV_OFFSET to start). Not cryptographic: what a cache holds is
 * trusted for its owner and mode (pb_open_trusted_cache_file), never for its name. */
#define PB_FNV_OFFSET 0xcbf29ce484222325ull
static inline uint64_t pb_fnv1a(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
    return h;
}

/* The same step over n pointers, a pointer at a time (one multiply each, not eight): a captured
 * stack's return addresses. Gives other values than pb_fnv1a over the same bytes. */
static inline uint64_t pb_fnv1a_pointers(uint64_t h, void *const *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint64_t)(uintptr_t)p[i]) * 0x100000001b3ull;
    return h;
}

#endif
