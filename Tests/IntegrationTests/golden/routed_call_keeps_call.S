// A routed call site whose executor has no copy entry (clock_gettime: the vDSO executor) keeps
// its call, re-pointed at the same PLT entry (the route alias for its new return address is
// added only when a route exists: none here). The inline getpid site is what makes the copy.
// golden: site site_clock call clock_gettime
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_clock, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $24, %rsp
    .cfi_def_cfa_offset 32
    mov $1, %edi
    mov %rsp, %rsi
    call clock_gettime@PLT
site_clock:
    mov $39, %eax
    syscall
site_getpid:
    add $24, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
