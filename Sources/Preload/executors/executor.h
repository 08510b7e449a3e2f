/*
 * executor.h — the one protocol every executor implements, and the per-site routes that choose
 * them (accelerate and auto modes).
 *
 * A privbox, on a stock kernel, is the set of a hot loop's call sites: a call made from one of them
 * (its return address is the site the profile recorded) goes to the executor routed there; every
 * other call passes through to libc untouched. An executor answers a call exactly as the kernel
 * would, without entering it, or declines and the call passes through. Each executor lives in its
 * own file, exec_<name>.c, and states there why its answers equal the kernel's and what
 * invalidates them.
 */
#ifndef PRIVBOX_EXECUTOR_H
#define PRIVBOX_EXECUTOR_H

#include "sys/internal.h"

enum pb_executor_id {
    PB_EXEC_PASSTHROUGH = 0, /* libc's wrapper, unchanged: the default everywhere */
    PB_EXEC_IDENTITY,        /* getpid, gettid, get[e]uid/get[e]gid, getpgrp, getsid(0) */
    PB_EXEC_VDSO_RANDOM,     /* getrandom through the kernel's vDSO */
    PB_EXEC_VDSO_CLOCK,      /* clock_gettime/gettimeofday/time/getcpu issued through syscall() */
    PB_EXEC_SIGMASK,         /* the signal mask, tracked per thread */
    PB_EXEC_FUSION,          /* lseek(SEEK_SET) deferred, the reads after it made as pread */
    PB_EXEC_COUNT
};

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
     * times both (routes.c). */
    void (*served_once)(void);
    void (*native_once)(void);
};

extern const struct pb_executor pb_exec_passthrough PB_HIDDEN;
extern const struct pb_executor pb_exec_identity PB_HIDDEN;
extern const struct pb_executor pb_exec_vdso_random PB_HIDDEN;
extern const struct pb_executor pb_exec_vdso_clock PB_HIDDEN;
extern const struct pb_executor pb_exec_sigmask PB_HIDDEN;
extern const struct pb_executor pb_exec_fusion PB_HIDDEN;
/* Indexed by enum pb_executor_id. */
extern const struct pb_executor *const pb_executors[PB_EXEC_COUNT] PB_HIDDEN;

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
/* Per executor: non-zero when some route uses it. */
extern volatile int pb_exec_routed[PB_EXEC_COUNT] PB_HIDDEN;
/* Non-zero once an executor that keeps records (identity, sigmask) has started: vfork, clone and
 * the credential wrappers then keep those records exact (vfork.S, interpose_routed.c). */
extern volatile int pb_vfork_tracked PB_HIDDEN;

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

/* Routes: install from a plan (accelerate), or from the warm-up counts (auto). */
/* 1: routes installed; 0: the profile has nothing for this program; -1: the profile is unusable;
 * -2: recorded for another build; -3: privbox's own installation failed (err says which). */
struct stat;
int pb_routes_install_plan(const struct stat *profile, char *err, size_t errlen) PB_HIDDEN;
void pb_auto_begin(void) PB_HIDDEN;
void pb_auto_maybe_decide(uint64_t now_ns) PB_HIDDEN;
void pb_routes_report(void) PB_HIDDEN;
void pb_fast_sites_update(void) PB_HIDDEN;
int pb_is_fast_site(uintptr_t site) PB_HIDDEN;

/* The plan cache (plan_cache.c). */
/* The plan cache's file for the profile as pb_profile_may_mention_exe fstat'ed it (null: none). */
int pb_plan_cache_path(const struct stat *profile, const char *build_id_hex, char *out, size_t len) PB_HIDDEN;
int pb_plan_cache_read(const char *path, struct pb_plan_module *modules, size_t module_cap,
                       size_t *module_count, struct pb_plan_site *sites, size_t site_cap,
                       size_t *site_count) PB_HIDDEN;
void pb_plan_cache_write(const char *path, const struct pb_plan_module *modules,
                         size_t module_count, const struct pb_plan_site *sites,
                         size_t site_count) PB_HIDDEN;
enum pb_executor_id pb_executor_for_syscall(unsigned nr) PB_HIDDEN;
/* Whether the profile (as fstat'ed) was validated whole before, in this version; and recording
 * that it was (plan_cache.c). */
struct stat;
int pb_profile_known_valid(const struct stat *profile) PB_HIDDEN;
void pb_profile_remember_valid(const struct stat *profile) PB_HIDDEN;

/* ---- instrumented copies (rewriter/install.c) ------------------------------------------------ */

struct pb_copy_request {
    uint64_t bias;            /* the module's load address */
    uint64_t function_offset; /* the function holding the site, as module offsets */
    uint32_t function_size;
    uint64_t site;            /* module offset of the site's end (a return address, or after a syscall) */
    unsigned nr;
    int is_inline;
    const char *module;       /* for the log */
    const char *build_id;     /* the module's (hex), keying the decode cache */
    const char *function;
    enum pb_executor_id executor; /* the site's (the caller resolves it): named in the report */
};
/* Each call in a copy returns to a new address (copy_site), which needs a route like the one at
 * the original return address (site), if that has one: pb_copies_install hands the pairs back
 * and the caller adds the routes (the rewriter does not call into accelerate/). */
struct pb_copy_alias { uint64_t site, copy_site; };
struct pb_copies_installed { struct pb_copy_alias *aliases; size_t alias_count, alias_cap; };
/* Builds the copies of the functions holding these sites (before main, from the constructor);
 * out (zeroed by the caller) gets the route aliases, to be freed with pb_copies_installed_free. */
void pb_copies_install(const struct pb_copy_request *reqs, size_t n, struct pb_copies_installed *out) PB_HIDDEN;
void pb_copies_installed_free(struct pb_copies_installed *out) PB_HIDDEN;
/* Where a copy's call entry for call nr continues when the cache cannot answer: the wrapper's
 * plain entry (registered by the start-up, before the plan; rewriter/stubs.c says why). */
void pb_copies_set_call_wrapper(unsigned nr, void *wrapper_entry) PB_HIDDEN;
void pb_copies_report(void) PB_HIDDEN;
/* The kernel gate (rewriter/kernel_gate.c): the gate's address when this process may box its copies
 * (a privbox kernel, CAP_SYS_ADMIN, PRIVBOX_GATE not off), else 0. */
uint64_t pb_gate_address(void) PB_HIDDEN;
/* Writes the gate sequence and a jump back at `at` (which runs at at_address); returns its length. */
#define PB_GATE_STUB_BYTES 20u
size_t pb_gate_emit_stub(uint8_t *at, uint64_t at_address, uint64_t slot_address, uint64_t back) PB_HIDDEN;
int pb_gate_register(uint8_t *region, size_t len, size_t code_len, char *why, size_t whylen) PB_HIDDEN;
void pb_gate_report(void) PB_HIDDEN;
/* Non-zero once a copy serves identity values: the identity executor then counts as used. */
extern volatile int pb_copies_use_identity PB_HIDDEN;
/* Whether executor e can run here (starting it on first use). */
int pb_exec_ready(enum pb_executor_id e) PB_HIDDEN;
/* Every executor stops answering for the kernel, for good (a seccomp filter is being installed). */
void pb_executors_stop(const char *why) PB_HIDDEN;
extern volatile int pb_executors_stopped PB_HIDDEN;
/* Adds a route at `copy_site` like the one at `site`, if there is one (a call in a copy). */
void pb_route_alias(uint64_t site, uint64_t copy_site) PB_HIDDEN;

/* ---- invalidation entry points (called by the process-creation and credential wrappers) ------ */

/* Around a vfork (or CLONE_VFORK|CLONE_VM): the child borrows the parent's memory and thread. */
void pb_identity_vfork_begin(void) PB_HIDDEN;
void pb_identity_vfork_end(void) PB_HIDDEN;
/* A child that shares memory but not the process (CLONE_VM without CLONE_THREAD), or a thread
 * made outside pthread_create (CLONE_VM|CLONE_THREAD through clone/syscall), is about to exist:
 * caches keyed by process or by thread-local storage can no longer be trusted. */
void pb_identity_shared_memory_child(int is_thread) PB_HIDDEN;
/* Credentials, process group or session are being changed by this process (set*id, setpgid,
 * setsid, unshare, setns): *_begin before the call, *_end after it. */
void pb_identity_change_begin(void) PB_HIDDEN;
void pb_identity_change_end(int disable_credentials, int disable_groups) PB_HIDDEN;

/* The executors' serving entry points used by the wrappers. Each returns 1 and stores the answer,
 * or 0 to decline. */
int pb_vdso_getrandom(void *buf, size_t len, unsigned flags, ssize_t *out) PB_HIDDEN;
ssize_t pb_vdso_getrandom_failed(long r) PB_HIDDEN;
int pb_vdso_clock_syscall(long nr, long a1, long a2, long a3, long *out) PB_HIDDEN;

/* Fusion (executors/fusion.c): 1 and the answer in *out when served, 0 to go to the kernel. */
int pb_fuse_lseek(int fd, off_t off, int whence, off_t *out) PB_HIDDEN;
int pb_fuse_read(int fd, void *buf, size_t n, ssize_t *out) PB_HIDDEN;
void pb_fuse_report(void) PB_HIDDEN;
void pb_fuse_flush(void) PB_HIDDEN;

/* Signal mask (executors/sigmask.c). */
extern volatile int pb_sigmask_tracking PB_HIDDEN;
void pb_sigmask_resolve(void) PB_HIDDEN;
void pb_sigmask_invalidate(void) PB_HIDDEN;
void pb_sigmask_disable(const char *why) PB_HIDDEN;
/* Whether the program has a handler installed for any signal (while tracking is on). */
int pb_sigmask_program_has_handlers(void) PB_HIDDEN;
void pb_sigmask_vfork_save(void) PB_HIDDEN;
void pb_sigmask_vfork_restore(void) PB_HIDDEN;
/* rt_sigprocmask semantics on 64-bit kernel sets: 0 or -errno. strip: remove SIGCANCEL and
 * SIGSETXID from the set as glibc's pthread_sigmask does. site: the caller, for routing/counting. */
long pb_sigmask_call(int how, const uint64_t *set, uint64_t *old, int strip, uintptr_t site) PB_HIDDEN;


#endif
