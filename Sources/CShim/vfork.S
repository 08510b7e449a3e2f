/*
 * vfork — forwarded without a stack frame.
 *
 * The child of vfork() runs on the parent's stack until it calls execve or _exit. A C wrapper
 * would return into its own frame in the child, and the child's later calls would overwrite the
 * frame the parent then returns through. So this wrapper is a bare tail jump to libc's vfork:
 * the return address the program pushed is the only frame, exactly as without privbox.
 */
    .text
    .globl vfork
    .type vfork, @function
vfork:
    .cfi_startproc
    movq pb_real_vfork(%rip), %rax
    testq %rax, %rax
    jz 1f
    jmp *%rax
1:
    /* Not resolved yet (vfork called from a constructor that ran before ours): resolve in a
     * normal call, which returns before the fork happens, then jump. */
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    call pb_vfork_resolve
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    jmp *%rax
    .cfi_endproc
    .size vfork, .-vfork

    .section .note.GNU-stack,"",@progbits
