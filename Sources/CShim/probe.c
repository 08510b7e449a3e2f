/*
 * probe.c — kernel feature probes for `privbox doctor`. Each probe makes the cheapest call that
 * tells "available" from "not built into this kernel" without changing the process's state.
 */
#include "privbox_shim.h"

#include <elf.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#endif

int pb_probe_syscall_user_dispatch(void)
{
    /* Switching dispatch off when it is already off is a no-op where SUD exists (5.11+), and
     * fails with EINVAL where the kernel lacks CONFIG_GENERIC_ENTRY/SUD. Raw: in libprivbox.so a
     * call to prctl() would be privbox's own wrapper, and errno stays the program's. */
    long r = pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0, 0);
    return r == 0 ? 0 : (int)-r;
}

int pb_probe_rseq(void)
{
    /* rseq(NULL, 0, 0, 0) is rejected with EINVAL by a kernel that has rseq (4.18+), ENOSYS
     * otherwise. It registers nothing. */
    long r = pb_raw_syscall6(SYS_rseq, 0, 0, 0, 0, 0, 0);
    return r == -EINVAL ? 0 : (int)-r;
}

int pb_probe_privbox_gate(struct pb_privbox_info *info)
{
    memset(info, 0, sizeof *info);
    long r = pb_raw_syscall6(SYS_prctl, PB_PR_PRIVBOX, PB_PR_PRIVBOX_QUERY, (long)info, 0, 0, 0);
    return r == 0 ? 0 : (int)-r;
}

int pb_probe_io_uring(void)
{
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    long fd = pb_raw_syscall6(SYS_io_uring_setup, 1, (long)&params, 0, 0, 0, 0);
    if (fd < 0)
        return (int)-fd;
    pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    return 0;
}

/* Calls fn for every function the vDSO exports (name, address); stops early when fn returns
 * non-zero. The vDSO is a complete ELF image in memory, section headers included; symbol values
 * are relative to its first PT_LOAD segment's address. Returns -1 if there is no readable vDSO. */
static int pb_vdso_each(int (*fn)(const char *name, void *address, void *ctx), void *ctx)
{
    const unsigned char *base = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    if (!base)
        return -1;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0)
        return -1;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
    long bias = -1;
    for (int i = 0; i < eh->e_phnum && bias == -1; i++)
        if (ph[i].p_type == PT_LOAD)
            bias = (long)((uintptr_t)base - ph[i].p_vaddr);
    if (bias == -1)
        return -1;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
        const char *strtab = (const char *)(base + sh[sh[i].sh_link].sh_offset);
        size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
        for (size_t s = 0; s < count; s++) {
            if (ELF64_ST_TYPE(sym[s].st_info) != STT_FUNC || sym[s].st_shndx == SHN_UNDEF)
                continue;
            if (fn(strtab + sym[s].st_name, (void *)(bias + (long)sym[s].st_value), ctx))
                return 0;
        }
    }
    return 0;
}

struct pb_name_list { char *out; size_t len, used; int full; };

static int pb_add_name(const char *name, void *address, void *ctx)
{
    (void)address;
    struct pb_name_list *l = ctx;
    size_t n = strlen(name);
    if (l->used + n + 2 >= l->len) {
        l->full = 1;
        return 1;
    }
    if (l->used)
        l->out[l->used++] = ' ';
    memcpy(l->out + l->used, name, n);
    l->used += n;
    l->out[l->used] = '\0';
    return 0;
}

int pb_vdso_symbols(char *out, size_t outlen)
{
    if (!outlen)
        return -1;
    out[0] = '\0';
    struct pb_name_list l = {out, outlen, 0, 0};
    return pb_vdso_each(pb_add_name, &l) == 0 && !l.full ? 0 : -1;
}

struct pb_lookup { const char *name; void *found; };

static int pb_match_name(const char *name, void *address, void *ctx)
{
    struct pb_lookup *l = ctx;
    if (strcmp(name, l->name) != 0)
        return 0;
    l->found = address;
    return 1;
}

void *pb_vdso_lookup(const char *name)
{
    struct pb_lookup l = {name, 0};
    pb_vdso_each(pb_match_name, &l);
    return l.found;
}
