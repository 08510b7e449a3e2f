// Refused: jrcxz has no 32-bit relative form.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    jrcxz .Lout
    inc %eax
.Lout:
    ret
    .size golden_fn, . - golden_fn
