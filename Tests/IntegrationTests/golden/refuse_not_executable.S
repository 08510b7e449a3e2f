// Refused: the kernel refuses to make the copy executable (a seccomp filter, installed just
// before the build, fails mprotect(PROT_READ|PROT_EXEC) with EPERM).
// golden: site site_getpid inline getpid
// golden: option deny-mprotect-rx
    .text
    .globl golden_fn, site_getpid
    .type golden_fn, @function
golden_fn:
    mov $39, %eax
    syscall
site_getpid:
    ret
    .size golden_fn, . - golden_fn
