/* libdense.c — a shared library whose own loop makes the system calls (built as libdense.so). */
#include <unistd.h>

__attribute__((noinline)) long dense_library_loop(int fd, long n)
{
    char byte = 'y';
    long total = 0;
    for (long i = 0; i < n; i++) { /* LOOP:library:begin */
        total += write(fd, &byte, 1);
    } /* LOOP:library:end */
    return total;
}
