/*
 * copies.c — instrumented copies of the functions that hold a hot loop's sites (accelerate mode).
 *
 * A route (routes.c) is found by return address, so it can serve only calls that go through
 * libc's exported wrappers, and it pays a table probe on each. An instrumented copy serves the
 * rest: the function holding a profiled site is decoded (capstone, loaded only when a plan asks
 * for a copy), copied next to its module, and in the copy
 *  - each `syscall` instruction at a profiled site whose call an executor answers in user space
 *    (the identity values) becomes a jump to a stub made for that site, which calls the value's
 *    entry (copy_entries.S) below the red zone and jumps back;
 *  - each call to an interposed identity wrapper at a profiled site becomes the cached value's
 *    load, inline (pb_call_fast_path), followed by a call to that value's entry for when nothing
 *    valid is cached (no PLT, no route probe), and every other routed call site keeps its call,
 *    with a route added for its new return address;
 *  - relative branches and RIP-relative operands are relocated (short branches widened), so the
 *    copy reads and writes the same data and calls the same functions;
 * and the original function's first instruction becomes a jump to the copy.
 *
 * Why the program observes the same thing. The copy runs the original's instructions in the
 * original's order on the same data; each replaced `syscall` returns what the kernel would (the
 * executor's argument, executors/identity.c) with the registers and flags the kernel keeps
 * (copy_entries.S). What differs is where the code is: return addresses pushed from the copy point
 * into it. So that unwinding (C++ exceptions, pthread_cancel, backtrace) still crosses these
 * frames, the function's unwind table entry is translated to the copy's addresses and registered
 * with libgcc's unwinder; a function with exception landing pads (an LSDA, whose offsets would
 * have to move too) is not copied. A frame inside a site stub itself (a few instructions, the
 * identity fill, or the `syscall` the stub makes when the entry does not answer) has no unwind
 * entry: an unwind started there (a signal handler's backtrace, asynchronous cancellation) stops
 * at it.
 *
 * What is refused (logged at info level as "not copied", the sites then run as before): code
 * capstone cannot decode (data in the text), indirect jumps (a jump table can land in the original,
 * which stays correct but is not instrumented, or in the entry's patched bytes), branches into
 * the middle of an instruction or into the entry's first 5 bytes, references to those bytes,
 * jumps to parts of the function placed elsewhere (GCC's .cold parts jump back into the original,
 * where this file cannot check them), branch forms with no 32-bit equivalent (loop, jrcxz,
 * xbegin), functions shorter than the 5-byte entry jump, unwind tables this file cannot
 * translate or register with the program's unwinder, and everything when other threads are
 * already running (the entry is patched while no thread can be executing it). Not checkable
 * here: a jump from another function into the first 5 bytes of this one.
 *
 * Invalidation. fork/vfork/clone children inherit the copies with the memory: the code is
 * unchanged and the identity cache is the executor's (wiped in fork children, marked busy around
 * vfork). exec replaces the image. Threads share the copies; the entries read the cache and fill
 * it through the executor's own compare-and-swap; the per-site counts for the report are plain
 * adds (a lower bound when threads share a site).
 * Signals: a handler runs on the same stack below the stub's frame and may itself call these
 * entries (they are reentrant). Credentials and process groups: the identity executor's own
 * invalidation (set*id, setpgid, setsid, unshare, setns wrappers).
 *
 * W^X: the copy is written into a private anonymous mapping that is made read+execute before the
 * entry points to it; each entry's 5 bytes are written through /proc/self/mem, the page staying
 * read+execute (pb_patch_entry has the fallback), before main() and while this is the only
 * thread.
 */
#include "executors/identity.h"
#include "executors/executor.h"
#include "rewriter/rewriter.h"

#include <capstone/capstone.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <link.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* ---- capstone, loaded on demand ----------------------------------------------------------------- */

static struct {
    cs_err (*open)(cs_arch, cs_mode, csh *);
    cs_err (*option)(csh, cs_opt_type, size_t);
    size_t (*disasm)(csh, const uint8_t *, size_t, uint64_t, size_t, cs_insn **);
    void (*free)(cs_insn *, size_t);
    cs_err (*close)(csh *);
    cs_insn *(*malloc)(csh);
    bool (*disasm_iter)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *);
    unsigned (*version)(int *, int *);
    void *lib;
    csh handle;
    int state; /* 0 not tried, 1 loaded, -1 unavailable */
} pb_cs;

int pb_cs_load(void)
{
    if (pb_cs.state)
        return pb_cs.state == 1;
    pb_cs.state = -1;
    /* Only the ABI this file was compiled against (instruction ids and cs_detail differ in 5). */
    void *lib = dlopen("libcapstone.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return 0;
    *(void **)&pb_cs.open = dlsym(lib, "cs_open");
    *(void **)&pb_cs.option = dlsym(lib, "cs_option");
    *(void **)&pb_cs.disasm = dlsym(lib, "cs_disasm");
    *(void **)&pb_cs.free = dlsym(lib, "cs_free");
    *(void **)&pb_cs.close = dlsym(lib, "cs_close");
    *(void **)&pb_cs.malloc = dlsym(lib, "cs_malloc");
    *(void **)&pb_cs.disasm_iter = dlsym(lib, "cs_disasm_iter");
    *(void **)&pb_cs.version = dlsym(lib, "cs_version");
    pb_cs.lib = lib;
    int major = 0, minor = 0;
    if (pb_cs.version)
        pb_cs.version(&major, &minor);
    if (major != CS_API_MAJOR || minor != CS_API_MINOR || !pb_cs.malloc || !pb_cs.disasm_iter ||
        !pb_cs.open || !pb_cs.option || !pb_cs.disasm || !pb_cs.free || !pb_cs.close ||
        pb_cs.open(CS_ARCH_X86, CS_MODE_64, &pb_cs.handle) != CS_ERR_OK)
        return 0;
    pb_cs.option(pb_cs.handle, CS_OPT_DETAIL, CS_OPT_ON);
    pb_cs.state = 1;
    return 1;
}

/* ---- libgcc's unwinder, for the copies' unwind entries ------------------------------------------ */

void (*pb_register_frame)(void *);

/* ---- the entries a site stub calls (copy_entries.S) ------------------------------------------- */

#define PB_COPY_ENTRY(name) extern char pb_copy_inline_##name[] PB_HIDDEN, pb_copy_call_##name[] PB_HIDDEN;
PB_COPY_ENTRY(getpid)
PB_COPY_ENTRY(getuid)
PB_COPY_ENTRY(geteuid)
PB_COPY_ENTRY(getgid)
PB_COPY_ENTRY(getegid)
PB_COPY_ENTRY(getpgrp)
PB_COPY_ENTRY(gettid)

/* which: the value's word in the identity page (PB_ID_*), or -1 for gettid (the thread's own). */
static const struct {
    unsigned nr;
    int which;
    void *inline_entry, *call_entry;
} pb_copy_entries[] = {
    {SYS_getpid, PB_ID_PID, pb_copy_inline_getpid, pb_copy_call_getpid},
    {SYS_getuid, PB_ID_UID, pb_copy_inline_getuid, pb_copy_call_getuid},
    {SYS_geteuid, PB_ID_EUID, pb_copy_inline_geteuid, pb_copy_call_geteuid},
    {SYS_getgid, PB_ID_GID, pb_copy_inline_getgid, pb_copy_call_getgid},
    {SYS_getegid, PB_ID_EGID, pb_copy_inline_getegid, pb_copy_call_getegid},
    {SYS_getpgrp, PB_ID_PGRP, pb_copy_inline_getpgrp, pb_copy_call_getpgrp},
    {SYS_gettid, -1, pb_copy_inline_gettid, pb_copy_call_gettid},
};

static const __typeof__(pb_copy_entries[0]) *pb_copy_entry(unsigned nr)
{
    for (size_t i = 0; i < sizeof pb_copy_entries / sizeof pb_copy_entries[0]; i++)
        if (pb_copy_entries[i].nr == nr)
            return &pb_copy_entries[i];
    return 0;
}

static void *pb_copy_entry_for(unsigned nr, int is_inline)
{
    const __typeof__(pb_copy_entries[0]) *e = pb_copy_entry(nr);
    return !e ? 0 : is_inline ? e->inline_entry : e->call_entry;
}

/*
 * A call site's fast path, emitted in the copy just before the site's call to its stub: the load
 * pb_copy_call_NAME (copy_entries.S) would make, inline, so that a served call costs a load and a
 * branch instead of a call, an indirect jump and a return. It is that entry's logic, instruction
 * for instruction, and so exact for the same reasons (executors/identity.c): the value's word is read
 * once, atomically; only a valid word (bit 63) is served, its low 32 bits zero-extended into rax,
 * and the call is skipped; anything else (nothing cached, a vfork or identity change in flight,
 * executors stopped by a seccomp filter: all of them clear the valid bit) falls through to the
 * call, which is the one that was there before this fast path existed. gettid's word is the
 * thread's own (pb_my_tid, read at its fixed offset from the thread pointer: libprivbox's TLS is
 * initial-exec) and is served only while it was read under the current pid word.
 * A served call sets the site's word to 1, for the report (a store, not an add: an add would make
 * each call wait for the previous one's, which more than doubled the served call's cost).
 * Clobbers rax and the arithmetic flags only, which the skipped call would have clobbered too; the
 * stack is not touched, so the function's unwind rows hold inside it.
 * Writes it at o, which will run at address `at`, unless o is null; returns its length, 0 when
 * there is none (no identity page, or no thread pointer offset that fits), or -1 if `count` is
 * out of reach of a 32-bit displacement from `at` (only known when o is given).
 */
#define PB_FAST_PATH_MAX 64
static int pb_call_fast_path(uint8_t *o, uint64_t at, unsigned nr, uint64_t count)
{
    const __typeof__(pb_copy_entries[0]) *e = pb_copy_entry(nr);
    if (!e || !pb_id)
        return 0;
    int which = e->which;
    uint8_t b[PB_FAST_PATH_MAX];
    int n = 0;
    uint64_t word = (uint64_t)&pb_id->ids[which < 0 ? PB_ID_PID : which];
    b[n++] = 0x48; b[n++] = 0xb8; memcpy(b + n, &word, 8); n += 8;           /* movabs $word,%rax */
    b[n++] = 0x48; b[n++] = 0x8b; b[n++] = 0x00;                             /* mov (%rax),%rax */
    b[n++] = 0x48; b[n++] = 0x85; b[n++] = 0xc0;                             /* test %rax,%rax */
    if (which >= 0) {
        b[n++] = 0x79; b[n++] = 7 + 2 + 2;                                   /* jns call */
    } else {
        char *tp;
        __asm__("movq %%fs:0, %0" : "=r"(tp));
        int64_t off = (int64_t)((char *)&pb_my_tid - tp);
        if (off != (int32_t)off || off + 8 != (int32_t)(off + 8))
            return 0;
        int32_t pid_at = (int32_t)off, tid_at = (int32_t)(off + 8);
        b[n++] = 0x79; b[n++] = 9 + 2 + 8 + 7 + 2 + 2;                       /* jns call */
        b[n++] = 0x64; b[n++] = 0x48; b[n++] = 0x39; b[n++] = 0x04; b[n++] = 0x25; /* cmp %rax,%fs:pid_word */
        memcpy(b + n, &pid_at, 4); n += 4;
        b[n++] = 0x75; b[n++] = 8 + 7 + 2 + 2;                               /* jne call */
        b[n++] = 0x64; b[n++] = 0x8b; b[n++] = 0x04; b[n++] = 0x25;          /* mov %fs:tid,%eax */
        memcpy(b + n, &tid_at, 4); n += 4;
    }
    b[n++] = 0xc6; b[n++] = 0x05;                                            /* movb $1,count(%rip) */
    int64_t rel = (int64_t)(count - (at + (uint64_t)n + 5));
    int32_t r32 = (int32_t)rel;
    memcpy(b + n, &r32, 4); n += 4;
    b[n++] = 1;
    b[n++] = 0x89; b[n++] = 0xc0;                                            /* mov %eax,%eax */
    b[n++] = 0xeb; b[n++] = 5;                                               /* jmp past the call */
    if (o) {
        if (rel < INT32_MIN || rel > INT32_MAX)
            return -1;
        memcpy(o, b, (size_t)n);
    }
    return n;
}

/* ---- what was copied, for the report at exit ------------------------------------------------ */

struct pb_copied_site {
    char label[160];
    int boxed;        /* a syscall instruction in a copy that runs in a box: through the kernel gate */
    enum pb_executor_id executor;
    uint64_t *served; /* inline sites: calls answered from the cache (the stub adds to it); call
                       * sites with a fast path: 1 once it answered (pb_call_fast_path) */
    int call_site;
};
static struct pb_copied_site *pb_copied;
static size_t pb_copied_count, pb_copied_cap;
volatile int pb_copies_use_identity;

/* Room for one more pb_copied entry; 0 when there is no memory for it. */
static int pb_copied_reserve(void)
{
    if (pb_copied_count < pb_copied_cap)
        return 1;
    size_t cap = pb_copied_cap ? 2 * pb_copied_cap : 64;
    struct pb_copied_site *grown = pb_map(cap * sizeof *grown);
    if (!grown)
        return 0;
    if (pb_copied) {
        memcpy(grown, pb_copied, pb_copied_count * sizeof *grown);
        pb_raw_syscall6(SYS_munmap, (long)pb_copied, (long)(pb_copied_cap * sizeof *grown), 0, 0, 0, 0);
    }
    pb_copied = grown;
    pb_copied_cap = cap;
    return 1;
}

/* ---- decoding ----------------------------------------------------------------------------------- */

/* struct pb_insn, struct pb_copy_job and struct pb_stub_plan: rewriter/rewriter.h (golden.c uses
 * them too). */

/* Where in the instruction its 4-byte RIP-relative displacement is: the candidate positions hold
 * the displacement's bytes; the right one is the position where changing them changes the decoded
 * displacement (and nothing else). 0 if none. */
static int pb_disp_position(const cs_insn *in, int64_t disp)
{
    int32_t d = (int32_t)disp;
    for (int p = (int)in->size - 4; p >= 1; p--) {
        if (memcmp(in->bytes + p, &d, 4) != 0)
            continue;
        uint8_t probe[16];
        memcpy(probe, in->bytes, in->size);
        int32_t changed = d ^ 0x01020304;
        memcpy(probe + p, &changed, 4);
        cs_insn *out = 0;
        size_t n = pb_cs.disasm(pb_cs.handle, probe, in->size, in->address, 1, &out);
        int ok = n == 1 && out->size == in->size && out->id == in->id &&
                 out->detail->x86.disp == changed;
        if (n)
            pb_cs.free(out, n);
        if (ok)
            return p;
    }
    return 0;
}

/* The branch opcode of a relative jmp/jcc/call (after ignorable prefixes), or 0. */
static int pb_branch_form(const cs_insn *in, uint8_t *branch)
{
    size_t i = 0;
    while (i < in->size && (in->bytes[i] == 0xf2 || in->bytes[i] == 0x2e || in->bytes[i] == 0x3e ||
                            (in->bytes[i] & 0xf0) == 0x40))
        i++;
    if (i >= in->size)
        return 0;
    uint8_t b = in->bytes[i];
    if (b == 0xe8 || b == 0xe9) {
        *branch = b;
        return 1;
    }
    if (b == 0xeb) {
        *branch = 0xe9;
        return 1;
    }
    if (b >= 0x70 && b <= 0x7f) {
        *branch = (uint8_t)(0x80 + (b & 15));
        return 1;
    }
    if (b == 0x0f && i + 1 < in->size && in->bytes[i + 1] >= 0x80 && in->bytes[i + 1] <= 0x8f) {
        *branch = in->bytes[i + 1];
        return 1;
    }
    return 0;
}

/* ---- unwind information ------------------------------------------------------------------------- */

struct pb_reader { const uint8_t *p, *end; int bad; };

static uint64_t pb_uleb(struct pb_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; r->p < r->end && shift < 64; shift += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t pb_sleb(struct pb_reader *r)
{
    int64_t v = 0;
    int shift = 0;
    uint8_t b = 0x80;
    while (r->p < r->end && (b & 0x80) && shift < 64) {
        b = *r->p++;
        v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
    }
    if (b & 0x80) {
        r->bad = 1;
        return 0;
    }
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

static uint64_t pb_fixed(struct pb_reader *r, int n)
{
    if (r->end - r->p < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, (size_t)n);
    r->p += n;
    return v; /* the signed forms are sign-extended by the caller */
}

/* A DW_EH_PE-encoded pointer. `data` is the base of datarel values (the .eh_frame_hdr). */
static uint64_t pb_encoded(struct pb_reader *r, uint8_t enc, uint64_t data)
{
    if (enc == 0xff)
        return 0;
    const uint8_t *at = r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = pb_fixed(r, 8); break;
    case 0x01: v = pb_uleb(r); break;
    case 0x02: v = pb_fixed(r, 2); break;
    case 0x03: v = pb_fixed(r, 4); break;
    case 0x04: v = pb_fixed(r, 8); break;
    case 0x09: v = (uint64_t)pb_sleb(r); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)pb_fixed(r, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)pb_fixed(r, 4); break;
    case 0x0c: v = pb_fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += (uint64_t)at; break;
    case 0x30: v += data; break;
    default: r->bad = 1; return 0;
    }
    if (enc & 0x80) /* indirect: the value is the address of the pointer */
        v = *(const uint64_t *)v;
    return v;
}

struct pb_eh_search { uint64_t fn; uint64_t hdr; uint64_t bias; const ElfW(Dyn) *dynamic; };

static int pb_find_eh_hdr(struct dl_phdr_info *info, size_t size, void *data)
{
    struct pb_eh_search *s = data;
    uint64_t hdr = 0;
    int inside = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && s->fn >= lo && s->fn < lo + ph->p_memsz)
            inside = 1;
        if (ph->p_type == PT_GNU_EH_FRAME)
            hdr = lo;
        if (ph->p_type == PT_DYNAMIC)
            s->dynamic = (const ElfW(Dyn) *)lo;
    }
    if (inside) {
        s->hdr = hdr;
        s->bias = info->dlpi_addr;
        return 1;
    }
    s->dynamic = 0;
    return 0;
}

/* The dynamic symbol whose GOT slot is at `slot` (a JUMP_SLOT or GLOB_DAT relocation of the module
 * holding `fn`), or 0. */
static const char *pb_got_symbol(uint64_t fn, uint64_t slot)
{
    struct pb_eh_search s = {fn, 0, 0, 0};
    dl_iterate_phdr(pb_find_eh_hdr, &s);
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
static const char *pb_call_symbol(uint64_t fn, uint64_t target, int direct)
{
    if (!direct) /* call *slot(%rip) */
        return pb_got_symbol(fn, target);
    /* A PLT entry: [endbr64;] [bnd] jmp *slot(%rip). */
    cs_insn *plt = 0;
    size_t n = pb_cs.disasm(pb_cs.handle, (const uint8_t *)target, 16, target, 2, &plt);
    const char *name = 0;
    for (size_t i = 0; i < n && !name; i++) {
        const cs_x86 *x = &plt[i].detail->x86;
        if (plt[i].id == X86_INS_ENDBR64)
            continue;
        if (plt[i].id == X86_INS_JMP && x->op_count == 1 && x->operands[0].type == X86_OP_MEM &&
            x->operands[0].mem.base == X86_REG_RIP && x->operands[0].mem.index == X86_REG_INVALID)
            name = pb_got_symbol(fn, plt[i].address + plt[i].size + (uint64_t)x->operands[0].mem.disp);
        break;
    }
    if (n)
        pb_cs.free(plt, n);
    return name;
}

/* Whether `name` resolves, for the program, to privbox's own wrapper: not when another preloaded
 * library (an interposer before privbox, e.g. fakeroot's getuid) defines it first. */
static int pb_resolves_to_privbox(const char *name)
{
    Dl_info mine, theirs;
    void *f = dlsym(RTLD_DEFAULT, name);
    return f && dladdr((void *)pb_resolves_to_privbox, &mine) && dladdr(f, &theirs) &&
           mine.dli_fbase == theirs.dli_fbase;
}


struct pb_fde_info {
    const uint8_t *cie_insns, *cie_end;   /* the CIE's initial instructions */
    const uint8_t *insns, *end;           /* the FDE's instructions */
    uint64_t code_align, pc_begin, pc_range;
    int64_t data_align;
    uint64_t return_reg;
    uint8_t fde_enc;
    int signal_frame, has_lsda;
};

/* The unwind entry of [fn, fn+size): 1 found, 0 none (the function has no unwind information,
 * like the original's), -1 present but not in a form this file translates. With size 0, the
 * entry whose range holds the address fn, whatever its bounds. */
static int pb_find_fde(uint64_t fn, uint64_t size, struct pb_fde_info *out, const char **why)
{
    struct pb_eh_search s = {fn, 0, 0, 0};
    dl_iterate_phdr(pb_find_eh_hdr, &s);
    if (!s.hdr)
        return 0;
    const uint8_t *h = (const uint8_t *)s.hdr;
    if (h[0] != 1 || h[2] != 0x03 || h[3] != 0x3b) {
        *why = "its module's unwind table index has an unusual encoding";
        return -1;
    }
    struct pb_reader r = {h + 4, h + 16, 0};
    pb_encoded(&r, h[1], s.hdr);
    uint32_t count = (uint32_t)pb_fixed(&r, 4);
    const int32_t *table = (const int32_t *)r.p;
    /* The last entry whose start is <= fn. */
    long lo = 0, hi = (long)count - 1, found = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        uint64_t start = s.hdr + (int64_t)table[2 * mid];
        if (start <= fn) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (found < 0)
        return 0;
    const uint8_t *fde = (const uint8_t *)(s.hdr + (int64_t)table[2 * found + 1]);
    uint32_t len = *(const uint32_t *)fde;
    if (len == 0xffffffffu) {
        *why = "its unwind entry is in the 64-bit format";
        return -1;
    }
    const uint8_t *fde_end = fde + 4 + len;
    int32_t cie_off = *(const int32_t *)(fde + 4);
    const uint8_t *cie = fde + 4 - cie_off;
    uint32_t cie_len = *(const uint32_t *)cie;
    if (cie_len == 0xffffffffu || *(const uint32_t *)(cie + 4) != 0) {
        *why = "its unwind entry's CIE is not in the expected format";
        return -1;
    }
    struct pb_reader c = {cie + 9, cie + 4 + cie_len, 0};
    uint8_t version = cie[8];
    const char *aug = (const char *)c.p;
    size_t aug_len = strnlen(aug, (size_t)(c.end - c.p));
    c.p += aug_len + 1;
    if (strstr(aug, "eh")) {
        *why = "its unwind entry uses the old \"eh\" augmentation";
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->code_align = pb_uleb(&c);
    out->data_align = pb_sleb(&c);
    out->return_reg = version == 1 ? pb_fixed(&c, 1) : pb_uleb(&c);
    uint8_t lsda_enc = 0xff;
    out->fde_enc = 0;
    if (aug[0] == 'z') {
        uint64_t n = pb_uleb(&c);
        const uint8_t *aug_end = c.p + n;
        for (const char *a = aug + 1; *a && !c.bad; a++) {
            if (*a == 'L') {
                lsda_enc = (uint8_t)pb_fixed(&c, 1);
            } else if (*a == 'R') {
                out->fde_enc = (uint8_t)pb_fixed(&c, 1);
            } else if (*a == 'P') {
                uint8_t penc = (uint8_t)pb_fixed(&c, 1);
                pb_encoded(&c, penc & 0x7f, 0); /* the personality routine: dropped (no LSDA) */
            } else if (*a == 'S') {
                out->signal_frame = 1;
            } else {
                *why = "its unwind entry has an augmentation this file does not know";
                return -1;
            }
        }
        c.p = aug_end;
    } else if (aug[0]) {
        *why = "its unwind entry has an augmentation this file does not know";
        return -1;
    }
    if (c.bad || c.p > c.end || out->code_align != 1) {
        *why = "its unwind entry's CIE could not be read";
        return -1;
    }
    out->cie_insns = c.p;
    out->cie_end = c.end;
    struct pb_reader f = {fde + 8, fde_end, 0};
    out->pc_begin = pb_encoded(&f, out->fde_enc, 0);
    out->pc_range = pb_encoded(&f, out->fde_enc & 0x0f, 0);
    if (aug[0] == 'z') {
        uint64_t n = pb_uleb(&f);
        const uint8_t *aug_end = f.p + n;
        if (lsda_enc != 0xff) {
            /* A null LSDA is a raw 0, before any base is applied (as libgcc reads it). */
            struct pb_reader l = {f.p, aug_end, 0};
            out->has_lsda = pb_encoded(&l, lsda_enc & 0x0f, 0) != 0;
        }
        f.p = aug_end;
    }
    if (f.bad || f.p > f.end) {
        *why = "its unwind entry could not be read";
        return -1;
    }
    if (out->pc_begin > fn || fn >= out->pc_begin + out->pc_range)
        return 0; /* the nearest entry is another function's: this one has none */
    if (size && (out->pc_begin != fn || out->pc_begin + out->pc_range < fn + size)) {
        *why = "its unwind entry does not cover exactly the function";
        return -1;
    }
    out->insns = f.p;
    out->end = fde_end;
    return 1;
}

/* Whether a jump out of the function to `target` may come back into it: a jump to another
 * function's first instruction (a tail call) or to a PLT entry cannot; anything else is a part
 * of this function placed elsewhere (GCC's .cold parts), which jumps back into the original at
 * places this file does not see. */
static int pb_jump_may_return(uint64_t target)
{
    struct pb_fde_info fi;
    const char *why = "";
    if (pb_find_fde(target, 0, &fi, &why) == 1 && fi.pc_begin == target)
        return 0;
    const uint8_t *b = (const uint8_t *)target;
    if (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) /* endbr64 */
        b += 4;
    if (b[0] == 0xf2) /* bnd */
        b++;
    return !(b[0] == 0xff && b[1] == 0x25); /* jmp *slot(%rip): a PLT entry */
}

/* A part of the function placed elsewhere (the one holding `target`, bounded by its unwind entry)
 * runs on in the original when it jumps back: harmless unless it jumps into the original's first
 * 5 bytes (the patched entry), or anywhere unknown (an indirect jump). Decoded with capstone into
 * `scratch`. */
static int pb_part_safe(uint64_t fn, uint64_t target, cs_insn *scratch)
{
    struct pb_fde_info fi;
    const char *why = "";
    if (pb_find_fde(target, 0, &fi, &why) != 1 || fi.pc_range > PB_COPY_MAX_BYTES)
        return 0;
    const uint8_t *code = (const uint8_t *)fi.pc_begin;
    size_t left = (size_t)fi.pc_range;
    uint64_t address = fi.pc_begin;
    while (left) {
        if (!pb_cs.disasm_iter(pb_cs.handle, &code, &left, &address, scratch))
            return 0;
        const cs_x86 *x = &scratch->detail->x86;
        int is_jump = 0;
        for (int g = 0; g < scratch->detail->groups_count; g++)
            is_jump |= scratch->detail->groups[g] == CS_GRP_JUMP;
        if (!is_jump)
            continue;
        if (x->op_count != 1 || x->operands[0].type != X86_OP_IMM)
            return 0; /* an indirect jump: it could land anywhere */
        uint64_t t = (uint64_t)x->operands[0].imm;
        if (t > fn && t < fn + 5)
            return 0;
    }
    return 1;
}

/* The copy's offset for an offset of the original (an instruction start, or the end). */
static long pb_map_offset(const struct pb_insn *insns, long n, uint64_t off, uint32_t new_size)
{
    long lo = 0, hi = n - 1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (insns[mid].off == off)
            return insns[mid].new_off;
        if (insns[mid].off < off)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    if (n && off == (uint64_t)insns[n - 1].off + insns[n - 1].len)
        return new_size;
    return -1;
}

struct pb_writer { uint8_t *p, *end; int bad; };

static void pb_put(struct pb_writer *w, const void *bytes, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        w->bad = 1;
        return;
    }
    memcpy(w->p, bytes, n);
    w->p += n;
}
static void pb_put8(struct pb_writer *w, uint8_t v) { pb_put(w, &v, 1); }
static void pb_put32(struct pb_writer *w, uint32_t v) { pb_put(w, &v, 4); }
static void pb_put64(struct pb_writer *w, uint64_t v) { pb_put(w, &v, 8); }
static void pb_put_uleb(struct pb_writer *w, uint64_t v)
{
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        pb_put8(w, (uint8_t)(b | (v ? 0x80 : 0)));
    } while (v);
}
static void pb_put_sleb(struct pb_writer *w, int64_t v)
{
    for (;;) {
        uint8_t b = v & 0x7f;
        v >>= 7;
        if ((v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40))) {
            pb_put8(w, b);
            return;
        }
        pb_put8(w, (uint8_t)(b | 0x80));
    }
}

/* Copies a CFA program, moving its locations from the original's offsets to the copy's. Returns
 * 0, or -1 for an instruction it does not know or a location that is not an instruction start. */
static int pb_translate_cfa(const uint8_t *p, const uint8_t *end, const struct pb_insn *insns,
                            long n, uint32_t new_size, uint8_t fde_enc, uint64_t fn,
                            struct pb_writer *w)
{
    struct pb_reader r = {p, end, 0};
    uint64_t loc = 0;
    long new_loc = 0;
    while (r.p < r.end && !r.bad && !w->bad) {
        const uint8_t *op_start = r.p;
        uint8_t op = *r.p++;
        uint64_t advance = 0;
        int moves = 0, absolute = 0;
        switch (op >> 6) {
        case 1: advance = op & 0x3f; moves = 1; break;
        case 2: pb_uleb(&r); break;
        case 3: break;
        default:
            switch (op) {
            case 0x00: case 0x0a: case 0x0b: case 0x2d: break;
            case 0x01: loc = pb_encoded(&r, fde_enc, 0) - fn; moves = absolute = 1; break;
            case 0x02: advance = pb_fixed(&r, 1); moves = 1; break;
            case 0x03: advance = pb_fixed(&r, 2); moves = 1; break;
            case 0x04: advance = pb_fixed(&r, 4); moves = 1; break;
            case 0x05: case 0x09: case 0x0c: case 0x14: case 0x2f: pb_uleb(&r); pb_uleb(&r); break;
            case 0x06: case 0x07: case 0x08: case 0x0d: case 0x0e: case 0x2e: pb_uleb(&r); break;
            case 0x11: case 0x12: case 0x15: pb_uleb(&r); pb_sleb(&r); break;
            case 0x13: pb_sleb(&r); break;
            case 0x0f: { uint64_t len = pb_uleb(&r); r.p += len; break; }
            case 0x10: case 0x16: { pb_uleb(&r); uint64_t len = pb_uleb(&r); r.p += len; break; }
            default: return -1;
            }
        }
        if (r.p > r.end || r.bad)
            return -1;
        if (!moves) {
            pb_put(w, op_start, (size_t)(r.p - op_start));
            continue;
        }
        if (!absolute)
            loc += advance;
        long to = pb_map_offset(insns, n, loc, new_size);
        if (to < 0 || to < new_loc)
            return -1;
        pb_put8(w, 0x04); /* DW_CFA_advance_loc4 */
        pb_put32(w, (uint32_t)(to - new_loc));
        new_loc = to;
    }
    return r.bad || w->bad ? -1 : 0;
}

/* An .eh_frame fragment (one CIE, one FDE, the terminator) for the copy at `copy`. */
static int pb_build_eh_frame(const struct pb_fde_info *fi, const struct pb_insn *insns, long n,
                             uint64_t fn, uint64_t copy, uint32_t new_size, struct pb_writer *w)
{
    uint8_t *cie = w->p;
    pb_put32(w, 0); /* length, below */
    pb_put32(w, 0); /* CIE id */
    pb_put8(w, 1);  /* version */
    pb_put(w, fi->signal_frame ? "zRS" : "zR", fi->signal_frame ? 4 : 3);
    pb_put_uleb(w, fi->code_align);
    pb_put_sleb(w, fi->data_align);
    pb_put8(w, (uint8_t)fi->return_reg);
    pb_put_uleb(w, 1);
    pb_put8(w, 0x00); /* FDE addresses: absolute, 8 bytes */
    pb_put(w, fi->cie_insns, (size_t)(fi->cie_end - fi->cie_insns));
    while (!w->bad && (w->p - cie) % 8)
        pb_put8(w, 0);
    if (w->bad)
        return -1;
    uint32_t cie_len = (uint32_t)(w->p - cie - 4);
    memcpy(cie, &cie_len, 4);
    uint8_t *fde = w->p;
    pb_put32(w, 0);
    pb_put32(w, (uint32_t)(w->p - cie));
    pb_put64(w, copy);
    pb_put64(w, new_size + 5); /* and the jump after it, where the original's last row applies */
    pb_put_uleb(w, 0);
    if (pb_translate_cfa(fi->insns, fi->end, insns, n, new_size, fi->fde_enc, fn, w) != 0)
        return -1;
    while (!w->bad && (w->p - fde) % 8)
        pb_put8(w, 0);
    pb_put32(w, 0); /* terminator */
    if (w->bad)
        return -1;
    uint32_t fde_len = (uint32_t)(w->p - 4 - fde - 4);
    memcpy(fde, &fde_len, 4);
    return 0;
}

/* ---- memory ------------------------------------------------------------------------------------- */

/* A private anonymous mapping of `len` bytes within 1 GiB below `near`, as close to it as a gap in
 * /proc/self/maps allows, so that rel32 reaches both ways. Only below: above a program's image the
 * kernel grows its brk heap, which a mapping there would cut short. 0 if there is no room. */
static uint8_t *pb_map_near(uint64_t near, size_t len)
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
                pb_raw_syscall6(SYS_munmap, p, (long)len, 0, 0, 0, 0);
        }
    }
    pb_raw_syscall6(SYS_munmap, (long)maps, (long)cap, 0, 0, 0, 0);
    return out;
}

static int pb_fits32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

/* Whether the process has one thread (/proc/self/stat, field 20). */
static int pb_single_threaded(void)
{
    char buf[1024];
    long n = pb_read_file("/proc/self/stat", buf, sizeof buf - 1);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    int field = 2;
    for (p++; *p && field < 20; p++)
        if (*p == ' ')
            field++;
    return p[0] == '1' && p[1] == ' ';
}

/* ---- patching an entry --------------------------------------------------------------------------
 * Written through /proc/self/mem, as a debugger writes a breakpoint: the page keeps its protection
 * (read+execute) throughout, so it is never writable and executable at once and never, even
 * briefly, not executable. Where /proc/self/mem cannot be written, the page is made read+write
 * (not executable) for the store and read+execute again, with every signal blocked so that no
 * handler can run code on it meanwhile; if it cannot be made executable again the original bytes
 * are put back first. Raw system calls and privbox's own code only, so nothing runs from the
 * page being patched. 0 on success. */
static int pb_patch_entry(uint64_t fn, const uint8_t jump[5])
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

/* ---- one function ------------------------------------------------------------------------------ */

static void pb_refuse(struct pb_copy_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pb_refuse(struct pb_copy_job *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->why, sizeof job->why, fmt, ap);
    va_end(ap);
    pb_log(PB_LOG_INFO, "not copied: %s (%s+0x%llx): %s; its sites run as before",
           job->function[0] ? job->function : "?", job->module,
           (unsigned long long)(job->fn - job->bias_for_log), job->why);
}

/* Something said about a site while decoding: logged, and kept for the decode cache. */
static void pb_note(struct pb_copy_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pb_note(struct pb_copy_job *job, const char *fmt, ...)
{
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pb_log(PB_LOG_INFO, "%s", line);
    size_t used = strlen(job->notes);
    snprintf(job->notes + used, sizeof job->notes - used, "%s\n", line);
}

/* Decodes and classifies the function (capstone): 1 with its instructions and site stubs, 0 refused
 * (job->why), 2 nothing to instrument. */
int pb_decode(struct pb_copy_job *job, struct pb_insn **insns_out, size_t *count_out,
              struct pb_stub_plan *stubs, int *nstubs_out)
{
    const uint64_t fn = job->fn, size = job->size;
    if (size < 5) {
        pb_refuse(job, "it is shorter than the 5-byte jump its entry needs");
        return 0;
    }
    if (size > PB_COPY_MAX_BYTES) {
        pb_refuse(job, "it is larger than %u bytes", PB_COPY_MAX_BYTES);
        return 0;
    }
    /* At most one instruction per byte; decoded one at a time into one cs_insn (no allocation per
     * instruction in the program's heap). */
    size_t count = 0, cap = (size_t)size;
    struct pb_insn *insns = pb_map(cap * sizeof *insns);
    cs_insn *in = insns ? pb_cs.malloc(pb_cs.handle) : 0;
    int verdict = 0, nstubs = 0;
    if (!insns || !in) {
        job->transient = 1;
        pb_refuse(job, "no memory to decode it");
        goto out;
    }
    const uint8_t *code = (const uint8_t *)fn;
    size_t left = (size_t)size;
    uint64_t address = fn;

    /* Classify every instruction. */
    while (left) {
        if (!pb_cs.disasm_iter(pb_cs.handle, &code, &left, &address, in)) {
            pb_refuse(job, "the byte at +0x%llx does not decode (data inside the code?)",
                      (unsigned long long)(address - fn));
            goto out;
        }
        size_t i = count++;
        const cs_x86 *x = &in->detail->x86;
        struct pb_insn *d = &insns[i];
        d->off = (uint32_t)(in->address - fn);
        d->len = in->size;
        d->kind = PB_I_COPY;
        d->stub = -1;
        int is_jump = 0, is_call = in->id == X86_INS_CALL;
        /* capstone 4 puts loop/loope/loopne in the relative-branch group only, not the jump
         * group: without it they were copied with their rel8 unchanged (golden/refuse_loop.S). */
        for (int g = 0; g < in->detail->groups_count; g++)
            is_jump |= in->detail->groups[g] == CS_GRP_JUMP || in->detail->groups[g] == CS_GRP_BRANCH_RELATIVE;
        d->is_call = (uint8_t)is_call;
        d->is_syscall = in->id == X86_INS_SYSCALL;
        int imm = x->op_count == 1 && x->operands[0].type == X86_OP_IMM;
        if ((is_jump || is_call || in->id == X86_INS_XBEGIN) && imm) {
            if (in->id == X86_INS_XBEGIN || !pb_branch_form(in, &d->branch)) {
                pb_refuse(job, "%s at +0x%x has no 32-bit relative form", in->mnemonic, d->off);
                goto out;
            }
            d->kind = PB_I_BRANCH;
            d->target = (uint64_t)x->operands[0].imm;
            continue;
        }
        if (is_jump && in->id == X86_INS_JMP &&
            !(x->operands[0].type == X86_OP_MEM && x->operands[0].mem.base == X86_REG_RIP &&
              x->operands[0].mem.index == X86_REG_INVALID)) {
            pb_refuse(job, "indirect jump at +0x%x (a jump table could land in the original)", d->off);
            goto out;
        }
        for (int o = 0; o < x->op_count; o++) {
            if (x->operands[o].type != X86_OP_MEM || x->operands[o].mem.base != X86_REG_RIP)
                continue;
            int pos = pb_disp_position(in, x->operands[o].mem.disp);
            if (!pos) {
                pb_refuse(job, "cannot locate the displacement of %s at +0x%x", in->mnemonic, d->off);
                goto out;
            }
            d->disp_pos = (uint8_t)pos;
            d->target = in->address + in->size + (uint64_t)x->operands[o].mem.disp;
        }
    }

    /* The sites: a `syscall` or a call ending at each recorded offset. */
    for (int s = 0; s < job->nsites; s++) {
        const struct pb_copy_site_req *req = &job->sites[s];
        long at = -1;
        for (size_t i = 0; i < count; i++)
            if (fn + insns[i].off + insns[i].len == req->site)
                at = (long)i;
        if (at < 0 || (req->is_inline ? !insns[at].is_syscall : !insns[at].is_call)) {
            pb_note(job, "%s+0x%llx: not a %s instruction end in %s; left as it is",
                   job->module, (unsigned long long)(req->site - job->bias_for_log),
                   req->is_inline ? "syscall" : "call", job->function);
            continue;
        }
        if (insns[at].stub >= 0 ||
            (!pb_copy_entry_for(req->nr, req->is_inline) && !(req->is_inline && pb_gate_address())))
            continue; /* a call site with another executor keeps its call (and gets an alias) */
        if (!req->is_inline) {
            /* Only a call straight to the wrapper itself: the recorded return address is also
             * the one of a call to a function that tail-calls it, or to syscall(). */
            const char *callee = pb_call_symbol(fn, insns[at].target, insns[at].kind == PB_I_BRANCH);
            if (!callee || strcmp(callee, pb_syscall_name(req->nr)) != 0 || !pb_resolves_to_privbox(callee)) {
                pb_note(job, "%s+0x%llx: the call in %s goes to %s, not to %s(); left as it is",
                       job->module, (unsigned long long)(req->site - job->bias_for_log),
                       job->function, callee ? callee : "a function privbox cannot name",
                       pb_syscall_name(req->nr));
                if (callee && !strcmp(callee, pb_syscall_name(req->nr)))
                    pb_note(job, "%s+0x%llx: %s() is another library's here (an interposer before "
                            "privbox); left as it is", job->module,
                            (unsigned long long)(req->site - job->bias_for_log), callee);
                continue;
            }
        }
        insns[at].kind = req->is_inline ? PB_I_SYSCALL : PB_I_CALL_STUB;
        insns[at].stub = nstubs;
        stubs[nstubs++] = (struct pb_stub_plan){req->site, req->nr, req->is_inline, at};
    }
    if (!nstubs) {
        pb_log(PB_LOG_DEBUG, "%s: no site an entry serves; not copied", job->function);
        verdict = 2;
        goto out;
    }

    /* Nothing may branch into an instruction's middle, or into the entry's patched bytes; no part
     * of the function may lie elsewhere. */
    for (size_t i = 0; i < count; i++) {
        const struct pb_insn *d = &insns[i];
        if (d->kind == PB_I_BRANCH && d->branch != 0xe8 && (d->target < fn || d->target >= fn + size) &&
            pb_jump_may_return(d->target) && !pb_part_safe(fn, d->target, in)) {
            pb_refuse(job, "the jump at +0x%x leaves for a part of it placed elsewhere (a .cold part) "
                      "that may jump into its first 5 bytes", d->off);
            goto out;
        }
        if (d->kind == PB_I_BRANCH && d->target >= fn && d->target < fn + size) {
            uint64_t t = d->target - fn;
            if (t > 0 && t < 5) {
                pb_refuse(job, "the branch at +0x%x targets the entry's first 5 bytes", d->off);
                goto out;
            }
            if (pb_map_offset(insns, (long)count, t, 0) < 0) {
                pb_refuse(job, "the branch at +0x%x lands inside an instruction (+0x%llx)", d->off,
                          (unsigned long long)t);
                goto out;
            }
        }
        if (d->disp_pos && d->target + 8 > fn && d->target < fn + 5 && d->target != fn) {
            pb_refuse(job, "the instruction at +0x%x refers to the entry's first 5 bytes", d->off);
            goto out;
        }
    }

    verdict = 1;
out:
    if (in)
        pb_cs.free(in, 1);
    if (verdict != 1 && insns) {
        pb_raw_syscall6(SYS_munmap, (long)insns, (long)(cap * sizeof *insns), 0, 0, 0, 0);
        insns = 0;
    }
    job->insns_bytes = insns ? cap * sizeof *insns : 0;
    *insns_out = insns;
    *count_out = count;
    *nstubs_out = nstubs;
    return verdict;
}

/* How an instruction is emitted. In a boxed copy (gate != 0) every `syscall` goes to the gate
 * (the kernel's verifier accepts no other), and a call a stub would serve stays the call it was:
 * the identity entries are user code, and jumping to them would leave the box. */
static int pb_emit_kind(const struct pb_insn *d, uint64_t gate)
{
    if (!gate)
        return d->kind;
    if (d->is_syscall)
        return PB_I_SYSCALL;
    if (d->kind == PB_I_CALL_STUB)
        return d->branch ? PB_I_BRANCH : PB_I_COPY;
    return d->kind;
}

/* Builds the copy from the decoded function, registers its unwind entry and patches the entry.
 * Returns 1 if the function now runs from the copy; 0 if not; -1 if the kernel refused the boxed
 * copy (gate != 0), which may then be built as an ordinary one. */
int pb_build(struct pb_copy_job *job, struct pb_insn *insns, size_t count,
             const struct pb_stub_plan *stubs, int nstubs, uint64_t gate)
{
    const uint64_t fn = job->fn, size = job->size;
    int copied = 0;
    uint8_t *region = 0, *counts = 0, *eh_map = 0;
    size_t region_len = 0, eh_len = 0;
    /* Unwind information, translated below once the layout is known. */
    struct pb_fde_info fde;
    const char *fde_why = "";
    int has_fde = pb_find_fde(fn, size, &fde, &fde_why);
    if (has_fde < 0) {
        pb_refuse(job, "%s", fde_why);
        goto out;
    }
    if (has_fde && fde.has_lsda) {
        pb_refuse(job, "it has exception landing pads (an LSDA), which would not move with the code");
        goto out;
    }
    if (has_fde && !pb_register_frame) {
        pb_refuse(job, "its unwind entry cannot be registered with the program's unwinder "
                  "(libgcc_s.so.1 missing, or another unwinder in use)");
        goto out;
    }

    /* Layout: widened branches, 5-byte jumps and calls at the stubbed sites. */
    uint32_t new_size = 0, nsyscalls = 0;
    for (size_t i = 0; i < count; i++) {
        struct pb_insn *d = &insns[i];
        d->new_off = new_size;
        nsyscalls += gate && d->is_syscall;
        switch (pb_emit_kind(d, gate)) {
        case PB_I_BRANCH: d->new_len = d->branch >= 0x80 && d->branch <= 0x8f ? 6 : 5; break;
        case PB_I_SYSCALL: d->new_len = 5; break;
        case PB_I_CALL_STUB: d->new_len = 5 + (uint32_t)pb_call_fast_path(0, 0, stubs[d->stub].nr, 0); break;
        default: d->new_len = d->len;
        }
        new_size += d->new_len;
    }
    /* After the copy, a jump to what follows the original: a function whose last instruction
     * falls through (a call that does not return, as far as the compiler knew) or a branch to its
     * end continue where they would have. */
    uint32_t stubs_at = (new_size + 5 + 15) & ~15u;
    uint32_t eh_at = stubs_at + (uint32_t)nstubs * PB_COPY_STUB_BYTES;
    uint32_t eh_max = has_fde ? (uint32_t)(fde.end - fde.insns) * 3 + (uint32_t)(fde.cie_end - fde.cie_insns) + 128 : 0;
    /* A boxed copy: the gate stubs, then the slot holding the gate's address; the kernel maps it
     * as supervisor pages, which user mode cannot read, so the unwind entry lives elsewhere. */
    uint32_t slot_at = (stubs_at + nsyscalls * PB_GATE_STUB_BYTES + 7) & ~7u;
    if (gate) {
        region_len = ((size_t)slot_at + 8 + 4095) & ~(size_t)4095;
        eh_len = ((size_t)eh_max + 4095) & ~(size_t)4095;
        if (eh_len && !(eh_map = pb_map(eh_len))) {
            job->transient = 1;
            pb_refuse(job, "no memory for its unwind entry");
            goto out;
        }
    } else {
        region_len = ((size_t)eh_at + eh_max + 4095) & ~(size_t)4095;
    }
    region = pb_map_near(fn, region_len);
    if (!region) {
        pb_refuse(job, "no free memory within 1 GiB below it for the copy");
        goto out;
    }
    const uint64_t copy = (uint64_t)region;
    /* The inline sites' counts: a separate writable page (the code's pages never are). */
    counts = gate ? 0 : pb_map_near(fn, 4096);
    if (!gate && !counts) {
        pb_refuse(job, "no free memory within 1 GiB below it for the copy");
        goto out;
    }

    /* Emit the copy. */
    uint32_t gate_stub = 0;
    for (size_t i = 0; i < count; i++) {
        const struct pb_insn *d = &insns[i];
        uint8_t *o = region + d->new_off;
        uint64_t next = copy + d->new_off + d->new_len;
        int64_t rel;
        int kind = pb_emit_kind(d, gate);
        if (gate && kind == PB_I_SYSCALL) {
            *o++ = 0xe9;
            uint64_t stub_at = copy + stubs_at + (uint64_t)gate_stub * PB_GATE_STUB_BYTES;
            pb_gate_emit_stub(region + (stub_at - copy), stub_at, copy + slot_at, next);
            gate_stub++;
            rel = (int64_t)(stub_at - next);
            int32_t r32 = (int32_t)rel;
            memcpy(o, &r32, 4);
            continue;
        }
        switch (kind) {
        case PB_I_BRANCH: {
            uint64_t target = d->target;
            if (target >= fn && target < fn + size)
                target = copy + (uint64_t)pb_map_offset(insns, (long)count, target - fn, new_size);
            rel = (int64_t)(target - next);
            if (d->branch >= 0x80 && d->branch <= 0x8f) {
                o[0] = 0x0f;
                o[1] = d->branch;
                o += 2;
            } else {
                *o++ = d->branch;
            }
            break;
        }
        case PB_I_SYSCALL:
        case PB_I_CALL_STUB:
            /* A call ends the instruction's new bytes, so its return address is the one the
             * routes and the unwind entry know (copy + new_off + new_len). */
            if (d->kind == PB_I_CALL_STUB) {
                int fast = pb_call_fast_path(o, copy + d->new_off, stubs[d->stub].nr,
                                             (uint64_t)counts + 8u * (uint32_t)d->stub);
                if (fast < 0 || (uint32_t)fast + 5 != d->new_len) {
                    pb_refuse(job, "the call at +0x%x would not reach its count from the copy", d->off);
                    goto out;
                }
                o += fast;
            }
            *o++ = d->kind == PB_I_SYSCALL ? 0xe9 : 0xe8;
            rel = (int64_t)(copy + stubs_at + (uint64_t)d->stub * PB_COPY_STUB_BYTES - next);
            break;
        default:
            memcpy(o, (const uint8_t *)fn + d->off, d->len);
            if (!d->disp_pos)
                continue;
            o += d->disp_pos;
            rel = (int64_t)(d->target - next);
        }
        if (!pb_fits32(rel)) {
            pb_refuse(job, "the instruction at +0x%x would not reach its target from the copy", d->off);
            goto out;
        }
        int32_t r32 = (int32_t)rel;
        memcpy(o, &r32, 4);
    }
    {
        uint8_t *o = region + new_size;
        int64_t rel = (int64_t)(fn + size - (copy + new_size + 5));
        if (!pb_fits32(rel)) {
            pb_refuse(job, "the code after it would not be reachable from the copy");
            goto out;
        }
        int32_t r32 = (int32_t)rel;
        o[0] = 0xe9;
        memcpy(o + 1, &r32, 4);
        memset(o + 5, 0xcc, stubs_at - new_size - 5);
    }
    size_t first_site = pb_copied_count; /* this copy's report entries start here */
    if (gate) {
        /* int3 up to the slot: the kernel decodes everything before it. */
        memset(region + stubs_at + nsyscalls * PB_GATE_STUB_BYTES, 0xcc,
               slot_at - (stubs_at + nsyscalls * PB_GATE_STUB_BYTES));
        memcpy(region + slot_at, &gate, 8);
        nstubs = 0; /* the stub plans' entries are not used in a box */
        for (size_t i = 0; i < count; i++) {
            if (!insns[i].is_syscall || !pb_copied_reserve())
                continue;
            const char *name = "a system call";
            for (int s = 0; s < job->nsites; s++)
                if (job->sites[s].is_inline && job->sites[s].site == fn + insns[i].off + insns[i].len)
                    name = pb_syscall_name(job->sites[s].nr);
            struct pb_copied_site *c = &pb_copied[pb_copied_count++];
            memset(c, 0, sizeof *c);
            snprintf(c->label, sizeof c->label, "%s+0x%llx (%s, syscall instruction in %s)", job->module,
                     (unsigned long long)(fn + insns[i].off + insns[i].len - job->bias_for_log), name,
                     job->function);
            c->boxed = 1;
        }
    }

    /* The site stubs. An inline site: below the red zone, call the value's entry, back up; if it
     * answered (rcx = 1), count the call (without touching the flags) and jump back; otherwise
     * make the `syscall` here, at the program's stack pointer, and jump back.
     * A call site: jump to the value's call entry. Each stub's last 8 bytes hold the entry's
     * address; stub s counts in the s-th word of `counts`. */
    for (int s = 0; s < nstubs; s++) {
        uint8_t *st = region + stubs_at + (uint32_t)s * PB_COPY_STUB_BYTES;
        uint8_t *slot = st + PB_COPY_STUB_BYTES - 8, *o = st, *count = counts + 8 * s;
        const struct pb_insn *d = &insns[stubs[s].insn];
        void *entry = pb_copy_entry_for(stubs[s].nr, stubs[s].is_inline);
        memset(st, 0xcc, PB_COPY_STUB_BYTES);
        memcpy(slot, &entry, 8);
        int32_t r;
        if (!entry) {
            /* A site stubbed for the kernel gate, in a copy built without it: the call as it was. */
            uint64_t back = copy + d->new_off + d->new_len;
            *o++ = 0x0f; *o++ = 0x05;                                             /* syscall */
            *o++ = 0xe9;                                                          /* jmp back */
            r = (int32_t)((int64_t)back - (int64_t)(uint64_t)(o + 4)); memcpy(o, &r, 4);
            continue;
        }
        if (stubs[s].is_inline) {
            static const uint8_t below[] = {0x48, 0x8d, 0x64, 0x24, 0x80};       /* lea -0x80(%rsp),%rsp */
            static const uint8_t above[] = {0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0}; /* lea 0x80(%rsp),%rsp */
            memcpy(o, below, sizeof below);
            o += sizeof below;
            *o++ = 0xff; *o++ = 0x15;                                             /* call *slot(%rip) */
            r = (int32_t)(slot - (o + 4)); memcpy(o, &r, 4); o += 4;
            memcpy(o, above, sizeof above);
            o += sizeof above;
            *o++ = 0xe3; *o++ = 7 + 4 + 7 + 5;                                    /* jrcxz native */
            *o++ = 0x4c; *o++ = 0x8b; *o++ = 0x1d;                                /* mov count(%rip),%r11 */
            r = (int32_t)(count - (o + 4)); memcpy(o, &r, 4); o += 4;
            *o++ = 0x4d; *o++ = 0x8d; *o++ = 0x5b; *o++ = 0x01;                   /* lea 1(%r11),%r11 */
            *o++ = 0x4c; *o++ = 0x89; *o++ = 0x1d;                                /* mov %r11,count(%rip) */
            r = (int32_t)(count - (o + 4)); memcpy(o, &r, 4); o += 4;
            uint64_t back = copy + d->new_off + d->new_len;
            *o++ = 0xe9;                                                          /* jmp back */
            r = (int32_t)((int64_t)back - (int64_t)(uint64_t)(o + 4)); memcpy(o, &r, 4); o += 4;
            *o++ = 0x0f; *o++ = 0x05;                                             /* native: syscall */
            *o++ = 0xe9;                                                          /* jmp back */
            r = (int32_t)((int64_t)back - (int64_t)(uint64_t)(o + 4)); memcpy(o, &r, 4); o += 4;
        } else {
            *o++ = 0xff; *o++ = 0x25;                                             /* jmp *slot(%rip) */
            r = (int32_t)(slot - (o + 4)); memcpy(o, &r, 4); o += 4;
        }
        if (!pb_copied_reserve())
            continue;
        struct pb_copied_site *c = &pb_copied[pb_copied_count++];
        c->boxed = 0;
        snprintf(c->label, sizeof c->label, "%s+0x%llx (%s, %s in %s)", job->module,
                 (unsigned long long)(stubs[s].site - job->bias_for_log), pb_syscall_name(stubs[s].nr),
                 stubs[s].is_inline ? "syscall instruction" : "call", job->function);
        /* Served calls are counted by an inline site's stub, or by a call site's fast path. */
        c->served = stubs[s].is_inline || d->new_len > 5 ? (uint64_t *)count : 0; /* 5: the call alone */
        c->call_site = !stubs[s].is_inline;
        c->executor = pb_executor_for_syscall(stubs[s].nr);
    }

    /* The unwind entry, registered before anything can run the copy. */
    uint8_t *eh = gate ? eh_map : region + eh_at;
    if (has_fde) {
        struct pb_writer w = {eh, gate ? eh_map + eh_len : region + region_len, 0};
        if (pb_build_eh_frame(&fde, insns, (long)count, fn, copy, new_size, &w) != 0) {
            pb_copied_count = first_site;
            pb_refuse(job, "its unwind entry could not be translated");
            goto out;
        }
    }
    if (gate) {
        char why[160];
        /* The kernel verifies the bytes and maps its own copy over these pages. */
        if (pb_gate_register(region, region_len, slot_at, why, sizeof why) != 0) {
            pb_copied_count = first_site;
            pb_log(PB_LOG_INFO, "not boxed: %s (%s+0x%llx): %s; copied without the gate", job->function,
                   job->module, (unsigned long long)(fn - job->bias_for_log), why);
            copied = -1;
            goto out;
        }
    } else if (pb_raw_syscall6(SYS_mprotect, (long)region, (long)region_len, PROT_READ | PROT_EXEC, 0, 0, 0) != 0) {
        pb_copied_count = first_site;
        pb_refuse(job, "the copy could not be made executable");
        goto out;
    }
    if (has_fde)
        pb_register_frame(eh);

    /* Calls in the copy return into it: the routed ones get a route there too (a stubbed call's
     * entry falls back to the wrapper, which serves, fills or samples by that route). */
    for (size_t i = 0; i < count; i++)
        if (insns[i].is_call)
            pb_route_alias(fn + insns[i].off + insns[i].len, copy + insns[i].new_off + insns[i].new_len);

    /* Finally the entry: jmp rel32 to the copy. */
    uint8_t jump[5] = {0xe9};
    int32_t rel = (int32_t)(int64_t)(copy - (fn + 5));
    memcpy(jump + 1, &rel, 4);
    if (pb_patch_entry(fn, jump) != 0) {
        pb_copied_count = first_site;
        pb_refuse(job, "its entry could not be patched");
        goto out_kept; /* registered: the region stays, unused */
    }
    for (int s = 0; s < nstubs; s++)
        if (pb_executor_for_syscall(stubs[s].nr) == PB_EXEC_IDENTITY && pb_copy_entry_for(stubs[s].nr, stubs[s].is_inline))
            pb_copies_use_identity = 1;
    pb_log(PB_LOG_INFO, "copied %s (%s+0x%llx, %llu bytes) to %p: %d site%s instrumented%s%s",
           job->function[0] ? job->function : "?", job->module,
           (unsigned long long)(fn - job->bias_for_log), (unsigned long long)size, (void *)region,
           gate ? (int)nsyscalls : nstubs, (gate ? nsyscalls : (uint32_t)nstubs) == 1 ? "" : "s",
           has_fde ? ", unwind entry registered" : "",
           gate ? "; it runs in a box, its system calls through the kernel gate" : "");
    static int gate_reported;
    if (gate && !gate_reported++)
        atexit(pb_gate_report);
    copied = 1;
out_kept:
    region = counts = eh_map = 0;
out:
    if (region)
        pb_raw_syscall6(SYS_munmap, (long)region, (long)region_len, 0, 0, 0, 0);
    if (counts)
        pb_raw_syscall6(SYS_munmap, (long)counts, 4096, 0, 0, 0, 0);
    if (eh_map)
        pb_raw_syscall6(SYS_munmap, (long)eh_map, (long)eh_len, 0, 0, 0, 0);
    return copied;
}

/* Whether decoded instructions and stubs (from the cache file) are consistent with the function:
 * contiguous instructions covering it exactly, known kinds and branch forms, displacements inside
 * their instruction, internal branches landing on instruction starts outside the patched entry,
 * stubs and their instructions pointing at each other, each stub's call one an entry serves. */
static int pb_decoded_sane(const struct pb_copy_job *job, const struct pb_insn *insns, size_t count,
                           const struct pb_stub_plan *stubs, int nstubs)
{
    uint64_t at = 0;
    for (size_t i = 0; i < count; i++) {
        const struct pb_insn *d = &insns[i];
        if (d->off != at || d->len == 0 || d->len > 15 || d->kind > PB_I_CALL_STUB)
            return 0;
        at += d->len;
        if (d->kind == PB_I_BRANCH && !(d->branch == 0xe8 || d->branch == 0xe9 || (d->branch >= 0x80 && d->branch <= 0x8f)))
            return 0;
        if (d->disp_pos && (d->disp_pos + 4u > d->len || d->kind != PB_I_COPY))
            return 0;
        if (d->kind == PB_I_BRANCH && d->target >= job->fn && d->target < job->fn + job->size) {
            uint64_t t = d->target - job->fn;
            if ((t > 0 && t < 5) || pb_map_offset(insns, (long)count, t, 0) < 0)
                return 0;
        }
        int stubbed = d->kind == PB_I_SYSCALL || d->kind == PB_I_CALL_STUB;
        if (stubbed != (d->stub >= 0) || (stubbed && (d->stub >= nstubs || stubs[d->stub].insn != (long)i)))
            return 0;
        if (d->kind == PB_I_SYSCALL && !d->is_syscall)
            return 0;
        if (d->kind == PB_I_CALL_STUB && !d->is_call)
            return 0;
    }
    if (at != job->size)
        return 0;
    for (int k = 0; k < nstubs; k++) {
        const struct pb_stub_plan *st = &stubs[k];
        if (st->insn < 0 || (size_t)st->insn >= count || insns[st->insn].stub != k ||
            st->is_inline != (insns[st->insn].kind == PB_I_SYSCALL) ||
            !pb_copy_entry_for(st->nr, st->is_inline) ||
            st->site != job->fn + insns[st->insn].off + insns[st->insn].len)
            return 0;
    }
    return 1;
}

/* ---- the decode cache ---------------------------------------------------------------------------
 * Decoding needs capstone, whose loading costs ~2 ms (the relocation of its tables); a program's
 * next runs read the decoded function from ~/.cache/privbox/copies/ instead. The file is named by a
 * hash of the function's bytes (as they are in memory), its size, module and build-id, and the
 * requested sites: any change gives another name. Its content is this build's own structures
 * (the tag names the format), with addresses stored relative to the function. */

#define PB_COPY_CACHE_TAG "pbcopy/2"

/* libprivbox.so's own build-id (hex), so that another build of privbox decodes afresh. */
static int pb_own_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uint64_t)pb_own_build_id >= lo && (uint64_t)pb_own_build_id < lo + ph->p_memsz) {
            struct pb_module_record m = {0};
            pb_build_id(info, &m);
            uint64_t *h = data;
            *h = pb_fnv1a(*h, m.build_id, m.build_id_len);
            return 1;
        }
    }
    return 0;
}

struct pb_copy_cache_head {
    char tag[8];
    uint64_t checksum; /* FNV-1a of everything after the head */
    uint32_t verdict, count, nstubs, size;
    char why[200];
    char notes[512];
};

static int pb_copy_cache_path(const struct pb_copy_job *job, char *out, size_t len)
{
    if (!job->build_id || !job->build_id[0])
        return -1;
    uint64_t h = PB_FNV_OFFSET;
    dl_iterate_phdr(pb_own_build_id, &h);
#define PB_MIX(p, n) h = pb_fnv1a(h, (p), (size_t)(n))
    PB_MIX(PB_COPY_CACHE_TAG, sizeof PB_COPY_CACHE_TAG);
    PB_MIX(job->build_id, strlen(job->build_id));
    PB_MIX(job->module, strlen(job->module));
    PB_MIX(&job->size, sizeof job->size);
    int gated = pb_gate_address() != 0; /* with the gate, inline sites of any call are stubbed */
    PB_MIX(&gated, sizeof gated);
    PB_MIX((const uint8_t *)job->fn, job->size);
    for (int i = 0; i < job->nsites; i++) {
        uint64_t rel = job->sites[i].site - job->fn;
        PB_MIX(&rel, sizeof rel);
        PB_MIX(&job->sites[i].nr, sizeof job->sites[i].nr);
        PB_MIX(&job->sites[i].is_inline, sizeof job->sites[i].is_inline);
    }
#undef PB_MIX
    char leaf[48];
    snprintf(leaf, sizeof leaf, "copies/%016llx.copy", (unsigned long long)h);
    return pb_cache_path(leaf, out, len);
}

static void pb_copy_cache_write(const char *path, const struct pb_copy_job *job, int verdict,
                                const struct pb_insn *insns, size_t count,
                                const struct pb_stub_plan *stubs, int nstubs)
{
    size_t len = sizeof(struct pb_copy_cache_head) + (size_t)nstubs * sizeof *stubs + count * sizeof *insns;
    uint8_t *buf = pb_map(len);
    if (!buf)
        return;
    struct pb_copy_cache_head *head = (struct pb_copy_cache_head *)buf;
    memcpy(head->tag, PB_COPY_CACHE_TAG, 8);
    head->verdict = (uint32_t)verdict;
    head->count = verdict == 1 ? (uint32_t)count : 0;
    head->nstubs = verdict == 1 ? (uint32_t)nstubs : 0;
    head->size = (uint32_t)job->size;
    memcpy(head->why, job->why, sizeof head->why);
    memcpy(head->notes, job->notes, sizeof head->notes);
    struct pb_stub_plan *st = (struct pb_stub_plan *)(head + 1);
    struct pb_insn *in = (struct pb_insn *)(st + head->nstubs);
    for (uint32_t i = 0; i < head->nstubs; i++) {
        st[i] = stubs[i];
        st[i].site -= job->fn;
    }
    for (uint32_t i = 0; i < head->count; i++) {
        in[i] = insns[i];
        in[i].target -= job->fn; /* every target is in the function's module: relative is enough */
    }
    size_t used = (size_t)((uint8_t *)(in + head->count) - buf);
    head->checksum = pb_fnv1a(PB_FNV_OFFSET, &head->verdict, used - offsetof(struct pb_copy_cache_head, verdict));
    pb_cache_file_write(path, buf, used);
    pb_raw_syscall6(SYS_munmap, (long)buf, (long)len, 0, 0, 0, 0);
}

/* The cached verdict (0, 1 or 2, with the instructions and stubs for 1), or -1 with no usable file. */
static int pb_copy_cache_read(const char *path, struct pb_copy_job *job, struct pb_insn **insns_out,
                              size_t *count_out, struct pb_stub_plan *stubs, int *nstubs_out)
{
    size_t cap = sizeof(struct pb_copy_cache_head) + PB_COPY_MAX_SITES * sizeof *stubs +
                 PB_COPY_MAX_BYTES * sizeof(struct pb_insn) + 1;
    uint8_t *buf = pb_map(cap);
    if (!buf)
        return -1;
    /* Only a file of this user's that nobody else may write, in directories of the same kind
     * (the trust check all caches share, runtime.c). */
    long n = pb_read_trusted_cache_file(path, 0, (char *)buf, cap);
    const struct pb_copy_cache_head *head = (const struct pb_copy_cache_head *)buf;
    int verdict = -1;
    if (n < (long)sizeof *head || memcmp(head->tag, PB_COPY_CACHE_TAG, 8) != 0 || head->verdict > 2 ||
        head->checksum != pb_fnv1a(PB_FNV_OFFSET, &head->verdict,
                                 (size_t)n - offsetof(struct pb_copy_cache_head, verdict)) ||
        head->size != job->size || head->nstubs > PB_COPY_MAX_SITES || head->count > PB_COPY_MAX_BYTES ||
        (size_t)n != sizeof *head + head->nstubs * sizeof *stubs + head->count * sizeof(struct pb_insn))
        goto out;
    const struct pb_stub_plan *st = (const struct pb_stub_plan *)(head + 1);
    const struct pb_insn *in = (const struct pb_insn *)(st + head->nstubs);
    struct pb_insn *insns = 0;
    if (head->verdict == 1) {
        if (!head->count || !(insns = pb_map(head->count * sizeof *insns)))
            goto out;
        job->insns_bytes = head->count * sizeof *insns;
        for (uint32_t i = 0; i < head->count; i++) {
            insns[i] = in[i];
            insns[i].target += job->fn;
            if ((uint64_t)insns[i].off + insns[i].len > job->size ||
                (insns[i].stub >= 0 && (uint32_t)insns[i].stub >= head->nstubs)) {
                pb_raw_syscall6(SYS_munmap, (long)insns, (long)(head->count * sizeof *insns), 0, 0, 0, 0);
                goto out;
            }
        }
        for (uint32_t i = 0; i < head->nstubs; i++) {
            stubs[i] = st[i];
            stubs[i].site += job->fn;
            if (stubs[i].insn < 0 || (uint64_t)stubs[i].insn >= head->count) {
                pb_raw_syscall6(SYS_munmap, (long)insns, (long)(head->count * sizeof *insns), 0, 0, 0, 0);
                goto out;
            }
        }
    }
    if (head->verdict == 1 && !pb_decoded_sane(job, insns, head->count, stubs, (int)head->nstubs)) {
        pb_raw_syscall6(SYS_munmap, (long)insns, (long)(head->count * sizeof *insns), 0, 0, 0, 0);
        goto out;
    }
    memcpy(job->why, head->why, sizeof job->why);
    job->why[sizeof job->why - 1] = '\0';
    memcpy(job->notes, head->notes, sizeof job->notes);
    job->notes[sizeof job->notes - 1] = '\0';
    *insns_out = insns;
    *count_out = head->verdict == 1 ? head->count : 0;
    *nstubs_out = head->verdict == 1 ? (int)head->nstubs : 0;
    verdict = (int)head->verdict;
out:
    pb_raw_syscall6(SYS_munmap, (long)buf, (long)cap, 0, 0, 0, 0);
    return verdict;
}

/* One function: decoded (or read from the cache), then built. 1 if it runs from a copy. */
static int pb_copy_one(struct pb_copy_job *job)
{
    struct pb_insn *insns = 0;
    size_t count = 0;
    /* The stub plans and the cache path (6 KiB) in a mapped page, not on the program's stack. */
    struct pb_copy_scratch { struct pb_stub_plan stubs[PB_COPY_MAX_SITES]; char cache[PB_PATH_MAX]; };
    struct pb_copy_scratch *scratch = pb_map(sizeof *scratch);
    if (!scratch) {
        pb_refuse(job, "no memory to decode it");
        return 0;
    }
    struct pb_stub_plan *stubs = scratch->stubs;
    char *cache = scratch->cache;
    int nstubs = 0;
    int cacheable = pb_copy_cache_path(job, cache, sizeof scratch->cache) == 0;
    int verdict = cacheable ? pb_copy_cache_read(cache, job, &insns, &count, stubs, &nstubs) : -1;
    if (verdict >= 0) {
        pb_log(PB_LOG_DEBUG, "%s: decoded before, read from %s", job->function, cache);
        /* Say again what decoding said. */
        for (char *line = job->notes, *nl; *line; line = nl + 1) {
            if (!(nl = strchr(line, '\n')))
                break;
            pb_log(PB_LOG_INFO, "%.*s", (int)(nl - line), line);
        }
        if (verdict == 0)
            pb_log(PB_LOG_INFO, "not copied: %s (%s+0x%llx): %s; its sites run as before",
                   job->function, job->module, (unsigned long long)(job->fn - job->bias_for_log), job->why);
    } else {
        if (!pb_cs_load()) {
            pb_refuse(job, "libcapstone.so.4 cannot be loaded to decode it");
            pb_raw_syscall6(SYS_munmap, (long)scratch, sizeof *scratch, 0, 0, 0, 0);
            return 0;
        }
        verdict = pb_decode(job, &insns, &count, stubs, &nstubs);
        if (cacheable && !job->transient)
            pb_copy_cache_write(cache, job, verdict, insns, count, stubs, nstubs);
    }
    int copied = 0;
    if (verdict == 1) {
        uint64_t gate = pb_gate_address();
        copied = gate ? pb_build(job, insns, count, stubs, nstubs, gate) : -1;
        if (copied < 0) /* no gate, or the kernel refused the boxed copy */
            copied = pb_build(job, insns, count, stubs, nstubs, 0);
    }
    if (insns)
        pb_raw_syscall6(SYS_munmap, (long)insns, (long)job->insns_bytes, 0, 0, 0, 0);
    pb_raw_syscall6(SYS_munmap, (long)scratch, sizeof *scratch, 0, 0, 0, 0);
    return copied;
}

/* ---- entry points ------------------------------------------------------------------------------- */

struct pb_exec_search { uint64_t lo, hi; int inside; };

static int pb_find_exec_segment(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct pb_exec_search *s = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && s->lo >= lo && s->hi <= lo + ph->p_memsz) {
            s->inside = 1;
            return 1;
        }
    }
    return 0;
}

/* Whether [fn, fn+size) lies in one executable segment of a loaded module: bounds from a plan are
 * checked before a byte of them is read. */
static int pb_in_exec_segment(uint64_t fn, uint64_t size)
{
    struct pb_exec_search s = {fn, fn + size, 0};
    if (size == 0 || fn + size < fn)
        return 0;
    dl_iterate_phdr(pb_find_exec_segment, &s);
    return s.inside;
}

/* The bounds of the function holding `address` from its unwind entry (a stripped program keeps
 * .eh_frame: its FDEs give each function's range where no symbol does). */
static int pb_unwind_bounds(uint64_t address, uint64_t *fn, uint64_t *size)
{
    struct pb_fde_info fi;
    const char *why = "";
    if (pb_find_fde(address, 0, &fi, &why) != 1 || !fi.pc_range)
        return 0;
    *fn = fi.pc_begin;
    *size = fi.pc_range;
    return 1;
}

void pb_copies_install(const struct pb_copy_request *reqs, size_t n)
{
    if (!n)
        return;
    if (!pb_single_threaded()) {
        pb_log(PB_LOG_INFO, "no instrumented copies: other threads are already running");
        return;
    }
    /* The entries save the flags with lahf/sahf, which the first x86-64 CPUs lacked in 64-bit mode. */
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000001u, &a, &b, &c, &d) || !(c & 1u)) {
        pb_log(PB_LOG_INFO, "no instrumented copies: this CPU has no lahf/sahf in 64-bit mode");
        return;
    }
    /* The unwinder the program's C++ runtime, pthread_cancel and backtrace() use (glibc loads the
     * same libgcc_s.so.1 when it needs it). */
    void *gcc = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    if (gcc)
        *(void **)&pb_register_frame = dlsym(gcc, "__register_frame");
    /* A program whose exceptions another unwinder raises (LLVM's libunwind, exported) searches
     * another registry: functions with unwind entries are then not copied. (One linked statically
     * into the program exports nothing to check: a known gap, see README.) */
    void *raise = dlsym(RTLD_DEFAULT, "_Unwind_RaiseException");
    Dl_info used, ours;
    if (gcc && raise && dlsym(gcc, "_Unwind_RaiseException") != raise &&
        !(dladdr(raise, &used) && dladdr(dlsym(gcc, "_Unwind_RaiseException"), &ours) &&
          used.dli_fbase == ours.dli_fbase))
        pb_register_frame = 0;
    struct pb_copy_job *job = pb_map(sizeof *job);
    if (!job)
        return;
    unsigned char *done = pb_map(n);
    if (!done) {
        pb_raw_syscall6(SYS_munmap, (long)job, sizeof *job, 0, 0, 0, 0);
        return;
    }
    int copies = 0;
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        const struct pb_copy_request *f = &reqs[i];
        memset(job, 0, sizeof *job);
        job->fn = f->bias + f->function_offset;
        job->size = f->function_size;
        if (!job->size && !pb_unwind_bounds(f->bias + f->site - 1, &job->fn, &job->size)) {
            done[i] = 1;
            pb_log(PB_LOG_DEBUG, "%s+0x%llx: no symbol or unwind entry bounds its function; not copied",
                   f->module, (unsigned long long)f->site);
            continue;
        }
        job->bias_for_log = f->bias;
        job->module = f->module;
        job->build_id = f->build_id;
        job->function = f->function;
        if (!job->function || !job->function[0]) {
            snprintf(job->unnamed, sizeof job->unnamed, "function at +0x%llx",
                     (unsigned long long)(job->fn - f->bias));
            job->function = job->unnamed;
        }
        if (job->size > PB_COPY_MAX_BYTES || !pb_in_exec_segment(job->fn, job->size)) {
            done[i] = 1;
            pb_log(PB_LOG_INFO, "not copied: %s (%s+0x%llx): %s; its sites run as before", job->function,
                   job->module, (unsigned long long)(job->fn - f->bias),
                   job->size > PB_COPY_MAX_BYTES ? "it is larger than 64 KiB"
                                                 : "its recorded bounds are not in the module's code");
            continue;
        }
        for (size_t k = i; k < n; k++) {
            const struct pb_copy_request *r = &reqs[k];
            uint64_t site = r->bias + r->site;
            if (done[k] || r->bias != f->bias || site <= job->fn || site > job->fn + job->size ||
                (r->function_size && r->bias + r->function_offset != job->fn))
                continue;
            done[k] = 1;
            if (job->nsites < PB_COPY_MAX_SITES)
                job->sites[job->nsites++] = (struct pb_copy_site_req){r->bias + r->site, r->nr, r->is_inline};
        }
        copies += pb_copy_one(job);
    }
    pb_raw_syscall6(SYS_munmap, (long)job, sizeof *job, 0, 0, 0, 0);
    pb_raw_syscall6(SYS_munmap, (long)done, (long)n, 0, 0, 0, 0);
    /* The decoder, if a function was not in the cache, is not needed any more (libgcc_s stays:
     * it holds the registered entries). */
    if (pb_cs.state == 1) {
        pb_cs.close(&pb_cs.handle);
        dlclose(pb_cs.lib);
        pb_cs.state = -1;
    }
    if (copies)
        pb_log(PB_LOG_INFO, "%d function%s run from instrumented copies", copies, copies == 1 ? "" : "s");
}

void pb_copies_report(void)
{
    for (size_t i = 0; i < pb_copied_count; i++) {
        if (pb_copied[i].boxed)
            pb_log(PB_LOG_INFO, "%s: runs in a box; through the kernel gate", pb_copied[i].label);
        else if (pb_copied[i].served && pb_copied[i].call_site)
            pb_log(PB_LOG_INFO, "%s: instrumented; %s", pb_copied[i].label,
                   __atomic_load_n(pb_copied[i].served, __ATOMIC_RELAXED)
                       ? "identity answered by the value's load inlined at the call"
                       : "the value's load inlined at the call never answered (nothing was cached)");
        else if (pb_copied[i].served)
            pb_log(PB_LOG_INFO, "%s: instrumented; %llu calls answered by identity", pb_copied[i].label,
                   (unsigned long long)__atomic_load_n(pb_copied[i].served, __ATOMIC_RELAXED));
        else
            pb_log(PB_LOG_INFO, "%s: instrumented; calls the %s entry directly", pb_copied[i].label,
                   pb_executors[pb_copied[i].executor]->name);
    }
}

/* For the dispatch benchmark (scripts/bench-programs/accel_loop.c, direct-getpid): the identity
 * executor's answer to getpid called directly, with nothing between the caller and the cache (the
 * kernel's when the executor declines, e.g. in a mode that did not start it). */
PB_EXPORT int privbox_bench_identity_getpid(void)
{
    /* Started here if no route started it (a profile with no site for the loop that calls this):
     * single-threaded benchmark use only. */
    if (!pb_id && pb_proc.mode == PB_MODE_ACCELERATE && pb_exec_ready(PB_EXEC_IDENTITY))
        pb_hooks_update(); /* vfork and the credential calls now keep the cache exact */
    uint64_t w = pb_identity_word(PB_ID_PID);
    return w ? (int)(uint32_t)w : (int)pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
}
