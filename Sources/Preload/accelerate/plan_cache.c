/*
 * plan_cache.c — the executor plan of a (profile, program) pair, cached on disk so that only the
 * first accelerated run of a program pays for loading the Swift core (~5 ms: a sqlite3 that
 * runs for 1.5 ms natively took 6.3 ms with it).
 *
 * The cache file is named by a hash of what the plan depends on: the profile's identity and
 * content version (device, inode, size, modification time) and the program (its path and GNU
 * build-id). A changed profile or a rebuilt program gives another name, so a stale plan is never
 * read; the core (which validates the profile and reports a bad one) runs again. Files live in
 * $XDG_CACHE_HOME/privbox/plans (or ~/.cache/privbox/plans), mode 0600, written atomically.
 * A plan decides which call sites are rewritten, so it must be as trusted as the program's code:
 * it is read only through pb_open_trusted_cache_file (sys/cache.c: the user's, writable by nobody
 * else, down a chain of such directories from the cache root), and written only in place of a
 * missing or regular file in such a directory (pb_cache_file_write, sys/cache.c).
 *
 * Format (text): "privbox-plan/3 <modules> <sites>", then one line per module
 * "<build-id or -> <path>", then one line per site "<module> <offset in hex> <syscall nr>
 * <inline 0|1> <function offset in hex> <function size> <function name or -> <profiled calls>".
 * A plan cached by an
 * older privbox (another tag) is not read: the core computes it again.
 *
 * Runs in the constructor, before main() and before any thread of the program exists: the
 * descriptors it opens are closed before the program runs, so they take no number from it.
 */
#include "accelerate/plan_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define PB_PLAN_MAX_BYTES (1u << 20)

static uint64_t pb_fnv_str(uint64_t h, const char *s) { return pb_fnv1a(h, s, strlen(s)); }

/* FNV-1a of "dev|ino|size|mtime|": the profile's identity and content version. */
static uint64_t pb_profile_identity_hash(const struct stat *st)
{
    char head[128];
    snprintf(head, sizeof head, "%llu|%llu|%lld|%lld.%09ld|", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec);
    return pb_fnv_str(PB_FNV_OFFSET, head);
}

int pb_plan_cache_path(const struct stat *profile, const char *build_id_hex, char *out, size_t len)
{
    if (!profile) /* no profile could be looked at: the core says why */
        return -1;
    /* ...then "exe|build-id", hashed piece by piece (the exe path is up to 4 KiB: no copy of it on
     * the stack). */
    uint64_t h = pb_profile_identity_hash(profile);
    h = pb_fnv_str(h, pb_exe_path());
    h = pb_fnv_str(h, "|");
    h = pb_fnv_str(h, build_id_hex);
    char leaf[32];
    snprintf(leaf, sizeof leaf, "plans/%016llx.plan", (unsigned long long)h);
    return pb_cache_path(leaf, out, len);
}

static int pb_plan_parse(char *buf, struct pb_plan_module *modules, size_t module_cap,
                         size_t *module_count, struct pb_plan_site *sites, size_t site_cap,
                         size_t *site_count)
{
    size_t nm = 0, ns = 0;
    char *line = buf, *nl = strchr(line, '\n');
    if (!nl || sscanf(line, "privbox-plan/3 %zu %zu", &nm, &ns) != 2 || nm > module_cap || ns > site_cap)
        return 0;
    for (size_t m = 0; m < nm; m++) {
        line = nl + 1;
        if (!(nl = strchr(line, '\n')))
            return 0;
        *nl = '\0';
        char *space = strchr(line, ' ');
        if (!space || (size_t)(space - line) >= sizeof modules[m].build_id ||
            strlen(space + 1) >= sizeof modules[m].path)
            return 0;
        memcpy(modules[m].build_id, line, (size_t)(space - line));
        modules[m].build_id[space - line] = '\0';
        if (!strcmp(modules[m].build_id, "-"))
            modules[m].build_id[0] = '\0';
        strcpy(modules[m].path, space + 1);
    }
    for (size_t i = 0; i < ns; i++) {
        line = nl + 1;
        if (!(nl = strchr(line, '\n')))
            return 0;
        unsigned module, nr, is_inline, fsize;
        unsigned long long offset, fstart, calls;
        char name[PB_PLAN_FUNCTION_MAX];
        *nl = '\0'; /* one line each: a truncated line must not borrow from the next */
        const char *last = strrchr(line, ' ');
        if (!last || last[1] < '0' || last[1] > '9')
            return 0; /* the count, last, must be a number ("%llu" would take "-1") */
        if (sscanf(line, "%u %llx %u %u %llx %u %63s %llu", &module, &offset, &nr, &is_inline, &fstart,
                   &fsize, name, &calls) != 8 ||
            module >= nm || nr >= 1024 || is_inline > 1)
            return 0;
        sites[i] = (struct pb_plan_site){.offset = offset, .module = module, .syscall_nr = nr,
                                         .is_inline = is_inline, .function_offset = fstart,
                                         .function_size = fsize, .calls = calls};
        if (strcmp(name, "-") != 0)
            memcpy(sites[i].function, name, strlen(name) + 1);
    }
    *module_count = nm;
    *site_count = ns;
    return 1;
}

/* 1 with the plan filled, 0 when there is no usable cache file. */
int pb_plan_cache_read(const char *path, struct pb_plan_module *modules, size_t module_cap,
                       size_t *module_count, struct pb_plan_site *sites, size_t site_cap,
                       size_t *site_count)
{
    char *buf = pb_map(PB_PLAN_MAX_BYTES);
    if (!buf)
        return 0;
    int ok = pb_read_trusted_cache_file(path, 0, buf, PB_PLAN_MAX_BYTES) > 0 &&
             pb_plan_parse(buf, modules, module_cap, module_count, sites, site_cap, site_count);
    pb_unmap(buf, PB_PLAN_MAX_BYTES);
    return ok;
}

void pb_plan_cache_write(const char *path, const struct pb_plan_module *modules, size_t module_count,
                         const struct pb_plan_site *sites, size_t site_count)
{
    char *buf = pb_map(PB_PLAN_MAX_BYTES);
    if (!buf)
        return;
    size_t used = (size_t)snprintf(buf, PB_PLAN_MAX_BYTES, "privbox-plan/3 %zu %zu\n", module_count,
                                   site_count);
    for (size_t m = 0; m < module_count && used < PB_PLAN_MAX_BYTES; m++)
        used += (size_t)snprintf(buf + used, PB_PLAN_MAX_BYTES - used, "%s %s\n",
                                 modules[m].build_id[0] ? modules[m].build_id : "-", modules[m].path);
    for (size_t i = 0; i < site_count && used < PB_PLAN_MAX_BYTES; i++)
        used += (size_t)snprintf(buf + used, PB_PLAN_MAX_BYTES - used, "%u %llx %u %u %llx %u %s %llu\n",
                                 sites[i].module, (unsigned long long)sites[i].offset,
                                 sites[i].syscall_nr, sites[i].is_inline,
                                 (unsigned long long)sites[i].function_offset,
                                 sites[i].function_size,
                                 sites[i].function[0] ? sites[i].function : "-",
                                 (unsigned long long)sites[i].calls);
    if (used < PB_PLAN_MAX_BYTES)
        pb_cache_file_write(path, buf, used);
    pb_unmap(buf, PB_PLAN_MAX_BYTES);
}

/*
 * The profile's validity, cached. A process whose program the profile does not mention (the
 * shell or shim that starts the profiled program, every child of a `make`) runs natively, but a
 * corrupt profile must still be reported once per process tree, by its first process whatever it
 * is: so that first process has the Swift core validate the whole file, and a valid file is then
 * remembered under its identity ("plans/<hash>.valid", where hash covers device, inode, size and
 * modification time, as the plan cache's names do). A rewritten profile has another identity and
 * is validated again; a corrupt one is never remembered (the tree that meets it is reported to and
 * sent native). The file is read through the caches' trust check.
 */
#define PB_VERDICT_TEXT "privbox-profile-valid/1\n"

static int pb_profile_verdict_path(const struct stat *profile, char *out, size_t len)
{
    char leaf[40];
    snprintf(leaf, sizeof leaf, "plans/%016llx.valid", (unsigned long long)pb_profile_identity_hash(profile));
    return pb_cache_path(leaf, out, len);
}

/* Both run in the constructor only (accelerate mode's start), hence the static path. */
int pb_profile_known_valid(const struct stat *profile)
{
    static char path[PB_PATH_MAX + 64];
    char text[64];
    return pb_profile_verdict_path(profile, path, sizeof path) == 0 &&
           pb_read_trusted_cache_file(path, 0, text, sizeof text) == (long)sizeof PB_VERDICT_TEXT - 1 &&
           memcmp(text, PB_VERDICT_TEXT, sizeof PB_VERDICT_TEXT - 1) == 0;
}

void pb_profile_remember_valid(const struct stat *profile)
{
    static char path[PB_PATH_MAX + 64];
    if (pb_profile_verdict_path(profile, path, sizeof path) == 0)
        pb_cache_file_write(path, PB_VERDICT_TEXT, sizeof PB_VERDICT_TEXT - 1);
}
