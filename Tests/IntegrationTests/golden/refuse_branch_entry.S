// Refused: a branch into the entry's first 5 bytes (here to +0x2), which the jump to the copy
// overwrites.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    xor %ecx, %ecx
.Lretry:
    mov $39, %eax
    syscall
site_getpid:
    inc %ecx
    cmp $2, %ecx
    jb .Lretry
    ret
    .size golden_fn, . - golden_fn
