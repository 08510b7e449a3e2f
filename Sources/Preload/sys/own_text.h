/*
 * sys/own_text.h — libprivbox.so's own code segment (sys/own_text.c): the region Syscall User
 * Dispatch always lets through (inline discovery and the fusion executor register it), and the
 * rt_sigreturn that must lie inside it.
 */
#ifndef PRIVBOX_SYS_OWN_TEXT_H
#define PRIVBOX_SYS_OWN_TEXT_H

#include "sys/attributes.h"

#include <stdint.h>

/* libprivbox.so's executable segment: the region Syscall User Dispatch always lets through.
 * 0, or -1 if it was not found. */
int pb_own_text(uintptr_t *start, uintptr_t *len) PB_HIDDEN;
/* rt_sigreturn inside that region, for SA_RESTORER. */
void pb_own_text_restorer(void) PB_HIDDEN;

#endif
