/*
 * profile/snapshot.c — the profile of a process at exit: every thread's site table and stacks
 * (profile/counting.c) with their addresses made module + offset over the loaded modules, handed
 * to the writer (profile/writer.c). It runs once per process, from the exit handler, after
 * counting has been switched off; it maps its records (pb_map, never freed: the process is ending)
 * and opens nothing itself.
 */
#include "profile/snapshot.h"
#include "profile/counting.h"
#include "sys/log.h"
#include "sys/memory.h"
#include "sys/modules.h"

#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

struct pb_module_scan {
    struct pb_module_record *modules;
    uint64_t (*ranges)[2]; /* executable PT_LOAD ranges, one per module */
    size_t count, cap;
    char *paths;           /* storage for path strings */
    size_t paths_used, paths_cap;
};

static int pb_scan_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct pb_module_scan *scan = data;
    if (scan->count == scan->cap)
        return 1;
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : 0;
    if (!path) {
        /* The main program and, with some loaders, the vDSO come without a name; the vDSO is
         * the one loaded at AT_SYSINFO_EHDR. */
        int is_vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR) == (uintptr_t)info->dlpi_addr;
        path = is_vdso ? "[vdso]" : pb_exe_path();
    }
    size_t len = strlen(path) + 1;
    if (scan->paths_used + len > scan->paths_cap)
        return 1;
    struct pb_module_record *m = &scan->modules[scan->count];
    memset(m, 0, sizeof *m);
    memcpy(scan->paths + scan->paths_used, path, len);
    m->path = scan->paths + scan->paths_used;
    scan->paths_used += len;
    m->base = info->dlpi_addr;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uint64_t a = info->dlpi_addr + ph->p_vaddr;
            if (a < lo) lo = a;
            if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
        }
    }
    scan->ranges[scan->count][0] = lo;
    scan->ranges[scan->count][1] = hi;
    pb_build_id(info, m);
    scan->count++;
    return 0;
}

/* The module whose executable segments contain addr, with addr's offset from its base. */
static int32_t pb_module_of(const struct pb_module_scan *scan, uint64_t addr, uint64_t *offset)
{
    for (size_t m = 0; m < scan->count; m++) {
        if (addr >= scan->ranges[m][0] && addr < scan->ranges[m][1]) {
            *offset = addr - scan->modules[m].base;
            return (int32_t)m;
        }
    }
    *offset = addr;
    return -1;
}

/* How much the snapshot holds, counted before anything is mapped for it. */
struct pb_snapshot_sizes {
    size_t sites, threads, stacks, frames;
    uint64_t dropped, stacks_dropped;
};

static void pb_snapshot_count(struct pb_snapshot_sizes *z)
{
    memset(z, 0, sizeof *z);
    for (struct pb_thread_table *t = pb_tables_head(); t; t = t->next) {
        z->threads++;
        z->dropped += t->dropped;
        z->stacks_dropped += t->stacks_dropped;
        for (uint32_t i = 0; i < PB_TABLE_SLOTS; i++)
            z->sites += t->slots[i].key != 0;
        for (uint32_t i = 0; i < PB_STACK_SLOTS; i++) {
            if (t->stacks[i].hash && t->stacks[i].count) {
                z->stacks++;
                z->frames += t->stacks[i].depth;
            }
        }
    }
}

/* The records of every table into sites, stacks and frames (sized by pb_snapshot_count: a table
 * that grew since is cut at those sizes); the counts filled into snap. */
static void pb_snapshot_records(const struct pb_snapshot_sizes *z, const struct pb_module_scan *scan,
                                struct pb_site_record *sites, struct pb_stack_record *stacks,
                                struct pb_frame_record *frames, struct pb_snapshot *snap)
{
    size_t n = 0, ns = 0, nf = 0;
    size_t site_count = z->sites, stack_count = z->stacks, frame_count = z->frames;
    for (struct pb_thread_table *t = pb_tables_head(); t; t = t->next) {
        for (uint32_t i = 0; i < PB_TABLE_SLOTS && n < site_count; i++) {
            const struct pb_slot *s = &t->slots[i];
            if (!s->key)
                continue;
            struct pb_site_record *r = &sites[n++];
            r->address = s->key >> 10;
            r->syscall_nr = (uint32_t)(s->key & 1023u);
            r->thread = t->index;
            r->calls = s->calls;
            r->checked = s->checked;
            r->errors = s->errors;
            r->timed = s->timed;
            r->kernel_cycles = s->kernel_cycles;
            r->user_cycles = s->user_cycles;
            r->module = pb_module_of(scan, r->address, &r->offset);
        }
        for (uint32_t i = 0; i < PB_STACK_SLOTS && ns < stack_count; i++) {
            const struct pb_stack *st = &t->stacks[i];
            if (!st->hash || !st->count || nf + st->depth > frame_count)
                continue;
            struct pb_stack_record *r = &stacks[ns++];
            r->thread = t->index;
            r->count = st->count;
            r->sampled = st->sampled;
            r->truncated = st->truncated;
            r->depth = st->depth;
            r->first_frame = (uint32_t)nf;
            for (uint32_t f = 0; f < st->depth; f++) {
                struct pb_frame_record *fr = &frames[nf++];
                fr->module = pb_module_of(scan, st->frames[f], &fr->offset);
            }
        }
    }
    snap->site_count = n;
    snap->sites = sites;
    snap->stack_count = ns;
    snap->stacks = stacks;
    snap->frames = frames;
}

void pb_write_profile(void)
{
    int inline_used = pb_inline_started;
    uint64_t inline_traps = 0;
    uint32_t inline_spent = 0;
    if (inline_used) {
        /* Discovery ends in every thread (every selector at ALLOW): from here no call traps, and
         * the wrappers stop marking their calls. */
        pb_inline_stop_all();
        pb_inline_totals(&inline_traps, &inline_spent);
    }
    if (!__atomic_exchange_n(&pb_counting, 0, __ATOMIC_SEQ_CST))
        return; /* not counting (or already written) */
    uint64_t end_ns = pb_monotonic_ns(), end_cycles = pb_cycles();

    struct pb_snapshot_sizes z;
    pb_snapshot_count(&z);
    if (z.sites == 0 && z.dropped == 0) {
        /* Nothing to report (e.g. /bin/true, or a shell that only execs): creating the file would
         * be the most expensive thing the process did (~1 ms on this machine's disk). */
        pb_log(PB_LOG_INFO, "no wrapped call was made; no profile written");
        return;
    }
    struct pb_module_scan scan = {0};
    scan.cap = 1024;
    scan.paths_cap = 1024 * 256;
    scan.modules = pb_map(scan.cap * sizeof *scan.modules);
    scan.ranges = pb_map(scan.cap * sizeof *scan.ranges);
    scan.paths = pb_map(scan.paths_cap);
    if (!scan.modules || !scan.ranges || !scan.paths) {
        pb_log(PB_LOG_ERROR, "out of memory while writing the profile");
        return;
    }
    dl_iterate_phdr(pb_scan_module, &scan);

    struct pb_site_record *sites = pb_map((z.sites + 1) * sizeof *sites);
    struct pb_stack_record *stacks = pb_map((z.stacks + 1) * sizeof *stacks);
    struct pb_frame_record *frames = pb_map((z.frames + 1) * sizeof *frames);
    if (!sites || !stacks || !frames) {
        pb_log(PB_LOG_ERROR, "out of memory while writing the profile");
        return;
    }
    /* The kernel's answer, unless a seccomp filter of the program now refuses getpid: then the pid
     * recorded at start (or in the fork child). */
    long pid = pb_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    if (pid <= 0)
        pid = pb_proc.pid;
    long ppid = pb_raw_syscall6(SYS_getppid, 0, 0, 0, 0, 0, 0);
    if (ppid < 0)
        ppid = 0;
    /* Static, not on a program's possibly small stack: this runs once per process (pb_counting
     * was exchanged to 0 above, so no other thread, nor a second exit handler, gets here). */
    static char path[PB_PATH_MAX];
    if (pb_expand_path(pb_proc.profile_pattern, pid, path, sizeof path) != 0) {
        pb_log(PB_LOG_ERROR, "PRIVBOX_PROFILE expands to a path longer than %d bytes",
               PB_PATH_MAX - 1);
        return;
    }
    struct pb_snapshot snap = {0};
    pb_snapshot_records(&z, &scan, sites, stacks, frames, &snap);
    snap.pid = (int32_t)pid;
    snap.ppid = (int32_t)ppid;
    snap.start_ns = pb_proc.start_ns;
    snap.end_ns = end_ns;
    snap.start_cycles = pb_proc.start_cycles;
    snap.end_cycles = end_cycles;
    snap.threads = z.threads;
    snap.dropped = z.dropped;
    snap.exe = pb_exe_path();
    snap.profile_path = path;
    snap.module_count = scan.count;
    snap.modules = scan.modules;
    snap.stacks_dropped = z.stacks_dropped;
    snap.inline_discovery = inline_used;
    snap.inline_traps = inline_traps;
    snap.inline_threads_spent = inline_spent;
    char err[PB_ERROR_MAX] = "";
    if (pb_write_profile_file(&snap, err, sizeof err) != 0)
        pb_log(PB_LOG_ERROR, "%s", err);
    else
        pb_log(PB_LOG_INFO, "profile written to %s (%zu sites, %zu threads)", path, snap.site_count, z.threads);
}
