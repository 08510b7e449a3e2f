// Refused: a jump to the FIRST instruction of code with its own unwind entry (a tail call, or, as
// here, a .cold part entered at its start, which is how GCC usually enters one) is checked too: this
// cold part jumps back into the function's first 5 bytes (orig+0x2), which the copy's entry jump
// overwrites, so the original's cold part would land in the middle of that jump. (Until the golden
// tests showed it, such code was taken for another function and not checked; compare
// refuse_cold_part, where the part is entered past its start, and branch_external, a tail call
// to code that does not jump back, which is copied.)
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
