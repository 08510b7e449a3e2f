// Refused: an unwind entry whose CFA program has an instruction this file does not translate
// (0x1d, DW_CFA_MIPS_advance_loc8, which the linker accepts; written with .cfi_escape).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    .cfi_escape 0x1d, 0, 0, 0, 0, 0, 0, 0, 0
    mov $39, %eax
    syscall
site_getpid:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
