/*
 * syscall_loop.c — a syscall-dense loop for the benchmarks: `syscall_loop KIND N` runs N calls of
 * one kind through libc's wrapper (so through privbox's when preloaded) and prints ns per call,
 * timed inside the process around the loop only.
 *   write:   write(2) of one byte to /dev/null
 *   getppid: getppid(2), which no libc caches
 *   pipe:    a one-byte ping-pong over two pipes with a child process (two syscalls per side)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: syscall_loop write|getppid|pipe N\n");
        return 64;
    }
    const char *kind = argv[1];
    long n = atol(argv[2]);
    char byte = 'x';
    double t0, t1;
    if (!strcmp(kind, "write")) {
        int fd = open("/dev/null", O_WRONLY);
        t0 = now_ns();
        for (long i = 0; i < n; i++)
            write(fd, &byte, 1);
        t1 = now_ns();
    } else if (!strcmp(kind, "getppid")) {
        long sink = 0;
        t0 = now_ns();
        for (long i = 0; i < n; i++)
            sink += getppid();
        t1 = now_ns();
        if (sink == 42) puts("");
    } else if (!strcmp(kind, "pipe")) {
        int ab[2], ba[2];
        if (pipe(ab) || pipe(ba)) return 2;
        pid_t pid = fork();
        if (pid == 0) {
            for (long i = 0; i < n; i++) {
                if (read(ab[0], &byte, 1) != 1) _exit(3);
                write(ba[1], &byte, 1);
            }
            _exit(0);
        }
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            write(ab[1], &byte, 1);
            if (read(ba[0], &byte, 1) != 1) return 3;
        }
        t1 = now_ns();
        waitpid(pid, NULL, 0);
    } else {
        return 64;
    }
    printf("%.3f\n", (t1 - t0) / (double)n);
    return 0;
}
