/*
 * profile/counting.h — the per-thread site tables that count wrapped calls (profile/counting.c),
 * the macro every counting wrapper is written with, and what a fork child and the exit-time
 * snapshot do with the tables.
 */
#ifndef PRIVBOX_PROFILE_COUNTING_H
#define PRIVBOX_PROFILE_COUNTING_H

#include "profile/inline_discovery.h"
#include "sys/entry_stub.h"
#include "sys/process.h"

#include <stdint.h>
#include <sys/types.h>

#define PB_TABLE_BITS 12
#define PB_TABLE_SLOTS (1u << PB_TABLE_BITS)
#define PB_PROBE_LIMIT 32
/* About one call in PB_TIME_ONE_IN (chosen at random per thread) arms the timer: its return is
 * stamped and the thread's next call is timed. */
#define PB_TIME_ONE_IN 8
#define PB_STACK_DEPTH 32
#define PB_STACK_SLOTS 256

struct pb_slot {
    uint64_t key;           /* (return address << 10) | syscall nr; 0 = empty */
    uint64_t calls;         /* every call, exactly */
    uint64_t checked;       /* calls whose result was seen (the timed ones and the arming ones) */
    uint64_t errors;        /* failures among the checked calls */
    uint64_t timed;         /* calls whose duration was measured */
    uint64_t kernel_cycles; /* summed over timed calls: inside the wrapped call */
    uint64_t user_cycles;   /* summed over timed calls: since the previous wrapped call returned */
};

/* A distinct call stack seen at a site, with how often it was captured. frames[0] is the site. */
struct pb_stack {
    uint64_t hash;          /* 0 = empty */
    uint32_t count;
    uint16_t depth;
    uint8_t sampled;        /* 1: captured by the periodic sampler; 0: at a site's first call */
    uint8_t truncated;      /* the stack was deeper than PB_STACK_DEPTH */
    uint64_t frames[PB_STACK_DEPTH];
};

struct pb_thread_table {
    struct pb_thread_table *next; /* global list, pushed once, never unlinked */
    pid_t tid;
    uint32_t index;
    uint64_t dropped;         /* calls not attributed: no free slot */
    uint64_t stacks_dropped;  /* stacks not kept: no free stack slot */
    uint32_t rng;             /* xorshift32 state for choosing timed calls */
    uint32_t stack_countdown; /* calls until the next look at the stack-sampling clock */
    uint32_t time_next;       /* time the next wrapped call */
    uint64_t armed_at;        /* TSC when the previous (arming) call returned, if time_next */
    uint64_t next_stack;      /* CLOCK_MONOTONIC ns after which the next stack sample is due */
    volatile unsigned char sud_selector; /* the thread's dispatch selector (inline discovery):
                                            here, not in TLS, because tables are never freed and
                                            another thread may write it (pb_inline_stop_all) */
    unsigned char sud_registered;
    struct pb_slot slots[PB_TABLE_SLOTS];
    struct pb_stack stacks[PB_STACK_SLOTS];
};

extern PB_TLS struct pb_thread_table *pb_my_table PB_HIDDEN;
/* Non-zero while privbox itself runs on this thread (capturing a stack): wrapped calls made then
 * are privbox's, not the program's, and are not counted. */
extern PB_TLS int pb_in_privbox PB_HIDDEN;

/* Fills buffer with return addresses, innermost first; null when no unwinder could be loaded. */
extern int (*pb_backtrace)(void **buffer, int size) PB_HIDDEN;
/* Auto mode's warm-up: while it is set, every PB_STACK_CHECK_EVERY-th call of a thread calls it
 * with the time (instead of sampling stacks), and it decides the routes once the warm-up is over.
 * accelerate/routes.c sets it (pb_auto_begin) and takes it back with an atomic exchange when it
 * decides. A hook because counting sees every call and auto mode decides from the counts: the
 * import stays accelerate -> profile, never back. */
extern void (*volatile pb_counting_warmup)(uint64_t now_ns) PB_HIDDEN;
/* Nanoseconds (CLOCK_MONOTONIC) between two stack samples of a thread: at most 1000 per second. */
#define PB_STACK_INTERVAL_NS 1000000u


/* One wrapped call in flight, between pb_begin and pb_end. */
struct pb_call {
    struct pb_slot *slot;
    uint64_t entered;       /* TSC at entry if the call is timed, else 0 (an arming call) */
};

/* Called by a counting wrapper before the real call; counts it. A null slot means the wrapper may
 * simply tail-call the real function; otherwise it must call it and then pb_end(). (Returned by
 * value, in two registers: a pointer to a local would stop the compiler from emitting the tail
 * call.) */
struct pb_call pb_begin(uintptr_t site, unsigned nr) PB_HIDDEN;
/* After the real call; leaves errno as the real call set it. */
void pb_end(struct pb_call call, int failed) PB_HIDDEN;
struct pb_thread_table *pb_tables_head(void) PB_HIDDEN;
/* Forget every table (in a fork child: the parent's counts stay the parent's). */
void pb_tables_reset_after_fork(void) PB_HIDDEN;

/* ---- inline discovery (inline_discovery.c, profile mode with PRIVBOX_INLINE=1) --------------- */

/* In a fork child that counts: the tables start anew (the parent's counts stay the parent's), and
 * the pid and start time are the child's. Async-signal-safe (fork may be called from a handler). */
void pb_after_fork_child(void) PB_HIDDEN;
/* Profile mode's stacks: libgcc's unwinder, loaded at start (pb_backtrace stays null without it). */
void pb_load_unwinder(void) PB_HIDDEN;

/* Runs `call` (an expression yielding `type`), counting it as syscall `nr` when profiling. Most
 * calls return `call` directly, a tail call: libc returns straight to the program. */
#define PB_COUNTED(type, nr, failed, call) PB_COUNTED_AT(PB_SITE, type, nr, failed, call)
#define PB_COUNTED_AT(site, type, nr, failed, call)                                                 \
    do {                                                                                            \
        if (PB_LIKELY(!pb_counting))                                                                \
            return call;                                                                            \
        struct pb_call pb_call_ = pb_begin(site, nr);                                               \
        if (PB_UNLIKELY(pb_inline_on)) {                                                            \
            /* libc's call must not be dispatched (inline_discovery.c): no tail call */             \
            int pb_entered_ = pb_inline_enter();                                                    \
            type r = call;                                                                          \
            if (pb_entered_)                                                                        \
                pb_inline_leave(nr);                                                                \
            if (pb_call_.slot)                                                                      \
                pb_end(pb_call_, failed);                                                           \
            return r;                                                                               \
        }                                                                                           \
        if (!pb_call_.slot)                                                                         \
            return call;                                                                            \
        type r = call;                                                                              \
        pb_end(pb_call_, failed);                                                                   \
        return r;                                                                                   \
    } while (0)

#endif
