// An inline site of a system call no copy entry serves (getppid) is not stubbed: with nothing
// to instrument, nothing is copied (and nothing noted: it is a routed site's ordinary case).
// golden: site site_getppid inline getppid
    .text
    .globl golden_fn, site_getppid
    .type golden_fn, @function
golden_fn:
    mov $110, %eax
    syscall
site_getppid:
    ret
    .size golden_fn, . - golden_fn
