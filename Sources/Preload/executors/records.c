/*
 * executors/records.c — keeping executors' records exact across calls privbox only sees go by:
 * a clone() or a clone/clone3/vfork through syscall() that shares the memory, a raw signal-state
 * change, and identity changes made through syscall() (records.h). Which executor is affected, and
 * how, is decided here, with the executors' own entry points (identity.h, sigmask.h).
 *
 * May use: executors/ and sys/.
 */
#include "executors/records.h"
#include "executors/identity.h"
#include "executors/sigmask.h"

#include <linux/sched.h>
#include <sched.h>

void pb_executors_see_clone(unsigned long flags)
{
    if (!(flags & CLONE_VM) || !pb_vfork_tracked)
        return;
    pb_identity_shared_memory_child((flags & CLONE_THREAD) != 0);
    pb_sigmask_disable("a child sharing the memory was made with clone()");
}

/* Calls made through syscall() that change what the identity executor records. */
static int pb_syscall_changes_identity(long nr)
{
    switch (nr) {
    case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid: case SYS_setresuid:
    case SYS_setresgid: case SYS_setpgid: case SYS_setsid: case SYS_unshare: case SYS_setns:
        return 1;
    }
    return 0;
}

int pb_executors_raw_call_begin(long nr, long a1)
{
    switch (nr) {
    case SYS_clone:
        pb_executors_see_clone((unsigned long)a1);
        return 0;
    case SYS_clone3:
        if (a1)
            pb_executors_see_clone((unsigned long)((const struct clone_args *)a1)->flags);
        return 0;
    case SYS_vfork:
        pb_executors_see_clone(CLONE_VM);
        return 0;
    case SYS_rt_sigaction: case SYS_rt_sigprocmask: case SYS_rt_sigreturn:
        pb_sigmask_disable("syscall() changed signal state directly");
        return 0;
    default:
        if (!pb_syscall_changes_identity(nr))
            return 0;
        pb_identity_change_begin();
        return 1;
    }
}

void pb_executors_raw_call_end(long nr)
{
    pb_identity_change_end(nr == SYS_unshare || nr == SYS_setns, nr == SYS_unshare || nr == SYS_setns);
}
