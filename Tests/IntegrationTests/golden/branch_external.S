// Branches that leave the function: a call and a tail jump to another function (which has its
// own unwind entry, so the tail jump is not taken for a .cold part) keep their targets; only their
// displacements change.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, golden_helper, site_getpid
    .type golden_helper, @function
golden_helper:
    .cfi_startproc
    ret
    .cfi_endproc
    .size golden_helper, . - golden_helper

    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    call golden_helper
    mov $39, %eax
    syscall
site_getpid:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    jmp golden_helper
    .cfi_endproc
    .size golden_fn, . - golden_fn
