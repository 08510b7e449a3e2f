/*
 * executors/vdso.h — the entry points of the two vDSO executors (executors/vdso_random.c,
 * executors/vdso_clock.c say why their answers are the kernel's). getrandom's assembly fast entry
 * (wrappers/interpose_routed.c) also reads vdso_random.c's pb_vgetrandom, pb_vgetrandom_state_size
 * and pb_vgetrandom_my_state, by name.
 *
 * May use: executors/ and sys/ (declarations only).
 */
#ifndef PRIVBOX_EXEC_VDSO_H
#define PRIVBOX_EXEC_VDSO_H

#include "executors/executor.h"

/* Each returns 1 and stores the answer, or 0 to decline. */
int pb_vdso_getrandom(void *buf, size_t len, unsigned flags, ssize_t *out) PB_HIDDEN;
/* The vDSO's error (-errno) as the C library returns it: errno set, -1. */
ssize_t pb_vdso_getrandom_failed(long r) PB_HIDDEN;
/* clock_gettime/gettimeofday/time/getcpu as syscall(nr, a1, a2, a3) would answer them. */
int pb_vdso_clock_syscall(long nr, long a1, long a2, long a3, long *out) PB_HIDDEN;

#endif
