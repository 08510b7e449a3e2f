// Branches already in their 32-bit form, inside the function: re-targeted to the copy's offsets
// of their targets (forward and backward), their encodings unchanged.
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    xor %ecx, %ecx
    nop
    nop
    nop
.Lloop:
    mov $39, %eax
    syscall
site_getpid:
    add $1, %ecx
    cmp $3, %ecx
    {disp32} jl .Lloop
    {disp32} jmp .Ldone
    ud2
.Ldone:
    ret
    .size golden_fn, . - golden_fn
