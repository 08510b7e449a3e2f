// Present behaviour, recorded: a jump to the FIRST instruction of code with its own unwind entry
// counts as a tail call to another function, so that code is not checked at all, even when (as
// here) it is a .cold part that jumps back into the function's first 5 bytes (orig+0x2). The copy is
// made; the original's cold part would then jump into the patched entry's middle. (Compare
// refuse_cold_part, where the same part entered past its start is refused.)
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid, golden_fn_cold
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    xor %eax, %eax
.Lretry:
    test %edi, %edi
    jne golden_fn_cold
    mov $39, %eax
    syscall
site_getpid:
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn

    .section .text.unlikely, "ax", @progbits
    .type golden_fn_cold, @function
golden_fn_cold:
    .cfi_startproc
    xor %edi, %edi
    jmp .Lretry
    .cfi_endproc
    .size golden_fn_cold, . - golden_fn_cold
