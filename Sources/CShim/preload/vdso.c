/*
 * vdso.c — finding functions in the kernel's vDSO by name.
 *
 * The vDSO is a complete ELF image mapped by the kernel (AT_SYSINFO_EHDR). Its dynamic symbol
 * table gives each function's address relative to the image's first PT_LOAD segment.
 */
#include "executor.h"

#include <elf.h>
#include <string.h>
#include <sys/auxv.h>

void *pb_vdso_lookup(const char *name)
{
    const unsigned char *base = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    if (!base)
        return 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
        return 0;
    /* Load bias: the image is mapped at `base`, linked at the first PT_LOAD's p_vaddr. */
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
    long bias = -1;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            bias = (long)((uintptr_t)base - ph[i].p_vaddr);
            break;
        }
    }
    if (bias == -1 || eh->e_shoff == 0)
        return 0;
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
            if (strcmp(strtab + sym[s].st_name, name) == 0)
                return (void *)(bias + (long)sym[s].st_value);
        }
    }
    return 0;
}
