// Refused: an 8-byte read that starts before the function and overlaps its first 5 bytes
// (golden_fn-4: 4 of its 8 bytes are patched).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    mov golden_fn-4(%rip), %rcx
    ret
    .size golden_fn, . - golden_fn
