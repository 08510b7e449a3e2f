/*
 * golden_entry.h — the golden tests' entry into the rewriter (golden_entry.c): what a test
 * driver (Tests/IntegrationTests/programs/golden_rewrite.c) passes to privbox_golden_rewrite and
 * what it gets back. Plain C with no privbox header, so that the driver can include it; nothing in
 * the library uses it otherwise.
 */
#ifndef PRIVBOX_GOLDEN_H
#define PRIVBOX_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#define PRIVBOX_GOLDEN_MAX_SITES 64 /* PB_COPY_MAX_SITES */

struct privbox_golden_site {
    uint64_t site;  /* the site's address: the end of its `syscall` or call instruction */
    unsigned nr;    /* the system call recorded there */
    int is_inline;  /* 1 a `syscall` instruction, 0 a call to the wrapper */
};

struct privbox_golden_request {
    uint64_t fn, size;     /* the function to copy, in the calling program */
    const char *function;  /* its name, for the refusal text and the notes */
    int nsites;
    struct privbox_golden_site sites[PRIVBOX_GOLDEN_MAX_SITES];
    int no_unwinder;       /* build as if libgcc's unwinder were not the program's */
    void (*before_build)(void); /* called after decoding, just before the copy is built, or 0 */
};

struct privbox_golden_result {
    int verdict;           /* 1 copied, 0 refused (why), 2 nothing to instrument, -1 no capstone */
    char why[200];
    char notes[512];       /* what decoding said about the sites, one line each */
    uint64_t copy;         /* the copy (1 only): where the patched entry jumps */
    uint32_t copy_len;     /* its instructions and the jump after them */
    int nstubs;
    uint64_t stubs[PRIVBOX_GOLDEN_MAX_SITES]; /* each site stub's address, in stub order */
    uint32_t stub_bytes;
    const uint8_t *eh;     /* the unwind entry handed to the unwinder (CIE, FDE, terminator), or 0 */
    size_t eh_len;
    uint64_t identity_page, identity_len;     /* the identity executor's words, for naming them */
    int64_t tls_pid_word, tls_tid;            /* %fs offsets of the thread's cached tid */
    int nentries;
    struct { const char *name; uint64_t address; } entries[16]; /* copy_entries.S's entries */
};

/* Decodes and builds a copy of req->fn as accelerate mode would, without a profile, and patches
 * its entry (the caller's function then runs from the copy). Returns res->verdict. */
int privbox_golden_rewrite(const struct privbox_golden_request *req, struct privbox_golden_result *res);

#endif
