/*
 * profile/inline_discovery.h — profile mode's view of the system calls that bypass libc's wrappers,
 * through Syscall User Dispatch (profile/inline_discovery.c, PRIVBOX_INLINE=1): the selector a
 * wrapper clears around libc's call, and what the signal executors ask of it.
 */
#ifndef PRIVBOX_PROFILE_INLINE_DISCOVERY_H
#define PRIVBOX_PROFILE_INLINE_DISCOVERY_H

#include "sys/attributes.h"
#include "sys/kernel_abi.h"

#include <stddef.h>
#include <stdint.h>

/* Added to the syscall number a trapped (inline) call is counted under: x86-64 numbers are below
 * 512, and the slot key keeps 10 bits of the number. */
#define PB_INLINE_NR 512u
/* Non-zero while Syscall User Dispatch discovery runs in this process. */
extern volatile int pb_inline_on PB_HIDDEN;
extern int pb_inline_started PB_HIDDEN;
/* The registered thread's selector (in its never-freed table), null until registration. */
extern PB_TLS volatile unsigned char *pb_sud_selector PB_HIDDEN;
extern PB_TLS int pb_sud_depth PB_HIDDEN;
/* Around a libc call a wrapper makes: the call must not be dispatched. Nests (signal handlers). */
static inline int pb_inline_enter(void)
{
    if (PB_LIKELY(!pb_inline_on))
        return 0;
    pb_sud_depth++;
    volatile unsigned char *sel = pb_sud_selector;
    if (sel)
        __atomic_store_n(sel, 0, __ATOMIC_RELAXED);
    __asm__ volatile("" ::: "memory");
    return 1;
}
void pb_inline_leave_slow(unsigned nr) PB_HIDDEN;
static inline void pb_inline_leave(unsigned nr)
{
    __asm__ volatile("" ::: "memory");
    pb_inline_leave_slow(nr);
}
int pb_inline_start(char *why, size_t why_len) PB_HIDDEN;
void pb_inline_thread_start(void) PB_HIDDEN;
void pb_inline_after_fork_child(void) PB_HIDDEN;
void pb_inline_stop_all(void) PB_HIDDEN;
void pb_inline_totals(uint64_t *traps, uint32_t *threads_spent) PB_HIDDEN;
struct sigaction;
const struct sigaction *pb_inline_adjust_action(int sig, const struct sigaction *act,
                                                struct sigaction *copy) PB_HIDDEN;
void pb_inline_adjust_old(int sig, struct sigaction *old, int was_stripped) PB_HIDDEN;
int pb_inline_was_stripped(int sig) PB_HIDDEN;
int pb_inline_is_handler(void *handler) PB_HIDDEN;
/* syscall()'s view: a raw rt_sigaction gets SIGSYS out of its mask (the copy goes in *scratch,
 * 32 bytes) and one for SIGSYS, or a dispatch prctl, ends discovery. Returns the act argument. */
long pb_inline_filter_raw(long nr, long a1, long a2, void *scratch) PB_HIDDEN;
struct pb_thread_table *pb_my_table_get(void) PB_HIDDEN;

#endif
