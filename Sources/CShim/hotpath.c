/*
 * hotpath.c — per-thread, lock-free accounting of wrapped calls by call site.
 *
 * Why it is safe without locks:
 *  - each thread writes only its own table (found through an initial-exec TLS pointer);
 *  - a signal handler that makes a wrapped call on the same thread may interrupt an update, so
 *    a slot is claimed with a compare-and-swap on its key and every counter is bumped with a
 *    single `add` instruction, which a signal cannot split;
 *  - tables are pushed once onto a global list with a CAS and never freed, so the exit-time
 *    reader can walk them while other threads still count (it reads slightly stale numbers).
 * Tables are mapped with a raw mmap syscall: no malloc, no interposed call, async-signal-safe.
 */
#include "internal.h"

#include <sys/mman.h>
#include <sys/syscall.h>

static struct pb_thread_table *pb_head;
static uint32_t pb_table_count;
static PB_TLS struct pb_thread_table *pb_my_table;
/* Set in a thread whose table could not be mapped, so it stops trying on every call. */
static PB_TLS int pb_no_table;

static inline void pb_bump(uint64_t *counter, uint64_t by)
{
    __asm__ volatile("addq %1, %0" : "+m"(*counter) : "er"(by));
}

static struct pb_thread_table *pb_table_create(void)
{
    long p = pb_raw_syscall6(SYS_mmap, 0, (long)sizeof(struct pb_thread_table),
                             PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0 && p > -4096) {
        pb_no_table = 1;
        return 0;
    }
    struct pb_thread_table *t = (struct pb_thread_table *)p;
    t->tid = (pid_t)pb_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    t->index = __atomic_fetch_add(&pb_table_count, 1, __ATOMIC_RELAXED);
    struct pb_thread_table *head = __atomic_load_n(&pb_head, __ATOMIC_RELAXED);
    do {
        t->next = head;
    } while (!__atomic_compare_exchange_n(&pb_head, &head, t, 1, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    pb_my_table = t;
    return t;
}

void pb_record(uintptr_t site, unsigned nr, uint64_t entered, int failed)
{
    uint64_t now = pb_cycles();
    struct pb_thread_table *t = pb_my_table;
    if (PB_UNLIKELY(!t)) {
        if (pb_no_table || !(t = pb_table_create()))
            return;
    }
    uint64_t key = ((uint64_t)site << 10) | (nr & 1023u);
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - PB_TABLE_BITS));
    for (uint32_t i = 0; i < PB_PROBE_LIMIT; i++) {
        struct pb_slot *s = &t->slots[(h + i) & (PB_TABLE_SLOTS - 1)];
        uint64_t k = __atomic_load_n(&s->key, __ATOMIC_RELAXED);
        if (k == 0) {
            uint64_t expected = 0;
            if (!__atomic_compare_exchange_n(&s->key, &expected, key, 0, __ATOMIC_RELAXED,
                                             __ATOMIC_RELAXED) &&
                expected != key)
                continue; /* a handler on this thread took the slot for another site */
            k = key;
        }
        if (k == key) {
            pb_bump(&s->calls, 1);
            if (failed)
                pb_bump(&s->errors, 1);
            pb_bump(&s->kernel_cycles, now - entered);
            if (t->last_return && entered > t->last_return)
                pb_bump(&s->user_cycles, entered - t->last_return);
            t->last_return = now;
            return;
        }
    }
    pb_bump(&t->dropped, 1);
    t->last_return = now;
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
