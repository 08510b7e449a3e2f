// A call to the interposed getpid wrapper at a profiled call site: in the copy, the cached value's
// load inline (valid word: its low 32 bits in %eax, the count word set, the call skipped), then a
// call to the site's stub, which jumps to pb_copy_call_getpid. The call still ends the
// instruction's new bytes, so the return address is the copy's next instruction.
// golden: site site_call call getpid
    .text
    .globl golden_fn, site_call
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    call getpid@PLT
site_call:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
