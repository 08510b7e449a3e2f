// Refused: a function with an unwind entry, when that entry cannot be registered with the
// program's unwinder (libgcc_s missing, or another unwinder raising the exceptions: the option
// builds as if so). Without the registration, an unwind through the copy would stop.
// golden: site site_getpid inline getpid
// golden: option no-unwinder
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
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
