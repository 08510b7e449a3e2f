/*
 * golden_entry.c — a test entry: the rewriter's two steps (pb_decode, pb_build: rewriter/) run on
 * a function of the calling program without a profile, for the golden tests
 * (Tests/IntegrationTests/GoldenRewriterTests.swift: each case's input function, assembled into
 * programs/golden_rewrite.c, must give the copy, or the refusal, its .expected file shows).
 *
 * Nothing calls privbox_golden_rewrite but a test driver: the library never runs this code on
 * its own, and a program that does not call it sees no difference. When called, it touches what
 * building a copy touches in accelerate mode (capstone loaded, the identity executor started for
 * the call sites' inline loads, a mapping near the function, the function's entry patched, the
 * copy's report entry), except the unwinder: the copy's unwind entry is handed back to the caller
 * instead of being registered with libgcc (nothing will unwind through a copy that never runs).
 */
#include "golden_entry.h"
#include "rewriter/parts.h"
#include "executors/identity.h"
#include "sys/memory.h"
#include "wrappers/wrappers.h"

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

/* The unwind entry pb_build would register: kept for the caller instead. */
static const uint8_t *pb_golden_eh;
static void pb_golden_capture_frame(void *eh) { pb_golden_eh = eh; }

static int32_t pb_golden_rel32(uint64_t at)
{
    int32_t r;
    memcpy(&r, (const void *)at, 4);
    return r;
}

/* The length of an .eh_frame fragment up to and including its zero terminator. */
static size_t pb_golden_eh_length(const uint8_t *eh)
{
    size_t at = 0;
    for (;;) {
        uint32_t len;
        memcpy(&len, eh + at, 4);
        at += 4;
        if (!len || len == 0xffffffffu)
            return at;
        at += len;
    }
}

static void pb_golden_names(struct privbox_golden_result *res)
{
    static const struct { const char *name; void *address; } entries[] = {
#define PB_GOLDEN_NAME(n) {"pb_copy_inline_" #n, pb_copy_inline_##n}, {"pb_copy_call_" #n, pb_copy_call_##n},
        PB_GOLDEN_NAME(getpid) PB_GOLDEN_NAME(getuid) PB_GOLDEN_NAME(geteuid) PB_GOLDEN_NAME(getgid)
        PB_GOLDEN_NAME(getegid) PB_GOLDEN_NAME(getpgrp) PB_GOLDEN_NAME(gettid)
#undef PB_GOLDEN_NAME
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        res->entries[i].name = entries[i].name;
        res->entries[i].address = (uint64_t)entries[i].address;
    }
    res->nentries = (int)(sizeof entries / sizeof entries[0]);
    res->identity_page = (uint64_t)pb_id;
    res->identity_len = pb_id ? sizeof *pb_id : 0;
    char *tp;
    __asm__("movq %%fs:0, %0" : "=r"(tp));
    res->tls_pid_word = (char *)&pb_my_tid.pid_word - tp;
    res->tls_tid = (char *)&pb_my_tid.tid - tp;
}

/* Where the copy's pieces are, read back from what pb_build wrote: the entry's jump gives the
 * copy, each stubbed instruction's last 4 bytes (its jmp/call rel32) give its stub. */
static void pb_golden_layout(const struct pb_copy_job *job, const struct pb_insn *insns, size_t count,
                             const struct pb_stub_plan *stubs, int nstubs,
                             struct privbox_golden_result *res)
{
    res->copy = job->fn + 5 + (uint64_t)(int64_t)pb_golden_rel32(job->fn + 1);
    res->copy_len = count ? insns[count - 1].new_off + insns[count - 1].new_len + 5 : 5;
    res->nstubs = nstubs;
    res->stub_bytes = PB_COPY_STUB_BYTES;
    for (int s = 0; s < nstubs; s++) {
        const struct pb_insn *d = &insns[stubs[s].insn];
        uint64_t next = res->copy + d->new_off + d->new_len;
        res->stubs[s] = next + (uint64_t)(int64_t)pb_golden_rel32(next - 4);
    }
    res->eh = pb_golden_eh;
    res->eh_len = pb_golden_eh ? pb_golden_eh_length(pb_golden_eh) : 0;
}

PB_EXPORT int privbox_golden_rewrite(const struct privbox_golden_request *req, struct privbox_golden_result *res)
{
    memset(res, 0, sizeof *res);
    res->verdict = -1;
    if (!pb_decoder_load()) {
        snprintf(res->why, sizeof res->why, "libcapstone.so.4 cannot be loaded");
        return res->verdict;
    }
    /* The call sites' stubs continue in the wrappers' plain entries when nothing is cached, as in
     * accelerate mode (the start-up hands them down there). */
    pb_wrappers_give_copies_their_entries();
    /* The call sites' inline loads read the identity page: without it there are none. */
    if (!pb_id)
        pb_exec_ready(PB_EXEC_IDENTITY);
    struct pb_copy_job *job = pb_map(sizeof *job);
    struct pb_stub_plan *stubs = pb_map(PB_COPY_MAX_SITES * sizeof *stubs);
    if (!job || !stubs) {
        snprintf(res->why, sizeof res->why, "no memory for the job");
        return res->verdict;
    }
    job->fn = req->fn;
    job->size = req->size;
    job->bias_for_log = req->fn; /* the notes' offsets are then the function's */
    job->module = "case";
    job->function = req->function;
    job->build_id = "";
    for (int s = 0; s < req->nsites && s < PB_COPY_MAX_SITES; s++)
        job->sites[job->nsites++] = (struct pb_copy_site_req){req->sites[s].site, req->sites[s].nr,
                                                              req->sites[s].is_inline,
                                                              pb_executor_for_syscall(req->sites[s].nr)};
    struct pb_copies_installed installed = {0}; /* the calls' route aliases: not routed here */
    job->installed = &installed;
    struct pb_insn *insns = 0;
    size_t count = 0;
    int nstubs = 0;
    int verdict = pb_decode(job, &insns, &count, stubs, &nstubs);
    if (verdict == 1) {
        if (req->before_build)
            req->before_build();
        void (*registered)(void *) = pb_register_frame;
        int used_identity = pb_copies_use_identity;
        pb_register_frame = req->no_unwinder ? 0 : pb_golden_capture_frame;
        pb_golden_eh = 0;
        verdict = pb_build(job, insns, count, stubs, nstubs, 0) == 1;
        pb_register_frame = registered;
        pb_copies_use_identity = used_identity;
        if (verdict == 1)
            pb_golden_layout(job, insns, count, stubs, nstubs, res);
    }
    res->verdict = verdict;
    memcpy(res->why, job->why, sizeof res->why);
    memcpy(res->notes, job->notes, sizeof res->notes);
    pb_golden_names(res);
    pb_copies_installed_free(&installed);
    if (insns)
        pb_unmap(insns, job->insns_bytes);
    pb_unmap(job, sizeof *job);
    pb_unmap(stubs, PB_COPY_MAX_SITES * sizeof *stubs);
    return res->verdict;
}
