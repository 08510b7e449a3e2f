// A recorded site that is not the end of a `syscall` instruction (here: the end of the mov
// before it) is left as it is, with a note; with no other site, nothing is copied.
// golden: site site_wrong inline getpid
    .text
    .globl golden_fn, site_wrong
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
site_wrong:
    syscall
    ret
    .size golden_fn, . - golden_fn
