/*
 * golden_rewrite.c — the golden tests' driver (GoldenRewriterTests.swift). Linked with one case's
 * assembled input (Tests/IntegrationTests/golden/NAME.S) and run under LD_PRELOAD=libprivbox.so
 * (PRIVBOX_MODE=off: the library does nothing by itself), it asks privbox_golden_rewrite
 * (Sources/Preload/golden_entry.c) to copy the case's function with the case's sites, and
 * prints, with every address named (orig+0x.., copy+0x.., stubN+0x.., a symbol, an entry of
 * copy_entries.S, an identity word, the counts page), so that the text is the same at every run:
 * the input's disassembly, then the refusal text, or the copy's disassembly, the patched entry,
 * the site stubs and the copy's unwind entry (CIE and FDE, its CFA program as text).
 *
 * Usage: golden_rewrite CASE.S   (the case's `// golden:` lines say what to do, see golden/README.md)
 *
 * Never runs the copied function: the copy is only read.
 */
#define _GNU_SOURCE
#include "golden_entry.h"

#include <capstone/capstone.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef unsigned long long ull; /* for printf's %llx/%llu */
typedef long long ll;

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "golden_rewrite: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- the case's directives ---------------------------------------------------------------------- */

struct site_spec { char label[64], nr_name[64]; int is_inline; };
static struct {
    char function[64];
    struct site_spec sites[PRIVBOX_GOLDEN_MAX_SITES];
    int nsites;
    int no_unwinder, deny_rx, deny_patch;
    uint64_t place_at; /* copy the function's bytes to this address first (0: where it is) */
} spec = {.function = "golden_fn"};

static const struct { const char *name; unsigned nr; } syscalls[] = {
    {"getpid", SYS_getpid}, {"getuid", SYS_getuid}, {"geteuid", SYS_geteuid}, {"getgid", SYS_getgid},
    {"getegid", SYS_getegid}, {"getpgrp", SYS_getpgrp}, {"gettid", SYS_gettid}, {"getppid", SYS_getppid},
    {"clock_gettime", SYS_clock_gettime}, {"write", SYS_write}, {"read", SYS_read},
};

static unsigned syscall_nr(const char *name)
{
    for (size_t i = 0; i < sizeof syscalls / sizeof syscalls[0]; i++)
        if (!strcmp(syscalls[i].name, name))
            return syscalls[i].nr;
    die("unknown system call name %s in a golden: site line", name);
    return 0;
}

/* Lines `// golden: function NAME`, `// golden: site LABEL inline|call SYSCALL`, `// golden: option WORD [VALUE]`
 * (C++-style comments: the case is a .S file, which the C preprocessor reads first). */
static void read_directives(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open %s", path);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char a[64] = "", b[64] = "", c[64] = "", d[64] = "";
        if (sscanf(line, " // golden: %63s %63s %63s %63s", a, b, c, d) < 2)
            continue;
        if (!strcmp(a, "function")) {
            snprintf(spec.function, sizeof spec.function, "%s", b);
        } else if (!strcmp(a, "site")) {
            if (spec.nsites == PRIVBOX_GOLDEN_MAX_SITES)
                die("more than %s sites", "64");
            struct site_spec *s = &spec.sites[spec.nsites++];
            snprintf(s->label, sizeof s->label, "%s", b);
            if (strcmp(c, "inline") && strcmp(c, "call"))
                die("a golden: site line says inline or call, not %s", c);
            s->is_inline = !strcmp(c, "inline");
            snprintf(s->nr_name, sizeof s->nr_name, "%s", d);
        } else if (!strcmp(a, "option")) {
            if (!strcmp(b, "no-unwinder"))
                spec.no_unwinder = 1;
            else if (!strcmp(b, "deny-mprotect-rx"))
                spec.deny_rx = 1;
            else if (!strcmp(b, "deny-patch"))
                spec.deny_patch = 1;
            else if (!strcmp(b, "place-at"))
                spec.place_at = strtoull(c, 0, 0);
            else
                die("unknown golden: option %s", b);
        } else {
            die("unknown golden: line %s", a);
        }
    }
    fclose(f);
}

/* ---- naming addresses ------------------------------------------------------------------------- */

static uint64_t fn_lo, fn_hi, counts_page;
static struct privbox_golden_result res;
static int copied;

/* The dynamic symbol a GOT slot of the main program is relocated for, or 0. */
static const char *got_symbol(uint64_t slot)
{
    struct link_map *map = dlopen(0, RTLD_NOW);
    const ElfW(Dyn) *dyn = map ? map->l_ld : 0;
    uint64_t bias = map ? map->l_addr : 0;
    uint64_t jmprel = 0, pltrelsz = 0, rela = 0, relasz = 0, symtab = 0, strtab = 0;
    for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_JMPREL: jmprel = dyn->d_un.d_ptr; break;
        case DT_PLTRELSZ: pltrelsz = dyn->d_un.d_val; break;
        case DT_RELA: rela = dyn->d_un.d_ptr; break;
        case DT_RELASZ: relasz = dyn->d_un.d_val; break;
        case DT_SYMTAB: symtab = dyn->d_un.d_ptr; break;
        case DT_STRTAB: strtab = dyn->d_un.d_ptr; break;
        }
    }
    if (!symtab || !strtab)
        return 0;
    const struct { uint64_t at, bytes; } tables[] = {{jmprel, pltrelsz}, {rela, relasz}};
    for (int t = 0; t < 2; t++) {
        const ElfW(Rela) *r = (const ElfW(Rela) *)tables[t].at;
        for (uint64_t i = 0; r && i < tables[t].bytes / sizeof *r; i++) {
            unsigned type = ELF64_R_TYPE(r[i].r_info);
            if (r[i].r_offset + bias == slot && (type == R_X86_64_JUMP_SLOT || type == R_X86_64_GLOB_DAT))
                return (const char *)strtab + ((const ElfW(Sym) *)symtab)[ELF64_R_SYM(r[i].r_info)].st_name;
        }
    }
    return 0;
}

/* A PLT entry ([endbr64;] [bnd] jmp *slot(%rip)): the symbol of its slot, or 0. */
static const char *plt_symbol(uint64_t at)
{
    const uint8_t *b = (const uint8_t *)at;
    Dl_info info;
    if (!dladdr(b, &info) || !info.dli_fname)
        return 0;
    if (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa)
        b += 4;
    if (b[0] == 0xf2)
        b++;
    if (b[0] != 0xff || b[1] != 0x25)
        return 0;
    int32_t disp;
    memcpy(&disp, b + 2, 4);
    return got_symbol((uint64_t)(b + 6) + (uint64_t)(int64_t)disp);
}

static void name(uint64_t a, char *out, size_t len)
{
    Dl_info at_end;
    if (a == fn_hi && dladdr((void *)a, &at_end) && at_end.dli_sname && (uint64_t)at_end.dli_saddr == a) {
        snprintf(out, len, "%s", at_end.dli_sname); /* the function after it */
        return;
    }
    if (a >= fn_lo && a <= fn_hi) {
        snprintf(out, len, "orig+0x%llx", (ull)(a - fn_lo));
        return;
    }
    if (a < fn_lo && fn_lo - a <= 64) { /* just before the function (references to its entry) */
        snprintf(out, len, "orig-0x%llx", (ull)(fn_lo - a));
        return;
    }
    if (copied && a >= res.copy && a < res.copy + res.copy_len) {
        snprintf(out, len, "copy+0x%llx", (ull)(a - res.copy));
        return;
    }
    for (int s = 0; copied && s < res.nstubs; s++)
        if (a >= res.stubs[s] && a < res.stubs[s] + res.stub_bytes) {
            snprintf(out, len, "stub%d+0x%llx", s, (ull)(a - res.stubs[s]));
            return;
        }
    for (int e = 0; e < res.nentries; e++)
        if (a == res.entries[e].address) {
            snprintf(out, len, "entry:%s", res.entries[e].name);
            return;
        }
    if (res.identity_page && a >= res.identity_page && a < res.identity_page + res.identity_len) {
        static const char *words[] = {"pid", "uid", "euid", "gid", "egid", "pgrp", "sid"};
        uint64_t k = (a - res.identity_page) / 8;
        if ((a - res.identity_page) % 8 == 0 && k < 7)
            snprintf(out, len, "identity.%s", words[k]);
        else
            snprintf(out, len, "identity+0x%llx", (ull)(a - res.identity_page));
        return;
    }
    const char *sym = got_symbol(a);
    if (sym) {
        snprintf(out, len, "got[%s]", sym);
        return;
    }
    if ((sym = plt_symbol(a))) {
        snprintf(out, len, "%s@plt", sym);
        return;
    }
    Dl_info info;
    if (dladdr((void *)a, &info) && info.dli_sname && info.dli_saddr) {
        uint64_t off = a - (uint64_t)info.dli_saddr;
        if (off)
            snprintf(out, len, "%s+0x%llx", info.dli_sname, (ull)off);
        else
            snprintf(out, len, "%s", info.dli_sname);
        return;
    }
    if (copied && a < fn_lo && fn_lo - a < (1ull << 30) && (!dladdr((void *)a, &info) || !info.dli_fname)) {
        /* Outside every module, within 1 GiB below the function: the copy's counts page (the only
         * such memory a copy refers to besides itself). */
        if (!counts_page)
            counts_page = a & ~4095ull;
        if ((a & ~4095ull) == counts_page) {
            snprintf(out, len, "counts+0x%llx", (ull)(a - counts_page));
            return;
        }
    }
    if (!dladdr((void *)a, &info) || !info.dli_fname) { /* no memory of a module: far from it */
        snprintf(out, len, "orig%s0x%llx", a < fn_lo ? "-" : "+",
                 (ull)(a < fn_lo ? fn_lo - a : a - fn_lo));
        return;
    }
    snprintf(out, len, "UNNAMED(0x%llx)", (ull)a);
}

/* ---- disassembly -------------------------------------------------------------------------------- */

static csh cs;

/* Replaces, in s, the first occurrence of `old` by `new`. */
static void replace(char *s, size_t len, const char *old, const char *new)
{
    char *at = strstr(s, old);
    if (!at)
        return;
    char rest[256];
    snprintf(rest, sizeof rest, "%s", at + strlen(old));
    snprintf(at, len - (size_t)(at - s), "%s%s", new, rest);
}

/* One instruction as "mnemonic operands", its addresses named. */
static void render(const cs_insn *in, char *out, size_t len)
{
    char ops[256];
    snprintf(ops, sizeof ops, "%s", in->op_str);
    const cs_x86 *x = &in->detail->x86;
    int branch = 0;
    for (int g = 0; g < in->detail->groups_count; g++)
        branch |= in->detail->groups[g] == CS_GRP_JUMP || in->detail->groups[g] == CS_GRP_CALL ||
                  in->detail->groups[g] == CS_GRP_BRANCH_RELATIVE;
    for (int o = 0; o < x->op_count; o++) {
        const cs_x86_op *op = &x->operands[o];
        char n[96], text[48];
        if (op->type == X86_OP_IMM && branch) {
            name((uint64_t)op->imm, n, sizeof n);
            snprintf(text, sizeof text, "0x%llx", (ull)op->imm);
            replace(ops, sizeof ops, text, n);
        } else if (op->type == X86_OP_IMM && res.identity_page && (uint64_t)op->imm >= res.identity_page &&
                   (uint64_t)op->imm < res.identity_page + res.identity_len) {
            name((uint64_t)op->imm, n, sizeof n);
            snprintf(text, sizeof text, "$0x%llx", (ull)op->imm);
            char amp[100];
            snprintf(amp, sizeof amp, "$&%s", n);
            replace(ops, sizeof ops, text, amp);
        } else if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP) {
            uint64_t target = in->address + in->size + (uint64_t)op->mem.disp;
            name(target, n, sizeof n);
            char with[112];
            snprintf(with, sizeof with, "%s(%%rip)", n);
            /* capstone writes a displacement below 10 in decimal, others in hex. */
            uint64_t magnitude = op->mem.disp < 0 ? (uint64_t)-op->mem.disp : (uint64_t)op->mem.disp;
            const char *sign = op->mem.disp < 0 ? "-" : "";
            if (magnitude < 10)
                snprintf(text, sizeof text, "%s%llu(%%rip)", sign, (ull)magnitude);
            else
                snprintf(text, sizeof text, "%s0x%llx(%%rip)", sign, (ull)magnitude);
            if (magnitude == 0 && !strstr(ops, text))
                snprintf(text, sizeof text, "(%%rip)");
            replace(ops, sizeof ops, text, with);
        } else if (op->type == X86_OP_MEM && op->mem.segment == X86_REG_FS && op->mem.base == X86_REG_INVALID &&
                   (op->mem.disp == res.tls_pid_word || op->mem.disp == res.tls_tid)) {
            const char *field = op->mem.disp == res.tls_pid_word ? "tls.pb_my_tid.pid_word" : "tls.pb_my_tid.tid";
            snprintf(text, sizeof text, "%%fs:0x%llx", (ull)op->mem.disp);
            char with[64];
            snprintf(with, sizeof with, "%%fs:%s", field);
            replace(ops, sizeof ops, text, with);
            snprintf(text, sizeof text, "%%fs:-0x%llx", (ull)-op->mem.disp);
            replace(ops, sizeof ops, text, with);
        }
    }
    snprintf(out, len, "%s%s%s", in->mnemonic, ops[0] ? " " : "", ops);
}

/* Lists [at, at+len) one instruction a line: offset (named), length, instruction. A run of int3
 * (padding) is one line. */
static void list(const char *indent, uint64_t at, size_t len)
{
    const uint8_t *code = (const uint8_t *)at;
    uint64_t address = at;
    size_t left = len;
    cs_insn *in = cs_malloc(cs);
    while (left) {
        uint64_t start = address;
        if (!cs_disasm_iter(cs, &code, &left, &address, in)) {
            char bad[96];
            name(start, bad, sizeof bad);
            printf("%s%-14s  (byte 0x%02x does not decode)\n", indent, bad, *code);
            code++, left--, address++;
            continue;
        }
        char where[96], text[400];
        name(start, where, sizeof where);
        if (in->id == X86_INS_INT3) {
            size_t run = 1;
            while (left && *code == 0xcc)
                code++, left--, address++, run++;
            printf("%s%-14s  int3 x%zu (padding)\n", indent, where, run);
            continue;
        }
        render(in, text, sizeof text);
        /* A run of the same nop (filler) is one line too. */
        size_t run = 1;
        while (in->id == X86_INS_NOP && left >= in->size && !memcmp(code, code - in->size, in->size))
            code += in->size, left -= in->size, address += in->size, run++;
        if (run > 1)
            printf("%s%-14s %2u  %s  (x%zu)\n", indent, where, in->size, text, run);
        else
            printf("%s%-14s %2u  %s\n", indent, where, in->size, text);
    }
    cs_free(in, 1);
}

/* ---- unwind entries ----------------------------------------------------------------------------- */

static uint64_t uleb(const uint8_t **p)
{
    uint64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    return v;
}

static int64_t sleb(const uint8_t **p)
{
    int64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

/* A CFA program, one instruction a line; locations (FDE programs) named from `loc`. */
static void print_cfa(const uint8_t *p, const uint8_t *end, uint64_t loc, int64_t data_align, int in_fde)
{
    while (p < end) {
        uint8_t op = *p++;
        char where[96] = "";
        uint64_t advance = 0;
        int moved = 0;
        uint64_t r = 0, n = 0;
        printf("      ");
        switch (op >> 6) {
        case 1: advance = op & 0x3f; moved = 1; printf("DW_CFA_advance_loc %llu", (ull)advance); break;
        case 2: printf("DW_CFA_offset r%u at cfa%+lld", op & 0x3f, (ll)uleb(&p) * data_align); break;
        case 3: printf("DW_CFA_restore r%u", op & 0x3f); break;
        default:
            switch (op) {
            case 0x00: printf("DW_CFA_nop"); break;
            case 0x02: advance = *p++; moved = 1; printf("DW_CFA_advance_loc1 %llu", (ull)advance); break;
            case 0x03: { uint16_t v; memcpy(&v, p, 2); p += 2; advance = v; moved = 1;
                printf("DW_CFA_advance_loc2 %llu", (ull)advance); break; }
            case 0x04: { uint32_t v; memcpy(&v, p, 4); p += 4; advance = v; moved = 1;
                printf("DW_CFA_advance_loc4 %llu", (ull)advance); break; }
            case 0x05: r = uleb(&p);
                printf("DW_CFA_offset_extended r%llu at cfa%+lld", (ull)r, (ll)uleb(&p) * data_align); break;
            case 0x06: printf("DW_CFA_restore_extended r%llu", (ull)uleb(&p)); break;
            case 0x07: printf("DW_CFA_undefined r%llu", (ull)uleb(&p)); break;
            case 0x08: printf("DW_CFA_same_value r%llu", (ull)uleb(&p)); break;
            case 0x09: r = uleb(&p); printf("DW_CFA_register r%llu in r%llu", (ull)r, (ull)uleb(&p)); break;
            case 0x0a: printf("DW_CFA_remember_state"); break;
            case 0x0b: printf("DW_CFA_restore_state"); break;
            case 0x0c: r = uleb(&p); printf("DW_CFA_def_cfa r%llu ofs %llu", (ull)r, (ull)uleb(&p)); break;
            case 0x0d: printf("DW_CFA_def_cfa_register r%llu", (ull)uleb(&p)); break;
            case 0x0e: printf("DW_CFA_def_cfa_offset %llu", (ull)uleb(&p)); break;
            case 0x0f: n = uleb(&p); printf("DW_CFA_def_cfa_expression (%llu bytes)", (ull)n); p += n; break;
            case 0x10: r = uleb(&p); n = uleb(&p);
                printf("DW_CFA_expression r%llu (%llu bytes)", (ull)r, (ull)n); p += n; break;
            case 0x11: r = uleb(&p);
                printf("DW_CFA_offset_extended_sf r%llu at cfa%+lld", (ull)r, (ll)sleb(&p) * data_align); break;
            case 0x12: r = uleb(&p);
                printf("DW_CFA_def_cfa_sf r%llu ofs %lld", (ull)r, (ll)sleb(&p) * data_align); break;
            case 0x13: printf("DW_CFA_def_cfa_offset_sf %lld", (ll)sleb(&p) * data_align); break;
            case 0x14: r = uleb(&p); printf("DW_CFA_val_offset r%llu %lld", (ull)r, (ll)uleb(&p) * data_align); break;
            case 0x2e: printf("DW_CFA_GNU_args_size %llu", (ull)uleb(&p)); break;
            default: printf("unknown CFA op 0x%02x: the rest not shown\n", op); return;
            }
        }
        if (moved && in_fde) {
            loc += advance;
            name(loc, where, sizeof where);
            printf("  (to %s)", where);
        }
        printf("\n");
    }
}

/* The fragment pb_build made: one CIE, one FDE (absolute 8-byte addresses, "zR" or "zRS"), a
 * terminator. */
static void print_eh(const uint8_t *eh, size_t len)
{
    const uint8_t *at = eh, *end = eh + len;
    int64_t data_align = 1;
    while (at + 4 <= end) {
        uint32_t length;
        memcpy(&length, at, 4);
        if (!length) {
            printf("    terminator\n");
            break;
        }
        const uint8_t *body = at + 4, *next = body + length;
        uint32_t id;
        memcpy(&id, body, 4);
        const uint8_t *p = body + 4;
        if (id == 0) {
            uint8_t version = *p++;
            const char *aug = (const char *)p;
            p += strlen(aug) + 1;
            uint64_t code_align = uleb(&p);
            data_align = sleb(&p);
            uint64_t ret = version == 1 ? *p++ : uleb(&p);
            uint64_t auglen = aug[0] == 'z' ? uleb(&p) : 0;
            printf("    CIE: version %u, augmentation \"%s\" (data %llu byte%s: FDE encoding 0x%02x), code align %llu, "
                   "data align %lld, return address r%llu\n", version, aug, (ull)auglen,
                   auglen == 1 ? "" : "s", auglen ? p[0] : 0, (ull)code_align,
                   (ll)data_align, (ull)ret);
            p += auglen;
            print_cfa(p, next, 0, data_align, 0);
        } else {
            uint64_t begin, range;
            memcpy(&begin, p, 8);
            memcpy(&range, p + 8, 8);
            p += 16;
            uint64_t auglen = uleb(&p);
            p += auglen;
            char b[96], e[96];
            name(begin, b, sizeof b);
            /* The end is exclusive: named from the start's region (it may be the padding after it). */
            if (copied && begin == res.copy)
                snprintf(e, sizeof e, "copy+0x%llx", (ull)range);
            else
                name(begin + range, e, sizeof e);
            printf("    FDE: %s .. %s (%llu bytes), augmentation data %llu bytes\n", b, e,
                   (ull)range, (ull)auglen);
            print_cfa(p, next, begin, data_align, 1);
        }
        at = next;
    }
}

/* ---- seccomp, for the cases where the kernel refuses the copy's memory operations ---------------- */

static void deny(void)
{
    struct sock_filter f[16];
    int n = 0;
#define STMT(c, k) f[n++] = (struct sock_filter)BPF_STMT(c, k)
#define JUMP(c, k, t, e) f[n++] = (struct sock_filter)BPF_JUMP(c, k, t, e)
    STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    if (spec.deny_rx) { /* mprotect(..., PROT_READ|PROT_EXEC): the copy is never made executable */
        JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3);
        STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]));
        JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_READ | PROT_EXEC, 0, 1);
        STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    } else { /* the entry's two ways: /proc/self/mem opened O_RDWR, or the page made read+write */
        JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 3);
        STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]));
        JUMP(BPF_JMP | BPF_JSET | BPF_K, O_RDWR, 0, 5);
        STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
        JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3);
        STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]));
        JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_READ | PROT_WRITE, 0, 1);
        STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#undef STMT
#undef JUMP
    struct sock_fprog prog = {(unsigned short)n, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        die("seccomp: %s", strerror(errno));
}

/* ---- main --------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: golden_rewrite CASE.S%s", "");
    read_directives(argv[1]);
    typedef int rewrite_fn(const struct privbox_golden_request *, struct privbox_golden_result *);
    rewrite_fn *rewrite = (rewrite_fn *)dlsym(RTLD_DEFAULT, "privbox_golden_rewrite");
    if (!rewrite)
        die("privbox_golden_rewrite not found: run with LD_PRELOAD=libprivbox.so%s", "");
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
        die("capstone cannot be opened%s", "");
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
    cs_option(cs, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);

    void *fn = dlsym(RTLD_DEFAULT, spec.function);
    Dl_info info;
    const ElfW(Sym) *sym = 0;
    if (!fn || !dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym)
        die("the case's function %s is not an exported symbol", spec.function);
    static struct privbox_golden_request req;
    req.fn = (uint64_t)fn;
    req.size = sym->st_size;
    req.function = spec.function;
    req.no_unwinder = spec.no_unwinder;
    req.before_build = spec.deny_rx || spec.deny_patch ? deny : 0;
    for (int s = 0; s < spec.nsites; s++) {
        void *label = dlsym(RTLD_DEFAULT, spec.sites[s].label);
        if (!label)
            die("the site label %s is not an exported symbol", spec.sites[s].label);
        req.sites[s] = (struct privbox_golden_site){(uint64_t)label, syscall_nr(spec.sites[s].nr_name),
                                                    spec.sites[s].is_inline};
    }
    req.nsites = spec.nsites;
    if (spec.place_at) {
        /* The function's bytes at a chosen address outside every module (position-independent
         * inputs only: nothing in them is relocated). */
        void *p = mmap((void *)spec.place_at, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != (void *)spec.place_at || req.size > 4096)
            die("cannot place the function at the address its case asks for: %s", strerror(errno));
        memcpy(p, fn, req.size);
        mprotect(p, 4096, PROT_READ | PROT_EXEC);
        for (int s = 0; s < req.nsites; s++)
            req.sites[s].site += (uint64_t)p - req.fn;
        req.fn = (uint64_t)p;
    }
    fn_lo = req.fn;
    fn_hi = req.fn + req.size;

    printf("function %s, %llu bytes%s\n", spec.function, (ull)req.size,
           spec.place_at ? ", placed outside every module" : "");
    for (int s = 0; s < req.nsites; s++) {
        char n[96];
        name(req.sites[s].site, n, sizeof n);
        printf("site %s at %s: %s %s\n", spec.sites[s].label, n, spec.sites[s].is_inline ? "inline" : "call",
               spec.sites[s].nr_name);
    }
    printf("input:\n");
    list("  ", req.fn, req.size);
    fflush(stdout);

    int verdict = rewrite(&req, &res);
    copied = verdict == 1;
    for (char *line = res.notes, *nl; *line && (nl = strchr(line, '\n')); line = nl + 1)
        printf("note: %.*s\n", (int)(nl - line), line);
    if (verdict == 0) {
        printf("refused: %s\n", res.why);
        return 0;
    }
    if (verdict == 2) {
        printf("not copied: no site an entry serves\n");
        return 0;
    }
    if (verdict != 1) {
        printf("error: %s\n", res.why);
        return 1;
    }
    printf("copy (%u bytes):\n", res.copy_len);
    list("  ", res.copy, res.copy_len);
    printf("entry (the original's first 5 bytes, patched):\n");
    list("  ", req.fn, 5);
    for (int s = 0; s < res.nstubs; s++) {
        char n[96];
        printf("stub%d:\n", s);
        list("  ", res.stubs[s], res.stub_bytes - 8);
        uint64_t slot;
        memcpy(&slot, (const void *)(res.stubs[s] + res.stub_bytes - 8), 8);
        name(slot, n, sizeof n);
        printf("  %-14s  .quad %s\n", "slot", n);
    }
    if (res.eh) {
        printf("unwind entry (%zu bytes):\n", res.eh_len);
        print_eh(res.eh, res.eh_len);
    } else {
        printf("unwind entry: none\n");
    }
    return 0;
}
