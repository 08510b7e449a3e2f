/*
 * wrappers.c — calls every wrapped libc function once in a way that succeeds and once in a way
 * that fails, and prints each return value and errno. Run natively and under every privbox mode:
 * the outputs must be identical, which proves the wrappers return and set errno exactly as libc.
 * Values that legitimately differ between runs (pids, fds of other processes, times) are printed
 * as relations (e.g. "pid>0"), never raw.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(name, expr)                                                                          \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long r_ = (long)(expr);                                                                    \
        printf("%-28s r=%ld errno=%s\n", name, r_, errno ? strerrorname_np(errno) : "0");          \
    } while (0)

/* For calls whose success value varies (fds, pids): print only whether it failed. */
#define CHECKOK(name, expr)                                                                        \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long r_ = (long)(expr);                                                                    \
        printf("%-28s %s errno=%s\n", name, r_ >= 0 ? "ok" : "fail", errno ? strerrorname_np(errno) : "0"); \
    } while (0)

static char dir[256];

static const char *path(const char *leaf)
{
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, leaf);
    return buf[i];
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/privbox-wrappers.XXXXXX");
    if (!mkdtemp(dir)) return 2;
    char buf[256];
    struct stat st;
    struct iovec iov = {buf, 8};

    /* files */
    int fd = open(path("a"), O_RDWR | O_CREAT | O_TRUNC, 0640);
    CHECKOK("open creat", fd);
    CHECK("open missing", open(path("missing"), O_RDONLY));
    CHECK("open64 missing", open64(path("missing"), O_RDONLY));
    CHECK("openat missing", openat(AT_FDCWD, path("missing"), O_RDONLY));
    CHECK("openat64 missing", openat64(AT_FDCWD, path("missing"), O_RDONLY));
    CHECK("creat in missing dir", creat(path("no/such"), 0600));
    CHECK("write", write(fd, "hello world\n", 12));
    CHECK("write ebadf", write(-1, "x", 1));
    CHECK("pwrite", pwrite(fd, "HELLO", 5, 0));
    CHECK("pwrite64 einval", pwrite64(fd, "x", 1, -1));
    CHECK("writev", writev(fd, &iov, 1));
    CHECK("pwritev", pwritev(fd, &iov, 1, 3));
    CHECK("pwritev2", pwritev2(fd, &iov, 1, 3, 0));
    CHECK("lseek", lseek(fd, 0, SEEK_SET));
    CHECK("lseek64 einval", lseek64(fd, -5, SEEK_SET));
    CHECK("read", read(fd, buf, 5));
    CHECK("read ebadf", read(-1, buf, 1));
    CHECK("pread", pread(fd, buf, 4, 1));
    CHECK("pread64", pread64(fd, buf, 4, 100));
    CHECK("readv", readv(fd, &iov, 1));
    CHECK("preadv", preadv(fd, &iov, 1, 0));
    CHECK("preadv2", preadv2(fd, &iov, 1, 0, 0));
    CHECK("preadv2 bad flags", preadv2(fd, &iov, 1, 0, 0x7fff0000));
    CHECK("fstat", fstat(fd, &st));
    printf("fstat size=%ld mode=%o\n", (long)st.st_size, st.st_mode & 0777);
    CHECK("stat", stat(path("a"), &st));
    CHECK("stat enoent", stat(path("missing"), &st));
    CHECK("lstat", lstat(path("a"), &st));
    CHECK("fstatat", fstatat(AT_FDCWD, path("a"), &st, 0));
    struct statx sx;
    CHECK("statx", statx(AT_FDCWD, path("a"), 0, STATX_SIZE, &sx));
    printf("statx size=%llu\n", (unsigned long long)sx.stx_size);
    struct statfs sfs;
    CHECK("statfs", statfs(dir, &sfs));
    CHECK("fstatfs ebadf", fstatfs(-1, &sfs));
    CHECK("fcntl getfd", fcntl(fd, F_GETFD));
    CHECK("fcntl setfd", fcntl(fd, F_SETFD, FD_CLOEXEC));
    CHECK("fcntl getfd again", fcntl(fd, F_GETFD));
    CHECK("fcntl getfl", fcntl(fd, F_GETFL) & O_ACCMODE);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    CHECK("fcntl setlk", fcntl(fd, F_SETLK, &lk));
    CHECK("fcntl ebadf", fcntl(-1, F_GETFD));
    CHECK("flock", flock(fd, LOCK_EX));
    CHECK("ioctl enotty", ioctl(fd, TIOCGWINSZ, buf));
    int avail = -1;
    CHECK("ioctl fionread", ioctl(fd, FIONREAD, &avail));
    CHECK("fsync", fsync(fd));
    CHECK("fdatasync", fdatasync(fd));
    CHECK("ftruncate", ftruncate(fd, 4));
    CHECK("truncate enoent", truncate(path("missing"), 0));
    CHECK("fallocate", fallocate(fd, 0, 0, 4096));
    CHECK("posix_fadvise bad", posix_fadvise(fd, 0, 0, 12345));
    CHECK("sync_file_range", sync_file_range(fd, 0, 0, 0));
    CHECK("fchmod", fchmod(fd, 0600));
    CHECK("access", access(path("a"), R_OK));
    CHECK("access enoent", access(path("missing"), R_OK));
    CHECK("faccessat", faccessat(AT_FDCWD, path("a"), W_OK, 0));
    CHECK("mkdir", mkdir(path("d"), 0700));
    CHECK("mkdir eexist", mkdir(path("d"), 0700));
    CHECK("mkdirat", mkdirat(AT_FDCWD, path("d2"), 0700));
    CHECK("rmdir", rmdir(path("d2")));
    CHECK("rename", rename(path("a"), path("b")));
    CHECK("renameat enoent", renameat(AT_FDCWD, path("a"), AT_FDCWD, path("c")));
    CHECK("symlink-free readlink", readlink(path("b"), buf, sizeof buf));
    CHECK("readlinkat", readlinkat(AT_FDCWD, "/proc/self/cwd/../../nonexistent", buf, sizeof buf));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECKOK("open dir", dfd);
    CHECK("getdents64 ebadf", getdents64(-1, buf, sizeof buf));
    CHECKOK("getdents64", getdents64(dfd, buf, sizeof buf));
    CHECK("fchdir", fchdir(dfd));
    CHECK("getcwd ok", getcwd(buf, sizeof buf) != NULL);
    CHECK("getcwd erange", getcwd(buf, 1) != NULL);
    CHECK("chdir", chdir("/"));
    CHECK("unlink", unlink(path("b")));
    CHECK("unlinkat dir", unlinkat(AT_FDCWD, path("d"), AT_REMOVEDIR));
    CHECK("fchown same", fchown(fd, (uid_t)-1, (gid_t)-1));

    /* fds */
    int d1 = dup(fd);
    CHECKOK("dup", d1);
    CHECK("dup2 ebadf", dup2(-1, 100));
    CHECK("dup2", dup2(fd, 100));
    CHECK("dup3 einval", dup3(100, 100, 0));
    CHECK("dup3", dup3(fd, 101, O_CLOEXEC));
    CHECK("close", close(101));
    CHECK("close ebadf", close(101));
    CHECK("close_range", close_range(100, 100, 0));
    CHECK("close_range einval", close_range(10, 5, 0));
    int p[2];
    CHECK("pipe", pipe(p));
    CHECK("pipe2 einval", pipe2(p, 0x7fff));
    CHECK("write pipe", write(p[1], "abc", 3));
    struct pollfd pfd = {p[0], POLLIN, 0};
    CHECK("poll", poll(&pfd, 1, 0));
    struct timespec zero = {0, 0};
    CHECK("ppoll", ppoll(&pfd, 1, &zero, NULL));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 0};
    CHECK("select", select(p[0] + 1, &rs, NULL, NULL, &tv));
    CHECK("select einval", select(-1, NULL, NULL, NULL, &tv));
    FD_SET(p[0], &rs);
    CHECK("pselect", pselect(p[0] + 1, &rs, NULL, NULL, &zero, NULL));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECKOK("epoll_create1", ep);
    CHECK("epoll_create einval", epoll_create(0));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7}, out[4];
    CHECK("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    CHECK("epoll_ctl eexist", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    CHECK("epoll_wait", epoll_wait(ep, out, 4, 0));
    printf("epoll data=%llu\n", (unsigned long long)out[0].data.u64);
    CHECK("epoll_pwait", epoll_pwait(ep, out, 4, 0, NULL));
    CHECK("epoll_wait einval", epoll_wait(ep, out, 0, 0));
    CHECK("read pipe", read(p[0], buf, sizeof buf));
    int fl = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    CHECK("read eagain", read(p[0], buf, sizeof buf));
    CHECK("splice", splice(p[0], NULL, p[1], NULL, 1, SPLICE_F_NONBLOCK));
    int src = open("/etc/hostname", O_RDONLY);
    CHECK("sendfile einval", sendfile(-1, src, NULL, 1));
    CHECK("copy_file_range ebadf", copy_file_range(-1, NULL, -1, NULL, 1, 0));
    int efd = eventfd(3, 0);
    CHECKOK("eventfd", efd);
    uint64_t ev64 = 0;
    CHECK("read eventfd", read(efd, &ev64, 8));
    printf("eventfd value=%llu\n", (unsigned long long)ev64);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    CHECKOK("timerfd_create", tfd);
    struct itimerspec its = {{0, 0}, {100, 0}}, old;
    CHECK("timerfd_settime", timerfd_settime(tfd, 0, &its, &old));
    CHECK("timerfd_gettime", timerfd_gettime(tfd, &old));
    CHECK("timerfd_gettime ebadf", timerfd_gettime(-1, &old));
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    int sfd = signalfd(-1, &mask, 0);
    CHECKOK("signalfd", sfd);

    /* sockets */
    int sv[2];
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK("send", send(sv[0], "ping", 4, 0));
    CHECK("recv", recv(sv[1], buf, sizeof buf, 0));
    CHECK("sendto", sendto(sv[0], "pong", 4, 0, NULL, 0));
    CHECK("recvfrom", recvfrom(sv[1], buf, sizeof buf, 0, NULL, NULL));
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK("sendmsg", sendmsg(sv[0], &mh, 0));
    CHECK("recvmsg", recvmsg(sv[1], &mh, 0));
    struct mmsghdr mm = {.msg_hdr = mh};
    CHECK("sendmmsg", sendmmsg(sv[0], &mm, 1, 0));
    CHECK("recvmmsg", recvmmsg(sv[1], &mm, 1, 0, NULL));
    CHECK("recv eagain", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    CHECK("send enotsock", send(fd, "x", 1, 0));
    int opt = 0;
    socklen_t optlen = sizeof opt;
    CHECK("getsockopt", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &opt, &optlen));
    printf("so_type=%d\n", opt);
    CHECK("setsockopt", setsockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE, &opt, sizeof opt));
    struct sockaddr_un sun;
    socklen_t sl = sizeof sun;
    CHECK("getsockname", getsockname(sv[0], (struct sockaddr *)&sun, &sl));
    CHECK("getpeername", getpeername(sv[0], (struct sockaddr *)&sun, &sl));
    CHECK("shutdown", shutdown(sv[0], SHUT_WR));
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECKOK("socket", ls);
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path("sock"));
    CHECK("bind", bind(ls, (struct sockaddr *)&sun, sizeof sun));
    CHECK("listen", listen(ls, 4));
    CHECK("accept eagain", accept(ls, NULL, NULL));
    CHECK("accept4 eagain", accept4(ls, NULL, NULL, SOCK_CLOEXEC));
    int cs = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("connect", connect(cs, (struct sockaddr *)&sun, sizeof sun));
    CHECKOK("accept", accept(ls, NULL, NULL));
    CHECK("connect enoent", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&(struct sockaddr_un){.sun_family = AF_UNIX, .sun_path = "/nonexistent/x"}, sizeof sun));
    CHECK("socket eafnosupport", socket(12345, SOCK_STREAM, 0));

    /* memory */
    void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap ok", m != MAP_FAILED);
    CHECK("mmap einval", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
    CHECK("mprotect", mprotect(m, 4096, PROT_READ));
    CHECK("madvise", madvise(m, 8192, MADV_DONTNEED));
    CHECK("msync", msync(m, 4096, MS_ASYNC));
    CHECK("munmap", munmap(m, 8192));
    CHECK("munmap einval", munmap((void *)1, 1));

    /* identity and scheduling */
    CHECK("getpid>0", getpid() > 0);
    CHECK("getppid>0", getppid() > 0);
    CHECK("gettid==pid", gettid() == getpid());
    CHECK("getuid", getuid() == (uid_t)syscall(SYS_getuid));
    CHECK("geteuid", geteuid() == (uid_t)syscall(SYS_geteuid));
    CHECK("getgid", getgid() == (gid_t)syscall(SYS_getgid));
    CHECK("getegid", getegid() == (gid_t)syscall(SYS_getegid));
    CHECK("getpgrp", getpgrp() == (pid_t)syscall(SYS_getpgid, 0));
    CHECK("getsid", getsid(0) == (pid_t)syscall(SYS_getsid, 0));
    CHECK("getsid esrch", getsid(0x7ffffff0));
    CHECK("getrandom", getrandom(buf, 16, 0));
    CHECK("getrandom einval", getrandom(buf, 16, 0x7000));
    CHECK("sched_getcpu", sched_getcpu() >= 0);
    unsigned cpu = 0, node = 0;
    CHECK("getcpu", getcpu(&cpu, &node));
    CHECK("sched_yield", sched_yield());
    CHECK("syscall getpid", syscall(SYS_getpid) == getpid());
    CHECK("syscall enosys", syscall(1000));
    CHECK("syscall ebadf", syscall(SYS_close, -1));

    /* signals and time */
    sigset_t old_mask;
    CHECK("sigprocmask", sigprocmask(SIG_BLOCK, &mask, &old_mask));
    CHECK("sigprocmask einval", sigprocmask(99, &mask, NULL));
    CHECK("pthread_sigmask einval", pthread_sigmask(99, &mask, NULL));
    CHECK("pthread_sigmask", pthread_sigmask(SIG_UNBLOCK, &mask, NULL));
    CHECK("kill 0", kill(getpid(), 0));
    CHECK("kill esrch", kill(0x7ffffff0, 0));
    CHECK("tgkill", tgkill(getpid(), gettid(), 0));
    struct timespec ts = {0, 1000}, rem;
    CHECK("nanosleep", nanosleep(&ts, &rem));
    struct timespec bad = {0, -1};
    CHECK("nanosleep einval", nanosleep(&bad, &rem));
    CHECK("clock_nanosleep", clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &rem));
    CHECK("clock_nanosleep einval", clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, &rem));
    siginfo_t si;
    CHECK("sigtimedwait eagain", sigtimedwait(&mask, &si, &zero));
    sigprocmask(SIG_BLOCK, &mask, NULL);
    raise(SIGUSR2);
    CHECK("sigwaitinfo", sigwaitinfo(&mask, &si));
    sigset_t none;
    sigemptyset(&none);

    /* processes */
    pid_t child = fork();
    if (child == 0) _exit(7);
    int status = 0;
    CHECK("waitpid", waitpid(child, &status, 0) == child);
    printf("child status=%d\n", WEXITSTATUS(status));
    child = fork();
    if (child == 0) _exit(8);
    CHECK("wait4", wait4(child, &status, 0, NULL) == child);
    printf("child status=%d\n", WEXITSTATUS(status));
    child = vfork();
    if (child == 0) _exit(9);
    siginfo_t wi;
    CHECK("waitid", waitid(P_PID, (id_t)child, &wi, WEXITED));
    printf("child status=%d\n", wi.si_status);
    CHECK("waitpid echild", waitpid(-1, &status, WNOHANG));
    CHECK("sigsuspend-free exit", 0);

    /* clean up */
    snprintf(buf, sizeof buf, "rm -rf %s", dir);
    fflush(stdout);
    closefrom(3);
    CHECK("fcntl after closefrom", fcntl(3, F_GETFD));
    return system(buf) == 0 ? 0 : 3;
}
