/*
 * privbox_shim.h — the contract between the C preload (libprivbox.so), the Swift core
 * (libprivbox_core.so) and the `privbox` CLI.
 *
 * Everything in here is plain data and pure functions: no allocation, no global state, so the
 * same code can run in the preload's constructor and in Swift unit tests.
 */
#ifndef PRIVBOX_SHIM_H
#define PRIVBOX_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration (PRIVBOX_* environment variables) ---------------------------------------- */

enum pb_mode {
    PB_MODE_OFF = 0,        /* pure pass-through: every wrapper forwards to libc */
    PB_MODE_PROFILE = 1,    /* count syscalls per call site, write a profile at exit */
    PB_MODE_ACCELERATE = 2, /* load a profile, route profiled sites to executors */
    PB_MODE_AUTO = 3,       /* profile a warm-up, then accelerate in the same process */
};

enum pb_log_level {
    PB_LOG_ERROR = 0,
    PB_LOG_WARN = 1,
    PB_LOG_INFO = 2,
    PB_LOG_DEBUG = 3,
};

#define PB_VERSION "0.1.0" /* also Profiler.privboxVersion; ConfigTests checks they agree */
#define PB_PATH_MAX 4096
#define PB_ERROR_MAX 512

/* Default profile path when PRIVBOX_PROFILE is unset. In profile mode "%p" is replaced by the
 * writing process's pid, so every process of a tree writes its own file. */
#define PB_DEFAULT_PROFILE_WRITE "privbox-profile.%p.json"
#define PB_DEFAULT_PROFILE_READ "privbox-profile.json"

struct pb_config {
    int mode;              /* enum pb_mode */
    int log_level;         /* enum pb_log_level */
    int inherit;           /* 1: children keep the preload (default); 0: it is removed at start */
    int inline_discovery;  /* PRIVBOX_INLINE=1: profile mode also traps the system calls that do
                              not go through libc's wrappers (Syscall User Dispatch) */
    int copies;            /* PRIVBOX_COPY: 0 turns off accelerate mode's instrumented copies;
                              1 (default) copies where the profiled calls repay the copy's
                              start-up cost; 2 (always) copies every eligible function (see
                              Sources/Preload/rewriter/install.c, accelerate/routes.c) */
    int gate;              /* PRIVBOX_GATE: 1 (on) boxes copies through a privbox kernel's gate
                              when there is one; 0 (off, the default) never */
    int profile_path_set;  /* PRIVBOX_PROFILE was given */
    char profile_path[PB_PATH_MAX];
    char error[PB_ERROR_MAX]; /* the first problem found, "" if none */
};

/*
 * Reads the PRIVBOX_* variables from a NULL-terminated "NAME=VALUE" array.
 * Returns 0 when every PRIVBOX_* variable is known and well-formed. Otherwise returns -1, puts one
 * human-readable sentence (without the "privbox:" prefix or newline) in cfg->error, and sets
 * cfg->mode to PB_MODE_OFF: bad input means the program runs natively.
 * Async-signal-safe and allocation-free (it runs in the preload's constructor).
 */
int pb_config_parse(struct pb_config *cfg, char *const *envp);

/* Every PRIVBOX_* variable privbox reads, null-terminated: the unknown-variable hint lists them,
 * and a process that sends its tree native removes them all. */
extern const char *const pb_known_vars[];

const char *pb_mode_name(int mode);
const char *pb_log_level_name(int level);

/* Expands "%p" to pid and "%%" to "%" in pattern. Returns 0, or -1 if out is too small. */
int pb_expand_path(const char *pattern, long pid, char *out, size_t outlen);

/* ---- libprivbox_core.so (Swift), loaded by the preload only in accelerate mode -------------- */

/* Checks the profile at `path` for the running program `exe` (whose GNU build-id is given).
 * Returns 1 when the profile is valid and has entries for this program, 0 when it is valid but
 * records nothing for it, -1 when it is missing, corrupt, truncated or of another schema, and -2
 * when it was recorded for a different build of the program (one sentence in err for both). */
typedef int (*pb_core_check_profile_fn)(const char *path, const char *exe, const uint8_t *build_id,
                                        size_t build_id_len, char *err, size_t errlen);

/* The executor plan for this program: the call sites of the profile's hot loops (or, in a profile
 * without loops, its hot sites), as module + offset. Modules are named by path (the main program
 * by its /proc/self/exe path) and lower-case hex build-id ("" if none). Returns 1 with the plan, 0
 * when the profile holds nothing for this program, -1/-2 as pb_core_check_profile_fn. */
struct pb_plan_module {
    char path[PB_PATH_MAX];
    char build_id[81];
};
#define PB_PLAN_FUNCTION_MAX 64
struct pb_plan_site {
    uint64_t offset;        /* return address - module base (inline: the end of the syscall) */
    uint32_t module;        /* index into the modules */
    uint32_t syscall_nr;
    uint32_t is_inline;     /* a `syscall` instruction, not a call to a wrapper */
    uint32_t function_size; /* bounds of the function holding the site; 0: unknown */
    uint64_t function_offset;
    char function[PB_PLAN_FUNCTION_MAX]; /* its name, for reports; no blank or newline */
    uint64_t calls;         /* calls the profiled process made from the site; 0: unknown */
};
typedef int (*pb_core_plan_fn)(const char *path, const char *exe, const uint8_t *build_id,
                               size_t build_id_len, struct pb_plan_module *modules,
                               size_t module_cap, size_t *module_count, struct pb_plan_site *sites,
                               size_t site_cap, size_t *site_count, char *err, size_t errlen);

/* ---- shared by the preload, the core and the CLI --------------------------------------------- */

/* The raw system call every part of the preload uses, without going through any wrapper (no
 * interposer, errno untouched): returns the kernel's value (-errno on error). raw_syscall.c. */
long pb_raw_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

/* The n bytes as 2n lower-case hex digits and a NUL into out (2n+1 bytes). hex.c. */
void pb_hex_encode(const uint8_t *bytes, size_t n, char *out);

/* Where privbox's caches live (cache_path.c), the one rule for the preload and the CLI:
 * $XDG_CACHE_HOME/privbox, else $HOME/.cache/privbox; only an absolute directory counts, as the
 * XDG specification says, and with neither there is no cache. The root is base + suffix: 0, or -1
 * when there is none. */
int pb_cache_root(const char **base, const char **suffix);
/* The root + "/" + leaf into out: 0, or -1 when there is no root or it is too long. */
int pb_cache_path(const char *leaf, char *out, size_t len);

/* ---- measurement helpers for `privbox doctor` and the benchmarks ----------------------------- */

/* Median over `batches` of the mean cost, in TSC cycles, of one raw `syscall` instruction
 * (getppid, which no libc caches), and of one call to an empty non-inlined function. */
double pb_measure_raw_syscall_cycles(int batches, int iterations);
double pb_measure_function_call_cycles(int batches, int iterations);
/* TSC cycles per nanosecond, measured against CLOCK_MONOTONIC over about `ms` milliseconds. */
double pb_measure_cycles_per_ns(int ms);

/*
 * Every file the preload reads, and every module file the CLI's symbolizer opens, is opened by
 * pb_open_regular (files.c): path (relative to dirfd; `flags` may
 * add O_NOFOLLOW) is looked at first and opened only if it is a regular file, without blocking
 * (O_NONBLOCK: a FIFO swapped in meanwhile cannot hang the open) and checked again once open.
 * The descriptor (with *st filled), or -errno; a node that is not a regular file gives a negative
 * value with *kind saying what it is ("a FIFO"), *kind is 0 otherwise. Raw calls only.
 */
struct stat;
long pb_open_regular(int dirfd, const char *path, int flags, struct stat *st, const char **kind);
/* "a character device", "a FIFO", ... for an st_mode. */
const char *pb_file_kind(unsigned mode);

/* execvpe(3): PATH search with an explicit environment. Returns only on failure. */
int pb_execvpe(const char *file, char *const argv[], char *const envp[]);

/* Feature probes: 0 when available, else the errno that says why not. */
int pb_probe_syscall_user_dispatch(void);
int pb_probe_rseq(void);
/* The kernel gate's user API, mirrored from kernel/patches/0001 (arch/x86/include/uapi/asm/privbox.h
 * and include/uapi/linux/prctl.h; distribution headers do not have them). */
#define PB_PR_PRIVBOX 0x50425831
#define PB_PR_PRIVBOX_QUERY 1
#define PB_PR_PRIVBOX_REGISTER 2
#define PB_PRIVBOX_VERSION 1
#define PB_PRIVBOX_F_AVAILABLE 1u
#define PB_PRIVBOX_F_ISOLATED 2u
struct pb_privbox_info {
    uint32_t version, flags;
    uint64_t gate, max_region, entries, gate_fast, gate_slow;
};
struct pb_privbox_region {
    uint64_t start, len, code_len, fail_offset;
    uint32_t fail_reason, reserved;
};
/* PR_PRIVBOX_QUERY: 0 on a kernel with privbox's gate, filling *info (flags: bit 0 available,
 * 1 isolated, 2 SMAP, 3 root only; the gate's address is 0 unless CAP_SYS_ADMIN; the calling
 * thread's counters); else an errno (EINVAL on a stock kernel). */
int pb_probe_privbox_gate(struct pb_privbox_info *info);
int pb_probe_io_uring(void);
/* Space-separated names of the functions the vDSO exports. 0, or -1 if out is too small. */
int pb_vdso_symbols(char *out, size_t outlen);
/* The address of the vDSO function `name` (e.g. "__vdso_getrandom"), or null. */
void *pb_vdso_lookup(const char *name);

#ifdef __cplusplus
}
#endif
#endif
