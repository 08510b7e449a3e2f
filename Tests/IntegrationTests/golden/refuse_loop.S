// Refused: loop has no 32-bit relative form (it could not be widened to reach its target).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $3, %ecx
.Lagain:
    mov $39, %eax
    syscall
site_getpid:
    loop .Lagain
    ret
    .size golden_fn, . - golden_fn
