/*
 * executors/executor_state.c — the executor protocol's state: the table of executors, which have
 * started (or why they cannot run), which are routed, withdrawn or stopped, and the hooks the
 * wrappers' entry stubs test (pb_hook_exec).
 *
 * Why here and not with the routes (accelerate/): executors read and change this state themselves
 * — fusion needs the signal-mask executor started and withdraws its own routes when they do not
 * repay, identity stops caching once the executors are stopped — and an executor may call only
 * executors/ and sys/. Accelerate, above, writes pb_exec_routed when it publishes routes and reads
 * pb_exec_withdrawn; the copies (rewriter/) start the identity executor through pb_exec_ready.
 *
 * May use: executors/ (the executors' definitions, for the table) and sys/.
 */
#include "executors/executor.h"
#include "executors/sigmask.h"

const struct pb_executor *const pb_executors[PB_EXEC_COUNT] = {
    [PB_EXEC_PASSTHROUGH] = &pb_exec_passthrough,
    [PB_EXEC_IDENTITY] = &pb_exec_identity,
    [PB_EXEC_VDSO_RANDOM] = &pb_exec_vdso_random,
    [PB_EXEC_VDSO_CLOCK] = &pb_exec_vdso_clock,
    [PB_EXEC_SIGMASK] = &pb_exec_sigmask,
    [PB_EXEC_FUSION] = &pb_exec_fusion,
};

/* pb_hook_exec, what the assembly entry stubs test (index e for the wrappers executor e serves;
 * eight slots, a fixed layout the stubs' operands "pb_hook_exec+4", ... rely on), is process state
 * every layer reads: sys/process.c defines it; pb_hooks_update below keeps it in step. */
volatile int pb_exec_routed[PB_EXEC_COUNT];
volatile int pb_exec_withdrawn[PB_EXEC_COUNT];
volatile int pb_executors_stopped;
volatile int pb_vfork_tracked;

/* Per executor: 0 not tried, 1 started, -1 cannot run here (reason in pb_exec_why). */
static int pb_exec_state[PB_EXEC_COUNT];
static const char *pb_exec_why[PB_EXEC_COUNT];
/* Per executor, from the calibration file: 1 = the machine says it loses. */
static int pb_exec_calibrated_off[PB_EXEC_COUNT];

enum pb_executor_id pb_executor_for_syscall(unsigned nr)
{
    for (int e = PB_EXEC_PASSTHROUGH + 1; e < PB_EXEC_COUNT; e++)
        if (pb_executors[e]->serves(nr))
            return (enum pb_executor_id)e;
    return PB_EXEC_PASSTHROUGH;
}

void pb_exec_calibrated_slower(enum pb_executor_id e) { pb_exec_calibrated_off[e] = 1; }

int pb_exec_ready(enum pb_executor_id e)
{
    if (pb_executors_stopped && pb_exec_state[e] != -1) {
        pb_exec_state[e] = -1;
        pb_exec_why[e] = "stopped: the program installed a seccomp filter";
    }
    if (pb_exec_state[e] == 0) {
        if (pb_exec_calibrated_off[e]) {
            pb_exec_why[e] = "the machine's calibration says it is slower than the syscall";
            pb_exec_state[e] = -1;
        } else {
            const char *why = pb_executors[e]->start();
            pb_exec_state[e] = why ? -1 : 1;
            pb_exec_why[e] = why;
        }
    }
    return pb_exec_state[e] == 1;
}

int pb_exec_started(enum pb_executor_id e) { return pb_exec_state[e] == 1; }

const char *pb_exec_why_not(enum pb_executor_id e)
{
    return pb_exec_state[e] == -1 ? pb_exec_why[e] : 0;
}

void pb_hooks_update(void)
{
    pb_vfork_tracked = pb_exec_state[PB_EXEC_IDENTITY] == 1 || pb_exec_state[PB_EXEC_SIGMASK] == 1;
    for (int e = 0; e < PB_EXEC_COUNT; e++)
        pb_hook_exec[e] = pb_counting || pb_exec_routed[e] ||
                          (e == PB_EXEC_SIGMASK && pb_sigmask_tracking);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
