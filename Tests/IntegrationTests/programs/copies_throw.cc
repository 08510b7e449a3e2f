// copies_throw.cc — a C++ exception thrown through a frame that accelerate mode runs from an
// instrumented copy (Sources/Preload/rewriter/unwind.c registers the copy's unwind entry).
//   copies_throw N   a loop of raw getpid calls that calls a function throwing at iteration N/2;
//                    main catches it and prints how far the loop got
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

static long raw_getpid()
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(39L) : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static void maybe_throw(long i, long n)
{
    if (i == n / 2)
        throw std::runtime_error("halfway");
}

// No destructor or handler here: the function has no landing pads, so it is copied, and the
// exception must unwind through the copy to reach main.
__attribute__((noinline)) static long getpid_loop(long n, long pid)
{
    long same = 0;
    for (long i = 0; i < n; i++) {
        same += raw_getpid() == pid;
        maybe_throw(i, n);
    }
    return same;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    long pid = raw_getpid();
    try {
        std::printf("finished %ld\n", getpid_loop(n, pid));
    } catch (const std::exception &e) {
        std::printf("caught %s\n", e.what());
    }
    return 0;
}
