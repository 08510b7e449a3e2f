/*
 * rewriter/copy_request.h — what the rewriter offers the layers above it: the request for an
 * instrumented copy (accelerate builds them from the plan), installing and reporting the copies,
 * and the kernel gate's registration (kernel_gate.c). Moved out of executors/executor.h, which now
 * holds the executor protocol only (issue 17); declarations only.
 *
 * May use: sys/ and executors/ (declarations only).
 */
#ifndef PRIVBOX_COPY_REQUEST_H
#define PRIVBOX_COPY_REQUEST_H

#include "executors/executor.h" /* enum pb_executor_id */

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
    enum pb_executor_id executor; /* the site's (the caller resolves it): named in the report */
};
/* Each call in a copy returns to a new address (copy_site), which needs a route like the one at
 * the original return address (site), if that has one: pb_copies_install hands the pairs back
 * and the caller adds the routes (the rewriter does not call into accelerate/). */
struct pb_copy_alias { uint64_t site, copy_site; };
struct pb_copies_installed { struct pb_copy_alias *aliases; size_t alias_count, alias_cap; };
/* Builds the copies of the functions holding these sites (before main, from the constructor);
 * out (zeroed by the caller) gets the route aliases, to be freed with pb_copies_installed_free. */
void pb_copies_install(const struct pb_copy_request *reqs, size_t n, struct pb_copies_installed *out) PB_HIDDEN;
void pb_copies_installed_free(struct pb_copies_installed *out) PB_HIDDEN;
/* Where a copy's call entry for call nr continues when the cache cannot answer: the wrapper's
 * plain entry (registered by the start-up, before the plan; rewriter/stubs.c says why). */
void pb_copies_set_call_wrapper(unsigned nr, void *wrapper_entry) PB_HIDDEN;
void pb_copies_report(void) PB_HIDDEN;
/* Whether a site's profiled calls (0: unknown) repay a copy of its function's start-up; logs why
 * not (install.c has the break-even points). boxed: the copy runs behind the kernel gate. */
int pb_copy_repays(uint64_t calls, int is_inline, int boxed, const char *label) PB_HIDDEN;
/* Non-zero once a copy serves identity values: the identity executor then counts as used. */
extern volatile int pb_copies_use_identity PB_HIDDEN;

/* The kernel gate (rewriter/kernel_gate.c); whether this process may box its copies, and where the
 * gate is, is sys/kernel_gate_address.h's pb_kernel_gate_address. */
/* Writes the gate sequence and a jump back at `at` (which runs at at_address); returns its length. */
#define PB_GATE_STUB_BYTES 20u
size_t pb_gate_emit_stub(uint8_t *at, uint64_t at_address, uint64_t slot_address, uint64_t back) PB_HIDDEN;
int pb_gate_register(uint8_t *region, size_t len, size_t code_len, char *why, size_t whylen) PB_HIDDEN;
void pb_gate_report(void) PB_HIDDEN;

#endif
