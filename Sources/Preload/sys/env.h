/*
 * sys/env.h — the environment the program and the programs it starts see, edited by privbox itself
 * (sys/env.c says why not with setenv), and LD_PRELOAD's entries. Constructor only.
 */
#ifndef PRIVBOX_SYS_ENV_H
#define PRIVBOX_SYS_ENV_H

#include "sys/attributes.h"

#include <stddef.h>

/* The array main() will receive as envp: the constructor's third argument, given first. */
void pb_env_start(char **envp) PB_HIDDEN;
/* The value of `name` in environ, or null. */
const char *pb_env_get(const char *name) PB_HIDDEN;
/* Sets the variable whose "NAME=value" text is `entry` (static storage: it must outlive the
 * process); see sys/env.c for what a program that reads only envp sees of a new one. */
void pb_env_set(const char *entry) PB_HIDDEN;
/* LD_PRELOAD is a list of paths separated by ':' or ' '. Returns the next entry at or after *p
 * (its length in *len, 0 at the end) and advances *p past it. */
const char *pb_next_preload_entry(const char **p, size_t *len) PB_HIDDEN;
/* Whether an LD_PRELOAD entry names libprivbox.so (by file name, wherever it is). */
int pb_is_privbox_entry(const char *entry, size_t len) PB_HIDDEN;
/* PRIVBOX_INHERIT=0 or bad input: libprivbox.so out of LD_PRELOAD and every PRIVBOX_* variable
 * removed, so the programs this process executes run natively. */
void pb_stop_inheritance(void) PB_HIDDEN;

#endif
