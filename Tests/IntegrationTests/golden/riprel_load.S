// RIP-relative loads: the copy's displacements are re-pointed so that each reads the same
// address (golden_data and golden_data+3) from its new place.
// golden: site site_getpid inline getpid
    .data
    .globl golden_data
    .type golden_data, @object
golden_data:
    .quad 0x1122334455667788
    .size golden_data, . - golden_data
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov golden_data(%rip), %edx
    movzbl golden_data+3(%rip), %ecx
    mov $39, %eax
    syscall
site_getpid:
    add %edx, %eax
    add %ecx, %eax
    ret
    .size golden_fn, . - golden_fn
