/*
 * rewriter/symbols.c — which function a call instruction of a copied function reaches: the
 * loaded module's tables (pb_module_at, sys/modules.c), its GOT relocations and dynamic symbols, its PLT
 * entries; and whether a name resolves to privbox's own wrapper. decode.c stubs a call only when
 * it goes straight to the wrapper of the profiled call.
 *
 * May touch: nothing (it reads the loaded modules' tables). Uses rewriter/ (the decoder, for a
 * PLT entry) and sys/.
 */
#include "rewriter/parts.h"

#include <dlfcn.h>
#include <string.h>

/* The dynamic symbol whose GOT slot is at `slot` (a JUMP_SLOT or GLOB_DAT relocation of the module
 * holding `fn`), or 0. */
static const char *pb_got_symbol(uint64_t fn, uint64_t slot)
{
    struct pb_module_at s; /* zeroed when no module holds fn */
    pb_module_at(fn, &s);
    if (!s.dynamic)
        return 0;
    uint64_t jmprel = 0, pltrelsz = 0, rela = 0, relasz = 0, symtab = 0, strtab = 0;
    for (const ElfW(Dyn) *d = s.dynamic; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_JMPREL: jmprel = d->d_un.d_ptr; break;
        case DT_PLTRELSZ: pltrelsz = d->d_un.d_val; break;
        case DT_RELA: rela = d->d_un.d_ptr; break;
        case DT_RELASZ: relasz = d->d_un.d_val; break;
        case DT_SYMTAB: symtab = d->d_un.d_ptr; break;
        case DT_STRTAB: strtab = d->d_un.d_ptr; break;
        }
    }
    /* ld.so relocates these entries in place (x86-64 keeps the dynamic section writable); an
     * entry still below the load address is an offset. */
#define PB_ABS(v) ((v) && (v) < s.bias ? (v) + s.bias : (v))
    jmprel = PB_ABS(jmprel);
    rela = PB_ABS(rela);
    symtab = PB_ABS(symtab);
    strtab = PB_ABS(strtab);
#undef PB_ABS
    if (!symtab || !strtab)
        return 0;
    const struct { uint64_t table, bytes; } tables[] = {{jmprel, pltrelsz}, {rela, relasz}};
    for (int t = 0; t < 2; t++) {
        const ElfW(Rela) *r = (const ElfW(Rela) *)tables[t].table;
        for (uint64_t i = 0; r && i < tables[t].bytes / sizeof *r; i++) {
            unsigned type = ELF64_R_TYPE(r[i].r_info);
            if (r[i].r_offset + s.bias != slot ||
                (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT))
                continue;
            const ElfW(Sym) *sym = (const ElfW(Sym) *)symtab + ELF64_R_SYM(r[i].r_info);
            return (const char *)strtab + sym->st_name;
        }
    }
    return 0;
}

/* The function a call instruction reaches through its PLT entry or GOT slot, by name, or 0. */
const char *pb_call_symbol(struct pb_decoder *d, uint64_t fn, uint64_t target, int direct)
{
    if (!direct) /* call *slot(%rip) */
        return pb_got_symbol(fn, target);
    /* A PLT entry: [endbr64;] [bnd] jmp *slot(%rip): its first two instructions, at most. */
    const uint8_t *code = (const uint8_t *)target;
    size_t left = 16;
    uint64_t address = target;
    struct pb_x86_insn in;
    for (int i = 0; i < 2 && pb_decoder_next(d, &code, &left, &address, &in); i++) {
        if (in.is_endbr64)
            continue;
        if (in.is_jmp && in.op_count == 1 && in.first_operand_rip_slot)
            return pb_got_symbol(fn, in.address + in.size + (uint64_t)in.first_operand_disp);
        break;
    }
    return 0;
}

/* Whether `name` resolves, for the program, to privbox's own wrapper: not when another preloaded
 * library (an interposer before privbox, e.g. fakeroot's getuid) defines it first. */
int pb_resolves_to_privbox(const char *name)
{
    Dl_info mine, theirs;
    void *f = dlsym(RTLD_DEFAULT, name);
    return f && dladdr((void *)pb_resolves_to_privbox, &mine) && dladdr(f, &theirs) &&
           mine.dli_fbase == theirs.dli_fbase;
}
