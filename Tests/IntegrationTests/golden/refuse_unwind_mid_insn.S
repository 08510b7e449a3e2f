// Refused: an unwind row that starts inside an instruction (after the 0x66 prefix of the
// 2-byte nop at +0x4, as capstone decodes it): the copy has no offset for that location.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .byte 0x66
    .cfi_def_cfa_offset 16
    nop
    mov $39, %eax
    syscall
site_getpid:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
