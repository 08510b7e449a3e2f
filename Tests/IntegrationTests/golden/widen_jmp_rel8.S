// Short unconditional jumps (jmp rel8, eb, 2 bytes) become jmp rel32 (e9, 5 bytes), forward and
// backward. (The first instruction is 5 bytes long: a jump back to offset 4 would land in the
// entry's patched bytes, which is refused.)
// golden: site site_getpid inline getpid
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $0, %ecx
    jmp .Lcheck
.Lbody:
    mov $39, %eax
    syscall
site_getpid:
    inc %ecx
.Lcheck:
    cmp $2, %ecx
    jae .Lend
    jmp .Lbody
.Lend:
    ret
    .size golden_fn, . - golden_fn
