// An unwind entry marked as a signal frame (augmentation "zRS"): the copy's CIE keeps the S.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    .cfi_signal_frame
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
