/*
 * sys/memory.h — the preload's memory: anonymous pages mapped and unmapped with raw system calls
 * (sys/memory.c). No malloc anywhere in the preload: it runs before main(), in signal handlers and
 * in fork children, where libc's allocator may be locked or not yet usable.
 */
#ifndef PRIVBOX_SYS_MEMORY_H
#define PRIVBOX_SYS_MEMORY_H

#include "sys/attributes.h"

#include <stddef.h>

/* bytes of zeroed, private, read-write memory, or null. */
void *pb_map(size_t bytes) PB_HIDDEN;
/* Gives back what pb_map (or a raw mmap) returned, bytes as mapped. errno is untouched. */
void pb_unmap(void *p, size_t bytes) PB_HIDDEN;

#endif
