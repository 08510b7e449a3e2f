/*
 * executors/records.h — what a process-creation call, or a call the program makes through
 * syscall(), does to the records executors keep (identity's cache, the signal-mask record): the
 * one interface clone() and syscall() (wrappers/interpose_routed.c) ask, so that the wrappers only
 * route and each executor's knowledge stays in executors/.
 *
 * May use: executors/ and sys/ (declarations only).
 */
#ifndef PRIVBOX_EXEC_RECORDS_H
#define PRIVBOX_EXEC_RECORDS_H

#include "executors/executor.h"

#include <sys/syscall.h>

/* A child is about to be made with these clone flags: one that shares the memory (CLONE_VM)
 * defeats per-process and per-thread records. Nothing to do unless pb_vfork_tracked. */
void pb_executors_see_clone(unsigned long flags) PB_HIDDEN;
/* Whether syscall(nr, ...) can touch a record at all: the calls pb_executors_raw_call_begin acts on.
 * Inline, so that every other call through syscall() pays a compare, not a call. */
static inline int pb_raw_call_touches_records(long nr)
{
    switch (nr) {
    case SYS_clone: case SYS_clone3: case SYS_vfork:
    case SYS_rt_sigaction: case SYS_rt_sigprocmask: case SYS_rt_sigreturn:
    case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid: case SYS_setresuid:
    case SYS_setresgid: case SYS_setpgid: case SYS_setsid: case SYS_unshare: case SYS_setns:
        return 1;
    }
    return 0;
}
/* Before syscall(nr, a1, ...), while pb_vfork_tracked: records what the call will do. 1 when the
 * call changes identity (set*id, setpgid, setsid, unshare, setns): the caller then makes it and
 * calls pb_executors_raw_call_end(nr) after it (errno is the caller's to keep). */
int pb_executors_raw_call_begin(long nr, long a1) PB_HIDDEN;
void pb_executors_raw_call_end(long nr) PB_HIDDEN;
/* Around a vfork (vfork.S, through wrappers/interpose_routed.c): the child borrows this thread's
 * memory, thread-local storage and file descriptions. */
void pb_executors_vfork_begin(void) PB_HIDDEN;
void pb_executors_vfork_end(void) PB_HIDDEN;
/* A seccomp filter is being installed (accelerate/routes.c, pb_executors_stop, after it set
 * pb_executors_stopped): no identity value is served or cached again, the mask is not tracked. */
void pb_executors_stop_records(const char *why) PB_HIDDEN;

#endif
