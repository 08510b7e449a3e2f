/*
 * executors/fusion.h — the fusion executor's entry points (executors/fusion.c says why its answers
 * are the kernel's): its two wrappers' attempts, and the flush that privbox's own raw system calls
 * make first.
 *
 * May use: executors/ and sys/ (declarations only).
 */
#ifndef PRIVBOX_EXEC_FUSION_H
#define PRIVBOX_EXEC_FUSION_H

#include "executors/executor.h"

/* 1 and the answer in *out when served, 0 to go to the kernel. */
int pb_fuse_lseek(int fd, off_t off, int whence, off_t *out) PB_HIDDEN;
int pb_fuse_read(int fd, void *buf, size_t n, ssize_t *out) PB_HIDDEN;
/* Closes an open window before privbox itself makes a system call that changes or looks at what
 * the window defers (see fusion.c). */
void pb_fuse_flush(void) PB_HIDDEN;

#endif
