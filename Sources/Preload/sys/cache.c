/*
 * sys/cache.c — the trusted walk of privbox's caches: from the cache root (pb_cache_root,
 * Sources/CShim/cache_path.c) down to a cache file, every directory and the file must be the
 * user's and writable by nobody else (pb_distrusted, sys/files.c), and none a symbolic link. It
 * reads (pb_open_trusted_cache_file) and writes (pb_cache_file_write) the plans (accelerate/), the
 * decoded copies (rewriter/) and the calibration. Raw system calls only; what it creates is the
 * missing directories of a cache's path (mode 0700) and a temporary file next to its target; its
 * descriptors are closed before it returns (a trusted file's is the caller's to close). The
 * constructor is its only caller, before the program has a thread (its static buffer says so).
 */
#include "sys/cache.h"
#include "sys/files.h"
#include "sys/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

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

/* The directory holding the cache file at path, checked from the cache root down (created, mode
 * 0700, where missing when create is set), with *name the file's name in it; -1 with why ("" if
 * merely missing) otherwise. The file is then opened or written relative to it. */
static long pb_cache_dir_open(const char *path, int create, const char **name, char *why, size_t whylen)
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

/* Writes a cache file atomically (a temporary file renamed over it), mode 0600, creating its
 * directories; a failure leaves no file. Only in a directory that pb_cache_dir_open trusts (a
 * cache written where it would not be read is no use), and only in place of a missing or regular
 * file: a FIFO, device or link put at its name stays (its reader says so; this says nothing more).
 * Raw system calls only. */
void pb_cache_file_write(const char *path, const void *buf, size_t len)
{
    char why[256], tmp[320];
    const char *name, *kind;
    long dir = pb_cache_dir_open(path, 1, &name, why, sizeof why);
    if (dir < 0) {
        pb_log(PB_LOG_DEBUG, "not cached in %s: %s", path, why[0] ? why : "a directory is missing");
        return;
    }
    int n = snprintf(tmp, sizeof tmp, "%s.%ld.tmp", name, (long)pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0));
    long fd = n > 0 && (size_t)n < sizeof tmp && pb_replaceable((int)dir, name, &kind)
                  ? pb_raw_syscall6(SYS_openat, dir, (long)tmp,
                                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0, 0)
                  : -1;
    if (fd >= 0) {
        pb_raw_syscall6(SYS_fchmod, fd, 0600, 0, 0, 0, 0); /* exactly 0600 whatever the umask */
        long written = pb_write_all((int)fd, buf, len);
        pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
        if (written != 0 || pb_replace_regular((int)dir, tmp, name, &kind) != 0)
            pb_raw_syscall6(SYS_unlinkat, dir, (long)tmp, 0, 0, 0, 0);
    }
    pb_raw_syscall6(SYS_close, dir, 0, 0, 0, 0, 0);
}
