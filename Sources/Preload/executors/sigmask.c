/*
 * executors/sigmask.c — the signal-mask executor: each thread's blocked set is tracked exactly, so a
 * call that would leave the mask as it is, or only reads it, returns without entering the kernel.
 * It serves sigprocmask, pthread_sigmask, sigsetjmp(env, 1)/setjmp, siglongjmp/longjmp to a
 * buffer that saved the mask, and swapcontext (wrappers/setjmp_context.S); all record rt_sigprocmask in profiles.
 *
 * Why the answer equals the kernel's. Per thread we keep (mask, epoch, valid); the mask is used only
 * while valid == epoch + 1. The kernel changes a thread's mask only:
 *  - through rt_sigprocmask, which privbox makes itself for every wrapper that changes or reads
 *    the mask while tracking is on (sigprocmask, pthread_sigmask, sigsetjmp, siglongjmp,
 *    swapcontext; the result is recorded after the call: SIG_BLOCK/UNBLOCK/SETMASK applied to
 *    the mask the kernel returned, without SIGKILL/SIGSTOP, and without SIGCANCEL/SIGSETXID
 *    where glibc strips them); libc functions that change it internally (sigblock, sigsetmask,
 *    sighold, sigrelse, sigset, setcontext) bump the epoch instead (unknown until the next call);
 *  - on signal delivery and sigreturn: every handler is installed through privbox's trampoline
 *    (sigaction, signal, bsd_signal, sysv_signal, sigset are wrapped; handlers installed before
 *    tracking started are re-installed through it), which bumps the epoch on entry and on exit. A
 *    handler that leaves by longjmp bumped it on entry. sigsuspend, pselect, ppoll, epoll_pwait
 *    restore the mask on return unless a handler ran, which bumped the epoch.
 *  - in a vfork child, which runs on its parent's thread-local storage: the parent bumps the
 *    epoch when it resumes (privbox's vfork).
 * A new thread starts unknown (zeroed TLS); a fork child inherits the mask and the record alike.
 *
 * Signal safety without locks: a record is committed as mask, then valid = e + 1, where e is the
 * epoch read before the kernel call; a handler running anywhere in between bumps the epoch (entry
 * and exit), so the commit lands invalid. A served call reads the record, writes what the kernel
 * would have written (the old mask), and re-reads the epoch last: if a handler ran meanwhile the
 * call is redone through the kernel, so every served call is equivalent to a kernel call made at
 * that final check.
 *
 * Turned off for the rest of the process (every call goes to the kernel) by anything privbox
 * cannot follow: syscall(SYS_rt_sigaction/SYS_rt_sigprocmask/...), a raw clone(CLONE_VM) thread.
 * Inline `syscall` instructions outside libc that install handlers are not seen (issue 6).
 * One difference a program could see: a handler's backtrace contains privbox's trampoline.
 */
#include "executors/executor.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

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

#define PB_BIT(sig) (1ull << ((sig) - 1))
#define PB_UNBLOCKABLE (PB_BIT(SIGKILL) | PB_BIT(SIGSTOP))
#define PB_GLIBC_INTERNAL (PB_BIT(32) | PB_BIT(33)) /* SIGCANCEL, SIGSETXID */

volatile int pb_sigmask_tracking;
static volatile int pb_sigmask_off;
static PB_TLS uint64_t pb_mask, pb_mask_valid;
PB_TLS uint64_t pb_mask_epoch; /* also bumped by pb_start_context in wrappers/setjmp_context.S */

static inline void pb_epoch_bump(void)
{
    /* One instruction: a signal cannot split it. */
    __asm__ volatile("incq %0" : "+m"(pb_mask_epoch)::"memory");
}

void pb_sigmask_invalidate(void) { pb_epoch_bump(); }

void pb_sigmask_disable(const char *why)
{
    if (!pb_sigmask_off && pb_sigmask_tracking)
        pb_log(PB_LOG_INFO, "signal-mask tracking turned off: %s", why);
    pb_sigmask_off = 1;
    pb_epoch_bump();
}

static inline uint64_t pb_apply(int how, uint64_t cur, uint64_t set)
{
    switch (how) {
    case SIG_BLOCK: return cur | set;
    case SIG_UNBLOCK: return cur & ~set;
    default: return set;
    }
}

static inline uint64_t pb_effective_set(int how, uint64_t set, int strip)
{
    set &= ~PB_UNBLOCKABLE;
    if (strip && how != SIG_UNBLOCK)
        set &= ~PB_GLIBC_INTERNAL;
    return set;
}

/* Served without the kernel, or 0 to take the kernel path. */
static inline int pb_mask_serve(int how, const uint64_t *set, uint64_t *old, int strip)
{
    uint64_t e = pb_mask_epoch;
    __asm__ volatile("" ::: "memory");
    if (pb_mask_valid != e + 1 || pb_sigmask_off)
        return 0;
    uint64_t cur = pb_mask;
    if (set) {
        if ((unsigned)how > SIG_SETMASK)
            return 0; /* the kernel says EINVAL */
        if (pb_apply(how, cur, pb_effective_set(how, *set, strip)) != cur)
            return 0;
    }
    if (old)
        *old = cur;
    __asm__ volatile("" ::: "memory");
    return pb_mask_epoch == e;
}

static long pb_mask_kernel(int how, const uint64_t *set, uint64_t *old, int strip)
{
    uint64_t e = pb_mask_epoch, before = 0, s = 0;
    __asm__ volatile("" ::: "memory");
    if (set) {
        s = pb_effective_set(how, *set, strip); /* the kernel drops SIGKILL/SIGSTOP itself anyway */
        pb_fuse_flush(); /* this raw call is not dispatched: no fusion window may outlive it */
    }
    long r = pb_raw_syscall6(SYS_rt_sigprocmask, how, set ? (long)&s : 0, (long)&before, 8, 0, 0);
    if (r != 0)
        return r;
    if (old)
        *old = before;
    if (pb_sigmask_tracking && !pb_sigmask_off) {
        uint64_t after = set ? pb_apply(how, before, s) : before;
        __asm__ volatile("" ::: "memory");
        if (pb_mask_epoch == e) {
            pb_mask = after;
            __asm__ volatile("" ::: "memory");
            pb_mask_valid = e + 1; /* lands invalid if a handler ran since e was read */
        }
    }
    return 0;
}

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

static void pb_patch_fresh_contexts(const ucontext_t *ucp);

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
        pb_patch_fresh_contexts(ucp);
    long r = pb_sigmask_route(SIG_SETMASK, (const uint64_t *)&ucp->uc_sigmask,
                              (uint64_t *)&oucp->uc_sigmask, 0, site);
    if (r != 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

/* A context made by makecontext returns into glibc's __start_context, which switches to its
 * uc_link with glibc's internal setcontext: a mask change privbox would not see. So before a
 * context made by makecontext is first entered through privbox, the return address its function
 * will use (the word its saved stack pointer points at, glibc's __start_context) is replaced by
 * pb_start_context (wrappers/setjmp_context.S), which bumps the epoch and jumps on to glibc's. The same is done for
 * the contexts its uc_link chain leads to, which glibc enters without privbox. */
uintptr_t pb_glibc_start_context; /* read by wrappers/setjmp_context.S */
extern char pb_start_context[] PB_HIDDEN;

static void pb_dummy_context(void) {}

static void pb_find_start_context(void)
{
    static char stack[4096] __attribute__((aligned(16)));
    ucontext_t uc;
    if (getcontext(&uc) != 0)
        return;
    uc.uc_stack.ss_sp = stack;
    uc.uc_stack.ss_size = sizeof stack;
    uc.uc_link = 0;
    makecontext(&uc, pb_dummy_context, 0);
    uintptr_t *slot = (uintptr_t *)uc.uc_mcontext.gregs[REG_RSP];
    if (slot)
        pb_glibc_start_context = *slot;
}

static void pb_patch_fresh_contexts(const ucontext_t *ucp)
{
    if (!pb_glibc_start_context)
        return;
    for (int depth = 0; ucp && depth < 16; depth++, ucp = ucp->uc_link) {
        uintptr_t *slot = (uintptr_t *)ucp->uc_mcontext.gregs[REG_RSP];
        if (!slot || *slot != pb_glibc_start_context)
            break;
        *slot = (uintptr_t)pb_start_context;
    }
}

/* Called by setcontext in wrappers/setjmp_context.S before jumping to glibc's: it sets the mask itself. */
PB_HIDDEN void pb_setcontext_before(const ucontext_t *ucp);
void pb_setcontext_before(const ucontext_t *ucp)
{
    pb_patch_fresh_contexts(ucp);
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

/* ---- handlers: every one runs through the trampoline -------------------------------------------- */

#define PB_NSIG 65
static void *volatile pb_handlers[PB_NSIG];
/* Per signal: the kernel's action runs a program handler (through the trampoline). pb_handlers
 * keeps a replaced handler for a signal already in flight; this says what is installed now. */
static volatile unsigned char pb_handler_live[PB_NSIG];
static volatile int pb_sigaction_lock;
static int (*pb_real_sigaction)(int, const struct sigaction *, struct sigaction *);

static void pb_trampoline(int sig, siginfo_t *info, void *uc)
{
    pb_epoch_bump(); /* the kernel just set the handler's mask */
    void (*h)(int, siginfo_t *, void *) = (void (*)(int, siginfo_t *, void *))
        pb_handlers[sig > 0 && sig < PB_NSIG ? sig : 0];
    /* The kernel passes info and the context in registers whether or not SA_SIGINFO was asked
     * for, so a one-argument handler called with three sees exactly what it would natively. */
    if (h)
        h(sig, info, uc);
    pb_epoch_bump(); /* sigreturn installs uc's mask, which the handler may have changed */
}

static inline int pb_is_handler(void *h)
{
    return h != (void *)SIG_DFL && h != (void *)SIG_IGN && h != (void *)SIG_ERR &&
           h != (void *)pb_trampoline;
}

int pb_sigmask_program_has_handlers(void)
{
    if (pb_sigmask_off || !pb_sigmask_tracking)
        return 1; /* no longer followed: may have */
    for (int sig = 1; sig < PB_NSIG; sig++)
        if (pb_handler_live[sig])
            return 1;
    return 0;
}

/* Around a vfork: the child runs on this memory and may change its own signal actions (glibc's
 * posix_spawn-like children reset them before exec), which are not the parent's (no CLONE_SIGHAND):
 * the parent's records are put back when it resumes. (A vfork inside a vfork child is undefined
 * behaviour and not provided for.) */
static void *pb_vfork_saved_handlers[PB_NSIG];
static unsigned char pb_vfork_saved_live[PB_NSIG];
void pb_sigmask_vfork_save(void)
{
    memcpy(pb_vfork_saved_handlers, (const void *)pb_handlers, sizeof pb_vfork_saved_handlers);
    memcpy(pb_vfork_saved_live, (const void *)pb_handler_live, sizeof pb_vfork_saved_live);
}
void pb_sigmask_vfork_restore(void)
{
    memcpy((void *)pb_handlers, pb_vfork_saved_handlers, sizeof pb_vfork_saved_handlers);
    memcpy((void *)pb_handler_live, pb_vfork_saved_live, sizeof pb_vfork_saved_live);
}

/* Blocks every signal on this thread (raw: the tracked mask does not change, since it is
 * restored exactly) and takes the lock that orders handler-table updates with registrations. */
static void pb_handlers_lock(uint64_t *saved)
{
    uint64_t all = ~0ull;
    pb_fuse_flush(); /* SIGSYS is about to be blocked, and libc's sigaction called */
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)saved, 8, 0, 0);
    while (__atomic_exchange_n(&pb_sigaction_lock, 1, __ATOMIC_ACQUIRE))
        __builtin_ia32_pause();
}

static void pb_handlers_unlock(const uint64_t *saved)
{
    __atomic_store_n(&pb_sigaction_lock, 0, __ATOMIC_RELEASE);
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)saved, 0, 8, 0, 0);
}

/* With the lock held: if the kernel's action for sig runs a program handler directly, re-install
 * it through the trampoline with the same flags and mask. */
static void pb_wrap_installed(int sig)
{
    struct sigaction cur;
    if (pb_real_sigaction(sig, 0, &cur) != 0)
        return;
    pb_handler_live[sig] = (void *)cur.sa_handler == (void *)pb_trampoline ||
                           pb_is_handler((void *)cur.sa_handler);
    if (!pb_is_handler((void *)cur.sa_handler))
        return;
    pb_handlers[sig] = (void *)cur.sa_handler;
    cur.sa_sigaction = pb_trampoline;
    pb_real_sigaction(sig, &cur, 0);
}

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
    uint64_t saved;
    pb_handlers_lock(&saved);
    void *previous = pb_handlers[sig];
    int r;
    if (act && pb_is_handler((void *)act->sa_handler)) {
        struct sigaction mine = *act;
        pb_handlers[sig] = (void *)act->sa_handler;
        mine.sa_sigaction = pb_trampoline;
        r = pb_real_sigaction(sig, &mine, old);
    } else {
        r = pb_real_sigaction(sig, act, old);
    }
    int saved_errno = errno;
    if (r == 0 && act)
        pb_handler_live[sig] = pb_is_handler((void *)act->sa_handler);
    if (r != 0)
        pb_handlers[sig] = previous;
    else if (old && (void *)old->sa_handler == (void *)pb_trampoline)
        old->sa_handler = (__sighandler_t)previous; /* the program sees its own handler */
    pb_handlers_unlock(&saved);
    errno = saved_errno;
    return r;
}
PB_EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    return sigaction(sig, act, old);
}

/* signal() and friends use glibc's internal sigaction: call them, then wrap what they installed,
 * all with signals blocked so no signal reaches the unwrapped handler in between. */
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
        PB_RESOLVE(sigaction);                                                                      \
        uint64_t saved;                                                                             \
        pb_handlers_lock(&saved);                                                                   \
        void *previous = pb_handlers[sig];                                                          \
        __sighandler_t r = pb_real_##name(sig, handler);                                            \
        int saved_errno = errno;                                                                    \
        if ((void *)r == (void *)pb_trampoline)                                                     \
            r = (__sighandler_t)previous;                                                           \
        pb_wrap_installed(sig);                                                                     \
        pb_handlers_unlock(&saved);                                                                 \
        pb_epoch_bump(); /* sigset(sig, SIG_HOLD) also changes the mask */                          \
        errno = saved_errno;                                                                        \
        return r;                                                                                   \
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

/* ---- start, calibration ------------------------------------------------------------------------- */

/* Resolved in the constructor: longjmp is called from signal handlers, where dlsym must not run. */
#define PB_RESOLVE_NAME(name) PB_RESOLVE_SOFT(name);
#define PB_RESOLVE_CHANGER(ret, name, params, args) PB_RESOLVE_SOFT(name);
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

static const char *pb_sigmask_start(void)
{
    PB_RESOLVE(sigaction);
    pb_find_start_context();
    uint64_t saved;
    pb_handlers_lock(&saved);
    for (int sig = 1; sig < PB_NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sig != 32 && sig != 33)
            pb_wrap_installed(sig);
    pb_sigmask_tracking = 1;
    pb_handlers_unlock(&saved);
    pb_epoch_bump();
    return 0;
}

static int pb_sigmask_serves(unsigned nr) { return nr == SYS_rt_sigprocmask; }

/* Calibration: setting the mask the thread has, answered from the record, and made. */
static uint64_t pb_calibration_mask(void)
{
    static uint64_t mask;
    static int known;
    if (!known) {
        pb_mask_kernel(SIG_BLOCK, 0, &mask, 1); /* learns the record too */
        known = 1;
    }
    return mask;
}
static void pb_sigmask_served_once(void)
{
    uint64_t cur = pb_calibration_mask(), old;
    if (!pb_mask_serve(SIG_SETMASK, &cur, &old, 1))
        pb_mask_kernel(SIG_SETMASK, &cur, &old, 1);
}
static void pb_sigmask_native_once(void)
{
    uint64_t cur = pb_calibration_mask(), old;
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&cur, (long)&old, 8, 0, 0);
}

const struct pb_executor pb_exec_sigmask = {
    .name = "sigmask",
    .summary = "the thread's signal mask tracked exactly: a mask call that changes nothing, or "
               "only reads, is answered without the kernel",
    .serves = pb_sigmask_serves,
    .start = pb_sigmask_start,
    .served_once = pb_sigmask_served_once,
    .native_once = pb_sigmask_native_once,
};
