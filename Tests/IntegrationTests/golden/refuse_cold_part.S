// Refused: jumping to a part of the function placed elsewhere (entered past its first
// instruction, so not a tail call) that jumps back into the function's first 5 bytes (+0x2).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid, golden_fn_cold
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    xor %eax, %eax
.Lretry:
    test %edi, %edi
    jne .Lcold_entry
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
    nop
.Lcold_entry:
    xor %edi, %edi
    jmp .Lretry
    .cfi_endproc
    .size golden_fn_cold, . - golden_fn_cold
