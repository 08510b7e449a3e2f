// Refused: the module's unwind table index (.eh_frame_hdr) is not in the one encoding this file
// reads (version 1, a table of datarel sdata4 pairs). Here the linker wrote an index without a
// table: it could not read an unwind entry with a CFA instruction it does not know (0x1c,
// DW_CFA_lo_user, written with .cfi_escape; ld says "no .eh_frame_hdr table will be created").
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    .cfi_escape 0x1c
    mov $39, %eax
    syscall
site_getpid:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
