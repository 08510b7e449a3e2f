/*
 * exec_passthrough.c — the default executor: the call goes to libc's own wrapper, unchanged.
 *
 * Why the answer equals the kernel's: it is the kernel's (libc makes the syscall). Every site
 * without a route, every call an executor declines, and every site where sampling found an
 * executor slower than this runs here. It needs no state and nothing invalidates it.
 */
#include "executor.h"

static int pb_passthrough_serves(unsigned nr) { return 1; }
static const char *pb_passthrough_start(void) { return 0; }
static void pb_passthrough_calibrate(double *served, double *native)
{
    *served = *native = pb_measure_raw_syscall_cycles(5, 1000);
}

const struct pb_executor pb_exec_passthrough = {
    .name = "pass-through",
    .summary = "libc's wrapper, unchanged",
    .serves = pb_passthrough_serves,
    .start = pb_passthrough_start,
    .calibrate = pb_passthrough_calibrate,
};
