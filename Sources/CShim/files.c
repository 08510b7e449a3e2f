/*
 * files.c — opening a file to read it without ever blocking or acting on a device, shared by the
 * preload (every file it reads: profiles, caches, /proc) and the CLI's symbolizer (the module and
 * debug files a profile names). Raw system calls only (pb_raw_syscall6, measure.c), no allocation:
 * the preload calls it before main(). It opens one descriptor, which it returns or closes.
 */
#include "privbox_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

const char *pb_file_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    }
    return "not a regular file";
}

long pb_open_regular(int dirfd, const char *path, int flags, struct stat *st, const char **kind)
{
    *kind = 0;
    /* Looked at before it is opened: opening a FIFO blocks until a writer comes, and opening a
     * device can act on it (a tape rewinds, a watchdog arms). */
    long r = pb_raw_syscall6(SYS_newfstatat, dirfd, (long)path, (long)st,
                             (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0, 0, 0);
    if (r < 0)
        return r;
    if (!S_ISREG(st->st_mode)) {
        *kind = pb_file_kind(st->st_mode);
        return -EINVAL;
    }
    /* Something else can be put there between the look and the open: O_NONBLOCK keeps a FIFO from
     * blocking the open (a regular file's reads ignore it), O_NOCTTY keeps a terminal from becoming
     * the process's controlling one, and what was opened is checked again. */
    long fd = pb_raw_syscall6(SYS_openat, dirfd, (long)path,
                              O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | flags, 0, 0, 0);
    if (fd < 0)
        return fd;
    r = pb_raw_syscall6(SYS_fstat, fd, (long)st, 0, 0, 0, 0);
    if (r == 0 && S_ISREG(st->st_mode))
        return fd;
    pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (r < 0)
        return r;
    *kind = pb_file_kind(st->st_mode);
    return -EINVAL;
}
