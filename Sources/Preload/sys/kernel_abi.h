/*
 * sys/kernel_abi.h — the kernel interfaces the preload uses that distribution headers may lack or
 * that libc hides behind its own types: Syscall User Dispatch (Linux 5.11+) and the kernel's
 * struct sigaction for raw rt_sigaction. Definitions only.
 */
#ifndef PRIVBOX_SYS_KERNEL_ABI_H
#define PRIVBOX_SYS_KERNEL_ABI_H

#include <stdint.h>

/* Syscall User Dispatch (Linux 5.11+), for headers that predate it (after theirs, which glibc's
 * <signal.h> defines as an enumerator). */
#include <signal.h>
#include <sys/prctl.h>
#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif
/* The kernel's struct sigaction (raw rt_sigaction, 8-byte masks). */
struct pb_kernel_sigaction {
    void *handler; /* a handler, SIG_DFL or SIG_IGN */
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

#endif
