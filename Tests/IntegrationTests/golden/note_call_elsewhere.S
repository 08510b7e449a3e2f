// A call site recorded for getpid whose call goes to another function (write: the recorded return
// address can also be a call to a function that tail-calls the wrapper) is left as it is, with a
// note naming the callee; the other site is still instrumented.
// golden: site site_call call getpid
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_call, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    call write@PLT
site_call:
    mov $39, %eax
    syscall
site_getpid:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
