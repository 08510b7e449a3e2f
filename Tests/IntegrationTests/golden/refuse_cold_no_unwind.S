// Refused: a jump out of the function to code with no unwind entry, that is neither another
// function's start (by its unwind entry) nor a PLT entry: this file cannot bound that part, so
// cannot check where it jumps.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    test %eax, %eax
    js golden_elsewhere
    ret
    .size golden_fn, . - golden_fn

    .section .text.unlikely, "ax", @progbits
    .globl golden_elsewhere
golden_elsewhere:
    xor %eax, %eax
    ret
