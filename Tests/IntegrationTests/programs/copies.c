/*
 * copies.c — hot loops for accelerate mode's instrumented copies (Sources/Preload/rewriter/).
 *   inline N   raw `syscall` instructions: getpid, and a 1-byte write to stdout; every 64th
 *              iteration a getpid made with known values in every register the kernel keeps,
 *              the carry and overflow flags set and data in the red zone, all checked after it
 *   call N     getpid() through libc (a call to the wrapper) and a 1-byte write()
 *   tid N      raw gettid in two threads at once, each checked against gettid()
 *   tidcall N  gettid() through libc in two threads at once, each checked against the raw call
 *   raise N    raise(SIGURG) (ignored): glibc makes getpid and gettid inside libc itself
 *   refuse N   the raw getpid loop in a function with an indirect jump, which is not copied
 *   unwind N   the raw loop, whose function calls backtrace() once through a helper: the number
 *              of frames must not change when the loop runs from a copy
 *   fork N     the raw and the call loops in a fork child and a vfork child (each prints its own
 *              pid checks), then in the parent
 *   seccomp N  the raw and the call loops, then a seccomp filter that makes getpid fail with
 *              EPERM, then both loops again: every getpid must now fail, as the kernel says
 * stdout depends only on what the calls returned, so it is the same natively and accelerated.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static inline long raw3(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

/* checked_getpid(pid): a leaf function (written in assembly, so that nothing else uses its red
 * zone) that makes getpid with sentinels in rdi, rsi, rdx, r8, r9 and r10, the carry and overflow
 * flags set and two words in the red zone below rsp, and returns 1 if the answer was pid and all
 * of them survived the call. */
int checked_getpid(long pid);
__asm__(".text\n"
        ".globl checked_getpid\n"
        ".type checked_getpid, @function\n"
        "checked_getpid:\n"
        "    .cfi_startproc\n"
        "    movq %rdi, -24(%rsp)\n"
        "    movq $0x5a5a5a5a, -8(%rsp)\n"
        "    movq $0x1111, %rdi\n"
        "    movq $0x2222, %rsi\n"
        "    movq $0x3333, %rdx\n"
        "    movq $0x8888, %r8\n"
        "    movq $0x9999, %r9\n"
        "    movq $0xaaaa, %r10\n"
        "    movl $0x7fffffff, %ecx\n"
        "    addl $1, %ecx\n" /* OF = 1 */
        "    stc\n"           /* CF = 1 */
        "    movl $39, %eax\n"
        "    syscall\n"
        "    setc %cl\n"
        "    seto %ch\n"
        "    cmpq -24(%rsp), %rax\n"
        "    jne 1f\n"
        "    cmpq $0x5a5a5a5a, -8(%rsp)\n"
        "    jne 1f\n"
        "    cmpq $0x1111, %rdi\n"
        "    jne 1f\n"
        "    cmpq $0x2222, %rsi\n"
        "    jne 1f\n"
        "    cmpq $0x3333, %rdx\n"
        "    jne 1f\n"
        "    cmpq $0x8888, %r8\n"
        "    jne 1f\n"
        "    cmpq $0x9999, %r9\n"
        "    jne 1f\n"
        "    cmpq $0xaaaa, %r10\n"
        "    jne 1f\n"
        "    cmpw $0x0101, %cx\n"
        "    jne 1f\n"
        "    movl $1, %eax\n"
        "    ret\n"
        "1:  xorl %eax, %eax\n"
        "    ret\n"
        "    .cfi_endproc\n"
        ".size checked_getpid, .-checked_getpid\n");

__attribute__((noinline)) static long inline_loop(long n, long pid, long *regs_ok)
{
    long same = 0;
    for (long i = 0; i < n; i++) { /* LOOP:inline:begin */
        same += raw3(SYS_getpid, 0, 0, 0) == pid;
        raw3(SYS_write, 1, (long)".", 1);
        if ((i & 63) == 0)
            *regs_ok += checked_getpid(pid);
    } /* LOOP:inline:end */
    return same;
}

__attribute__((noinline)) static long call_loop(long n, long pid)
{
    long same = 0;
    for (long i = 0; i < n; i++) {
        same += getpid() == pid;
        if (write(1, ".", 1) != 1)
            return -1;
    }
    return same;
}

static long tid_n;
static void *tid_thread(void *arg)
{
    long tid = syscall(SYS_gettid), same = 0;
    for (long i = 0; i < tid_n; i++)
        same += raw3(SYS_gettid, 0, 0, 0) == tid;
    *(long *)arg = same;
    return 0;
}

__attribute__((noinline)) static void *tid_call_thread(void *arg)
{
    long tid = raw3(SYS_gettid, 0, 0, 0), same = 0;
    for (long i = 0; i < tid_n; i++)
        same += gettid() == tid;
    *(long *)arg = same;
    return 0;
}

/* A computed goto: an indirect jump inside the function, which the rewriter refuses to copy (a
 * jump table's targets are in the original). */
__attribute__((noinline)) static long refuse_loop(long n, long pid)
{
    static void *const next[] = {&&even, &&odd};
    long same = 0, acc = 0;
    for (long i = 0; i < n; i++) {
        same += raw3(SYS_getpid, 0, 0, 0) == pid;
        goto *next[i & 1];
    even:
        acc += 3;
        continue;
    odd:
        acc ^= 5;
    }
    return same + (acc & 0);
}

static int frames_seen;
__attribute__((noinline)) static void count_frames(void)
{
    void *frames[64];
    frames_seen = backtrace(frames, 64);
}

__attribute__((noinline)) static long unwind_loop(long n, long pid)
{
    long same = 0;
    for (long i = 0; i < n; i++) {
        same += raw3(SYS_getpid, 0, 0, 0) == pid;
        if (i == n / 2)
            count_frames();
    }
    return same;
}

static void run_inline(long n, const char *who, int with_calls)
{
    long pid = syscall(SYS_getpid), regs = 0;
    long same = inline_loop(n, pid, &regs);
    printf("\n%s: same pid %ld of %ld, registers kept %ld of %ld\n", who, same, n, regs, (n + 63) / 64);
    if (with_calls)
        printf("\n%s: calls same pid %ld of %ld\n", who, call_loop(n, pid), n);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long n = argc > 2 ? atol(argv[2]) : 1000;
    setvbuf(stdout, 0, _IOLBF, 0);
    if (!strcmp(argv[1], "inline")) {
        run_inline(n, "inline", 0);
    } else if (!strcmp(argv[1], "call")) {
        long pid = syscall(SYS_getpid);
        printf("\nsame pid %ld of %ld\n", call_loop(n, pid), n);
    } else if (!strcmp(argv[1], "tid") || !strcmp(argv[1], "tidcall")) {
        pthread_t t[2];
        long same[2];
        tid_n = n;
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], 0, argv[1][3] ? tid_call_thread : tid_thread, &same[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], 0);
        printf("same tid %ld and %ld of %ld\n", same[0], same[1], n);
    } else if (!strcmp(argv[1], "raise")) {
        for (long i = 0; i < n; i++)
            if (raise(SIGURG) != 0)
                return 3;
        printf("raised %ld\n", n);
    } else if (!strcmp(argv[1], "refuse")) {
        long pid = syscall(SYS_getpid);
        printf("same pid %ld of %ld\n", refuse_loop(n, pid), n);
    } else if (!strcmp(argv[1], "unwind")) {
        long pid = syscall(SYS_getpid);
        long same = unwind_loop(n, pid);
        printf("same pid %ld of %ld, %d frames\n", same, n, frames_seen);
    } else if (!strcmp(argv[1], "fork")) {
        pid_t child = fork();
        if (child == 0) {
            run_inline(n, "fork child", 1);
            _exit(0);
        }
        waitpid(child, 0, 0);
        child = vfork();
        if (child == 0) {
            long pid = syscall(SYS_getpid), regs = 0;
            long same = inline_loop(n, pid, &regs), calls = call_loop(n, pid);
            char line[128];
            int len = snprintf(line, sizeof line, "\nvfork child: same pid %ld of %ld, calls %ld of %ld\n",
                               same, n, calls, n);
            raw3(SYS_write, 1, (long)line, len);
            _exit(0);
        }
        waitpid(child, 0, 0);
        run_inline(n, "parent", 1);
    } else if (!strcmp(argv[1], "seccomp")) {
        long pid = syscall(SYS_getpid), regs = 0;
        printf("\nbefore: raw %ld of %ld", inline_loop(n, pid, &regs), n);
        printf(", calls %ld of %ld\n", call_loop(n, pid), n);
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
            perror("seccomp");
            return 4;
        }
        /* -EPERM from the raw call, -1 from getpid() (which has no error return). */
        printf("\nafter: raw %ld of %ld", inline_loop(n, -EPERM, &regs), n);
        printf(", calls %ld of %ld\n", call_loop(n, -1), n);
    } else {
        return 2;
    }
    return 0;
}
