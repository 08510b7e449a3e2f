/*
 * sys/own_text.h — libprivbox.so's own executable segment, the region Syscall User Dispatch lets
 * through (fusion's windows; inline discovery has its own copy of the lookup today,
 * profile/inline_discovery.c pb_sud_region), and an rt_sigreturn inside it for SA_RESTORER.
 *
 * May use: sys/ (declarations only).
 */
#ifndef PRIVBOX_OWN_TEXT_H
#define PRIVBOX_OWN_TEXT_H

#include "sys/internal.h"

/* The executable PT_LOAD segment holding privbox's code: 0 and the range, or -1 if not found. */
int pb_own_text(uintptr_t *start, uintptr_t *len) PB_HIDDEN;
/* rt_sigreturn, in that segment: a handler that runs while dispatch blocks everything else
 * returns through it (glibc's __restore_rt, outside the segment, would itself be dispatched). */
void pb_own_text_restorer(void) PB_HIDDEN;

#endif
