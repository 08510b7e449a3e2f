/*
 * wrappers/sigmask_wrappers.c — the wrappers that route the program's signal-mask and
 * signal-action calls to the signal-mask executor (executors/sigmask.c says why its answers are
 * the kernel's): sigprocmask, pthread_sigmask, sigsetjmp/setjmp and swapcontext/setcontext (their
 * register work is in wrappers/setjmp_context.S), siglongjmp/longjmp, sigaction, signal and its
 * kind, and the BSD/System V mask calls. Each routes (the per-site route, sampling), counts (profile
 * mode, inline discovery) or hands the call to the executor; the record itself is the executor's.
 *
 * May use: everything below (accelerate/, profile/, executors/, sys/).
 */
#include "accelerate/routes.h"
#include "executors/sigmask.h"
#include "wrappers/wrappers.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

/* rt_sigprocmask semantics on 64-bit kernel sets: 0 or -errno. strip: remove SIGCANCEL and
 * SIGSETXID from the set as glibc's pthread_sigmask does. site: the caller, for routing/counting. */
long pb_sigmask_call(int how, const uint64_t *set, uint64_t *old, int strip, uintptr_t site) PB_HIDDEN;
_Static_assert(PB_EXEC_SIGMASK == 4, "wrappers/setjmp_context.S tests pb_hook_exec+16");
/* The ucontext_t layout wrappers/setjmp_context.S writes (glibc's oRBX... constants). */
#define PB_UC_GREG(r) (__builtin_offsetof(ucontext_t, uc_mcontext.gregs) + 8 * (r))
_Static_assert(PB_UC_GREG(REG_RBX) == 0x80 && PB_UC_GREG(REG_RBP) == 0x78 &&
               PB_UC_GREG(REG_R12) == 0x48 && PB_UC_GREG(REG_R15) == 0x60 &&
               PB_UC_GREG(REG_RDI) == 0x68 && PB_UC_GREG(REG_RSI) == 0x70 &&
               PB_UC_GREG(REG_RDX) == 0x88 && PB_UC_GREG(REG_RCX) == 0x98 &&
               PB_UC_GREG(REG_R8) == 0x28 && PB_UC_GREG(REG_R9) == 0x30 &&
               PB_UC_GREG(REG_RSP) == 0xa0 && PB_UC_GREG(REG_RIP) == 0xa8, "ucontext_t gregs");
_Static_assert(__builtin_offsetof(ucontext_t, uc_mcontext.fpregs) == 0xe0 &&
               __builtin_offsetof(ucontext_t, __fpregs_mem) == 0x1a8 &&
               __builtin_offsetof(ucontext_t, __fpregs_mem.mxcsr) == 0x1c0 &&
               __builtin_offsetof(ucontext_t, uc_sigmask) == 0x128, "ucontext_t layout");
_Static_assert(__builtin_offsetof(struct __jmp_buf_tag, __mask_was_saved) == 64 &&
               __builtin_offsetof(struct __jmp_buf_tag, __saved_mask) == 72, "jmp_buf layout");

/* One mask call from `site`: served from the record where a route is on (inlined, with the record's
 * check, into every entry: the sigsetjmp and sigprocmask loops' whole cost), sampled, counted in
 * profile mode, or made through the kernel by the executor. */
static inline __attribute__((always_inline)) long pb_sigmask_route(int how, const uint64_t *set,
                                                                   uint64_t *old, int strip,
                                                                   uintptr_t site)
{
    struct pb_route *route = pb_route_lookup(site, PB_EXEC_SIGMASK);
    if (route) {
        if (PB_LIKELY(pb_route_unsampled())) {
            if (PB_LIKELY(pb_mask_serve(how, set, old, strip)))
                return 0;
            return pb_mask_kernel(how, set, old, strip);
        }
        long r;
        PB_SAMPLED_CALL(route, r, (r = 0, pb_mask_serve(how, set, old, strip)),
                        pb_mask_kernel(how, set, old, strip));
    }
    if (pb_counting) {
        struct pb_call call = pb_begin(site, SYS_rt_sigprocmask);
        int entered = pb_inline_enter();
        long r = pb_mask_kernel(how, set, old, strip);
        if (entered)
            pb_inline_leave(SYS_rt_sigprocmask); /* the new mask may block SIGSYS */
        if (call.slot)
            pb_end(call, r != 0);
        return r;
    }
    return pb_mask_kernel(how, set, old, strip);
}

long pb_sigmask_call(int how, const uint64_t *set, uint64_t *old, int strip, uintptr_t site)
{
    return pb_sigmask_route(how, set, old, strip, site);
}

/* ---- sigprocmask and pthread_sigmask ------------------------------------------------------------ */

__attribute__((used)) PB_HIDDEN int (*pb_real_sigprocmask)(int, const sigset_t *, sigset_t *);
__attribute__((used)) PB_HIDDEN int (*pb_real_pthread_sigmask)(int, const sigset_t *, sigset_t *);

PB_ENTRY_STUB(sigprocmask, "pb_hook_exec+16")
PB_ENTRY_STUB(pthread_sigmask, "pb_hook_exec+16")

/* The kernel reads and writes the first 8 bytes of a sigset_t (glibc passes _NSIG/8). */
__attribute__((used, noinline)) PB_HIDDEN int pb_slow_sigprocmask(int how, const sigset_t *set,
                                                                  sigset_t *old);
int pb_slow_sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    long r = pb_sigmask_route(how, (const uint64_t *)set, (uint64_t *)old, 1, PB_SITE);
    if (r != 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

__attribute__((used, noinline)) PB_HIDDEN int pb_slow_pthread_sigmask(int how, const sigset_t *set,
                                                                      sigset_t *old);
int pb_slow_pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    return (int)-pb_sigmask_route(how, (const uint64_t *)set, (uint64_t *)old, 1, PB_SITE);
}

/* ---- setjmp/longjmp and swapcontext (their register work is in wrappers/setjmp_context.S) ---------------------- */

/* glibc's own, where wrappers/setjmp_context.S jumps when privbox has nothing to do. */
__attribute__((used)) PB_HIDDEN void *pb_real___sigsetjmp, *pb_real_swapcontext, *pb_real_setcontext;

PB_HIDDEN void *pb_setcontext_resolve(void);
void *pb_setcontext_resolve(void)
{
    PB_RESOLVE(setcontext);
    return pb_real_setcontext;
}

/* Finishes __sigsetjmp after wrappers/setjmp_context.S saved the registers exactly as glibc does; returns 0 to
 * the program (wrappers/setjmp_context.S jumps here, so this returns straight to setjmp's caller). */
PB_HIDDEN int pb_sigsetjmp_finish(struct __jmp_buf_tag *env, int savemask, uintptr_t site);
int pb_sigsetjmp_finish(struct __jmp_buf_tag *env, int savemask, uintptr_t site)
{
    int saved_errno = errno;
    env->__mask_was_saved = savemask &&
        pb_sigmask_call(SIG_BLOCK, 0, (uint64_t *)&env->__saved_mask, 1, site) == 0;
    errno = saved_errno;
    return 0;
}

/* swapcontext's mask switch: rt_sigprocmask(SIG_SETMASK, &ucp->uc_sigmask, &oucp->uc_sigmask),
 * as glibc's swapcontext makes it (an inline syscall: nothing stripped). 0, or -1 with errno. */
PB_HIDDEN int pb_swapcontext_mask(ucontext_t *oucp, const ucontext_t *ucp, uintptr_t site);
int pb_swapcontext_mask(ucontext_t *oucp, const ucontext_t *ucp, uintptr_t site)
{
    if (pb_sigmask_tracking)
        pb_sigmask_patch_fresh_contexts(ucp);
    long r = pb_sigmask_route(SIG_SETMASK, (const uint64_t *)&ucp->uc_sigmask,
                              (uint64_t *)&oucp->uc_sigmask, 0, site);
    if (r != 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

/* Called by setcontext in wrappers/setjmp_context.S before jumping to glibc's: it sets the mask itself. */
PB_HIDDEN void pb_setcontext_before(const ucontext_t *ucp);
void pb_setcontext_before(const ucontext_t *ucp)
{
    pb_sigmask_patch_fresh_contexts(ucp);
    pb_epoch_bump();
}

/* glibc's longjmp restores a saved mask (rt_sigprocmask SIG_SETMASK, stripped) and then the
 * registers. Here the mask goes through pb_sigmask_call, and glibc's longjmp does the rest from a
 * copy of the buffer that says no mask was saved. The copy holds the same registers (the pointer
 * guard mangling is per thread, not per buffer), so glibc unwinds and jumps exactly as it would. */
__attribute__((noreturn)) static void pb_longjmp(struct __jmp_buf_tag *env, int val, uintptr_t site,
                                                 void (*real)(struct __jmp_buf_tag *, int))
{
    if (!env->__mask_was_saved || !pb_hook_exec[PB_EXEC_SIGMASK])
        real(env, val);
    struct __jmp_buf_tag copy;
    memcpy(&copy, env, sizeof copy);
    copy.__mask_was_saved = 0;
    int saved_errno = errno;
    pb_sigmask_call(SIG_SETMASK, (const uint64_t *)&env->__saved_mask, 0, 1, site);
    errno = saved_errno;
    real(&copy, val);
    __builtin_unreachable();
}

#define PB_LONGJMPS(X) X(siglongjmp) X(longjmp) X(_longjmp) X(__longjmp_chk)
#define PB_LONGJMP(name)                                                                            \
    static void (*pb_real_##name)(struct __jmp_buf_tag *, int);                                     \
    PB_EXPORT __attribute__((noreturn)) void name(struct __jmp_buf_tag env[1], int val)           \
    {                                                                                               \
        PB_RESOLVE(name);                                                                           \
        pb_longjmp(env, val, PB_SITE, pb_real_##name);                                              \
    }
PB_LONGJMPS(PB_LONGJMP)

/* ---- sigaction, signal() and the mask changers ------------------------------------------------- */

/* Inline discovery's view of sigaction (inline_discovery.c): SIGSYS taken out of a handler's
 * sa_mask, the program's own action and mask reported back. */
static int pb_sigaction_inline(int sig, const struct sigaction *act, struct sigaction *old)
{
    struct sigaction copy;
    int was_stripped = pb_inline_was_stripped(sig);
    const struct sigaction *installed = pb_inline_adjust_action(sig, act, &copy);
    int r = pb_real_sigaction(sig, installed, old);
    if (r == 0)
        pb_inline_adjust_old(sig, old, was_stripped);
    return r;
}

PB_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    PB_RESOLVE(sigaction);
    if (PB_UNLIKELY(pb_inline_started))
        return pb_sigaction_inline(sig, act, old); /* profile mode only: no mask tracking there */
    if (!pb_sigmask_tracking || sig <= 0 || sig >= PB_NSIG)
        return pb_real_sigaction(sig, act, old);
    return pb_sigmask_sigaction(sig, act, old);
}
PB_EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    return sigaction(sig, act, old);
}

/* signal() and friends use glibc's internal sigaction: the executor calls them, then wraps what
 * they installed. */
#define PB_SIGNAL_LIKE(name)                                                                        \
    static __sighandler_t (*pb_real_##name)(int, __sighandler_t);                                   \
    PB_EXPORT __sighandler_t name(int sig, __sighandler_t handler)                                  \
    {                                                                                               \
        PB_RESOLVE(name);                                                                           \
        if (PB_UNLIKELY(pb_inline_started) && sig == SIGSYS) {                                      \
            pb_inline_stop_all(); /* the program takes SIGSYS: inline discovery ends */             \
            __sighandler_t was = pb_real_##name(sig, handler);                                      \
            return pb_inline_is_handler((void *)was) ? SIG_DFL : was; /* as if never installed */   \
        }                                                                                           \
        if (!pb_sigmask_tracking || sig <= 0 || sig >= PB_NSIG)                                     \
            return pb_real_##name(sig, handler);                                                    \
        return pb_sigmask_signal_like(sig, handler, pb_real_##name);                                \
    }
#define PB_SIGNAL_LIKES(X) X(signal) X(bsd_signal) X(sysv_signal) X(__sysv_signal) X(sigset)
PB_SIGNAL_LIKES(PB_SIGNAL_LIKE)

/* BSD and System V mask calls: glibc changes the mask internally; the record becomes unknown. */
#define PB_MASK_CHANGER(ret, name, params, args)                                                    \
    static ret (*pb_real_##name) params;                                                            \
    PB_EXPORT ret name params                                                                       \
    {                                                                                               \
        PB_RESOLVE(name);                                                                           \
        ret r = pb_real_##name args;                                                                \
        pb_epoch_bump();                                                                            \
        return r;                                                                                   \
    }
#define PB_MASK_CHANGERS(X)                                                                         \
    X(int, sigblock, (int mask), (mask))                                                            \
    X(int, sigsetmask, (int mask), (mask))                                                          \
    X(int, sighold, (int sig), (sig))                                                               \
    X(int, sigrelse, (int sig), (sig))
PB_MASK_CHANGERS(PB_MASK_CHANGER)

/* ---- resolution ---------------------------------------------------------------------------------- */

/* Resolved in the constructor: longjmp is called from signal handlers, where dlsym must not run. */
#define PB_RESOLVE_NAME(name) PB_RESOLVE_SOFT(name);
#define PB_RESOLVE_CHANGER(ret, name, params, args) PB_RESOLVE_SOFT(name);
/* libc's definitions of the calls wrapped here, resolved in the constructor (longjmp runs in
 * signal handlers, where dlsym must not): called by pb_resolve_routed (interpose_routed.c). */
void pb_sigmask_resolve(void)
{
    PB_RESOLVE_SOFT(sigprocmask);
    PB_RESOLVE_SOFT(pthread_sigmask);
    PB_RESOLVE_SOFT(__sigsetjmp);
    PB_RESOLVE_SOFT(swapcontext);
    PB_RESOLVE_SOFT(setcontext);
    PB_RESOLVE_SOFT(sigaction);
    PB_LONGJMPS(PB_RESOLVE_NAME)
    PB_SIGNAL_LIKES(PB_RESOLVE_NAME)
    PB_MASK_CHANGERS(PB_RESOLVE_CHANGER)
}

