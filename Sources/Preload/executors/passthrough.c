/*
 * executors/passthrough.c — the default executor: the call goes to libc's own wrapper, unchanged.
 *
 * Why the answer equals the kernel's: it is the kernel's (libc makes the syscall). Every site
 * without a route, every call an executor declines, and every site where sampling found an
 * executor slower than this runs here. It needs no state and nothing invalidates it.
 */
#include "executors/executor.h"

#include <sys/syscall.h>

static int pb_passthrough_serves(unsigned nr) { return 1; }
static const char *pb_passthrough_start(void) { return 0; }
static void pb_passthrough_once(void) { pb_raw_syscall6(SYS_getppid, 0, 0, 0, 0, 0, 0); }

const struct pb_executor pb_exec_passthrough = {
    .name = "pass-through",
    .summary = "libc's wrapper, unchanged",
    .serves = pb_passthrough_serves,
    .start = pb_passthrough_start,
    .served_once = pb_passthrough_once,
    .native_once = pb_passthrough_once,
};
