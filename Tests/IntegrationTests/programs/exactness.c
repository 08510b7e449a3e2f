/*
 * exactness.c — the cases where an executor's record could go stale. Each case first runs a hot
 * loop through the same call site it checks afterwards (so that under accelerate/auto that site is
 * routed to its executor), then changes the world and compares what the site answers with what
 * the kernel says (a raw `syscall` instruction, which privbox never sees). Prints one line per
 * check: "ok ..." or "FAIL ...". Output is identical natively and under privbox when exact.
 *
 *   exactness identity-fork | identity-vfork | identity-clone | random-fork | mask-handler |
 *             mask-longjmp | mask-threads | swapcontext | setid | clock | all
 */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define HOT 300000

static long raw(long nr, long a, long b, long c, long d)
{
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    fflush(stdout);
}

/* One call site each, used by the hot loop and by every check. */
__attribute__((noinline)) static pid_t site_getpid(void) { return getpid(); }
__attribute__((noinline)) static pid_t site_gettid(void) { return gettid(); }
__attribute__((noinline)) static uid_t site_getuid(void) { return getuid(); }
__attribute__((noinline)) static gid_t site_getgid(void) { return getgid(); }
__attribute__((noinline)) static ssize_t site_getrandom_flags(void *b, size_t n, unsigned fl) { return getrandom(b, n, fl); }
static ssize_t site_getrandom(void *b, size_t n) { return site_getrandom_flags(b, n, 0); }
__attribute__((noinline)) static uint64_t site_mask(void)
{
    sigset_t s;
    sigprocmask(SIG_BLOCK, NULL, &s);
    uint64_t m;
    memcpy(&m, &s, sizeof m);
    return m;
}
static uint64_t raw_mask(void)
{
    uint64_t m = 0;
    raw(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&m, 8);
    return m;
}

static void warm_identity(void)
{
    volatile long sink = 0;
    for (int i = 0; i < HOT; i++)
        sink += site_getpid() + site_gettid() + site_getuid() + site_getgid();
}

static int identity_matches(void)
{
    return site_getpid() == raw(SYS_getpid, 0, 0, 0, 0) && site_gettid() == raw(SYS_gettid, 0, 0, 0, 0) &&
           site_getuid() == (uid_t)raw(SYS_getuid, 0, 0, 0, 0) && site_getgid() == (gid_t)raw(SYS_getgid, 0, 0, 0, 0);
}

static void identity_fork(void)
{
    warm_identity();
    check(identity_matches(), "identity before fork");
    pid_t c = fork();
    if (c == 0) {
        _exit(identity_matches() && site_getpid() != getppid() ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "identity in a fork child");
    check(identity_matches(), "identity in the parent after fork");
    /* A thread of its own: its tid, not the main thread's. */
}

static volatile int vfork_child_ok = -1;

static void identity_vfork(void)
{
    warm_identity();
    pid_t parent = site_getpid();
    pid_t c = vfork();
    if (c == 0) {
        /* Runs on the parent's memory: must still see its own pid and tid. */
        pid_t me = (pid_t)raw(SYS_getpid, 0, 0, 0, 0);
        vfork_child_ok = site_getpid() == me && me != parent && site_gettid() == (pid_t)raw(SYS_gettid, 0, 0, 0, 0);
        _exit(0);
    }
    waitpid(c, 0, 0);
    check(vfork_child_ok == 1, "identity in a vfork child");
    check(identity_matches() && site_getpid() == parent, "identity in the parent after vfork");
}

static int clone_child(void *arg)
{
    (void)arg;
    return identity_matches() ? 0 : 1;
}

static void identity_clone(void)
{
    warm_identity();
    /* clone3 without CLONE_VM: a fork by another name, through syscall(). */
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    long c = syscall(SYS_clone3, &args, sizeof args);
    if (c == 0)
        _exit(identity_matches() ? 0 : 1);
    int st;
    waitpid((pid_t)c, &st, 0);
    check(c > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "identity in a clone3 child");
    check(identity_matches(), "identity in the parent after clone3");
    /* clone() with CLONE_VM|CLONE_VFORK: a child that shares the memory. */
    static char stack[64 * 1024];
    int r = clone(clone_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, 0);
    waitpid(r, &st, 0);
    check(r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "identity in a CLONE_VM child");
    check(identity_matches(), "identity in the parent after a CLONE_VM child");
}

static void random_fork(void)
{
    unsigned char buf[32], child[32];
    volatile long sink = 0;
    for (int i = 0; i < HOT; i++)
        sink += site_getrandom(buf, 16);
    int p[2];
    if (pipe(p) != 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        site_getrandom(buf, sizeof buf);
        if (write(p[1], buf, sizeof buf) != sizeof buf)
            _exit(2);
        _exit(0);
    }
    site_getrandom(buf, sizeof buf);
    ssize_t n = read(p[0], child, sizeof child);
    waitpid(c, 0, 0);
    check(n == sizeof child && memcmp(buf, child, sizeof buf) != 0,
          "getrandom differs between parent and fork child");
    unsigned char again[32];
    site_getrandom(again, sizeof again);
    check(memcmp(buf, again, sizeof buf) != 0, "getrandom differs between calls");
    check(site_getrandom(buf, 0) == 0, "getrandom of 0 bytes");
    /* Through the same (hot) site: an error comes back as -1 and errno, as from the C library;
     * GRND_RANDOM, which the vDSO hands to the kernel, still fills the buffer. */
    errno = 0;
    check(site_getrandom_flags(buf, 16, 0x7000) == -1 && errno == EINVAL, "getrandom with unknown flags fails with EINVAL");
    check(site_getrandom_flags(buf, 16, GRND_RANDOM) == 16, "getrandom with GRND_RANDOM");
}

static volatile uint64_t in_handler_served, in_handler_raw;

static void handler(int sig, siginfo_t *info, void *ucv)
{
    (void)sig;
    (void)info;
    in_handler_served = site_mask();
    in_handler_raw = raw_mask();
    ucontext_t *uc = ucv;
    if (getenv("EXACTNESS_EDIT_UC"))
        sigaddset(&uc->uc_sigmask, SIGWINCH); /* sigreturn will install this */
}

static void warm_mask(void)
{
    volatile uint64_t sink = 0;
    for (int i = 0; i < HOT; i++)
        sink += site_mask();
}

static void mask_handler(void)
{
    warm_mask();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, 0);
    uint64_t before = site_mask();
    check(before == raw_mask(), "mask before the handler");
    raise(SIGUSR1);
    check(in_handler_served == in_handler_raw, "mask inside the handler");
    check((in_handler_raw & (1ull << (SIGUSR1 - 1))) && (in_handler_raw & (1ull << (SIGUSR2 - 1))),
          "the handler runs with its signal and sa_mask blocked");
    check(site_mask() == raw_mask() && site_mask() == before, "mask after the handler returns");
    setenv("EXACTNESS_EDIT_UC", "1", 1);
    raise(SIGUSR1);
    unsetenv("EXACTNESS_EDIT_UC");
    check(site_mask() == raw_mask() && (site_mask() & (1ull << (SIGWINCH - 1))),
          "mask after a handler that edited its ucontext");
    /* sigaction reports the program's own handler back. */
    struct sigaction old;
    sigaction(SIGUSR1, 0, &old);
    check(old.sa_sigaction == handler, "sigaction returns the installed handler");
    check(signal(SIGUSR1, SIG_DFL) == (void (*)(int))handler, "signal returns the installed handler");
}

static sigjmp_buf jump_env;
static jmp_buf plain_env;
static void jump_handler(int sig) { siglongjmp(jump_env, sig); }
static void plain_jump_handler(int sig) { _longjmp(plain_env, sig); }

static void mask_longjmp(void)
{
    volatile long n = 0;
    for (int i = 0; i < HOT; i++) {
        if (sigsetjmp(jump_env, 1) == 0)
            siglongjmp(jump_env, 1);
        n++;
    }
    signal(SIGUSR1, jump_handler);
    uint64_t before = site_mask();
    if (sigsetjmp(jump_env, 1) == 0)
        raise(SIGUSR1);
    check(site_mask() == raw_mask() && site_mask() == before, "mask after siglongjmp out of a handler");
    signal(SIGUSR2, plain_jump_handler);
    if (_setjmp(plain_env) == 0)
        raise(SIGUSR2);
    /* _longjmp restores no mask: SIGUSR2 stays blocked, as the kernel set it for the handler. */
    check(site_mask() == raw_mask() && (site_mask() & (1ull << (SIGUSR2 - 1))),
          "mask after _longjmp out of a handler");
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &usr2, 0);
    check(site_mask() == raw_mask() && site_mask() == before, "mask after unblocking again");
}

static void *mask_thread(void *arg)
{
    int sig = (int)(intptr_t)arg;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    int bad = 0;
    for (int i = 0; i < HOT / 4; i++) {
        pthread_sigmask(i & 1 ? SIG_UNBLOCK : SIG_BLOCK, &one, 0);
        uint64_t m = site_mask();
        int blocked = (m >> (sig - 1)) & 1;
        if (blocked != !(i & 1))
            bad++;
        if ((i & 1023) == 0 && m != raw_mask())
            bad++;
    }
    return (void *)(intptr_t)bad;
}

static void mask_threads(void)
{
    warm_mask();
    pthread_t t[4];
    int sigs[4] = {SIGUSR1, SIGUSR2, SIGWINCH, SIGTERM};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], 0, mask_thread, (void *)(intptr_t)sigs[i]);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (intptr_t)r;
    }
    check(bad == 0, "four threads changing their own masks concurrently");
    check(site_mask() == raw_mask(), "the main thread's mask is its own");
}

static ucontext_t main_ctx, co_ctx;
static uint64_t co_seen;
static volatile int co_round_mode, co_saw_own_mode = 1;

static void coroutine(void)
{
    for (;;) {
        co_seen = site_mask() == raw_mask();
        /* The coroutine keeps its own floating-point environment across switches. */
        if (co_round_mode && fegetround() != co_round_mode)
            co_saw_own_mode = 0;
        if (co_round_mode == 0 && fegetround() == FE_TONEAREST && co_seen == 1 && co_saw_own_mode == 1) {
            /* from the 1000th switch on, run with another rounding mode (x87 and SSE) */
            static int n;
            if (++n == 1000) {
                fesetround(FE_DOWNWARD);
                co_round_mode = FE_DOWNWARD;
            }
        }
        swapcontext(&co_ctx, &main_ctx);
    }
}

static void fp_env_digest(const ucontext_t *uc, char *out)
{
    /* What swapcontext saved: the x87 environment (fnstenv) with MXCSR over its last word. */
    const unsigned char *b = (const unsigned char *)&uc->__fpregs_mem;
    for (int i = 0; i < 28; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static volatile int finished;
static void finisher(void)
{
    finished += site_mask() == raw_mask();
}

static void swapcontext_case(void)
{
    static char stack[128 * 1024];
    getcontext(&co_ctx);
    co_ctx.uc_stack.ss_sp = stack;
    co_ctx.uc_stack.ss_size = sizeof stack;
    makecontext(&co_ctx, coroutine, 0);
    sigaddset(&co_ctx.uc_sigmask, SIGURG); /* the coroutine runs with SIGURG blocked */
    int ok = 1, main_mode_ok = 1;
    for (int i = 0; i < HOT / 2; i++) {
        swapcontext(&main_ctx, &co_ctx);
        ok &= co_seen == 1;
        main_mode_ok &= fegetround() == FE_TONEAREST;
    }
    check(ok, "mask inside a coroutine with its own mask");
    check(main_mode_ok && co_saw_own_mode && co_round_mode == FE_DOWNWARD,
          "each context keeps its own rounding mode (x87 and SSE) across swapcontext");
    char digest[64], line[128];
    fp_env_digest(&main_ctx, digest);
    snprintf(line, sizeof line, "saved floating-point environment %s", digest);
    check(1, line);
    fp_env_digest(&co_ctx, digest);
    snprintf(line, sizeof line, "coroutine's saved floating-point environment %s", digest);
    check(1, line);
    check(site_mask() == raw_mask() && !(site_mask() & (1ull << (SIGURG - 1))),
          "mask back in the main context");
    /* A coroutine that returns: glibc switches to its uc_link itself (an internal setcontext that
     * privbox does not see), restoring the mask of the context it links to. */
    static ucontext_t fin_ctx;
    static char fin_stack[64 * 1024];
    for (int round = 0; round < 2; round++) {
        getcontext(&fin_ctx);
        fin_ctx.uc_stack.ss_sp = fin_stack;
        fin_ctx.uc_stack.ss_size = sizeof fin_stack;
        fin_ctx.uc_link = &main_ctx;
        sigaddset(&fin_ctx.uc_sigmask, SIGURG);
        makecontext(&fin_ctx, finisher, 0);
        swapcontext(&main_ctx, &fin_ctx);
    }
    check(finished == 2 && site_mask() == raw_mask() && !(site_mask() & (1ull << (SIGURG - 1))),
          "mask after a coroutine returned to its uc_link");
    /* The saved context records the mask the kernel had. */
    uint64_t saved;
    memcpy(&saved, &main_ctx.uc_sigmask, sizeof saved);
    check(saved == raw_mask(), "swapcontext saved the mask");
}

__attribute__((noinline)) static long site_clock(long nr, long a, long b)
{
    return syscall(nr, a, b, 0);
}

static void clock_syscalls(void)
{
    struct timespec ts, raw_ts;
    volatile long sink = 0;
    for (int i = 0; i < HOT; i++)
        sink += site_clock(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts);
    /* Served answers interleaved with the kernel's: each time is between its neighbours. */
    int ordered = 1;
    for (int i = 0; i < 1000; i++) {
        struct timespec a, c;
        raw(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&a, 0, 0);
        site_clock(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts);
        raw(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&c, 0, 0);
        long long ta = a.tv_sec * 1000000000ll + a.tv_nsec, tb = ts.tv_sec * 1000000000ll + ts.tv_nsec;
        long long tc = c.tv_sec * 1000000000ll + c.tv_nsec;
        ordered &= ta <= tb && tb <= tc;
    }
    check(ordered, "syscall(SYS_clock_gettime) between two kernel readings");
    errno = 0;
    long r = site_clock(SYS_clock_gettime, 12345, (long)&ts);
    check(r == -1 && errno == EINVAL, "syscall(SYS_clock_gettime) of an invalid clock: EINVAL");
    raw(SYS_clock_gettime, CLOCK_REALTIME, (long)&raw_ts, 0, 0);
    check(site_clock(SYS_clock_gettime, CLOCK_REALTIME, (long)&ts) == 0 && ts.tv_sec - raw_ts.tv_sec <= 1,
          "syscall(SYS_clock_gettime) of CLOCK_REALTIME");
    struct timeval tv;
    check(site_clock(SYS_gettimeofday, (long)&tv, 0) == 0 && tv.tv_sec - raw_ts.tv_sec <= 1,
          "syscall(SYS_gettimeofday)");
    /* time() reads the kernel's coarse clock, which may still show the previous second just after
     * CLOCK_REALTIME crossed into the next one: one second either way. */
    long t = site_clock(SYS_time, 0, 0);
    check(t - raw_ts.tv_sec >= -1 && t - raw_ts.tv_sec <= 1, "syscall(SYS_time)");
    unsigned cpu = 99, raw_cpu = 98;
    site_clock(SYS_getcpu, (long)&cpu, 0);
    raw(SYS_getcpu, (long)&raw_cpu, 0, 0, 0);
    check(cpu < 4096 && raw_cpu < 4096, "syscall(SYS_getcpu)");
}

static void setid(void)
{
    warm_identity();
    /* Setting the ids to what they are changes nothing but must go through invalidation. */
    check(setgid(getgid()) == 0 && setuid(getuid()) == 0, "set*id to the same ids");
    check(identity_matches(), "identity after set*id");
    check(setpgid(0, 0) == 0 && getpgrp() == (pid_t)raw(SYS_getpgrp, 0, 0, 0, 0), "pgrp after setpgid");
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "all";
    int all = !strcmp(c, "all");
    if (all || !strcmp(c, "identity-fork")) identity_fork();
    if (all || !strcmp(c, "identity-vfork")) identity_vfork();
    if (all || !strcmp(c, "identity-clone")) identity_clone();
    if (all || !strcmp(c, "random-fork")) random_fork();
    if (all || !strcmp(c, "mask-handler")) mask_handler();
    if (all || !strcmp(c, "mask-longjmp")) mask_longjmp();
    if (all || !strcmp(c, "mask-threads")) mask_threads();
    if (all || !strcmp(c, "swapcontext")) swapcontext_case();
    if (all || !strcmp(c, "setid")) setid();
    if (all || !strcmp(c, "clock")) clock_syscalls();
    /* privbox's own code (the Swift core loaded at start, the unwinder, the exit writers) must not
     * leave a floating-point status flag that the program did not raise. */
    printf("floating-point exception flags at the end: %#x\n", fetestexcept(FE_ALL_EXCEPT));
    return 0;
}
