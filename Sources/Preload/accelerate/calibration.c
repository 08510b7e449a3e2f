/*
 * accelerate/calibration.c — the machine's calibration: `privbox doctor --calibrate` times each
 * executor's representative call served and made natively (privbox_calibrate, reached through
 * dlopen) and writes the table to the cache; the preload reads it back before it installs routes
 * (pb_read_calibration), and an executor the table says loses on this machine is not started.
 *
 * May use: executors/ (the protocol: each executor's served_once/native_once, and
 * pb_exec_calibrated_slower to pass the verdict down), sys/.
 */
#include "accelerate/calibration.h"

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

/* The calibration file written by `privbox doctor --calibrate`: lines "name served native" in TSC
 * cycles, after a first line naming the machine (kernel release and CPU) it was measured on. */
static void pb_read_calibration_file(void);
static void pb_calibration_machine(char *out, size_t len);
void pb_read_calibration(void)
{
    /* sscanf's %lf raises FE_INEXACT, in the program's floating-point environment */
    struct pb_fpenv fp;
    pb_fpenv_save(&fp);
    pb_read_calibration_file();
    pb_fpenv_restore(&fp);
}

static void pb_read_calibration_file(void)
{
    /* In a mapped page, not on the program's stack (8.5 KiB; the constructor runs this, on the
     * main thread's stack, which a program may have made small). The file is trusted as the
     * caches are (pb_open_trusted_cache_file, sys/cache.c): it decides which executors run. */
    struct pb_calibration_scratch { char path[PB_PATH_MAX], buf[4096], machine[256]; };
    struct pb_calibration_scratch *m = pb_map(sizeof *m);
    if (!m)
        return;
    if (pb_cache_path("calibration", m->path, sizeof m->path) != 0 ||
        pb_read_trusted_cache_file(m->path, "; nothing but `privbox doctor --calibrate` writes it again",
                                   m->buf, sizeof m->buf) <= 0)
        goto out;
    pb_calibration_machine(m->machine, sizeof m->machine);
    char *line = m->buf, *nl = strchr(line, '\n');
    if (!nl || (size_t)(nl - line) != strlen(m->machine) || memcmp(line, m->machine, (size_t)(nl - line)))
        goto out; /* measured on another machine or kernel: ignored */
    pb_log(PB_LOG_DEBUG, "calibration read from %s", m->path);
    for (line = nl + 1; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        char name[64];
        double served, native;
        if (sscanf(line, "%63s %lf %lf", name, &served, &native) != 3)
            continue;
        for (int e = 1; e < PB_EXEC_COUNT; e++)
            if (!strcmp(name, pb_executors[e]->name) && served >= native)
                pb_exec_calibrated_slower((enum pb_executor_id)e);
    }
out:
    pb_unmap(m, sizeof *m);
}

/* ---- calibration (`privbox doctor --calibrate` calls this through dlopen) ----------------------- */

/* "privbox-calibration/1 <kernel release> <arch> | <CPU model>": the machine a calibration holds
 * for (its first line). */
static void pb_calibration_machine(char *out, size_t len)
{
    struct utsname u;
    char cpu[128] = "unknown CPU";
    uname(&u);
    /* The start of /proc/cpuinfo, in a mapped page rather than on the caller's stack. */
    const size_t cap = 4096;
    char *buf = pb_map(cap);
    if (buf && pb_read_file("/proc/cpuinfo", buf, cap) > 0) {
        char *m = strstr(buf, "model name");
        char *colon = m ? strchr(m, ':') : 0;
        if (colon) {
            colon += 2;
            size_t l = strcspn(colon, "\n");
            if (l >= sizeof cpu)
                l = sizeof cpu - 1;
            memcpy(cpu, colon, l);
            cpu[l] = '\0';
        }
    }
    if (buf)
        pb_unmap(buf, cap);
    snprintf(out, len, "privbox-calibration/1 %s %s | %s", u.release, u.machine, cpu);
}

/* Cycles per call of `once`: the best of 5 batches of 1000 (the least disturbed). */
static double pb_time_calls(void (*once)(void))
{
    double best = 1e30;
    for (int b = 0; b < 5; b++) {
        uint64_t t0 = pb_cycles();
        for (int i = 0; i < 1000; i++)
            once();
        double per = (double)(pb_cycles() - t0) / 1000.0;
        if (per < best)
            best = per;
    }
    return best;
}

/* Measures every executor that can run here. Returns the number of lines written into out:
 * "name served_cycles native_cycles available why". */
PB_EXPORT int privbox_calibrate(char *out, size_t len)
{
    size_t used = 0;
    char machine[256];
    pb_calibration_machine(machine, sizeof machine);
    used += (size_t)snprintf(out + used, len - used, "%s\n", machine);
    for (int e = 1; e < PB_EXEC_COUNT && used < len; e++) {
        if (!pb_exec_ready((enum pb_executor_id)e)) {
            used += (size_t)snprintf(out + used, len - used, "# %s unavailable: %s\n",
                                     pb_executors[e]->name, pb_exec_why_not((enum pb_executor_id)e));
            continue;
        }
        double served = pb_time_calls(pb_executors[e]->served_once);
        double native = pb_time_calls(pb_executors[e]->native_once);
        used += (size_t)snprintf(out + used, len - used, "%s %.1f %.1f\n", pb_executors[e]->name,
                                 served, native);
    }
    return used < len ? 0 : -1;
}
