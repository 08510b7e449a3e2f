/*
 * accelerate/bench_hooks.c — entry points exported for privbox's own benchmarks only (no program
 * calls them): they let a benchmark call an executor directly, without a route or a wrapper in
 * between, to measure the executor's own cost.
 *
 * May touch: starts the identity executor (pb_exec_ready) and updates the wrappers' hooks, as a
 * route would. Uses accelerate/ (routes.c), executors/, sys/.
 */
#include "executors/identity.h"
#include "executors/executor.h"

#include <sys/syscall.h>

/* For the dispatch benchmark (scripts/bench-programs/accel_loop.c, direct-getpid): the identity
 * executor's answer to getpid called directly, with nothing between the caller and the cache (the
 * kernel's when the executor declines, e.g. in a mode that did not start it). */
PB_EXPORT int privbox_bench_identity_getpid(void)
{
    /* Started here if no route started it (a profile with no site for the loop that calls this):
     * single-threaded benchmark use only. */
    if (!pb_id && pb_proc.mode == PB_MODE_ACCELERATE && pb_exec_ready(PB_EXEC_IDENTITY))
        pb_hooks_update(); /* vfork and the credential calls now keep the cache exact */
    uint64_t w = pb_identity_word(PB_ID_PID);
    return w ? (int)(uint32_t)w : (int)pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
}
