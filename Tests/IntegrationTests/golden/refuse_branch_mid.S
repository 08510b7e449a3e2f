// Refused: a branch into the middle of an instruction (+0x6, inside the mov at +0x5): the
// copy has no offset for it.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    test %edi, %edi
    nop
    nop
    nop
.Lmov:
    mov $39, %eax
    syscall
site_getpid:
    jne .Lmov+1
    ret
    .size golden_fn, . - golden_fn
