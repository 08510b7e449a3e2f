// Refused: no free memory within 1 GiB below the function for the copy: the function's bytes
// are placed at 0x11000 (option place-at), and below it there is only the 4 KiB above the
// 0x10000 floor this file keeps to, less than the copy's page and its guard.
// golden: site site_getpid inline getpid
// golden: option place-at 0x11000
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    ret
    .size golden_fn, . - golden_fn
