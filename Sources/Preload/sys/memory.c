/*
 * sys/memory.c — pb_map and pb_unmap: raw mmap/munmap, nothing interposed, errno untouched
 * (the kernel's -errno is the return value), async-signal-safe.
 */
#include "sys/memory.h"
#include "privbox_shim.h"

#include <sys/mman.h>
#include <sys/syscall.h>

void *pb_map(size_t bytes)
{
    long p = pb_raw_syscall6(SYS_mmap, 0, (long)bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return (p < 0 && p > -4096) ? 0 : (void *)p;
}

void pb_unmap(void *p, size_t bytes)
{
    pb_raw_syscall6(SYS_munmap, (long)p, (long)bytes, 0, 0, 0, 0);
}
