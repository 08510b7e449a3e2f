// Two inline sites in one function, each with its own stub: getuid's value (a word of the
// identity page) and gettid's (the thread's own), each stub calling its value's entry.
// golden: site site_getuid inline getuid
// golden: site site_gettid inline gettid
    .text
    .globl golden_fn, site_getuid, site_gettid
    .type golden_fn, @function
golden_fn:
    mov $102, %eax
    syscall
site_getuid:
    mov %eax, %edx
    mov $186, %eax
    syscall
site_gettid:
    add %edx, %eax
    ret
    .size golden_fn, . - golden_fn
