// Refused: the entry cannot be patched (a seccomp filter fails both ways: opening
// /proc/self/mem for writing, and making the page read+write). The copy stays mapped, unused.
// golden: site site_getpid inline getpid
// golden: option deny-patch
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    ret
    .size golden_fn, . - golden_fn
