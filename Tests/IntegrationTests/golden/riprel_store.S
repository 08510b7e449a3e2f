// RIP-relative stores, including forms with an immediate after the displacement (the
// displacement is found by position, not taken as the instruction's last 4 bytes).
// golden: site site_getpid inline getpid
    .data
    .globl golden_data
    .type golden_data, @object
golden_data:
    .quad 0
    .quad 0
    .size golden_data, . - golden_data
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    mov %eax, golden_data(%rip)
    movl $0x12345678, golden_data+4(%rip)
    addq $1, golden_data+8(%rip)
    movw $0x5a5a, golden_data+12(%rip)
    ret
    .size golden_fn, . - golden_fn
