/*
 * hostile_signals.c — a command for HostileProcessTests: what it receives of the signals a test
 * sends to `privbox profile` (not to the command), and the dispositions it was started with.
 * It prints on stdout only, one line per event, so the test can wait for each step without timing.
 *
 *   echo         handlers for USR1 USR2 ALRM INT HUP WINCH CONT and SIGRTMIN+5; sends SIGRTMIN+5
 *                to its parent (privbox must not send that back: "got RT5" if it does), prints
 *                "ready PID", then "got NAME" for each signal it receives, and exits 0 once it has
 *                had all seven. (A real-time signal, because those queue: a standard one sent to
 *                privbox by the command and still pending there when the test sends the same one
 *                would merge with it, keeping the command's siginfo, and privbox would rightly
 *                not forward the merged one.)
 *   reraise      prints "ready PID"; on SIGINT prints "got SIGINT", then dies of SIGINT by
 *                restoring the default action and raising it again (as a careful program does).
 *   default      forks a child that makes a few wrapped calls and exits normally (so it writes a
 *                profile), waits for it, prints "child CHILDPID" and "ready PID", then waits with
 *                every signal at its default action.
 *   dispositions prints "NAME ignored|default|handled" and "NAME blocked|unblocked" for HUP INT
 *                QUIT TERM USR1 USR2, then exits 0.
 *   busy         makes 1000 getppid() calls in a loop and exits 0 (a small real profile).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const int echoed[] = {SIGUSR1, SIGUSR2, SIGALRM, SIGINT, SIGHUP, SIGWINCH, SIGCONT};
#define NECHO (int)(sizeof echoed / sizeof echoed[0])
static volatile sig_atomic_t received[NSIG];

static void on_signal(int sig) { received[sig]++; }

static void say(const char *line)
{
    /* One write per line: the test reads lines, and stdio buffering would hold them back. */
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s\n", line);
    if (write(1, buf, (size_t)n) != n)
        _exit(3);
}

static void ready(pid_t pid)
{
    char line[64];
    snprintf(line, sizeof line, "ready %d", (int)pid);
    say(line);
}

static int echo(void)
{
    const int back = SIGRTMIN + 5;
    sigset_t all, old;
    sigemptyset(&all);
    for (int i = 0; i < NECHO; i++)
        sigaddset(&all, echoed[i]);
    sigaddset(&all, back);
    sigprocmask(SIG_BLOCK, &all, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    for (int i = 0; i < NECHO; i++)
        sigaction(echoed[i], &sa, NULL);
    sigaction(back, &sa, NULL);
    /* A signal from the command to privbox must not come back to the command. */
    kill(getppid(), back);
    ready(getpid());
    int seen = 0;
    int had[NSIG] = {0};
    while (seen < NECHO) {
        sigsuspend(&old);
        if (received[back] > 0) {
            received[back] = 0;
            say("got RT5");
        }
        for (int i = 0; i < NECHO; i++) {
            int s = echoed[i];
            while (received[s] > 0) {
                received[s]--;
                char line[64];
                snprintf(line, sizeof line, "got %s", sigabbrev_np(s));
                say(line);
                if (!had[s]++)
                    seen++;
            }
        }
    }
    return 0;
}

static int reraise(void)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &old);
    signal(SIGINT, on_signal);
    ready(getpid());
    while (!received[SIGINT])
        sigsuspend(&old);
    say("got INT");
    signal(SIGINT, SIG_DFL);
    raise(SIGINT); /* still blocked: delivered by the unblock below */
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 4; /* not reached */
}

static int default_action(void)
{
    pid_t child = fork();
    if (child < 0)
        return 2;
    if (child == 0) {
        for (int i = 0; i < 10; i++)
            getppid();
        exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 2;
    char line[64];
    snprintf(line, sizeof line, "child %d", (int)child);
    say(line);
    ready(getpid());
    for (;;)
        pause();
}

static int dispositions(void)
{
    static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    sigset_t mask;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        sigaction(sigs[i], NULL, &sa);
        const char *how = sa.sa_handler == SIG_IGN ? "ignored" : sa.sa_handler == SIG_DFL ? "default" : "handled";
        char line[64];
        snprintf(line, sizeof line, "%s %s %s", sigabbrev_np(sigs[i]), how,
                 sigismember(&mask, sigs[i]) ? "blocked" : "unblocked");
        say(line);
    }
    return 0;
}

static int busy(void)
{
    for (int i = 0; i < 1000; i++)
        getppid();
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "echo"))
        return echo();
    if (!strcmp(mode, "reraise"))
        return reraise();
    if (!strcmp(mode, "default"))
        return default_action();
    if (!strcmp(mode, "dispositions"))
        return dispositions();
    if (!strcmp(mode, "busy"))
        return busy();
    fprintf(stderr, "usage: hostile_signals echo|reraise|default|dispositions|busy\n");
    return 2;
}
