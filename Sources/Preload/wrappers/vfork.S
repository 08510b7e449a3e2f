/*
 * vfork — without a stack frame of privbox's in the child.
 *
 * The child of vfork() runs on the parent's stack until it calls execve or _exit. A C wrapper
 * would return into its own frame in the child, and the child's later calls would overwrite the
 * frame the parent then returns through. So:
 *  - when no executor keeps state (off and profile modes), this is a bare tail jump to libc's
 *    vfork: the return address the program pushed is the only frame, exactly as without privbox;
 *  - when executors keep state (pb_vfork_tracked), it is glibc 2.36's own vfork sequence (pop the
 *    return address into a register the kernel preserves, SYS_vfork, push it back), with a call
 *    before it (pb_vfork_before: the identity cache is not used while a child may run on this
 *    memory) and one in the parent after it (pb_vfork_after: the child ran on this thread's TLS,
 *    so its records are forgotten). The child itself runs no privbox code.
 */
    .text
    .globl vfork
    .type vfork, @function
    .p2align 4
vfork:
    .cfi_startproc
    movl pb_vfork_tracked(%rip), %eax
    testl %eax, %eax
    jnz 3f
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
3:
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    call pb_vfork_before
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %rdi
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rdi
    movl $58, %eax              /* SYS_vfork */
    syscall
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rip, 0
    testq %rax, %rax
    jz 4f                       /* the child: return 0, touching nothing */
    movq %rax, %rdi
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    call pb_vfork_after         /* the parent (or no child): rax = pid, or -1 with errno */
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
4:
    ret
    .cfi_endproc
    .size vfork, .-vfork

    .section .note.GNU-stack,"",@progbits
