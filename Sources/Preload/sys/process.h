/*
 * sys/process.h — the process-wide state every layer reads (defined in sys/process.c): what the
 * constructor decided (pb_proc), whether calls are counted (pb_counting), the flags the entry
 * stubs test (pb_hook_exec), and the two clocks and the floating-point guard privbox code uses.
 */
#ifndef PRIVBOX_SYS_PROCESS_H
#define PRIVBOX_SYS_PROCESS_H

#include "privbox_shim.h"
#include "sys/attributes.h"

#include <stdint.h>
#include <sys/types.h>
#include <x86intrin.h>

/* Process-wide state. Written by the constructor and at fork/exit, read on every wrapped call. */
struct pb_process {
    int mode;               /* enum pb_mode, after validation */
    int log_level;
    char profile_pattern[PB_PATH_MAX];
    char lib_dir[PB_PATH_MAX]; /* directory of libprivbox.so, where libprivbox_core.so lives */
    int copies;             /* PRIVBOX_COPY: 0 no instrumented copies, 1 where the profiled calls
                               repay them (rewriter/install.c), 2 (always) wherever one can serve */
    int gate;               /* PRIVBOX_GATE: copies may run in a privbox kernel's boxes */
    long pid;               /* at start, or in a fork child: what the profile is written under
                               if a seccomp filter refuses getpid by then */
    uint64_t start_ns, start_cycles;
    int log_fd_open;        /* fd 2 was open when the constructor ran: only then is fd 2 privbox's
                               to log to (sys/log.c, pb_log) */
};
extern struct pb_process pb_proc PB_HIDDEN;

/* Non-zero while wrapped calls are being counted. Read without synchronisation on every call:
 * a stale value only means one call more or less is counted around a mode change. */
extern volatile int pb_counting PB_HIDDEN;

/* What the assembly entry stubs test (one load each): pb_counting for the wrappers without an
 * executor, pb_hook_exec[e] for the wrappers executor e serves (= counting, or a route uses e). Kept in step by pb_hooks_update() (executors/executor_state.c) whenever pb_counting
 * or the routes change. */
extern volatile int pb_hook_exec[8] PB_HIDDEN;

static inline uint64_t pb_cycles(void) { return __rdtsc(); }
/* CLOCK_MONOTONIC in ns, through the vDSO: no system call, async-signal-safe. */
uint64_t pb_monotonic_ns(void) PB_HIDDEN;

/* The floating-point environment (x87 and SSE control/status), saved around privbox code that
 * may do floating-point arithmetic or runs code that does (the Swift core, libgcc's unwinder, the
 * exit-time writers): a sticky status flag such as FE_INEXACT left behind would be visible to the
 * program through fetestexcept(). */
struct pb_fpenv {
    uint8_t x87[28];
    uint32_t mxcsr;
};
static inline void pb_fpenv_save(struct pb_fpenv *e)
{
    __asm__ volatile("fnstenv %0\n\tfldenv %0\n\tstmxcsr %1" : "=m"(e->x87), "=m"(e->mxcsr));
}
static inline void pb_fpenv_restore(const struct pb_fpenv *e)
{
    __asm__ volatile("fldenv %0\n\tldmxcsr %1" : : "m"(e->x87), "m"(e->mxcsr));
}

#endif
