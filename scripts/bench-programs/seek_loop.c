/*
 * seek_loop.c — the loop the fusion executor is measured on: `seek_loop N` makes N pairs of
 * lseek(fd, off, SEEK_SET) + read(fd, 16 bytes) at scattered offsets of a 64 KiB file in $TMPDIR
 * (or /tmp), created and unlinked before the loop, in 10 chunks. Prints to stdout a result that
 * must not depend on privbox (a sum of the bytes read, and the file offset left at the end, asked
 * of the kernel by a raw syscall), and to stderr the ns per pair of the fastest chunk. (A program
 * of its own: added to accel_loop.c's main, this loop made GCC 12's -O2 build of it exit as for an
 * unknown kind on every kind, getpid included, while -O0 worked; the cause was not pinned down.)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS 10
#define SIZE 65536

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

__attribute__((noinline)) static unsigned long pairs(int fd, long n)
{
    unsigned char buf[16];
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) {
        lseek(fd, (off_t)((i * 4099) % (SIZE - 16)), SEEK_SET);
        if (read(fd, buf, sizeof buf) == (ssize_t)sizeof buf)
            sum += buf[0] + buf[15];
    }
    return sum;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: seek_loop N\n");
        return 64;
    }
    long n = atol(argv[1]) / CHUNKS;
    char path[4096];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/seek_loop.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    static unsigned char data[SIZE];
    for (int i = 0; i < SIZE; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 8));
    if (fd < 0 || write(fd, data, SIZE) != SIZE) {
        perror("seek_loop: the file");
        return 1;
    }
    unlink(path);
    unsigned long long best = ~0ull; /* picoseconds per pair */
    unsigned long sum = 0;
    for (int c = 0; c < CHUNKS; c++) {
        unsigned long long t0 = now_ns();
        sum += pairs(fd, n);
        unsigned long long per = (now_ns() - t0) * 1000ull / (unsigned long long)n;
        if (per < best)
            best = per;
    }
    long offset = syscall(SYS_lseek, fd, 0, SEEK_CUR);
    printf("%ld pairs: sum %lu, offset %ld\n", n * CHUNKS, sum, offset);
    fprintf(stderr, "%llu.%03llu\n", best / 1000, best % 1000);
    return 0;
}
