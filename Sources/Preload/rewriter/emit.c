/*
 * rewriter/emit.c — building the copy of one decoded function (pb_build): its layout (branches
 * widened to rel32, 5-byte jumps and calls at the stubbed sites, a call site's fast path), the
 * copy's bytes with every relative branch and RIP-relative operand relocated so that the copy
 * reads and writes the same data and calls the same functions, the site stubs, the copy's unwind
 * entry registered before anything can run it, and last the patch of the original's entry. A
 * boxed copy (kernel gate) sends every `syscall` through the gate's sequence instead.
 *
 * May touch: the mappings it makes for the copy (unmapped again on refusal, kept once an
 * unwind entry for them may be registered), libgcc's frame registry, the report's entries
 * (report.c), the route aliases returned to the caller (install.c), pb_copies_use_identity.
 * Uses rewriter/, executors/, sys/.
 */
#include "rewriter/parts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

long pb_map_offset(const struct pb_insn *insns, long n, uint64_t off, uint32_t new_size)
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

static int pb_fits32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

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

/* The executor accelerate chose for a stubbed site (carried in its request). */
static enum pb_executor_id pb_site_executor(const struct pb_copy_job *job, const struct pb_stub_plan *plan)
{
    for (int s = 0; s < job->nsites; s++)
        if (job->sites[s].site == plan->site && job->sites[s].nr == plan->nr &&
            job->sites[s].is_inline == plan->is_inline)
            return job->sites[s].executor;
    return PB_EXEC_PASSTHROUGH;
}

/* One copy being built: the decoded function, its layout and the memory it goes into. */
struct pb_build_state {
    struct pb_copy_job *job;
    struct pb_insn *insns;
    size_t count;
    const struct pb_stub_plan *stubs;
    int nstubs;
    uint64_t gate;
    struct pb_fde_info fde;
    int has_fde;
    uint32_t new_size, nsyscalls, stubs_at, eh_at, eh_max, slot_at;
    uint8_t *region, *counts, *eh_map;
    size_t region_len, eh_len;
    uint64_t copy;
    size_t first_site; /* this copy's report entries start here */
};

/* Unwind information, translated once the layout is known: 1, or 0 refused. */
static int pb_build_find_unwind(struct pb_build_state *b)
{
    struct pb_copy_job *job = b->job;
    const char *fde_why = "";
    b->has_fde = pb_find_fde(job->fn, job->size, &b->fde, &fde_why);
    if (b->has_fde < 0) {
        pb_refuse(job, "%s", fde_why);
        return 0;
    }
    if (b->has_fde && b->fde.has_lsda) {
        pb_refuse(job, "it has exception landing pads (an LSDA), which would not move with the code");
        return 0;
    }
    if (b->has_fde && !pb_register_frame) {
        pb_refuse(job, "its unwind entry cannot be registered with the program's unwinder "
                  "(libgcc_s.so.1 missing, or another unwinder in use)");
        return 0;
    }
    return 1;
}

/* Layout: widened branches, 5-byte jumps and calls at the stubbed sites. */
static void pb_build_layout(struct pb_build_state *b)
{
    uint32_t new_size = 0, nsyscalls = 0;
    for (size_t i = 0; i < b->count; i++) {
        struct pb_insn *d = &b->insns[i];
        d->new_off = new_size;
        nsyscalls += b->gate && d->is_syscall;
        switch (pb_emit_kind(d, b->gate)) {
        case PB_I_BRANCH: d->new_len = d->branch >= 0x80 && d->branch <= 0x8f ? 6 : 5; break;
        case PB_I_SYSCALL: d->new_len = 5; break;
        case PB_I_CALL_STUB: d->new_len = 5 + (uint32_t)pb_call_fast_path(0, 0, b->stubs[d->stub].nr, 0); break;
        default: d->new_len = d->len;
        }
        new_size += d->new_len;
    }
    b->new_size = new_size;
    b->nsyscalls = nsyscalls;
    /* After the copy, a jump to what follows the original: a function whose last instruction
     * falls through (a call that does not return, as far as the compiler knew) or a branch to its
     * end continue where they would have. */
    b->stubs_at = (new_size + 5 + 15) & ~15u;
    b->eh_at = b->stubs_at + (uint32_t)b->nstubs * PB_COPY_STUB_BYTES;
    b->eh_max = b->has_fde ? (uint32_t)(b->fde.end - b->fde.insns) * 3 + (uint32_t)(b->fde.cie_end - b->fde.cie_insns) + 128 : 0;
    /* A boxed copy: the gate stubs, then the slot holding the gate's address; the kernel maps it
     * as supervisor pages, which user mode cannot read, so the unwind entry lives elsewhere. */
    b->slot_at = (b->stubs_at + nsyscalls * PB_GATE_STUB_BYTES + 7) & ~7u;
}

/* The memory for the copy (within 1 GiB below the function, so that rel32 reaches both ways), its
 * counts and its unwind entry; room for its calls' route aliases. 1, or 0 refused. */
static int pb_build_map(struct pb_build_state *b)
{
    struct pb_copy_job *job = b->job;
    if (b->gate) {
        b->region_len = ((size_t)b->slot_at + 8 + 4095) & ~(size_t)4095;
        b->eh_len = ((size_t)b->eh_max + 4095) & ~(size_t)4095;
        if (b->eh_len && !(b->eh_map = pb_map(b->eh_len))) {
            job->transient = 1;
            pb_refuse(job, "no memory for its unwind entry");
            return 0;
        }
    } else {
        b->region_len = ((size_t)b->eh_at + b->eh_max + 4095) & ~(size_t)4095;
    }
    b->region = pb_map_near(job->fn, b->region_len);
    if (!b->region) {
        pb_refuse(job, "no free memory within 1 GiB below it for the copy");
        return 0;
    }
    b->copy = (uint64_t)b->region;
    /* The inline sites' counts: a separate writable page (the code's pages never are). */
    b->counts = b->gate ? 0 : pb_map_near(job->fn, 4096);
    if (!b->gate && !b->counts) {
        pb_refuse(job, "no free memory within 1 GiB below it for the copy");
        return 0;
    }
    /* Each call in the copy returns into it: its route alias is handed to the caller, which adds
     * it (pb_build_enter); reserved here so that none is lost for want of memory later. */
    size_t calls = 0;
    for (size_t i = 0; i < b->count; i++)
        calls += b->insns[i].is_call;
    if (!pb_aliases_reserve(job->installed, calls)) {
        job->transient = 1;
        pb_refuse(job, "no memory for the routes of its calls");
        return 0;
    }
    return 1;
}

/* Writes one instruction of the copy: 1, or 0 refused (a target out of a rel32's reach). */
static int pb_emit_instruction(struct pb_build_state *b, const struct pb_insn *d, uint32_t *gate_stub)
{
    struct pb_copy_job *job = b->job;
    const uint64_t fn = job->fn, size = job->size, copy = b->copy;
    uint8_t *o = b->region + d->new_off;
    uint64_t next = copy + d->new_off + d->new_len;
    int64_t rel;
    int kind = pb_emit_kind(d, b->gate);
    if (b->gate && kind == PB_I_SYSCALL) {
        *o++ = 0xe9;
        uint64_t stub_at = copy + b->stubs_at + (uint64_t)*gate_stub * PB_GATE_STUB_BYTES;
        pb_gate_emit_stub(b->region + (stub_at - copy), stub_at, copy + b->slot_at, next);
        (*gate_stub)++;
        rel = (int64_t)(stub_at - next);
        int32_t r32 = (int32_t)rel;
        memcpy(o, &r32, 4);
        return 1;
    }
    switch (kind) {
    case PB_I_BRANCH: {
        uint64_t target = d->target;
        if (target >= fn && target < fn + size)
            target = copy + (uint64_t)pb_map_offset(b->insns, (long)b->count, target - fn, b->new_size);
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
            int fast = pb_call_fast_path(o, copy + d->new_off, b->stubs[d->stub].nr,
                                         (uint64_t)b->counts + 8u * (uint32_t)d->stub);
            if (fast < 0 || (uint32_t)fast + 5 != d->new_len) {
                pb_refuse(job, "the call at +0x%x would not reach its count from the copy", d->off);
                return 0;
            }
            o += fast;
        }
        *o++ = d->kind == PB_I_SYSCALL ? 0xe9 : 0xe8;
        rel = (int64_t)(copy + b->stubs_at + (uint64_t)d->stub * PB_COPY_STUB_BYTES - next);
        break;
    default:
        memcpy(o, (const uint8_t *)fn + d->off, d->len);
        if (!d->disp_pos)
            return 1;
        o += d->disp_pos;
        rel = (int64_t)(d->target - next);
    }
    if (!pb_fits32(rel)) {
        pb_refuse(job, "the instruction at +0x%x would not reach its target from the copy", d->off);
        return 0;
    }
    int32_t r32 = (int32_t)rel;
    memcpy(o, &r32, 4);
    return 1;
}

/* The copy's code, then the jump to what follows the original: 1, or 0 refused. */
static int pb_emit_code(struct pb_build_state *b)
{
    uint32_t gate_stub = 0;
    for (size_t i = 0; i < b->count; i++)
        if (!pb_emit_instruction(b, &b->insns[i], &gate_stub))
            return 0;
    const uint64_t fn = b->job->fn, size = b->job->size;
    uint8_t *o = b->region + b->new_size;
    int64_t rel = (int64_t)(fn + size - (b->copy + b->new_size + 5));
    if (!pb_fits32(rel)) {
        pb_refuse(b->job, "the code after it would not be reachable from the copy");
        return 0;
    }
    int32_t r32 = (int32_t)rel;
    o[0] = 0xe9;
    memcpy(o + 1, &r32, 4);
    memset(o + 5, 0xcc, b->stubs_at - b->new_size - 5);
    return 1;
}

/* A boxed copy's tail: int3 up to the slot (the kernel decodes everything before it), the slot
 * holding the gate's address, and a report entry for each of its syscall instructions. */
static void pb_emit_box(struct pb_build_state *b)
{
    const struct pb_copy_job *job = b->job;
    const uint64_t fn = job->fn;
    uint32_t gate_stubs_end = b->stubs_at + b->nsyscalls * PB_GATE_STUB_BYTES;
    memset(b->region + gate_stubs_end, 0xcc, b->slot_at - gate_stubs_end);
    memcpy(b->region + b->slot_at, &b->gate, 8);
    b->nstubs = 0; /* the stub plans' entries are not used in a box */
    for (size_t i = 0; i < b->count; i++) {
        struct pb_copied_site *c;
        if (!b->insns[i].is_syscall || !(c = pb_copied_add()))
            continue;
        const char *name = "a system call";
        for (int s = 0; s < job->nsites; s++)
            if (job->sites[s].is_inline && job->sites[s].site == fn + b->insns[i].off + b->insns[i].len)
                name = pb_syscall_name(job->sites[s].nr);
        snprintf(c->label, sizeof c->label, "%s+0x%llx (%s, syscall instruction in %s)", job->module,
                 (unsigned long long)(fn + b->insns[i].off + b->insns[i].len - job->bias_for_log), name,
                 job->function);
        c->boxed = 1;
    }
}

/* The site stubs (stubs.c), each with its report entry. */
static void pb_emit_stubs(struct pb_build_state *b)
{
    const struct pb_copy_job *job = b->job;
    for (int s = 0; s < b->nstubs; s++) {
        const struct pb_stub_plan *plan = &b->stubs[s];
        uint8_t *st = b->region + b->stubs_at + (uint32_t)s * PB_COPY_STUB_BYTES, *count = b->counts + 8 * s;
        const struct pb_insn *d = &b->insns[plan->insn];
        uint64_t back = b->copy + d->new_off + d->new_len;
        if (!pb_emit_site_stub(st, plan, back, count))
            continue;
        struct pb_copied_site *c = pb_copied_add();
        if (!c)
            continue;
        snprintf(c->label, sizeof c->label, "%s+0x%llx (%s, %s in %s)", job->module,
                 (unsigned long long)(plan->site - job->bias_for_log), pb_syscall_name(plan->nr),
                 plan->is_inline ? "syscall instruction" : "call", job->function);
        /* Served calls are counted by an inline site's stub, or by a call site's fast path. */
        c->served = plan->is_inline || d->new_len > 5 ? (uint64_t *)count : 0; /* 5: the call alone */
        c->call_site = !plan->is_inline;
        c->executor = pb_site_executor(job, plan);
    }
}

/* The unwind entry, registered before anything can run the copy, and the copy made executable
 * (or handed to the kernel, boxed). 1; 0 refused; -1 the kernel refused the boxed copy. */
static int pb_build_publish(struct pb_build_state *b)
{
    struct pb_copy_job *job = b->job;
    uint8_t *eh = b->gate ? b->eh_map : b->region + b->eh_at;
    if (b->has_fde) {
        struct pb_writer w = {eh, b->gate ? b->eh_map + b->eh_len : b->region + b->region_len, 0};
        if (pb_build_eh_frame(&b->fde, b->insns, (long)b->count, job->fn, b->copy, b->new_size, &w) != 0) {
            pb_copied_forget_after(b->first_site);
            pb_refuse(job, "its unwind entry could not be translated");
            return 0;
        }
    }
    if (b->gate) {
        char why[160];
        /* The kernel verifies the bytes and maps its own copy over these pages. */
        if (pb_gate_register(b->region, b->region_len, b->slot_at, why, sizeof why) != 0) {
            pb_copied_forget_after(b->first_site);
            pb_log(PB_LOG_INFO, "not boxed: %s (%s+0x%llx): %s; copied without the gate", job->function,
                   job->module, (unsigned long long)(job->fn - job->bias_for_log), why);
            return -1;
        }
    } else if (pb_raw_syscall6(SYS_mprotect, (long)b->region, (long)b->region_len, PROT_READ | PROT_EXEC, 0, 0, 0) != 0) {
        pb_copied_forget_after(b->first_site);
        pb_refuse(job, "the copy could not be made executable");
        return 0;
    }
    if (b->has_fde)
        pb_register_frame(eh);
    return 1;
}

/* Calls in the copy return into it: the routed ones get a route there too (a stubbed call's
 * entry falls back to the wrapper, which serves, fills or samples by that route). The caller
 * (accelerate) adds them: here each call's pair of return addresses is handed back. Then the
 * entry: jmp rel32 to the copy. 1 if the function now runs from the copy. */
static int pb_build_enter(struct pb_build_state *b)
{
    struct pb_copy_job *job = b->job;
    const uint64_t fn = job->fn, copy = b->copy;
    for (size_t i = 0; i < b->count; i++)
        if (b->insns[i].is_call)
            pb_alias_add(job->installed, fn + b->insns[i].off + b->insns[i].len,
                         copy + b->insns[i].new_off + b->insns[i].new_len);
    uint8_t jump[5] = {0xe9};
    int32_t rel = (int32_t)(int64_t)(copy - (fn + 5));
    memcpy(jump + 1, &rel, 4);
    if (pb_patch_entry(fn, jump) != 0) {
        pb_copied_forget_after(b->first_site);
        pb_refuse(job, "its entry could not be patched");
        return 0;
    }
    for (int s = 0; s < b->nstubs; s++)
        if (pb_site_executor(job, &b->stubs[s]) == PB_EXEC_IDENTITY &&
            pb_copy_entry_for(b->stubs[s].nr, b->stubs[s].is_inline))
            pb_copies_use_identity = 1;
    pb_log(PB_LOG_INFO, "copied %s (%s+0x%llx, %llu bytes) to %p: %d site%s instrumented%s%s",
           job->function[0] ? job->function : "?", job->module,
           (unsigned long long)(fn - job->bias_for_log), (unsigned long long)job->size, (void *)b->region,
           b->gate ? (int)b->nsyscalls : b->nstubs, (b->gate ? b->nsyscalls : (uint32_t)b->nstubs) == 1 ? "" : "s",
           b->has_fde ? ", unwind entry registered" : "",
           b->gate ? "; it runs in a box, its system calls through the kernel gate" : "");
    static int gate_reported;
    if (b->gate && !gate_reported++)
        atexit(pb_gate_report);
    return 1;
}

int pb_build(struct pb_copy_job *job, struct pb_insn *insns, size_t count,
             const struct pb_stub_plan *stubs, int nstubs, uint64_t gate)
{
    struct pb_build_state b = {.job = job, .insns = insns, .count = count, .stubs = stubs,
                               .nstubs = nstubs, .gate = gate};
    int copied = 0;
    if (!pb_build_find_unwind(&b))
        goto out;
    pb_build_layout(&b);
    if (!pb_build_map(&b) || !pb_emit_code(&b))
        goto out;
    b.first_site = pb_copied_mark();
    if (gate)
        pb_emit_box(&b);
    pb_emit_stubs(&b);
    copied = pb_build_publish(&b);
    if (copied <= 0)
        goto out;
    copied = pb_build_enter(&b);
    /* Registered (its unwind entry may be in libgcc's registry): the region stays, used or not. */
    b.region = b.counts = b.eh_map = 0;
out:
    if (b.region)
        pb_unmap(b.region, b.region_len);
    if (b.counts)
        pb_unmap(b.counts, 4096);
    if (b.eh_map)
        pb_unmap(b.eh_map, b.eh_len);
    return copied;
}
