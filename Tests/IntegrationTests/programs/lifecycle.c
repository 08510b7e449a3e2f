/*
 * lifecycle.c — what real programs do around system calls, one scenario per argument. Every
 * scenario prints a deterministic transcript, so a run under privbox must match a native run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void *thread_body(void *arg)
{
    long n = (long)arg;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1 + (int)(n % 2));
    long ok = 0;
    for (int i = 0; i < 1000; i++) {
        ok += getppid() > 0;
        /* Threads change their own masks concurrently; each must see only its own. */
        pthread_sigmask(SIG_BLOCK, &set, &old);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return (void *)ok;
}

static int threads(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_body, (void *)i);
    long total = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("threads total=%ld\n", total);
    return 0;
}

static int forks(void)
{
    fflush(stdout);
    for (int c = 0; c < 2; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0; i < 10; i++)
                getppid();
            printf("child %d pid-changed=%d\n", c, getpid() != getppid());
            exit(c + 1); /* exit(), not _exit(): the child writes its own profile */
        }
        int status;
        waitpid(pid, &status, 0);
        printf("parent saw child %d exit %d\n", c, WEXITSTATUS(status));
    }
    return 0;
}

static int vfork_exec(void)
{
    fflush(stdout);
    pid_t pid = vfork();
    if (pid == 0) {
        char *argv[] = {"/bin/sh", "-c", "echo from-exec; exit 5", NULL};
        execve(argv[0], argv, environ);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("vfork child exit %d\n", WEXITSTATUS(status));
    pid_t spawned;
    char *argv2[] = {"/bin/sh", "-c", "echo from-spawn; exit 6", NULL};
    posix_spawn(&spawned, "/bin/sh", NULL, NULL, argv2, environ);
    waitpid(spawned, &status, 0);
    printf("spawn child exit %d\n", WEXITSTATUS(status));
    /* clone3 through libc: pthread_create uses it on glibc 2.34+. */
    return threads();
}

static int sigpipe_fds[2];
static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    char c = 't';
    write(sigpipe_fds[1], &c, 1); /* a wrapped syscall inside a handler */
    getppid();
    ticks++;
    errno = saved;
}

static int signals(void)
{
    if (pipe(sigpipe_fds) != 0)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: read() must see EINTR or data */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int got = 0, eintr = 0;
    while (got < 50) {
        char c;
        ssize_t n = read(sigpipe_fds[0], &c, 1);
        if (n == 1)
            got++;
        else if (n < 0 && errno == EINTR)
            eintr++;
        else
            return 3;
        /* Also make syscalls that the timer will interrupt half-way through the wrapper. */
        for (int i = 0; i < 50; i++)
            getppid();
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("signals got=%d eintr-seen=%s\n", got, eintr >= 0 ? "yes" : "no");
    return 0;
}

static int fds(const char *scratch)
{
    /* The program closes every fd above 2, redirects stdout over fd 1, and checks that nothing
     * of privbox's broke or leaked into its fd table. */
    for (int i = 0; i < 5; i++)
        open("/dev/null", O_RDONLY);
    close_range(3, ~0u, 0);
    int probe = open("/dev/null", O_RDONLY);
    printf("lowest free fd after close_range=%d\n", probe);
    closefrom(3);
    char path[512];
    snprintf(path, sizeof path, "%s/redirected.txt", scratch);
    fflush(stdout);
    int saved = dup(1);
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(f, 1);
    close(f);
    printf("this line goes to the file\n");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    int g = open(path, O_RDONLY);
    char buf[128] = {0};
    read(g, buf, sizeof buf - 1);
    close(g);
    printf("file holds: %s", buf);
    /* dup2 over stderr too: privbox's own messages must follow the program's fd 2. */
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    close(devnull);
    printf("open fds: ");
    for (int fd = 0; fd < 64; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            printf("%d ", fd);
    printf("\n");
    return 0;
}

static int fdnums(void)
{
    /* The descriptor numbers a program gets must be the ones it gets natively: privbox's stack
     * captures (first call of each site) must not open anything of their own. */
    for (int i = 0; i < 50; i++)
        getppid();
    int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
    int p[2];
    pipe(p);
    printf("fds %d %d %d %d\n", a, b, p[0], p[1]);
    return 0;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    int rc;
    if (!strcmp(what, "threads")) rc = threads();
    else if (!strcmp(what, "fork")) rc = forks();
    else if (!strcmp(what, "vfork-exec")) rc = vfork_exec();
    else if (!strcmp(what, "signals")) rc = signals();
    else if (!strcmp(what, "fds") && argc > 2) rc = fds(argv[2]);
    else if (!strcmp(what, "exit")) rc = argc > 2 ? atoi(argv[2]) : 0;
    else if (!strcmp(what, "fdnums")) rc = fdnums();
    else { fprintf(stderr, "usage: lifecycle threads|fork|vfork-exec|signals|fds DIR|exit N\n"); return 64; }
    fflush(stdout);
    return rc;
}
