/*
 * sys/log.h — privbox's messages on stderr (sys/log.c). Levels are enum pb_log_level
 * (privbox_shim.h).
 */
#ifndef PRIVBOX_SYS_LOG_H
#define PRIVBOX_SYS_LOG_H

#include "privbox_shim.h"
#include "sys/attributes.h"

/* One line on fd 2, "privbox: " + message, if level <= PRIVBOX_LOG. Not for signal context. */
void pb_log(int level, const char *fmt, ...) PB_HIDDEN __attribute__((format(printf, 2, 3)));
/* What pb_log calls before it writes (the start-up registers the fused descriptors' flush). */
void pb_log_set_flush(void (*flush)(void)) PB_HIDDEN;

#endif
