/*
 * loop.c — a syscall-dense loop and a compute loop, with known counts: the profile must
 * attribute exactly `n` write calls to the call site inside write_loop().
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) static void write_loop(int fd, long n)
{
    char byte = 'x';
    for (long i = 0; i < n; i++)
        write(fd, &byte, 1); /* WRITE_SITE */
}

__attribute__((noinline)) static unsigned long compute_loop(long n)
{
    unsigned long h = 1469598103934665603ull;
    for (long i = 0; i < n; i++)
        h = (h ^ (unsigned long)i) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0)
        return 2;
    write_loop(fd, n);
    unsigned long h = compute_loop(n * 10);
    close(fd);
    printf("done %ld %lu\n", n, h % 1000);
    return 0;
}
