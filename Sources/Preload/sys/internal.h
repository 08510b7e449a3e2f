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
    char profile_pattern[PB_PATH_MAX];
    char lib_dir[PB_PATH_MAX]; /* directory of libprivbox.so, where libprivbox_core.so lives */
    int copies;             /* PRIVBOX_COPY: 0 no instrumented copies, 1 where the profiled calls
                               repay them (routes.c), 2 (always) wherever one can serve */
    int gate;               /* PRIVBOX_GATE: copies may run in a privbox kernel's boxes */
    long pid;               /* at start, or in a fork child: what the profile is written under
                               if a seccomp filter refuses getpid by then */
    uint64_t start_ns, start_cycles;
    int log_fd_open;        /* fd 2 was open when the constructor ran: only then is fd 2 privbox's
                               to log to (runtime.c, pb_log) */
};
extern struct pb_process pb_proc PB_HIDDEN;

/* Non-zero while wrapped calls are being counted. Read without synchronisation on every call:
 * a stale value only means one call more or less is counted around a mode change. */
extern volatile int pb_counting PB_HIDDEN;

/* What the assembly entry stubs test (one load each): pb_hook_all for the wrappers without an
 * executor (= pb_counting), pb_hook_exec[e] for the wrappers executor e serves (= counting, or
 * a route uses e). Kept in step by pb_hooks_update() whenever pb_counting or the routes change. */
extern volatile int pb_hook_exec[8] PB_HIDDEN;
void pb_hooks_update(void) PB_HIDDEN;

/* Failure tests, evaluated on the wrapper's result `r`. */
#define PB_NEG1 (r == -1)               /* -1 and errno */
#define PB_ERRNUM (r != 0)              /* returns an error number (pthread-style) */
#define PB_MAPFAIL (r == MAP_FAILED)
#define PB_NULL (r == NULL)
#define PB_NEVER 0                      /* cannot fail */

#define PB_SITE ((uintptr_t)__builtin_return_address(0))

/* The exported entry of a fixed-arity wrapper (see interpose.c): when the int at `flag` (an
 * assembler operand such as "pb_counting" or "pb_hook_exec+4") is zero and libc's function is
 * resolved, a jump to libc's function; otherwise a jump to pb_slow_NAME. */
#define PB_ENTRY_STUB(name, flag) PB_ENTRY_STUB_AS(name, name, ".globl", flag)
/* The same code under the symbol `label` (with `binding` ".globl" or ".hidden"): the identity
 * wrappers' assembly entries fall back to it. */
#define PB_ENTRY_STUB_AS(label, name, binding, flag)                                                \
    __asm__(".text\n"                                                                               \
            binding " " #label "\n"                                                                 \
            ".type " #label ", @function\n"                                                         \
            ".p2align 4\n" #label ":\n"                                                             \
            "    movl " flag "(%rip), %eax\n"                                                       \
            "    testl %eax, %eax\n"                                                                \
            "    jnz pb_slow_" #name "\n"                                                           \
            "    movq pb_real_" #name "(%rip), %rax\n"                                              \
            "    testq %rax, %rax\n"                                                                \
            "    jz pb_slow_" #name "\n"                                                            \
            "    jmp *%rax\n"                                                                       \
            ".size " #label ", .-" #label "\n");

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

/* The floating-point environment (x87 and SSE control/status), saved around privbox code that
 * may do floating-point arithmetic or runs code that does (the Swift core, libgcc's unwinder, the
 * exit-time writers): a sticky status flag such as FE_INEXACT left behind would be visible to the
 * program through fetestexcept(). */
struct pb_fpenv {
    uint8_t x87[28];
    uint32_t mxcsr;
};
static inline void pb_fpenv_save(struct pb_fpenv *e)
{
    __asm__ volatile("fnstenv %0\n\tfldenv %0\n\tstmxcsr %1" : "=m"(e->x87), "=m"(e->mxcsr));
}
static inline void pb_fpenv_restore(const struct pb_fpenv *e)
{
    __asm__ volatile("fldenv %0\n\tldmxcsr %1" : : "m"(e->x87), "m"(e->mxcsr));
}

/* ---- the per-thread site table (profile/counting.c) ---------------------------------------------------- */

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
/* Nanoseconds (CLOCK_MONOTONIC) between two stack samples of a thread: at most 1000 per second. */
#define PB_STACK_INTERVAL_NS 1000000u

static inline uint64_t pb_cycles(void) { return __rdtsc(); }
uint64_t pb_monotonic_ns(void) PB_HIDDEN;

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

/* Added to the syscall number a trapped (inline) call is counted under: x86-64 numbers are below
 * 512, and the slot key keeps 10 bits of the number. */
#define PB_INLINE_NR 512u
/* Non-zero while Syscall User Dispatch discovery runs in this process. */
extern volatile int pb_inline_on PB_HIDDEN;
extern int pb_inline_started PB_HIDDEN;
/* The registered thread's selector (in its never-freed table), null until registration. */
extern PB_TLS volatile unsigned char *pb_sud_selector PB_HIDDEN;
extern PB_TLS int pb_sud_depth PB_HIDDEN;
/* Around a libc call a wrapper makes: the call must not be dispatched. Nests (signal handlers). */
static inline int pb_inline_enter(void)
{
    if (PB_LIKELY(!pb_inline_on))
        return 0;
    pb_sud_depth++;
    volatile unsigned char *sel = pb_sud_selector;
    if (sel)
        __atomic_store_n(sel, 0, __ATOMIC_RELAXED);
    __asm__ volatile("" ::: "memory");
    return 1;
}
void pb_inline_leave_slow(unsigned nr) PB_HIDDEN;
static inline void pb_inline_leave(unsigned nr)
{
    __asm__ volatile("" ::: "memory");
    pb_inline_leave_slow(nr);
}
int pb_inline_start(char *why, size_t why_len) PB_HIDDEN;
void pb_inline_thread_start(void) PB_HIDDEN;
void pb_inline_after_fork_child(void) PB_HIDDEN;
void pb_inline_stop_all(void) PB_HIDDEN;
void pb_inline_totals(uint64_t *traps, uint32_t *threads_spent) PB_HIDDEN;
struct sigaction;
const struct sigaction *pb_inline_adjust_action(int sig, const struct sigaction *act,
                                                struct sigaction *copy) PB_HIDDEN;
void pb_inline_adjust_old(int sig, struct sigaction *old, int was_stripped) PB_HIDDEN;
int pb_inline_was_stripped(int sig) PB_HIDDEN;
int pb_inline_is_handler(void *handler) PB_HIDDEN;
/* syscall()'s view: a raw rt_sigaction gets SIGSYS out of its mask (the copy goes in *scratch,
 * 32 bytes) and one for SIGSYS, or a dispatch prctl, ends discovery. Returns the act argument. */
long pb_inline_filter_raw(long nr, long a1, long a2, void *scratch) PB_HIDDEN;
struct pb_thread_table *pb_my_table_get(void) PB_HIDDEN;
/* Syscall User Dispatch (Linux 5.11+), for headers that predate it (after theirs, which glibc's
 * <signal.h> defines as an enumerator). */
#include <signal.h>
#include <sys/prctl.h>
#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif
/* libprivbox.so's executable segment: the region Syscall User Dispatch always lets through. */
int pb_sud_region(uintptr_t *start, uintptr_t *len) PB_HIDDEN;
/* rt_sigreturn inside that region, for SA_RESTORER. */
void pb_inline_restorer(void) PB_HIDDEN;
/* The kernel's struct sigaction (raw rt_sigaction, 8-byte masks). */
struct pb_kernel_sigaction {
    void *handler; /* a handler, SIG_DFL or SIG_IGN */
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/* ---- the profile snapshot taken at exit (runtime.c) and written out (profile/writer.c) ------- */

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
/* The GNU build-id of a loaded object, from its PT_NOTE segments (build_id_len 0 if none). */
struct dl_phdr_info;
void pb_build_id(const struct dl_phdr_info *info, struct pb_module_record *m) PB_HIDDEN;

/* ---- runtime services (runtime.c) -------------------------------------------------------------- */

/* One line on fd 2, "privbox: " + message, if level <= PRIVBOX_LOG. Not for signal context. */
void pb_log(int level, const char *fmt, ...) PB_HIDDEN __attribute__((format(printf, 2, 3)));
void *pb_resolve(const char *name) PB_HIDDEN;
void *pb_resolve_soft(const char *name) PB_HIDDEN;
/* libc's definition of `name` into pb_real_NAME, if not yet there. Everything is resolved in the
 * constructor (PB_RESOLVE_SOFT, which leaves a function an older libc lacks null), so the lazy
 * PB_RESOLVE in a wrapper, which aborts on a missing symbol, only runs for calls made before it. */
#define PB_RESOLVE(name) (pb_real_##name ? (void)0 : (void)(*(void **)&pb_real_##name = pb_resolve(#name)))
#define PB_RESOLVE_SOFT(name) (pb_real_##name ? (void)0 : (void)(*(void **)&pb_real_##name = pb_resolve_soft(#name)))
void pb_resolve_all(void) PB_HIDDEN;
void pb_resolve_routed(void) PB_HIDDEN;
void pb_after_fork_child(void) PB_HIDDEN;
void *pb_map(size_t bytes) PB_HIDDEN;
/* FNV-1a over n bytes, from h (PB_FNV_OFFSET to start): the names of the cache files and the
 * copies cache's checksum. Not cryptographic: what a cache holds is trusted for its owner and
 * mode (pb_open_trusted_cache_file), never for its name. */
#define PB_FNV_OFFSET 0xcbf29ce484222325ull
static inline uint64_t pb_fnv1a(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
    return h;
}
/* pb_open_regular and pb_file_kind (every file the preload reads): files.c, privbox_shim.h. */
/* Up to cap-1 bytes from fd, NUL-terminated; fd is closed. Bytes read. */
long pb_read_fd(long fd, char *buf, size_t cap) PB_HIDDEN;
/* Up to cap-1 bytes of the regular file at path, NUL-terminated, read with raw calls (nothing
 * interposed; the descriptor is closed before returning). Bytes read, or -1 if it cannot be
 * opened or is not a regular file. For files of the system (/proc); caches use the next ones. */
long pb_read_file(const char *path, char *buf, size_t cap) PB_HIDDEN;
/*
 * The one trust check of privbox's caches (plans, copies, the calibration): path, as pb_cache_path
 * made it, is opened only if every directory from the cache root down to it and the file itself
 * are the user's (geteuid) and writable by nobody else, none of them is a symbolic link and the
 * file is regular. Each step is opened relative to the directory checked before it, so what is
 * checked is what is read. The descriptor, or -1: a missing file silently, anything else with one
 * line ("ignoring cache X: why", then `remedy` if not null) at warn level.
 */
long pb_open_trusted_cache_file(const char *path, const char *remedy) PB_HIDDEN;
/* pb_open_trusted_cache_file, then pb_read_fd; -1 if refused or missing. */
long pb_read_trusted_cache_file(const char *path, const char *remedy, char *buf, size_t cap) PB_HIDDEN;
/* The directory holding the cache file at path, checked as above (created, mode 0700, where
 * missing when create is set), with *name the file's name in it; -1 with why ("" if merely
 * missing) otherwise. For writers: the file is then made relative to it. */
long pb_cache_dir_open(const char *path, int create, const char **name, char *why, size_t whylen) PB_HIDDEN;
/* Whether `name` in dirfd may be replaced: it is missing or a regular file (not followed if a
 * link). Otherwise 0 with *kind saying what it is. */
int pb_replaceable(int dirfd, const char *name, const char **kind) PB_HIDDEN;
/* Renames tmp over name (both in dirfd) only if name is missing or a regular file: 0, -errno, or 1
 * with *kind saying what is there instead (then nothing is renamed). */
int pb_replace_regular(int dirfd, const char *tmp, const char *name, const char **kind) PB_HIDDEN;
/* All of buf to fd with raw write calls, retrying EINTR: 0, or -errno (-EIO when the descriptor
 * took nothing). */
long pb_write_all(int fd, const char *buf, size_t len) PB_HIDDEN;
/* $XDG_CACHE_HOME/privbox/<leaf>, else $HOME/.cache/privbox/<leaf>; only absolute directories
 * count, as the XDG specification says. 0, or -1 when there is none or it is too long. */
int pb_cache_path(const char *leaf, char *out, size_t len) PB_HIDDEN;
/* A symbol of libprivbox_core.so, loaded on first use (accelerate mode, before main): null with err
 * saying why when the core cannot be loaded or lacks it. */
void *pb_core_symbol(const char *name, char *err, size_t errlen) PB_HIDDEN;
const char *pb_exe_path(void) PB_HIDDEN;
int pb_main_build_id(uint8_t *out, size_t *len) PB_HIDDEN;
const char *pb_syscall_name(unsigned nr) PB_HIDDEN;
/* "privbox-calibration/1 <kernel release> <arch> | <CPU model>": the machine a calibration holds for. */
void pb_calibration_machine(char *out, size_t len) PB_HIDDEN;

#endif
