/*
 * rewriter/install.c — instrumented copies of the functions that hold a hot loop's sites
 * (accelerate mode): the rewriter's entry point, pb_copies_install, which the plan (accelerate/
 * routes.c) calls before main() with the sites a copy should serve.
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
 * jumps to parts of the function placed elsewhere (GCC's .cold parts, which run the original) and to
 * code entered where its own unwind entry starts (a tail call, or a .cold part entered at its
 * start) when their direct jumps reach into the entry's first 5 bytes or, for a part entered past
 * its start, when they jump indirectly (decode.c decodes them), memory operands relative to %eip,
 * branch forms with no 32-bit equivalent (loop/loope/loopne, jrcxz, xbegin), functions shorter
 * than the 5-byte entry jump, unwind tables the rewriter cannot
 * translate or register with the program's unwinder, and everything when other threads are
 * already running (the entry is patched while no thread can be executing it). Not checkable
 * here: a jump from another function into the first 5 bytes of this one, and from code entered at
 * its start that cannot be bounded or decoded (decode.c, pb_part_safe).
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
 *
 * The work is in parts, one file each (parts.h lists them); this file orders them: which
 * functions, the checks made before any (one thread, lahf/sahf, the program's unwinder), each
 * function read from the decode cache or decoded, then built. The plan tells each site's
 * executor in its request, and gets back the route aliases of the copies' calls, which it adds:
 * the rewriter does not call into accelerate/.
 *
 * May touch: the mappings for the jobs and the aliases it hands back, pb_copies_use_identity.
 * Uses rewriter/, executors/, sys/, Sources/CShim.
 */
#include "rewriter/parts.h"

#include <cpuid.h>
#include <stdio.h>
#include <string.h>

volatile int pb_copies_use_identity;

/* ---- the route aliases handed back ------------------------------------------------------------- */

int pb_aliases_reserve(struct pb_copies_installed *out, size_t more)
{
    if (out->alias_cap - out->alias_count >= more)
        return 1;
    size_t cap = out->alias_cap ? 2 * out->alias_cap : 64;
    while (cap - out->alias_count < more)
        cap *= 2;
    struct pb_copy_alias *grown = pb_map(cap * sizeof *grown);
    if (!grown)
        return 0;
    if (out->aliases) {
        memcpy(grown, out->aliases, out->alias_count * sizeof *grown);
        pb_unmap(out->aliases, out->alias_cap * sizeof *grown);
    }
    out->aliases = grown;
    out->alias_cap = cap;
    return 1;
}

void pb_alias_add(struct pb_copies_installed *out, uint64_t site, uint64_t copy_site)
{
    if (out->alias_count < out->alias_cap)
        out->aliases[out->alias_count++] = (struct pb_copy_alias){site, copy_site};
}

void pb_copies_installed_free(struct pb_copies_installed *out)
{
    if (out->aliases)
        pb_unmap(out->aliases, out->alias_cap * sizeof *out->aliases);
    out->aliases = 0;
    out->alias_count = out->alias_cap = 0;
}

/* ---- before any copy ---------------------------------------------------------------------------- */

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

/* Whether [fn, fn+size) lies in one executable segment of a loaded module: bounds from a plan are
 * checked before a byte of them is read. */
static int pb_in_exec_segment(uint64_t fn, uint64_t size)
{
    struct pb_module_at m;
    if (size == 0 || fn + size < fn)
        return 0;
    /* PT_LOAD segments do not overlap: the one holding fn is the only one that can hold the range. */
    return pb_module_at(fn, &m) == 0 && (m.segment_flags & PF_X) && fn + size <= m.segment_end;
}

/* ---- one function ------------------------------------------------------------------------------ */

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
        if (!pb_decoder_load()) {
            pb_refuse(job, "libcapstone.so.4 cannot be loaded to decode it");
            pb_unmap(scratch, sizeof *scratch);
            return 0;
        }
        verdict = pb_decode(job, &insns, &count, stubs, &nstubs);
        if (cacheable && !job->transient)
            pb_copy_cache_write(cache, job, verdict, insns, count, stubs, nstubs);
    }
    int copied = 0;
    if (verdict == 1) {
        uint64_t gate = pb_kernel_gate_address();
        copied = gate ? pb_build(job, insns, count, stubs, nstubs, gate) : -1;
        if (copied < 0) /* no gate, or the kernel refused the boxed copy */
            copied = pb_build(job, insns, count, stubs, nstubs, 0);
    }
    if (insns)
        pb_unmap(insns, job->insns_bytes);
    pb_unmap(scratch, sizeof *scratch);
    return copied;
}

/* ---- entry point -------------------------------------------------------------------------------- */

/* The job for the function holding reqs[i]'s site, with every request of that function marked
 * done: 1 to copy it, 0 if it is not copied (logged). */
static int pb_gather_job(struct pb_copy_job *job, const struct pb_copy_request *reqs, size_t n, size_t i,
                         unsigned char *done)
{
    const struct pb_copy_request *f = &reqs[i];
    struct pb_copies_installed *installed = job->installed;
    memset(job, 0, sizeof *job);
    job->installed = installed;
    job->fn = f->bias + f->function_offset;
    job->size = f->function_size;
    if (!job->size && !pb_unwind_bounds(f->bias + f->site - 1, &job->fn, &job->size)) {
        done[i] = 1;
        pb_log(PB_LOG_DEBUG, "%s+0x%llx: no symbol or unwind entry bounds its function; not copied",
               f->module, (unsigned long long)f->site);
        return 0;
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
        return 0;
    }
    for (size_t k = i; k < n; k++) {
        const struct pb_copy_request *r = &reqs[k];
        uint64_t site = r->bias + r->site;
        if (done[k] || r->bias != f->bias || site <= job->fn || site > job->fn + job->size ||
            (r->function_size && r->bias + r->function_offset != job->fn))
            continue;
        done[k] = 1;
        if (job->nsites < PB_COPY_MAX_SITES)
            job->sites[job->nsites++] = (struct pb_copy_site_req){r->bias + r->site, r->nr, r->is_inline, r->executor};
    }
    return 1;
}

/*
 * Whether a site's calls repay a copy of its function. A copy costs start-up time in every run,
 * before main() (hyperfine, decode cache warm: +0.6 ms for the copies test program's two small
 * functions, +0.9 ms for sqlite3's two, whose process maps are larger: libgcc_s loaded for the
 * unwind entries, /proc/self/maps read, pages mapped and patched). What it saves per call is what
 * the site costs without it:
 *  - a `syscall` instruction, which no route can serve: the system call itself (130-170 ns here
 *    for getpid), so a copy pays for itself after 4,000-20,000 calls;
 *  - a routed call, which its route already serves: only the route's dispatch (1-5 ns more than
 *    the copy's inlined load), so it takes 100,000 to a few million calls.
 * The thresholds are those break-even points, rounded up, against the calls the profiled process
 * made from the site (a profile counts per process run). A boxed copy (the kernel gate, which the
 * user asked for) and PRIVBOX_COPY=always are not held to them, nor is a site whose calls the
 * profile does not give.
 *
 * The decision is the rewriter's: what it weighs is its own product, a copy's start-up against
 * what the copy saves over the site's other server (the kernel, or the route). Accelerate asks it
 * for each candidate site while it reads the plan.
 */
#define PB_COPY_MIN_CALLS_INLINE 20000ull
#define PB_COPY_MIN_CALLS_ROUTED 1000000ull

int pb_copy_repays(uint64_t calls, int is_inline, int boxed, const char *label)
{
    uint64_t need = is_inline ? PB_COPY_MIN_CALLS_INLINE : PB_COPY_MIN_CALLS_ROUTED;
    if (boxed || pb_proc.copies == 2 || calls == 0 || calls >= need)
        return 1;
    pb_log(PB_LOG_INFO, "%s: not copied: %llu profiled calls would not repay a copy's start-up "
           "(%llu for a %s; PRIVBOX_COPY=always copies anyway)", label, (unsigned long long)calls,
           (unsigned long long)need, is_inline ? "syscall instruction" : "routed call");
    return 0;
}

void pb_copies_install(const struct pb_copy_request *reqs, size_t n, struct pb_copies_installed *out)
{
    if (!n)
        return;
    /* Without the wrappers' plain entries no call site would get a stub, and that verdict would be
     * remembered in the decode cache: a start-up that forgot them (a bug: runtime.c and the golden
     * tests' entry register them first) builds nothing, the copies of `syscall` sites too. */
    if (!pb_copies_call_wrappers_registered()) {
        pb_log(PB_LOG_ERROR, "internal error: the copies' call entries have no wrapper to continue in; "
               "no instrumented copies");
        return;
    }
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
    pb_unwinder_find();
    struct pb_copy_job *job = pb_map(sizeof *job);
    if (!job)
        return;
    unsigned char *done = pb_map(n);
    if (!done) {
        pb_unmap(job, sizeof *job);
        return;
    }
    job->installed = out;
    int copies = 0;
    for (size_t i = 0; i < n; i++)
        if (!done[i] && pb_gather_job(job, reqs, n, i, done))
            copies += pb_copy_one(job);
    pb_unmap(job, sizeof *job);
    pb_unmap(done, n);
    /* The decoder, if a function was not in the cache, is not needed any more (libgcc_s stays:
     * it holds the registered entries). */
    pb_decoder_unload();
    if (copies)
        pb_log(PB_LOG_INFO, "%d function%s run from instrumented copies", copies, copies == 1 ? "" : "s");
}
