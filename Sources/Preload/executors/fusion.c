/*
 * executors/fusion.c — lseek(fd, off, SEEK_SET) fused with the read()s that follow it on the same fd:
 * the seek is deferred, each read becomes pread(fd, buf, n, pos), and the file offset the kernel
 * keeps is brought up to date (one lseek) before anything can look at it. A loop of
 * lseek+read pairs then makes one system call per pair instead of two.
 *
 * The deferred offset lives in a *window*. A window is opened by a routed lseek(SEEK_SET) and
 * covers one fd; while it is open this thread runs under Syscall User Dispatch with no selector
 * and libprivbox.so's code as the only allowed region, so the kernel refuses EVERY system call
 * made from anywhere else — the program, libc's internal calls (stdio, fdopen'd FILEs, exit), a
 * vDSO fallback, an inline `syscall` — and raises SIGSYS instead, before the call has any effect.
 * privbox's SIGSYS handler closes the window (lseek to the deferred offset if the kernel's
 * differs, dispatch off, SIGSYS's action back) and rewinds the context to the `syscall`
 * instruction, which then runs natively. So the first system call after a deferred lseek, whatever
 * it is and whatever fd it names (a dup of the fd, /proc/self/fdinfo, fork, exec, exit), finds
 * the kernel's offset exactly where the native program would have left it.
 *
 * Why the answers are the kernel's, on the files a window is opened for (regular files on ext2/3/4,
 * xfs, btrfs, tmpfs and overlayfs, checked with fstat and fstatfs when the window opens; f2fs is
 * left out: its compressed files seek only up to a per-inode limit below s_maxbytes):
 *  - lseek(fd, off, SEEK_SET): those filesystems' llseek sets f_pos = off through vfs_setpos,
 *    which fails only for off < 0 or off > the superblock's s_maxbytes. Offsets in
 *    [0, max(st_size, the offset the kernel had)] are served (returned as off): a file's size
 *    never exceeds s_maxbytes, and the kernel's own offset was accepted by it. Anything else, and
 *    every SEEK_CUR/SEEK_END/SEEK_DATA/SEEK_HOLE but lseek(fd, 0, SEEK_CUR), closes the window and
 *    goes to the kernel. lseek(fd, 0, SEEK_CUR) in a window returns the deferred offset, which is
 *    what the kernel's would be.
 *  - read(fd, buf, n) in a window: pread(fd, buf, n, pos) runs the same vfs_read on the same
 *    file at the same position (ksys_read passes &f_pos, ksys_pread64 the given one: FMODE_PREAD
 *    is set on these files), so it returns the same bytes and result; read() would then set f_pos
 *    to pos + result (unchanged on an error), and so does the window's offset.
 *  - Writes are not fused. A pwrite's data is visible to other processes at once while the offset
 *    would lag until the flush; a process killed in between (SIGKILL) would leave the file and
 *    the offset in a state the native program never shows. A read has no effect outside the
 *    process, so a process killed with a window open looks exactly like one killed at the last
 *    flush. A write made in a window traps and closes it first, so O_APPEND writes, and reads
 *    of an O_APPEND fd, keep their semantics.
 *
 * When a window is opened (all checked, otherwise the call is not fused and goes to the kernel):
 * the process is single-threaded (glibc's __libc_single_threaded, cleared by every pthread_create,
 * and the thread block's multiple_threads, which pthread_cancel also sets: a read is then a
 * cancellation point a raw pread would skip), so no other thread can look at the offset, and no
 * thread can appear without a trapped clone (a raw clone of a thread made through libc's clone()
 * turns the signal-mask record off, which closes fusion too); this is the process that installed the window owner page (a vfork
 * child, which shares the parent's memory, is not: the page is MADV_WIPEONFORK, so a fork child
 * starts with its own); the program has no signal handler installed (the signal-mask executor's
 * record of every handler, kept through sigaction/signal/... and re-installed ones), so no
 * program code can run in between without a system call that traps — a signal with its default
 * action either does nothing, stops the process or ends it (see writes, above); the record must be
 * one privbox still follows (a handler installed through syscall(SYS_rt_sigaction) turns it off),
 * and a vfork child's changes to its own actions are undone in the parent's record; SIGSYS is not
 * blocked and has its default action; the kernel gate is not in use and no seccomp filter was
 * installed or inherited. A handler installed while a window is open goes through rt_sigaction, which traps
 * and closes it first; so does everything that creates a thread or a process, or changes the mask.
 *
 * What is outside the proof, as for the other executors: a thread made by an inline clone outside
 * libc, or a handler installed by an inline rt_sigaction outside libc, before the window opens.
 * And observers that need no system call of this process: another process that shares the open
 * file description (a fork child made earlier, a parent shell) and learns of this one's progress
 * through shared memory alone; a reader of /proc/PID/fdinfo (progress, pv -d, CRIU); an io_uring
 * SQPOLL thread reading the description at offset -1; a process that crashes (SIGSEGV, SIGBUS,
 * ... with the default action) inside a window, after which a process sharing the description
 * continues from the last flush. They see the offset as of the last flush. A shut-down XFS
 * fails lseek with EIO, which a deferred seek does not; the pread after it fails the same way.
 * Other differences: the SIGSYS that closes a window is taken on the program's stack (a thread
 * with less than a few KiB of stack left faults there), and a debugger or strace sees it.
 *
 * Never slower: a window costs seven system calls to open and a SIGSYS, a flush and two calls to
 * close (about 5 µs here), repaid by the lseeks it saves (one per fused pair, ~150-250 ns). A
 * window that closes having fused fewer than PB_FUSE_SHORT pairs is short; once short windows
 * are PB_FUSE_STRIKES more than the long ones, fusion is off for the rest of the process.
 *
 * Planning is fusion's too (plan_sees, plan_takes, keeps_routes below): its read routes serve only
 * what one of its lseek routes deferred, so a read site is taken only when the plan holds an lseek
 * site, and the reads are given back when no lseek route ended up on.
 *
 * May use: executors/ (the signal-mask executor's record of handlers, the protocol's state) and
 * sys/ (privbox's own text segment, the kernel gate's address).
 */
#include "executors/fusion.h"
#include "executors/sigmask.h"
#include "sys/kernel_gate_address.h"
#include "sys/own_text.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>


/* Fewer fused pairs than this and a window did not repay its cost: opening and closing one costs
 * about 5 µs, a fused pair saves its lseek less dispatch's slower entry on the pread (~80-110 ns). */
#define PB_FUSE_SHORT 64u
#define PB_FUSE_STRIKES 8u
/* lseeks declined for threads or handlers, with no window ever opened, before fusion turns off */
#define PB_FUSE_DECLINES 256u

/* The one window: the process is single-threaded while it is open, so plain fields suffice. */
struct pb_fuse_window {
    int open;
    int fd;
    int64_t pos;        /* the offset the program's file description has */
    int64_t kernel_pos; /* the offset the kernel has for it */
    int64_t limit;      /* SEEK_SET targets in [0, limit] need not be checked by the kernel */
    uint64_t fused;     /* pairs fused in this window */
    struct pb_kernel_sigaction saved_sigsys;
};
static struct pb_fuse_window pb_fw;

/* In a MADV_WIPEONFORK page: the pid of the process whose windows these are (0 in a fork child
 * until it opens its own; a vfork child sees its parent's and opens none). */
static volatile int *pb_fuse_owner;
static uintptr_t pb_fuse_region_start, pb_fuse_region_len;
static volatile int pb_fuse_off; /* fusion is off for the rest of the process */
static const char *pb_fuse_off_why;

/* Totals for the report. */
static uint64_t pb_fuse_windows, pb_fuse_pairs, pb_fuse_reads, pb_fuse_short_windows,
    pb_fuse_long_windows, pb_fuse_closed_by_trap, pb_fuse_not_opened, pb_fuse_refused_by_kernel, pb_fuse_declined;

static void pb_fuse_sigsys(int sig, siginfo_t *si, void *context);

/* No other thread, and no pending cancellation point: glibc's __libc_single_threaded (cleared by
 * pthread_create) and the thread block's multiple_threads word (%fs:0x18 on x86-64, glibc's
 * SINGLE_THREAD_P, which pthread_cancel sets even on the only thread so that its cancellation
 * points act: a read made as a raw pread would skip one). */
static inline int pb_fuse_single_threaded(void)
{
    int multiple;
    __asm__ volatile("movl %%fs:0x18, %0" : "=r"(multiple));
    return __libc_single_threaded && !multiple;
}

static const uint32_t pb_fuse_fs_types[] = {
    0xEF53,     /* ext2, ext3, ext4 */
    0x58465342, /* xfs */
    0x9123683E, /* btrfs */
    0x01021994, /* tmpfs (and memfd) */
    0x794C7630, /* overlayfs: llseek and read_iter go to the underlying file, one of the above */
};

/* Off for the rest of the process: fusion withdraws (its routes count as off, and read and lseek
 * are jumps to libc again), so their wrappers pass through without asking this file again. */
static void pb_fuse_turn_off(const char *why)
{
    if (pb_fuse_off)
        return;
    pb_fuse_off_why = why;
    pb_fuse_off = 1;
    pb_executor_withdraw(PB_EXEC_FUSION);
    pb_log(PB_LOG_INFO, "fusion turned off: %s", why);
}

/* SIGSYS's action back to the program's, as a window found it. */
static void pb_fuse_sigsys_restore(void)
{
    pb_raw_syscall6(SYS_rt_sigaction, SIGSYS, (long)&pb_fw.saved_sigsys, 0, 8, 0, 0);
}

/* Dispatch off and SIGSYS's action back: what every end of a window does. */
static void pb_fuse_dispatch_off(void)
{
    pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0, 0);
    pb_fuse_sigsys_restore();
}

/* Closes the window: the kernel's offset to the program's, dispatch off, SIGSYS's action back.
 * Only raw calls, from the allowed region; safe inside the SIGSYS handler (every signal blocked
 * there) and on the program's path (no program handler exists while a window is open). */
static void pb_fuse_close(int by_trap)
{
    if (!pb_fw.open)
        return;
    if (pb_fw.pos != pb_fw.kernel_pos)
        pb_raw_syscall6(SYS_lseek, pb_fw.fd, pb_fw.pos, SEEK_SET, 0, 0, 0);
    pb_fw.open = 0;
    pb_fuse_dispatch_off();
    pb_fuse_closed_by_trap += by_trap != 0;
    if (pb_fw.fused >= PB_FUSE_SHORT)
        pb_fuse_long_windows++;
    else if (++pb_fuse_short_windows >= pb_fuse_long_windows + PB_FUSE_STRIKES)
        pb_fuse_turn_off("its windows were too short to repay opening them");
}

/* The dispatch SIGSYS: the program (or libc for it) made a system call while a window was open.
 * The call has not run; the window is closed and the call is made again, natively, from where it
 * was. Any other SIGSYS (kill, a seccomp trap) closes the window and is raised again, for its
 * default action, which the window checked SIGSYS had. */
static void pb_fuse_sigsys(int sig, siginfo_t *si, void *context)
{
    (void)sig;
    int saved_errno = errno;
    if (pb_fw.open) {
        pb_fuse_close(1);
    } else {
        /* dispatch on without a window: cannot happen in one thread (nothing traps between the
         * prctl and the flag); switched off all the same, or the call would trap for ever */
        pb_fuse_dispatch_off();
    }
    if (si->si_code == SYS_USER_DISPATCH) {
        greg_t *g = ((ucontext_t *)context)->uc_mcontext.gregs;
        g[REG_RIP] -= 2; /* syscall, int $0x80 and sysenter are two bytes */
        g[REG_RAX] = si->si_syscall;
    } else {
        /* pending now, delivered with the default action once this handler returns */
        pb_raw_syscall6(SYS_tgkill, pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0),
                        pb_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0), SIGSYS, 0, 0, 0);
    }
    errno = saved_errno;
}

static const char *pb_fuse_try_open_checked(int fd);

/* Why a window cannot be opened on fd now, or 0 when it is open. The checks that cost nothing
 * come first; a site whose fd keeps failing the ones that ask the kernel (a pipe, a socket, a
 * file elsewhere) would pay them on every lseek, so fusion turns off after PB_FUSE_STRIKES such
 * failures more than windows opened. */
static const char *pb_fuse_try_open(int fd)
{
    if (pb_fuse_off)
        return pb_fuse_off_why;
    const char *cheap = !pb_fuse_single_threaded() ? "the process has threads (or a cancellation)"
                        : pb_executors_stopped ? "a seccomp filter"
                        : pb_sigmask_program_has_handlers()
                            ? "the program has signal handlers (or privbox no longer follows them)" : 0;
    if (cheap) {
        /* threads do not go away, handlers seldom do: a process that never gets a window stops
         * paying for the question */
        if (++pb_fuse_declined >= PB_FUSE_DECLINES && !pb_fuse_windows)
            pb_fuse_turn_off(cheap);
        return cheap;
    }
    const char *why = pb_fuse_try_open_checked(fd);
    if (why && ++pb_fuse_refused_by_kernel >= pb_fuse_windows + PB_FUSE_STRIKES)
        pb_fuse_turn_off("the fds its sites seek on cannot be fused (not regular files on a known filesystem)");
    return why;
}

static const char *pb_fuse_try_open_checked(int fd)
{
    int pid = (int)pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    if (*pb_fuse_owner == 0)
        *pb_fuse_owner = pid; /* a fork child: its page was wiped */
    else if (*pb_fuse_owner != pid)
        return "a vfork child";
    struct stat st;
    if (pb_raw_syscall6(SYS_fstat, fd, (long)&st, 0, 0, 0, 0) != 0 || !S_ISREG(st.st_mode))
        return "not a regular file";
    struct statfs sf;
    if (pb_raw_syscall6(SYS_fstatfs, fd, (long)&sf, 0, 0, 0, 0) != 0)
        return "fstatfs failed";
    int known = 0;
    for (size_t i = 0; i < sizeof pb_fuse_fs_types / sizeof pb_fuse_fs_types[0]; i++)
        known |= (uint32_t)sf.f_type == pb_fuse_fs_types[i];
    if (!known)
        return "a filesystem whose lseek is not known to be vfs_setpos";
    long cur = pb_raw_syscall6(SYS_lseek, fd, 0, SEEK_CUR, 0, 0, 0);
    if (cur < 0)
        return "the fd cannot seek (O_PATH?)";
    uint64_t mask = 0;
    pb_raw_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&mask, 8, 0, 0);
    if (mask & (1ull << (SIGSYS - 1)))
        return "SIGSYS is blocked";
    struct pb_kernel_sigaction mine = {0};
    mine.handler = (void *)pb_fuse_sigsys;
    mine.flags = SA_SIGINFO | SA_RESTORER;
    mine.restorer = pb_own_text_restorer; /* in the allowed region */
    mine.mask = ~0ull;
    if (pb_raw_syscall6(SYS_rt_sigaction, SIGSYS, (long)&mine, (long)&pb_fw.saved_sigsys, 8, 0, 0) != 0)
        return "SIGSYS's action cannot be set";
    if (pb_fw.saved_sigsys.handler != (void *)SIG_DFL) {
        pb_fuse_sigsys_restore();
        pb_fuse_turn_off("the program has an action for SIGSYS");
        return pb_fuse_off_why;
    }
    if (pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
                        (long)pb_fuse_region_start, (long)pb_fuse_region_len, 0, 0) != 0) {
        pb_fuse_sigsys_restore();
        pb_fuse_turn_off("Syscall User Dispatch was refused");
        return pb_fuse_off_why;
    }
    pb_fw.fd = fd;
    pb_fw.pos = pb_fw.kernel_pos = cur;
    pb_fw.limit = st.st_size > cur ? st.st_size : cur;
    pb_fw.fused = 0;
    pb_fw.open = 1;
    pb_fuse_windows++;
    return 0;
}

/* Closes an open window before privbox itself makes a system call from its own code (which
 * dispatch lets through) that changes or looks at what the window defers: a raw vfork (the child
 * runs without dispatch and shares the file description), a signal-mask change made for the
 * program (a mask that blocks SIGSYS would turn the next trap into a kill), the handler table's
 * lock (which blocks SIGSYS), a log line (stderr may be a dup of the fd). */
void pb_fuse_flush(void)
{
    if (pb_fw.open)
        pb_fuse_close(0);
}

/* lseek at a fusion site: 1 and *out when served, 0 to go to the kernel. */
int pb_fuse_lseek(int fd, off_t off, int whence, off_t *out)
{
    if (pb_fw.open && pb_fw.fd == fd) {
        if (whence == SEEK_CUR && off == 0) {
            *out = pb_fw.pos;
            return 1;
        }
        if (whence == SEEK_SET && off >= 0 && off <= pb_fw.limit && pb_fuse_single_threaded()) {
            pb_fw.pos = off;
            pb_fw.fused++;
            pb_fuse_pairs++;
            *out = off;
            return 1;
        }
        pb_fuse_close(0); /* then the kernel, which sees the program's offset */
        return 0;
    }
    if (whence != SEEK_SET || off < 0)
        return 0;
    if (pb_fw.open)
        pb_fuse_close(0); /* another fd: one window at a time */
    if (pb_fuse_try_open(fd)) {
        pb_fuse_not_opened++;
        return 0;
    }
    if (off > pb_fw.limit) {
        pb_fuse_close(0);
        return 0;
    }
    pb_fw.pos = off;
    *out = off;
    return 1;
}

/* read at a fusion site: 1 and *out when served (a pread at the window's offset), 0 to go to the
 * kernel (no window for this fd: nothing is deferred, the kernel's offset is the program's). */
int pb_fuse_read(int fd, void *buf, size_t n, ssize_t *out)
{
    if (!pb_fw.open)
        return 0;
    if (pb_fw.fd != fd) {
        pb_fuse_close(0); /* the read below would trap and close it anyway, at a signal's cost */
        return 0;
    }
    if (!pb_fuse_single_threaded()) { /* pthread_cancel(pthread_self()): read is a cancellation point */
        pb_fuse_close(0);
        return 0;
    }
    long r = pb_raw_syscall6(SYS_pread64, fd, (long)buf, (long)n, pb_fw.pos, 0, 0);
    if (r >= 0)
        pb_fw.pos += r;
    pb_fuse_reads++;
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        r = -1;
    }
    *out = r;
    return 1;
}

static void pb_fuse_report(void)
{
    if (!pb_fuse_windows && !pb_fuse_not_opened)
        return;
    pb_log(PB_LOG_INFO,
           "fusion: %llu window%s (%llu closed by a trapped call), %llu lseek%s deferred, %llu "
           "read%s made as pread, %llu short window%s; %llu lseek%s not fused%s%s",
           (unsigned long long)pb_fuse_windows, pb_fuse_windows == 1 ? "" : "s",
           (unsigned long long)pb_fuse_closed_by_trap, (unsigned long long)pb_fuse_pairs,
           pb_fuse_pairs == 1 ? "" : "s", (unsigned long long)pb_fuse_reads,
           pb_fuse_reads == 1 ? "" : "s", (unsigned long long)pb_fuse_short_windows,
           pb_fuse_short_windows == 1 ? "" : "s", (unsigned long long)pb_fuse_not_opened,
           pb_fuse_not_opened == 1 ? "" : "s", pb_fuse_off ? "; off: " : "",
           pb_fuse_off ? pb_fuse_off_why : "");
}

static const char *pb_fuse_start(void)
{
    if (pb_kernel_gate_address())
        return "the kernel gate's boxes make system calls dispatch does not see";
    if (pb_own_text(&pb_fuse_region_start, &pb_fuse_region_len) != 0)
        return "libprivbox.so's code segment was not found";
    /* Under a seccomp filter (inherited: one the program installs stops every executor) the
     * pread, fstatfs, prctl and rt_sigaction fusion adds might be refused or kill. */
    if (pb_raw_syscall6(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0, 0) != 0)
        return "a seccomp filter is in force";
    /* Is dispatch there? Switched on and off only while SIGSYS is at its default: a program that
     * takes SIGSYS may be using dispatch itself (windows are never opened for it either). */
    struct pb_kernel_sigaction cur;
    if (pb_raw_syscall6(SYS_rt_sigaction, SIGSYS, 0, (long)&cur, 8, 0, 0) != 0 ||
        cur.handler != (void *)SIG_DFL)
        return "the program has an action for SIGSYS";
    long r = pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
                             (long)pb_fuse_region_start, (long)pb_fuse_region_len, 0, 0);
    if (r != 0)
        return "this kernel has no Syscall User Dispatch";
    pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0, 0);
    if (!pb_exec_ready(PB_EXEC_SIGMASK))
        return "the signal-mask executor, which keeps the record of handlers, cannot run";
    void *page = (void *)pb_raw_syscall6(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((unsigned long)page > -4096ul ||
        pb_raw_syscall6(SYS_madvise, (long)page, 4096, MADV_WIPEONFORK, 0, 0, 0) != 0)
        return "no MADV_WIPEONFORK page";
    pb_fuse_owner = page;
    *pb_fuse_owner = (int)pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    return 0;
}

static int pb_fuse_serves(unsigned nr) { return nr == SYS_lseek || nr == SYS_read; }

/* Whether the sites being routed include an lseek: the read routes only serve what the lseek
 * routes deferred, so without one a read site is not routed (and fusion, with the signal-mask
 * tracking it relies on, not started). */
static int pb_fuse_lseek_planned;
static void pb_fuse_plan_sees(unsigned nr) { pb_fuse_lseek_planned |= nr == SYS_lseek; }
static int pb_fuse_plan_takes(unsigned nr) { return nr != SYS_read || pb_fuse_lseek_planned; }

/* The read routes without an lseek route on would only add a route lookup to every read
 * (Redis's, say). */
static const char *pb_fuse_keeps_routes(const uint64_t *routed_nrs)
{
    return pb_nr_set_has(routed_nrs, SYS_lseek) ? 0 : "fusion has no lseek site to serve with it";
}

/* Calibration (`privbox doctor`, a multi-threaded process where no window opens): what a fused
 * pair costs once its window is open — the pread, with dispatch on, so through the kernel's slower
 * entry (the whole address space allowed, so nothing can trap) — against the pair it replaces,
 * with dispatch off, on a memfd. The windows' own cost is not in it: PB_FUSE_SHORT covers that. */
static int pb_fuse_calibration_dispatch;
static void pb_fuse_calibration_set_dispatch(int on)
{
    if (pb_fuse_calibration_dispatch == on)
        return;
    pb_fuse_calibration_dispatch = on;
    if (on)
        pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0,
                        (long)(~0ul >> 1), 0, 0);
    else
        pb_raw_syscall6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0, 0);
}
static int pb_fuse_calibration_fd(void)
{
    static int fd = -1;
    if (fd < 0) {
        fd = (int)pb_raw_syscall6(SYS_memfd_create, (long)"privbox-calibration", 0, 0, 0, 0, 0);
        char byte = 1;
        pb_raw_syscall6(SYS_write, fd, (long)&byte, 1, 0, 0, 0);
    }
    return fd;
}
static void pb_fuse_served_once(void)
{
    char byte;
    pb_fuse_calibration_set_dispatch(1);
    pb_raw_syscall6(SYS_pread64, pb_fuse_calibration_fd(), (long)&byte, 1, 0, 0, 0);
}
static void pb_fuse_native_once(void)
{
    char byte;
    int fd = pb_fuse_calibration_fd();
    pb_fuse_calibration_set_dispatch(0);
    pb_raw_syscall6(SYS_lseek, fd, 0, SEEK_SET, 0, 0, 0);
    pb_raw_syscall6(SYS_read, fd, (long)&byte, 1, 0, 0, 0);
}

const struct pb_executor pb_exec_fusion = {
    .name = "fusion",
    .summary = "lseek(SEEK_SET) deferred and the reads after it made as pread, the kernel's "
               "offset brought up to date before any other system call (Syscall User Dispatch)",
    .serves = pb_fuse_serves,
    .start = pb_fuse_start,
    .served_once = pb_fuse_served_once,
    .native_once = pb_fuse_native_once,
    .plan_sees = pb_fuse_plan_sees,
    .plan_takes = pb_fuse_plan_takes,
    .keeps_routes = pb_fuse_keeps_routes,
    .report = pb_fuse_report,
    .route_off_note = "off (no fused lseek site, or fusion turned off: see its line)",
};
