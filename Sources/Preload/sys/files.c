/*
 * sys/files.c — the preload's rules for files, which every layer uses: every file the preload
 * reads is opened by pb_open_regular (Sources/CShim/files.c: never blocking, regular files only;
 * the Swift core reads the profile again itself, under the same rules: ProfileIO.readTrusted),
 * what is trusted only from the user is judged by pb_distrusted, and what the preload writes (the
 * profile, the caches) only ever replaces a missing path or a regular file (pb_replace_regular).
 * The caches' trusted walk is sys/cache.c. Raw system calls only; the descriptors these open are
 * closed before they return.
 */
#include "sys/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

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

static uid_t pb_euid(void) { return (uid_t)pb_raw_syscall6(SYS_geteuid, 0, 0, 0, 0, 0, 0); }

/* The one rule for what privbox trusts only from the user: owned by the effective uid (or by
 * root, where allow_root says so: a profile may be a system's, a cache never is) and writable by
 * nobody else. 0 when trusted; 1 with why ("owned by uid N", "writable by group or others (mode
 * 0NNN)"), which callers put into their own sentence. */
int pb_distrusted(const struct stat *st, int allow_root, char *why, size_t whylen)
{
    if (st->st_uid != pb_euid() && !(allow_root && st->st_uid == 0))
        snprintf(why, whylen, "owned by uid %u", (unsigned)st->st_uid);
    else if (st->st_mode & (S_IWGRP | S_IWOTH))
        snprintf(why, whylen, "writable by group or others (mode %04o)", (unsigned)(st->st_mode & 07777));
    else
        return 0;
    return 1;
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
