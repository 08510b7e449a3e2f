// A call to getuid through the GOT (call *getuid@GOTPCREL(%rip), as -fno-plt compiles it) at a
// profiled call site: the callee is named by the slot's relocation; the 6-byte call becomes the
// inline load and a 5-byte call to the stub.
// golden: site site_call call getuid
    .text
    .globl golden_fn, site_call
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    call *getuid@GOTPCREL(%rip)
site_call:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
