// Refused: a call whose target (2 GiB past the function: the raw rel32 0x7ffffff0) is out of
// reach of a 32-bit displacement from the copy, which lies below the function.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    test %eax, %eax
    je .Lout
    .byte 0xe8
    .long 0x7ffffff0
.Lout:
    ret
    .size golden_fn, . - golden_fn
