/*
 * rewriter/copy_cache.c — the decode cache: a function decoded once (decode.c) is read back on
 * the program's next runs, so that capstone is loaded only for what changed.
 *
 * Decoding needs capstone, whose loading costs ~2 ms (the relocation of its tables); a program's
 * next runs read the decoded function from ~/.cache/privbox/copies/ instead. The file is named by a
 * hash of the function's bytes (as they are in memory), its size, module and build-id, and the
 * requested sites: any change gives another name. Its content is this build's own structures
 * (the tag names the format), with addresses stored relative to the function. A file is used
 * only if it passes the trust check all caches share and its content is consistent with the
 * function (pb_decoded_sane): a damaged or foreign file decodes afresh.
 *
 * May touch: files under the cache's copies/ folder (written through pb_cache_file_write, read
 * through pb_read_trusted_cache_file), and the job's decoded instructions, why and notes. Uses
 * rewriter/, executors/, sys/, Sources/CShim.
 */
#include "rewriter/parts.h"

#include <stdio.h>
#include <string.h>

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

#define PB_COPY_CACHE_TAG "pbcopy/2"

struct pb_copy_cache_head {
    char tag[8];
    uint64_t checksum; /* FNV-1a of everything after the head */
    uint32_t verdict, count, nstubs, size;
    char why[200];
    char notes[512];
};

int pb_copy_cache_path(const struct pb_copy_job *job, char *out, size_t len)
{
    if (!job->build_id || !job->build_id[0])
        return -1;
    uint64_t h = PB_FNV_OFFSET;
    /* libprivbox.so's own build-id, so that another build of privbox decodes afresh. */
    struct pb_module_at own;
    if (pb_module_at((uint64_t)(uintptr_t)pb_copy_cache_path, &own) == 0)
        h = pb_fnv1a(h, own.build_id, own.build_id_len);
#define PB_MIX(p, n) h = pb_fnv1a(h, (p), (size_t)(n))
    PB_MIX(PB_COPY_CACHE_TAG, sizeof PB_COPY_CACHE_TAG);
    PB_MIX(job->build_id, strlen(job->build_id));
    PB_MIX(job->module, strlen(job->module));
    PB_MIX(&job->size, sizeof job->size);
    int gated = pb_kernel_gate_address() != 0; /* with the gate, inline sites of any call are stubbed */
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

void pb_copy_cache_write(const char *path, const struct pb_copy_job *job, int verdict,
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
    pb_unmap(buf, len);
}

/* The cached verdict (0, 1 or 2, with the instructions and stubs for 1), or -1 with no usable file. */
int pb_copy_cache_read(const char *path, struct pb_copy_job *job, struct pb_insn **insns_out,
                       size_t *count_out, struct pb_stub_plan *stubs, int *nstubs_out)
{
    size_t cap = sizeof(struct pb_copy_cache_head) + PB_COPY_MAX_SITES * sizeof *stubs +
                 PB_COPY_MAX_BYTES * sizeof(struct pb_insn) + 1;
    uint8_t *buf = pb_map(cap);
    if (!buf)
        return -1;
    /* Only a file of this user's that nobody else may write, in directories of the same kind
     * (the trust check all caches share, sys/cache.c). */
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
                pb_unmap(insns, head->count * sizeof *insns);
                goto out;
            }
        }
        for (uint32_t i = 0; i < head->nstubs; i++) {
            stubs[i] = st[i];
            stubs[i].site += job->fn;
            if (stubs[i].insn < 0 || (uint64_t)stubs[i].insn >= head->count) {
                pb_unmap(insns, head->count * sizeof *insns);
                goto out;
            }
        }
    }
    if (head->verdict == 1 && !pb_decoded_sane(job, insns, head->count, stubs, (int)head->nstubs)) {
        pb_unmap(insns, head->count * sizeof *insns);
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
    pb_unmap(buf, cap);
    return verdict;
}
