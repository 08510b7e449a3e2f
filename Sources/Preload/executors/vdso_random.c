/*
 * executors/vdso_random.c — getrandom(2) through the kernel's own vDSO implementation
 * (__vdso_getrandom, Linux 6.11+), per thread, without entering the kernel.
 *
 * Why the answer equals the kernel's: it is the kernel's code. The vDSO generates bytes from a
 * per-thread ChaCha20 state keyed from the kernel's RNG, and reseeds whenever the kernel's RNG
 * generation changes (reseed, VM fork). Whatever it cannot serve it hands to the real syscall
 * itself: GRND_RANDOM, unknown flags, an RNG that is not ready yet (so blocking and EAGAIN are the
 * syscall's), and a state in use by an interrupted call on the same thread (a signal handler that
 * calls getrandom while the thread was inside it). Return values are the syscall's (-errno is
 * turned into errno here).
 *
 * State: each thread gets one opaque state, carved from pages mapped with the protection and
 * flags the kernel asks for (vgetrandom_opaque_params: MAP_DROPPABLE, which also means the pages
 * are wiped in a fork child, so parent and child never produce the same bytes). States of exited
 * threads go back to a free list (pthread key destructor) when the key is one of glibc's static
 * ones (no allocation in pthread_setspecific); otherwise they are not reused.
 *
 * Entry: the wrapper's C path (pb_vdso_getrandom), or, at the one fast site per process, the
 * wrapper's assembly entry (interpose_routed.c), which makes this same vDSO call with the thread's
 * state once it exists, without the route probe.
 *
 * Invalidated by: nothing process-wide. fork wipes the states (the kernel's design); a vfork
 * child runs on its parent's thread and so uses that thread's state in sequence, never in
 * parallel. The one observable difference: a buffer that is not writable makes the vDSO fault
 * (SIGSEGV) where the syscall would return EFAULT; glibc 2.41 and later have the same behaviour
 * natively, since they call the vDSO themselves.
 */
#include "executors/vdso.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

struct pb_vgetrandom_params {
    uint32_t size_of_opaque_state;
    uint32_t mmap_prot;
    uint32_t mmap_flags;
    uint32_t reserved[13];
};

typedef long (*pb_vgetrandom_fn)(void *buf, size_t len, unsigned flags, void *state, size_t state_len);

/* Also read by getrandom's fast entry (interpose_routed.c): the function, the state size it is
 * passed, and this thread's state. */
PB_HIDDEN pb_vgetrandom_fn pb_vgetrandom;
static struct pb_vgetrandom_params pb_params;
PB_HIDDEN uint32_t pb_vgetrandom_state_size;
static size_t pb_state_stride;
PB_HIDDEN PB_TLS void *pb_vgetrandom_my_state;
static PB_TLS int pb_no_state; /* allocation failed for this thread: always pass through */

/* Free states, and the page being carved. Guarded by a try-lock: a signal handler that interrupts
 * an allocation on the same thread gets no state and falls back to the syscall, and so does a fork
 * child whose parent forked while another thread held the lock. */
static volatile int pb_pool_lock;
static void *pb_free_list;
static char *pb_carve, *pb_carve_end;
static pthread_key_t pb_state_key;
static int pb_key_ok;

static void pb_state_release(void *state)
{
    if (!state)
        return;
    /* Runs on the exiting thread: a later destructor that calls getrandom must not use a state
     * another thread may already have taken. */
    pb_vgetrandom_my_state = 0;
    pb_no_state = 1;
    while (__atomic_exchange_n(&pb_pool_lock, 1, __ATOMIC_ACQUIRE))
        ; /* thread exit is not a signal context; the holder cannot be this thread */
    *(void **)state = pb_free_list;
    pb_free_list = state;
    __atomic_store_n(&pb_pool_lock, 0, __ATOMIC_RELEASE);
}

static void *pb_state_take(void)
{
    if (__atomic_exchange_n(&pb_pool_lock, 1, __ATOMIC_ACQUIRE))
        return 0;
    void *s = pb_free_list;
    if (s) {
        pb_free_list = *(void **)s;
        /* A reused state must look fresh to the vDSO: zero it (it reseeds a zero state). */
        __builtin_memset(s, 0, pb_params.size_of_opaque_state);
    } else {
        if (!pb_carve || pb_carve + pb_state_stride > pb_carve_end) {
            long page = pb_raw_syscall6(SYS_mmap, 0, 4096, pb_params.mmap_prot, pb_params.mmap_flags,
                                        -1, 0);
            if (page < 0 && page > -4096) {
                __atomic_store_n(&pb_pool_lock, 0, __ATOMIC_RELEASE);
                return 0;
            }
            pb_carve = (char *)page;
            pb_carve_end = pb_carve + 4096; /* states never cross a page: the kernel requires it */
        }
        s = pb_carve;
        pb_carve += pb_state_stride;
    }
    __atomic_store_n(&pb_pool_lock, 0, __ATOMIC_RELEASE);
    return s;
}

int pb_vdso_getrandom(void *buf, size_t len, unsigned flags, ssize_t *out)
{
    void *state = pb_vgetrandom_my_state;
    if (PB_UNLIKELY(!state)) {
        if (pb_no_state || !pb_vgetrandom || !(state = pb_state_take()))
            return 0;
        pb_vgetrandom_my_state = state;
        if (pb_key_ok)
            pthread_setspecific(pb_state_key, state);
    }
    long r = pb_vgetrandom(buf, len, flags, state, pb_params.size_of_opaque_state);
    *out = r < 0 ? pb_vdso_getrandom_failed(r) : r;
    return 1;
}

/* The vDSO's error (-errno) as the C library returns it. */
ssize_t pb_vdso_getrandom_failed(long r)
{
    errno = (int)-r;
    return -1;
}

static const char *pb_vdso_random_start(void)
{
    pb_vgetrandom = (pb_vgetrandom_fn)pb_vdso_lookup("__vdso_getrandom");
    if (!pb_vgetrandom)
        return "this kernel's vDSO has no getrandom (Linux 6.11+)";
    if (pb_vgetrandom(0, 0, 0, &pb_params, ~0ul) != 0 || pb_params.size_of_opaque_state == 0 ||
        pb_params.size_of_opaque_state > 4096) {
        pb_vgetrandom = 0;
        return "the vDSO refused to describe its getrandom state";
    }
    pb_state_stride = (pb_params.size_of_opaque_state + 63u) & ~(size_t)63u;
    pb_vgetrandom_state_size = pb_params.size_of_opaque_state;
    if (pthread_key_create(&pb_state_key, pb_state_release) == 0) {
        /* Keys below 32 live in the thread descriptor: setting one never allocates. */
        if (pb_state_key < 32)
            pb_key_ok = 1;
        else
            pthread_key_delete(pb_state_key);
    }
    return 0;
}

static int pb_vdso_random_serves(unsigned nr) { return nr == SYS_getrandom; }

/* Calibration: getrandom of 16 bytes through the vDSO, and made. */
static void pb_vdso_random_served_once(void)
{
    unsigned char buf[16];
    ssize_t r;
    pb_vdso_getrandom(buf, sizeof buf, 0, &r);
}
static void pb_vdso_random_native_once(void)
{
    unsigned char buf[16];
    pb_raw_syscall6(SYS_getrandom, (long)buf, sizeof buf, 0, 0, 0, 0);
}

const struct pb_executor pb_exec_vdso_random = {
    .name = "vdso-getrandom",
    .summary = "getrandom through the kernel's vDSO with a per-thread state (the kernel's own "
               "generator; it falls back to the syscall for anything it cannot serve)",
    .serves = pb_vdso_random_serves,
    .start = pb_vdso_random_start,
    .served_once = pb_vdso_random_served_once,
    .native_once = pb_vdso_random_native_once,
};
