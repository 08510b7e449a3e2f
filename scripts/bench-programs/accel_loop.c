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
 */
#define _GNU_SOURCE
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
                        "swapcontext|swapcontext-fpdiff|sched_getcpu N\n");
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
    if (!strcmp(kind, "getpid"))
        sum = sum == (unsigned long)getpid() * (unsigned long)(n * CHUNKS);
    else if (!strcmp(kind, "gettid"))
        sum = sum == (unsigned long)gettid() * (unsigned long)(n * CHUNKS);
    printf("%s %ld iterations: %lu\n", kind, n * CHUNKS, sum);
    fprintf(stderr, "%llu.%03llu\n", best / 1000, best % 1000);
    return 0;
}
