// The copy's unwind entry: the function's CFA program with every location moved to the copy's
// offsets (each advance becomes a DW_CFA_advance_loc4 to the new offset: the short branch widened
// before the push moves everything after it by 4, the stubbed syscall by 3); the rules themselves
// (def_cfa_offset, offset, remember/restore_state, def_cfa_register) are copied as they are; the
// range is the copy and the jump after it.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    test %edi, %edi
    je .Lnone
    push %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    mov %rsp, %rbp
    .cfi_def_cfa_register %rbp
    push %rbx
    .cfi_offset %rbx, -24
    mov $39, %eax
    syscall
site_getpid:
    mov %eax, %ebx
    cmp $1, %ebx
    .cfi_remember_state
    jne .Lmore
    pop %rbx
    pop %rbp
    .cfi_def_cfa %rsp, 8
    ret
.Lmore:
    .cfi_restore_state
    lea 1(%rbx), %eax
    pop %rbx
    pop %rbp
    .cfi_def_cfa %rsp, 8
    ret
.Lnone:
    xor %eax, %eax
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn
