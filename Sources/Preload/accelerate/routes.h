/*
 * accelerate/routes.h — the per-site routes that choose an executor for a call (accelerate and
 * auto modes): the route table, its lookup and sampling, and the hot-path macros a routed wrapper
 * is built from (wrappers/interpose_routed.c, executors' own wrappers excepted). routes.c fills the
 * table from the plan or the warm-up; calibration.c reads the machine's calibration.
 *
 * May use: profile/ (a routed wrapper counts where no route serves), executors/ (the protocol),
 * rewriter/ (the copies it requests), sys/.
 */
#ifndef PRIVBOX_ROUTES_H
#define PRIVBOX_ROUTES_H

#include "executors/executor.h"
#include "profile/counting.h" /* PB_COUNTED_AT: a routed wrapper counts where no route serves */

/* ---- routes ------------------------------------------------------------------------------------
 * A fixed open-addressed table keyed by return address, filled when accelerate mode starts (from
 * the profile) or when auto mode's warm-up ends, and never shrunk. Readers take no lock: a route is
 * published by a release store of its key after its fields are written. */

#define PB_ROUTE_BITS 12
#define PB_ROUTE_SLOTS (1u << PB_ROUTE_BITS)
#define PB_ROUTE_PROBES 16
/* About one routed call in PB_SAMPLE_EVERY per thread is sampled: alternately run natively and
 * through the executor, both timed, so that an executor that loses at a site is turned off there. */
#define PB_SAMPLE_EVERY 4096u
/* Samples of each kind needed before a site's verdict. */
#define PB_SAMPLE_MIN 16u

struct pb_route {
    uint64_t site;            /* return address; 0 = empty slot */
    uint16_t executor;        /* enum pb_executor_id */
    uint16_t syscall_nr;
    volatile uint32_t active; /* = executor while on; 0 once sampling found it slower here */
    uint64_t served_samples, served_cycles;
    uint64_t native_samples, native_cycles;
    char label[96];           /* module+offset (syscall), for the log */
};

extern struct pb_route pb_routes[PB_ROUTE_SLOTS] PB_HIDDEN;
extern uint16_t pb_route_used[PB_ROUTE_SLOTS] PB_HIDDEN;
extern uint32_t pb_route_used_count PB_HIDDEN;

static inline uint32_t pb_route_hash(uint64_t site)
{
    /* Return addresses are distinct and their low bits vary within a loop: folding is enough,
     * and keeps a multiply off the wrappers' common path. */
    return (uint32_t)(site ^ (site >> PB_ROUTE_BITS)) & (PB_ROUTE_SLOTS - 1);
}

/* The route at `site` if executor `exec` is on there. An empty table (off and profile modes)
 * costs one probe. */
static inline struct pb_route *pb_route_lookup(uint64_t site, unsigned exec)
{
    uint32_t h = pb_route_hash(site);
    for (uint32_t i = 0; i < PB_ROUTE_PROBES; i++) {
        struct pb_route *r = &pb_routes[(h + i) & (PB_ROUTE_SLOTS - 1)];
        uint64_t k = __atomic_load_n(&r->site, __ATOMIC_ACQUIRE);
        if (PB_LIKELY(k == site))
            return r->active == exec ? r : 0;
        if (!k)
            return 0;
    }
    return 0;
}

enum pb_run { PB_RUN_SERVED_TIMED, PB_RUN_NATIVE_TIMED, PB_RUN_UNSAMPLED };
/* Samples longer than this (about 20 µs) are dropped: preempted, not representative. */
#define PB_SAMPLE_MAX_CYCLES 50000ull

/* Calls left before this thread's next sampled routed call. */
extern PB_TLS uint32_t pb_sample_countdown PB_HIDDEN;
/* Re-arms the countdown and says how the sampled call runs (alternately served and native). */
enum pb_run pb_route_sample(void) PB_HIDDEN;
void pb_route_timed(struct pb_route *r, int native, uint64_t cycles) PB_HIDDEN;

/* Whether this routed call is served without timing (the common case). 0 and 1 mean "sample
 * now" (0 is also a new thread's count: pb_route_sample tells the two apart), and so does
 * 0xffffffff, which a decrement from 0 leaves behind. */
static inline int pb_route_unsampled(void)
{
    uint32_t c = pb_sample_countdown;
    if (PB_LIKELY(c - 2u < 0xfffffffdu)) { /* 2 <= c <= 0xfffffffe */
        pb_sample_countdown = c - 1;
        return 1;
    }
    return 0;
}

/*
 * A routed call that pb_route_unsampled() picked for sampling: runs it the way pb_route_sample()
 * says (through the executor, timed or not, or natively, timed) and returns its result from the
 * enclosing function. `attempt` stores the executor's answer in `r` and is non-zero, or declines
 * (the call is then made natively, untimed); `native` makes the call.
 */
#define PB_SAMPLED_CALL(route, r, attempt, native)                                                \
    do {                                                                                          \
        enum pb_run how_ = pb_route_sample();                                                     \
        uint64_t t0_ = pb_cycles();                                                               \
        if (how_ != PB_RUN_NATIVE_TIMED) {                                                        \
            if (attempt) {                                                                        \
                if (how_ == PB_RUN_SERVED_TIMED)                                                  \
                    pb_route_timed(route, 0, pb_cycles() - t0_);                                  \
                return r;                                                                         \
            }                                                                                     \
            return native;                                                                        \
        }                                                                                         \
        r = native;                                                                               \
        pb_route_timed(route, 1, pb_cycles() - t0_);                                              \
        return r;                                                                                 \
    } while (0)

/*
 * A wrapper that has an executor is two C functions (PB_DEFINE_ROUTED_WRAPPER):
 *  - pb_slow_NAME, where the entry stub jumps: looks the site up and, on the common path (routed,
 *    not sampled), answers with `attempt` — an expression that stores the answer in `r` and is
 *    non-zero, or declines — without a stack frame; otherwise it tail-calls libc or counts;
 *  - pb_sampled_NAME (parameters `sparams`: the route, the site, then the call's), out of line,
 *    for the sampled calls (times `attempt` or the native call) and, with no route, for counting.
 * `native` is libc's call; `nr`/`failed` are what profile mode records.
 */
#define PB_DEFINE_ROUTED_WRAPPER(type, name, exec, nr, failed, params, args, sparams, sargs,       \
                                 attempt, native)                                                 \
    __attribute__((noinline)) static type pb_sampled_##name sparams                               \
    {                                                                                             \
        if (!route_) /* not routed here, and counting */                                          \
            PB_COUNTED_AT(site_, type, nr, failed, native);                                       \
        type r;                                                                                   \
        PB_SAMPLED_CALL(route_, r, attempt, native);                                              \
    }                                                                                             \
    __attribute__((used, noinline)) PB_HIDDEN type pb_slow_##name params;                         \
    type pb_slow_##name params                                                                    \
    {                                                                                             \
        {                                                                                         \
            uintptr_t site_ = PB_SITE;                                                            \
            struct pb_route *route_ = pb_route_lookup(site_, exec);                               \
            if (PB_LIKELY(route_ != 0)) {                                                         \
                if (PB_UNLIKELY(!pb_route_unsampled()))                                           \
                    return pb_sampled_##name sargs;                                               \
                type r;                                                                           \
                if (PB_LIKELY(attempt))                                                           \
                    return r;                                                                     \
            }                                                                                     \
        }                                                                                         \
        /* Not served: nothing above is live any more, so the common path keeps no frame. */      \
        PB_RESOLVE(name);                                                                         \
        if (PB_LIKELY(!pb_counting))                                                              \
            return native;                                                                        \
        struct pb_route *route_ = 0;                                                              \
        uintptr_t site_ = PB_SITE;                                                                \
        return pb_sampled_##name sargs;                                                           \
    }

/* ---- installing routes (routes.c) ----------------------------------------------------------------- */

/* Routes: install from a plan (accelerate), or from the warm-up counts (auto). */
/* 1: routes installed; 0: the profile has nothing for this program; -1: the profile is unusable;
 * -2: recorded for another build; -3: privbox's own installation failed (err says which). */
struct stat;
int pb_routes_install_plan(const struct stat *profile, char *err, size_t errlen) PB_HIDDEN;
void pb_auto_begin(void) PB_HIDDEN;
/* Every executor stops answering for the kernel, for good (a seccomp filter is being installed:
 * pb_installs_seccomp_filter). */
void pb_executors_stop(const char *why) PB_HIDDEN;

/* ---- fast sites (fast_sites.c) --------------------------------------------------------------------
 * The one site per identity wrapper (and getrandom) that its assembly entry answers without the
 * C path: the first route installed for that call that is on. 0 when it has none. */
extern uintptr_t pb_fast_getpid PB_HIDDEN, pb_fast_gettid PB_HIDDEN, pb_fast_getuid PB_HIDDEN,
    pb_fast_geteuid PB_HIDDEN, pb_fast_getgid PB_HIDDEN, pb_fast_getegid PB_HIDDEN,
    pb_fast_getpgrp PB_HIDDEN, pb_fast_getrandom PB_HIDDEN;
/* Called when routes change. */
void pb_fast_sites_update(void) PB_HIDDEN;
int pb_is_fast_site(uintptr_t site) PB_HIDDEN;

#endif
