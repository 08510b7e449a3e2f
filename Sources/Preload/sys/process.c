/*
 * sys/process.c — the definitions of the process-wide state of sys/process.h. The constructor
 * (runtime.c) fills pb_proc; profile/ and accelerate/ switch pb_counting, the executor protocol
 * (executors/executor_state.c) keeps pb_hook_exec in step; every layer reads them. It calls nothing but the vDSO's clock.
 */
#include "sys/process.h"

#include <time.h>

struct pb_process pb_proc;
volatile int pb_counting;
volatile int pb_hook_exec[8];

uint64_t pb_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall, async-signal-safe */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
