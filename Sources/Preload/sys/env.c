/*
 * sys/env.c — the environment the program and its children see: privbox's own edits of it (get,
 * set, remove) and the one that sends a process tree native (pb_stop_inheritance). It touches the
 * environment arrays only (and maps one page when a variable is added); which edits to make is
 * the start-up's decision (runtime.c). Constructor only: no thread of the program exists yet.
 */
#include "sys/env.h"
#include "sys/memory.h"
#include "privbox_shim.h"

#include <string.h>
#include <unistd.h>

/* LD_PRELOAD is a list of paths separated by ':' or ' '. Returns the next entry at or after *p
 * (its length in *len, 0 at the end) and advances *p past it. */
const char *pb_next_preload_entry(const char **p, size_t *len)
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
int pb_is_privbox_entry(const char *entry, size_t len)
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

void pb_env_start(char **envp) { pb_startup_envp = envp; }

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

/* Removes every `name` from both arrays (main()'s envp and environ). */
static void pb_env_remove(const char *name)
{
    pb_env_remove_from(pb_startup_envp, name);
    if (environ != pb_startup_envp)
        pb_env_remove_from(environ, name);
}

const char *pb_env_get(const char *name)
{
    char **e = pb_env_slot(environ, name, strlen(name));
    return e ? *e + strlen(name) + 1 : 0;
}

/* Sets the variable whose "NAME=value" text is `entry`, which must outlive the process (static
 * storage). A variable already there is replaced in place, in both arrays. A new one needs a
 * larger array: environ then points to a copy with it appended (pb_map'd, never freed: environ
 * may be kept by anyone); main()'s envp cannot grow, so a program that reads only envp (bash)
 * does not see it. */
void pb_env_set(const char *entry)
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
void pb_stop_inheritance(void)
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
