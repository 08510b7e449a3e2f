/*
 * accelerate/fast_sites.c — the fast site of each identity wrapper and of getrandom: the one call
 * site per wrapper whose calls its assembly entry (wrappers/interpose_routed.c) answers without the
 * C path's route probe. A fast site is routing state, chosen from the routes: the first route
 * installed for that call that is on. The entries only read these words.
 *
 * May use: accelerate/ (the routes), executors/ (identity's page), sys/.
 */
#include "accelerate/routes.h"
#include "executors/identity.h"

#include <sys/syscall.h>

uintptr_t pb_fast_getpid, pb_fast_gettid, pb_fast_getuid, pb_fast_geteuid, pb_fast_getgid,
    pb_fast_getegid, pb_fast_getpgrp, pb_fast_getrandom;

int pb_is_fast_site(uintptr_t site)
{
    return site && (site == pb_fast_getpid || site == pb_fast_gettid || site == pb_fast_getuid ||
                    site == pb_fast_geteuid || site == pb_fast_getgid || site == pb_fast_getegid ||
                    site == pb_fast_getpgrp);
}

/* Called when routes change: each fast site is the first route for its call that is on. */
void pb_fast_sites_update(void)
{
    static const struct { uintptr_t *fast; unsigned nr; unsigned exec; } map[] = {
        {&pb_fast_getpid, SYS_getpid, PB_EXEC_IDENTITY}, {&pb_fast_getuid, SYS_getuid, PB_EXEC_IDENTITY},
        {&pb_fast_geteuid, SYS_geteuid, PB_EXEC_IDENTITY}, {&pb_fast_getgid, SYS_getgid, PB_EXEC_IDENTITY},
        {&pb_fast_getegid, SYS_getegid, PB_EXEC_IDENTITY}, {&pb_fast_getpgrp, SYS_getpgrp, PB_EXEC_IDENTITY},
        {&pb_fast_gettid, SYS_gettid, PB_EXEC_IDENTITY},
        {&pb_fast_getrandom, SYS_getrandom, PB_EXEC_VDSO_RANDOM},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        uintptr_t site = 0;
        for (uint32_t u = 0; u < pb_route_used_count && !site; u++) {
            const struct pb_route *r = &pb_routes[pb_route_used[u]];
            if (r->active == map[i].exec && r->syscall_nr == map[i].nr &&
                (map[i].exec != PB_EXEC_IDENTITY || pb_id))
                site = r->site;
        }
        __atomic_store_n(map[i].fast, site, __ATOMIC_RELEASE);
    }
}
