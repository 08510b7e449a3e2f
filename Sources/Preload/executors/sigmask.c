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
 *
 * This file is the record: the mask, its epoch, the handler table and its trampoline, the
 * makecontext return patch, start and calibration. The wrappers that route the program's calls to
 * it (sigprocmask, pthread_sigmask, setjmp/longjmp, swapcontext, sigaction, signal, ...) are in
 * wrappers/sigmask_wrappers.c; the part of serving a call that must be inlined into them is in
 * executors/sigmask.h.
 *
 * May use: executors/ (fusion's flush) and sys/.
 */
#include "executors/sigmask.h"
#include "executors/fusion.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

volatile int pb_sigmask_tracking;
volatile int pb_sigmask_off;
PB_TLS uint64_t pb_mask, pb_mask_valid;
PB_TLS uint64_t pb_mask_epoch; /* also bumped by pb_start_context below */

void pb_sigmask_invalidate(void) { pb_epoch_bump(); }

void pb_sigmask_disable(const char *why)
{
    if (!pb_sigmask_off && pb_sigmask_tracking)
        pb_log(PB_LOG_INFO, "signal-mask tracking turned off: %s", why);
    pb_sigmask_off = 1;
    pb_epoch_bump();
}

long pb_mask_kernel(int how, const uint64_t *set, uint64_t *old, int strip)
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

/* A context made by makecontext returns into glibc's __start_context, which switches to its
 * uc_link with glibc's internal setcontext: a mask change privbox would not see. So before a
 * context made by makecontext is first entered through privbox, the return address its function
 * will use (the word its saved stack pointer points at, glibc's __start_context) is replaced by
 * pb_start_context (below), which bumps the epoch and jumps on to glibc's. The same is done for
 * the contexts its uc_link chain leads to, which glibc enters without privbox. */
uintptr_t pb_glibc_start_context; /* read by pb_start_context and pb_sigmask_patch_fresh_contexts */

/* The return address of functions started by makecontext: glibc's __start_context will switch to
 * uc_link and set its mask; the record becomes unknown first. rax (the function's return value)
 * is not used by __start_context. */
__asm__(".text\n"
        ".globl pb_start_context\n"
        ".hidden pb_start_context\n"
        ".type pb_start_context, @function\n"
        ".p2align 4\n"
        "pb_start_context:\n"
        "    .cfi_startproc\n"
        "    .cfi_undefined rip\n"
        "    movq pb_mask_epoch@gottpoff(%rip), %rax\n"
        "    incq %fs:(%rax)\n"
        "    jmp *pb_glibc_start_context(%rip)\n"
        "    .cfi_endproc\n"
        ".size pb_start_context, .-pb_start_context\n");

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

/* ---- handlers: every one runs through the trampoline -------------------------------------------- */

static void *volatile pb_handlers[PB_NSIG];
/* Per signal: the kernel's action runs a program handler (through the trampoline). pb_handlers
 * keeps a replaced handler for a signal already in flight; this says what is installed now. */
static volatile unsigned char pb_handler_live[PB_NSIG];
static volatile int pb_sigaction_lock;
/* libc's sigaction: how the record's handlers are installed (resolved with the wrappers). */
int (*pb_real_sigaction)(int, const struct sigaction *, struct sigaction *);

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

/* sigaction while tracking, for 0 < sig < PB_NSIG: a program handler is installed through the
 * trampoline, and the program is shown its own handler back. */
int pb_sigmask_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
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

/* signal() and its kind while tracking, for 0 < sig < PB_NSIG: `real` (libc's) installs through
 * glibc's internal sigaction; what it installed is then wrapped, all with signals blocked so no
 * signal reaches the unwrapped handler in between. */
__sighandler_t pb_sigmask_signal_like(int sig, __sighandler_t handler,
                                      __sighandler_t (*real)(int, __sighandler_t))
{
    PB_RESOLVE(sigaction);
    uint64_t saved;
    pb_handlers_lock(&saved);
    void *previous = pb_handlers[sig];
    __sighandler_t r = real(sig, handler);
    int saved_errno = errno;
    if ((void *)r == (void *)pb_trampoline)
        r = (__sighandler_t)previous;
    pb_wrap_installed(sig);
    pb_handlers_unlock(&saved);
    pb_epoch_bump(); /* sigset(sig, SIG_HOLD) also changes the mask */
    errno = saved_errno;
    return r;
}

/* ---- start, calibration ------------------------------------------------------------------------- */

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
