/*
 * interpose.c — the libc system-call wrappers libprivbox.so exports.
 *
 * Every wrapper forwards to the next definition of the same symbol (libc's, found with
 * dlsym(RTLD_NEXT)), so return values, errno, cancellation points (the real wrapper is the
 * cancellation point) and variadic ABIs are libc's own. When the mode is off the wrapper is a
 * jump (see PB_FAST_STUB). When counting, it records (return address, syscall number) in the
 * calling thread's table (pb_begin) and, for most calls, tail-calls libc so that libc returns
 * straight to the program; about one call in PB_TIME_ONE_IN (8, profile/counting.h) arms the timer —
 * its return is stamped — and the thread's next call is then followed to its end to time it
 * (pb_end, see profile/counting.c). Neither changes errno, so the program sees exactly what libc set.
 *
 * The syscall number recorded is the one glibc 2.36 issues on x86-64 for that wrapper (checked
 * with strace by Tests/IntegrationTests: e.g. open -> openat, stat/fstat -> newfstatat,
 * nanosleep -> clock_nanosleep, send -> sendto, select -> pselect6). sched_getcpu and getcpu are
 * not wrapped: glibc answers them from rseq and the vDSO without entering the kernel, faster than
 * any wrapper could (a wrapper cost 0.6 ns more in off mode and 8 ns more in profile mode on a
 * 3.4 ns call).
 */
#include "sys/attributes.h"
#include "sys/entry_stub.h"
#include "sys/log.h"
#include "sys/process.h"
#include "sys/symbols.h"
#include "profile/counting.h"
#include "wrappers/wrappers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>



/*
 * The fixed-arity wrappers: X(return type, name, syscall nr, failure test, (params), (args)).
 */
#define PB_WRAPPERS(X)                                                                              \
    X(ssize_t, write, SYS_write, PB_NEG1, (int fd, const void *buf, size_t n), (fd, buf, n))          \
    X(ssize_t, pread, SYS_pread64, PB_NEG1, (int fd, void *buf, size_t n, off_t o), (fd, buf, n, o))  \
    X(ssize_t, pread64, SYS_pread64, PB_NEG1, (int fd, void *buf, size_t n, off64_t o),               \
      (fd, buf, n, o))                                                                              \
    X(ssize_t, pwrite, SYS_pwrite64, PB_NEG1, (int fd, const void *buf, size_t n, off_t o),           \
      (fd, buf, n, o))                                                                              \
    X(ssize_t, pwrite64, SYS_pwrite64, PB_NEG1, (int fd, const void *buf, size_t n, off64_t o),       \
      (fd, buf, n, o))                                                                              \
    X(ssize_t, readv, SYS_readv, PB_NEG1, (int fd, const struct iovec *v, int c), (fd, v, c))         \
    X(ssize_t, writev, SYS_writev, PB_NEG1, (int fd, const struct iovec *v, int c), (fd, v, c))       \
    X(ssize_t, preadv, SYS_preadv, PB_NEG1, (int fd, const struct iovec *v, int c, off_t o),          \
      (fd, v, c, o))                                                                                \
    X(ssize_t, preadv64, SYS_preadv, PB_NEG1, (int fd, const struct iovec *v, int c, off64_t o),      \
      (fd, v, c, o))                                                                                \
    X(ssize_t, pwritev, SYS_pwritev, PB_NEG1, (int fd, const struct iovec *v, int c, off_t o),        \
      (fd, v, c, o))                                                                                \
    X(ssize_t, pwritev64, SYS_pwritev, PB_NEG1, (int fd, const struct iovec *v, int c, off64_t o),    \
      (fd, v, c, o))                                                                                \
    X(ssize_t, preadv2, SYS_preadv2, PB_NEG1,                                                         \
      (int fd, const struct iovec *v, int c, off_t o, int f), (fd, v, c, o, f))                     \
    X(ssize_t, pwritev2, SYS_pwritev2, PB_NEG1,                                                       \
      (int fd, const struct iovec *v, int c, off_t o, int f), (fd, v, c, o, f))                     \
    X(ssize_t, recv, SYS_recvfrom, PB_NEG1, (int fd, void *buf, size_t n, int fl), (fd, buf, n, fl))  \
    X(ssize_t, recvfrom, SYS_recvfrom, PB_NEG1,                                                       \
      (int fd, void *restrict buf, size_t n, int fl, __SOCKADDR_ARG a, socklen_t *restrict al),     \
      (fd, buf, n, fl, a, al))                                                                      \
    X(ssize_t, recvmsg, SYS_recvmsg, PB_NEG1, (int fd, struct msghdr *m, int fl), (fd, m, fl))        \
    X(int, recvmmsg, SYS_recvmmsg, PB_NEG1,                                                           \
      (int fd, struct mmsghdr *v, unsigned int n, int fl, struct timespec *t), (fd, v, n, fl, t))   \
    X(ssize_t, send, SYS_sendto, PB_NEG1, (int fd, const void *buf, size_t n, int fl),                \
      (fd, buf, n, fl))                                                                             \
    X(ssize_t, sendto, SYS_sendto, PB_NEG1,                                                           \
      (int fd, const void *buf, size_t n, int fl, __CONST_SOCKADDR_ARG a, socklen_t al),            \
      (fd, buf, n, fl, a, al))                                                                      \
    X(ssize_t, sendmsg, SYS_sendmsg, PB_NEG1, (int fd, const struct msghdr *m, int fl), (fd, m, fl))  \
    X(int, sendmmsg, SYS_sendmmsg, PB_NEG1, (int fd, struct mmsghdr *v, unsigned int n, int fl),      \
      (fd, v, n, fl))                                                                               \
    X(int, accept, SYS_accept, PB_NEG1, (int fd, __SOCKADDR_ARG a, socklen_t *restrict al),           \
      (fd, a, al))                                                                                  \
    X(int, accept4, SYS_accept4, PB_NEG1,                                                             \
      (int fd, __SOCKADDR_ARG a, socklen_t *restrict al, int fl), (fd, a, al, fl))                  \
    X(int, connect, SYS_connect, PB_NEG1, (int fd, __CONST_SOCKADDR_ARG a, socklen_t al),             \
      (fd, a, al))                                                                                  \
    X(int, bind, SYS_bind, PB_NEG1, (int fd, __CONST_SOCKADDR_ARG a, socklen_t al), (fd, a, al))      \
    X(int, listen, SYS_listen, PB_NEG1, (int fd, int n), (fd, n))                                     \
    X(int, socket, SYS_socket, PB_NEG1, (int d, int t, int p), (d, t, p))                             \
    X(int, socketpair, SYS_socketpair, PB_NEG1, (int d, int t, int p, int sv[2]), (d, t, p, sv))      \
    X(int, shutdown, SYS_shutdown, PB_NEG1, (int fd, int how), (fd, how))                             \
    X(int, getsockopt, SYS_getsockopt, PB_NEG1,                                                       \
      (int fd, int l, int o, void *restrict v, socklen_t *restrict n), (fd, l, o, v, n))            \
    X(int, setsockopt, SYS_setsockopt, PB_NEG1, (int fd, int l, int o, const void *v, socklen_t n),   \
      (fd, l, o, v, n))                                                                             \
    X(int, getsockname, SYS_getsockname, PB_NEG1,                                                     \
      (int fd, __SOCKADDR_ARG a, socklen_t *restrict al), (fd, a, al))                              \
    X(int, getpeername, SYS_getpeername, PB_NEG1,                                                     \
      (int fd, __SOCKADDR_ARG a, socklen_t *restrict al), (fd, a, al))                              \
    X(int, epoll_wait, SYS_epoll_wait, PB_NEG1, (int fd, struct epoll_event *e, int n, int t),        \
      (fd, e, n, t))                                                                                \
    X(int, epoll_pwait, SYS_epoll_pwait, PB_NEG1,                                                     \
      (int fd, struct epoll_event *e, int n, int t, const sigset_t *s), (fd, e, n, t, s))           \
    X(int, epoll_ctl, SYS_epoll_ctl, PB_NEG1, (int fd, int op, int t, struct epoll_event *e),         \
      (fd, op, t, e))                                                                               \
    X(int, epoll_create, SYS_epoll_create, PB_NEG1, (int n), (n))                                     \
    X(int, epoll_create1, SYS_epoll_create1, PB_NEG1, (int fl), (fl))                                 \
    X(int, poll, SYS_poll, PB_NEG1, (struct pollfd *f, nfds_t n, int t), (f, n, t))                   \
    X(int, ppoll, SYS_ppoll, PB_NEG1,                                                                 \
      (struct pollfd *f, nfds_t n, const struct timespec *t, const sigset_t *s), (f, n, t, s))      \
    X(int, select, SYS_pselect6, PB_NEG1,                                                               \
      (int n, fd_set *restrict r_, fd_set *restrict w, fd_set *restrict e,                          \
       struct timeval *restrict t),                                                                 \
      (n, r_, w, e, t))                                                                             \
    X(int, pselect, SYS_pselect6, PB_NEG1,                                                            \
      (int n, fd_set *restrict r_, fd_set *restrict w, fd_set *restrict e,                          \
       const struct timespec *restrict t, const sigset_t *restrict s),                              \
      (n, r_, w, e, t, s))                                                                          \
    X(int, creat, SYS_openat, PB_NEG1, (const char *p, mode_t m), (p, m))                             \
    X(int, creat64, SYS_openat, PB_NEG1, (const char *p, mode_t m), (p, m))                           \
    X(int, close, SYS_close, PB_NEG1, (int fd), (fd))                                                 \
    X(int, close_range, SYS_close_range, PB_NEG1, (unsigned int a, unsigned int b, int fl),           \
      (a, b, fl))                                                                                   \
    X(int, fstat, SYS_newfstatat, PB_NEG1, (int fd, struct stat *b), (fd, b))                         \
    X(int, fstat64, SYS_newfstatat, PB_NEG1, (int fd, struct stat64 *b), (fd, b))                     \
    X(int, stat, SYS_newfstatat, PB_NEG1, (const char *restrict p, struct stat *restrict b), (p, b))  \
    X(int, stat64, SYS_newfstatat, PB_NEG1, (const char *restrict p, struct stat64 *restrict b),      \
      (p, b))                                                                                       \
    X(int, lstat, SYS_newfstatat, PB_NEG1, (const char *restrict p, struct stat *restrict b), (p, b)) \
    X(int, lstat64, SYS_newfstatat, PB_NEG1, (const char *restrict p, struct stat64 *restrict b),     \
      (p, b))                                                                                       \
    X(int, fstatat, SYS_newfstatat, PB_NEG1,                                                          \
      (int fd, const char *restrict p, struct stat *restrict b, int fl), (fd, p, b, fl))            \
    X(int, fstatat64, SYS_newfstatat, PB_NEG1,                                                        \
      (int fd, const char *restrict p, struct stat64 *restrict b, int fl), (fd, p, b, fl))          \
    X(int, statx, SYS_statx, PB_NEG1,                                                                 \
      (int fd, const char *restrict p, int fl, unsigned int m, struct statx *restrict b),           \
      (fd, p, fl, m, b))                                                                            \
    X(int, statfs, SYS_statfs, PB_NEG1, (const char *p, struct statfs *b), (p, b))                    \
    X(int, fstatfs, SYS_fstatfs, PB_NEG1, (int fd, struct statfs *b), (fd, b))                        \
    X(int, fsync, SYS_fsync, PB_NEG1, (int fd), (fd))                                                 \
    X(int, fdatasync, SYS_fdatasync, PB_NEG1, (int fd), (fd))                                         \
    X(int, ftruncate, SYS_ftruncate, PB_NEG1, (int fd, off_t l), (fd, l))                             \
    X(int, ftruncate64, SYS_ftruncate, PB_NEG1, (int fd, off64_t l), (fd, l))                         \
    X(int, truncate, SYS_truncate, PB_NEG1, (const char *p, off_t l), (p, l))                         \
    X(int, fallocate, SYS_fallocate, PB_NEG1, (int fd, int m, off_t o, off_t l), (fd, m, o, l))       \
    X(int, posix_fadvise, SYS_fadvise64, PB_ERRNUM, (int fd, off_t o, off_t l, int a), (fd, o, l, a)) \
    X(int, sync_file_range, SYS_sync_file_range, PB_NEG1,                                             \
      (int fd, off64_t o, off64_t n, unsigned int fl), (fd, o, n, fl))                              \
    X(int, flock, SYS_flock, PB_NEG1, (int fd, int op), (fd, op))                                     \
    X(int, dup, SYS_dup, PB_NEG1, (int fd), (fd))                                                     \
    X(int, dup2, SYS_dup2, PB_NEG1, (int a, int b), (a, b))                                           \
    X(int, dup3, SYS_dup3, PB_NEG1, (int a, int b, int fl), (a, b, fl))                               \
    X(int, pipe, SYS_pipe2, PB_NEG1, (int fds[2]), (fds))                                             \
    X(int, pipe2, SYS_pipe2, PB_NEG1, (int fds[2], int fl), (fds, fl))                                \
    X(int, access, SYS_access, PB_NEG1, (const char *p, int m), (p, m))                               \
    X(int, faccessat, SYS_faccessat2, PB_NEG1, (int fd, const char *p, int m, int fl),                \
      (fd, p, m, fl))                                                                               \
    X(int, unlink, SYS_unlink, PB_NEG1, (const char *p), (p))                                         \
    X(int, unlinkat, SYS_unlinkat, PB_NEG1, (int fd, const char *p, int fl), (fd, p, fl))             \
    X(int, rename, SYS_rename, PB_NEG1, (const char *a, const char *b), (a, b))                       \
    X(int, renameat, SYS_renameat, PB_NEG1, (int fa, const char *a, int fb, const char *b),           \
      (fa, a, fb, b))                                                                               \
    X(int, mkdir, SYS_mkdir, PB_NEG1, (const char *p, mode_t m), (p, m))                              \
    X(int, mkdirat, SYS_mkdirat, PB_NEG1, (int fd, const char *p, mode_t m), (fd, p, m))              \
    X(int, rmdir, SYS_rmdir, PB_NEG1, (const char *p), (p))                                           \
    X(ssize_t, readlink, SYS_readlink, PB_NEG1, (const char *restrict p, char *restrict b, size_t n), \
      (p, b, n))                                                                                    \
    X(ssize_t, readlinkat, SYS_readlinkat, PB_NEG1,                                                   \
      (int fd, const char *restrict p, char *restrict b, size_t n), (fd, p, b, n))                  \
    X(int, chdir, SYS_chdir, PB_NEG1, (const char *p), (p))                                           \
    X(int, fchdir, SYS_fchdir, PB_NEG1, (int fd), (fd))                                               \
    X(int, fchmod, SYS_fchmod, PB_NEG1, (int fd, mode_t m), (fd, m))                                  \
    X(int, fchown, SYS_fchown, PB_NEG1, (int fd, uid_t u, gid_t g), (fd, u, g))                       \
    X(char *, getcwd, SYS_getcwd, PB_NULL, (char *b, size_t n), (b, n))                               \
    X(ssize_t, getdents64, SYS_getdents64, PB_NEG1, (int fd, void *b, size_t n), (fd, b, n))          \
    X(ssize_t, sendfile, SYS_sendfile, PB_NEG1, (int o, int i, off_t *off, size_t n),                 \
      (o, i, off, n))                                                                               \
    X(ssize_t, splice, SYS_splice, PB_NEG1,                                                           \
      (int a, off64_t *ao, int b, off64_t *bo, size_t n, unsigned int fl), (a, ao, b, bo, n, fl))   \
    X(ssize_t, copy_file_range, SYS_copy_file_range, PB_NEG1,                                         \
      (int a, off64_t *ao, int b, off64_t *bo, size_t n, unsigned int fl), (a, ao, b, bo, n, fl))   \
    X(void *, mmap, SYS_mmap, PB_MAPFAIL, (void *a, size_t n, int p, int f, int fd, off_t o),         \
      (a, n, p, f, fd, o))                                                                          \
    X(void *, mmap64, SYS_mmap, PB_MAPFAIL, (void *a, size_t n, int p, int f, int fd, off64_t o),     \
      (a, n, p, f, fd, o))                                                                          \
    X(int, munmap, SYS_munmap, PB_NEG1, (void *a, size_t n), (a, n))                                  \
    X(int, mprotect, SYS_mprotect, PB_NEG1, (void *a, size_t n, int p), (a, n, p))                    \
    X(int, madvise, SYS_madvise, PB_NEG1, (void *a, size_t n, int adv), (a, n, adv))                  \
    X(int, msync, SYS_msync, PB_NEG1, (void *a, size_t n, int fl), (a, n, fl))                        \
    X(int, eventfd, SYS_eventfd2, PB_NEG1, (unsigned int v, int fl), (v, fl))                         \
    X(int, timerfd_create, SYS_timerfd_create, PB_NEG1, (clockid_t c, int fl), (c, fl))               \
    X(int, timerfd_settime, SYS_timerfd_settime, PB_NEG1,                                             \
      (int fd, int fl, const struct itimerspec *n, struct itimerspec *o), (fd, fl, n, o))           \
    X(int, timerfd_gettime, SYS_timerfd_gettime, PB_NEG1, (int fd, struct itimerspec *c), (fd, c))    \
    X(int, signalfd, SYS_signalfd4, PB_NEG1, (int fd, const sigset_t *m, int fl), (fd, m, fl))        \
    X(pid_t, getppid, SYS_getppid, PB_NEVER, (void), ())                                              \
    X(int, sched_yield, SYS_sched_yield, PB_NEG1, (void), ())                                         \
    X(int, sigsuspend, SYS_rt_sigsuspend, PB_NEG1, (const sigset_t *s), (s))                          \
    X(int, sigtimedwait, SYS_rt_sigtimedwait, PB_NEG1,                                                \
      (const sigset_t *restrict s, siginfo_t *restrict i, const struct timespec *restrict t),       \
      (s, i, t))                                                                                    \
    X(int, sigwaitinfo, SYS_rt_sigtimedwait, PB_NEG1,                                                 \
      (const sigset_t *restrict s, siginfo_t *restrict i), (s, i))                                  \
    X(int, kill, SYS_kill, PB_NEG1, (pid_t p, int s), (p, s))                                         \
    X(int, tgkill, SYS_tgkill, PB_NEG1, (pid_t g, pid_t t, int s), (g, t, s))                         \
    X(int, nanosleep, SYS_clock_nanosleep, PB_NEG1,                                                   \
      (const struct timespec *r_, struct timespec *rem), (r_, rem))                                 \
    X(int, clock_nanosleep, SYS_clock_nanosleep, PB_ERRNUM,                                           \
      (clockid_t c, int fl, const struct timespec *r_, struct timespec *rem), (c, fl, r_, rem))     \
    X(pid_t, wait4, SYS_wait4, PB_NEG1, (pid_t p, int *s, int o, struct rusage *u), (p, s, o, u))     \
    X(pid_t, waitpid, SYS_wait4, PB_NEG1, (pid_t p, int *s, int o), (p, s, o))                        \
    X(int, waitid, SYS_waitid, PB_NEG1, (idtype_t t, id_t id, siginfo_t *i, int o), (t, id, i, o))

#define PB_DECLARE_REAL(ret, name, nr, failed, params, args) \
    __attribute__((used)) PB_HIDDEN __typeof__(name) *pb_real_##name;
PB_WRAPPERS(PB_DECLARE_REAL)



/*
 * Each fixed-arity wrapper is two pieces:
 *  - the exported symbol, a six-instruction assembly stub: if privbox is not counting and the
 *    real function is resolved, it jumps straight to libc's function (no stack frame, no saved
 *    register: pass-through costs two loads, two tests and an indirect jump);
 *  - otherwise it *jumps* to pb_slow_NAME, a C function with the same signature. Because the stub
 *    jumped rather than called, __builtin_return_address(0) in pb_slow_NAME is the program's own
 *    return address: the call site.
 * The stub may clobber %rax: it is not an argument register for these non-variadic functions.
 * (The variadic wrappers further down are plain C, because %al carries the number of vector
 * registers used by a variadic call.)
 */
#define PB_FAST_STUB(name) PB_ENTRY_STUB(name, "pb_counting")

#define PB_DEFINE_WRAPPER(ret, name, nr, failed, params, args)                                      \
    PB_FAST_STUB(name)                                                                              \
    __attribute__((used, noinline)) PB_HIDDEN ret pb_slow_##name params;                            \
    ret pb_slow_##name params                                                                       \
    {                                                                                               \
        PB_RESOLVE(name);                                                                           \
        PB_COUNTED(ret, nr, failed, pb_real_##name args);                                           \
    }
PB_WRAPPERS(PB_DEFINE_WRAPPER)

/* ---- variadic wrappers ------------------------------------------------------------------------
 * libc's own implementations read the optional argument only when the flags say it is there
 * (open's mode with O_CREAT/O_TMPFILE) or unconditionally as a pointer-sized value (fcntl, ioctl,
 * syscall). The wrappers read exactly what libc reads and pass it on unchanged.
 */
static int (*pb_real_open)(const char *, int, ...);
static int (*pb_real_open64)(const char *, int, ...);
static int (*pb_real_openat)(int, const char *, int, ...);
static int (*pb_real_openat64)(int, const char *, int, ...);
static int (*pb_real_fcntl)(int, int, ...);
static int (*pb_real_fcntl64)(int, int, ...);
static int (*pb_real_ioctl)(int, unsigned long, ...);
static pid_t (*pb_real_fork)(void);
static pid_t (*pb_real__Fork)(void);
static void (*pb_real_closefrom)(int);
/* Used by vfork.S, which must not create a stack frame (see there). */
void *pb_real_vfork PB_HIDDEN;

static inline int pb_open_has_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}



#define PB_OPEN_BODY(name, call_with_mode, call_without_mode)                                       \
    PB_RESOLVE(name);                                                                               \
    if (pb_open_has_mode(flags)) {                                                                  \
        va_list ap;                                                                                 \
        va_start(ap, flags);                                                                        \
        mode_t mode = va_arg(ap, mode_t);                                                           \
        va_end(ap);                                                                                 \
        PB_COUNTED(int, SYS_openat, PB_NEG1, call_with_mode);                                       \
    }                                                                                               \
    PB_COUNTED(int, SYS_openat, PB_NEG1, call_without_mode)

PB_EXPORT int open(const char *path, int flags, ...)
{
    PB_OPEN_BODY(open, pb_real_open(path, flags, mode), pb_real_open(path, flags));
}

PB_EXPORT int open64(const char *path, int flags, ...)
{
    PB_OPEN_BODY(open64, pb_real_open64(path, flags, mode), pb_real_open64(path, flags));
}

PB_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    PB_OPEN_BODY(openat, pb_real_openat(dirfd, path, flags, mode),
                 pb_real_openat(dirfd, path, flags));
}

PB_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    PB_OPEN_BODY(openat64, pb_real_openat64(dirfd, path, flags, mode),
                 pb_real_openat64(dirfd, path, flags));
}

#define PB_ONE_ARG(last, type, var)                                                                 \
    va_list ap;                                                                                     \
    va_start(ap, last);                                                                             \
    type var = va_arg(ap, type);                                                                    \
    va_end(ap)

PB_EXPORT int fcntl(int fd, int cmd, ...)
{
    PB_RESOLVE(fcntl);
    PB_ONE_ARG(cmd, void *, arg);
    PB_COUNTED(int, SYS_fcntl, PB_NEG1, pb_real_fcntl(fd, cmd, arg));
}

PB_EXPORT int fcntl64(int fd, int cmd, ...)
{
    PB_RESOLVE(fcntl64);
    PB_ONE_ARG(cmd, void *, arg);
    PB_COUNTED(int, SYS_fcntl, PB_NEG1, pb_real_fcntl64(fd, cmd, arg));
}

PB_EXPORT int ioctl(int fd, unsigned long request, ...)
{
    PB_RESOLVE(ioctl);
    PB_ONE_ARG(request, void *, arg);
    PB_COUNTED(int, SYS_ioctl, PB_NEG1, pb_real_ioctl(fd, request, arg));
}

/* ---- process creation ------------------------------------------------------------------------ */

/* fork() runs the pthread_atfork child handler registered in runtime.c; _Fork() runs none, so
 * its wrapper resets the child's state itself. Either way the call is counted in the parent only:
 * the child's profile starts empty. The wrappers are ordinary frames: parent and child each
 * return through their own copy of the stack. */
static pid_t pb_forked(pid_t (*real)(void), int run_child_hook, uintptr_t site)
{
    int counting = pb_counting;
    struct pb_call call = {0, 0};
    if (counting)
        call = pb_begin(site, SYS_clone);
    int entered = pb_inline_enter();
    pid_t r = real();
    if (r == 0) {
        if (counting && run_child_hook)
            pb_after_fork_child();
        if (entered)
            pb_inline_leave(SYS_clone);
        return r;
    }
    if (entered)
        pb_inline_leave(SYS_clone);
    if (call.slot)
        pb_end(call, r == -1);
    return r;
}

PB_EXPORT pid_t fork(void)
{
    PB_RESOLVE(fork);
    return pb_forked(pb_real_fork, 0, PB_SITE);
}

PB_EXPORT pid_t _Fork(void)
{
    PB_RESOLVE(_Fork);
    return pb_forked(pb_real__Fork, 1, PB_SITE);
}

PB_EXPORT void closefrom(int lowfd)
{
    PB_RESOLVE(closefrom);
    if (PB_LIKELY(!pb_counting)) {
        pb_real_closefrom(lowfd);
        return;
    }
    struct pb_call call = pb_begin(PB_SITE, SYS_close_range);
    int entered = pb_inline_enter();
    pb_real_closefrom(lowfd);
    if (entered)
        pb_inline_leave(SYS_close_range);
    if (call.slot)
        pb_end(call, 0);
}

#define PB_RESOLVE_ONE(ret, name, nr, failed, params, args) PB_RESOLVE_SOFT(name);

void pb_resolve_all(void)
{
    PB_WRAPPERS(PB_RESOLVE_ONE)
    PB_RESOLVE_SOFT(open);
    PB_RESOLVE_SOFT(open64);
    PB_RESOLVE_SOFT(openat);
    PB_RESOLVE_SOFT(openat64);
    PB_RESOLVE_SOFT(fcntl);
    PB_RESOLVE_SOFT(fcntl64);
    PB_RESOLVE_SOFT(ioctl);
    PB_RESOLVE_SOFT(fork);
    PB_RESOLVE_SOFT(_Fork);
    PB_RESOLVE_SOFT(closefrom);
    if (!pb_real_vfork)
        pb_real_vfork = pb_resolve_soft("vfork");
    pb_resolve_routed();
}

void *pb_vfork_resolve(void) PB_HIDDEN;
void *pb_vfork_resolve(void)
{
    if (!pb_real_vfork)
        pb_real_vfork = pb_resolve("vfork");
    return pb_real_vfork;
}
