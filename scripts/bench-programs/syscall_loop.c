/*
 * syscall_loop.c — a syscall-dense loop for the benchmarks: `syscall_loop KIND N` runs N calls of
 * one kind through libc's wrapper (so through privbox's when preloaded), in 10 chunks of N/10,
 * and prints the ns per call of the fastest chunk, timed inside the process around the loop only.
 * The fastest chunk is the one least disturbed by the rest of the (virtual) machine.
 *   write:   write(2) of one byte to /dev/null
 *   getppid: getppid(2), which no libc caches
 *   pipe:    a one-byte ping-pong over two pipes with a child process (two syscalls per side)
 *   raw-getppid: getppid through an inline `syscall` instruction, which no wrapper sees (what
 *            inline discovery traps)
 *   printf:  printf of a short line to /dev/null with fflush: libc's internal write
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS 10

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: syscall_loop write|getppid|pipe|raw-getppid|printf N\n");
        return 64;
    }
    const char *kind = argv[1];
    long n = atol(argv[2]) / CHUNKS;
    char byte = 'x';
    double best = 1e30;
    int fd = open("/dev/null", O_WRONLY);
    int ab[2], ba[2];
    pid_t pid = -1;
    if (!strcmp(kind, "pipe")) {
        if (pipe(ab) || pipe(ba)) return 2;
        pid = fork();
        if (pid == 0) {
            for (long i = 0; i < n * CHUNKS; i++) {
                if (read(ab[0], &byte, 1) != 1) _exit(3);
                write(ba[1], &byte, 1);
            }
            _exit(0);
        }
    } else if (strcmp(kind, "write") && strcmp(kind, "getppid") && strcmp(kind, "raw-getppid") &&
               strcmp(kind, "printf")) {
        return 64;
    }
    FILE *devnull = fdopen(fd, "w");
    long sink = 0;
    for (int c = 0; c < CHUNKS; c++) {
        double t0 = now_ns();
        if (!strcmp(kind, "write")) {
            for (long i = 0; i < n; i++)
                write(fd, &byte, 1);
        } else if (!strcmp(kind, "getppid")) {
            for (long i = 0; i < n; i++)
                sink += getppid();
        } else if (!strcmp(kind, "raw-getppid")) {
            for (long i = 0; i < n; i++) {
                long r;
                __asm__ volatile("syscall" : "=a"(r) : "a"(110L) : "rcx", "r11", "memory");
                sink += r;
            }
        } else if (!strcmp(kind, "printf")) {
            for (long i = 0; i < n; i++) {
                fprintf(devnull, "line %ld\n", i);
                fflush(devnull);
            }
        } else {
            for (long i = 0; i < n; i++) {
                write(ab[1], &byte, 1);
                if (read(ba[0], &byte, 1) != 1) return 3;
            }
        }
        double per = (now_ns() - t0) / (double)n;
        if (per < best) best = per;
    }
    if (pid > 0) waitpid(pid, NULL, 0);
    if (sink == 42) puts("");
    printf("%.3f\n", best);
    return 0;
}
