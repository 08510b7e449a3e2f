/*
 * runtime.c — the preload's start-up: the constructor reads the configuration (PRIVBOX_*, through
 * config.c), decides the mode, and decides what the programs this one executes inherit; it also
 * installs the exit handler (the profile) and the fork handler. It may use every layer; the
 * services it uses live below it, one job a file (sys/: log, files, cache, env, modules, symbols,
 * memory; profile/: the snapshot and the writer).
 *
 * Nothing here is on a syscall path. The constructor runs before main() and must leave the
 * process as it found it when the mode is off: it reads the environment and opens, maps and
 * prints nothing. It changes the environment in four cases only, editing it itself (sys/env.c):
 * PRIVBOX_INHERIT=0 or bad input (libprivbox.so and PRIVBOX_* are removed, so the programs this
 * one starts run natively), a relative LD_PRELOAD entry for libprivbox.so (made absolute, see
 * pb_make_preload_absolute), and in profile and accelerate modes a relative or unset
 * PRIVBOX_PROFILE (made absolute, pb_make_profile_absolute).
 */
#include "accelerate/plan_cache.h"
#include "accelerate/routes.h"
#include "executors/executor.h"
#include "executors/fusion.h"
#include "rewriter/copy_request.h"
#include "profile/counting.h"
#include "profile/inline_discovery.h"
#include "profile/snapshot.h"
#include "sys/env.h"
#include "sys/files.h"
#include "sys/log.h"
#include "sys/modules.h"
#include "sys/process.h"
#include "sys/symbols.h"
#include "wrappers/wrappers.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>


static void pb_at_exit(void)
{
    pb_fuse_flush();
    struct pb_fpenv fp;
    pb_fpenv_save(&fp);
    pb_write_profile();
    pb_fpenv_restore(&fp);
}

static void pb_atfork_child(void)
{
    if (pb_counting)
        pb_after_fork_child();
}

/* ---- the environment the program's children inherit ---------------------------------------- */

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

/* ---- accelerate mode's start: may this program use the profile? ------------------------------ */

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
    pb_wrappers_give_copies_their_entries();
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

/* ---- the constructor ------------------------------------------------------------------------ */

__attribute__((constructor)) static void pb_init(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)argv;
    pb_env_start(envp);
    /* A fused descriptor's bytes go out before any line of privbox's (sys/log.c says why). */
    pb_log_set_flush(pb_fuse_flush);
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
