/*
 * executors/executor.h — the one protocol every executor implements, and the protocol's state: which
 * executors have started, which are routed, stopped or withdrawn, and the hooks their wrappers'
 * entry stubs test. What routes calls to executors (the per-site route table, sampling, the plan)
 * is accelerate's, above this layer (accelerate/routes.h); each executor's own entry points are in
 * its own header (executors/identity.h, fusion.h, sigmask.h, vdso.h).
 *
 * A privbox, on a stock kernel, is the set of a hot loop's call sites: a call made from one of them
 * (its return address is the site the profile recorded) goes to the executor routed there; every
 * other call passes through to libc untouched. An executor answers a call exactly as the kernel
 * would, without entering it, or declines and the call passes through. Each executor lives in its
 * own file, executors/<name>.c, and states there why its answers equal the kernel's and what
 * invalidates them.
 *
 * May use: sys/ and Sources/CShim only (as every file of executors/).
 */
#ifndef PRIVBOX_EXECUTOR_H
#define PRIVBOX_EXECUTOR_H

#include "sys/cache.h"
#include "sys/files.h"
#include "sys/hash.h"
#include "sys/kernel_abi.h"
#include "sys/kernel_gate_address.h"
#include "sys/log.h"
#include "sys/memory.h"
#include "sys/modules.h"
#include "sys/process.h"
#include "sys/symbols.h"
#include "sys/syscall_name.h"

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

enum pb_executor_id {
    PB_EXEC_PASSTHROUGH = 0, /* libc's wrapper, unchanged: the default everywhere */
    PB_EXEC_IDENTITY,        /* getpid, gettid, get[e]uid/get[e]gid, getpgrp, getsid(0) */
    PB_EXEC_VDSO_RANDOM,     /* getrandom through the kernel's vDSO */
    PB_EXEC_VDSO_CLOCK,      /* clock_gettime/gettimeofday/time/getcpu issued through syscall() */
    PB_EXEC_SIGMASK,         /* the signal mask, tracked per thread */
    PB_EXEC_FUSION,          /* lseek(SEEK_SET) deferred, the reads after it made as pread */
    PB_EXEC_COUNT
};

/* The system calls that have a route on to one executor, as a bit set indexed by syscall number
 * (the profile keeps 10 bits of it). */
#define PB_NR_SET_WORDS (1024 / 64)
static inline int pb_nr_set_has(const uint64_t *set, unsigned nr)
{
    return nr < 1024 && ((set[nr / 64] >> (nr % 64)) & 1);
}

struct pb_executor {
    const char *name;
    /* One sentence: what it serves and why the answer is the kernel's. */
    const char *summary;
    /* Whether it serves calls that the profile records under syscall `nr`. */
    int (*serves)(unsigned nr);
    /* 0 when it can run in this process; else why not (one phrase, for the log). Called once, when
     * routes are installed; may prepare process-wide state. */
    const char *(*start)(void);
    /* Its representative call, served by it and made natively: `privbox doctor --calibrate`
     * times both (accelerate/calibration.c). */
    void (*served_once)(void);
    void (*native_once)(void);
    /* The rest is optional (null: nothing to say). Whoever installs routes (accelerate) first
     * tells the executor every system call the plan — or auto mode's warm-up — holds a site for
     * (plan_sees, each call it serves), then asks it per site whether it takes a route there
     * (plan_takes): an executor whose answers depend on other calls being routed too decides that
     * here, from the plan, rather than the planner knowing it. */
    void (*plan_sees)(unsigned nr);
    int (*plan_takes)(unsigned nr);
    /* Once the routes are in, given the calls that have a route on to it (a PB_NR_SET_WORDS bit
     * set): null keeps them; otherwise every one of its routes is turned off, and this says why
     * (one phrase, logged per route). */
    const char *(*keeps_routes)(const uint64_t *routed_nrs);
    /* Its own lines in the exit report (PRIVBOX_LOG=info), called if it started; and what a route
     * to it that is off says there (null: "turned off (slower than the syscall here)", sampling's
     * verdict). */
    void (*report)(void);
    const char *route_off_note;
};

extern const struct pb_executor pb_exec_passthrough PB_HIDDEN;
extern const struct pb_executor pb_exec_identity PB_HIDDEN;
extern const struct pb_executor pb_exec_vdso_random PB_HIDDEN;
extern const struct pb_executor pb_exec_vdso_clock PB_HIDDEN;
extern const struct pb_executor pb_exec_sigmask PB_HIDDEN;
extern const struct pb_executor pb_exec_fusion PB_HIDDEN;
/* Indexed by enum pb_executor_id. */
extern const struct pb_executor *const pb_executors[PB_EXEC_COUNT] PB_HIDDEN;

/* ---- the protocol's state (executors/executor_state.c) ------------------------------------------
 * It lives at this layer, not with the routes above it, because executors read and change it
 * themselves (fusion starts the signal-mask executor and withdraws its own routes; identity stops
 * caching once every executor is stopped): what an executor may call is here or in sys/. */

/* The executor that serves calls recorded under `nr` (PB_EXEC_PASSTHROUGH if none does). */
enum pb_executor_id pb_executor_for_syscall(unsigned nr) PB_HIDDEN;
/* Whether executor e can run here (starting it on first use). */
int pb_exec_ready(enum pb_executor_id e) PB_HIDDEN;
/* Whether e has started (pb_exec_ready succeeded); and why it cannot run, once that is known. */
int pb_exec_started(enum pb_executor_id e) PB_HIDDEN;
const char *pb_exec_why_not(enum pb_executor_id e) PB_HIDDEN;
/* The machine's calibration (accelerate/calibration.c) says e loses here: it will not start. */
void pb_exec_calibrated_slower(enum pb_executor_id e) PB_HIDDEN;

/* Per executor: non-zero when some route to it is on (accelerate sets it when it publishes routes;
 * an executor that withdraws clears its own). */
extern volatile int pb_exec_routed[PB_EXEC_COUNT] PB_HIDDEN;
/* Per executor: non-zero once it withdrew for the rest of the process (pb_executor_withdraw). */
extern volatile int pb_exec_withdrawn[PB_EXEC_COUNT] PB_HIDDEN;
/* An executor turns itself off for good: its wrappers' entry stubs jump to libc again (unless the
 * calls are being counted) and the routes to it count as off (accelerate reads pb_exec_withdrawn
 * when it reports or publishes). The routes themselves stay in the table (the executor cannot
 * reach accelerate's routes, and before the split fusion cleared them itself): a call already on
 * its way through a wrapper's slow path, or one made while counting, still finds its route and
 * asks the executor, which must then decline as it does for any call it does not serve (fusion:
 * pb_fuse_off), so the answer is the kernel's either way. */
static inline void pb_executor_withdraw(enum pb_executor_id e)
{
    pb_exec_withdrawn[e] = 1;
    pb_exec_routed[e] = 0;
    pb_hook_exec[e] = pb_counting; /* its wrappers are jumps to libc again */
}

/* Non-zero once every executor stopped answering for the kernel, for good (a seccomp filter is
 * being installed: accelerate/routes.c, pb_executors_stop). Inherited by fork children. */
extern volatile int pb_executors_stopped PB_HIDDEN;
/* Non-zero once an executor that keeps records (identity, sigmask) has started: vfork, clone and
 * the credential wrappers then keep those records exact (vfork.S, interpose_routed.c). */
extern volatile int pb_vfork_tracked PB_HIDDEN;
/* Recomputes pb_hook_exec (sys/process.h: what the wrappers' entry stubs test) and
 * pb_vfork_tracked from the state above and pb_counting. */
void pb_hooks_update(void) PB_HIDDEN;

/* Whether a call installs a seccomp filter (or strict mode), after which no executor may answer
 * for the kernel: prctl(PR_SET_SECCOMP, ...) and seccomp(SECCOMP_SET_MODE_STRICT or _FILTER, ...)
 * install; seccomp's other operations only probe. `nr` is the system call (SYS_prctl for libc's
 * prctl()), `a1` its first argument. The one test, for prctl() and syscall() alike. */
static inline int pb_installs_seccomp_filter(long nr, long a1)
{
    return (nr == SYS_seccomp && (a1 == SECCOMP_SET_MODE_STRICT || a1 == SECCOMP_SET_MODE_FILTER)) ||
           (nr == SYS_prctl && a1 == PR_SET_SECCOMP);
}

#endif
