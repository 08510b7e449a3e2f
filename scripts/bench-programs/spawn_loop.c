/*
 * spawn_loop.c — start-up cost: `spawn_loop N PROGRAM [NAME=VALUE...]` starts PROGRAM N times
 * with posix_spawn (this process's environment plus the given variables), waits for each, and
 * prints the mean wall time per start in microseconds. The launcher itself is never preloaded.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawn_loop N PROGRAM [NAME=VALUE...]\n");
        return 64;
    }
    long n = atol(argv[1]);
    size_t count = 0;
    while (environ[count]) count++;
    char **env = calloc(count + (size_t)argc, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) && strncmp(environ[i], "PRIVBOX_", 8))
            env[k++] = environ[i];
    for (int i = 3; i < argc; i++)
        env[k++] = argv[i];
    char *child_argv[] = {argv[2], NULL};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        pid_t pid;
        if (posix_spawn(&pid, argv[2], NULL, NULL, child_argv, env) != 0) return 2;
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 3;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / (double)n;
    printf("%.3f\n", us);
    return 0;
}
