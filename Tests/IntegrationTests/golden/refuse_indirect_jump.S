// Refused: an indirect jump (a jump table) could land in the original (correct, but not
// instrumented) or in the entry's patched bytes.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    lea golden_table(%rip), %rcx
    jmp *(%rcx,%rdi,8)
    ret
    .section .rodata
    .globl golden_table
    .type golden_table, @object
golden_table:
    .quad 0
    .size golden_table, . - golden_table
    .text
    .size golden_fn, . - golden_fn
