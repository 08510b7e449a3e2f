/*
 * launch.c — process start-up helpers for the CLI that Swift's Glibc module does not expose
 * (execvpe is a GNU extension).
 */
#include "privbox_shim.h"

#include <unistd.h>

int pb_execvpe(const char *file, char *const argv[], char *const envp[])
{
    return execvpe(file, argv, envp);
}
