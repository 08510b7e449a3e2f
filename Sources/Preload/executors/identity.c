/*
 * executors/identity.c — the identity executor: getpid, gettid, getuid, geteuid, getgid, getegid,
 * getpgrp and getsid(0) answered from a cache filled by the kernel's own answer.
 *
 * Why the answer equals the kernel's. Each value changes only through an event privbox sees:
 *  - A new process (fork, _Fork, clone without CLONE_VM, syscall(SYS_fork), posix_spawn's child)
 *    gets a copy of the memory: the cache lives in a page marked MADV_WIPEONFORK, which the kernel
 *    zeroes in every child, so a child starts with nothing cached (no hook can be late: not even
 *    pthread_atfork handlers that run before privbox's).
 *  - A child that borrows the memory: vfork (privbox's own vfork marks the cache unusable until
 *    the parent resumes) and clone(CLONE_VM) without CLONE_THREAD through clone()/syscall()
 *    (the cache is turned off for the rest of the process).
 *  - tid: a thread-local copy, valid only together with the pid it was read under (a fork
 *    child's pid differs), and off after a raw clone(CLONE_VM|CLONE_THREAD), whose TLS is not
 *    glibc's.
 *  - uid/euid/gid/egid: only the set*id family, called by this process (glibc applies it to all
 *    threads), and an unwritten user-namespace id map (another process may write it later):
 *    credentials are cached only if /proc/self/uid_map and gid_map are written, and unshare/setns
 *    turn them off.
 *  - pgrp: setpgid/setsid by this process; until it execs, a child may be moved by its parent, so
 *    pgrp is cached only in the process that ran privbox's constructor (a wiped page in a child
 *    says it is not). sid: only setsid by the process itself.
 *  - exec: a new image, a new privbox.
 *
 * Concurrency. Each value is one 64-bit word (bit 63 valid, bits 32..62 an epoch, low 32 bits the
 * value). A fill reads the word, asks the kernel, and installs the value with a compare-and-swap
 * that fails if an invalidation bumped the epoch meanwhile, so a value read before a change can
 * never be installed after it. While a change is in flight the cache is neither read nor filled:
 * a reader either looked before the change began (its answer is linearized there) or asks the
 * kernel.
 *
 * Not covered: identity changes made by inline `syscall` instructions outside libc (issue 6
 * discovers such sites); a program that has them must not route these calls.
 */
#include "executors/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pb_identity_page *pb_id;
static volatile int pb_off_pid;      /* a CLONE_VM child: the pid differs under shared memory */
static volatile int pb_off_tid;      /* a raw CLONE_VM thread: TLS cannot be trusted */
static volatile int pb_off_creds;    /* user namespace without map, or unshare/setns */
static volatile int pb_off_pgrp;     /* setpgid/setsid could not be tracked */

/* This thread's tid, valid while the process's pid word (valid bit, epoch, pid) is the one it was
 * read under: a fork child, a vfork or any identity change gives another word. */
PB_TLS struct pb_thread_identity pb_my_tid;

static const int pb_id_syscall[PB_ID_COUNT] = {SYS_getpid, SYS_getuid, SYS_geteuid, SYS_getgid,
                                               SYS_getegid, SYS_getpgrp, SYS_getsid};

static int pb_id_disabled(int which)
{
    switch (which) {
    case PB_ID_PID: return pb_off_pid;
    case PB_ID_PGRP: return pb_off_pgrp || !__atomic_load_n(&pb_id->started, __ATOMIC_RELAXED);
    case PB_ID_SID: return pb_off_pid;
    default: return pb_off_creds;
    }
}

static void pb_ids_bump(void)
{
    for (int i = 0; i < PB_ID_COUNT; i++) {
        uint64_t w = __atomic_load_n(&pb_id->ids[i], __ATOMIC_RELAXED), next;
        do {
            next = (((w >> 32) + 1) & 0x7fffffffu) << 32; /* next epoch, invalid */
        } while (!__atomic_compare_exchange_n(&pb_id->ids[i], &w, next, 0, __ATOMIC_SEQ_CST,
                                              __ATOMIC_RELAXED));
    }
}

static inline int pb_id_usable(void)
{
    return pb_id && !__atomic_load_n(&pb_id->busy, __ATOMIC_SEQ_CST) && !pb_executors_stopped;
}

static int pb_id_get(int which, uint32_t *out)
{
    if (!pb_id_usable() || pb_id_disabled(which))
        return 0;
    uint64_t w = __atomic_load_n(&pb_id->ids[which], __ATOMIC_ACQUIRE);
    if (PB_LIKELY(w & PB_ID_VALID)) {
        *out = (uint32_t)w;
        return 1;
    }
    long v = pb_raw_syscall6(pb_id_syscall[which], 0, 0, 0, 0, 0, 0);
    if (v < 0)
        return 0;
    if (pb_id_usable())
        __atomic_compare_exchange_n(&pb_id->ids[which], &w, w | PB_ID_VALID | (uint32_t)v, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
    *out = (uint32_t)v;
    return 1;
}

uint64_t pb_identity_fill(int which)
{
    uint32_t v;
    return pb_id_get(which, &v) ? PB_ID_VALID | v : 0;
}

/* The tid of this thread cannot change between the syscall and the stores below (a fork or vfork
 * would have to run on this very thread); the pid word recorded with it is whatever is current, so
 * a later fork, vfork or identity change makes the thread's entry stale. */
uint64_t pb_identity_tid_fill(void)
{
    uint32_t pid;
    if (pb_off_tid || !pb_id_get(PB_ID_PID, &pid))
        return 0;
    long v = pb_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    /* Stored invalid first: a signal handler on this thread between the two stores sees no
     * match and asks the kernel itself. */
    pb_my_tid.pid_word = 0;
    __asm__ volatile("" ::: "memory");
    pb_my_tid.tid = (uint32_t)v;
    __asm__ volatile("" ::: "memory");
    pb_my_tid.pid_word = __atomic_load_n(&pb_id->ids[PB_ID_PID], __ATOMIC_ACQUIRE);
    return PB_ID_VALID | (uint32_t)v;
}

void pb_identity_vfork_begin(void)
{
    if (!pb_id)
        return;
    /* busy first (no fill can install), then every value invalid: the wrappers' fast paths look
     * at the valid bit only, so the child, which shares this memory, asks the kernel. */
    __atomic_fetch_add(&pb_id->busy, 1, __ATOMIC_SEQ_CST);
    pb_ids_bump();
}

void pb_identity_vfork_end(void)
{
    if (!pb_id)
        return;
    /* The child ran on this thread's TLS and may have stored its own tid there. */
    pb_my_tid.pid_word = 0;
    __atomic_fetch_sub(&pb_id->busy, 1, __ATOMIC_SEQ_CST);
}

void pb_identity_shared_memory_child(int is_thread)
{
    if (is_thread)
        pb_off_tid = 1;
    else
        pb_off_pid = pb_off_tid = pb_off_creds = pb_off_pgrp = 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (pb_id) {
        pb_my_tid.pid_word = 0;
        pb_ids_bump(); /* what was cached is no longer served: the fill path checks the flags */
    }
}

void pb_identity_change_begin(void)
{
    if (!pb_id)
        return;
    __atomic_fetch_add(&pb_id->busy, 1, __ATOMIC_SEQ_CST);
    pb_ids_bump();
}

void pb_identity_change_end(int disable_credentials, int disable_groups)
{
    if (!pb_id)
        return;
    if (disable_credentials)
        pb_off_creds = 1;
    if (disable_groups)
        pb_off_pgrp = 1;
    pb_ids_bump();
    __atomic_fetch_sub(&pb_id->busy, 1, __ATOMIC_SEQ_CST);
}

/* Whether /proc/self/<file> (uid_map, gid_map) has been written: an unwritten map means another
 * process may still change what getuid() returns. Read with raw calls when routes are installed
 * (before main in accelerate mode; the descriptor is closed at once). */
static int pb_map_written(const char *path)
{
    char buf[64];
    return pb_read_file(path, buf, sizeof buf) > 0;
}

static const char *pb_identity_start(void)
{
    long p = pb_raw_syscall6(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0);
    if (p < 0 && p > -4096)
        return "no memory for the cache page";
    if (pb_raw_syscall6(SYS_madvise, p, 4096, MADV_WIPEONFORK, 0, 0, 0) != 0) {
        pb_unmap((void *)p, 4096);
        return "this kernel has no MADV_WIPEONFORK (Linux 4.14+)";
    }
    if (!pb_map_written("/proc/self/uid_map") || !pb_map_written("/proc/self/gid_map"))
        pb_off_creds = 1;
    struct pb_identity_page *page = (struct pb_identity_page *)p;
    page->started = 1;
    __atomic_store_n(&pb_id, page, __ATOMIC_RELEASE);
    return 0;
}

static int pb_identity_serves(unsigned nr)
{
    switch (nr) {
    case SYS_getpid: case SYS_gettid: case SYS_getuid: case SYS_geteuid: case SYS_getgid:
    case SYS_getegid: case SYS_getpgrp: case SYS_getsid:
        return 1;
    }
    return 0;
}

/* Calibration: getpid served from the cache, and made. */
static void pb_identity_served_once(void)
{
    uint64_t v = pb_identity_word(PB_ID_PID);
    __asm__ volatile("" ::"r"(v));
}
static void pb_identity_native_once(void) { pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0); }

const struct pb_executor pb_exec_identity = {
    .name = "identity",
    .summary = "getpid/gettid/get[e]uid/get[e]gid/getpgrp/getsid(0) from a cache invalidated by "
               "every call that can change them",
    .serves = pb_identity_serves,
    .start = pb_identity_start,
    .served_once = pb_identity_served_once,
    .native_once = pb_identity_native_once,
};
