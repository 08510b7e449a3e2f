// A call to gettid at a profiled call site: the inline load is the thread's own tid (pb_my_tid,
// at its fixed %fs offset), served only while it was read under the current pid word.
// golden: site site_call call gettid
    .text
    .globl golden_fn, site_call
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    call gettid@PLT
site_call:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
