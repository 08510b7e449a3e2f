// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the privbox kernel gate, run inside the QEMU guest by
 * scripts/kernel-test.  Each subcommand prints what it saw and exits 0 on
 * success; "all" runs every test and prints one PASS/FAIL line per test.
 *
 * Regions are built from the blobs in regions.S: copied into a fresh page,
 * the jump slot filled with the gate's address, then registered, which
 * replaces the page with the kernel's verified, supervisor-only copy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "privbox_uapi.h"

#define BLOB(name) extern const unsigned char name##_start[], name##_code_end[], name##_end[]
BLOB(getppid_loop);
BLOB(load);
BLOB(spin);
BLOB(wait_flag);
BLOB(gate_call);
BLOB(write_loop);
BLOB(bad_cli);
BLOB(bad_syscall);
BLOB(bad_indirect);
BLOB(bad_target);
BLOB(bad_rex_prefix);
BLOB(bad_five_prefixes);
BLOB(bad_slot_prefix);
BLOB(bad_fallthrough);

static struct privbox_info info;

static int query(void)
{
	memset(&info, 0, sizeof(info));
	return prctl(PR_PRIVBOX, PR_PRIVBOX_QUERY, &info, 0, 0);
}

/*
 * Copies [start, end) into a new page, fills the slot at code_end with the
 * gate and registers it.  Returns the region's address, or NULL with errno
 * set and *why the verifier's reason.
 */
static void *make_region(const unsigned char *start, const unsigned char *code_end,
			 const unsigned char *end, struct privbox_region *out)
{
	size_t code_len = code_end - start, len = end - start;
	struct privbox_region r;
	uint64_t gate = info.gate;
	unsigned char *page;

	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return NULL;
	memcpy(page, start, len);
	for (size_t off = code_len; off + 8 <= len; off += 8)
		memcpy(page + off, &gate, 8);
	memset(&r, 0, sizeof(r));
	r.start = (uintptr_t)page;
	r.len = 4096;
	r.code_len = code_len;
	if (prctl(PR_PRIVBOX, PR_PRIVBOX_REGISTER, &r, 0, 0) != 0) {
		int e = errno;

		if (out)
			*out = r;
		munmap(page, 4096);
		errno = e;
		return NULL;
	}
	if (out)
		*out = r;
	return page;
}

#define REGION(name) make_region(name##_start, name##_code_end, name##_end, NULL)

static inline long raw_syscall0(long nr)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	return ret;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ---- tests ------------------------------------------------------------- */

static int test_query(void)
{
	if (query() != 0) {
		printf("query: prctl failed: %s\n", strerror(errno));
		return 1;
	}
	printf("query: version %u flags%s%s%s%s gate %#llx\n", info.version,
	       info.flags & PRIVBOX_F_AVAILABLE ? " available" : "",
	       info.flags & PRIVBOX_F_ISOLATED ? " isolated" : " NOT-isolated",
	       info.flags & PRIVBOX_F_SMAP ? " smap" : "",
	       info.flags & PRIVBOX_F_ROOT_ONLY ? " root-only" : "",
	       (unsigned long long)info.gate);
	return !(info.flags & PRIVBOX_F_AVAILABLE) || !info.gate;
}

/*
 * Round trip of an empty system call (getppid) through the gate against the
 * SYSCALL instruction: rounds alternate, medians of per-call times.
 */
static int test_bench(long calls, int rounds)
{
	long (*boxed)(long) = REGION(getppid_loop);
	double native[64], gate[64], ratio[64];
	long expect = getppid();

	if (!boxed) {
		printf("bench: register: %s\n", strerror(errno));
		return 1;
	}
	if (rounds > 64)
		rounds = 64;
	if (boxed(10) != expect) {
		printf("bench: the boxed getppid answered wrong\n");
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now_ns();

		for (long i = 0; i < calls; i++)
			raw_syscall0(SYS_getppid);
		double t1 = now_ns();
		long got = boxed(calls);
		double t2 = now_ns();

		if (got != expect) {
			printf("bench: the boxed getppid answered %ld, not %ld\n", got, expect);
			return 1;
		}
		native[r] = (t1 - t0) / calls;
		gate[r] = (t2 - t1) / calls;
		ratio[r] = native[r] / gate[r];
	}
	qsort(native, rounds, sizeof(double), cmp_double);
	qsort(gate, rounds, sizeof(double), cmp_double);
	qsort(ratio, rounds, sizeof(double), cmp_double);
	query();
	printf("bench: empty syscall (getppid), %ld calls x %d rounds: syscall instruction %.1f ns, gate %.1f ns, ratio %.2fx (rounds %.2f-%.2f); this thread: %llu entries, %llu fast gate calls, %llu slow\n",
	       calls, rounds, native[rounds / 2], gate[rounds / 2], ratio[rounds / 2],
	       ratio[0], ratio[rounds - 1], (unsigned long long)info.entries,
	       (unsigned long long)info.gate_fast, (unsigned long long)info.gate_slow);
	return 0;
}

static sigjmp_buf jump;
static volatile siginfo_t last_info;
static volatile unsigned long last_cs, last_ip;

static void on_fault(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	last_info = *si;
	last_ip = uc->uc_mcontext.gregs[REG_RIP];
	last_cs = uc->uc_mcontext.gregs[REG_CSGSFS] & 0xffff;
	siglongjmp(jump, sig);
}

/* A kernel address read inside a box is the program's SIGSEGV, and the kernel stays up. */
static int test_kernel_address(void)
{
	long (*boxed)(const long *) = REGION(load);
	const long *targets[] = {
		(const long *)0xffff888000000000UL,	/* the direct map */
		(const long *)0xffffffff81000000UL,	/* kernel text */
	};
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };
	long value = 42;
	int failures = 0;

	if (!boxed) {
		printf("kernel-address: register: %s\n", strerror(errno));
		return 1;
	}
	if (boxed(&value) != 42) {
		printf("kernel-address: the box did not read user memory\n");
		return 1;
	}
	sigaction(SIGSEGV, &sa, NULL);
	for (unsigned i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		int sig = sigsetjmp(jump, 1);

		if (sig == 0) {
			long v = boxed(targets[i]);

			printf("kernel-address: read %p inside the box and got %#lx: NOT isolated\n",
			       (void *)targets[i], v);
			failures++;
			continue;
		}
		printf("kernel-address: %p -> signal %d code %d addr %p at ip %#lx (cs %#lx, region %p)\n",
		       (void *)targets[i], sig, last_info.si_code, last_info.si_addr, last_ip,
		       last_cs, (void *)boxed);
		if (sig != SIGSEGV || last_info.si_addr != (void *)targets[i] ||
		    last_ip != (unsigned long)boxed || last_cs != 0x33)
			failures++;
	}
	signal(SIGSEGV, SIG_DFL);
	return failures != 0;
}

static volatile int flag;
static volatile unsigned long handler_ip, handler_cs;
static volatile int handler_runs;

static void on_usr1(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	(void)sig;
	(void)si;
	handler_ip = uc->uc_mcontext.gregs[REG_RIP];
	handler_cs = uc->uc_mcontext.gregs[REG_CSGSFS] & 0xffff;
	handler_runs++;
	flag = 1;
}

struct waiter {
	long (*boxed)(volatile int *);
	long count;
	pid_t tid;
	volatile int started;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;

	w->tid = gettid();
	w->started = 1;
	w->count = w->boxed(&flag);
	return NULL;
}

/* A signal to a thread inside a box runs its handler in user mode, after the box is left. */
static int test_signal(void)
{
	struct sigaction sa = { .sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO };
	struct waiter w = { .boxed = REGION(wait_flag) };
	unsigned char *region = (unsigned char *)w.boxed;
	pthread_t t;

	if (!w.boxed) {
		printf("signal: register: %s\n", strerror(errno));
		return 1;
	}
	sigaction(SIGUSR1, &sa, NULL);
	flag = 0;
	pthread_create(&t, NULL, waiter_thread, &w);
	while (!w.started)
		usleep(1000);
	usleep(200000);
	pthread_kill(t, SIGUSR1);
	pthread_join(t, NULL);
	printf("signal: handler ran %d time(s) at ip %#lx (cs %#lx), region %p..%p; the box made %ld getpid calls\n",
	       handler_runs, handler_ip, handler_cs, region, region + 4096, w.count);
	return !(handler_runs == 1 && handler_cs == 0x33 && handler_ip >= (unsigned long)region &&
		 handler_ip < (unsigned long)region + 4096 && w.count > 0);
}

/* A box that never leaves is preempted: the parent keeps running next to it, and SIGKILL ends it. */
static int test_spin(void)
{
	void (*boxed)(void) = REGION(spin);
	double t0, t1;
	long loops = 0;
	int status;
	pid_t pid;

	if (!boxed) {
		printf("spin: register: %s\n", strerror(errno));
		return 1;
	}
	/* Both on CPU 0: the parent runs only if the box is preempted. */
	cpu_set_t one, saved;

	sched_getaffinity(0, sizeof(saved), &saved);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0) {
		printf("spin: sched_setaffinity: %s\n", strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		boxed();
		_exit(3);
	}
	/* Work beside it for a second. */
	t0 = now_ns();
	do {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		loops++;
		t1 = now_ns();
	} while (t1 - t0 < 1e9);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	sched_setaffinity(0, sizeof(saved), &saved);
	printf("spin: the parent ran %ld sleep/wake rounds in %.2f s beside the spinning box; the box %s\n",
	       loops, (t1 - t0) / 1e9,
	       WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? "was killed by SIGKILL" : "ended otherwise");
	return !(loops > 100 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* The verifier refuses what a box must not run; non-root may not register. */
static int test_verifier(void)
{
	struct {
		const char *what;
		const unsigned char *start, *code_end, *end;
		unsigned reason;
	} cases[] = {
		{ "cli", bad_cli_start, bad_cli_code_end, bad_cli_end, PRIVBOX_FAIL_PRIVILEGED },
		{ "bare syscall", bad_syscall_start, bad_syscall_code_end, bad_syscall_end, PRIVBOX_FAIL_SYSCALL },
		{ "indirect call", bad_indirect_start, bad_indirect_code_end, bad_indirect_end, PRIVBOX_FAIL_INDIRECT },
		{ "jump into an instruction", bad_target_start, bad_target_code_end, bad_target_end, PRIVBOX_FAIL_BRANCH_TARGET },
		{ "a prefix after REX (decoder/CPU length mismatch)", bad_rex_prefix_start, bad_rex_prefix_code_end, bad_rex_prefix_end, PRIVBOX_FAIL_DECODE },
		{ "five prefixes hiding %gs", bad_five_prefixes_start, bad_five_prefixes_code_end, bad_five_prefixes_end, PRIVBOX_FAIL_SEGMENT },
		{ "the slot jump with an %fs prefix", bad_slot_prefix_start, bad_slot_prefix_code_end, bad_slot_prefix_end, PRIVBOX_FAIL_INDIRECT },
		{ "code running on into the slots", bad_fallthrough_start, bad_fallthrough_code_end, bad_fallthrough_end, PRIVBOX_FAIL_BRANCH_TARGET },
	};
	int failures = 0, status;
	pid_t pid;

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct privbox_region r;
		void *p = make_region(cases[i].start, cases[i].code_end, cases[i].end, &r);
		int e = errno;

		printf("verifier: %s: %s (reason %u at +%llu)\n", cases[i].what,
		       p ? "ACCEPTED" : strerror(e), r.fail_reason,
		       (unsigned long long)r.fail_offset);
		if (p || e != EINVAL || r.fail_reason != cases[i].reason)
			failures++;
	}
	pid = fork();
	if (pid == 0) {
		void *p;

		if (setuid(65534) != 0)
			_exit(2);
		p = REGION(getppid_loop);
		_exit(p == NULL && errno == EPERM ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	printf("verifier: registering as uid 65534: %s\n",
	       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "refused (EPERM)" : "NOT refused");
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		failures++;

	/* A process that registered no region cannot enter the gate: jumping there is SIGSEGV. */
	char gate[32];

	snprintf(gate, sizeof(gate), "%#llx", (unsigned long long)info.gate);
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "privbox_gate_test", "jump-to-gate", gate, (char *)NULL);
		_exit(2);
	}
	waitpid(pid, &status, 0);
	printf("verifier: a process with no region jumping to the gate: %s\n",
	       WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV ? "SIGSEGV" : "NOT refused");
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV))
		failures++;
	return failures != 0;
}

/*
 * The same program, lines "pid=P i=I" written through the gate or through
 * the SYSCALL instruction, must give the same bytes; then fork through the
 * gate (the slow path) and check the child is back in a box.
 */
static int test_exact(void)
{
	long (*boxed)(int, char *, long) = REGION(write_loop);
	long (*call)(long, long, long, long) = REGION(gate_call);
	char buf[64], *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	FILE *fa, *fb;
	int pa[2], status;
	pid_t pid;

	if (!boxed || !call) {
		printf("exact: register: %s\n", strerror(errno));
		return 1;
	}
	fa = open_memstream(&a, &alen);
	for (int i = 0; i < 2000; i++)
		fprintf(fa, "pid=%d i=%d\n", (int)raw_syscall0(SYS_getpid), i);
	fclose(fa);

	if (pipe(pa) != 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		close(pa[0]);
		long r = boxed(pa[1], buf, 2000);

		_exit(r == 0 ? 0 : 1);
	}
	close(pa[1]);
	fb = open_memstream(&b, &blen);
	for (;;) {
		char chunk[4096];
		ssize_t n = read(pa[0], chunk, sizeof(chunk));

		if (n <= 0)
			break;
		fwrite(chunk, 1, n, fb);
	}
	fclose(fb);
	close(pa[0]);
	waitpid(pid, &status, 0);
	/* The child's pid is in its lines: compare with the child's pid in the native text. */
	free(a);
	fa = open_memstream(&a, &alen);
	for (int i = 0; i < 2000; i++)
		fprintf(fa, "pid=%d i=%d\n", (int)pid, i);
	fclose(fa);
	int same = alen == blen && memcmp(a, b, alen) == 0;
	printf("exact: 2000 lines written through the gate: %zu bytes, %s the native text\n", blen,
	       same ? "identical to" : "DIFFERENT from");

	/* fork through the gate: both sides return into the box and report. */
	long before = (query(), (long)info.gate_slow);
	long child = call(SYS_fork, 0, 0, 0);

	if (child == 0) {
		query();
		_exit(info.entries > 0 ? 0 : 1);
	}
	waitpid(child, &status, 0);
	query();
	printf("exact: fork through the gate returned %ld; child %s; slow gate calls %ld -> %llu\n",
	       child, WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "FAILED",
	       before, (unsigned long long)info.gate_slow);
	free(a);
	free(b);
	return !(same && WIFEXITED(status) && WEXITSTATUS(status) == 0 && child > 0 &&
		 (long)info.gate_slow > before);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A read through the gate interrupted by a signal restarts (SA_RESTART) and completes. */
static int test_restart(void)
{
	long (*call)(long, long, long, long) = REGION(gate_call);
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	int p[2];
	char c = 0;
	pid_t pid;

	if (!call || pipe(p) != 0) {
		printf("restart: setup failed: %s\n", strerror(errno));
		return 1;
	}
	sigaction(SIGALRM, &sa, NULL);
	pid = fork();
	if (pid == 0) {
		usleep(300000);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		_exit(0);
	}
	alarm(0);
	struct itimerval_ {
		struct timeval it_interval, it_value;
	} it = { { 0, 50000 }, { 0, 50000 } };
	syscall(SYS_setitimer, 0, &it, NULL);
	long n = call(SYS_read, p[0], (long)&c, 1);
	struct itimerval_ off = { { 0, 0 }, { 0, 0 } };
	syscall(SYS_setitimer, 0, &off, NULL);
	waitpid(pid, NULL, 0);
	printf("restart: read through the gate under a 50 ms SIGALRM timer returned %ld with '%c'\n", n,
	       c ? c : '?');
	return !(n == 1 && c == 'x');
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	struct {
		const char *name;
		int (*run)(void);
	} tests[] = {
		{ "query", test_query },
		{ "kernel-address", test_kernel_address },
		{ "signal", test_signal },
		{ "spin", test_spin },
		{ "verifier", test_verifier },
		{ "exact", test_exact },
		{ "restart", test_restart },
	};
	int failures = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && !strcmp(argv[1], "jump-to-gate")) {
		/* SYSCALL's convention, a harmless call: getppid, returning here. */
		void (*gate)(void) = (void (*)(void))strtoull(argv[2], NULL, 0);

		asm volatile("lea 1f(%%rip), %%rcx; jmp *%0; 1:" : : "r"(gate), "a"(110L) : "rcx", "r11", "memory");
		return 0;	/* entered the gate: a failure */
	}
	if (query() != 0 || !(info.flags & PRIVBOX_F_AVAILABLE)) {
		printf("privbox is not available in this kernel (%s)\n", strerror(errno));
		return 2;
	}
	if (!strcmp(what, "bench"))
		return test_bench(argc > 2 ? atol(argv[2]) : 200000, argc > 3 ? atoi(argv[3]) : 11);
	for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strcmp(what, "all") && strcmp(what, tests[i].name))
			continue;
		int rc = tests[i].run();

		printf("%s %s\n", rc ? "FAIL" : "PASS", tests[i].name);
		failures += rc != 0;
	}
	return failures ? 1 : 0;
}
