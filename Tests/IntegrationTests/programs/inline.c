/*
 * inline.c — system calls that do not go through libc's exported wrappers, for inline discovery
 * (`privbox profile --inline`, Sources/Preload/profile/inline_discovery.c).
 *   inline N   a loop of raw `syscall` instructions: getpid and a 1-byte write to stdout
 *   stdio N    a loop of printf + fflush to stdout: libc writes through its internal write
 *   masks N    the inline loop with every signal blocked (SIGSYS too), then unblocked again
 *   handler N  a handler whose sa_mask is full makes inline calls; the program reads its
 *              action back (SIGSYS must still be in the mask) and SIGSYS's disposition
 *   sigsys     the program installs its own SIGSYS handler and sends itself SIGSYS
 *   fork N     the inline loop in a fork child, then in the parent
 *   threads N  the inline loop in two threads at once
 *   rawaction  a SIGALRM handler with a full sa_mask installed by syscall(SYS_rt_sigaction),
 *              interrupting a loop of inline calls 20 times and making one itself
 * stdout depends only on what the calls returned, so it must be the same natively and profiled.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static long raw3(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

/* Returns how many raw getpid answers equalled the process's pid. */
__attribute__((noinline)) static long inline_loop(long n, long pid)
{
    long same = 0;
    for (long i = 0; i < n; i++) { /* LOOP:inline:begin */
        same += raw3(SYS_getpid, 0, 0, 0) == pid;
        raw3(SYS_write, 1, (long)".", 1);
    } /* LOOP:inline:end */
    return same;
}

__attribute__((noinline)) static void stdio_loop(long n)
{
    for (long i = 0; i < n; i++) { /* LOOP:stdio:begin */
        printf("line %ld\n", i);
        fflush(stdout);
    } /* LOOP:stdio:end */
}

static volatile int handled;
static void on_usr1(int sig)
{
    (void)sig;
    raw3(SYS_write, 1, (long)"[handler]", 9);
    handled++;
}

static void on_sys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    char line[64];
    int len = snprintf(line, sizeof line, "own SIGSYS handler, code %d\n", si->si_code);
    raw3(SYS_write, 1, (long)line, len);
}

static volatile int alarms;
static void on_alarm(int sig)
{
    (void)sig;
    raw3(SYS_write, 1, (long)"a", 1);
    alarms++;
}

/* The kernel's struct sigaction (what syscall(SYS_rt_sigaction) takes). */
struct kernel_action {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};
extern void pb_test_restore_rt(void);
__asm__(".text\n.type pb_test_restore_rt, @function\npb_test_restore_rt:\n"
        "    movq $15, %rax\n    syscall\n    hlt\n");

static long thread_n;
static void *thread_main(void *arg)
{
    (void)arg;
    return (void *)inline_loop(thread_n, getpid());
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    const char *what = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 1000;
    setvbuf(stdout, 0, _IOFBF, 1 << 16);
    if (!strcmp(what, "inline")) {
        printf("\nsame pid %ld of %ld\n", inline_loop(n, getpid()), n);
    } else if (!strcmp(what, "stdio")) {
        stdio_loop(n);
    } else if (!strcmp(what, "masks")) {
        sigset_t all, old;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);
        long a = inline_loop(n, getpid());
        sigprocmask(SIG_SETMASK, &old, 0);
        long b = inline_loop(n, getpid());
        printf("\nblocked %ld, unblocked %ld of %ld\n", a, b, n);
    } else if (!strcmp(what, "handler")) {
        struct sigaction sa, back;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigfillset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, 0);
        for (long i = 0; i < n; i++)
            raw3(SYS_kill, getpid(), SIGUSR1, 0);
        sigaction(SIGUSR1, 0, &back);
        struct sigaction sys;
        sigaction(SIGSYS, 0, &sys);
        printf("\nhandled %d of %ld; SIGSYS in the mask read back: %d; SIGSYS default: %d\n", handled, n,
               sigismember(&back.sa_mask, SIGSYS), sys.sa_handler == SIG_DFL);
    } else if (!strcmp(what, "sigsys")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, 0);
        fflush(stdout);
        raw3(SYS_kill, getpid(), SIGSYS, 0);
        printf("after: same pid %ld of %ld\n", inline_loop(n, getpid()), n);
    } else if (!strcmp(what, "fork")) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            printf("\nchild: same pid %ld of %ld\n", inline_loop(n, getpid()), n);
            exit(0); /* through atexit: the child writes its profile */
        }
        int status;
        waitpid(child, &status, 0); /* then the parent's loop: the two outputs do not interleave */
        printf("\nparent: same pid %ld of %ld; child status %d\n", inline_loop(n, getpid()), n, status);
    } else if (!strcmp(what, "threads")) {
        thread_n = n;
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], 0, thread_main, 0);
        long total = 0;
        for (int i = 0; i < 2; i++) {
            void *r;
            pthread_join(t[i], &r);
            total += (long)r;
        }
        printf("\nthreads: same pid %ld of %ld\n", total, 2 * n);
    } else if (!strcmp(what, "rawaction")) {
        struct kernel_action ka = {on_alarm, 0x04000000 /* SA_RESTORER */ | SA_RESTART,
                                   pb_test_restore_rt, ~0ul};
        if (syscall(SYS_rt_sigaction, SIGALRM, &ka, 0, 8) != 0)
            return 2;
        struct itimerval it = {{0, 2000}, {0, 2000}};
        setitimer(ITIMER_REAL, &it, 0);
        long spins = 0;
        while (alarms < 20)
            spins += raw3(SYS_getpid, 0, 0, 0) > 0;
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, 0);
        printf("\nalarms handled: %d\n", alarms >= 20);
    } else {
        return 64;
    }
    return 0;
}
