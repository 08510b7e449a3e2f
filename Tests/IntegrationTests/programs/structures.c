/*
 * structures.c — programs of known structure for the hot-loop detector, one per argument. The
 * loops that make system calls are marked LOOP:NAME:begin/end; the report must name exactly
 * those (function and a line inside the marked range), and never the compute loop.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

long dense_library_loop(int fd, long n);

static int devnull;

__attribute__((noinline)) static unsigned long compute_loop(long n)
{
    unsigned long h = 1469598103934665603ull;
    for (long i = 0; i < n; i++)
        h = (h ^ (unsigned long)i) * 1099511628211ull;
    return h;
}

__attribute__((noinline)) static void emit(char c)
{
    write(devnull, &c, 1); /* not a loop: called once per iteration of its caller's loop */
}

__attribute__((noinline)) static void dense_and_compute(long n)
{
    for (long i = 0; i < n; i++) { /* LOOP:dense:begin */
        emit('a');
    } /* LOOP:dense:end */
    printf("%lu\n", compute_loop(n * 20) % 7);
}

__attribute__((noinline)) static void nested(long n)
{
    for (long i = 0; i < n / 50; i++) { /* LOOP:outer:begin */
        for (int j = 0; j < 50; j++) { /* LOOP:inner:begin */
            getppid();
        } /* LOOP:inner:end */
        char c = 'o';
        write(devnull, &c, 1);
    } /* LOOP:outer:end */
}

__attribute__((noinline)) static void *thread_loop(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) { /* LOOP:threads:begin */
        getppid();
    } /* LOOP:threads:end */
    return NULL;
}

static void threads(long n)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_loop, (void *)n);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}

__attribute__((noinline)) static void child_loop(long n)
{
    for (long i = 0; i < n; i++) { /* LOOP:child:begin */
        getpid();
    } /* LOOP:child:end */
}

__attribute__((noinline)) static void parent_loop(long n)
{
    char c = 'p';
    for (long i = 0; i < n; i++) { /* LOOP:parent:begin */
        write(devnull, &c, 1);
    } /* LOOP:parent:end */
}

static void forks(long n)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        child_loop(n);
        exit(0);
    }
    parent_loop(n);
    waitpid(pid, NULL, 0);
}

/* Recursion is not a loop: each activation makes one call and returns. (The call comes after the
 * recursive call, so the compiler cannot turn the recursion into a loop.) */
__attribute__((noinline)) static long recurse(long depth)
{
    long below = depth <= 0 ? 0 : 1 + recurse(depth - 1);
    char c = 'r';
    write(devnull, &c, 1);
    return below;
}

static void no_loop(void)
{
    /* A handful of calls in straight-line code. */
    char c = 'n';
    write(devnull, &c, 1);
    write(devnull, &c, 1);
    getppid();
    printf("%lu\n", compute_loop(2000000) % 7);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    long n = argc > 2 ? atol(argv[2]) : 20000;
    devnull = open("/dev/null", O_WRONLY);
    if (!strcmp(what, "dense")) dense_and_compute(n);
    else if (!strcmp(what, "nested")) nested(n);
    else if (!strcmp(what, "library")) dense_library_loop(devnull, n);
    else if (!strcmp(what, "threads")) threads(n);
    else if (!strcmp(what, "fork")) forks(n);
    else if (!strcmp(what, "recursion")) printf("%ld\n", recurse(n));
    else if (!strcmp(what, "none")) no_loop();
    else return 64;
    return 0;
}
