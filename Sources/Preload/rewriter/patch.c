/*
 * rewriter/patch.c — where a copy goes and how the original comes to jump to it: the private
 * anonymous mapping within reach of a rel32 from the function (pb_map_near), and the patch of the
 * function's first 5 bytes (pb_patch_entry), which keeps W^X: the copy is written into a
 * read+write mapping that emit.c makes read+execute before the entry points to it, and the entry
 * is written through /proc/self/mem, its page staying read+execute (or, where that cannot be
 * written, with the fallback below), before main() and while this is the only thread.
 *
 * May touch: the mappings it makes, the 5 bytes of an entry, the signal mask (blocked around the
 * fallback's store, restored). Raw system calls only. Uses sys/.
 */
#include "rewriter/parts.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* A private anonymous mapping of `len` bytes within 1 GiB below `near`, as close to it as a gap in
 * /proc/self/maps allows, so that rel32 reaches both ways. Only below: above a program's image the
 * kernel grows its brk heap, which a mapping there would cut short. 0 if there is no room. */
uint8_t *pb_map_near(uint64_t near, size_t len)
{
    const size_t cap = 1u << 20;
    char *maps = pb_map(cap);
    if (!maps)
        return 0;
    long n = pb_read_file("/proc/self/maps", maps, cap - 1);
    uint8_t *out = 0;
    if (n > 0) {
        maps[n] = '\0';
        /* Lines are sorted by address: the best gap is the last one that ends at or below `near`
         * (its top is the closest free address below). */
        uint64_t prev_end = 0x10000, best = 0; /* vm.mmap_min_addr's usual value */
        for (char *line = maps; *line;) {
            char *next = strchr(line, '\n');
            unsigned long long lo = 0, hi = 0;
            if (sscanf(line, "%llx-%llx", &lo, &hi) == 2) {
                if (lo > prev_end && lo - prev_end >= len + 4096 && lo <= near) {
                    uint64_t at = (lo - len - 4096) & ~(uint64_t)4095; /* a free page above it */
                    if (at >= prev_end && near - at < (1ull << 30))
                        best = at;
                }
                if (hi > prev_end)
                    prev_end = hi;
            }
            if (!next)
                break;
            line = next + 1;
        }
        if (best) {
            long p = pb_raw_syscall6(SYS_mmap, (long)best, (long)len, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == (long)best)
                out = (uint8_t *)p;
            else if (p >= 0 || p < -4095) /* a kernel that ignores MAP_FIXED_NOREPLACE */
                pb_unmap((void *)p, len);
        }
    }
    pb_unmap(maps, cap);
    return out;
}

/* ---- patching an entry --------------------------------------------------------------------------
 * Written through /proc/self/mem, as a debugger writes a breakpoint: the page keeps its protection
 * (read+execute) throughout, so it is never writable and executable at once and never, even
 * briefly, not executable. Where /proc/self/mem cannot be written, the page is made read+write
 * (not executable) for the store and read+execute again, with every signal blocked so that no
 * handler can run code on it meanwhile; if it cannot be made executable again the original bytes
 * are put back first. Raw system calls and privbox's own code only, so nothing runs from the
 * page being patched. 0 on success. */
int pb_patch_entry(uint64_t fn, const uint8_t jump[5])
{
    long fd = pb_raw_syscall6(SYS_openat, AT_FDCWD, (long)"/proc/self/mem", O_RDWR | O_CLOEXEC, 0, 0, 0);
    if (fd >= 0) {
        long n = pb_raw_syscall6(SYS_pwrite64, fd, (long)jump, 5, (long)fn, 0, 0);
        pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
        if (n == 5 && !memcmp((const void *)fn, jump, 5))
            return 0;
    }
    uint64_t page = fn & ~(uint64_t)4095, page_end = (fn + 5 + 4095) & ~(uint64_t)4095;
    uint64_t all = ~0ull, old = 0;
    uint8_t saved[5];
    memcpy(saved, (const void *)fn, 5);
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8, 0, 0);
    int r = -1;
    if (pb_raw_syscall6(SYS_mprotect, (long)page, (long)(page_end - page), PROT_READ | PROT_WRITE, 0, 0, 0) == 0) {
        volatile uint8_t *at = (volatile uint8_t *)fn;
        for (int i = 0; i < 5; i++)
            at[i] = jump[i];
        r = 0;
        if (pb_raw_syscall6(SYS_mprotect, (long)page, (long)(page_end - page), PROT_READ | PROT_EXEC, 0, 0, 0) != 0) {
            for (int i = 0; i < 5; i++)
                at[i] = saved[i];
            r = -1;
            if (pb_raw_syscall6(SYS_mprotect, (long)page, (long)(page_end - page), PROT_READ | PROT_EXEC, 0, 0, 0) != 0)
                pb_log(PB_LOG_ERROR, "a code page at %p could not be made executable again", (void *)page);
        }
    }
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);
    return r;
}
