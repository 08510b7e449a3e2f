/*
 * rewriter/rewriter.h — what the rewriter's parts share: the decoded form of a function
 * (struct pb_insn, struct pb_copy_job, struct pb_stub_plan) and its two steps, pb_decode and
 * pb_build (copies.c). copies.c is its only user in the library; rewriter/golden.c, the golden
 * tests' entry, calls the same two steps on a test program's function (Tests/IntegrationTests/golden).
 * Declarations only: no state of its own.
 */
#ifndef PRIVBOX_REWRITER_H
#define PRIVBOX_REWRITER_H

#include "sys/internal.h"

#include <stddef.h>
#include <stdint.h>

#define PB_COPY_MAX_BYTES 65536u
#define PB_COPY_MAX_SITES 64
#define PB_COPY_STUB_BYTES 64u

enum pb_insn_kind {
    PB_I_COPY,      /* copied as is (with its RIP-relative displacement moved, if any) */
    PB_I_BRANCH,    /* jmp/jcc/call rel8/rel32: re-emitted as rel32 */
    PB_I_SYSCALL,   /* `syscall` at a served site: jmp to the site's stub */
    PB_I_CALL_STUB, /* call to an identity wrapper at a routed site: call the site's stub */
};

struct pb_insn {
    uint32_t off, len;     /* in the original */
    uint32_t new_off, new_len;
    uint8_t kind;
    uint8_t branch;        /* 0xe8 call, 0xe9 jmp, 0x80 + cc for jcc */
    uint8_t disp_pos;      /* position of a RIP-relative disp32 in the instruction, 0: none */
    uint8_t is_call;       /* a call instruction (for the route aliases) */
    uint8_t is_syscall;    /* a `syscall` instruction */
    uint64_t target;       /* branch target, or the address a RIP-relative operand designates */
    int stub;              /* PB_I_SYSCALL / PB_I_CALL_STUB: index of the site's stub */
};

struct pb_copy_job {
    uint64_t fn, size;
    uint64_t bias_for_log; /* the module's load address: offsets in the log are the profile's */
    const char *module;    /* file name, for the log */
    const char *function;
    const char *build_id;  /* the module's, for the decode cache ("" for none) */
    char unnamed[48];      /* "function at +0x...", for a function no symbol names */
    char why[200];         /* why it is not copied */
    int transient;         /* refused for want of memory: not remembered in the decode cache */
    size_t insns_bytes;    /* the length of the decoded instructions' mapping */
    char notes[512];       /* what was said about its sites, replayed from the cache */
    struct pb_copy_site_req { uint64_t site; unsigned nr; int is_inline; } sites[PB_COPY_MAX_SITES];
    int nsites;
};

struct pb_stub_plan { uint64_t site; unsigned nr; int is_inline; long insn; };

/* Loads capstone (libcapstone.so.4) on first use: 1 if it can decode. */
int pb_cs_load(void) PB_HIDDEN;
/* libgcc's __register_frame, or 0 when the program's unwinder is not libgcc's (pb_copies_install). */
extern void (*pb_register_frame)(void *) PB_HIDDEN;

/* Decodes and classifies job's function: 1 with its instructions and site stubs, 0 refused
 * (job->why), 2 nothing to instrument. Needs pb_cs_load() first. */
int pb_decode(struct pb_copy_job *job, struct pb_insn **insns_out, size_t *count_out,
              struct pb_stub_plan *stubs, int *nstubs_out) PB_HIDDEN;
/* Builds the copy, registers its unwind entry and patches the function's entry: 1 copied, 0 not
 * (job->why), -1 the kernel refused a boxed copy (gate != 0). */
int pb_build(struct pb_copy_job *job, struct pb_insn *insns, size_t count,
             const struct pb_stub_plan *stubs, int nstubs, uint64_t gate) PB_HIDDEN;

#endif
