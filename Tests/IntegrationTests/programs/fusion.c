/*
 * fusion.c — the cases where a deferred lseek (executors/fusion.c) could be seen. Each case runs hot
 * lseek(SEEK_SET)+read loops through the same two call sites (so that under accelerate/auto they
 * are routed to the fusion executor), then looks at the file offset the way a program could: a
 * raw `syscall` instruction privbox never sees, a read through a dup'd fd, stdio on the fd,
 * /proc/self/fdinfo, a fork child, an O_APPEND write, a thread. Prints "ok ..."/"FAIL ..." lines
 * and checksums; the output is identical natively and under privbox when fusion is exact.
 *
 *   fusion FILE loop | dup | append | stdio | fork | edges | thread | handler | short |
 *               async-handler | concurrent-thread | vfork | mask | all
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 65536
#define HOT 200000

static const char *path;

static long raw(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
static long raw_tell(int fd) { return raw(SYS_lseek, fd, 0, SEEK_CUR); }

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    fflush(stdout);
}

/* The two sites every case goes through. */
__attribute__((noinline)) static off_t site_lseek(int fd, off_t off, int whence) { return lseek(fd, off, whence); }
__attribute__((noinline)) static ssize_t site_read(int fd, void *buf, size_t n) { return read(fd, buf, n); }

static unsigned char byte_at(long off) { return (unsigned char)((off * 7 + (off >> 8)) & 0xff); }

static void make_file(void)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    static unsigned char data[SIZE];
    for (long i = 0; i < SIZE; i++)
        data[i] = byte_at(i);
    if (fd < 0 || write(fd, data, SIZE) != SIZE) {
        perror("make_file");
        exit(2);
    }
    close(fd);
}

static int open_file(int flags)
{
    int fd = open(path, flags);
    if (fd < 0) {
        perror("open");
        exit(2);
    }
    return fd;
}

/* n pairs of lseek(SEEK_SET)+read(16) at scattered offsets; every byte read is checked against
 * the file's content. Returns the offset the fd should have now. */
static long pairs(int fd, long n, long salt, int *bad)
{
    unsigned char buf[16];
    long expect = 0;
    for (long i = 0; i < n; i++) {
        long off = ((i + salt) * 4099) % (SIZE - 8);
        if (site_lseek(fd, off, SEEK_SET) != off)
            (*bad)++;
        ssize_t r = site_read(fd, buf, sizeof buf);
        long want = SIZE - off < 16 ? SIZE - off : 16;
        if (r != want)
            (*bad)++;
        for (ssize_t k = 0; k < r; k++)
            if (buf[k] != byte_at(off + k))
                (*bad)++;
        expect = off + (r > 0 ? r : 0);
    }
    return expect;
}

static void loop_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    long expect = pairs(fd, HOT, 0, &bad);
    check(bad == 0, "every lseek+read pair returned the file's bytes");
    check(raw_tell(fd) == expect, "the kernel's offset after the loop (raw syscall)");
    check(site_lseek(fd, 0, SEEK_CUR) == expect, "lseek(SEEK_CUR) after the loop");
    /* a plain read continues where the last read left off */
    unsigned char b[4];
    check(read(fd, b, 4) == 4 && b[0] == byte_at(expect) && b[3] == byte_at(expect + 3),
          "a read at another site continues at the offset");
    close(fd);
}

static void dup_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    int fd2 = dup(fd);
    for (int round = 0; round < 20; round++) {
        long expect = pairs(fd, HOT / 20, round, &bad);
        /* the dup shares the file description: its read sees fd's offset */
        unsigned char b[2];
        long got = read(fd2, b, 2);
        if (got != 2 || b[0] != byte_at(expect) || b[1] != byte_at(expect + 1))
            bad++;
        if (raw_tell(fd) != expect + 2)
            bad++;
        /* and a seek through the dup is what fd's next read sees */
        lseek(fd2, 1000 + round, SEEK_SET);
        if (site_read(fd, b, 1) != 1 || b[0] != byte_at(1000 + round))
            bad++;
    }
    check(bad == 0, "reads and seeks through a dup'd fd between fused pairs");
    /* dup2 over the fused fd, then its old file description through the survivor */
    long expect = pairs(fd, 1000, 7, &bad);
    int fd3 = open_file(O_RDONLY);
    dup2(fd3, fd);
    check(raw_tell(fd2) == expect && raw_tell(fd) == 0, "offsets after dup2 replaced the fused fd");
    close(fd3);
    close(fd2);
    close(fd);
}

static void append_case(void)
{
    int fd = open_file(O_RDWR | O_APPEND), bad = 0;
    long size = SIZE;
    for (int round = 0; round < 20; round++) {
        pairs(fd, HOT / 20, round, &bad);
        /* an O_APPEND write ignores the offset and leaves it at the new end */
        site_lseek(fd, 10, SEEK_SET);
        if (write(fd, "appended", 8) != 8)
            bad++;
        size += 8;
        if (raw_tell(fd) != size)
            bad++;
        /* the appended bytes are read back through the fused sites */
        unsigned char b[8];
        if (site_lseek(fd, size - 8, SEEK_SET) != size - 8 || site_read(fd, b, 8) != 8 ||
            memcmp(b, "appended", 8) != 0)
            bad++;
    }
    check(bad == 0, "O_APPEND writes between fused pairs land at the end and move the offset there");
    check(lseek(fd, 0, SEEK_END) == size, "file size after the appends");
    close(fd);
    /* put the file back for the other cases */
    make_file();
}

static void stdio_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    FILE *f = fdopen(dup(fd), "r");
    setvbuf(f, NULL, _IONBF, 0);
    for (int round = 0; round < 20; round++) {
        long expect = pairs(fd, HOT / 20, round, &bad);
        int c = fgetc(f); /* libc's internal read: never goes through a wrapper */
        if (c != byte_at(expect))
            bad++;
        char line[256];
        snprintf(line, sizeof line, "/proc/self/fdinfo/%d", fd);
        FILE *info = fopen(line, "r");
        long pos = -1;
        while (info && fgets(line, sizeof line, info))
            if (!strncmp(line, "pos:", 4))
                pos = strtol(line + 4, NULL, 10);
        if (info)
            fclose(info);
        if (pos != expect + 1)
            bad++;
    }
    check(bad == 0, "stdio reads on the fd and /proc/self/fdinfo between fused pairs");
    fclose(f);
    close(fd);
}

static void fork_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    for (int round = 0; round < 5; round++) {
        long expect = pairs(fd, HOT / 5, round, &bad);
        pid_t child = fork();
        if (child == 0) {
            /* the child shares the file description */
            unsigned char b;
            int ok = raw_tell(fd) == expect && read(fd, &b, 1) == 1 && b == byte_at(expect);
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad++;
        if (raw_tell(fd) != expect + 1) /* the child's read moved the shared offset */
            bad++;
        /* the child runs the loop too */
        child = fork();
        if (child == 0) {
            int cbad = 0;
            long e = pairs(fd, 20000, round + 100, &cbad);
            _exit(cbad == 0 && raw_tell(fd) == e ? 0 : 1);
        }
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad++;
    }
    check(bad == 0, "fork children see the offset and can fuse on their own");
    close(fd);
}

static void edges_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    pairs(fd, HOT / 2, 3, &bad);
    unsigned char b[16];
    check(site_lseek(fd, SIZE, SEEK_SET) == SIZE && site_read(fd, b, 16) == 0 && raw_tell(fd) == SIZE,
          "read at the end of the file");
    check(site_lseek(fd, SIZE + 100, SEEK_SET) == SIZE + 100 && site_read(fd, b, 16) == 0 &&
              raw_tell(fd) == SIZE + 100,
          "seek past the end");
    errno = 0;
    check(site_lseek(fd, -1, SEEK_SET) == -1 && errno == EINVAL && raw_tell(fd) == SIZE + 100,
          "negative offset: EINVAL, offset unchanged");
    /* far past the end: the filesystem's s_maxbytes decides, as a raw lseek on another fd says */
    int other = open_file(O_RDONLY);
    long want = raw(SYS_lseek, other, 1L << 62, SEEK_SET);
    close(other);
    pairs(fd, 1000, 4, &bad);
    errno = 0;
    long got = site_lseek(fd, 1L << 62, SEEK_SET);
    check(want >= 0 ? got == want : got == -1 && errno == -want, "a seek to 2^62 as the kernel answers it");
    pairs(fd, 1000, 5, &bad);
    errno = 0;
    check(site_lseek(fd, 5, SEEK_SET) == 5 && site_read(fd, (void *)8, 16) == -1 && errno == EFAULT &&
              raw_tell(fd) == 5,
          "a read into a bad buffer: EFAULT, offset unchanged");
    check(site_lseek(fd, 3, SEEK_SET) == 3 && site_lseek(fd, 4, SEEK_CUR) == 7 && raw_tell(fd) == 7,
          "SEEK_CUR after a deferred SEEK_SET");
    check(site_lseek(fd, 100, SEEK_SET) == 100 && site_lseek(fd, -10, SEEK_END) == SIZE - 10,
          "SEEK_END after a deferred SEEK_SET");
    int wfd = open_file(O_WRONLY);
    errno = 0;
    check(site_lseek(wfd, 5, SEEK_SET) == 5 && site_read(wfd, b, 1) == -1 && errno == EBADF &&
              raw_tell(wfd) == 5,
          "read on a write-only fd: EBADF");
    close(wfd);
    int p[2];
    if (pipe(p) == 0) {
        errno = 0;
        check(site_lseek(p[0], 0, SEEK_SET) == -1 && errno == ESPIPE, "lseek on a pipe: ESPIPE");
        close(p[0]);
        close(p[1]);
    }
    check(bad == 0, "pairs around the edges");
    close(fd);
}

static long thread_expect;
static int thread_fd;
static void *thread_main(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)(raw_tell(thread_fd) == thread_expect);
}

static void thread_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    thread_fd = fd;
    thread_expect = pairs(fd, HOT / 2, 11, &bad);
    pthread_t t;
    void *ok = 0;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, &ok);
    check(ok != 0, "a new thread sees the offset");
    /* with a second thread the loop keeps working */
    long e = pairs(fd, HOT / 4, 12, &bad);
    check(bad == 0 && raw_tell(fd) == e, "pairs in a process that has had a thread");
    close(fd);
}

static volatile long handler_saw = -2;
static int handler_fd;
static void on_usr1(int sig)
{
    (void)sig;
    handler_saw = raw_tell(handler_fd);
}

static void handler_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    handler_fd = fd;
    long expect = pairs(fd, HOT / 2, 13, &bad);
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    check(handler_saw == expect, "a handler installed after the loop sees the offset");
    expect = pairs(fd, HOT / 4, 14, &bad);
    raise(SIGUSR1);
    check(bad == 0 && handler_saw == expect, "pairs with a handler installed");
    close(fd);
}

/* What a concurrent observer (a signal handler, another thread) may check: view_pos is the offset
 * the program knows its fd has (a call returned), view_gen is odd while a call is in flight. An
 * observer that reads the same even view_gen before and after reading view_pos and asking the
 * kernel (a raw syscall) must get view_pos from the kernel, natively and under privbox. */
static volatile long view_gen, view_pos;
static volatile long observed, observed_bad;
static int observed_fd;

static void observe(void)
{
    long g1 = view_gen;
    if (g1 & 1)
        return;
    long p = view_pos, t = raw_tell(observed_fd);
    if (view_gen != g1)
        return;
    observed++;
    if (t != p)
        observed_bad++;
}

static long observed_pairs(int fd, long n, long salt, int *bad)
{
    unsigned char buf[16];
    long pos = raw_tell(fd);
    for (long i = 0; i < n; i++) {
        long off = ((i + salt) * 4099) % (SIZE - 16);
        view_gen++; /* odd: a call in flight */
        __sync_synchronize();
        long got = site_lseek(fd, off, SEEK_SET);
        view_pos = pos = got;
        __sync_synchronize();
        view_gen++; /* even */
        __sync_synchronize();
        view_gen++;
        __sync_synchronize();
        ssize_t r = site_read(fd, buf, sizeof buf);
        view_pos = pos = pos + (r > 0 ? r : 0);
        __sync_synchronize();
        view_gen++;
        if (got != off || r != 16 || buf[0] != byte_at(off))
            (*bad)++;
    }
    return pos;
}

/* A timer's handler, whose sa_mask blocks everything (SIGSYS too), looks at the offset while the
 * loop runs: no window may be open when it can run, or its first call would kill the process. */
static void on_alarm(int sig)
{
    (void)sig;
    observe();
}

static void async_handler_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    observed_fd = fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    long pos = 0;
    for (int round = 0; round < 4 || (observed < 20 && round < 400); round++)
        pos = observed_pairs(fd, HOT / 4, round, &bad);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
    check(bad == 0 && raw_tell(fd) == pos, "pairs under a timer whose handler blocks every signal");
    check(observed > 0 && observed_bad == 0, "the handler saw the program's offset every time");
    close(fd);
}

static volatile int observer_stop;
static void *observer_main(void *arg)
{
    (void)arg;
    while (!observer_stop)
        observe();
    return NULL;
}

static void concurrent_thread_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    observed_fd = fd;
    observed = observed_bad = 0;
    pthread_t t;
    pthread_create(&t, NULL, observer_main, NULL);
    long pos = 0;
    for (int round = 0; round < 4 || (observed < 50 && round < 40); round++)
        pos = observed_pairs(fd, HOT / 4, round, &bad);
    observer_stop = 1;
    pthread_join(t, NULL);
    check(bad == 0 && raw_tell(fd) == pos, "pairs while another thread watches the offset");
    check(observed > 0 && observed_bad == 0, "the other thread saw the program's offset every time");
    close(fd);
}

static volatile int vfork_child_ok;
static void vfork_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    for (int round = 0; round < 5; round++) {
        long expect = pairs(fd, HOT / 5, round, &bad);
        vfork_child_ok = 0;
        pid_t child = vfork();
        if (child == 0) {
            /* on the parent's memory, without its dispatch: the raw call sees the kernel's offset */
            vfork_child_ok = raw_tell(fd) == expect;
            _exit(0);
        }
        int status;
        waitpid(child, &status, 0);
        if (!vfork_child_ok)
            bad++;
    }
    check(bad == 0, "a vfork child sees the offset");
    close(fd);
}

/* The mask changed by sigprocmask (privbox makes that call itself, which dispatch lets through):
 * blocking SIGSYS with a window open would make the next trap kill the process. */
static void mask_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    sigset_t sys, old;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    for (int round = 0; round < 5; round++) {
        long expect = pairs(fd, HOT / 5, round, &bad);
        sigprocmask(SIG_BLOCK, &sys, &old);
        if (getppid() <= 0 || raw_tell(fd) != expect)
            bad++;
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    check(bad == 0, "SIGSYS blocked and unblocked between fused pairs");
    close(fd);
}

/* A system call after every pair: no window lives long enough to repay opening it. */
static void short_case(void)
{
    int fd = open_file(O_RDONLY), bad = 0;
    unsigned char buf[16];
    for (long i = 0; i < HOT / 4; i++) {
        long off = (i * 4099) % (SIZE - 16);
        if (site_lseek(fd, off, SEEK_SET) != off || site_read(fd, buf, 16) != 16 || buf[0] != byte_at(off))
            bad++;
        if (getppid() <= 0)
            bad++;
    }
    check(bad == 0, "pairs with a system call after each");
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fusion FILE case\n");
        return 2;
    }
    path = argv[1];
    const char *c = argv[2];
    int all = !strcmp(c, "all");
    make_file();
    if (all || !strcmp(c, "loop")) loop_case();
    if (all || !strcmp(c, "dup")) dup_case();
    if (all || !strcmp(c, "append")) append_case();
    if (all || !strcmp(c, "stdio")) stdio_case();
    if (all || !strcmp(c, "fork")) fork_case();
    if (all || !strcmp(c, "edges")) edges_case();
    if (all || !strcmp(c, "thread")) thread_case();
    if (all || !strcmp(c, "handler")) handler_case();
    if (all || !strcmp(c, "short")) short_case();
    if (all || !strcmp(c, "async-handler")) async_handler_case();
    if (all || !strcmp(c, "concurrent-thread")) concurrent_thread_case();
    if (all || !strcmp(c, "vfork")) vfork_case();
    if (all || !strcmp(c, "mask")) mask_case();
    unlink(path);
    return 0;
}
