// Calls and jumps through the GOT (call *x@GOTPCREL(%rip), jmp *x@GOTPCREL(%rip)) and a GOT load,
// at no profiled site: copied with their displacements re-pointed at the same slots.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    call *write@GOTPCREL(%rip)
    mov read@GOTPCREL(%rip), %rcx
    mov $39, %eax
    syscall
site_getpid:
    add $8, %rsp
    .cfi_def_cfa_offset 8
    jmp *close@GOTPCREL(%rip)
    .cfi_endproc
    .size golden_fn, . - golden_fn
