// Refused: an instruction that refers to the entry's first 5 bytes (lea golden_fn+2(%rip)):
// after the patch they hold the jump to the copy, not what the program reads there.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    lea golden_fn+2(%rip), %rcx
    ret
    .size golden_fn, . - golden_fn
