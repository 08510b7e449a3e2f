/*
 * profile/writer.c — writes a process's profile (schema privbox-profile/1, see README.md) at exit.
 *
 * Written in C on purpose: the alternative, loading the Swift core at every profiled process's
 * exit, cost ~4 ms per process (runtime start-up plus the fsync), which made profiling a shell
 * script that starts a thousand commands seconds slower. The Swift side (Sources/Profiler) reads
 * and validates these files; Tests/IntegrationTests read every profile the preload writes.
 *
 * The file appears atomically: it is filled under a temporary name created with O_EXCL|O_NOFOLLOW
 * and mode 0600 next to the target, then renamed over it. It is not fsync()ed: a reader never sees
 * a partial file, and a profile lost in a power failure is cheap to record again.
 *
 * Only a missing path or a regular file is ever replaced: a device, FIFO, socket, directory or
 * symbolic link at the target (PRIVBOX_PROFILE=/dev/null, run as root, would otherwise replace the
 * machine's /dev/null with a 0600 file) is left exactly as it is, with one line saying so. The
 * checks and the rename go through one descriptor of the target's directory (pb_replace_regular
 * in sys/files.c says what race is left). It touches nothing else: the temporary file, and the
 * target.
 */
#include "profile/inline_discovery.h"
#include "profile/snapshot.h"
#include "sys/files.h"
#include "sys/syscall_name.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pb_out {
    int fd;
    int failed;  /* errno of the first failed write, 0 if none */
    size_t used;
    char buf[1 << 15];
};

static void pb_flush(struct pb_out *o)
{
    if (!o->failed) {
        long r = pb_write_all(o->fd, o->buf, o->used);
        if (r < 0)
            o->failed = (int)-r;
    }
    o->used = 0;
}

/* len bytes of s to the output buffer, flushed to the file whenever it fills. */
static void pb_out_append(struct pb_out *o, const char *s, size_t len)
{
    while (len) {
        if (o->used == sizeof o->buf)
            pb_flush(o);
        size_t n = sizeof o->buf - o->used;
        if (n > len)
            n = len;
        memcpy(o->buf + o->used, s, n);
        o->used += n;
        s += n;
        len -= n;
    }
}

static void pb_puts(struct pb_out *o, const char *s) { pb_out_append(o, s, strlen(s)); }

static void pb_put_u64(struct pb_out *o, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) /* the schema's integers are signed 64-bit */
        v = (uint64_t)INT64_MAX;
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    char out[24];
    for (int i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    pb_out_append(o, out, (size_t)n);
}

static void pb_put_i64(struct pb_out *o, int64_t v)
{
    if (v < 0) {
        pb_puts(o, "-");
        pb_put_u64(o, (uint64_t)(-(v + 1)) + 1);
    } else {
        pb_put_u64(o, (uint64_t)v);
    }
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there are not one. */
static int pb_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (s[0] == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (s[0] == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (s[0] == 0xF0 && s[1] < 0x90) return 0;
        if (s[0] == 0xF4 && s[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

/* A JSON string. Paths are bytes, not text: a byte that is not valid UTF-8 becomes U+FFFD. */
static void pb_put_string(struct pb_out *o, const char *s)
{
    pb_puts(o, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            pb_out_append(o, e, 2);
            p++;
        } else if (*p < 0x20) {
            char e[7] = {'\\', 'u', '0', '0'};
            pb_hex_encode(p, 1, e + 4);
            pb_out_append(o, e, 6);
            p++;
        } else {
            int n = pb_utf8_len(p);
            if (n) {
                pb_out_append(o, (const char *)p, (size_t)n);
                p += n;
            } else {
                pb_puts(o, "\\ufffd");
                p++;
            }
        }
    }
    pb_puts(o, "\"");
}

static void pb_field_u64(struct pb_out *o, const char *indent, const char *key, uint64_t v, int last)
{
    pb_puts(o, indent);
    pb_put_string(o, key);
    pb_puts(o, ": ");
    pb_put_u64(o, v);
    pb_puts(o, last ? "\n" : ",\n");
}

static void pb_write_json(struct pb_out *o, const struct pb_snapshot *s)
{
    double elapsed_ns = s->end_ns > s->start_ns ? (double)(s->end_ns - s->start_ns) : 0;
    double elapsed_cycles = s->end_cycles > s->start_cycles ? (double)(s->end_cycles - s->start_cycles) : 0;
    /* TSC ticks per nanosecond over the profiled interval; the TSC is invariant on CPUs with
     * constant_tsc/nonstop_tsc, which `privbox doctor` reports. */
    double per_ns = elapsed_ns > 0 && elapsed_cycles > 0 ? elapsed_cycles / elapsed_ns : 1.0;

    pb_puts(o, "{\n  \"schema\": \"privbox-profile/1\",\n  \"tool\": \"privbox " PB_VERSION "\",\n");
    pb_puts(o, "  \"processes\": [\n    {\n");
    pb_field_u64(o, "      ", "pid", (uint64_t)s->pid, 0);
    pb_field_u64(o, "      ", "ppid", (uint64_t)s->ppid, 0);
    pb_puts(o, "      \"exe\": ");
    pb_put_string(o, s->exe);
    pb_puts(o, ",\n");
    pb_field_u64(o, "      ", "wall_ns", (uint64_t)elapsed_ns, 0);
    pb_field_u64(o, "      ", "threads", s->threads, 0);
    pb_field_u64(o, "      ", "dropped", s->dropped, 0);
    if (s->inline_discovery) {
        pb_field_u64(o, "      ", "inline_traps", s->inline_traps, 0);
        pb_field_u64(o, "      ", "inline_threads_spent", s->inline_threads_spent, 0);
    }
    pb_puts(o, "      \"modules\": [");
    for (size_t i = 0; i < s->module_count; i++) {
        const struct pb_module_record *m = &s->modules[i];
        pb_puts(o, i ? ",\n        {\"path\": " : "\n        {\"path\": ");
        pb_put_string(o, m->path);
        pb_puts(o, ", \"build_id\": \"");
        char id[2 * PB_BUILD_ID_MAX + 1];
        pb_hex_encode(m->build_id, m->build_id_len, id);
        pb_puts(o, id);
        pb_puts(o, "\"}");
    }
    pb_puts(o, s->module_count ? "\n      ],\n" : "],\n");
    pb_puts(o, "      \"sites\": [");
    for (size_t i = 0; i < s->site_count; i++) {
        const struct pb_site_record *r = &s->sites[i];
        /* A trapped call is counted under nr + PB_INLINE_NR (inline_discovery.c). */
        int trapped = s->inline_discovery && r->syscall_nr >= PB_INLINE_NR;
        unsigned nr = trapped ? r->syscall_nr - PB_INLINE_NR : r->syscall_nr;
        const char *name = pb_syscall_assigned_name(nr);
        char fallback[32];
        if (!name) {
            snprintf(fallback, sizeof fallback, "syscall_%u", nr);
            name = fallback;
        }
        pb_puts(o, i ? ",\n        {\"module\": " : "\n        {\"module\": ");
        pb_put_i64(o, r->module);
        pb_puts(o, ", \"offset\": ");
        pb_put_u64(o, r->module >= 0 ? r->offset : r->address);
        pb_puts(o, ", \"syscall\": ");
        pb_put_string(o, name);
        pb_puts(o, ", \"nr\": ");
        pb_put_u64(o, nr);
        if (trapped)
            pb_puts(o, ", \"inline\": true"); /* a `syscall` instruction, not a wrapper call */
        pb_puts(o, ", \"thread\": ");
        pb_put_u64(o, r->thread);
        pb_puts(o, ", \"calls\": ");
        pb_put_u64(o, r->calls);
        pb_puts(o, ", \"checked\": ");
        pb_put_u64(o, r->checked);
        pb_puts(o, ", \"errors\": ");
        pb_put_u64(o, r->errors);
        /* Only the timed calls were measured: their sums are scaled up to all calls. */
        double scale = r->timed ? (double)r->calls / (double)r->timed : 0;
        pb_puts(o, ", \"timed\": ");
        pb_put_u64(o, r->timed);
        pb_puts(o, ", \"kernel_ns\": ");
        pb_put_u64(o, (uint64_t)((double)r->kernel_cycles / per_ns * scale + 0.5));
        pb_puts(o, ", \"user_ns\": ");
        pb_put_u64(o, (uint64_t)((double)r->user_cycles / per_ns * scale + 0.5));
        pb_puts(o, "}");
    }
    pb_puts(o, s->site_count ? "\n      ],\n" : "],\n");
    pb_field_u64(o, "      ", "stacks_dropped", s->stacks_dropped, 0);
    pb_puts(o, "      \"stacks\": [");
    for (size_t i = 0; i < s->stack_count; i++) {
        const struct pb_stack_record *st = &s->stacks[i];
        pb_puts(o, i ? ",\n        {\"thread\": " : "\n        {\"thread\": ");
        pb_put_u64(o, st->thread);
        pb_puts(o, ", \"count\": ");
        pb_put_u64(o, st->count);
        pb_puts(o, st->sampled ? ", \"sampled\": true" : ", \"sampled\": false");
        pb_puts(o, st->truncated ? ", \"truncated\": true" : ", \"truncated\": false");
        pb_puts(o, ", \"frames\": [");
        for (uint32_t f = 0; f < st->depth; f++) {
            const struct pb_frame_record *fr = &s->frames[st->first_frame + f];
            pb_puts(o, f ? ", [" : "[");
            pb_put_i64(o, fr->module);
            pb_puts(o, ", ");
            pb_put_u64(o, fr->offset);
            pb_puts(o, "]");
        }
        pb_puts(o, "]}");
    }
    pb_puts(o, s->stack_count ? "\n      ]\n    }\n  ]\n}\n" : "]\n    }\n  ]\n}\n");
}

int pb_write_profile_file(const struct pb_snapshot *s, char *err, size_t errlen)
{
    const char *path = s->profile_path;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) {
        snprintf(err, errlen, "cannot write profile %s: not a file name", path);
        return -1;
    }
    /* Static, not on a program's possibly small stack: pb_write_profile calls this once per
     * process, at exit (after exchanging pb_counting to 0, so no other thread gets here). */
    static struct pb_out out; /* 32 KiB */
    static char dir[PB_PATH_MAX], tmp[PB_PATH_MAX + 64];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    long dirfd = pb_raw_syscall6(SYS_openat, AT_FDCWD, (long)dir,
                                 O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC, 0, 0, 0);
    if (dirfd < 0) {
        snprintf(err, errlen, "cannot write profile %s: %s", path, strerror((int)-dirfd));
        return -1;
    }
    const char *kind;
    if (!pb_replaceable((int)dirfd, base, &kind)) {
        /* Said before anything is made: no temporary file appears next to a device either. */
        snprintf(err, errlen, "cannot write profile %s: it is %s; not replaced", path, kind);
        pb_raw_syscall6(SYS_close, dirfd, 0, 0, 0, 0, 0);
        return -1;
    }
    int fd = -1;
    long r = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        /* A hidden temporary name next to the target, so the rename stays within one directory. */
        int n = snprintf(tmp, sizeof tmp, ".%s.%d.%d.tmp", base, (int)s->pid, attempt);
        r = n > 0 && (size_t)n < sizeof tmp
                ? pb_raw_syscall6(SYS_openat, dirfd, (long)tmp,
                                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0, 0)
                : -ENAMETOOLONG;
        if (r >= 0)
            fd = (int)r;
        else if (r != -EEXIST)
            break;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot write profile %s: %s", path,
                 r == -EEXIST ? "no free temporary name" : strerror((int)-r));
        pb_raw_syscall6(SYS_close, dirfd, 0, 0, 0, 0, 0);
        return -1;
    }
    pb_raw_syscall6(SYS_fchmod, fd, 0600, 0, 0, 0, 0); /* exactly 0600 whatever the umask */
    out.fd = fd;
    out.failed = 0;
    out.used = 0;
    pb_write_json(&out, s);
    pb_flush(&out);
    pb_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    r = out.failed ? -out.failed : pb_replace_regular((int)dirfd, tmp, base, &kind);
    if (r != 0)
        pb_raw_syscall6(SYS_unlinkat, dirfd, (long)tmp, 0, 0, 0, 0);
    pb_raw_syscall6(SYS_close, dirfd, 0, 0, 0, 0, 0);
    if (r == 1) {
        snprintf(err, errlen, "cannot write profile %s: it is %s; not replaced", path, kind);
        return -1;
    }
    if (r < 0) {
        snprintf(err, errlen, "cannot write profile %s: %s", path, strerror((int)-r));
        return -1;
    }
    return 0;
}
