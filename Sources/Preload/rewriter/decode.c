/*
 * rewriter/decode.c — decoding one function for its copy: each instruction classified (copied as
 * is, a relative branch to widen, a site to stub), the requested sites matched to instructions,
 * and the checks that refuse a function the copy could not run exactly (install.c's head lists
 * what is refused and why). The refusal texts are the log's and the golden tests': keep them, and
 * the order in which the checks are made.
 *
 * May touch: the job (its why, notes, transient flag) and the decoded instructions it maps. Uses
 * capstone only through capstone.c, and rewriter/, executors/, sys/.
 */
#include "rewriter/parts.h"

#include <string.h>

/*
 * Code a jump out of the function reaches, bounded by the unwind entry holding `target`, decoded
 * with d; 1 if it cannot land in the entry's patched bytes. Two cases:
 *  - a part of the function placed elsewhere, entered past its start (GCC's .cold parts): it runs
 *    on in the original when it jumps back, harmless unless it jumps into the original's first 5
 *    bytes, or anywhere unknown (an indirect jump); a part that cannot be bounded or decoded is
 *    unsafe;
 *  - code entered at its first instruction, where an unwind entry of its own starts
 *    (entered_at_start: a tail call, or a .cold part entered at its start, which is how GCC
 *    usually enters one): its direct jumps into those bytes would land in the middle of the jump
 *    there (with `endbr64` first, a loop head at +4 is within reach), so they are looked for; its
 *    indirect jumps are not held against it (a tail-called function's jump tables are its own),
 *    and code that cannot be bounded or decoded (an entry over PB_COPY_MAX_BYTES, data in the
 *    text) is let through unchecked, as another function's jumps are (install.c, "not
 *    checkable"): refusing it would refuse every tail call into such code, and a .cold part of
 *    that size is not one GCC makes of a function small enough to copy.
 */
static int pb_part_safe(uint64_t fn, uint64_t target, struct pb_decoder *d, int entered_at_start)
{
    const int unknown = entered_at_start; /* what cannot be checked counts as */
    struct pb_fde_info fi;
    const char *why = "";
    if (pb_find_fde(target, 0, &fi, &why) != 1 || fi.pc_range > PB_COPY_MAX_BYTES ||
        (entered_at_start && fi.pc_begin != target))
        return unknown;
    const uint8_t *code = (const uint8_t *)fi.pc_begin;
    size_t left = (size_t)fi.pc_range;
    uint64_t address = fi.pc_begin;
    struct pb_x86_insn in;
    while (left) {
        if (!pb_decoder_next(d, &code, &left, &address, &in))
            return unknown;
        /* A direct call or xbegin (its abort target) into those bytes would land as badly as a
         * jump; an indirect call returns to where it was made. */
        if (!in.is_jump && !in.is_call && !in.is_xbegin)
            continue;
        if (!in.has_imm_operand) {
            if (entered_at_start || !in.is_jump)
                continue;
            return 0; /* an indirect jump: it could land anywhere */
        }
        if (in.imm > fn && in.imm < fn + 5)
            return 0;
    }
    return 1;
}

/* Classifies one decoded instruction into d: 1, or 0 refused (job->why). */
static int pb_classify(struct pb_copy_job *job, struct pb_decoder *dec, const struct pb_x86_insn *in,
                       struct pb_insn *d)
{
    const uint64_t fn = job->fn;
    d->off = (uint32_t)(in->address - fn);
    d->len = in->size;
    d->kind = PB_I_COPY;
    d->stub = -1;
    d->is_call = in->is_call;
    d->is_syscall = in->is_syscall;
    if ((in->is_jump || in->is_call || in->is_xbegin) && in->has_imm_operand) {
        if (in->is_xbegin || !in->rel_branch) {
            pb_refuse(job, "%s at +0x%x has no 32-bit relative form", in->mnemonic, d->off);
            return 0;
        }
        d->branch = in->rel_branch;
        d->kind = PB_I_BRANCH;
        d->target = in->imm;
        return 1;
    }
    if (in->is_jump && in->is_jmp && !in->first_operand_rip_slot) {
        pb_refuse(job, "indirect jump at +0x%x (a jump table could land in the original)", d->off);
        return 0;
    }
    /* disp(%eip) (an address-size prefix): the address is the instruction's own, truncated to 32
     * bits, so the copy would read elsewhere; compilers do not emit it for 64-bit code. */
    if (in->has_eip_operand) {
        pb_refuse(job, "%s at +0x%x addresses memory relative to %%eip, which the copy cannot re-point",
                  in->mnemonic, d->off);
        return 0;
    }
    if (in->has_rip_operand && !pb_decoder_locate_rip_operand(dec, &d->disp_pos, &d->target)) {
        pb_refuse(job, "cannot locate the displacement of %s at +0x%x", in->mnemonic, d->off);
        return 0;
    }
    return 1;
}

/* Decodes every instruction of the function into insns (*count of them): 1, or 0 refused. */
static int pb_classify_all(struct pb_copy_job *job, struct pb_decoder *dec, struct pb_insn *insns,
                           size_t *count)
{
    const uint64_t fn = job->fn;
    const uint8_t *code = (const uint8_t *)fn;
    size_t left = (size_t)job->size;
    uint64_t address = fn;
    struct pb_x86_insn in;
    while (left) {
        if (!pb_decoder_next(dec, &code, &left, &address, &in)) {
            pb_refuse(job, "the byte at +0x%llx does not decode (data inside the code?)",
                      (unsigned long long)(address - fn));
            return 0;
        }
        if (!pb_classify(job, dec, &in, &insns[(*count)++]))
            return 0;
    }
    return 1;
}

/* Whether the call at a call site goes straight to the wrapper itself (and that wrapper is
 * privbox's); says why not in the job's notes. */
static int pb_calls_the_wrapper(struct pb_copy_job *job, struct pb_decoder *dec,
                                const struct pb_copy_site_req *req, const struct pb_insn *call)
{
    /* Only a call straight to the wrapper itself: the recorded return address is also
     * the one of a call to a function that tail-calls it, or to syscall(). */
    const char *callee = pb_call_symbol(dec, job->fn, call->target, call->kind == PB_I_BRANCH);
    if (callee && strcmp(callee, pb_syscall_name(req->nr)) == 0 && pb_resolves_to_privbox(callee))
        return 1;
    pb_note(job, "%s+0x%llx: the call in %s goes to %s, not to %s(); left as it is",
            job->module, (unsigned long long)(req->site - job->bias_for_log),
            job->function, callee ? callee : "a function privbox cannot name",
            pb_syscall_name(req->nr));
    if (callee && !strcmp(callee, pb_syscall_name(req->nr)))
        pb_note(job, "%s+0x%llx: %s() is another library's here (an interposer before "
                "privbox); left as it is", job->module,
                (unsigned long long)(req->site - job->bias_for_log), callee);
    return 0;
}

/* The sites: a `syscall` or a call ending at each recorded offset. Returns how many got a stub. */
static int pb_plan_stubs(struct pb_copy_job *job, struct pb_decoder *dec, struct pb_insn *insns,
                         size_t count, struct pb_stub_plan *stubs)
{
    const uint64_t fn = job->fn;
    int nstubs = 0;
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
            (!pb_copy_entry_for(req->nr, req->is_inline) && !(req->is_inline && pb_kernel_gate_address())))
            continue; /* a call site with another executor keeps its call (and gets an alias) */
        if (!req->is_inline && !pb_calls_the_wrapper(job, dec, req, &insns[at]))
            continue;
        insns[at].kind = req->is_inline ? PB_I_SYSCALL : PB_I_CALL_STUB;
        insns[at].stub = nstubs;
        stubs[nstubs++] = (struct pb_stub_plan){req->site, req->nr, req->is_inline, at};
    }
    return nstubs;
}

/* Nothing may branch into an instruction's middle, or into the entry's patched bytes; no part
 * of the function may lie elsewhere. 1, or 0 refused. */
static int pb_check_branches(struct pb_copy_job *job, struct pb_decoder *dec,
                             const struct pb_insn *insns, size_t count)
{
    const uint64_t fn = job->fn, size = job->size;
    for (size_t i = 0; i < count; i++) {
        const struct pb_insn *d = &insns[i];
        int leaves = d->kind == PB_I_BRANCH && d->branch != 0xe8 && (d->target < fn || d->target >= fn + size);
        if (leaves && pb_jump_may_return(d->target) && !pb_part_safe(fn, d->target, dec, 0)) {
            pb_refuse(job, "the jump at +0x%x leaves for a part of it placed elsewhere (a .cold part) "
                      "that may jump into its first 5 bytes", d->off);
            return 0;
        }
        if (leaves && !pb_jump_may_return(d->target) && !pb_part_safe(fn, d->target, dec, 1)) {
            pb_refuse(job, "the jump at +0x%x leaves for code with an unwind entry of its own (a .cold "
                      "part, or a tail call) that jumps or calls into its first 5 bytes", d->off);
            return 0;
        }
        if (d->kind == PB_I_BRANCH && d->target >= fn && d->target < fn + size) {
            uint64_t t = d->target - fn;
            if (t > 0 && t < 5) {
                pb_refuse(job, "the branch at +0x%x targets the entry's first 5 bytes", d->off);
                return 0;
            }
            if (pb_map_offset(insns, (long)count, t, 0) < 0) {
                pb_refuse(job, "the branch at +0x%x lands inside an instruction (+0x%llx)", d->off,
                          (unsigned long long)t);
                return 0;
            }
        }
        if (d->disp_pos && d->target + 8 > fn && d->target < fn + 5 && d->target != fn) {
            pb_refuse(job, "the instruction at +0x%x refers to the entry's first 5 bytes", d->off);
            return 0;
        }
    }
    return 1;
}

int pb_decode(struct pb_copy_job *job, struct pb_insn **insns_out, size_t *count_out,
              struct pb_stub_plan *stubs, int *nstubs_out)
{
    const uint64_t size = job->size;
    if (size < 5) {
        pb_refuse(job, "it is shorter than the 5-byte jump its entry needs");
        return 0;
    }
    if (size > PB_COPY_MAX_BYTES) {
        pb_refuse(job, "it is larger than %u bytes", PB_COPY_MAX_BYTES);
        return 0;
    }
    /* At most one instruction per byte; decoded one at a time into one buffer (no allocation per
     * instruction in the program's heap). */
    size_t count = 0, cap = (size_t)size;
    struct pb_insn *insns = pb_map(cap * sizeof *insns);
    struct pb_decoder dec = {0};
    int verdict = 0, nstubs = 0;
    if (!insns || !pb_decoder_open(&dec)) {
        job->transient = 1;
        pb_refuse(job, "no memory to decode it");
        goto out;
    }
    if (!pb_classify_all(job, &dec, insns, &count))
        goto out;
    nstubs = pb_plan_stubs(job, &dec, insns, count, stubs);
    if (!nstubs) {
        pb_log(PB_LOG_DEBUG, "%s: no site an entry serves; not copied", job->function);
        verdict = 2;
        goto out;
    }
    if (!pb_check_branches(job, &dec, insns, count))
        goto out;
    verdict = 1;
out:
    pb_decoder_close(&dec);
    if (verdict != 1 && insns) {
        pb_unmap(insns, cap * sizeof *insns);
        insns = 0;
    }
    job->insns_bytes = insns ? cap * sizeof *insns : 0;
    *insns_out = insns;
    *count_out = count;
    *nstubs_out = nstubs;
    return verdict;
}
