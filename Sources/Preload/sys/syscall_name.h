/*
 * sys/syscall_name.h — x86-64 system call names by number (sys/syscall_name.c, from the generated
 * table sys/syscall_names.h), for the profile, the plan's reports and the rewriter's notes.
 */
#ifndef PRIVBOX_SYS_SYSCALL_NAME_H
#define PRIVBOX_SYS_SYSCALL_NAME_H

#include "sys/attributes.h"

/* The name of nr, or "syscall" when it has none. */
const char *pb_syscall_name(unsigned nr) PB_HIDDEN;
/* The name of nr, or null when the number is unassigned (or 1024 and above). */
const char *pb_syscall_assigned_name(unsigned nr) PB_HIDDEN;

#endif
