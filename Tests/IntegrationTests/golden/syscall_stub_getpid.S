// An inline `syscall` the identity executor answers (getpid) becomes a jump to its site's stub,
// which calls pb_copy_inline_getpid below the red zone and jumps back after the instruction.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    add $1, %eax
    ret
    .size golden_fn, . - golden_fn
