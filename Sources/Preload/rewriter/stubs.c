/*
 * rewriter/stubs.c — what a copied site runs instead of the call it held: the entries of
 * copy_entries.S (one pair per identity value), a call site's inline fast path (the load its entry
 * would make, emitted in the copy before the call), and the site stubs each instrumented site of
 * a copy jumps or calls to. Why each answer is the kernel's: executors/identity.c (the cache) and
 * copy_entries.S (the registers and flags); the comments below argue the rest.
 *
 * May touch: only the bytes it is given to write. Reads the identity executor's page and the
 * thread's identity word (executors/identity.h). Uses rewriter/, executors/, sys/.
 */
#include "rewriter/parts.h"

#include <string.h>

/* ---- the entries a site stub calls (copy_entries.S) ------------------------------------------- */

/* The entries themselves are declared in parts.h (PB_COPY_ENTRIES). */

/* which: the value's word in the identity page (PB_ID_*), or -1 for gettid (the thread's own).
 * wrapper: where the call entry continues when the cache cannot answer, the wrapper's plain entry
 * (wrappers/interpose_routed.c, pb_plain_NAME), which serves, fills or samples the call by the
 * route of the copy's return address, as the call did before it was copied. The wrappers are
 * above the rewriter, so it does not name them: the wrappers hand them down
 * (pb_wrappers_give_copies_their_entries, called by the start-up and the golden tests' entry) with
 * pb_copies_set_call_wrapper before the plan builds any copy; pb_copies_install builds nothing
 * until all are there. (The cost: the call entry's rare fall-through, when the cache cannot answer,
 * is an indirect jump instead of a direct one, on the way to a system call.) */
static const struct {
    unsigned nr;
    int which;
    void *inline_entry, *call_entry;
    void **wrapper;
} pb_copy_entries[] = {
    {SYS_getpid, PB_ID_PID, pb_copy_inline_getpid, pb_copy_call_getpid, &pb_copy_call_wrapper_getpid},
    {SYS_getuid, PB_ID_UID, pb_copy_inline_getuid, pb_copy_call_getuid, &pb_copy_call_wrapper_getuid},
    {SYS_geteuid, PB_ID_EUID, pb_copy_inline_geteuid, pb_copy_call_geteuid, &pb_copy_call_wrapper_geteuid},
    {SYS_getgid, PB_ID_GID, pb_copy_inline_getgid, pb_copy_call_getgid, &pb_copy_call_wrapper_getgid},
    {SYS_getegid, PB_ID_EGID, pb_copy_inline_getegid, pb_copy_call_getegid, &pb_copy_call_wrapper_getegid},
    {SYS_getpgrp, PB_ID_PGRP, pb_copy_inline_getpgrp, pb_copy_call_getpgrp, &pb_copy_call_wrapper_getpgrp},
    {SYS_gettid, -1, pb_copy_inline_gettid, pb_copy_call_gettid, &pb_copy_call_wrapper_gettid},
};

static const __typeof__(pb_copy_entries[0]) *pb_copy_entry(unsigned nr)
{
    for (size_t i = 0; i < sizeof pb_copy_entries / sizeof pb_copy_entries[0]; i++)
        if (pb_copy_entries[i].nr == nr)
            return &pb_copy_entries[i];
    return 0;
}

void *pb_copy_entry_for(unsigned nr, int is_inline)
{
    const __typeof__(pb_copy_entries[0]) *e = pb_copy_entry(nr);
    return !e ? 0 : is_inline ? e->inline_entry : *e->wrapper ? e->call_entry : 0;
}

int pb_copies_call_wrappers_registered(void)
{
    for (size_t i = 0; i < sizeof pb_copy_entries / sizeof pb_copy_entries[0]; i++)
        if (!*pb_copy_entries[i].wrapper)
            return 0;
    return 1;
}

void pb_copies_set_call_wrapper(unsigned nr, void *wrapper_entry)
{
    const __typeof__(pb_copy_entries[0]) *e = pb_copy_entry(nr);
    if (e)
        *e->wrapper = wrapper_entry;
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
int pb_call_fast_path(uint8_t *o, uint64_t at, unsigned nr, uint64_t count)
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

/* The site stubs. An inline site: below the red zone, call the value's entry, back up; if it
 * answered (rcx = 1), count the call (without touching the flags) and jump back; otherwise
 * make the `syscall` here, at the program's stack pointer, and jump back.
 * A call site: jump to the value's call entry. Each stub's last 8 bytes hold the entry's
 * address; stub s counts in the s-th word of the copy's counts page (`count`).
 * A site stubbed for the kernel gate, in a copy built without it, has no entry: its stub is the
 * call as it was. Returns 1 if the stub calls an entry, 0 for that plain call. */
int pb_emit_site_stub(uint8_t *st, const struct pb_stub_plan *plan, uint64_t back, uint8_t *count)
{
    uint8_t *slot = st + PB_COPY_STUB_BYTES - 8, *o = st;
    void *entry = pb_copy_entry_for(plan->nr, plan->is_inline);
    memset(st, 0xcc, PB_COPY_STUB_BYTES);
    memcpy(slot, &entry, 8);
    int32_t r;
    if (!entry) {
        *o++ = 0x0f; *o++ = 0x05;                                             /* syscall */
        *o++ = 0xe9;                                                          /* jmp back */
        r = (int32_t)((int64_t)back - (int64_t)(uint64_t)(o + 4)); memcpy(o, &r, 4);
        return 0;
    }
    if (plan->is_inline) {
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
        *o++ = 0xe9;                                                          /* jmp back */
        r = (int32_t)((int64_t)back - (int64_t)(uint64_t)(o + 4)); memcpy(o, &r, 4); o += 4;
        *o++ = 0x0f; *o++ = 0x05;                                             /* native: syscall */
        *o++ = 0xe9;                                                          /* jmp back */
        r = (int32_t)((int64_t)back - (int64_t)(uint64_t)(o + 4)); memcpy(o, &r, 4); o += 4;
    } else {
        *o++ = 0xff; *o++ = 0x25;                                             /* jmp *slot(%rip) */
        r = (int32_t)(slot - (o + 4)); memcpy(o, &r, 4); o += 4;
    }
    return 1;
}
