// SPDX-License-Identifier: GPL-2.0
/*
 * A syscall-dense loop for the profile-then-accelerate flow in the guest:
 * each iteration asks the kernel for its uid and parent pid and writes one
 * line, all with `syscall` instructions in the loop's own function (the
 * kind of loop privbox profile --inline finds and accelerate mode copies).
 * The output depends only on the arguments and on answers that are the same
 * with and without privbox, so runs can be compared byte for byte.
 *
 *   syscall_loop N        N lines on stdout; the time per iteration on stderr
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline long sys0(long nr)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	return ret;
}

static inline long sys3(long nr, long a, long b, long c)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

/* Everything inline: no call leaves the function, so a box runs it whole. */
__attribute__((noinline)) static long loop(long n)
{
	long parent = sys0(110 /* getppid */), total = 0;

	for (long i = 0; i < n; i++) {
		char line[64], digits[24];
		long uid = sys0(102 /* getuid */), same = sys0(110) == parent, len = 0, d = 0;
		unsigned long v = (unsigned long)i;

		do {
			digits[d++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		line[len++] = 'i';
		line[len++] = '=';
		while (d)
			line[len++] = digits[--d];
		line[len++] = ' ';
		line[len++] = 'u';
		line[len++] = '=';
		line[len++] = (char)('0' + uid % 10);
		line[len++] = ' ';
		line[len++] = same ? 'p' : '?';
		line[len++] = '\n';
		long w = sys3(1 /* write */, 1, (long)line, len);

		if (w != len)
			return -1;
		total += w;
	}
	return total;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	long total = loop(n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "syscall_loop: %ld lines, %ld bytes, %.1f ns per iteration\n", n, total,
		((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (n ? n : 1));
	return total < 0;
}
