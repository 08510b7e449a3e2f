/*
 * rewriter/unwind.c — unwind information for the copies: reading a module's .eh_frame (through
 * its .eh_frame_hdr index) to find a function's entry, and writing the copy's entry, the original's
 * CFA program with its locations moved to the copy's offsets, for libgcc's registry. So that
 * unwinding (C++ exceptions, pthread_cancel, backtrace) crosses a copied frame as it crossed the
 * original (install.c's head says what is refused: a function with an LSDA, an entry this file
 * cannot translate, a program whose unwinder is not libgcc's).
 *
 * May touch: pb_register_frame (set once by pb_unwinder_find, before any copy is built). Reads the
 * loaded modules' unwind tables; writes only into the buffer it is given. Uses rewriter/, sys/.
 */
#include "rewriter/parts.h"

#include <dlfcn.h>
#include <string.h>

/* ---- libgcc's unwinder, for the copies' unwind entries ---------------------------------------- */

void (*pb_register_frame)(void *);

void pb_unwinder_find(void)
{
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
}

/* ---- reading ------------------------------------------------------------------------------------ */

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

/* The FDE the module's .eh_frame_hdr index gives for fn (the last entry whose start is <= fn):
 * 1 with *fde, 0 none, -1 an index this file does not read (*why). */
static int pb_indexed_fde(uint64_t fn, const uint8_t **fde, const char **why)
{
    struct pb_module_at s; /* zeroed when no module holds fn */
    pb_module_at(fn, &s);
    if (!s.eh_frame_hdr)
        return 0;
    const uint8_t *h = (const uint8_t *)s.eh_frame_hdr;
    if (h[0] != 1 || h[2] != 0x03 || h[3] != 0x3b) {
        *why = "its module's unwind table index has an unusual encoding";
        return -1;
    }
    struct pb_reader r = {h + 4, h + 16, 0};
    pb_encoded(&r, h[1], s.eh_frame_hdr);
    uint32_t count = (uint32_t)pb_fixed(&r, 4);
    const int32_t *table = (const int32_t *)r.p;
    /* The last entry whose start is <= fn. */
    long lo = 0, hi = (long)count - 1, found = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        uint64_t start = s.eh_frame_hdr + (int64_t)table[2 * mid];
        if (start <= fn) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (found < 0)
        return 0;
    *fde = (const uint8_t *)(s.eh_frame_hdr + (int64_t)table[2 * found + 1]);
    return 1;
}

/* The CIE's augmentation data: which encodings, an LSDA, a signal frame. 0, or -1 (*why). */
static int pb_read_augmentation(struct pb_reader *c, const char *aug, struct pb_fde_info *out,
                                uint8_t *lsda_enc, const char **why)
{
    uint64_t n = pb_uleb(c);
    const uint8_t *aug_end = c->p + n;
    for (const char *a = aug + 1; *a && !c->bad; a++) {
        if (*a == 'L') {
            *lsda_enc = (uint8_t)pb_fixed(c, 1);
        } else if (*a == 'R') {
            out->fde_enc = (uint8_t)pb_fixed(c, 1);
        } else if (*a == 'P') {
            uint8_t penc = (uint8_t)pb_fixed(c, 1);
            pb_encoded(c, penc & 0x7f, 0); /* the personality routine: dropped (no LSDA) */
        } else if (*a == 'S') {
            out->signal_frame = 1;
        } else {
            *why = "its unwind entry has an augmentation this file does not know";
            return -1;
        }
    }
    c->p = aug_end;
    return 0;
}

/* The CIE an FDE refers to, into out (its alignment factors, return register, encodings and
 * initial instructions); *aug its augmentation string. 0, or -1 (*why). */
static int pb_read_cie(const uint8_t *fde, struct pb_fde_info *out, const char **aug_out,
                       uint8_t *lsda_enc, const char **why)
{
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
    *lsda_enc = 0xff;
    out->fde_enc = 0;
    if (aug[0] == 'z') {
        if (pb_read_augmentation(&c, aug, out, lsda_enc, why) != 0)
            return -1;
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
    *aug_out = aug;
    return 0;
}

/* The unwind entry of [fn, fn+size): 1 found, 0 none (the function has no unwind information,
 * like the original's), -1 present but not in a form this file translates. With size 0, the
 * entry whose range holds the address fn, whatever its bounds. */
int pb_find_fde(uint64_t fn, uint64_t size, struct pb_fde_info *out, const char **why)
{
    const uint8_t *fde = 0;
    int indexed = pb_indexed_fde(fn, &fde, why);
    if (indexed <= 0)
        return indexed;
    uint32_t len = *(const uint32_t *)fde;
    if (len == 0xffffffffu) {
        *why = "its unwind entry is in the 64-bit format";
        return -1;
    }
    const uint8_t *fde_end = fde + 4 + len;
    const char *aug = "";
    uint8_t lsda_enc = 0xff;
    if (pb_read_cie(fde, out, &aug, &lsda_enc, why) != 0)
        return -1;
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

/* Whether a jump out of the function to `target` lands inside other code, which is then a part of
 * this function placed elsewhere (GCC's .cold parts), jumping back into the original at places the
 * function's own decoding does not see (decode.c checks it, indirect jumps included). 0 for the
 * first instruction of code with an unwind entry of its own (a tail call, or a .cold part entered
 * at its start: decode.c checks its direct jumps) and for a PLT entry. */
int pb_jump_may_return(uint64_t target)
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

/* The bounds of the function holding `address` from its unwind entry (a stripped program keeps
 * .eh_frame: its FDEs give each function's range where no symbol does). */
int pb_unwind_bounds(uint64_t address, uint64_t *fn, uint64_t *size)
{
    struct pb_fde_info fi;
    const char *why = "";
    if (pb_find_fde(address, 0, &fi, &why) != 1 || !fi.pc_range)
        return 0;
    *fn = fi.pc_begin;
    *size = fi.pc_range;
    return 1;
}

/* ---- writing ------------------------------------------------------------------------------------ */

/* Appends n bytes at the writer's position; past its end, marks it bad and writes nothing. */
static void pb_writer_append(struct pb_writer *w, const void *bytes, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        w->bad = 1;
        return;
    }
    memcpy(w->p, bytes, n);
    w->p += n;
}
static void pb_writer_append_u8(struct pb_writer *w, uint8_t v) { pb_writer_append(w, &v, 1); }
static void pb_writer_append_u32(struct pb_writer *w, uint32_t v) { pb_writer_append(w, &v, 4); }
static void pb_writer_append_u64(struct pb_writer *w, uint64_t v) { pb_writer_append(w, &v, 8); }
static void pb_writer_append_uleb(struct pb_writer *w, uint64_t v)
{
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        pb_writer_append_u8(w, (uint8_t)(b | (v ? 0x80 : 0)));
    } while (v);
}
static void pb_writer_append_sleb(struct pb_writer *w, int64_t v)
{
    for (;;) {
        uint8_t b = v & 0x7f;
        v >>= 7;
        if ((v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40))) {
            pb_writer_append_u8(w, b);
            return;
        }
        pb_writer_append_u8(w, (uint8_t)(b | 0x80));
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
            pb_writer_append(w, op_start, (size_t)(r.p - op_start));
            continue;
        }
        if (!absolute)
            loc += advance;
        long to = pb_map_offset(insns, n, loc, new_size);
        if (to < 0 || to < new_loc)
            return -1;
        pb_writer_append_u8(w, 0x04); /* DW_CFA_advance_loc4 */
        pb_writer_append_u32(w, (uint32_t)(to - new_loc));
        new_loc = to;
    }
    return r.bad || w->bad ? -1 : 0;
}

int pb_build_eh_frame(const struct pb_fde_info *fi, const struct pb_insn *insns, long n,
                      uint64_t fn, uint64_t copy, uint32_t new_size, struct pb_writer *w)
{
    uint8_t *cie = w->p;
    pb_writer_append_u32(w, 0); /* length, below */
    pb_writer_append_u32(w, 0); /* CIE id */
    pb_writer_append_u8(w, 1);  /* version */
    pb_writer_append(w, fi->signal_frame ? "zRS" : "zR", fi->signal_frame ? 4 : 3);
    pb_writer_append_uleb(w, fi->code_align);
    pb_writer_append_sleb(w, fi->data_align);
    pb_writer_append_u8(w, (uint8_t)fi->return_reg);
    pb_writer_append_uleb(w, 1);
    pb_writer_append_u8(w, 0x00); /* FDE addresses: absolute, 8 bytes */
    pb_writer_append(w, fi->cie_insns, (size_t)(fi->cie_end - fi->cie_insns));
    while (!w->bad && (w->p - cie) % 8)
        pb_writer_append_u8(w, 0);
    if (w->bad)
        return -1;
    uint32_t cie_len = (uint32_t)(w->p - cie - 4);
    memcpy(cie, &cie_len, 4);
    uint8_t *fde = w->p;
    pb_writer_append_u32(w, 0);
    pb_writer_append_u32(w, (uint32_t)(w->p - cie));
    pb_writer_append_u64(w, copy);
    pb_writer_append_u64(w, new_size + 5); /* and the jump after it, where the original's last row applies */
    pb_writer_append_uleb(w, 0);
    if (pb_translate_cfa(fi->insns, fi->end, insns, n, new_size, fi->fde_enc, fn, w) != 0)
        return -1;
    while (!w->bad && (w->p - fde) % 8)
        pb_writer_append_u8(w, 0);
    pb_writer_append_u32(w, 0); /* terminator */
    if (w->bad)
        return -1;
    uint32_t fde_len = (uint32_t)(w->p - 4 - fde - 4);
    memcpy(fde, &fde_len, 4);
    return 0;
}
