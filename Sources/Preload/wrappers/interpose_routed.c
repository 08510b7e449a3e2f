/*
 * interpose_routed.c — the wrappers that have an executor, and the wrappers of the calls that
 * invalidate executors' records (process creation, credentials, namespaces, syscall()).
 *
 * A wrapper with an executor has the same assembly entry as the others (PB_ENTRY_STUB), testing
 * pb_hook_exec[its executor] instead of pb_counting, so in off mode — and in accelerate mode for
 * an executor no route uses — it is still a jump to libc. Its slow path looks the call site up in
 * the routes (PB_DEFINE_ROUTED_WRAPPER, accelerate/routes.h); calls from unrouted sites are
 * counted or passed through exactly like the other wrappers.
 *
 * The wrappers only route: what a call does to an executor's records, or whether it stops them, is
 * asked of the executors (executors/records.h, pb_installs_seccomp_filter), and what the call is
 * counted as of the profile.
 *
 * May use: everything below (accelerate/, profile/, executors/, sys/).
 */
#include "accelerate/routes.h"
#include "executors/fusion.h"
#include "executors/identity.h"
#include "executors/records.h"
#include "executors/vdso.h"
#include "rewriter/copy_request.h" /* pb_copies_set_call_wrapper */
#include "wrappers/wrappers.h"

#include <errno.h>
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
      pb_vdso_getrandom(b, n, fl, &r))                                                              \
    X(ssize_t, read, SYS_read, PB_NEG1, PB_EXEC_FUSION, "pb_hook_exec+20",                          \
      (int fd, void *buf, size_t n), (fd, buf, n),                                                  \
      (struct pb_route *route_, uintptr_t site_, int fd, void *buf, size_t n),                      \
      (route_, site_, fd, buf, n), pb_fuse_read(fd, buf, n, &r))                                    \
    X(off_t, lseek, SYS_lseek, PB_NEG1, PB_EXEC_FUSION, "pb_hook_exec+20",                          \
      (int fd, off_t o, int w), (fd, o, w),                                                         \
      (struct pb_route *route_, uintptr_t site_, int fd, off_t o, int w), (route_, site_, fd, o, w), \
      pb_fuse_lseek(fd, o, w, &r))                                                                  \
    X(off64_t, lseek64, SYS_lseek, PB_NEG1, PB_EXEC_FUSION, "pb_hook_exec+20",                      \
      (int fd, off64_t o, int w), (fd, o, w),                                                       \
      (struct pb_route *route_, uintptr_t site_, int fd, off64_t o, int w), (route_, site_, fd, o, w), \
      pb_fuse_lseek(fd, o, w, &r))

_Static_assert(PB_EXEC_IDENTITY == 1 && PB_EXEC_VDSO_RANDOM == 2 && PB_EXEC_FUSION == 5,
               "hook operands above");

/*
 * The identity wrappers' entry: before the usual stub, a path for the one site per wrapper that
 * accelerate mode makes its fast site (pb_fast_NAME: the first route installed for that call).
 * A call from there whose value is cached (a vfork or an identity change in flight invalidates
 * every value first, see executors/identity.c) is answered here, without a C frame: a getpid loop then
 * runs at the cost of any call into a preloaded library (3.1 ns here, against 2.8-3.1 ns for a
 * preloaded function that returns a constant). Everything else jumps to the plain entry stub
 * (pb_plain_NAME). rcx, rdx are free: these functions take no argument (getsid, which takes one, has the
 * plain stub).
 *
 * These served calls are not sampled: a served call is one load of a cached value, which no
 * system call can be cheaper than, and decrementing the per-thread sample count here (a
 * read-modify-write each call depends on) cost 10 % of the call. The calls that could lose — a
 * value that keeps being invalidated, so every call asks the kernel and pays privbox's fill on
 * top — all take the C path, which samples as for every other site.
 */
/* The head and tail every fast entry below shares: a call whose return address is not the
 * wrapper's fast site (pb_fast_NAME, accelerate/fast_sites.c; 0 when it has none) goes to the plain
 * entry stub. */
#define PB_FAST_ENTRY_HEAD(name)                                                                    \
    ".text\n"                                                                                       \
    ".globl " #name "\n"                                                                            \
    ".type " #name ", @function\n"                                                                  \
    ".p2align 4\n" #name ":\n"                                                                      \
    "    .cfi_startproc\n"                                                                          \
    "    movq pb_fast_" #name "(%rip), %rax\n"                                                      \
    "    cmpq %rax, (%rsp)\n"                                                                       \
    "    jne 1f\n"
#define PB_FAST_ENTRY_TAIL(name)                                                                    \
    "1:  jmp pb_plain_" #name "\n"                                                                  \
    "    .cfi_endproc\n"                                                                            \
    ".size " #name ", .-" #name "\n"

#define PB_IDENTITY_FAST_STUB(name, which, hook)                                                    \
    __asm__(PB_FAST_ENTRY_HEAD(name)                                                                \
            "    movq pb_id(%rip), %rdx\n"                                                          \
            "    movq 8*" #which "(%rdx), %rax\n"                                                   \
            "    testq %rax, %rax\n"                                                                \
            "    jns 1f\n"                                                                          \
            "    ret\n"                                                                             \
            PB_FAST_ENTRY_TAIL(name));                                                              \
    /* global but hidden: the copies' call entries continue in it */                              \
    PB_ENTRY_STUB_AS(pb_plain_##name, name, ".hidden pb_plain_" #name "\n.globl", hook)

/* gettid's: the thread's cached tid, valid while it was read under the current pid. */
#define PB_TID_FAST_STUB(hook)                                                                      \
    __asm__(PB_FAST_ENTRY_HEAD(gettid)                                                              \
            "    movq pb_id(%rip), %rdx\n"                                                          \
            "    movq (%rdx), %rax\n"                                                               \
            "    testq %rax, %rax\n"                                                                \
            "    jns 1f\n"                                                                          \
            "    movq pb_my_tid@gottpoff(%rip), %rcx\n"                                             \
            "    cmpq %rax, %fs:(%rcx)\n"                                                           \
            "    jne 1f\n"                                                                          \
            "    movl %fs:8(%rcx), %eax\n"                                                          \
            "    ret\n"                                                                             \
            PB_FAST_ENTRY_TAIL(gettid));                                                            \
    PB_ENTRY_STUB_AS(pb_plain_gettid, gettid, ".hidden pb_plain_gettid\n.globl", hook)

/*
 * getrandom's entry: for its fast site (the first getrandom route), a thread that already has its
 * vDSO state calls the vDSO from here, with the program's own three arguments and the state,
 * without the C path's route probe: the same call pb_vdso_getrandom (executors/vdso_random.c) makes,
 * so the same answer. The per-thread sample count is decremented as the C path does, and a call
 * it picks for sampling, a thread with no state yet, or any other site takes the plain stub. The
 * vDSO is entered with the stack aligned as at any call; its -errno becomes errno and -1.
 */
#define PB_RANDOM_FAST_STUB(hook)                                                                   \
    __asm__(PB_FAST_ENTRY_HEAD(getrandom)                                                           \
            "    movq pb_vgetrandom_my_state@gottpoff(%rip), %rax\n"                                \
            "    movq %fs:(%rax), %rcx\n"                                                           \
            "    testq %rcx, %rcx\n"                                                                \
            "    jz 1f\n"                                                                           \
            "    movq pb_sample_countdown@gottpoff(%rip), %rax\n"                                   \
            "    movl %fs:(%rax), %r8d\n"                                                           \
            "    leal -2(%r8), %r9d\n"                                                              \
            "    cmpl $0xfffffffd, %r9d\n"                                                          \
            "    jae 1f\n"                                                                          \
            "    decl %r8d\n"                                                                       \
            "    movl %r8d, %fs:(%rax)\n"                                                           \
            "    movl pb_vgetrandom_state_size(%rip), %r8d\n"                                       \
            "    subq $8, %rsp\n"                                                                   \
            "    .cfi_adjust_cfa_offset 8\n"  /* unwinding out of the vDSO call crosses this frame */ \
            "    call *pb_vgetrandom(%rip)\n"                                                       \
            "    addq $8, %rsp\n"                                                                   \
            "    .cfi_adjust_cfa_offset -8\n"                                                       \
            "    testq %rax, %rax\n"                                                                \
            "    js 2f\n"                                                                           \
            "    ret\n"                                                                             \
            "2:  movq %rax, %rdi\n"                                                                 \
            "    jmp pb_vdso_getrandom_failed\n"                                                    \
            PB_FAST_ENTRY_TAIL(getrandom));                                                         \
    PB_ENTRY_STUB_AS(pb_plain_getrandom, getrandom, ".hidden pb_plain_getrandom\n.globl", hook)

/* Which entry each wrapper gets. */
#define PB_STUB_FOR_PB_EXEC_IDENTITY(name, hook) PB_STUB_IDENTITY_##name(hook)
#define PB_STUB_FOR_PB_EXEC_VDSO_RANDOM(name, hook) PB_RANDOM_FAST_STUB(hook)
#define PB_STUB_FOR_PB_EXEC_FUSION(name, hook) PB_ENTRY_STUB(name, hook)
#define PB_STUB_IDENTITY_getpid(hook) PB_IDENTITY_FAST_STUB(getpid, 0, hook)
#define PB_STUB_IDENTITY_getuid(hook) PB_IDENTITY_FAST_STUB(getuid, 1, hook)
#define PB_STUB_IDENTITY_geteuid(hook) PB_IDENTITY_FAST_STUB(geteuid, 2, hook)
#define PB_STUB_IDENTITY_getgid(hook) PB_IDENTITY_FAST_STUB(getgid, 3, hook)
#define PB_STUB_IDENTITY_getegid(hook) PB_IDENTITY_FAST_STUB(getegid, 4, hook)
#define PB_STUB_IDENTITY_getpgrp(hook) PB_IDENTITY_FAST_STUB(getpgrp, 5, hook)
#define PB_STUB_IDENTITY_gettid(hook) PB_TID_FAST_STUB(hook)
#define PB_STUB_IDENTITY_getsid(hook) PB_ENTRY_STUB(getsid, hook)
_Static_assert(PB_ID_PID == 0 && PB_ID_UID == 1 && PB_ID_EUID == 2 && PB_ID_GID == 3 &&
               PB_ID_EGID == 4 && PB_ID_PGRP == 5, "word indexes in the stubs");

#define PB_DECLARE_ROUTED_REAL(ret, name, nr, failed, exec, hook, params, args, sparams, sargs, attempt)            \
    __attribute__((used)) PB_HIDDEN __typeof__(name) *pb_real_##name;
PB_ROUTED_WRAPPERS(PB_DECLARE_ROUTED_REAL)

#define PB_DEFINE_ROUTED(ret, name, nr, failed, exec, hook, params, args, sparams, sargs, attempt)   \
    PB_STUB_FOR_##exec(name, hook)                                                                  \
    PB_DEFINE_ROUTED_WRAPPER(ret, name, exec, nr, failed, params, args, sparams, sargs, attempt,    \
                             pb_real_##name args)
PB_ROUTED_WRAPPERS(PB_DEFINE_ROUTED)

/* ---- credentials, groups, namespaces: the identity cache is not used while they change ------- */

#define PB_ID_CHANGER(name, nr, disable_creds, disable_groups, params, args)                        \
    static int (*pb_real_##name) params;                                                            \
    PB_EXPORT int name params                                                                       \
    {                                                                                               \
        PB_RESOLVE(name);                                                                           \
        if (PB_LIKELY(!pb_id)) /* no identity cache to keep exact */                                \
            PB_COUNTED(int, nr, PB_NEG1, pb_real_##name args);                                      \
        pb_identity_change_begin();                                                                 \
        int r = pb_real_##name args;                                                                \
        int saved_errno = errno;                                                                    \
        pb_identity_change_end(disable_creds, disable_groups);                                      \
        errno = saved_errno;                                                                        \
        return r;                                                                                   \
    }
#define PB_ID_CHANGERS(X)  \
    X(setuid, SYS_setuid, 0, 0, (uid_t u), (u)) \
    X(seteuid, SYS_setresuid, 0, 0, (uid_t u), (u)) \
    X(setreuid, SYS_setreuid, 0, 0, (uid_t a, uid_t b), (a, b)) \
    X(setresuid, SYS_setresuid, 0, 0, (uid_t a, uid_t b, uid_t c), (a, b, c)) \
    X(setgid, SYS_setgid, 0, 0, (gid_t g), (g)) \
    X(setegid, SYS_setresgid, 0, 0, (gid_t g), (g)) \
    X(setregid, SYS_setregid, 0, 0, (gid_t a, gid_t b), (a, b)) \
    X(setresgid, SYS_setresgid, 0, 0, (gid_t a, gid_t b, gid_t c), (a, b, c)) \
    X(setpgid, SYS_setpgid, 0, 0, (pid_t p, pid_t g), (p, g)) \
    X(setsid, SYS_setsid, 0, 0, (void), ()) \
    X(unshare, SYS_unshare, 1, 1, (int flags), (flags)) \
    X(setns, SYS_setns, 1, 1, (int fd, int type), (fd, type))
PB_ID_CHANGERS(PB_ID_CHANGER)

/* ---- vfork (vfork.S calls these around the system call) ---------------------------------------- */

PB_HIDDEN void pb_vfork_before(void);
void pb_vfork_before(void)
{
    pb_executors_vfork_begin();
}

PB_HIDDEN long pb_vfork_after(long r);
long pb_vfork_after(long r)
{
    pb_executors_vfork_end();
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* ---- clone(): a child that shares the memory defeats per-process and per-thread records -------- */

static int (*pb_real_clone)(int (*)(void *), void *, int, void *, ...);

PB_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    PB_RESOLVE(clone);
    /* glibc's clone reads ptid, tls and ctid whatever the flags; so do we. */
    va_list ap;
    va_start(ap, arg);
    void *ptid = va_arg(ap, void *), *tls = va_arg(ap, void *), *ctid = va_arg(ap, void *);
    va_end(ap);
    pb_executors_see_clone((unsigned long)(unsigned)flags);
    PB_COUNTED(int, SYS_clone, PB_NEG1, pb_real_clone(fn, stack, flags, arg, ptid, tls, ctid));
}

/* ---- syscall() -------------------------------------------------------------------------------- */

static long (*pb_real_syscall)(long, ...);

/* ---- seccomp: a filter decides what each later call does, so no executor may answer for the
 * kernel once the program installs one (pb_installs_seccomp_filter, executors/executor.h; routes.c,
 * pb_executors_stop). A filter the process started under already applies to the kernel calls that
 * fill each cache. ---------------------------------------------------------------------------- */

static int (*pb_real_prctl)(int, ...);
PB_EXPORT int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    PB_RESOLVE(prctl);
    if (PB_UNLIKELY(pb_installs_seccomp_filter(SYS_prctl, option)))
        pb_executors_stop("the program installs a seccomp filter");
    /* A tail call: libc's own system call is what inline discovery sees, as before. */
    return pb_real_prctl(option, a2, a3, a4, a5);
}

PB_EXPORT long syscall(long number, ...)
{
    PB_RESOLVE(syscall);
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (PB_UNLIKELY(pb_installs_seccomp_filter(number, a1)))
        pb_executors_stop("the program installs a seccomp filter");
    unsigned nr = number >= 0 && number < 1023 ? (unsigned)number : 1023u;
    /* What the call does to executors' records (a child sharing the memory, raw signal state, an
     * identity change, which is then made between the executors' begin and end). */
    if (PB_UNLIKELY(pb_vfork_tracked) && pb_raw_call_touches_records(number) &&
        pb_executors_raw_call_begin(number, a1)) {
        long r = pb_real_syscall(number, a1, a2, a3, a4, a5, a6);
        int saved_errno = errno;
        pb_executors_raw_call_end(number);
        errno = saved_errno;
        return r;
    }
    if (PB_UNLIKELY(pb_exec_routed[PB_EXEC_VDSO_CLOCK]) && pb_exec_vdso_clock.serves(nr)) {
        struct pb_route *route = pb_route_lookup(PB_SITE, PB_EXEC_VDSO_CLOCK);
        if (route) {
            long r;
            if (!pb_route_unsampled())
                PB_SAMPLED_CALL(route, r, pb_vdso_clock_syscall(number, a1, a2, a3, &r),
                                pb_real_syscall(number, a1, a2, a3, a4, a5, a6));
            if (pb_vdso_clock_syscall(number, a1, a2, a3, &r))
                return r;
        }
    }
    uint64_t scratch[4];
    if (PB_UNLIKELY(pb_inline_on))
        a2 = pb_inline_filter_raw(number, a1, a2, scratch); /* inline_discovery.c */
    PB_COUNTED(long, nr, PB_NEG1, pb_real_syscall(number, a1, a2, a3, a4, a5, a6));
}

/* ---- resolution ------------------------------------------------------------------------------- */

#define PB_RESOLVE_ROUTED(ret, name, nr, failed, exec, hook, params, args, sparams, sargs, attempt) \
    PB_RESOLVE_SOFT(name);
#define PB_RESOLVE_ID_CHANGER(name, nr, disable_creds, disable_groups, params, args) PB_RESOLVE_SOFT(name);

void pb_resolve_routed(void)
{
    PB_ROUTED_WRAPPERS(PB_RESOLVE_ROUTED)
    PB_ID_CHANGERS(PB_RESOLVE_ID_CHANGER)
    PB_RESOLVE_SOFT(syscall);
    PB_RESOLVE_SOFT(prctl);
    PB_RESOLVE_SOFT(clone);
    pb_sigmask_resolve();
}

/* The instrumented copies' call entries (rewriter/copy_entries.S) continue in the wrapper's plain
 * entry (pb_plain_NAME, above) when the identity cache cannot answer. The rewriter is below the
 * wrappers and does not name them: they are handed down here, before any copy is built. */
void pb_wrappers_give_copies_their_entries(void)
{
    extern char pb_plain_getpid[] PB_HIDDEN, pb_plain_getuid[] PB_HIDDEN, pb_plain_geteuid[] PB_HIDDEN,
        pb_plain_getgid[] PB_HIDDEN, pb_plain_getegid[] PB_HIDDEN, pb_plain_getpgrp[] PB_HIDDEN,
        pb_plain_gettid[] PB_HIDDEN;
    pb_copies_set_call_wrapper(SYS_getpid, pb_plain_getpid);
    pb_copies_set_call_wrapper(SYS_getuid, pb_plain_getuid);
    pb_copies_set_call_wrapper(SYS_geteuid, pb_plain_geteuid);
    pb_copies_set_call_wrapper(SYS_getgid, pb_plain_getgid);
    pb_copies_set_call_wrapper(SYS_getegid, pb_plain_getegid);
    pb_copies_set_call_wrapper(SYS_getpgrp, pb_plain_getpgrp);
    pb_copies_set_call_wrapper(SYS_gettid, pb_plain_gettid);
}
