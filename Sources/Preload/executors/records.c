/*
 * executors/records.c — keeping executors' records exact across calls privbox only sees go by:
 * a clone() or a clone/clone3/vfork through syscall() that shares the memory, a raw signal-state
 * change, and identity changes made through syscall() (records.h). Which executor is affected, and
 * how, is decided here, with the executors' own entry points (identity.h, sigmask.h, fusion.h);
 * so is what a vfork and a seccomp filter's installation do to them.
 *
 * May use: executors/ and sys/.
 */
#include "executors/records.h"
#include "executors/fusion.h"
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

/* The set of calls here is pb_raw_call_touches_records's (records.h), which the wrapper tests first. */
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
        /* The rest of pb_raw_call_touches_records's set: set*id, setpgid, setsid, unshare, setns. */
        if (!pb_raw_call_touches_records(nr))
            return 0;
        pb_identity_change_begin();
        return 1;
    }
}

void pb_executors_vfork_begin(void)
{
    pb_fuse_flush(); /* the child runs without dispatch, on the same file descriptions */
    pb_sigmask_vfork_save();
    pb_identity_vfork_begin();
}

void pb_executors_vfork_end(void)
{
    /* In the parent, the child has exec'd or exited; it ran on this thread's memory and TLS. */
    pb_identity_vfork_end();
    pb_sigmask_vfork_restore();
    pb_sigmask_invalidate();
}

/* The identity executor's change-in-flight count is raised and never lowered, which invalidates
 * every value (the copies' entries and the wrappers' fast paths then ask the kernel); the
 * signal-mask record is no longer followed. */
void pb_executors_stop_records(const char *why)
{
    pb_identity_change_begin();
    pb_sigmask_disable(why);
}

void pb_executors_raw_call_end(long nr)
{
    pb_identity_change_end(nr == SYS_unshare || nr == SYS_setns, nr == SYS_unshare || nr == SYS_setns);
}
