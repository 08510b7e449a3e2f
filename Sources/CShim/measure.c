/*
 * measure.c — the raw costs `privbox doctor` reports and the profiler's projection uses.
 *
 * Both loops issue exactly what they name: an inline `syscall` instruction (no libc wrapper,
 * so no interposer and no errno handling is on the path) and a call to an empty function the
 * compiler may not inline. The difference of the two is the kernel-entry cost a semi-privileged
 * gate would remove. The raw system call itself is raw_syscall.c (inlined here: the loop times the instruction).
 */
#include "privbox_shim.h"
#include "raw_syscall_inline.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <x86intrin.h>

__attribute__((noinline)) static long pb_empty_function(long x)
{
    __asm__ volatile("" ::: "memory");
    return x;
}

static int pb_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pb_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, pb_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* 128 doubles: a frame of 1 KB (measure.c is linked into the preload too, where no function may
 * need more than 2 KB of stack); privbox doctor uses 64 batches. */
#define PB_MAX_BATCHES 128

double pb_measure_raw_syscall_cycles(int batches, int iterations)
{
    double per[PB_MAX_BATCHES];
    if (batches > PB_MAX_BATCHES) batches = PB_MAX_BATCHES;
    if (batches < 1 || iterations < 1) return 0;
    for (int b = 0; b < batches; b++) {
        unsigned long long t0 = __rdtsc();
        for (int i = 0; i < iterations; i++)
            pb_raw_syscall6_inline(SYS_getppid, 0, 0, 0, 0, 0, 0);
        per[b] = (double)(__rdtsc() - t0) / iterations;
    }
    return pb_median(per, batches);
}

double pb_measure_function_call_cycles(int batches, int iterations)
{
    double per[PB_MAX_BATCHES];
    if (batches > PB_MAX_BATCHES) batches = PB_MAX_BATCHES;
    if (batches < 1 || iterations < 1) return 0;
    long sink = 0;
    for (int b = 0; b < batches; b++) {
        unsigned long long t0 = __rdtsc();
        for (int i = 0; i < iterations; i++)
            sink += pb_empty_function(i);
        per[b] = (double)(__rdtsc() - t0) / iterations;
    }
    __asm__ volatile("" ::"r"(sink));
    return pb_median(per, batches);
}

static unsigned long long pb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

double pb_measure_cycles_per_ns(int ms)
{
    unsigned long long n0 = pb_now_ns(), c0 = __rdtsc();
    unsigned long long target = n0 + (unsigned long long)(ms > 0 ? ms : 1) * 1000000ull, n1;
    do {
        n1 = pb_now_ns();
    } while (n1 < target);
    unsigned long long c1 = __rdtsc();
    return (double)(c1 - c0) / (double)(n1 - n0);
}
