/*
 * sys/own_text.c — libprivbox.so's own code segment, which Syscall User Dispatch lets through
 * (pb_own_text), and the rt_sigreturn inside it (pb_own_text_restorer). Used by inline discovery
 * (profile/) and the fusion executor (executors/), the two users of dispatch. It reads the loader's
 * program headers (sys/modules.c), nothing else.
 */
#include "sys/own_text.h"
#include "sys/modules.h"

#include <elf.h>


/* The handler returns through this rt_sigreturn, inside libprivbox.so's allowed region: glibc's
 * __restore_rt, outside it, would itself be dispatched while the selector says BLOCK. (The fusion
 * executor's SIGSYS handler returns through it too.) */
__asm__(".text\n"
        ".globl pb_own_text_restorer\n"
        ".hidden pb_own_text_restorer\n"
        ".type pb_own_text_restorer, @function\n"
        ".p2align 4\n"
        "pb_own_text_restorer:\n"
        "    movq $15, %rax\n" /* SYS_rt_sigreturn */
        "    syscall\n"
        "    hlt\n"
        ".size pb_own_text_restorer, .-pb_own_text_restorer\n");

int pb_own_text(uintptr_t *start, uintptr_t *len)
{
    static uintptr_t text_start, text_len; /* found once: libprivbox.so does not move */
    struct pb_module_at own;
    if (!text_len && pb_module_at((uint64_t)(uintptr_t)pb_own_text_restorer, &own) == 0 &&
        (own.segment_flags & PF_X)) {
        text_start = own.segment_start;
        text_len = own.segment_end - own.segment_start;
    }
    *start = text_start;
    *len = text_len;
    return text_len ? 0 : -1;
}
