/*
 * profile/snapshot.h — the profile of a process as it is at exit: taken from the site tables
 * (profile/snapshot.c) and written out as a profile file (profile/writer.c).
 */
#ifndef PRIVBOX_PROFILE_SNAPSHOT_H
#define PRIVBOX_PROFILE_SNAPSHOT_H

#include "sys/attributes.h"
#include "sys/modules.h"

#include <stddef.h>
#include <stdint.h>

#define PB_SNAPSHOT_ABI 1

struct pb_site_record {
    uint64_t address;       /* return address into the caller of the wrapper */
    int32_t module;         /* index into modules, -1 when no module maps the address */
    uint32_t syscall_nr;    /* x86-64 syscall number the wrapper issues */
    uint64_t offset;        /* address - module base */
    uint32_t thread;        /* index of the thread table the record came from */
    uint64_t calls;
    uint64_t checked;       /* calls whose result was seen */
    uint64_t errors;        /* checked calls that returned the wrapper's error value */
    uint64_t timed;         /* calls that were timed */
    uint64_t kernel_cycles; /* summed over timed calls: cycles inside the wrapped call */
    uint64_t user_cycles;   /* summed over timed calls: cycles since the previous call returned */
};

struct pb_frame_record {
    int32_t module;         /* -1: no module maps the address */
    uint64_t offset;        /* from the module's base (the absolute address if module is -1) */
};

struct pb_stack_record {
    uint32_t thread;
    uint32_t count;
    uint32_t sampled;
    uint32_t truncated;
    uint32_t depth;
    uint32_t first_frame;   /* index into the snapshot's frames */
};

struct pb_snapshot {
    int32_t pid;
    int32_t ppid;
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
    size_t stack_count;
    const struct pb_stack_record *stacks;
    const struct pb_frame_record *frames;
    uint64_t stacks_dropped;
    int inline_discovery;   /* PRIVBOX_INLINE was on: sites with nr >= PB_INLINE_NR were trapped */
    uint64_t inline_traps;  /* dispatched calls, all threads */
    uint32_t inline_threads_spent; /* threads whose trap budget ran out */
};

/* Writes the snapshot as a profile file (JSON, atomically). 0, or -1 with one sentence in err. */
int pb_write_profile_file(const struct pb_snapshot *s, char *err, size_t errlen) PB_HIDDEN;
/* Takes the snapshot of every thread's table and writes the profile, once per process (at exit,
 * from the start-up's exit handler; later calls, or one while nothing is counted, do nothing). */
void pb_write_profile(void) PB_HIDDEN;

#endif
