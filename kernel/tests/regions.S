/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Code that privbox_gate_test copies into regions.  Each blob is position
 * independent: its only memory references are RIP-relative ones to its own
 * jump slot, which the test fills with the gate's address before it
 * registers the copy.  A blob ends at its slot; code_len is the slot's
 * offset.
 *
 * GATE is the one sequence through which a region may make a system call
 * (see <asm/privbox.h>): rcx gets the return address, the jump goes to the
 * gate, and the two bytes of syscall after it are where a restarted call
 * comes back to.
 */
.macro GATE slot
	lea	8(%rip), %rcx
	jmp	*\slot(%rip)
	syscall
.endm

.macro BLOB name
	.globl \name\()_start, \name\()_code_end, \name\()_end
	.p2align 4
\name\()_start:
.endm

.macro SLOT name
	.p2align 3, 0xcc	/* padding decodes as int3 */
\name\()_code_end:
\name\()_slot:
	.quad 0
\name\()_end:
.endm

	.section .rodata, "a"

/* long loop(long n): n getppid() calls through the gate; returns the last. */
BLOB getppid_loop
1:	mov	$110, %eax		/* __NR_getppid */
	GATE	getppid_loop_slot
	dec	%rdi
	jnz	1b
	ret
SLOT getppid_loop

/* long load(const long *p): reads *p inside the box. */
BLOB load
	mov	(%rdi), %rax
	ret
SLOT load

/* void spin(void): never returns, makes no call. */
BLOB spin
1:	jmp	1b
SLOT spin

/* long wait_flag(volatile int *flag): getpid() through the gate until *flag != 0; returns the count. */
BLOB wait_flag
	xor	%r8d, %r8d
1:	mov	$39, %eax		/* __NR_getpid */
	GATE	wait_flag_slot
	inc	%r8
	cmpl	$0, (%rdi)
	je	1b
	mov	%r8, %rax
	ret
SLOT wait_flag

/* long gate_call(long nr, long a0, long a1, long a2): one system call through the gate. */
BLOB gate_call
	mov	%rdi, %rax
	mov	%rsi, %rdi
	mov	%rdx, %rsi
	mov	%rcx, %rdx
	GATE	gate_call_slot
	ret
SLOT gate_call

/*
 * long write_loop(int fd, const char *buf, long n): for i in 0..n-1 writes
 * one line "pid=<getpid()> i=<i>\n" built in buf (64 bytes) through the gate;
 * returns 0 or the first negative result.  Registers: r12 fd, r13 buf,
 * r14 n, r15 i, rbx pid.
 */
BLOB write_loop
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rdi, %r12
	mov	%rsi, %r13
	mov	%rdx, %r14
	xor	%r15d, %r15d
1:	cmp	%r14, %r15
	jge	9f
	mov	$39, %eax
	GATE	write_loop_slot
	mov	%rax, %rbx
	/* "pid=" */
	mov	%r13, %rdi
	movl	$0x3d646970, (%rdi)
	add	$4, %rdi
	mov	%rbx, %rax
	call	3f
	movl	$0x3d6920, (%rdi)	/* " i=" */
	add	$3, %rdi
	mov	%r15, %rax
	call	3f
	movb	$10, (%rdi)
	inc	%rdi
	mov	%rdi, %rdx
	sub	%r13, %rdx
	mov	%r12, %rdi
	mov	%r13, %rsi
	mov	$1, %eax		/* __NR_write */
	GATE	write_loop_slot
	test	%rax, %rax
	js	8f
	inc	%r15
	jmp	1b
9:	xor	%eax, %eax
8:	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	ret
	/* decimal of rax at rdi, rdi advanced; clobbers rax, rcx, rdx, r8-r10 */
3:	mov	%rdi, %r8
	lea	-32(%rsp), %r9
	mov	%r9, %r10
	mov	$10, %ecx
4:	xor	%edx, %edx
	div	%rcx
	add	$'0', %dl
	dec	%r9
	mov	%dl, (%r9)
	test	%rax, %rax
	jnz	4b
5:	mov	(%r9), %dl
	mov	%dl, (%r8)
	inc	%r8
	inc	%r9
	cmp	%r10, %r9
	jne	5b
	mov	%r8, %rdi
	ret
SLOT write_loop

/* Refused at registration: cli. */
BLOB bad_cli
	cli
	ret
SLOT bad_cli

/* Refused: a syscall instruction outside the gate sequence. */
BLOB bad_syscall
	mov	$39, %eax
	syscall
	ret
SLOT bad_syscall

/* Refused: an indirect call. */
BLOB bad_indirect
	call	*%rax
	ret
SLOT bad_indirect

/* Refused: a branch into the middle of an instruction. */
BLOB bad_target
	jmp	1f + 1
1:	mov	$0x12345678, %eax
	ret
SLOT bad_target

/*
 * Refused: a prefix after REX, which the decoder takes for a one-byte
 * opcode but the CPU skips: decoded as "rex; push; mov $imm32; clc", run
 * as "mov $imm16, %ax; swapgs".
 */
BLOB bad_rex_prefix
	.byte	0x48, 0x66, 0xb8, 0xaa, 0xbb, 0x0f, 0x01, 0xf8
	ret
SLOT bad_rex_prefix

/* Refused: five legacy prefixes, the fifth a %gs override. */
BLOB bad_five_prefixes
	.byte	0x66, 0x2e, 0x3e, 0x26, 0x65, 0xb8, 0x01, 0x00
	ret
SLOT bad_five_prefixes

/* Refused: the slot jump with an %fs override (the slot's address would move with FS). */
BLOB bad_slot_prefix
	.byte	0x64
	jmp	*bad_slot_prefix_slot(%rip)
SLOT bad_slot_prefix

/* Refused: code that runs on into the slots (eight nops: no int3 padding before the slot). */
BLOB bad_fallthrough
	.fill	8, 1, 0x90
SLOT bad_fallthrough

	.section .note.GNU-stack, "", @progbits
