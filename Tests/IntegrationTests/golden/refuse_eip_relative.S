// Refused: a memory operand relative to %eip (the 0x67 address-size prefix). The address is the
// instruction's own, truncated to 32 bits, so the same bytes in the copy would read another
// address; only RIP-relative operands can be re-pointed.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    addr32 mov value(%eip), %ecx
    mov $39, %eax
    syscall
site_getpid:
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn

    .data
value:
    .long 7
