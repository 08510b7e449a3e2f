/*
 * rewriter/report.c — what the rewriter says: why a function is not copied (pb_refuse, logged at
 * info level as "not copied", the text kept in the job for the decode cache), what was said about
 * its sites (pb_note, replayed from the cache on later runs), and at exit (PRIVBOX_LOG=info) each
 * instrumented site with how its calls were answered.
 *
 * May touch: the report's entries (pb_copied, grown with pb_map; written before main() by the one
 * thread that builds the copies, read at exit) and a job's why and notes. The per-site counts it
 * reads are the copies' plain adds (a lower bound when threads share a site). Uses rewriter/,
 * executors/ (the executors' names), sys/.
 */
#include "rewriter/parts.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- while copying ------------------------------------------------------------------------------ */

/* Why the function is not copied: kept in job->why (for the decode cache) and logged. */
void pb_refuse(struct pb_copy_job *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->why, sizeof job->why, fmt, ap);
    va_end(ap);
    pb_log(PB_LOG_INFO, "not copied: %s (%s+0x%llx): %s; its sites run as before",
           job->function[0] ? job->function : "?", job->module,
           (unsigned long long)(job->fn - job->bias_for_log), job->why);
}

/* Something said about a site while decoding: logged, and kept for the decode cache. */
void pb_note(struct pb_copy_job *job, const char *fmt, ...)
{
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pb_log(PB_LOG_INFO, "%s", line);
    size_t used = strlen(job->notes);
    snprintf(job->notes + used, sizeof job->notes - used, "%s\n", line);
}

/* ---- what was copied, for the report at exit ------------------------------------------------ */

static struct pb_copied_site *pb_copied;
static size_t pb_copied_count, pb_copied_cap;

/* Room for one more pb_copied entry; 0 when there is no memory for it. */
static int pb_copied_reserve(void)
{
    if (pb_copied_count < pb_copied_cap)
        return 1;
    size_t cap = pb_copied_cap ? 2 * pb_copied_cap : 64;
    struct pb_copied_site *grown = pb_map(cap * sizeof *grown);
    if (!grown)
        return 0;
    if (pb_copied) {
        memcpy(grown, pb_copied, pb_copied_count * sizeof *grown);
        pb_unmap(pb_copied, pb_copied_cap * sizeof *grown);
    }
    pb_copied = grown;
    pb_copied_cap = cap;
    return 1;
}

struct pb_copied_site *pb_copied_add(void)
{
    if (!pb_copied_reserve())
        return 0;
    struct pb_copied_site *c = &pb_copied[pb_copied_count++];
    memset(c, 0, sizeof *c);
    return c;
}

size_t pb_copied_mark(void)
{
    return pb_copied_count;
}

void pb_copied_forget_after(size_t keep)
{
    pb_copied_count = keep;
}

void pb_copies_report(void)
{
    for (size_t i = 0; i < pb_copied_count; i++) {
        if (pb_copied[i].boxed)
            pb_log(PB_LOG_INFO, "%s: runs in a box; through the kernel gate", pb_copied[i].label);
        else if (pb_copied[i].served && pb_copied[i].call_site)
            pb_log(PB_LOG_INFO, "%s: instrumented; %s", pb_copied[i].label,
                   __atomic_load_n(pb_copied[i].served, __ATOMIC_RELAXED)
                       ? "identity answered by the value's load inlined at the call"
                       : "the value's load inlined at the call never answered (nothing was cached)");
        else if (pb_copied[i].served)
            pb_log(PB_LOG_INFO, "%s: instrumented; %llu calls answered by identity", pb_copied[i].label,
                   (unsigned long long)__atomic_load_n(pb_copied[i].served, __ATOMIC_RELAXED));
        else
            pb_log(PB_LOG_INFO, "%s: instrumented; calls the %s entry directly", pb_copied[i].label,
                   pb_executors[pb_copied[i].executor]->name);
    }
}
