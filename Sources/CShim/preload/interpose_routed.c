/*
 * interpose_routed.c — the wrappers that have an executor, and the wrappers of the calls that
 * invalidate executors' records (process creation, credentials, namespaces, syscall()).
 *
 * A wrapper with an executor has the same assembly entry as the others (PB_ENTRY_STUB), testing
 * pb_hook_exec[its executor] instead of pb_counting, so in off mode — and in accelerate mode for
 * an executor no route uses — it is still a jump to libc. Its slow path looks the call site up in
 * the routes (PB_ROUTED_BODY, executor.h); calls from unrouted sites are counted or passed through
 * exactly like the other wrappers.
 */
#include "exec_identity.h"

#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

/* X(return type, name, syscall nr, failure test, executor, hook operand, (params), (args),
 *   (params of the sampled path), (its args), attempt): `attempt` stores the executor's answer in
 *   r and is non-zero, or declines. */
#define PB_ROUTED_WRAPPERS(X)                                                                       \
    X(pid_t, getpid, SYS_getpid, PB_NEVER, PB_EXEC_IDENTITY, "pb_hook_exec+4", (void), (), (struct pb_route *route_, uintptr_t site_), (route_, site_),          \
      PB_ID_ATTEMPT(pb_identity_word(PB_ID_PID)))                                                                          \
    X(pid_t, gettid, SYS_gettid, PB_NEVER, PB_EXEC_IDENTITY, "pb_hook_exec+4", (void), (), (struct pb_route *route_, uintptr_t site_), (route_, site_),          \
      PB_ID_ATTEMPT(pb_identity_tid_word()))                                                                          \
    X(uid_t, getuid, SYS_getuid, PB_NEVER, PB_EXEC_IDENTITY, "pb_hook_exec+4", (void), (), (struct pb_route *route_, uintptr_t site_), (route_, site_),          \
      PB_ID_ATTEMPT(pb_identity_word(PB_ID_UID + 0)))                                                                      \
    X(uid_t, geteuid, SYS_geteuid, PB_NEVER, PB_EXEC_IDENTITY, "pb_hook_exec+4", (void), (), (struct pb_route *route_, uintptr_t site_), (route_, site_),        \
      PB_ID_ATTEMPT(pb_identity_word(PB_ID_UID + 1)))                                                                      \
    X(gid_t, getgid, SYS_getgid, PB_NEVER, PB_EXEC_IDENTITY, "pb_hook_exec+4", (void), (), (struct pb_route *route_, uintptr_t site_), (route_, site_),          \
      PB_ID_ATTEMPT(pb_identity_word(PB_ID_UID + 2)))                                                                      \
    X(gid_t, getegid, SYS_getegid, PB_NEVER, PB_EXEC_IDENTITY, "pb_hook_exec+4", (void), (), (struct pb_route *route_, uintptr_t site_), (route_, site_),        \
      PB_ID_ATTEMPT(pb_identity_word(PB_ID_UID + 3)))                                                                      \
    X(pid_t, getpgrp, SYS_getpgrp, PB_NEVER, PB_EXEC_IDENTITY, "pb_hook_exec+4", (void), (), (struct pb_route *route_, uintptr_t site_), (route_, site_),        \
      PB_ID_ATTEMPT(pb_identity_word(PB_ID_PGRP)))                                                                         \
    X(pid_t, getsid, SYS_getsid, PB_NEG1, PB_EXEC_IDENTITY, "pb_hook_exec+4", (pid_t p), (p), (struct pb_route *route_, uintptr_t site_, pid_t p), (route_, site_, p),       \
      p == 0 && PB_ID_ATTEMPT(pb_identity_word(PB_ID_SID)))                                                                       \
    X(ssize_t, getrandom, SYS_getrandom, PB_NEG1, PB_EXEC_VDSO_RANDOM, "pb_hook_exec+8",            \
      (void *b, size_t n, unsigned int fl), (b, n, fl),                                             \
      (struct pb_route *route_, uintptr_t site_, void *b, size_t n, unsigned int fl),                \
      (route_, site_, b, n, fl),            \
      pb_vdso_getrandom(b, n, fl, &r))

_Static_assert(PB_EXEC_IDENTITY == 1 && PB_EXEC_VDSO_RANDOM == 2, "hook operands above");

#define PB_DECLARE_ROUTED_REAL(ret, name, nr, failed, exec, hook, params, args, sparams, sargs, attempt)            \
    __attribute__((used)) PB_HIDDEN __typeof__(name) *pb_real_##name;
PB_ROUTED_WRAPPERS(PB_DECLARE_ROUTED_REAL)

#define PB_RESOLVE(name) (pb_real_##name ? (void)0 : (void)(*(void **)&pb_real_##name = pb_resolve(#name)))

#define PB_DEFINE_ROUTED(ret, name, nr, failed, exec, hook, params, args, sparams, sargs, attempt)   \
    PB_ENTRY_STUB(name, hook)                                                                       \
    PB_DEFINE_ROUTED_WRAPPER(ret, name, exec, nr, failed, params, args, sparams, sargs, attempt,    \
                             pb_real_##name args)
PB_ROUTED_WRAPPERS(PB_DEFINE_ROUTED)

/* ---- credentials, groups, namespaces: the identity cache is not used while they change ------- */

static inline int pb_identity_on(void) { return pb_exec_routed[PB_EXEC_IDENTITY] || pb_vfork_tracked; }

#define PB_ID_CHANGER(name, nr, disable_creds, disable_groups, params, args)                        \
    static int (*pb_real_##name) params;                                                            \
    PB_EXPORT int name params                                                                       \
    {                                                                                               \
        PB_RESOLVE(name);                                                                           \
        if (PB_LIKELY(!pb_identity_on()))                                                           \
            PB_COUNTED(int, nr, PB_NEG1, pb_real_##name args);                                      \
        pb_identity_change_begin();                                                                 \
        int r = pb_real_##name args;                                                                \
        int saved_errno = errno;                                                                    \
        pb_identity_change_end(disable_creds, disable_groups);                                      \
        errno = saved_errno;                                                                        \
        return r;                                                                                   \
    }
PB_ID_CHANGER(setuid, SYS_setuid, 0, 0, (uid_t u), (u))
PB_ID_CHANGER(seteuid, SYS_setresuid, 0, 0, (uid_t u), (u))
PB_ID_CHANGER(setreuid, SYS_setreuid, 0, 0, (uid_t a, uid_t b), (a, b))
PB_ID_CHANGER(setresuid, SYS_setresuid, 0, 0, (uid_t a, uid_t b, uid_t c), (a, b, c))
PB_ID_CHANGER(setgid, SYS_setgid, 0, 0, (gid_t g), (g))
PB_ID_CHANGER(setegid, SYS_setresgid, 0, 0, (gid_t g), (g))
PB_ID_CHANGER(setregid, SYS_setregid, 0, 0, (gid_t a, gid_t b), (a, b))
PB_ID_CHANGER(setresgid, SYS_setresgid, 0, 0, (gid_t a, gid_t b, gid_t c), (a, b, c))
PB_ID_CHANGER(setpgid, SYS_setpgid, 0, 0, (pid_t p, pid_t g), (p, g))
PB_ID_CHANGER(setsid, SYS_setsid, 0, 0, (void), ())
PB_ID_CHANGER(unshare, SYS_unshare, 1, 1, (int flags), (flags))
PB_ID_CHANGER(setns, SYS_setns, 1, 1, (int fd, int type), (fd, type))

/* ---- vfork (vfork.S calls these around the system call) ---------------------------------------- */

volatile int pb_vfork_tracked;

PB_HIDDEN void pb_vfork_before(void);
void pb_vfork_before(void)
{
    pb_identity_vfork_begin();
}

PB_HIDDEN long pb_vfork_after(long r);
long pb_vfork_after(long r)
{
    /* In the parent, the child has exec'd or exited; it ran on this thread's memory and TLS. */
    pb_identity_vfork_end();
    pb_sigmask_invalidate();
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* ---- clone(): a child that shares the memory defeats per-process and per-thread records -------- */

static void pb_shared_memory_clone(unsigned long flags)
{
    if (!(flags & CLONE_VM) || !pb_vfork_tracked)
        return;
    pb_identity_shared_memory_child((flags & CLONE_THREAD) != 0);
    pb_sigmask_disable("a child sharing the memory was made with clone()");
}

static int (*pb_real_clone)(int (*)(void *), void *, int, void *, ...);

PB_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    PB_RESOLVE(clone);
    /* glibc's clone reads ptid, tls and ctid whatever the flags; so do we. */
    va_list ap;
    va_start(ap, arg);
    void *ptid = va_arg(ap, void *), *tls = va_arg(ap, void *), *ctid = va_arg(ap, void *);
    va_end(ap);
    pb_shared_memory_clone((unsigned long)(unsigned)flags);
    PB_COUNTED(int, SYS_clone, PB_NEG1, pb_real_clone(fn, stack, flags, arg, ptid, tls, ctid));
}

/* ---- syscall() -------------------------------------------------------------------------------- */

static long (*pb_real_syscall)(long, ...);

/* Calls made through syscall() that change what executors record. */
static int pb_syscall_changes_identity(long nr)
{
    switch (nr) {
    case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid: case SYS_setresuid:
    case SYS_setresgid: case SYS_setpgid: case SYS_setsid: case SYS_unshare: case SYS_setns:
        return 1;
    }
    return 0;
}

PB_EXPORT long syscall(long number, ...)
{
    PB_RESOLVE(syscall);
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    unsigned nr = number >= 0 && number < 1023 ? (unsigned)number : 1023u;
    if (PB_UNLIKELY(pb_vfork_tracked)) {
        switch (number) {
        case SYS_clone:
            pb_shared_memory_clone((unsigned long)a1);
            break;
        case SYS_clone3:
            if (a1)
                pb_shared_memory_clone((unsigned long)((const struct clone_args *)a1)->flags);
            break;
        case SYS_vfork:
            pb_shared_memory_clone(CLONE_VM);
            break;
        case SYS_rt_sigaction: case SYS_rt_sigprocmask: case SYS_rt_sigreturn:
            pb_sigmask_disable("syscall() changed signal state directly");
            break;
        default:
            if (pb_syscall_changes_identity(number)) {
                pb_identity_change_begin();
                long r = pb_real_syscall(number, a1, a2, a3, a4, a5, a6);
                int saved_errno = errno;
                pb_identity_change_end(number == SYS_unshare || number == SYS_setns,
                                       number == SYS_unshare || number == SYS_setns);
                errno = saved_errno;
                return r;
            }
        }
    }
    if (PB_UNLIKELY(pb_exec_routed[PB_EXEC_VDSO_CLOCK]) && pb_exec_vdso_clock.serves(nr)) {
        struct pb_route *route = pb_route_lookup(PB_SITE, PB_EXEC_VDSO_CLOCK);
        if (route) {
            long r;
            if (pb_route_unsampled()) {
                if (pb_vdso_clock_syscall(number, a1, a2, a3, &r))
                    return r;
            } else {
                enum pb_run how = pb_route_sample();
                uint64_t t0 = pb_cycles();
                if (how != PB_RUN_NATIVE_TIMED) {
                    if (pb_vdso_clock_syscall(number, a1, a2, a3, &r)) {
                        if (how == PB_RUN_SERVED_TIMED)
                            pb_route_timed(route, 0, pb_cycles() - t0);
                        return r;
                    }
                } else {
                    r = pb_real_syscall(number, a1, a2, a3, a4, a5, a6);
                    pb_route_timed(route, 1, pb_cycles() - t0);
                    return r;
                }
            }
        }
    }
    PB_COUNTED(long, nr, PB_NEG1, pb_real_syscall(number, a1, a2, a3, a4, a5, a6));
}

/* ---- resolution ------------------------------------------------------------------------------- */

__attribute__((used)) PB_HIDDEN void *pb_real___sigsetjmp, *pb_real_swapcontext, *pb_real_setcontext;

PB_HIDDEN void *pb_setcontext_resolve(void);
void *pb_setcontext_resolve(void)
{
    if (!pb_real_setcontext)
        pb_real_setcontext = pb_resolve("setcontext");
    return pb_real_setcontext;
}

#define PB_RESOLVE_ROUTED(ret, name, nr, failed, exec, hook, params, args, sparams, sargs, attempt)                 \
    pb_real_##name = (__typeof__(name) *)pb_resolve_soft(#name);

void pb_resolve_routed(void) PB_HIDDEN;
void pb_resolve_routed(void)
{
    PB_ROUTED_WRAPPERS(PB_RESOLVE_ROUTED)
    pb_real_syscall = (long (*)(long, ...))pb_resolve_soft("syscall");
    pb_real_clone = (int (*)(int (*)(void *), void *, int, void *, ...))pb_resolve_soft("clone");
    pb_real___sigsetjmp = pb_resolve_soft("__sigsetjmp");
    pb_real_swapcontext = pb_resolve_soft("swapcontext");
    pb_real_setcontext = pb_resolve_soft("setcontext");
}
