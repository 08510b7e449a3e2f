/*
 * raw_syscall.c — pb_raw_syscall6, the one raw system call every part of the preload uses (and
 * the CLI's measurements and file checks in Sources/CShim): a `syscall` instruction with six
 * argument registers, returning the kernel's value (-errno on error).
 *
 * Why raw: it goes through no libc wrapper, so no interposer (privbox's own, or another
 * preload's) sees privbox's calls, the program's errno is never touched, nothing takes a lock or
 * is a cancellation point (it is safe in signal handlers, fork children and before libc is fully
 * set up), and, being libprivbox.so's own code, it is in the region Syscall User Dispatch lets
 * through (Sources/Preload/sys/own_text.c) while the program's calls trap. A function, so that
 * every caller shares one definition; measure.c times the instruction itself
 * (raw_syscall_inline.h), inlined as it was before this file was split from measure.c.
 */
#include "privbox_shim.h"
#include "raw_syscall_inline.h"

long pb_raw_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    return pb_raw_syscall6_inline(nr, a1, a2, a3, a4, a5, a6);
}
