/*
 * internal.h — state shared by the C files that make up libprivbox.so (never by Swift).
 */
#ifndef PRIVBOX_INTERNAL_H
#define PRIVBOX_INTERNAL_H

#include "privbox_shim.h"

#include <stdint.h>
#include <sys/types.h>
#include <x86intrin.h>

#define PB_HIDDEN __attribute__((visibility("hidden")))
#define PB_EXPORT __attribute__((visibility("default")))
#define PB_LIKELY(x) __builtin_expect(!!(x), 1)
#define PB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PB_TLS __thread __attribute__((tls_model("initial-exec")))

/* Process-wide state. Written by the constructor and at fork/exit, read on every wrapped call. */
struct pb_process {
    int mode;               /* enum pb_mode, after validation */
    int log_level;
    int secure;             /* AT_SECURE: setuid/setgid/capabilities — privbox stays inert */
    char profile_pattern[PB_PATH_MAX];
    char lib_dir[PB_PATH_MAX]; /* directory of libprivbox.so, where libprivbox_core.so lives */
    uint64_t start_ns, start_cycles;
};
extern struct pb_process pb_proc PB_HIDDEN;

/* Non-zero while wrapped calls are being counted. Read without synchronisation on every call:
 * a stale value only means one call more or less is counted around a mode change. */
extern volatile int pb_counting PB_HIDDEN;

/* ---- the per-thread site table (hotpath.c) ---------------------------------------------------- */

#define PB_TABLE_BITS 12
#define PB_TABLE_SLOTS (1u << PB_TABLE_BITS)
#define PB_PROBE_LIMIT 32

struct pb_slot {
    uint64_t key;           /* (return address << 10) | syscall nr; 0 = empty */
    uint64_t calls;
    uint64_t errors;
    uint64_t kernel_cycles;
    uint64_t user_cycles;
};

struct pb_thread_table {
    struct pb_thread_table *next; /* global list, pushed once, never unlinked */
    pid_t tid;
    uint32_t index;
    uint64_t dropped;
    uint64_t last_return;   /* TSC when this thread's previous wrapped call returned */
    struct pb_slot slots[PB_TABLE_SLOTS];
};

void pb_record(uintptr_t site, unsigned nr, uint64_t entered, int failed) PB_HIDDEN;
struct pb_thread_table *pb_tables_head(void) PB_HIDDEN;
/* Forget every table (in a fork child: the parent's counts stay the parent's). */
void pb_tables_reset_after_fork(void) PB_HIDDEN;

static inline uint64_t pb_cycles(void) { return __rdtsc(); }

/* ---- runtime services (runtime.c) -------------------------------------------------------------- */

/* One line on fd 2, "privbox: " + message, if level <= PRIVBOX_LOG. Not for signal context. */
void pb_log(int level, const char *fmt, ...) PB_HIDDEN __attribute__((format(printf, 2, 3)));
void *pb_resolve(const char *name) PB_HIDDEN;
void pb_resolve_all(void) PB_HIDDEN;
void pb_after_fork_child(void) PB_HIDDEN;
uint64_t pb_monotonic_ns(void) PB_HIDDEN;

#endif
