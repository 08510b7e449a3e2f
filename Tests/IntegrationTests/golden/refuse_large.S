// Refused: a function larger than PB_COPY_MAX_BYTES (65536 bytes; this one is 65545).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    .fill 65537, 1, 0x90
    ret
    .size golden_fn, . - golden_fn
