/*
 * sys/log.c — privbox's messages: one line on fd 2, "privbox: " + message, if fd 2 is privbox's
 * to write to (the log-fd rule below) and the level is at most PRIVBOX_LOG. Not for signal context
 * (vsnprintf). It writes to fd 2 only, with raw calls, and preserves errno.
 */
#include "sys/log.h"
#include "sys/files.h"
#include "sys/process.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

/* Registered by the start-up (runtime.c) as the executors' pb_fuse_flush: a fused descriptor
 * (executors/fusion.c) holds bytes the program wrote, and stderr may share its file description,
 * so they go out before a line of privbox's. A hook because the log is below every layer that
 * buffers; null until the constructor runs, when nothing is buffered yet. */
static void (*pb_log_flush)(void);

void pb_log_set_flush(void (*flush)(void)) { pb_log_flush = flush; }

/* One line on fd 2, if fd 2 is privbox's to write to. It is only when it was open when the
 * constructor ran: a program started with fd 2 closed (`2>&-`, a daemon's supervisor) gets fd 2
 * back for the first file it opens, and a line written there would land in the program's data.
 * A program that closes fd 2 later and opens a file on it is not told apart: its stderr was a
 * stream privbox was given, and what is at fd 2 then is the program's own redirection (dup2). */
void pb_log(int level, const char *fmt, ...)
{
    if (level > pb_proc.log_level || !pb_proc.log_fd_open)
        return;
    if (pb_log_flush)
        pb_log_flush(); /* stderr may share a fused fd's file description */
    int saved = errno;
    char line[1024];
    int head = snprintf(line, sizeof line, "privbox: ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + head, sizeof line - (size_t)head - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)head + (n < 0 ? 0 : (size_t)n);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    for (size_t i = (size_t)head; i < len; i++) /* one event, one line */
        if (line[i] == '\n')
            line[i] = ' ';
    line[len++] = '\n';
    pb_write_all(2, line, len); /* stderr full or gone: privbox's messages are best effort */
    errno = saved;
}
