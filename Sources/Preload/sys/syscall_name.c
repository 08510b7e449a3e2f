/*
 * sys/syscall_name.c — the one holder of the generated name table (sys/syscall_names.h, made by
 * scripts/gen-syscall-names): every other file asks these two functions. Pure.
 */
#include "sys/syscall_name.h"
#include "sys/syscall_names.h"

#include <stddef.h>

const char *pb_syscall_assigned_name(unsigned nr)
{
    return nr < 1024 ? pb_syscall_names[nr] : NULL;
}

const char *pb_syscall_name(unsigned nr)
{
    const char *name = pb_syscall_assigned_name(nr);
    return name ? name : "syscall";
}
