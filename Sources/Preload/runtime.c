/*
 * runtime.c — the preload's life cycle: configuration at load, fork, and the profile at exit.
 *
 * Nothing here is on a syscall path. The constructor runs before main() and must leave the
 * process as it found it when the mode is off: it reads the environment and opens, maps and
 * prints nothing. It changes the environment in four cases only, editing it itself (see "the
 * environment the program and its children see"): PRIVBOX_INHERIT=0 or bad input (libprivbox.so
 * and PRIVBOX_* are removed, so the programs this one starts run natively), a relative LD_PRELOAD
 * entry for libprivbox.so (made absolute, see pb_make_preload_absolute), and in profile and
 * accelerate modes a relative or unset PRIVBOX_PROFILE (made absolute, pb_make_profile_absolute).
 *
 * It also holds the preload's rules for files, which every other file uses: every file the
 * preload reads is opened by pb_open_regular (never blocking, regular files only; the Swift core
 * reads the profile again itself, under the same rules: ProfileIO.readTrusted), its caches and
 * the calibration only through pb_open_trusted_cache_file (the user's and nobody else's to write,
 * down from the cache root), and what it writes (the profile, the caches) only ever replaces a
 * missing path or a regular file (pb_replace_regular). The descriptors these open are closed
 * before they return; what they create is a temporary file next to its target and, for a cache,
 * the missing directories of its path (mode 0700).
 */
#include "executors/executor.h"
#include "executors/fusion.h"
#include "accelerate/routes.h"
#include "accelerate/plan_cache.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

struct pb_process pb_proc;
volatile int pb_counting;

uint64_t pb_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall, async-signal-safe */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

long pb_write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        long n = pb_raw_syscall6(SYS_write, fd, (long)buf, (long)len, 0, 0, 0);
        if (n == -EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? n : -EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One line on fd 2, if fd 2 is privbox's to write to. It is only when it was open when the
 * constructor ran: a program started with fd 2 closed (`2>&-`, a daemon's supervisor) gets fd 2
 * back for the first file it opens, and a line written there would land in the program's data.
 * A program that closes fd 2 later and opens a file on it is not told apart: its stderr was a
 * stream privbox was given, and what is at fd 2 then is the program's own redirection (dup2). */
void pb_log(int level, const char *fmt, ...)
{
    if (level > pb_proc.log_level || !pb_proc.log_fd_open)
        return;
    pb_fuse_flush(); /* stderr may share a fused fd's file description */
    int saved = errno;
    char line[1024];
    int head = snprintf(line, sizeof line, "privbox: ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + head, sizeof line - (size_t)head - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)head + (n < 0 ? 0 : (size_t)n);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    for (size_t i = (size_t)head; i < len; i++) /* one event, one line */
        if (line[i] == '\n')
            line[i] = ' ';
    line[len++] = '\n';
    pb_write_all(2, line, len); /* stderr full or gone: privbox's messages are best effort */
    errno = saved;
}

void *pb_resolve_soft(const char *name)
{
    /* At start-up every wrapper is resolved; a function an older libc lacks (closefrom before
     * glibc 2.34, say) stays null, and only a call to it reaches pb_resolve's abort below. */
    return dlsym(RTLD_NEXT, name);
}

void *pb_resolve(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* Cannot happen for a symbol the program links against (it would not have loaded);
         * calling a null pointer would crash the program, so fail loudly and precisely. */
        pb_log(PB_LOG_ERROR, "libc has no %s; cannot forward the call", name);
        abort();
    }
    return p;
}

/* ---- modules and build-ids ------------------------------------------------------------------- */

struct pb_module_scan {
    struct pb_module_record *modules;
    uint64_t (*ranges)[2]; /* executable PT_LOAD ranges, one per module */
    size_t count, cap;
    char *paths;           /* storage for path strings */
    size_t paths_used, paths_cap;
};

void pb_build_id(const struct dl_phdr_info *info, struct pb_module_record *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            size_t name_sz = (n->n_namesz + 3u) & ~3u, desc_sz = (n->n_descsz + 3u) & ~3u;
            const char *name = p + sizeof *n, *desc = name + name_sz;
            if (desc + n->n_descsz > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                size_t len = n->n_descsz < PB_BUILD_ID_MAX ? n->n_descsz : PB_BUILD_ID_MAX;
                memcpy(m->build_id, desc, len);
                m->build_id_len = (uint32_t)len;
                return;
            }
            p = desc + desc_sz;
        }
    }
}

const char *pb_exe_path(void)
{
    static char exe[PB_PATH_MAX];
    if (!exe[0]) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
    }
    return exe;
}

static int pb_scan_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct pb_module_scan *scan = data;
    if (scan->count == scan->cap)
        return 1;
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : 0;
    if (!path) {
        /* The main program and, with some loaders, the vDSO come without a name; the vDSO is
         * the one loaded at AT_SYSINFO_EHDR. */
        int is_vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR) == (uintptr_t)info->dlpi_addr;
        path = is_vdso ? "[vdso]" : pb_exe_path();
    }
    size_t len = strlen(path) + 1;
    if (scan->paths_used + len > scan->paths_cap)
        return 1;
    struct pb_module_record *m = &scan->modules[scan->count];
    memset(m, 0, sizeof *m);
    memcpy(scan->paths + scan->paths_used, path, len);
    m->path = scan->paths + scan->paths_used;
    scan->paths_used += len;
    m->base = info->dlpi_addr;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uint64_t a = info->dlpi_addr + ph->p_vaddr;
            if (a < lo) lo = a;
            if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
        }
    }
    scan->ranges[scan->count][0] = lo;
    scan->ranges[scan->count][1] = hi;
    pb_build_id(info, m);
    scan->count++;
    return 0;
}

/* ---- files: reads that cannot block, trusted caches, replacing only regular files --------------- */

long pb_read_fd(long fd, char *buf, size_t cap)
{
    size_t used = 0;
    while (cap && used < cap - 1) {
        long n = pb_raw_syscall6(SYS_read, fd, (long)(buf + used), (long)(cap - 1 - used), 0, 0, 0);
        if (n == -EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (cap)
        buf[used] = '\0';
    return (long)used;
}

long pb_read_file(const char *path, char *buf, size_t cap)
{
    /* Also /proc files: regular files of size 0, read to their end like any other. */
    struct stat st;
    const char *kind;
    long fd = pb_open_regular(AT_FDCWD, path, 0, &st, &kind);
    return fd < 0 ? -1 : pb_read_fd(fd, buf, cap);
}

/* The cache root is base + suffix: $XDG_CACHE_HOME/privbox, else $HOME/.cache/privbox. */
static int pb_cache_root(const char **base, const char **suffix)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') {
        *base = xdg;
        *suffix = "/privbox";
    } else if (home && home[0] == '/') {
        *base = home;
        *suffix = "/.cache/privbox";
    } else {
        return -1;
    }
    return 0;
}

int pb_cache_path(const char *leaf, char *out, size_t len)
{
    const char *base, *suffix;
    if (pb_cache_root(&base, &suffix) != 0)
        return -1;
    int n = snprintf(out, len, "%s%s/%s", base, suffix, leaf);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static uid_t pb_euid(void) { return (uid_t)pb_raw_syscall6(SYS_geteuid, 0, 0, 0, 0, 0, 0); }

/* The one rule for what privbox trusts only from the user: owned by the effective uid (or by
 * root, where allow_root says so: a profile may be a system's, a cache never is) and writable by
 * nobody else. 0 when trusted; 1 with why ("owned by uid N", "writable by group or others (mode
 * 0NNN)"), which callers put into their own sentence. */
static int pb_distrusted(const struct stat *st, int allow_root, char *why, size_t whylen)
{
    if (st->st_uid != pb_euid() && !(allow_root && st->st_uid == 0))
        snprintf(why, whylen, "owned by uid %u", (unsigned)st->st_uid);
    else if (st->st_mode & (S_IWGRP | S_IWOTH))
        snprintf(why, whylen, "writable by group or others (mode %04o)", (unsigned)(st->st_mode & 07777));
    else
        return 0;
    return 1;
}

/* Into why: the reason a directory of the cache (path[0..end)) is not trusted, "" if it is. */
static void pb_distrust_dir(long fd, const char *path, size_t end, char *why, size_t whylen)
{
    struct stat st;
    char reason[64];
    why[0] = '\0';
    if (pb_raw_syscall6(SYS_fstat, fd, (long)&st, 0, 0, 0, 0) != 0)
        snprintf(why, whylen, "directory %.*s cannot be examined", (int)end, path);
    else if (pb_distrusted(&st, 0, reason, sizeof reason))
        snprintf(why, whylen, "directory %.*s is %s", (int)end, path, reason);
}

/* Into why: why the directory `name` in dirfd (path[0..end)) could not be opened; "" when it is
 * merely missing, which is no reason to say anything. */
static void pb_dir_open_failed(long err, long dirfd, const char *name, const char *path, size_t end,
                               char *why, size_t whylen)
{
    struct stat st;
    why[0] = '\0';
    if (err == -ENOENT)
        return;
    if (err == -ENOTDIR && pb_raw_syscall6(SYS_newfstatat, dirfd, (long)name, (long)&st,
                                           AT_SYMLINK_NOFOLLOW, 0, 0) == 0) {
        if (S_ISLNK(st.st_mode))
            snprintf(why, whylen, "directory %.*s is a symbolic link", (int)end, path);
        else
            snprintf(why, whylen, "%.*s is %s, not a directory", (int)end, path, pb_file_kind(st.st_mode));
        return;
    }
    snprintf(why, whylen, "directory %.*s cannot be opened (%s)", (int)end, path, strerror((int)-err));
}

long pb_cache_dir_open(const char *path, int create, const char **name, char *why, size_t whylen)
{
    why[0] = '\0';
    const char *base, *suffix;
    if (pb_cache_root(&base, &suffix) != 0) {
        snprintf(why, whylen, "no cache directory");
        return -1;
    }
    size_t blen = strlen(base), slen = strlen(suffix), root = blen + slen;
    if (strncmp(path, base, blen) != 0 || strncmp(path + blen, suffix, slen) != 0 || path[root] != '/' ||
        root >= PB_PATH_MAX) {
        snprintf(why, whylen, "not in the cache directory");
        return -1;
    }
    /* The root's path, NUL-terminated: static, not on the program's stack (and no map and unmap
     * per cache file, which cost more than the walk): every cache is read and written by the
     * constructor only, before the program has a thread. */
    static char dir[PB_PATH_MAX];
    memcpy(dir, path, root);
    dir[root] = '\0';
    if (create) {
        /* The directories above the root are made as they would be by hand, and not checked: a
         * home or ~/.cache elsewhere through a symbolic link is the user's choice. */
        for (size_t i = 1; i <= root; i++) {
            if (i < root && dir[i] != '/')
                continue;
            dir[i] = '\0';
            pb_raw_syscall6(SYS_mkdirat, AT_FDCWD, (long)dir, 0700, 0, 0, 0);
            if (i < root)
                dir[i] = '/';
        }
    }
    /* From the root down, each directory is opened relative to the one above, which was checked
     * already, and without following a symbolic link: what is checked is what is used. */
    const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    long fd = pb_raw_syscall6(SYS_openat, AT_FDCWD, (long)dir, dflags, 0, 0, 0);
    size_t end = root;
    if (fd < 0) {
        const char *slash = strrchr(dir, '/');
        long parent = AT_FDCWD;
        if (fd == -ENOTDIR && slash) { /* what is the root? looked at from its parent */
            dir[slash - dir] = '\0';
            parent = pb_raw_syscall6(SYS_openat, AT_FDCWD, (long)(slash == dir ? "/" : dir),
                                     O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
        }
        pb_dir_open_failed(fd, parent, slash ? slash + 1 : dir, path, end, why, whylen);
        if (parent >= 0)
            pb_raw_syscall6(SYS_close, parent, 0, 0, 0, 0, 0);
    } else {
        pb_distrust_dir(fd, path, end, why, whylen);
    }
    const char *leaf = path + root + 1;
    for (const char *slash; fd >= 0 && !why[0] && (slash = strchr(leaf, '/'));) {
        size_t len = (size_t)(slash - leaf);
        if (len == 0 || len >= PB_PATH_MAX) {
            snprintf(why, whylen, "not a file name");
            break;
        }
        memcpy(dir, leaf, len);
        dir[len] = '\0';
        if (create)
            pb_raw_syscall6(SYS_mkdirat, fd, (long)dir, 0700, 0, 0, 0);
        long next = pb_raw_syscall6(SYS_openat, fd, (long)dir, dflags, 0, 0, 0);
        end = (size_t)(slash - path);
        if (next < 0)
            pb_dir_open_failed(next, fd, dir, path, end, why, whylen);
        else
            pb_distrust_dir(next, path, end, why, whylen);
        pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
        fd = next;
        leaf = slash + 1;
    }
    if (fd >= 0 && why[0]) {
        pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
        fd = -1;
    }
    if (fd < 0)
        return -1;
    *name = leaf;
    return fd;
}

/*
 * Warn level for every cache and the calibration: each is a file privbox itself (or `privbox
 * doctor --calibrate`) wrote for this user, so finding one that somebody else could have written,
 * or a FIFO or device in its place, means a misconfigured or tampered cache, which the user must
 * hear of even though the run itself only loses the cache (the plan is recomputed, the copies
 * decoded again, no calibration applied) and its output does not change. Info level would hide it.
 * A refused plan or copy in a trusted directory is replaced by this run's own, so the line comes
 * once; anything else (a directory to fix, a FIFO privbox will not replace, a refused calibration,
 * which only `privbox doctor --calibrate` writes: its remedy says so) says it on every run.
 */
long pb_open_trusted_cache_file(const char *path, const char *remedy)
{
    char why[PB_PATH_MAX / 8 + 128];
    const char *name;
    struct stat st;
    long dir = pb_cache_dir_open(path, 0, &name, why, sizeof why);
    if (dir < 0) {
        /* Said only of a file that exists: a cache not made yet is no news. (stat follows the
         * links the walk refused; it opens nothing.) */
        if (why[0] && pb_raw_syscall6(SYS_stat, (long)path, (long)&st, 0, 0, 0, 0) == 0)
            pb_log(PB_LOG_WARN, "ignoring cache %s: %s%s", path, why, remedy ? remedy : "");
        return -1;
    }
    const char *kind;
    long fd = pb_open_regular((int)dir, name, O_NOFOLLOW, &st, &kind);
    pb_raw_syscall6(SYS_close, dir, 0, 0, 0, 0, 0);
    if (fd < 0) {
        if (kind)
            pb_log(PB_LOG_WARN, "ignoring cache %s: it is %s%s", path, kind, remedy ? remedy : "");
        else if (fd != -ENOENT)
            pb_log(PB_LOG_WARN, "ignoring cache %s: it cannot be opened (%s)", path, strerror((int)-fd));
        return -1;
    }
    if (!pb_distrusted(&st, 0, why, sizeof why))
        return fd;
    pb_log(PB_LOG_WARN, "ignoring cache %s: %s%s", path, why, remedy ? remedy : "");
    pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    return -1;
}

long pb_read_trusted_cache_file(const char *path, const char *remedy, char *buf, size_t cap)
{
    long fd = pb_open_trusted_cache_file(path, remedy);
    return fd < 0 ? -1 : pb_read_fd(fd, buf, cap);
}

int pb_replaceable(int dirfd, const char *name, const char **kind)
{
    struct stat st;
    long r = pb_raw_syscall6(SYS_newfstatat, dirfd, (long)name, (long)&st, AT_SYMLINK_NOFOLLOW, 0, 0);
    *kind = r == 0 && !S_ISREG(st.st_mode) ? pb_file_kind(st.st_mode) : 0;
    return !*kind;
}

/*
 * What is left of the race between looking at `name` and renaming over it: whoever can write the
 * directory can put a device, FIFO or link there in between, and the rename replaces that. It
 * takes write permission on the directory, which already lets one replace whatever is at `name`
 * without privbox; in a sticky directory (/tmp) it takes owning what is there, or the directory,
 * or root. Device nodes outside a test's scratch directory live in /dev, which only root writes.
 * When nothing is at `name`, RENAME_NOREPLACE closes the window: a node that appears meanwhile
 * makes the rename fail, and it is looked at again.
 */
int pb_replace_regular(int dirfd, const char *tmp, const char *name, const char **kind)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        struct stat st;
        long r = pb_raw_syscall6(SYS_newfstatat, dirfd, (long)name, (long)&st, AT_SYMLINK_NOFOLLOW, 0, 0);
        *kind = 0;
        if (r == 0 && !S_ISREG(st.st_mode)) {
            *kind = pb_file_kind(st.st_mode);
            return 1;
        }
        if (r < 0 && r != -ENOENT)
            return (int)r;
        if (r == 0)
            return (int)pb_raw_syscall6(SYS_renameat, dirfd, (long)tmp, dirfd, (long)name, 0, 0);
        r = pb_raw_syscall6(SYS_renameat2, dirfd, (long)tmp, dirfd, (long)name, RENAME_NOREPLACE, 0);
        if (r == -EINVAL || r == -ENOSYS) /* a file system without RENAME_NOREPLACE */
            return (int)pb_raw_syscall6(SYS_renameat, dirfd, (long)tmp, dirfd, (long)name, 0, 0);
        if (r != -EEXIST)
            return (int)r;
    }
    return -EEXIST;
}

void *pb_map(size_t bytes)
{
    long p = pb_raw_syscall6(SYS_mmap, 0, (long)bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return (p < 0 && p > -4096) ? 0 : (void *)p;
}

/* ---- the Swift core (accelerate mode only) ---------------------------------------------------------------------------- */

void *pb_core_symbol(const char *name, char *err, size_t errlen)
{
    static void *core;
    if (!core) {
        static char path[PB_PATH_MAX + 32]; /* constructor only (accelerate mode's plan) */
        snprintf(path, sizeof path, "%s/libprivbox_core.so", pb_proc.lib_dir);
        core = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!core) {
            snprintf(err, errlen, "the installation is incomplete: cannot load %s (%s)", path, dlerror());
            return 0;
        }
    }
    void *sym = dlsym(core, name);
    if (!sym)
        snprintf(err, errlen, "libprivbox_core.so has no %s: mismatched installation", name);
    return sym;
}

/* The module whose executable segments contain addr, with addr's offset from its base. */
static int32_t pb_module_of(const struct pb_module_scan *scan, uint64_t addr, uint64_t *offset)
{
    for (size_t m = 0; m < scan->count; m++) {
        if (addr >= scan->ranges[m][0] && addr < scan->ranges[m][1]) {
            *offset = addr - scan->modules[m].base;
            return (int32_t)m;
        }
    }
    *offset = addr;
    return -1;
}

static void pb_write_profile(void)
{
    int inline_used = pb_inline_started;
    uint64_t inline_traps = 0;
    uint32_t inline_spent = 0;
    if (inline_used) {
        /* Discovery ends in every thread (every selector at ALLOW): from here no call traps, and
         * the wrappers stop marking their calls. */
        pb_inline_stop_all();
        pb_inline_totals(&inline_traps, &inline_spent);
    }
    if (!__atomic_exchange_n(&pb_counting, 0, __ATOMIC_SEQ_CST))
        return; /* not counting (or already written) */
    uint64_t end_ns = pb_monotonic_ns(), end_cycles = pb_cycles();

    size_t site_count = 0, threads = 0, stack_count = 0, frame_count = 0;
    uint64_t dropped = 0, stacks_dropped = 0;
    for (struct pb_thread_table *t = pb_tables_head(); t; t = t->next) {
        threads++;
        dropped += t->dropped;
        stacks_dropped += t->stacks_dropped;
        for (uint32_t i = 0; i < PB_TABLE_SLOTS; i++)
            site_count += t->slots[i].key != 0;
        for (uint32_t i = 0; i < PB_STACK_SLOTS; i++) {
            if (t->stacks[i].hash && t->stacks[i].count) {
                stack_count++;
                frame_count += t->stacks[i].depth;
            }
        }
    }
    if (site_count == 0 && dropped == 0) {
        /* Nothing to report (e.g. /bin/true, or a shell that only execs): creating the file would
         * be the most expensive thing the process did (~1 ms on this machine's disk). */
        pb_log(PB_LOG_INFO, "no wrapped call was made; no profile written");
        return;
    }
    struct pb_module_scan scan = {0};
    scan.cap = 1024;
    scan.paths_cap = 1024 * 256;
    scan.modules = pb_map(scan.cap * sizeof *scan.modules);
    scan.ranges = pb_map(scan.cap * sizeof *scan.ranges);
    scan.paths = pb_map(scan.paths_cap);
    if (!scan.modules || !scan.ranges || !scan.paths) {
        pb_log(PB_LOG_ERROR, "out of memory while writing the profile");
        return;
    }
    dl_iterate_phdr(pb_scan_module, &scan);

    struct pb_site_record *sites = pb_map((site_count + 1) * sizeof *sites);
    struct pb_stack_record *stacks = pb_map((stack_count + 1) * sizeof *stacks);
    struct pb_frame_record *frames = pb_map((frame_count + 1) * sizeof *frames);
    if (!sites || !stacks || !frames) {
        pb_log(PB_LOG_ERROR, "out of memory while writing the profile");
        return;
    }
    size_t n = 0, ns = 0, nf = 0;
    for (struct pb_thread_table *t = pb_tables_head(); t; t = t->next) {
        for (uint32_t i = 0; i < PB_TABLE_SLOTS && n < site_count; i++) {
            const struct pb_slot *s = &t->slots[i];
            if (!s->key)
                continue;
            struct pb_site_record *r = &sites[n++];
            r->address = s->key >> 10;
            r->syscall_nr = (uint32_t)(s->key & 1023u);
            r->thread = t->index;
            r->calls = s->calls;
            r->checked = s->checked;
            r->errors = s->errors;
            r->timed = s->timed;
            r->kernel_cycles = s->kernel_cycles;
            r->user_cycles = s->user_cycles;
            r->module = pb_module_of(&scan, r->address, &r->offset);
        }
        for (uint32_t i = 0; i < PB_STACK_SLOTS && ns < stack_count; i++) {
            const struct pb_stack *st = &t->stacks[i];
            if (!st->hash || !st->count || nf + st->depth > frame_count)
                continue;
            struct pb_stack_record *r = &stacks[ns++];
            r->thread = t->index;
            r->count = st->count;
            r->sampled = st->sampled;
            r->truncated = st->truncated;
            r->depth = st->depth;
            r->first_frame = (uint32_t)nf;
            for (uint32_t f = 0; f < st->depth; f++) {
                struct pb_frame_record *fr = &frames[nf++];
                fr->module = pb_module_of(&scan, st->frames[f], &fr->offset);
            }
        }
    }

    /* The kernel's answer, unless a seccomp filter of the program now refuses getpid: then the pid
     * recorded at start (or in the fork child). */
    long pid = pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    if (pid <= 0)
        pid = pb_proc.pid;
    long ppid = pb_raw_syscall6(SYS_getppid, 0, 0, 0, 0, 0, 0);
    if (ppid < 0)
        ppid = 0;
    /* Static, not on a program's possibly small stack: this runs once per process (pb_counting
     * was exchanged to 0 above, so no other thread, nor a second exit handler, gets here). */
    static char path[PB_PATH_MAX];
    if (pb_expand_path(pb_proc.profile_pattern, pid, path, sizeof path) != 0) {
        pb_log(PB_LOG_ERROR, "PRIVBOX_PROFILE expands to a path longer than %d bytes",
               PB_PATH_MAX - 1);
        return;
    }
    struct pb_snapshot snap = {
        .pid = (int32_t)pid,
        .ppid = (int32_t)ppid,
        .start_ns = pb_proc.start_ns,
        .end_ns = end_ns,
        .start_cycles = pb_proc.start_cycles,
        .end_cycles = end_cycles,
        .threads = threads,
        .dropped = dropped,
        .exe = pb_exe_path(),
        .profile_path = path,
        .module_count = scan.count,
        .modules = scan.modules,
        .site_count = n,
        .sites = sites,
        .stack_count = ns,
        .stacks = stacks,
        .frames = frames,
        .stacks_dropped = stacks_dropped,
        .inline_discovery = inline_used,
        .inline_traps = inline_traps,
        .inline_threads_spent = inline_spent,
    };
    char err[PB_ERROR_MAX] = "";
    if (pb_write_profile_file(&snap, err, sizeof err) != 0)
        pb_log(PB_LOG_ERROR, "%s", err);
    else
        pb_log(PB_LOG_INFO, "profile written to %s (%zu sites, %zu threads)", path, n, threads);
}

static void pb_at_exit(void)
{
    pb_fuse_flush();
    struct pb_fpenv fp;
    pb_fpenv_save(&fp);
    pb_write_profile();
    pb_fpenv_restore(&fp);
}

/* Stacks come from the unwinder of libgcc (libgcc_s.so.1, _Unwind_Backtrace over .eh_frame),
 * loaded only in profile mode so that the other modes pay nothing for it.
 *
 * Why not libunwind: on its first unwind, libunwind (1.6, Debian 12) opens a pipe through which it
 * validates memory by writing to it. Those two descriptors take the program's lowest free numbers
 * (3 and 4), so every descriptor the program opens afterwards has a different number than in a
 * native run (CPython's test_pass_fds_redirected caught it), and libunwind later reads from and
 * writes to those numbers even after the program has closed them and reused them for its own
 * files. Denying it the pipe makes it unwind nothing. libgcc's unwinder opens no descriptor. */
static int (*pb_gcc_unwind_backtrace)(_Unwind_Trace_Fn, void *);
static uintptr_t (*pb_gcc_get_ip)(struct _Unwind_Context *);

struct pb_trace { void **ips; int n, max; };

static _Unwind_Reason_Code pb_trace_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct pb_trace *t = arg;
    uintptr_t ip = pb_gcc_get_ip(ctx);
    if (!ip || t->n >= t->max)
        return _URC_END_OF_STACK;
    t->ips[t->n++] = (void *)ip;
    return _URC_NO_REASON;
}

static int pb_gcc_backtrace(void **buffer, int size)
{
    struct pb_trace t = {buffer, 0, size};
    pb_gcc_unwind_backtrace(pb_trace_frame, &t);
    return t.n;
}

static void pb_load_unwinder(void)
{
    void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        pb_gcc_unwind_backtrace = (int (*)(_Unwind_Trace_Fn, void *))dlsym(lib, "_Unwind_Backtrace");
        pb_gcc_get_ip = (uintptr_t (*)(struct _Unwind_Context *))dlsym(lib, "_Unwind_GetIP");
    }
    if (!pb_gcc_unwind_backtrace || !pb_gcc_get_ip) {
        pb_log(PB_LOG_INFO, "libgcc_s.so.1 has no unwinder: profiles will have no stacks");
        return;
    }
    pb_backtrace = pb_gcc_backtrace;
}

/* ---- fork ---------------------------------------------------------------------------------- */

void pb_after_fork_child(void)
{
    /* Async-signal-safe: fork() may be called from a signal handler, and this runs inside it. */
    pb_tables_reset_after_fork();
    pb_proc.pid = pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    pb_proc.start_ns = pb_monotonic_ns();
    pb_proc.start_cycles = pb_cycles();
    if (pb_inline_on)
        pb_inline_after_fork_child();
}

static void pb_atfork_child(void)
{
    if (pb_counting)
        pb_after_fork_child();
}

/* ---- start-up ------------------------------------------------------------------------------ */

/* LD_PRELOAD is a list of paths separated by ':' or ' '. Returns the next entry at or after *p
 * (its length in *len, 0 at the end) and advances *p past it. */
static const char *pb_next_preload_entry(const char **p, size_t *len)
{
    while (**p == ':' || **p == ' ')
        (*p)++;
    const char *start = *p;
    while (**p && **p != ':' && **p != ' ')
        (*p)++;
    *len = (size_t)(*p - start);
    return start;
}

/* Whether an LD_PRELOAD entry names libprivbox.so (by file name, wherever it is). */
static int pb_is_privbox_entry(const char *entry, size_t len)
{
    static const char name[] = "libprivbox.so";
    const char *slash = memrchr(entry, '/', len);
    const char *base = slash ? slash + 1 : entry;
    return (size_t)(entry + len - base) == sizeof name - 1 && memcmp(base, name, sizeof name - 1) == 0;
}

/* ---- the environment the program and its children see --------------------------------------- */

/* privbox edits the environment itself instead of calling setenv/unsetenv/getenv: those names
 * are the program's to define, and bash does (lib/sh/getenv.c), so before bash's main() they
 * neither remove nor add anything and its children kept every PRIVBOX_* variable and a relative
 * LD_PRELOAD. The edits are made in the array main() will receive as envp (bash builds its
 * variables from it) and in environ if something already moved that (libc's getenv, exec*p and
 * posix_spawn read environ). Constructor only: no thread of the program exists yet. */
static char **pb_startup_envp;

static char **pb_env_slot(char **env, const char *name, size_t len)
{
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return e;
    return 0;
}

static void pb_env_remove_from(char **env, const char *name)
{
    size_t len = strlen(name);
    char **e;
    while ((e = pb_env_slot(env, name, len)))
        do
            e[0] = e[1]; /* shift the rest down, the terminating null included */
        while (*e++);
}

static void pb_env_remove(const char *name)
{
    pb_env_remove_from(pb_startup_envp, name);
    if (environ != pb_startup_envp)
        pb_env_remove_from(environ, name);
}

static const char *pb_env_get(const char *name)
{
    char **e = pb_env_slot(environ, name, strlen(name));
    return e ? *e + strlen(name) + 1 : 0;
}

/* Sets the variable whose "NAME=value" text is `entry`, which must outlive the process (static
 * storage). A variable already there is replaced in place, in both arrays. A new one needs a
 * larger array: environ then points to a copy with it appended (pb_map'd, never freed: environ
 * may be kept by anyone); main()'s envp cannot grow, so a program that reads only envp (bash)
 * does not see it. */
static void pb_env_set(const char *entry)
{
    size_t len = (size_t)(strchr(entry, '=') - entry);
    char **slot = pb_env_slot(pb_startup_envp, entry, len);
    if (slot)
        *slot = (char *)entry;
    if (environ != pb_startup_envp && (slot = pb_env_slot(environ, entry, len)))
        *slot = (char *)entry;
    if (slot)
        return;
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **grown = pb_map((n + 2) * sizeof *grown);
    if (!grown)
        return;
    for (size_t i = 0; i < n; i++)
        grown[i] = environ[i];
    grown[n] = (char *)entry;
    environ = grown;
}

/* PRIVBOX_INHERIT=0 or bad input: remove libprivbox.so from LD_PRELOAD (editing the string in
 * place, so no allocation) and the PRIVBOX_* variables, so programs this process executes run
 * natively. */
static void pb_stop_inheritance(void)
{
    char **arrays[2] = {pb_startup_envp, environ != pb_startup_envp ? environ : 0};
    for (int a = 0; a < 2; a++) {
        char **slot = pb_env_slot(arrays[a], "LD_PRELOAD", 10);
        if (!slot)
            continue;
        char *list = *slot + 11, *out = list;
        const char *p = list;
        size_t len;
        for (const char *entry; (entry = pb_next_preload_entry(&p, &len)), len;) {
            if (pb_is_privbox_entry(entry, len))
                continue;
            if (out != list)
                *out++ = ':';
            memmove(out, entry, len); /* out never passes entry: compaction in place */
            out += len;
        }
        *out = '\0';
    }
    for (const char *const *n = pb_known_vars; *n; n++)
        pb_env_remove(*n);
    const char *left = pb_env_get("LD_PRELOAD");
    if (left && !left[0])
        pb_env_remove("LD_PRELOAD");
}

/* A relative LD_PRELOAD entry for libprivbox.so (LD_PRELOAD=.build/release/libprivbox.so) stops
 * working in any child that runs in another directory: the loader prints an error there and runs
 * it without the preload, which changes the child's output. So a relative entry is replaced by
 * the library's absolute path, in every mode; nothing else in LD_PRELOAD changes. (A bare
 * "libprivbox.so" is searched in the library path by the loader and is left alone.) */
static void pb_make_preload_absolute(void)
{
    const char *list = pb_env_get("LD_PRELOAD");
    if (!list)
        return;
    /* The usual case, an absolute path, costs one scan and no system call. */
    int any_relative = 0;
    size_t len;
    for (const char *p = list, *entry; (entry = pb_next_preload_entry(&p, &len)), len;)
        any_relative |= entry[0] != '/' && memchr(entry, '/', len) && pb_is_privbox_entry(entry, len);
    if (!any_relative)
        return;
    /* Static: only the constructor calls this, once, before the program has a thread; 20 KB of
     * stack would not fit a `ulimit -s 32` process. `out` becomes the environment's entry. */
    Dl_info info;
    static char self[PB_PATH_MAX];
    if (!dladdr((void *)pb_make_preload_absolute, &info) || !info.dli_fname ||
        !realpath(info.dli_fname, self))
        return;
    static char out[4 * PB_PATH_MAX];
    static const char head[] = "LD_PRELOAD=";
    memcpy(out, head, sizeof head - 1);
    size_t used = sizeof head - 1;
    const char *p = list;
    for (const char *entry; (entry = pb_next_preload_entry(&p, &len)), len;) {
        int relative = entry[0] != '/' && memchr(entry, '/', len) && pb_is_privbox_entry(entry, len);
        const char *text = relative ? self : entry;
        size_t tlen = relative ? strlen(self) : len;
        if (used + tlen + 2 > sizeof out)
            return; /* absurdly long LD_PRELOAD: leave it as it is */
        if (used > sizeof head - 1)
            out[used++] = ':';
        memcpy(out + used, text, tlen);
        used += tlen;
    }
    out[used] = '\0';
    pb_env_set(out);
}

/* A relative PRIVBOX_PROFILE (or the relative default) names a different file in every process
 * that runs in another directory: a `make -C sub`, a shim that cds before exec'ing the real
 * program, a server that chdir("/")s. So the first process of the tree, the one that still sees
 * it relative, replaces it by the absolute path from its working directory at start, in
 * pb_proc.profile_pattern and in the environment its children inherit. In profile mode the path
 * is a pattern, so a '%' in the directory's name is written "%%" (it stays a literal '%'). The
 * variable is set even when it was unset (the default path), so that children find the same
 * file; only then must it be added, which a first process reading main()'s envp alone (bash)
 * does not see (pb_env_set): its children fall back to the default in their own directory.
 * A directory that cannot be named (deleted, or longer than PB_PATH_MAX with the file name) leaves
 * the path relative, as before. Constructor only: static buffers (see pb_make_preload_absolute). */
static void pb_make_profile_absolute(int inherited)
{
    if (pb_proc.profile_pattern[0] == '/')
        return;
    static char cwd[PB_PATH_MAX], entry[sizeof "PRIVBOX_PROFILE=" + PB_PATH_MAX];
    char *path = entry + sizeof "PRIVBOX_PROFILE=" - 1; /* the value, at most PB_PATH_MAX bytes */
    memcpy(entry, "PRIVBOX_PROFILE=", sizeof "PRIVBOX_PROFILE=" - 1);
    long n = pb_raw_syscall6(SYS_getcwd, (long)cwd, sizeof cwd, 0, 0, 0, 0);
    if (n <= 0 || cwd[0] != '/') {
        pb_log(PB_LOG_DEBUG, "no working directory to make %s absolute", pb_proc.profile_pattern);
        return;
    }
    int pattern = pb_proc.mode == PB_MODE_PROFILE;
    size_t used = 0;
    for (const char *c = cwd; *c; c++) {
        if (used + 3 >= PB_PATH_MAX)
            return;
        if (pattern && *c == '%')
            path[used++] = '%';
        path[used++] = *c;
    }
    if (used > 1)
        path[used++] = '/';
    size_t len = strlen(pb_proc.profile_pattern);
    if (used + len >= PB_PATH_MAX)
        return;
    memcpy(path + used, pb_proc.profile_pattern, len + 1);
    memcpy(pb_proc.profile_pattern, path, used + len + 1);
    if (inherited) /* PRIVBOX_INHERIT=0 removed the variable: it stays removed */
        pb_env_set(entry);
}

static void pb_find_lib_dir(void)
{
    Dl_info info;
    if (dladdr((void *)pb_find_lib_dir, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        size_t len = slash ? (size_t)(slash - info.dli_fname) : 0;
        if (len >= sizeof pb_proc.lib_dir)
            len = 0;
        if (len)
            memcpy(pb_proc.lib_dir, info.dli_fname, len);
        else
            pb_proc.lib_dir[len++] = '.';
        pb_proc.lib_dir[len] = '\0';
    }
}

int pb_main_build_id(uint8_t *out, size_t *len)
{
    /* dl_iterate_phdr reports the main program first; a scan with room for one module stops
     * right after it. */
    struct pb_module_record mods[1];
    uint64_t ranges[1][2];
    static char paths[PB_PATH_MAX + 16]; /* constructor only (accelerate mode's plan) */
    struct pb_module_scan scan = {
        .modules = mods, .ranges = ranges, .cap = 1, .paths = paths, .paths_cap = sizeof paths,
    };
    *len = 0;
    dl_iterate_phdr(pb_scan_module, &scan);
    if (!scan.count)
        return -1;
    memcpy(out, mods[0].build_id, mods[0].build_id_len);
    *len = mods[0].build_id_len;
    return 0;
}

/*
 * Whether the profile file can hold an entry for this executable: its path, quoted as JSON writes
 * it, occurs in the file. Programs a profile does not mention (every child of `privbox run -- make`
 * but the profiled one) are not planned (pb_check_unmentioned_profile only has the whole file
 * validated, once per version of it). 1 ("maybe": the core decides) for a path that JSON would
 * escape, a file missing or not whole-looking, or one too large to map; 0 for no mention; -1
 * when the profile may not be used (below).
 *
 * It is the first to read the profile, so it also decides whether the profile may be used at all.
 * A profile decides which call sites are rewritten: it must be as trusted as the program's code, so
 * it must be a regular file (looked at before it is opened, so that a FIFO cannot block the
 * program before main) that is the user's or root's and that nobody else can write. Only the
 * file: a profile often sits in /tmp or in a project's directory. Otherwise one line, and the whole
 * tree runs natively (its other programs would find the same profile); -1 is returned.
 */
static int pb_profile_may_mention_exe(struct stat *out)
{
    const char *profile = pb_proc.profile_pattern, *kind;
    struct stat st;
    long fd = pb_open_regular(AT_FDCWD, profile, 0, &st, &kind);
    if (fd < 0 && !kind) {
        out->st_mode = 0; /* nothing was looked at */
        return 1; /* the core reports a missing profile */
    }
    *out = st;
    char why[64];
    int refused = fd < 0 || pb_distrusted(&st, 1, why, sizeof why);
    if (fd < 0)
        pb_log(PB_LOG_ERROR, "profile %s is %s, not a regular file; running natively", profile, kind);
    else if (refused)
        pb_log(PB_LOG_ERROR, "profile %s is %s; not trusted; running natively", profile, why);
    if (refused) {
        if (fd >= 0)
            pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
        pb_stop_inheritance();
        return -1;
    }
    const char *exe = pb_exe_path();
    size_t len = strlen(exe);
    int plain = len > 0;
    for (size_t i = 0; i < len; i++)
        if (exe[i] == '"' || exe[i] == '\\' || (unsigned char)exe[i] < 0x20 || (unsigned char)exe[i] >= 0x7f)
            plain = 0;
    void *map = MAP_FAILED;
    if (plain && st.st_size > 0 && st.st_size <= (64l << 20))
        map = mmap(0, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, (int)fd, 0);
    pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (map == MAP_FAILED)
        return 1;
    /* Only a file that looks whole (the schema tag, a closing brace) may be judged here: anything
     * else goes to the core, which says what is wrong with it. */
    static const char schema[] = "\"privbox-profile/1\"";
    const char *text = map;
    size_t end = (size_t)st.st_size;
    while (end && (text[end - 1] == '\n' || text[end - 1] == ' ' || text[end - 1] == '\r' || text[end - 1] == '\t'))
        end--;
    int whole = end && text[end - 1] == '}' && memmem(text, end, schema, sizeof schema - 1);
    /* The path between quotes, found without copying it (a path is up to 4 KiB: not on the stack). */
    int found = !whole;
    for (const char *p = text; !found && len && (p = memmem(p, (size_t)(text + end - p), exe, len)); p++)
        found = p > text && p[-1] == '"' && p + len < text + end && p[len] == '"';
    munmap(map, (size_t)st.st_size);
    return found;
}

/* A program the quick scan finds no entry for: the whole profile is validated anyway, once per
 * version of it (pb_profile_known_valid), so that a corrupt profile is reported by the first
 * process of a tree even when that process is a shell or shim the profile does not mention. As
 * pb_routes_install_plan: 1 when the core finds an entry after all, 0 nothing for this program,
 * negative with err for a bad profile. */
static int pb_check_unmentioned_profile(const struct stat *profile, char *err, size_t errlen)
{
    if (pb_profile_known_valid(profile))
        return 0;
    uint8_t build_id[PB_BUILD_ID_MAX];
    size_t build_id_len = 0;
    pb_main_build_id(build_id, &build_id_len);
    struct pb_fpenv fp;
    pb_fpenv_save(&fp); /* the Swift runtime's start-up does floating-point arithmetic */
    pb_core_check_profile_fn check =
        (pb_core_check_profile_fn)pb_core_symbol("privbox_core_check_profile", err, errlen);
    int r = check ? check(pb_proc.profile_pattern, pb_exe_path(), build_id, build_id_len, err, errlen) : -3;
    pb_fpenv_restore(&fp);
    if (r == 0 || r == -2) /* valid: nothing for this program, or for another build of it */
        pb_profile_remember_valid(profile);
    return r;
}

static void pb_start_accelerate(void)
{
    char err[PB_ERROR_MAX] = "";
    struct stat profile;
    int mentioned = pb_profile_may_mention_exe(&profile);
    if (mentioned < 0) { /* refused, with its line, and the tree sent native */
        pb_proc.mode = PB_MODE_OFF;
        return;
    }
    const struct stat *seen = profile.st_mode ? &profile : 0; /* what the plan cache is named by */
    int r = mentioned ? pb_routes_install_plan(seen, err, sizeof err)
                      : pb_check_unmentioned_profile(&profile, err, sizeof err);
    if (r == 1 && !mentioned)
        r = pb_routes_install_plan(seen, err, sizeof err);
    if (r == 1)
        return;
    pb_proc.mode = PB_MODE_OFF;
    if (r == -2) {
        /* Another build of this program: the programs it starts may still match the profile,
         * so only this process runs natively. */
        pb_log(PB_LOG_ERROR, "%s; running natively", err);
    } else if (r < 0) {
        /* The profile itself is unusable, or the installation is broken (or memory ran out
         * before main): the programs this one starts would meet the same, so the whole tree runs
         * natively, reported once. */
        pb_log(PB_LOG_ERROR, "%s; running natively", err);
        pb_stop_inheritance();
    } else {
        pb_log(PB_LOG_INFO, "%s records nothing for %s; running natively",
               pb_proc.profile_pattern, pb_exe_path());
    }
}

__attribute__((constructor)) static void pb_init(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)argv;
    pb_startup_envp = envp;
    /* Before anything can log, and before the program can open a file on a closed fd 2. */
    pb_proc.log_fd_open = pb_raw_syscall6(SYS_fcntl, 2, F_GETFD, 0, 0, 0, 0) >= 0;
    pb_resolve_all();
    if (getauxval(AT_SECURE)) {
        /* setuid/setgid/file capabilities: the loader normally refuses the preload; if it was
         * loaded anyway (e.g. from /etc/ld.so.preload), trust no environment variable. */
        return;
    }
    /* Static: the constructor runs once, before any thread of the program, and 8.6 KB of
     * configuration on the stack would not fit a `ulimit -s 32` process (issue 16). */
    static struct pb_config cfg;
    int ok = pb_config_parse(&cfg, envp) == 0;
    pb_proc.log_level = cfg.log_level;
    if (!ok) {
        pb_proc.log_level = PB_LOG_ERROR; /* the problem is reported whatever PRIVBOX_LOG says */
        pb_log(PB_LOG_ERROR, "%s", cfg.error);
        /* Running natively means the whole process tree: the programs this one starts must not
         * load privbox and report the same problem again. */
        pb_stop_inheritance();
        return;
    }
    pb_make_preload_absolute();
    pb_proc.mode = cfg.mode;
    pb_proc.copies = cfg.copies;
    pb_proc.gate = cfg.gate;
    memcpy(pb_proc.profile_pattern, cfg.profile_path, sizeof pb_proc.profile_pattern);
    if (!cfg.inherit)
        pb_stop_inheritance();
    if (pb_proc.mode == PB_MODE_OFF)
        return;
    if (pb_proc.mode != PB_MODE_AUTO) /* auto mode reads and writes no profile */
        pb_make_profile_absolute(cfg.inherit);

    pb_find_lib_dir();
    pb_log(PB_LOG_DEBUG, "mode %s, profile %s, core in %s", pb_mode_name(pb_proc.mode),
           pb_proc.profile_pattern, pb_proc.lib_dir);
    pb_proc.start_ns = pb_monotonic_ns();
    pb_proc.start_cycles = pb_cycles();
    pb_proc.pid = pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    if (cfg.inline_discovery && pb_proc.mode != PB_MODE_PROFILE)
        pb_log(PB_LOG_WARN, "PRIVBOX_INLINE=1 only applies to profile mode; ignored");
    switch (pb_proc.mode) {
    case PB_MODE_PROFILE:
        pb_load_unwinder();
        pthread_atfork(0, 0, pb_atfork_child);
        atexit(pb_at_exit);
        pb_counting = 1;
        pb_hooks_update();
        if (cfg.inline_discovery) {
            char why[160];
            if (pb_inline_start(why, sizeof why) != 0)
                pb_log(PB_LOG_WARN, "no inline discovery: %s; profiling libc's wrappers only", why);
        }
        break;
    case PB_MODE_ACCELERATE:
        pb_start_accelerate();
        break;
    case PB_MODE_AUTO:
        /* Count (without stacks) for a warm-up, then route the hot sites (routes.c). */
        pthread_atfork(0, 0, pb_atfork_child);
        pb_auto_begin();
        break;
    }
}
