/*
 * rewriter/copy_entries.S — what the call sites of an instrumented copy (stubs.c) jump to.
 *
 * Two kinds of entry per identity value (getpid, getuid, geteuid, getgid, getegid, getpgrp,
 * gettid), each answering from the identity executor's cache (executors/identity.c says why a valid
 * cached value is the kernel's answer; these entries serve only valid values and otherwise fill
 * the cache through the same C code as the wrappers, or make the call):
 *
 *  - pb_copy_inline_NAME replaces a `syscall` instruction. Its site stub (stubs.c) moved the
 *    stack pointer below the red zone and called it; everything the kernel would preserve is
 *    preserved here: every register except rax (the result), rcx and r11 (which the kernel
 *    clobbers too: they hold other values than the kernel's return address and flags, which no
 *    compiler or libc reads after a `syscall`), and the arithmetic flags, saved with lahf/seto and
 *    restored with add/sahf (popfq would cost more than the whole answer). On return, rcx is 1 if
 *    the value is in rax; 0 if it is not (rax holds another number than the one the profile
 *    recorded, or nothing is cached and the executor declines to ask): rax then holds the number
 *    again, and the stub, back at the program's stack pointer, executes the `syscall` itself.
 *  - pb_copy_call_NAME replaces a call to libc's wrapper (the C calling convention: rcx, rdx,
 *    r8-r11 and the flags are the callee's). A cached value is returned; anything else continues
 *    in the wrapper's own entry, whose route for this return address (the copy's calls get one:
 *    emit.c hands them to the plan, which adds them) serves, fills or samples the call as for any
 *    routed site. The wrappers are above the rewriter: that entry's address is not named here but
 *    registered at start-up (pb_copy_call_wrapper_NAME, stubs.c says by whom).
 *
 * The slow path (nothing cached) calls C: it saves the registers the kernel would keep and the
 * SSE registers (libprivbox is compiled without AVX, so the upper halves are never touched),
 * aligns the stack and clears the direction flag as the C convention requires, and restores all
 * of it with the flags (popfq, off the common path).
 */
    .text

.macro PB_SAVE_FOR_C
    pushfq
    pushq %rcx
    pushq %rdi
    pushq %rsi
    pushq %rdx
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %rbp
    movq %rsp, %rbp
    andq $-16, %rsp
    subq $256, %rsp
    movdqu %xmm0, 0(%rsp)
    movdqu %xmm1, 16(%rsp)
    movdqu %xmm2, 32(%rsp)
    movdqu %xmm3, 48(%rsp)
    movdqu %xmm4, 64(%rsp)
    movdqu %xmm5, 80(%rsp)
    movdqu %xmm6, 96(%rsp)
    movdqu %xmm7, 112(%rsp)
    movdqu %xmm8, 128(%rsp)
    movdqu %xmm9, 144(%rsp)
    movdqu %xmm10, 160(%rsp)
    movdqu %xmm11, 176(%rsp)
    movdqu %xmm12, 192(%rsp)
    movdqu %xmm13, 208(%rsp)
    movdqu %xmm14, 224(%rsp)
    movdqu %xmm15, 240(%rsp)
    cld
.endm

.macro PB_RESTORE_FROM_C
    movdqu 0(%rsp), %xmm0
    movdqu 16(%rsp), %xmm1
    movdqu 32(%rsp), %xmm2
    movdqu 48(%rsp), %xmm3
    movdqu 64(%rsp), %xmm4
    movdqu 80(%rsp), %xmm5
    movdqu 96(%rsp), %xmm6
    movdqu 112(%rsp), %xmm7
    movdqu 128(%rsp), %xmm8
    movdqu 144(%rsp), %xmm9
    movdqu 160(%rsp), %xmm10
    movdqu 176(%rsp), %xmm11
    movdqu 192(%rsp), %xmm12
    movdqu 208(%rsp), %xmm13
    movdqu 224(%rsp), %xmm14
    movdqu 240(%rsp), %xmm15
    movq %rbp, %rsp
    popq %rbp
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdx
    popq %rsi
    popq %rdi
    popq %rcx
    popfq
.endm

/* The cached word (valid bit 63, value in the low 32 bits) of identity value \which into rax, or
 * a jump to \miss. Uses rax only. */
.macro PB_LOAD_ID which, miss
    movq pb_id(%rip), %rax
    testq %rax, %rax
    jz \miss
    movq 8*\which(%rax), %rax
    testq %rax, %rax
    jns \miss
.endm

/* This thread's cached tid into eax, or a jump to \miss (executors/identity.h: the tid is valid while
 * it was read under the current pid word). Uses rax and \scratch. */
.macro PB_LOAD_TID scratch, miss
    movq pb_id(%rip), %rax
    testq %rax, %rax
    jz \miss
    movq (%rax), %rax
    testq %rax, %rax
    jns \miss
    movq pb_my_tid@gottpoff(%rip), \scratch
    cmpq %rax, %fs:(\scratch)
    jne \miss
    movl %fs:8(\scratch), %eax
.endm

/* Entered with rax = the program's syscall number, [rsp] = the site stub. \load leaves the value
 * in eax or jumps to 3f; \fill is the C function that asks the kernel (and caches). */
.macro PB_COPY_INLINE name, nr, load, fill, fillarg
    .globl pb_copy_inline_\name
    .hidden pb_copy_inline_\name
    .type pb_copy_inline_\name, @function
    .p2align 4
pb_copy_inline_\name:
    movq %rax, %r11             /* the number */
    lahf                        /* ah = SF ZF AF PF CF */
    seto %al                    /* al = OF */
    movl %eax, %ecx             /* cx = the program's arithmetic flags */
    cmpq $\nr, %r11
    jne 5f
    \load
1:  movl %eax, %r11d            /* the value */
    movl %ecx, %eax
    addb $0x7f, %al             /* OF = (al == 1) */
    sahf                        /* SF ZF AF PF CF */
    movl %r11d, %eax            /* zero-extended, as the kernel returns it */
    movl $1, %ecx
    ret
3:  PB_SAVE_FOR_C
    \fillarg
    call \fill
    PB_RESTORE_FROM_C
    testq %rax, %rax
    js 1b
    movq $\nr, %r11
5:  movl %ecx, %eax
    addb $0x7f, %al
    sahf
    movq %r11, %rax             /* the number again: the stub makes the call itself */
    movl $0, %ecx
    ret
    .size pb_copy_inline_\name, .-pb_copy_inline_\name

    .globl pb_copy_call_\name
    .hidden pb_copy_call_\name
    .type pb_copy_call_\name, @function
    .p2align 4
pb_copy_call_\name:
    \load
    movl %eax, %eax
    ret
3:  jmp *pb_copy_call_wrapper_\name(%rip)
    .size pb_copy_call_\name, .-pb_copy_call_\name

    /* The wrapper's plain entry, where a call the cache cannot answer continues (stubs.c). */
    .bss
    .p2align 3
    .globl pb_copy_call_wrapper_\name
    .hidden pb_copy_call_wrapper_\name
    .type pb_copy_call_wrapper_\name, @object
pb_copy_call_wrapper_\name:
    .zero 8
    .size pb_copy_call_wrapper_\name, 8
    .text
.endm

.macro PB_COPY_ID name, nr, which
    PB_COPY_INLINE \name, \nr, "PB_LOAD_ID \which, 3f", pb_identity_fill, "movl $\which, %edi"
.endm

/* Numbers: x86-64 getpid 39, getuid 102, getgid 104, geteuid 107, getegid 108, getpgrp 111,
 * gettid 186. Word indexes: executors/identity.h (PB_ID_PID 0, UID 1, EUID 2, GID 3, EGID 4, PGRP 5). */
PB_COPY_ID getpid, 39, 0
PB_COPY_ID getuid, 102, 1
PB_COPY_ID geteuid, 107, 2
PB_COPY_ID getgid, 104, 3
PB_COPY_ID getegid, 108, 4
PB_COPY_ID getpgrp, 111, 5
PB_COPY_INLINE gettid, 186, "PB_LOAD_TID %r11, 3f", pb_identity_tid_fill, ""

    .section .note.GNU-stack,"",@progbits
