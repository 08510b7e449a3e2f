// Refused: an unwind entry that does not cover exactly the function (it ends before the
// function's last instruction).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    mov $39, %eax
    syscall
site_getpid:
    .cfi_endproc
    ret
    .size golden_fn, . - golden_fn
