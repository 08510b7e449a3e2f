// RIP-relative lea: the copy computes the same addresses (data, and a function of the program).
// (golden_helper comes after golden_fn: just before it, within 8 bytes of its entry, its address
// would count as a reference to the entry's first 5 bytes, which is refused, lea or not.)
// golden: site site_getpid inline getpid
    .data
    .globl golden_data
    .type golden_data, @object
golden_data:
    .quad 0
    .size golden_data, . - golden_data
    .text
    .globl golden_fn, golden_helper, site_getpid
    .type golden_fn, @function
golden_fn:
    lea golden_data(%rip), %rdi
    lea golden_helper(%rip), %rsi
    mov $39, %eax
    syscall
site_getpid:
    ret
    .size golden_fn, . - golden_fn

    .type golden_helper, @function
golden_helper:
    ret
    .size golden_helper, . - golden_helper
