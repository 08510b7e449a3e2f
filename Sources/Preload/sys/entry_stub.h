/*
 * sys/entry_stub.h — how an interposed libc function is entered: the exported assembly stub that
 * jumps straight to libc while nothing watches its calls, the call site it reports, and the
 * failure tests a wrapper evaluates on libc's result. Used by wrappers/. Macros only.
 */
#ifndef PRIVBOX_SYS_ENTRY_STUB_H
#define PRIVBOX_SYS_ENTRY_STUB_H

#include <stdint.h>

/* Failure tests, evaluated on the wrapper's result `r`. */
#define PB_NEG1 (r == -1)               /* -1 and errno */
#define PB_ERRNUM (r != 0)              /* returns an error number (pthread-style) */
#define PB_MAPFAIL (r == MAP_FAILED)
#define PB_NULL (r == NULL)
#define PB_NEVER 0                      /* cannot fail */

#define PB_SITE ((uintptr_t)__builtin_return_address(0))

/* The exported entry of a fixed-arity wrapper (see interpose.c): when the int at `flag` (an
 * assembler operand such as "pb_counting" or "pb_hook_exec+4") is zero and libc's function is
 * resolved, a jump to libc's function; otherwise a jump to pb_slow_NAME. */
#define PB_ENTRY_STUB(name, flag) PB_ENTRY_STUB_AS(name, name, ".globl", flag)
/* The same code under the symbol `label` (with `binding` ".globl" or ".hidden"): the identity
 * wrappers' assembly entries fall back to it. */
#define PB_ENTRY_STUB_AS(label, name, binding, flag)                                                \
    __asm__(".text\n"                                                                               \
            binding " " #label "\n"                                                                 \
            ".type " #label ", @function\n"                                                         \
            ".p2align 4\n" #label ":\n"                                                             \
            "    movl " flag "(%rip), %eax\n"                                                       \
            "    testl %eax, %eax\n"                                                                \
            "    jnz pb_slow_" #name "\n"                                                           \
            "    movq pb_real_" #name "(%rip), %rax\n"                                              \
            "    testq %rax, %rax\n"                                                                \
            "    jz pb_slow_" #name "\n"                                                            \
            "    jmp *%rax\n"                                                                       \
            ".size " #label ", .-" #label "\n");

#endif
