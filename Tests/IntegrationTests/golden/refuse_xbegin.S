// Refused: xbegin's relative operand (the abort address) is not re-pointed by this file.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    xbegin .Labort
    xend
.Labort:
    ret
    .size golden_fn, . - golden_fn
