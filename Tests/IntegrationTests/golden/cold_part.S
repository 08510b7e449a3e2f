// A jump to a part of the function placed elsewhere (a .cold part, with its own unwind entry,
// entered past its first instruction) that jumps back into the function after its first 5 bytes:
// the copy's jump goes to the original .cold part, which comes back into the original (harmless:
// the original still works, it is just not instrumented).
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid, golden_fn_cold
    .type golden_fn, @function
golden_fn:
    .cfi_startproc
    mov $39, %eax
    test %edi, %edi
    jne .Lcold_entry
    syscall
site_getpid:
.Lback:
    ret
    .cfi_endproc
    .size golden_fn, . - golden_fn

    .section .text.unlikely, "ax", @progbits
    .type golden_fn_cold, @function
golden_fn_cold:
    .cfi_startproc
    nop
.Lcold_entry:
    mov $-1, %eax
    jmp .Lback
    .cfi_endproc
    .size golden_fn_cold, . - golden_fn_cold
