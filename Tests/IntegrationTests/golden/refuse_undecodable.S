// Refused: a byte that does not decode (0x06, push %es, is invalid in 64-bit mode): data inside
// the code, or code this file cannot read.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    ret
    .byte 0x06
    .size golden_fn, . - golden_fn
