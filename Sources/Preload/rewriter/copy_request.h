/*
 * rewriter/copy_request.h — what the rewriter offers the layers above it: the request for an
 * instrumented copy (accelerate builds them from the plan), installing and reporting the copies,
 * and the kernel gate's registration (kernel_gate.c). Moved out of executors/executor.h, which now
 * holds the executor protocol only (issue 17); declarations only.
 *
 * May use: sys/ (declarations only).
 */
#ifndef PRIVBOX_COPY_REQUEST_H
#define PRIVBOX_COPY_REQUEST_H

#include "sys/internal.h"

struct pb_copy_request {
    uint64_t bias;            /* the module's load address */
    uint64_t function_offset; /* the function holding the site, as module offsets */
    uint32_t function_size;
    uint64_t site;            /* module offset of the site's end (a return address, or after a syscall) */
    unsigned nr;
    int is_inline;
    const char *module;       /* for the log */
    const char *build_id;     /* the module's (hex), keying the decode cache */
    const char *function;
};
/* Builds the copies of the functions holding these sites (before main, from the constructor). */
void pb_copies_install(const struct pb_copy_request *reqs, size_t n) PB_HIDDEN;
void pb_copies_report(void) PB_HIDDEN;
/* Non-zero once a copy serves identity values: the identity executor then counts as used. */
extern volatile int pb_copies_use_identity PB_HIDDEN;

/* The kernel gate (rewriter/kernel_gate.c): the gate's address when this process may box its copies
 * (a privbox kernel, CAP_SYS_ADMIN, PRIVBOX_GATE not off), else 0. */
uint64_t pb_gate_address(void) PB_HIDDEN;
/* Writes the gate sequence and a jump back at `at` (which runs at at_address); returns its length. */
#define PB_GATE_STUB_BYTES 20u
size_t pb_gate_emit_stub(uint8_t *at, uint64_t at_address, uint64_t slot_address, uint64_t back) PB_HIDDEN;
int pb_gate_register(uint8_t *region, size_t len, size_t code_len, char *why, size_t whylen) PB_HIDDEN;
void pb_gate_report(void) PB_HIDDEN;

#endif
