/*
 * inline_discovery.c — profile mode's view of the system calls that do not go through libc's
 * exported wrappers (PRIVBOX_INLINE=1, `privbox profile --inline`): `syscall` instructions in the
 * program, in static code or a language runtime, and libc's own internal calls (stdio's write
 * through _IO_file_write, posix_spawn's clone, ...), which the preload's wrappers never see.
 *
 * How: Syscall User Dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH, Linux 5.11+). Each thread
 * registers a selector byte (thread-local) and libprivbox.so's own executable segment as the
 * always-allowed region. While the selector says BLOCK, a system call made from anywhere else
 * does not run: the kernel sends SIGSYS instead, with the address after the `syscall`
 * instruction (the site) and the registers of the call. privbox's wrappers set ALLOW around the
 * libc function they call (a depth count, so that nesting through signal handlers works), so
 * only the calls the wrappers did not see trap. The handler counts the call at its site (with
 * its stack, like a wrapped call; the site is marked "inline" in the profile) and then:
 *  - re-issues it from privbox's own code with the same six argument registers and puts the
 *    result in the interrupted context's rax: the kernel does exactly what it would have done at
 *    the original site, with the same arguments, on the same thread, and the program resumes
 *    after the instruction with the result in rax, as natively. A signal arriving during a
 *    re-issued blocking call runs its handler (nested in this one) and the call restarts or
 *    fails with EINTR exactly as it would have: restarting is decided per signal action, not
 *    per call site. The handler blocks every signal except while the call runs, when the
 *    program's own mask (plus SIGSYS) is in force;
 *  - or, for the calls whose effect depends on where they run (see pb_inline_must_run_in_place:
 *    rt_sigreturn, the signal-mask calls, clone/fork/vfork, exec, an unknown number), rewinds
 *    the context by the two bytes of the instruction and sets ALLOW: the handler returns and
 *    the same instruction runs natively, untouched. Dispatch then stays paused on that thread
 *    until its next wrapped call looks at the signal mask again (pb_inline_settle).
 *
 * Why never with SIGSYS blocked: a dispatched call raises SIGSYS with force_sig_info, which,
 * when SIGSYS is blocked, resets its action to the default and kills the process. So dispatch
 * is paused (selector ALLOW) whenever the thread's mask may contain SIGSYS: after any mask call
 * (the wrapped ones are settled by asking the kernel for the mask, the inline ones are run in
 * place and pause), and sigaction/signal masks that would block SIGSYS while a handler runs
 * have SIGSYS taken out (the program reads back its own mask: see pb_inline_adjust_action).
 *
 * What it costs: each trap ~2.4 µs on this machine, so a per-thread budget (PB_INLINE_BUDGET
 * traps) bounds it; after that the thread's dispatch is paused for good and the profile says so.
 * Wrapped calls pay two thread-local stores and lose their tail call (one more return).
 *
 * What ends it: a program that installs its own SIGSYS action (seccomp's SECCOMP_RET_TRAP users)
 * turns discovery off for every thread first; exec resets dispatch (the next image's constructor
 * starts again if it is preloaded); a fork child registers its own thread again; a thread is
 * registered at its first wrapped call (the kernel does not pass dispatch on to new threads),
 * so its inline calls before that are not seen.
 */
#include "profile/inline_discovery.h"
#include "profile/counting.h"
#include "sys/kernel_abi.h"
#include "sys/own_text.h"
#include "sys/process.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/audit.h>
#include <ucontext.h>

#define PB_SUD_ALLOW 0
#define PB_SUD_BLOCK 1

/* Traps per thread before its discovery stops: ~0.5 s of trap cost at 2.4 µs each. */
#define PB_INLINE_BUDGET 200000u

enum pb_inline_state {
    PB_INLINE_UNREGISTERED = 0,
    PB_INLINE_ACTIVE,    /* registered; BLOCK whenever no wrapper is running */
    PB_INLINE_PAUSED,    /* registered; ALLOW until the mask is known to let SIGSYS through */
    PB_INLINE_SPENT,     /* the budget is spent: ALLOW for good */
};

volatile int pb_inline_on;
int pb_inline_started; /* discovery ran in this process (sites may carry PB_INLINE_NR) */
PB_TLS volatile unsigned char *pb_sud_selector;
PB_TLS int pb_sud_depth;
static PB_TLS unsigned char pb_sud_state;
/* The thread that registered (a vfork or CLONE_VM child runs on its parent's TLS, without
 * dispatch: it must not change the parent's state). */
static PB_TLS long pb_sud_tid;
static PB_TLS uint32_t pb_sud_traps;
static uintptr_t pb_text_start, pb_text_len;
/* Process totals for the exit report. */
static uint64_t pb_inline_traps_total;
static uint32_t pb_inline_threads_spent;
/* Per signal: privbox took SIGSYS out of the sa_mask the program gave (restored when it reads
 * its action back). */
static volatile unsigned char pb_sigsys_stripped[65];

static inline void pb_set_selector(unsigned char v)
{
    volatile unsigned char *sel = pb_sud_selector;
    if (sel)
        __atomic_store_n(sel, v, __ATOMIC_RELAXED);
    __asm__ volatile("" ::: "memory");
}

/* With no wrapper running on this thread: BLOCK if the thread's mask lets SIGSYS through, else
 * paused. Asks the kernel (a raw call, in the allowed region). */
static void pb_inline_settle(void)
{
    if (pb_sud_state != PB_INLINE_ACTIVE && pb_sud_state != PB_INLINE_PAUSED)
        return;
    if (pb_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0) != pb_sud_tid)
        return; /* a vfork/CLONE_VM child on this thread's memory: the parent's state stays */
    uint64_t mask = 0;
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&mask, 8, 0, 0);
    if (mask & (1ull << (SIGSYS - 1)) || !pb_inline_on) {
        pb_sud_state = PB_INLINE_PAUSED;
        pb_set_selector(PB_SUD_ALLOW);
    } else {
        pb_sud_state = PB_INLINE_ACTIVE;
        pb_set_selector(PB_SUD_BLOCK);
    }
}

void pb_inline_thread_start(void)
{
    if (!pb_inline_on)
        return;
    if (pb_sud_state != PB_INLINE_UNREGISTERED)
        return;
    pb_sud_state = PB_INLINE_PAUSED; /* creating the table below comes back here: no twice */
    struct pb_thread_table *t = pb_my_table_get();
    if (!t) {
        pb_sud_state = PB_INLINE_SPENT; /* no table, no selector: not registered */
        return;
    }
    t->sud_selector = PB_SUD_ALLOW;
    long r = pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
                             (long)pb_text_start, (long)pb_text_len, (long)&t->sud_selector, 0);
    if (r != 0) {
        pb_sud_state = PB_INLINE_SPENT;
        return;
    }
    pb_sud_selector = &t->sud_selector;
    pb_sud_tid = pb_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    t->sud_registered = 1;
    if (pb_sud_depth == 0)
        pb_inline_settle();
    /* else: the wrapper running now settles it when it returns */
}

void pb_inline_leave_slow(unsigned nr)
{
    if (pb_sud_depth > 0 && --pb_sud_depth > 0)
        return;
    if (pb_sud_state == PB_INLINE_PAUSED || nr == SYS_rt_sigprocmask || nr == SYS_rt_sigaction)
        pb_inline_settle();
    else if (pb_sud_state == PB_INLINE_ACTIVE)
        pb_set_selector(pb_inline_on ? PB_SUD_BLOCK : PB_SUD_ALLOW);
}

void pb_inline_after_fork_child(void)
{
    /* The child inherits neither dispatch nor anything the parent's thread knew. */
    pb_sud_state = PB_INLINE_UNREGISTERED;
    pb_sud_selector = 0; /* the parent's table: the child gets its own */
    pb_sud_traps = 0;
    pb_inline_traps_total = 0; /* the child's profile counts the child's traps */
    pb_inline_threads_spent = 0;
    pb_inline_thread_start();
}

/* Discovery off in every thread: each registered thread's selector to ALLOW for good (the
 * kernel then never dispatches; its configuration can only be changed by the thread itself). */
void pb_inline_stop_all(void)
{
    if (!pb_inline_on)
        return;
    pb_inline_on = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (struct pb_thread_table *t = pb_tables_head(); t; t = t->next)
        if (t->sud_registered)
            __atomic_store_n(&t->sud_selector, PB_SUD_ALLOW, __ATOMIC_SEQ_CST);
    pb_set_selector(PB_SUD_ALLOW);
}

/* Calls whose effect depends on the context they run in: they run in place, natively. */
static int pb_inline_must_run_in_place(long nr, const greg_t *g)
{
    switch (nr) {
    case SYS_rt_sigreturn:   /* restores the frame at the stack pointer */
    case SYS_rt_sigprocmask: /* the handler's mask is replaced by the frame's on return */
    case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait:
    case SYS_pselect6:
    case SYS_ppoll:
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_io_pgetevents:
    case SYS_sigaltstack:    /* answers depend on the stack pointer */
    case SYS_clone:          /* the child would start inside this handler */
    case SYS_clone3:
    case SYS_fork:
    case SYS_vfork:
    case SYS_execve:         /* would carry the handler's mask into the new image */
    case SYS_execveat:
    case SYS_exit:
    case SYS_restart_syscall:
    case SYS_arch_prctl:     /* ARCH_SET_FS moves the TLS this handler runs on */
        return 1;
    default:
        return nr < 0 || nr >= 512;
    }
}

/* A SIGSYS that dispatch did not raise (kill, seccomp's trap): the program has no SIGSYS action
 * of its own (installing one ends discovery), so the default action is what it would get. */
static void pb_inline_foreign_sigsys(void)
{
    pb_inline_stop_all();
    struct pb_kernel_sigaction dfl = {0};
    dfl.handler = (void *)SIG_DFL;
    pb_raw_syscall6(SYS_rt_sigaction, SIGSYS, (long)&dfl, 0, 8, 0, 0);
    /* Pending now, delivered when this handler returns (SIGSYS is blocked inside it). */
    pb_raw_syscall6(SYS_tgkill, pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0),
                    pb_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0), SIGSYS, 0, 0, 0);
}

static void pb_inline_sigsys(int sig, siginfo_t *si, void *context)
{
    (void)sig;
    if (si->si_code != SYS_USER_DISPATCH) {
        pb_inline_foreign_sigsys();
        return;
    }
    /* Every signal is blocked on entry (sa_mask): no program handler may run until the selector
     * says ALLOW, or its return through glibc's __restore_rt would be dispatched with SIGSYS
     * blocked, which kills the process. */
    int saved_errno = errno;
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    long nr = si->si_syscall;
    uintptr_t site = (uintptr_t)si->si_call_addr;
    pb_sud_depth++;
    pb_set_selector(PB_SUD_ALLOW); /* what this handler calls is privbox's */
    __atomic_fetch_add(&pb_inline_traps_total, 1, __ATOMIC_RELAXED);

    /* int $0x80 from 64-bit code: i386 numbers and registers, run in place. */
    int native_abi = si->si_arch == AUDIT_ARCH_X86_64;
    struct pb_call call = {0, 0};
    if (pb_counting && native_abi && nr >= 0 && nr < 512)
        call = pb_begin(site, (unsigned)nr | PB_INLINE_NR);
    int in_place = !native_abi || pb_inline_must_run_in_place(nr, g);
    int spent = ++pb_sud_traps >= PB_INLINE_BUDGET;
    if (spent || in_place) {
        g[REG_RIP] -= 2; /* `syscall` is two bytes; rax holds the number again (the kernel
                            restored it before raising SIGSYS) */
        g[REG_RAX] = nr;
        pb_sud_depth--;
        if (spent && pb_sud_state != PB_INLINE_SPENT) {
            pb_sud_state = PB_INLINE_SPENT;
            __atomic_fetch_add(&pb_inline_threads_spent, 1, __ATOMIC_RELAXED);
        } else if (pb_sud_state == PB_INLINE_ACTIVE) {
            pb_sud_state = PB_INLINE_PAUSED;
        }
        pb_set_selector(PB_SUD_ALLOW);
        errno = saved_errno;
        return;
    }
    /* The call runs with the program's own mask (plus SIGSYS), so a signal interrupts it, runs
     * its handler and restarts it or makes it fail with EINTR as it would have natively; such a
     * handler runs with the selector at ALLOW, so nothing it does is dispatched. */
    uint64_t mask, all = ~0ull;
    memcpy(&mask, &uc->uc_sigmask, sizeof mask);
    mask |= 1ull << (SIGSYS - 1);
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0, 0);
    struct pb_kernel_sigaction scratch; /* a raw rt_sigaction's act without SIGSYS in its mask */
    long arg2 = pb_inline_filter_raw(nr, g[REG_RDI], g[REG_RSI], &scratch);
    long r = pb_raw_syscall6(nr, g[REG_RDI], arg2, g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
    /* Everything blocked again before the selector may say BLOCK: the return to the program
     * (rt_sigreturn, in privbox's region) restores its mask atomically. */
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0, 0);
    g[REG_RAX] = r;
    if (call.slot)
        pb_end(call, r < 0 && r > -4096);
    pb_sud_depth--;
    pb_set_selector(pb_sud_depth == 0 && pb_sud_state == PB_INLINE_ACTIVE && pb_inline_on
                        ? PB_SUD_BLOCK : PB_SUD_ALLOW);
    errno = saved_errno;
}

int pb_inline_start(char *why, size_t why_len)
{
    if (pb_own_text(&pb_text_start, &pb_text_len) != 0) {
        snprintf(why, why_len, "libprivbox.so's code segment was not found");
        return -1;
    }
    /* Is dispatch there? Switch it on and off again for this thread. */
    unsigned char probe = PB_SUD_ALLOW;
    long r = pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
                             (long)pb_text_start, (long)pb_text_len, (long)&probe, 0);
    if (r != 0) {
        snprintf(why, why_len, "this kernel has no Syscall User Dispatch (%s)", strerror((int)-r));
        return -1;
    }
    pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0, 0);
    /* SIGSYS must be at its default: a handler of the program's (installed by a constructor
     * that ran before this one) would be replaced, and an ignored SIGSYS, which exec passes on,
     * would reach the programs this one starts as the default once privbox's handler was in. */
    struct pb_kernel_sigaction before;
    if (pb_raw_syscall6(SYS_rt_sigaction, SIGSYS, 0, (long)&before, 8, 0, 0) != 0 ||
        before.handler != (void *)SIG_DFL) {
        snprintf(why, why_len, "SIGSYS is %s in this process",
                 before.handler == (void *)SIG_IGN ? "ignored" : "handled");
        return -1;
    }
    struct pb_kernel_sigaction sa = {0};
    sa.handler = (void *)pb_inline_sigsys;
    sa.flags = SA_SIGINFO | SA_RESTORER | SA_RESTART;
    sa.restorer = pb_own_text_restorer;
    sa.mask = ~0ull; /* everything, while the handler runs (see pb_inline_sigsys) */
    r = pb_raw_syscall6(SYS_rt_sigaction, SIGSYS, (long)&sa, 0, 8, 0, 0);
    if (r != 0) {
        snprintf(why, why_len, "cannot install the SIGSYS handler (%s)", strerror((int)-r));
        return -1;
    }
    pb_inline_started = 1;
    pb_inline_on = 1;
    /* Handlers installed before this constructor ran (other libraries' constructors): SIGSYS
     * out of their masks too. */
    for (int sig = 1; sig < 65; sig++) {
        struct pb_kernel_sigaction cur;
        if (sig == SIGSYS || sig == SIGKILL || sig == SIGSTOP ||
            pb_raw_syscall6(SYS_rt_sigaction, sig, 0, (long)&cur, 8, 0, 0) != 0)
            continue;
        if (cur.handler != (void *)SIG_DFL && cur.handler != (void *)SIG_IGN &&
            (cur.mask & (1ull << (SIGSYS - 1)))) {
            cur.mask &= ~(1ull << (SIGSYS - 1));
            if (pb_raw_syscall6(SYS_rt_sigaction, sig, (long)&cur, 0, 8, 0, 0) == 0)
                pb_sigsys_stripped[sig] = 1;
        }
    }
    pb_inline_thread_start();
    return 0;
}

/* The process's totals, for its profile. */
void pb_inline_totals(uint64_t *traps, uint32_t *threads_spent)
{
    *traps = __atomic_load_n(&pb_inline_traps_total, __ATOMIC_RELAXED);
    *threads_spent = __atomic_load_n(&pb_inline_threads_spent, __ATOMIC_RELAXED);
}

/* sigaction's act, as installed while discovery is on: SIGSYS for the program ends discovery
 * first; any other action's sa_mask loses SIGSYS (a handler running with SIGSYS blocked would be
 * killed by its first inline call), remembered so that the program reads its own mask back. */
const struct sigaction *pb_inline_adjust_action(int sig, const struct sigaction *act,
                                                struct sigaction *copy)
{
    if (!act || sig <= 0 || sig >= 65)
        return act;
    if (sig == SIGSYS) {
        pb_inline_stop_all();
        return act;
    }
    if (!pb_inline_on || !sigismember(&act->sa_mask, SIGSYS)) {
        pb_sigsys_stripped[sig] = 0;
        return act;
    }
    *copy = *act;
    sigdelset(&copy->sa_mask, SIGSYS);
    pb_sigsys_stripped[sig] = 1;
    return copy;
}

/* sigaction's old action as the program would see it without privbox. `was_stripped` is
 * pb_sigsys_stripped[sig] from before the call. */
void pb_inline_adjust_old(int sig, struct sigaction *old, int was_stripped)
{
    if (!old || sig <= 0 || sig >= 65)
        return;
    if (sig == SIGSYS && pb_inline_is_handler((void *)old->sa_sigaction)) {
        memset(old, 0, sizeof *old);
        old->sa_handler = SIG_DFL;
    } else if (was_stripped) {
        sigaddset(&old->sa_mask, SIGSYS);
    }
}

int pb_inline_was_stripped(int sig)
{
    return sig > 0 && sig < 65 && pb_sigsys_stripped[sig];
}

int pb_inline_is_handler(void *handler)
{
    return handler == (void *)pb_inline_sigsys;
}

/* The rules for a raw rt_sigaction or prctl, trapped or made through syscall(): the program
 * taking SIGSYS or configuring dispatch itself ends discovery first; any other action gets
 * SIGSYS out of its mask (as sigaction() does, pb_inline_adjust_action; the program then reads
 * back the stripped mask). The act is read through the kernel, so a bad pointer still gives
 * EFAULT from the call itself instead of a fault here. */
long pb_inline_filter_raw(long nr, long a1, long a2, void *scratch)
{
    if (nr == SYS_prctl && a1 == PR_SET_SYSCALL_USER_DISPATCH) {
        pb_inline_stop_all();
        return a2;
    }
    if (nr != SYS_rt_sigaction || !a2)
        return a2;
    if (a1 == SIGSYS) {
        pb_inline_stop_all();
        return a2;
    }
    struct pb_kernel_sigaction *copy = scratch;
    struct iovec local = {copy, sizeof *copy}, remote = {(void *)a2, sizeof *copy};
    long got = pb_raw_syscall6(SYS_process_vm_readv, pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0),
                               (long)&local, 1, (long)&remote, 1, 0);
    if (got != (long)sizeof *copy || !(copy->mask & (1ull << (SIGSYS - 1))))
        return a2;
    copy->mask &= ~(1ull << (SIGSYS - 1));
    return (long)copy;
}
