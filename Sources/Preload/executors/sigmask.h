/*
 * executors/sigmask.h — the signal-mask executor's entry points (executors/sigmask.c says why its
 * answers are the kernel's): what its wrappers, vfork and syscall() call, and the record of the
 * program's signal handlers that fusion relies on.
 *
 * May use: executors/ and sys/ (declarations, and the inline serving path over the record).
 */
#ifndef PRIVBOX_EXEC_SIGMASK_H
#define PRIVBOX_EXEC_SIGMASK_H

#include "executors/executor.h"

/* Non-zero while every thread's mask is followed (the executor started and nothing turned it off). */
extern volatile int pb_sigmask_tracking PB_HIDDEN;
/* This thread's mask is unknown until the next call (it changed behind privbox's back). */
void pb_sigmask_invalidate(void) PB_HIDDEN;
/* Tracking off for the rest of the process: something changed signal state privbox cannot follow. */
void pb_sigmask_disable(const char *why) PB_HIDDEN;
/* Whether the program has a handler installed for any signal (while tracking is on). */
int pb_sigmask_program_has_handlers(void) PB_HIDDEN;
/* Around a vfork: the child's changes to its own actions are undone in the parent's record. */
void pb_sigmask_vfork_save(void) PB_HIDDEN;
void pb_sigmask_vfork_restore(void) PB_HIDDEN;

/* ---- the record, and serving from it (inlined into the wrappers: wrappers/sigmask_wrappers.c) ---- */

#define PB_BIT(sig) (1ull << ((sig) - 1))
#define PB_UNBLOCKABLE (PB_BIT(SIGKILL) | PB_BIT(SIGSTOP))
#define PB_GLIBC_INTERNAL (PB_BIT(32) | PB_BIT(33)) /* SIGCANCEL, SIGSETXID */
#define PB_NSIG 65

/* Tracking turned off for the rest of the process (pb_sigmask_disable). */
extern volatile int pb_sigmask_off PB_HIDDEN;
/* This thread's record: the mask, used only while pb_mask_valid == pb_mask_epoch + 1. */
extern PB_TLS uint64_t pb_mask PB_HIDDEN, pb_mask_valid PB_HIDDEN, pb_mask_epoch PB_HIDDEN;

static inline void pb_epoch_bump(void)
{
    /* One instruction: a signal cannot split it. */
    __asm__ volatile("incq %0" : "+m"(pb_mask_epoch)::"memory");
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

/* Through the kernel (a raw rt_sigprocmask), recording the result: 0 or -errno. */
long pb_mask_kernel(int how, const uint64_t *set, uint64_t *old, int strip) PB_HIDDEN;

/* ---- the handler table (what sigaction and signal() install goes through the trampoline) ---- */

#include <signal.h>
#include <ucontext.h>
/* libc's sigaction, through which the record's handlers are installed. */
extern int (*pb_real_sigaction)(int, const struct sigaction *, struct sigaction *) PB_HIDDEN;
int pb_sigmask_sigaction(int sig, const struct sigaction *act, struct sigaction *old) PB_HIDDEN;
__sighandler_t pb_sigmask_signal_like(int sig, __sighandler_t handler,
                                      __sighandler_t (*real)(int, __sighandler_t)) PB_HIDDEN;
/* Before a context made by makecontext is entered through privbox: its return into glibc's
 * __start_context (and its uc_link chain's) goes through privbox's epoch bump first
 * (pb_start_context; executors/sigmask.c says why). Inline: swapcontext calls it every time. */
extern uintptr_t pb_glibc_start_context PB_HIDDEN;
extern char pb_start_context[] PB_HIDDEN;
static inline void pb_sigmask_patch_fresh_contexts(const ucontext_t *ucp)
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

#endif
