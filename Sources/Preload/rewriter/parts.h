/*
 * rewriter/parts.h — what the parts of the rewriter (the instrumented copies, install.c says what
 * they are and why the program observes the same thing) share with each other: the decoded
 * function, the job of copying one function, and each part's entry points.
 *
 * Included by the rewriter's own .c files only; the rest of the preload sees the rewriter through
 * executors/executor.h (struct pb_copy_request, pb_copies_install, pb_copies_report). Everything
 * here may use rewriter/, executors/, sys/ and Sources/CShim, nothing above them.
 *
 * The parts, in the order a function goes through them:
 *   install.c     the plan's entry point: which functions, in which order, with what checks first
 *   copy_cache.c  the on-disk cache of decoded functions (so capstone is not loaded every run)
 *   capstone.c    capstone, loaded on demand, behind struct pb_x86_insn (no other part sees its types)
 *   decode.c      classifying the instructions, choosing the sites to stub, the refusals
 *   symbols.c     which function a call reaches (PLT, GOT, the dynamic symbols)
 *   unwind.c      reading the module's .eh_frame, writing the copy's, libgcc's registry
 *   emit.c        laying out and writing the copy (pb_build)
 *   stubs.c       the entries a site calls (copy_entries.S), a call's inline fast path, site stubs
 *   patch.c       the memory a copy goes into and the patch of the original's entry (W^X)
 *   report.c      what is said: refusals and notes while copying, the report at exit
 *   kernel_gate.c the kernel-gate backend (boxed copies), copy_entries.S the identity entries
 */
#ifndef PB_REWRITER_PARTS_H
#define PB_REWRITER_PARTS_H

#include "executors/identity.h"
#include "executors/executor.h"
#include "rewriter/copy_request.h"

#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#define PB_COPY_MAX_BYTES 65536u
#define PB_COPY_MAX_SITES 64
#define PB_COPY_STUB_BYTES 64u

/* ---- one instruction, as decoded (capstone.c) ------------------------------------------------ */

/* What the rewriter reads of an instruction; capstone.c fills it, so that capstone's types and
 * instruction ids stay in that file. */
struct pb_x86_insn {
    uint64_t address;
    uint8_t size;
    uint8_t is_call;                  /* a call instruction */
    uint8_t is_jump;                  /* jmp, jcc, jrcxz... (capstone's jump group), loop/loope/loopne */
    uint8_t is_jmp;                   /* the jmp instruction itself */
    uint8_t is_syscall;               /* a `syscall` instruction */
    uint8_t is_xbegin;
    uint8_t is_endbr64;
    uint8_t op_count;
    uint8_t has_imm_operand;          /* exactly one operand, an immediate */
    uint64_t imm;                     /* that immediate (a branch's target) */
    uint8_t rel_branch;               /* the rel32 form's opcode of a relative jmp/jcc/call:
                                       * 0xe8 call, 0xe9 jmp, 0x80 + cc for jcc; 0 if none */
    uint8_t first_operand_rip_slot;   /* operand 0 is a memory operand at disp(%rip), no index */
    int64_t first_operand_disp;       /* operand 0's displacement, when it is that */
    uint8_t has_rip_operand;          /* some memory operand is RIP-relative */
    uint8_t has_eip_operand;          /* some memory operand is EIP-relative (an 0x67 prefix) */
    char mnemonic[32];                /* for the refusal texts */
};

/* A decoder: one instruction at a time into one capstone buffer (no allocation per instruction
 * in the program's heap). */
struct pb_decoder { void *scratch; };

/* Loads capstone (once; 1 if usable). */
int pb_decoder_load(void) PB_HIDDEN;
/* Unloads it, if it was loaded (after the last copy is built). */
void pb_decoder_unload(void) PB_HIDDEN;
/* 0 when there is no memory for the decoder's buffer. */
int pb_decoder_open(struct pb_decoder *d) PB_HIDDEN;
void pb_decoder_close(struct pb_decoder *d) PB_HIDDEN;
/* Decodes the instruction at *code (advancing code, left and address past it, as capstone's
 * cs_disasm_iter does): 1, or 0 if the bytes do not decode (nothing advanced). */
int pb_decoder_next(struct pb_decoder *d, const uint8_t **code, size_t *left, uint64_t *address,
                    struct pb_x86_insn *out) PB_HIDDEN;
/* For the instruction pb_decoder_next just decoded: where in it the 4 bytes of its RIP-relative
 * displacement are (*disp_pos), and the address the operand designates (*target). 0 if the
 * position cannot be located. */
int pb_decoder_locate_rip_operand(struct pb_decoder *d, uint8_t *disp_pos, uint64_t *target) PB_HIDDEN;

/* ---- the decoded function (decode.c) --------------------------------------------------------- */

enum pb_insn_kind {
    PB_I_COPY,      /* copied as is (with its RIP-relative displacement moved, if any) */
    PB_I_BRANCH,    /* jmp/jcc/call rel8/rel32: re-emitted as rel32 */
    PB_I_SYSCALL,   /* `syscall` at a served site: jmp to the site's stub */
    PB_I_CALL_STUB, /* call to an identity wrapper at a routed site: call the site's stub */
};

/* Stored as it is in the decode cache (copy_cache.c): a change of layout needs a new cache tag. */
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

/* A site that gets a stub. Stored as it is in the decode cache, like struct pb_insn. */
struct pb_stub_plan { uint64_t site; unsigned nr; int is_inline; long insn; };

/* A requested site; executor: the one the plan chose for it (struct pb_copy_request). */
struct pb_copy_site_req { uint64_t site; unsigned nr; int is_inline; enum pb_executor_id executor; };

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
    struct pb_copy_site_req sites[PB_COPY_MAX_SITES];
    int nsites;
    struct pb_copies_installed *installed; /* where the calls' route aliases go */
};

/* Decodes and classifies the function (capstone): 1 with its instructions and site stubs, 0 refused
 * (job->why), 2 nothing to instrument. */
int pb_decode(struct pb_copy_job *job, struct pb_insn **insns_out, size_t *count_out,
              struct pb_stub_plan *stubs, int *nstubs_out) PB_HIDDEN;

/* ---- what the sites call (stubs.c) ----------------------------------------------------------- */

/* The entry (copy_entries.S) that serves call nr at a syscall instruction (is_inline) or at a
 * call to its wrapper; 0 if none. */
void *pb_copy_entry_for(unsigned nr, int is_inline) PB_HIDDEN;
/* copy_entries.S's entries for each identity value: pb_copy_inline_NAME (a `syscall` site),
 * pb_copy_call_NAME (a call site), and the wrapper entry the latter continues in. */
#define PB_COPY_ENTRY(name) extern char pb_copy_inline_##name[] PB_HIDDEN, pb_copy_call_##name[] PB_HIDDEN; \
    extern void *pb_copy_call_wrapper_##name PB_HIDDEN;
PB_COPY_ENTRY(getpid)
PB_COPY_ENTRY(getuid)
PB_COPY_ENTRY(geteuid)
PB_COPY_ENTRY(getgid)
PB_COPY_ENTRY(getegid)
PB_COPY_ENTRY(getpgrp)
PB_COPY_ENTRY(gettid)
#undef PB_COPY_ENTRY
/* Whether every call entry has its wrapper (pb_copies_set_call_wrapper). */
int pb_copies_call_wrappers_registered(void) PB_HIDDEN;
/* A call site's inline fast path (stubs.c says what it is and why it is exact). */
int pb_call_fast_path(uint8_t *o, uint64_t at, unsigned nr, uint64_t count) PB_HIDDEN;
/* Writes the stub of a site at st (PB_COPY_STUB_BYTES, its last 8 the entry's address); `back`
 * is where the copy continues after the site, `count` the site's word for the report. 1 if the
 * stub calls an entry; 0 if it is the site's plain `syscall` (no entry serves the call). */
int pb_emit_site_stub(uint8_t *st, const struct pb_stub_plan *plan, uint64_t back, uint8_t *count) PB_HIDDEN;

/* ---- which function a call reaches (symbols.c) ----------------------------------------------- */

/* The function a call instruction reaches through its PLT entry (direct) or GOT slot, by name,
 * or 0. Decodes the PLT entry with d. */
const char *pb_call_symbol(struct pb_decoder *d, uint64_t fn, uint64_t target, int direct) PB_HIDDEN;
/* Whether `name` resolves, for the program, to privbox's own wrapper. */
int pb_resolves_to_privbox(const char *name) PB_HIDDEN;

/* ---- unwind information (unwind.c) ----------------------------------------------------------- */

struct pb_fde_info {
    const uint8_t *cie_insns, *cie_end;   /* the CIE's initial instructions */
    const uint8_t *insns, *end;           /* the FDE's instructions */
    uint64_t code_align, pc_begin, pc_range;
    int64_t data_align;
    uint64_t return_reg;
    uint8_t fde_enc;
    int signal_frame, has_lsda;
};

/* libgcc's __register_frame, or 0: copies of functions with unwind entries are then refused. */
extern void (*pb_register_frame)(void *) PB_HIDDEN;
/* Looks up the program's unwinder (sets pb_register_frame). */
void pb_unwinder_find(void) PB_HIDDEN;
/* The unwind entry of [fn, fn+size): 1 found, 0 none, -1 present but not in a form the rewriter
 * translates (*why says which). With size 0, the entry whose range holds the address fn. */
int pb_find_fde(uint64_t fn, uint64_t size, struct pb_fde_info *out, const char **why) PB_HIDDEN;
/* The bounds of the function holding `address` from its unwind entry; 0 if none. */
int pb_unwind_bounds(uint64_t address, uint64_t *fn, uint64_t *size) PB_HIDDEN;
/* Whether a jump out of the function to `target` may come back into it. */
int pb_jump_may_return(uint64_t target) PB_HIDDEN;

struct pb_writer { uint8_t *p, *end; int bad; };
/* An .eh_frame fragment (one CIE, one FDE, the terminator) for the copy at `copy`. */
int pb_build_eh_frame(const struct pb_fde_info *fi, const struct pb_insn *insns, long n,
                      uint64_t fn, uint64_t copy, uint32_t new_size, struct pb_writer *w) PB_HIDDEN;

/* ---- the copy (emit.c) ----------------------------------------------------------------------- */

/* The copy's offset for an offset of the original (an instruction start, or the end), or -1. */
long pb_map_offset(const struct pb_insn *insns, long n, uint64_t off, uint32_t new_size) PB_HIDDEN;
/* Builds the copy, registers its unwind entry and patches the entry: 1 if the function now runs
 * from the copy; 0 if not; -1 if the kernel refused the boxed copy (gate != 0). */
int pb_build(struct pb_copy_job *job, struct pb_insn *insns, size_t count,
             const struct pb_stub_plan *stubs, int nstubs, uint64_t gate) PB_HIDDEN;

/* ---- memory and the entry's patch (patch.c) -------------------------------------------------- */

uint8_t *pb_map_near(uint64_t near, size_t len) PB_HIDDEN;
int pb_patch_entry(uint64_t fn, const uint8_t jump[5]) PB_HIDDEN;

/* ---- the decode cache (copy_cache.c) --------------------------------------------------------- */

int pb_copy_cache_path(const struct pb_copy_job *job, char *out, size_t len) PB_HIDDEN;
void pb_copy_cache_write(const char *path, const struct pb_copy_job *job, int verdict,
                         const struct pb_insn *insns, size_t count,
                         const struct pb_stub_plan *stubs, int nstubs) PB_HIDDEN;
int pb_copy_cache_read(const char *path, struct pb_copy_job *job, struct pb_insn **insns_out,
                       size_t *count_out, struct pb_stub_plan *stubs, int *nstubs_out) PB_HIDDEN;

/* ---- the route aliases of the copies' calls (install.c) -------------------------------------- */

/* Room for `more` aliases (0 if there is no memory for them), then one alias per call. */
int pb_aliases_reserve(struct pb_copies_installed *out, size_t more) PB_HIDDEN;
void pb_alias_add(struct pb_copies_installed *out, uint64_t site, uint64_t copy_site) PB_HIDDEN;

/* ---- what is said (report.c) ----------------------------------------------------------------- */

void pb_refuse(struct pb_copy_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3))) PB_HIDDEN;
void pb_note(struct pb_copy_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3))) PB_HIDDEN;

struct pb_copied_site {
    char label[160];
    int boxed;        /* a syscall instruction in a copy that runs in a box: through the kernel gate */
    enum pb_executor_id executor;
    uint64_t *served; /* inline sites: calls answered from the cache (the stub adds to it); call
                       * sites with a fast path: 1 once it answered (pb_call_fast_path) */
    int call_site;
};
/* A new, zeroed entry of the report at exit, or 0 when there is no memory for it. */
struct pb_copied_site *pb_copied_add(void) PB_HIDDEN;
/* How many entries there are; and forgetting those after the first `keep` (a copy not used). */
size_t pb_copied_mark(void) PB_HIDDEN;
void pb_copied_forget_after(size_t keep) PB_HIDDEN;

#endif
