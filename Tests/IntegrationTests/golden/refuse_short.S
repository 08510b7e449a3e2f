// Refused: a function shorter than the 5-byte jump its entry needs (3 bytes).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    syscall
site_getpid:
    ret
    .size golden_fn, . - golden_fn
