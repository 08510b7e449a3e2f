/*
 * accelerate/plan_cache.h — the executor plan of a (profile, program) pair cached on disk, and the
 * profile's validity remembered (plan_cache.c).
 *
 * May use: sys/ (declarations only).
 */
#ifndef PRIVBOX_PLAN_CACHE_H
#define PRIVBOX_PLAN_CACHE_H

#include "sys/cache.h"
#include "sys/hash.h"
#include "sys/memory.h"
#include "sys/modules.h"

struct stat;
/* The plan cache's file for the profile as pb_profile_may_mention_exe fstat'ed it (null: none). */
int pb_plan_cache_path(const struct stat *profile, const char *build_id_hex, char *out, size_t len) PB_HIDDEN;
int pb_plan_cache_read(const char *path, struct pb_plan_module *modules, size_t module_cap,
                       size_t *module_count, struct pb_plan_site *sites, size_t site_cap,
                       size_t *site_count) PB_HIDDEN;
void pb_plan_cache_write(const char *path, const struct pb_plan_module *modules,
                         size_t module_count, const struct pb_plan_site *sites,
                         size_t site_count) PB_HIDDEN;
/* Writes a cache file atomically (plan_cache.c; also the copies' writer). */
void pb_cache_file_write(const char *path, const void *buf, size_t len) PB_HIDDEN;
/* Whether the profile (as fstat'ed) was validated whole before, in this version; and recording
 * that it was. */
int pb_profile_known_valid(const struct stat *profile) PB_HIDDEN;
void pb_profile_remember_valid(const struct stat *profile) PB_HIDDEN;

#endif
