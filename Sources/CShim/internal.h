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

/* ---- the profile snapshot taken at exit (runtime.c) and written out (profile_writer.c) ------- */

#define PB_SNAPSHOT_ABI 1
#define PB_BUILD_ID_MAX 40 /* bytes; GNU build-ids are 20 (sha1) */

struct pb_module_record {
    const char *path;       /* as the loader knows it; "" for the main program is replaced */
    uint64_t base;          /* load bias */
    uint32_t build_id_len;
    uint8_t build_id[PB_BUILD_ID_MAX];
};

struct pb_site_record {
    uint64_t address;       /* return address into the caller of the wrapper */
    int32_t module;         /* index into modules, -1 when no module maps the address */
    uint32_t syscall_nr;    /* x86-64 syscall number the wrapper issues */
    uint64_t offset;        /* address - module base */
    uint32_t thread;        /* index of the thread table the record came from */
    uint32_t reserved;
    uint64_t calls;
    uint64_t errors;        /* calls that returned the wrapper's error value */
    uint64_t kernel_cycles; /* cycles spent inside the wrapped call */
    uint64_t user_cycles;   /* cycles since the same thread's previous wrapped call returned */
};

struct pb_snapshot {
    int32_t pid;
    int32_t ppid;
    int32_t reserved;
    uint64_t start_ns;      /* CLOCK_MONOTONIC when profiling started (process start or fork) */
    uint64_t end_ns;
    uint64_t start_cycles;  /* TSC at start_ns */
    uint64_t end_cycles;    /* TSC at end_ns: cycles_per_ns = (end-start cycles)/(end-start ns) */
    uint64_t threads;       /* threads that made at least one wrapped call */
    uint64_t dropped;       /* calls not recorded because a thread's site table was full */
    const char *exe;        /* /proc/self/exe */
    const char *profile_path; /* already expanded */
    size_t module_count;
    const struct pb_module_record *modules;
    size_t site_count;
    const struct pb_site_record *sites;
};

/* Writes the snapshot as a profile file (JSON, atomically). 0, or -1 with one sentence in err. */
int pb_write_profile_file(const struct pb_snapshot *s, char *err, size_t errlen) PB_HIDDEN;

/* ---- runtime services (runtime.c) -------------------------------------------------------------- */

/* One line on fd 2, "privbox: " + message, if level <= PRIVBOX_LOG. Not for signal context. */
void pb_log(int level, const char *fmt, ...) PB_HIDDEN __attribute__((format(printf, 2, 3)));
void *pb_resolve(const char *name) PB_HIDDEN;
void pb_resolve_all(void) PB_HIDDEN;
void pb_after_fork_child(void) PB_HIDDEN;
uint64_t pb_monotonic_ns(void) PB_HIDDEN;

#endif
