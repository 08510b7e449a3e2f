// Short conditional branches (jcc rel8, 2 bytes) become jcc rel32 (0f 8x, 6 bytes): the copy's
// offsets after each one move by 4, and each branch lands on its target's new offset.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    test %edi, %edi
    je .Lzero
    mov $39, %eax
    syscall
site_getpid:
    cmp $1, %eax
    jne .Lout
    add $2, %eax
.Lzero:
    xor %eax, %eax
.Lout:
    ret
    .size golden_fn, . - golden_fn
