/*
 * wrappers/setjmp_context.S — the signal-mask executor's wrappers that must not have a stack frame:
 * __sigsetjmp/setjmp (they return twice), swapcontext and setcontext (they switch stacks).
 *
 * When pb_hook_exec[PB_EXEC_SIGMASK] (offset 16) is zero they jump straight to glibc's own. Otherwise
 * they do what glibc 2.36 does on x86-64 — the same registers into the same slots of jmp_buf and
 * ucontext_t, rbp/rsp/pc of a jmp_buf mangled with the thread's pointer guard (%fs:0x30) — except
 * that the rt_sigprocmask glibc would make is made by pb_sigsetjmp_finish/pb_swapcontext_mask
 * (wrappers/sigmask_wrappers.c), which serve it without the kernel where the mask is known and routed, and
 * otherwise make it and keep the record. Buffers written here are read correctly by glibc's
 * longjmp and setcontext and the other way round. (glibc 2.36 on this kernel runs without CET
 * shadow stacks, whose extra slot these do not fill; `privbox doctor` checks.)
 */
    .text

/* Falls through when privbox handles the call (pb_hook_exec[PB_EXEC_SIGMASK], at offset 16, is
 * set, or glibc's function is not resolved yet); otherwise jumps to glibc's function. */
.macro PB_SIGMASK_HOOK_OR_REAL real
    movl pb_hook_exec+16(%rip), %eax
    testl %eax, %eax
    jnz 1f
    movq \real(%rip), %rax
    testq %rax, %rax
    jz 1f
    jmp *%rax
1:
.endm

/* glibc's PTR_MANGLE on x86-64: xor with the thread's pointer guard, rotate left by 17. */
.macro PB_PTR_MANGLE reg
    xorq %fs:0x30, \reg
    rolq $0x11, \reg
.endm

/* int __sigsetjmp(struct __jmp_buf_tag *env, int savemask) */
    .globl __sigsetjmp
    .type __sigsetjmp, @function
    .p2align 4
__sigsetjmp:
pb_sigsetjmp_entry:
    .cfi_startproc
    PB_SIGMASK_HOOK_OR_REAL pb_real___sigsetjmp
    movq %rbx, 0(%rdi)
    movq %rbp, %rax
    PB_PTR_MANGLE %rax
    movq %rax, 8(%rdi)
    movq %r12, 16(%rdi)
    movq %r13, 24(%rdi)
    movq %r14, 32(%rdi)
    movq %r15, 40(%rdi)
    leaq 8(%rsp), %rdx
    PB_PTR_MANGLE %rdx
    movq %rdx, 48(%rdi)
    movq (%rsp), %rax
    PB_PTR_MANGLE %rax
    movq %rax, 56(%rdi)
    movq (%rsp), %rdx           /* the call site */
    jmp pb_sigsetjmp_finish     /* returns 0 to our caller */
    .cfi_endproc
    .size __sigsetjmp, .-__sigsetjmp

/* int setjmp(jmp_buf env): glibc's saves the mask (BSD semantics). */
    .globl setjmp
    .type setjmp, @function
    .p2align 4
setjmp:
    .cfi_startproc
    movl $1, %esi
    jmp pb_sigsetjmp_entry
    .cfi_endproc
    .size setjmp, .-setjmp

/* int swapcontext(ucontext_t *oucp, const ucontext_t *ucp) — offsets are ucontext_t's, checked
 * by _Static_assert in wrappers/sigmask_wrappers.c. */
    .globl swapcontext
    .type swapcontext, @function
    .p2align 4
swapcontext:
    .cfi_startproc
    PB_SIGMASK_HOOK_OR_REAL pb_real_swapcontext
    movq %rbx, 0x80(%rdi)
    movq %rbp, 0x78(%rdi)
    movq %r12, 0x48(%rdi)
    movq %r13, 0x50(%rdi)
    movq %r14, 0x58(%rdi)
    movq %r15, 0x60(%rdi)
    movq %rdi, 0x68(%rdi)
    movq %rsi, 0x70(%rdi)
    movq %rdx, 0x88(%rdi)
    movq %rcx, 0x98(%rdi)
    movq %r8, 0x28(%rdi)
    movq %r9, 0x30(%rdi)
    movq (%rsp), %rcx
    movq %rcx, 0xa8(%rdi)
    leaq 8(%rsp), %rcx
    movq %rcx, 0xa0(%rdi)
    leaq 0x1a8(%rdi), %rcx
    movq %rcx, 0xe0(%rdi)
    fnstenv (%rcx)
    movzwl 24(%rcx), %r10d      /* the x87 data selector (FDS), before stmxcsr overwrites it */
    stmxcsr 0x1c0(%rdi)
    /* The mask, through wrappers/sigmask_wrappers.c. rbx and r12 are saved in oucp already. */
    movq %rdi, %rbx
    movq %rsi, %r12
    movq (%rsp), %rdx
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    movq %r10, (%rsp)
    call pb_swapcontext_mask
    movq (%rsp), %r10
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    testl %eax, %eax
    jnz 2f
    movq %r12, %rdx
    movq 0xe0(%rdx), %rcx
    /* fldenv of an environment equal to the one just saved changes nothing but the control
     * word, whose exception masks fnstenv set: then fldcw of the saved control word has exactly
     * its effect (the same pending-exception rule applies to both), at a fraction of the cost
     * (fnstenv + fldenv take ~70 ns here). Equal means the 24 bytes fnstenv wrote and the 16-bit
     * FDS it saved, which fldenv would also load. Likewise MXCSR is loaded only if it differs. */
    movq (%rcx), %rax
    cmpq 0x1a8(%rbx), %rax
    jne 6f
    movq 8(%rcx), %rax
    cmpq 0x1b0(%rbx), %rax
    jne 6f
    movq 16(%rcx), %rax
    cmpq 0x1b8(%rbx), %rax
    jne 6f
    movzwl 24(%rcx), %eax
    cmpl %r10d, %eax
    jne 6f
    fldcw (%rcx)
    jmp 7f
6:
    fldenv (%rcx)
7:
    movl 0x1c0(%rdx), %eax
    cmpl 0x1c0(%rbx), %eax
    je 8f
    ldmxcsr 0x1c0(%rdx)
8:
    movq 0xa0(%rdx), %rsp
    movq 0x80(%rdx), %rbx
    movq 0x78(%rdx), %rbp
    movq 0x48(%rdx), %r12
    movq 0x50(%rdx), %r13
    movq 0x58(%rdx), %r14
    movq 0x60(%rdx), %r15
    movq 0xa8(%rdx), %rcx
    pushq %rcx
    movq 0x68(%rdx), %rdi
    movq 0x70(%rdx), %rsi
    movq 0x98(%rdx), %rcx
    movq 0x28(%rdx), %r8
    movq 0x30(%rdx), %r9
    movq 0x88(%rdx), %rdx
    xorl %eax, %eax
    ret
2:  /* the mask call failed (errno is set): no switch; give back what we borrowed */
    fldenv 0x1a8(%rbx)
    movq %rbx, %rdi
    movq 0x80(%rdi), %rbx
    movq 0x48(%rdi), %r12
    movl $-1, %eax
    ret
    .cfi_endproc
    .size swapcontext, .-swapcontext

/* int setcontext(const ucontext_t *ucp): glibc's sets the mask with an inline syscall, so the
 * record is marked unknown first, then glibc's runs. */
    .globl setcontext
    .type setcontext, @function
    .p2align 4
setcontext:
    .cfi_startproc
    movl pb_hook_exec+16(%rip), %eax
    testl %eax, %eax
    jz 1f
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    call pb_setcontext_before   /* rdi: ucp */
    popq %rdi
    .cfi_adjust_cfa_offset -8
1:
    movq pb_real_setcontext(%rip), %rax
    testq %rax, %rax
    jnz 2f
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    call pb_setcontext_resolve
    popq %rdi
    .cfi_adjust_cfa_offset -8
2:
    jmp *%rax
    .cfi_endproc
    .size setcontext, .-setcontext

/* pb_start_context, the return address makecontext'd functions are given, is the signal-mask
 * executor's (executors/sigmask.c): it bumps the record's epoch. */

    .section .note.GNU-stack,"",@progbits
