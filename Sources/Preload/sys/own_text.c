/*
 * sys/own_text.c — where libprivbox.so's own code is (sys/own_text.h): a fact about this process's
 * memory that the executors (fusion) and inline discovery need, so it sits below both.
 *
 * May use: sys/ and Sources/CShim.
 */
#include "sys/own_text.h"

#include <elf.h>
#include <link.h>

static uintptr_t pb_own_text_start, pb_own_text_len;

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

static int pb_find_own_segment(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t probe = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (probe >= start && probe < start + ph->p_memsz) {
            pb_own_text_start = start;
            pb_own_text_len = ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

int pb_own_text(uintptr_t *start, uintptr_t *len)
{
    /* The segment holding this very function: privbox's code is one executable segment. */
    if (!pb_own_text_len)
        dl_iterate_phdr(pb_find_own_segment, (void *)(uintptr_t)pb_own_text);
    *start = pb_own_text_start;
    *len = pb_own_text_len;
    return pb_own_text_len ? 0 : -1;
}
