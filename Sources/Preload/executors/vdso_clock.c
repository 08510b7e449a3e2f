/*
 * executors/vdso_clock.c — time and CPU queries that a program issues through syscall() (which always
 * enters the kernel) answered by the vDSO, as libc's own clock_gettime/gettimeofday/time/getcpu
 * already are.
 *
 * Why the answer equals the kernel's: the vDSO functions are the kernel's implementation of the
 * same calls, reading the clock data the kernel publishes; for a clock or a clock source they
 * cannot serve (a CPU-time clock, an unstable TSC) they make the syscall themselves. They return
 * 0 or -errno, which becomes syscall()'s -1 and errno here.
 *
 * Invalidated by: nothing (no state is kept). As with libc's own wrappers, a pointer that is not
 * writable faults in the vDSO instead of returning EFAULT.
 */
#include "executors/vdso.h"

#include <errno.h>
#include <sys/syscall.h>
#include <time.h>

static long (*pb_vclock_gettime)(long clock, void *ts);
static long (*pb_vgettimeofday)(void *tv, void *tz);
static long (*pb_vtime)(long *t);
static long (*pb_vgetcpu)(unsigned *cpu, unsigned *node, void *cache);

int pb_vdso_clock_syscall(long nr, long a1, long a2, long a3, long *out)
{
    long r;
    switch (nr) {
    case SYS_clock_gettime:
        if (!pb_vclock_gettime)
            return 0;
        r = pb_vclock_gettime(a1, (void *)a2);
        break;
    case SYS_gettimeofday:
        if (!pb_vgettimeofday)
            return 0;
        r = pb_vgettimeofday((void *)a1, (void *)a2);
        break;
    case SYS_time:
        if (!pb_vtime)
            return 0;
        *out = pb_vtime((long *)a1); /* time() returns the time, never -errno */
        return 1;
    case SYS_getcpu:
        if (!pb_vgetcpu)
            return 0;
        r = pb_vgetcpu((unsigned *)a1, (unsigned *)a2, (void *)a3);
        break;
    default:
        return 0;
    }
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        r = -1;
    }
    *out = r;
    return 1;
}

static const char *pb_vdso_clock_start(void)
{
    pb_vclock_gettime = (long (*)(long, void *))pb_vdso_lookup("__vdso_clock_gettime");
    pb_vgettimeofday = (long (*)(void *, void *))pb_vdso_lookup("__vdso_gettimeofday");
    pb_vtime = (long (*)(long *))pb_vdso_lookup("__vdso_time");
    pb_vgetcpu = (long (*)(unsigned *, unsigned *, void *))pb_vdso_lookup("__vdso_getcpu");
    if (!pb_vclock_gettime && !pb_vgettimeofday && !pb_vtime && !pb_vgetcpu)
        return "this kernel has no vDSO clock functions";
    return 0;
}

static int pb_vdso_clock_serves(unsigned nr)
{
    return nr == SYS_clock_gettime || nr == SYS_gettimeofday || nr == SYS_time || nr == SYS_getcpu;
}

/* Calibration: clock_gettime(CLOCK_MONOTONIC) through the vDSO, and made. */
static void pb_vdso_clock_served_once(void)
{
    struct timespec ts;
    long r;
    pb_vdso_clock_syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0, &r);
}
static void pb_vdso_clock_native_once(void)
{
    struct timespec ts;
    pb_raw_syscall6(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0, 0, 0, 0);
}

const struct pb_executor pb_exec_vdso_clock = {
    .name = "vdso-clock",
    .summary = "clock_gettime/gettimeofday/time/getcpu made through syscall() answered by the "
               "vDSO, as libc's own wrappers are",
    .serves = pb_vdso_clock_serves,
    .start = pb_vdso_clock_start,
    .served_once = pb_vdso_clock_served_once,
    .native_once = pb_vdso_clock_native_once,
};
