/*
 * cache_path.c — where privbox's caches live: the one rule, used by the preload (its caches and
 * the calibration it reads, and the trusted walk from the root down, Sources/Preload/sys/cache.c)
 * and by the CLI (`privbox doctor --calibrate`, which writes the calibration the preload reads).
 * Only an absolute XDG_CACHE_HOME or HOME counts, as the XDG specification says; with neither
 * there is no cache (no fallback: a directory such as /tmp/.cache could be anybody's, and the
 * preload would not read what was written there). getenv only: the preload calls it in its
 * constructor, before main.
 */
#include "privbox_shim.h"

#include <stdio.h>
#include <stdlib.h>

int pb_cache_root(const char **base, const char **suffix)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') {
        *base = xdg;
        *suffix = "/privbox";
    } else if (home && home[0] == '/') {
        *base = home;
        *suffix = "/.cache/privbox";
    } else {
        return -1;
    }
    return 0;
}

int pb_cache_path(const char *leaf, char *out, size_t len)
{
    const char *base, *suffix;
    if (pb_cache_root(&base, &suffix) != 0)
        return -1;
    int n = snprintf(out, len, "%s%s/%s", base, suffix, leaf);
    return n > 0 && (size_t)n < len ? 0 : -1;
}
