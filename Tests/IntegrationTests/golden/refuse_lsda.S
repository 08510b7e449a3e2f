// Refused: a function with exception landing pads (an LSDA in its unwind entry): their offsets
// would have to move with the code.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid, golden_personality
    .type golden_personality, @function
golden_personality:
    ret
    .size golden_personality, . - golden_personality
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    .cfi_personality 0x1b, golden_personality
    .cfi_lsda 0x1b, .Llsda
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    mov $39, %eax
    syscall
site_getpid:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
    .section .gcc_except_table, "a", @progbits
.Llsda:
    .byte 0xff, 0xff, 0x01, 0x00
