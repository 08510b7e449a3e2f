/*
 * raw_syscall_inline.h — the `syscall` instruction of pb_raw_syscall6 (raw_syscall.c), for the two
 * places that need it inline: raw_syscall.c itself and measure.c's loop, whose figure is the cost
 * of the instruction alone (as it was when both lived in one file and the compiler inlined it).
 * Private to Sources/CShim; everything else calls pb_raw_syscall6.
 */
#ifndef PRIVBOX_RAW_SYSCALL_INLINE_H
#define PRIVBOX_RAW_SYSCALL_INLINE_H

static inline long pb_raw_syscall6_inline(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    long ret;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#endif
