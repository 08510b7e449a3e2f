// Refused: code entered where its own unwind entry starts (here a .cold part) that CALLS into the
// function's first 5 bytes (orig+0x2): the call would land in the middle of the copy's entry jump
// as a jump would. (A call, unlike a jump, is not in capstone's jump group: the check looks at
// direct calls and xbegin's abort target too.)
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
    call .Lretry
    ud2
    .cfi_endproc
    .size golden_fn_cold, . - golden_fn_cold
