/*
 * core_check.c — calls the Swift core's privbox_core_check_profile (libprivbox_core.so) directly,
 * as the preload does before main(), and prints its result and message. It lets a test look at
 * the core's own check of a profile, without the preload's check in front of it (which the core
 * must not rely on: the file at the path can change after the preload looked at it).
 * Usage: core_check CORE.so PROFILE EXE
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

typedef int (*check_fn)(const char *, const char *, const uint8_t *, long, char *, long);

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: core_check CORE.so PROFILE EXE\n");
        return 2;
    }
    void *core = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    check_fn check = core ? (check_fn)dlsym(core, "privbox_core_check_profile") : NULL;
    if (!check) {
        fprintf(stderr, "core_check: %s\n", dlerror());
        return 2;
    }
    char err[4096] = "";
    int r = check(argv[2], argv[3], NULL, 0, err, sizeof err);
    printf("%d %s\n", r, err);
    return 0;
}
