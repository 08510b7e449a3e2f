/*
 * accel_loop.c — the loops accelerate mode is measured on: `accel_loop KIND N` runs N iterations
 * of one kind in 10 chunks and prints to stdout a result that must not depend on privbox (derived
 * from what the calls returned), and to stderr the ns per iteration of the fastest chunk.
 *   getpid, gettid:  the call; prints whether every call returned the process's/thread's id
 *   getrandom:       getrandom(16 bytes); prints the bytes returned in total
 *   sigprocmask:     sigprocmask(SIG_BLOCK, {SIGUSR1}) (no change after the first); a digest of
 *                    the old masks
 *   sigsetjmp:       sigsetjmp(env, 1) then siglongjmp(env, 1): one iteration = one jump
 *   swapcontext:     a ping-pong with a coroutine: one iteration = two swapcontext calls
 *   swapcontext-fpdiff: the same, but the coroutine has raised FE_INEXACT, so the two contexts'
 *                    saved floating-point environments differ (MXCSR's sticky flag)
 *   sched_getcpu:    sched_getcpu() (glibc answers it from rseq already)
 *   raw-getpid:      getpid by an inline `syscall` instruction, which no wrapper sees: accelerate
 *                    mode serves it from an instrumented copy of raw_getpid_loop (the profile must
 *                    be recorded with `privbox profile --inline`)
 *   direct-getpid:   the identity executor's answer called directly through a function pointer
 *                    (privbox_bench_identity_getpid, exported by libprivbox.so for this); without
 *                    privbox, the same loop shape around an inline getpid. With raw-getpid it gives
 *                    the cost of dispatching through an instrumented site.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fenv.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define CHUNKS 10

static inline long raw_getpid(void)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(39L) : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static unsigned long raw_getpid_loop(long n)
{
    unsigned long sum = 0;
    for (long i = 0; i < n; i++)
        sum += (unsigned long)raw_getpid();
    return sum;
}

__attribute__((noinline)) static int raw_getpid_function(void) { return (int)raw_getpid(); }

__attribute__((noinline)) static unsigned long direct_getpid_loop(long n, int (*get)(void))
{
    unsigned long sum = 0;
    for (long i = 0; i < n; i++)
        sum += (unsigned long)get();
    return sum;
}

/* Integer time: the harness must not raise floating-point flags of its own (they are part of the
 * environment swapcontext saves and restores). */
static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static ucontext_t main_ctx, co_ctx;
static volatile long co_count;
static int co_inexact;

static void coroutine(void)
{
    if (co_inexact)
        feraiseexcept(FE_INEXACT);
    for (;;) {
        co_count++;
        swapcontext(&co_ctx, &main_ctx);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: accel_loop getpid|gettid|getrandom|sigprocmask|sigsetjmp|"
                        "swapcontext|swapcontext-fpdiff|sched_getcpu|raw-getpid|direct-getpid N\n");
        return 64;
    }
    const char *kind = argv[1];
    long n = atol(argv[2]) / CHUNKS;
    unsigned long long best = ~0ull; /* picoseconds per iteration */
    unsigned long sum = 0;
    static char stack[256 * 1024];
    if (!strcmp(kind, "swapcontext-fpdiff")) {
        co_inexact = 1;
        kind = "swapcontext";
    }
    if (!strcmp(kind, "swapcontext")) {
        getcontext(&co_ctx);
        co_ctx.uc_stack.ss_sp = stack;
        co_ctx.uc_stack.ss_size = sizeof stack;
        co_ctx.uc_link = 0;
        makecontext(&co_ctx, coroutine, 0);
    }
    int (*direct)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "privbox_bench_identity_getpid");
    if (!direct)
        direct = raw_getpid_function;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    for (int c = 0; c < CHUNKS; c++) {
        unsigned long long t0 = now_ns();
        if (!strcmp(kind, "getpid")) {
            for (long i = 0; i < n; i++)
                sum += (unsigned long)getpid();
        } else if (!strcmp(kind, "gettid")) {
            for (long i = 0; i < n; i++)
                sum += (unsigned long)gettid();
        } else if (!strcmp(kind, "getrandom")) {
            unsigned char buf[16];
            for (long i = 0; i < n; i++)
                sum += (unsigned long)getrandom(buf, sizeof buf, 0);
        } else if (!strcmp(kind, "sigprocmask")) {
            sigset_t old;
            for (long i = 0; i < n; i++) {
                sigprocmask(SIG_BLOCK, &usr1, &old);
                sum ^= (unsigned long)sigismember(&old, SIGUSR1) << (i & 7);
            }
        } else if (!strcmp(kind, "sigsetjmp")) {
            static sigjmp_buf env;
            static volatile long i;
            for (i = 0; i < n; i++) {
                if (sigsetjmp(env, 1) == 0)
                    siglongjmp(env, 1);
                sum++;
            }
        } else if (!strcmp(kind, "swapcontext")) {
            for (long i = 0; i < n; i++)
                swapcontext(&main_ctx, &co_ctx);
            sum = (unsigned long)co_count;
        } else if (!strcmp(kind, "raw-getpid")) {
            sum += raw_getpid_loop(n);
        } else if (!strcmp(kind, "direct-getpid")) {
            sum += direct_getpid_loop(n, direct);
        } else if (!strcmp(kind, "sched_getcpu")) {
            for (long i = 0; i < n; i++)
                sum += sched_getcpu() >= 0;
        } else {
            return 64;
        }
        unsigned long long per = (now_ns() - t0) * 1000ull / (unsigned long long)n;
        if (per < best)
            best = per;
    }
    if (!strcmp(kind, "getpid") || !strcmp(kind, "raw-getpid") || !strcmp(kind, "direct-getpid"))
        sum = sum == (unsigned long)getpid() * (unsigned long)(n * CHUNKS);
    else if (!strcmp(kind, "gettid"))
        sum = sum == (unsigned long)gettid() * (unsigned long)(n * CHUNKS);
    printf("%s %ld iterations: %lu\n", kind, n * CHUNKS, sum);
    fprintf(stderr, "%llu.%03llu\n", best / 1000, best % 1000);
    return 0;
}
