/*
 * profile/counting.c — per-thread, lock-free accounting of wrapped calls by call site.
 *
 * Why it is safe without locks:
 *  - each thread writes only its own table (found through an initial-exec TLS pointer);
 *  - a signal handler that makes a wrapped call on the same thread may interrupt an update, so
 *    a slot is claimed with a compare-and-swap on its key and every counter is bumped with a
 *    single `add` instruction, which a signal cannot split;
 *  - tables are pushed once onto a global list with a CAS and never freed, so the exit-time
 *    reader can walk them while other threads still count (it reads slightly stale numbers).
 * Tables are mapped with a raw mmap syscall: no malloc, no interposed call, async-signal-safe.
 * Nothing here changes errno (raw syscalls return -errno; the vDSO clock sets none on success;
 * the unwinder's errno is restored), so wrappers need not save it around pb_begin/pb_end.
 *
 * Why it is cheap: every call is counted (pb_begin, before the real call), but only a sample is
 * followed to its end. For the others the wrapper tail-calls libc, so libc returns straight to the
 * program: after a system call the return-stack predictor is flushed on this machine (RSB filling
 * mitigations), and each extra `ret` on the way back costs a mispredict. Reading the TSC costs
 * ~11 ns here too. About one call in PB_TIME_ONE_IN, chosen by a per-thread xorshift generator
 * (not by a period, so a loop cycling through k sites cannot alias with the sampling), "arms":
 * its return is stamped; the thread's next call is then timed from entry to exit, and the gap
 * since the armed return is its user time. Times are reported scaled up by calls/timed and
 * errors by calls/checked, so they are estimates; call counts are exact.
 *
 * Stacks: a site's first call, and then at most one call per PB_STACK_INTERVAL_NS (ns of
 * CLOCK_MONOTONIC) per thread, has its stack captured by the unwinder loaded in profile
 * mode. The clock is only looked at every 32nd call, so the sampler costs a decrement on the
 * other calls. Calls made while a stack is being captured (the unwinder's own, or a signal
 * handler's) are not counted: they are privbox's, or would nest an unwind inside an unwind.
 */
#include "profile/counting.h"
#include "profile/inline_discovery.h"
#include "sys/hash.h"
#include "sys/log.h"
#include "sys/memory.h"
#include "sys/process.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unwind.h>

PB_TLS struct pb_thread_table *pb_my_table;
PB_TLS int pb_in_privbox;
int (*pb_backtrace)(void **buffer, int size);
void (*volatile pb_counting_warmup)(uint64_t now_ns);

static struct pb_thread_table *pb_head;
static uint32_t pb_table_count;
/* Set in a thread whose table could not be mapped, so it stops trying on every call. */
static PB_TLS int pb_no_table;

#define PB_STACK_CHECK_EVERY 32

static inline void pb_bump(uint64_t *counter, uint64_t by)
{
    __asm__ volatile("addq %1, %0" : "+m"(*counter) : "er"(by));
}

static struct pb_thread_table *pb_table_create(void)
{
    struct pb_thread_table *t = pb_map(sizeof *t);
    if (!t) {
        pb_no_table = 1;
        return 0;
    }
    t->tid = (pid_t)pb_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    t->index = __atomic_fetch_add(&pb_table_count, 1, __ATOMIC_RELAXED);
    t->rng = (uint32_t)(pb_cycles() ^ ((uint64_t)t->tid * 0x9E3779B9u)) | 1u;
    t->stack_countdown = PB_STACK_CHECK_EVERY;
    struct pb_thread_table *head = __atomic_load_n(&pb_head, __ATOMIC_RELAXED);
    do {
        t->next = head;
    } while (!__atomic_compare_exchange_n(&pb_head, &head, t, 1, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    pb_my_table = t;
    /* A thread's first wrapped call registers it for inline discovery (the kernel does not pass
     * dispatch on to new threads). */
    if (PB_UNLIKELY(pb_inline_on))
        pb_inline_thread_start();
    return t;
}

/* Captures the current stack from the site outwards and counts it in the thread's stack table. */
static void pb_capture_stack(struct pb_thread_table *t, uintptr_t site, int sampled)
{
    void *ips[PB_STACK_DEPTH + 16];
    pb_in_privbox++;
    int saved_errno = errno; /* the unwinder may set errno; the program must see libc's */
    struct pb_fpenv fp;
    pb_fpenv_save(&fp);      /* and must not leave a floating-point status flag behind */
    int n = pb_backtrace(ips, (int)(sizeof ips / sizeof *ips));
    pb_fpenv_restore(&fp);
    errno = saved_errno;
    pb_in_privbox--;
    /* Skip privbox's own frames: the stack starts at the return address into the caller. */
    int first = 0;
    while (first < n && (uintptr_t)ips[first] != site)
        first++;
    if (first == n)
        return;
    int depth = n - first;
    int truncated = depth > PB_STACK_DEPTH || n == (int)(sizeof ips / sizeof *ips);
    if (depth > PB_STACK_DEPTH)
        depth = PB_STACK_DEPTH;
    /* FNV-1a a return address at a time (sys/hash.h): the values, and so the slots stacks land in
     * when the table fills, are the ones profiles have always had. */
    uint64_t hash = pb_fnv1a_pointers(PB_FNV_OFFSET ^ (uint64_t)sampled, &ips[first], (size_t)depth);
    hash |= 1; /* 0 marks an empty slot */
    uint32_t h = (uint32_t)(hash >> 40);
    for (uint32_t i = 0; i < 16; i++) {
        struct pb_stack *s = &t->stacks[(h + i) % PB_STACK_SLOTS];
        uint64_t k = __atomic_load_n(&s->hash, __ATOMIC_RELAXED);
        if (k == hash) {
            __atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
            return;
        }
        if (k == 0) {
            uint64_t expected = 0;
            if (!__atomic_compare_exchange_n(&s->hash, &expected, hash, 0, __ATOMIC_RELAXED,
                                             __ATOMIC_RELAXED))
                continue;
            for (int f = 0; f < depth; f++)
                s->frames[f] = (uint64_t)(uintptr_t)ips[first + f];
            s->depth = (uint16_t)depth;
            s->sampled = (uint8_t)sampled;
            s->truncated = (uint8_t)truncated;
            __atomic_store_n(&s->count, 1, __ATOMIC_RELEASE);
            return;
        }
    }
    pb_bump(&t->stacks_dropped, 1);
}

/* This thread's table, created if it has none yet (null if it cannot be mapped). */
struct pb_thread_table *pb_my_table_get(void)
{
    struct pb_thread_table *t = pb_my_table;
    if (!t && !pb_no_table)
        t = pb_table_create();
    return t;
}

struct pb_call pb_begin(uintptr_t site, unsigned nr)
{
    struct pb_call none = {0, 0};
    struct pb_thread_table *t = pb_my_table;
    if (PB_UNLIKELY(!t)) {
        if (pb_no_table || !(t = pb_table_create()))
            return none;
    }
    if (PB_UNLIKELY(pb_in_privbox))
        return none;
    uint64_t key = ((uint64_t)site << 10) | (nr & 1023u);
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - PB_TABLE_BITS));
    struct pb_slot *slot = 0;
    int claimed = 0;
    for (uint32_t i = 0; i < PB_PROBE_LIMIT; i++) {
        struct pb_slot *s = &t->slots[(h + i) & (PB_TABLE_SLOTS - 1)];
        uint64_t k = __atomic_load_n(&s->key, __ATOMIC_RELAXED);
        if (k == 0) {
            uint64_t expected = 0;
            if (__atomic_compare_exchange_n(&s->key, &expected, key, 0, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
                claimed = 1;
            else if (expected != key)
                continue; /* a handler on this thread took the slot for another site */
            k = key;
        }
        if (k == key) {
            slot = s;
            break;
        }
    }
    if (PB_UNLIKELY(!slot)) {
        pb_bump(&t->dropped, 1);
        return none;
    }
    pb_bump(&slot->calls, 1);

    if (PB_UNLIKELY(pb_counting_warmup != 0)) {
        /* auto mode: the warm-up ends at the first clock look after PB_AUTO_WARMUP_NS. The
         * routes are then chosen inside this call (routes.c). The hook is read again after the
         * clock rather than kept across that call: keeping it would cost every counted call a
         * saved register (measured: pb_begin gained a push and a pop). */
        if (--t->stack_countdown == 0) {
            t->stack_countdown = PB_STACK_CHECK_EVERY;
            uint64_t now = pb_monotonic_ns();
            void (*warmup)(uint64_t now_ns) = pb_counting_warmup;
            if (warmup)
                warmup(now);
        }
    } else if (pb_backtrace) {
        if (PB_UNLIKELY(claimed)) {
            pb_capture_stack(t, site, 0);
        } else if (PB_UNLIKELY(--t->stack_countdown == 0)) {
            t->stack_countdown = PB_STACK_CHECK_EVERY;
            uint64_t now = pb_monotonic_ns(); /* vDSO, ~20 ns, once per 32 calls */
            if (now >= t->next_stack) {
                t->next_stack = now + PB_STACK_INTERVAL_NS;
                pb_capture_stack(t, site, 1);
            }
        }
    }

    if (t->time_next) {
        /* The previous call armed the timer: time this one, entry to exit, and the gap since the
         * previous call returned. */
        t->time_next = 0;
        uint64_t now = pb_cycles();
        if (t->armed_at && now > t->armed_at)
            pb_bump(&slot->user_cycles, now - t->armed_at);
        pb_bump(&slot->timed, 1);
        return (struct pb_call){slot, now};
    }
    uint32_t x = t->rng; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    t->rng = x;
    if (x % PB_TIME_ONE_IN != 0)
        return none;
    return (struct pb_call){slot, 0}; /* arm: stamp this call's return, time the next one */
}

void pb_end(struct pb_call call, int failed)
{
    uint64_t now = pb_cycles();
    struct pb_slot *slot = call.slot;
    pb_bump(&slot->checked, 1);
    if (failed)
        pb_bump(&slot->errors, 1);
    if (call.entered) {
        pb_bump(&slot->kernel_cycles, now - call.entered);
        return;
    }
    struct pb_thread_table *t = pb_my_table;
    if (t) {
        t->armed_at = now;
        t->time_next = 1;
    }
}

struct pb_thread_table *pb_tables_head(void)
{
    return __atomic_load_n(&pb_head, __ATOMIC_ACQUIRE);
}

void pb_tables_reset_after_fork(void)
{
    /* Only the forking thread exists in the child. The old tables stay mapped (copy-on-write,
     * untouched) but are no longer listed, so the child's profile holds only its own calls. */
    __atomic_store_n(&pb_head, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&pb_table_count, 0, __ATOMIC_RELAXED);
    pb_my_table = 0;
    pb_no_table = 0;
}

void pb_after_fork_child(void)
{
    /* Async-signal-safe: fork() may be called from a signal handler, and this runs inside it. */
    pb_tables_reset_after_fork();
    pb_proc.pid = pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    pb_proc.start_ns = pb_monotonic_ns();
    pb_proc.start_cycles = pb_cycles();
    if (pb_inline_on)
        pb_inline_after_fork_child();
}

/* Stacks come from the unwinder of libgcc (libgcc_s.so.1, _Unwind_Backtrace over .eh_frame),
 * loaded only in profile mode so that the other modes pay nothing for it.
 *
 * Why not libunwind: on its first unwind, libunwind (1.6, Debian 12) opens a pipe through which it
 * validates memory by writing to it. Those two descriptors take the program's lowest free numbers
 * (3 and 4), so every descriptor the program opens afterwards has a different number than in a
 * native run (CPython's test_pass_fds_redirected caught it), and libunwind later reads from and
 * writes to those numbers even after the program has closed them and reused them for its own
 * files. Denying it the pipe makes it unwind nothing. libgcc's unwinder opens no descriptor. */
static int (*pb_gcc_unwind_backtrace)(_Unwind_Trace_Fn, void *);
static uintptr_t (*pb_gcc_get_ip)(struct _Unwind_Context *);

struct pb_trace { void **ips; int n, max; };

static _Unwind_Reason_Code pb_trace_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct pb_trace *t = arg;
    uintptr_t ip = pb_gcc_get_ip(ctx);
    if (!ip || t->n >= t->max)
        return _URC_END_OF_STACK;
    t->ips[t->n++] = (void *)ip;
    return _URC_NO_REASON;
}

static int pb_gcc_backtrace(void **buffer, int size)
{
    struct pb_trace t = {buffer, 0, size};
    pb_gcc_unwind_backtrace(pb_trace_frame, &t);
    return t.n;
}

void pb_load_unwinder(void)
{
    void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        pb_gcc_unwind_backtrace = (int (*)(_Unwind_Trace_Fn, void *))dlsym(lib, "_Unwind_Backtrace");
        pb_gcc_get_ip = (uintptr_t (*)(struct _Unwind_Context *))dlsym(lib, "_Unwind_GetIP");
    }
    if (!pb_gcc_unwind_backtrace || !pb_gcc_get_ip) {
        pb_log(PB_LOG_INFO, "libgcc_s.so.1 has no unwinder: profiles will have no stacks");
        return;
    }
    pb_backtrace = pb_gcc_backtrace;
}
