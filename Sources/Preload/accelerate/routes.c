/*
 * accelerate/routes.c — which executor serves which call site, and the checks that keep it worth it.
 *
 * Routes come from the profile (accelerate mode: the Swift core reads it and returns the sites of
 * the hot loops, see Sources/PreloadCore/CoreEntryPoints.swift) or from auto mode's warm-up (the sites
 * that made at least PB_AUTO_MIN_CALLS calls in the first PB_AUTO_WARMUP_NS of the process).
 * A site gets a route only when an executor serves its kind of call, the executor can run here
 * (start() succeeded) and the machine's calibration, if `privbox doctor --calibrate` recorded one
 * (calibration.c), does not say the executor loses. Everything else passes through.
 *
 * Never slower: about one routed call in PB_SAMPLE_EVERY per thread is sampled, alternately
 * through the executor and natively, both timed with the TSC; once a site has PB_SAMPLE_MIN
 * samples of each and the executor's mean is not below the native mean, the site is turned off
 * for the rest of the run. The samples cost one native call per PB_SAMPLE_EVERY routed calls.
 * (The identity calls' fast entries return cached answers unsampled: see interpose_routed.c.)
 *
 * The plan is computed once per (profile, program) by the Swift core and cached on disk
 * (plan_cache.c); later runs read the cache without loading the core.
 *
 * What is an executor's to decide stays the executor's: which planned sites it takes
 * (plan_sees/plan_takes), whether its routes are of use together (keeps_routes), its report lines
 * (executors/executor.h). This file only asks.
 *
 * May use: profile/ (auto mode's decision reads the per-thread tables of the warm-up), executors/
 * (the protocol and its state), rewriter/ (the copies it requests), sys/. Counting (profile/)
 * ends the warm-up by calling pb_auto_maybe_decide through the hook pb_auto_begin sets
 * (pb_counting_warmup): profile/ names nothing of accelerate/.
 */
#include "accelerate/routes.h"
#include "accelerate/calibration.h"
#include "accelerate/plan_cache.h"
#include "executors/identity.h"
#include "executors/records.h"
#include "profile/counting.h" /* auto mode reads the warm-up counts */
#include "rewriter/copy_request.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

static void pb_auto_maybe_decide(uint64_t now_ns);
static void pb_routes_report(void);

struct pb_route pb_routes[PB_ROUTE_SLOTS];
/* The slots in use, in the order routes were added: what the scans below walk, so that they touch
 * only the table's pages that hold routes. */
uint16_t pb_route_used[PB_ROUTE_SLOTS];
uint32_t pb_route_used_count;
PB_TLS uint32_t pb_sample_countdown;
static PB_TLS uint32_t pb_sample_rng;
static PB_TLS uint32_t pb_sample_phase;
static PB_TLS int pb_sample_started;

/* ---- sampling -------------------------------------------------------------------------------- */

enum pb_run pb_route_sample(void)
{
    int fresh = !pb_sample_started; /* a new thread: its first call is not sampled */
    pb_sample_started = 1;
    /* The next sample is 1..2*PB_SAMPLE_EVERY calls away (xorshift), so that loops cycling
     * through several sites do not always sample the same one. */
    uint32_t x = pb_sample_rng ? pb_sample_rng : (uint32_t)pb_cycles() | 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pb_sample_rng = x;
    pb_sample_countdown = 1 + x % (2 * PB_SAMPLE_EVERY);
    if (fresh)
        return PB_RUN_UNSAMPLED;
    return (pb_sample_phase++ & 1) ? PB_RUN_NATIVE_TIMED : PB_RUN_SERVED_TIMED;
}

void pb_route_timed(struct pb_route *r, int native, uint64_t cycles)
{
    /* A sample that spans a preemption or a page fault says nothing about the call. */
    if (cycles > PB_SAMPLE_MAX_CYCLES)
        return;
    if (native) {
        __atomic_fetch_add(&r->native_cycles, cycles, __ATOMIC_RELAXED);
        __atomic_fetch_add(&r->native_samples, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&r->served_cycles, cycles, __ATOMIC_RELAXED);
        __atomic_fetch_add(&r->served_samples, 1, __ATOMIC_RELAXED);
    }
    uint64_t ns = r->native_samples, ss = r->served_samples;
    if (ns >= PB_SAMPLE_MIN && ss >= PB_SAMPLE_MIN) {
        /* served mean >= native mean, compared without division */
        if ((unsigned __int128)r->served_cycles * ns >= (unsigned __int128)r->native_cycles * ss &&
            r->active) {
            r->active = 0;
            pb_fast_sites_update();
        }
    }
}

/* ---- installing routes ------------------------------------------------------------------------ */

/* A seccomp filter being installed: from now on every call goes to the kernel, which applies it.
 * The flag is inherited by fork children, whose identity page is wiped: executors/identity.c's fill
 * checks the flag, so a child never caches again either.
 * Routes are turned off (the wrappers then pass through), and the executors' records stop
 * (executors/records.c, pb_executors_stop_records): no identity value is served or cached
 * again (the executor's change-in-flight count is raised and never lowered, which invalidates
 * every value: the copies' entries and the wrappers' fast paths then ask the kernel), and the
 * signal mask is no longer tracked. Auto mode's later decision routes nothing. */
void pb_executors_stop(const char *why)
{
    if (__atomic_exchange_n(&pb_executors_stopped, 1, __ATOMIC_SEQ_CST))
        return;
    for (uint32_t i = 0; i < pb_route_used_count; i++)
        pb_routes[pb_route_used[i]].active = 0;
    pb_fast_sites_update();
    pb_executors_stop_records(why);
    if (pb_route_used_count || pb_id)
        pb_log(PB_LOG_INFO, "executors stopped: %s", why);
}

/* The plan (or the warm-up) holds a site for `nr`: its executor is told, before any route is
 * added (executors/executor.h, plan_sees). */
static void pb_plan_sees(unsigned nr)
{
    enum pb_executor_id e = pb_executor_for_syscall(nr);
    if (e != PB_EXEC_PASSTHROUGH && pb_executors[e]->plan_sees)
        pb_executors[e]->plan_sees(nr);
}

/* Adds a route; returns 1 if it is new. Not concurrent with itself (constructor, or the one
 * thread that ends auto mode's warm-up). */
static int pb_route_add(uint64_t site, unsigned nr, const char *label)
{
    enum pb_executor_id e = pb_executor_for_syscall(nr);
    if (e == PB_EXEC_PASSTHROUGH || (pb_executors[e]->plan_takes && !pb_executors[e]->plan_takes(nr)))
        return 0;
    if (!pb_exec_ready(e)) {
        pb_log(PB_LOG_DEBUG, "%s: %s cannot run here (%s); passes through", label,
               pb_executors[e]->name, pb_exec_why_not(e));
        return 0;
    }
    uint32_t h = pb_route_hash(site);
    for (uint32_t i = 0; i < PB_ROUTE_PROBES; i++) {
        struct pb_route *r = &pb_routes[(h + i) & (PB_ROUTE_SLOTS - 1)];
        if (r->site == site)
            return 0;
        if (r->site)
            continue;
        pb_route_used[pb_route_used_count++] = (uint16_t)((h + i) & (PB_ROUTE_SLOTS - 1));
        r->executor = (uint16_t)e;
        r->active = (uint32_t)e;
        r->syscall_nr = (uint16_t)nr;
        snprintf(r->label, sizeof r->label, "%s", label);
        __atomic_store_n(&r->site, site, __ATOMIC_RELEASE);
        pb_log(PB_LOG_DEBUG, "%s: routed to %s", label, pb_executors[e]->name);
        return 1;
    }
    pb_log(PB_LOG_INFO, "%s: the route table is full; passes through", label);
    return 0;
}

/* Adds a route at `copy_site` like the one at `site`, if there is one (a call in a copy). */
static void pb_route_alias(uint64_t site, uint64_t copy_site)
{
    uint32_t h = pb_route_hash(site);
    for (uint32_t i = 0; i < PB_ROUTE_PROBES; i++) {
        const struct pb_route *r = &pb_routes[(h + i) & (PB_ROUTE_SLOTS - 1)];
        if (!r->site)
            return;
        if (r->site != site)
            continue;
        char label[96];
        snprintf(label, sizeof label, "%.80s, copy", r->label);
        pb_route_add(copy_site, r->syscall_nr, label);
        return;
    }
}

/* Whether a route is on: sampling has not turned it off, and its executor has not withdrawn
 * (pb_executor_withdraw: the executor's routes count as off from then on). */
static int pb_route_on(const struct pb_route *r)
{
    return r->active && !pb_exec_withdrawn[r->executor];
}

static void pb_routes_publish(void)
{
    /* Each executor sees which of its calls have a route on, and may decline them all (fusion's
     * read routes serve only what one of its lseek routes deferred). Static (768 bytes): routes
     * are published once, by the constructor or the thread that ends the warm-up. */
    static uint64_t routed_nrs[PB_EXEC_COUNT][PB_NR_SET_WORDS];
    const char *drops[PB_EXEC_COUNT] = {0};
    __builtin_memset(routed_nrs, 0, sizeof routed_nrs);
    for (uint32_t i = 0; i < pb_route_used_count; i++) {
        const struct pb_route *r = &pb_routes[pb_route_used[i]];
        if (pb_route_on(r) && r->syscall_nr < 1024)
            routed_nrs[r->executor][r->syscall_nr / 64] |= 1ull << (r->syscall_nr % 64);
    }
    for (int e = 0; e < PB_EXEC_COUNT; e++) {
        if (pb_executors[e]->keeps_routes)
            drops[e] = pb_executors[e]->keeps_routes(routed_nrs[e]);
        pb_exec_routed[e] = 0;
    }
    for (uint32_t i = 0; i < pb_route_used_count; i++) {
        struct pb_route *r = &pb_routes[pb_route_used[i]];
        if (drops[r->executor] && pb_route_on(r)) {
            r->active = 0;
            pb_log(PB_LOG_DEBUG, "%s: %s; passes through", r->label, drops[r->executor]);
        }
        if (pb_route_on(r))
            pb_exec_routed[r->executor] = 1;
    }
    if (pb_copies_use_identity)
        pb_exec_routed[PB_EXEC_IDENTITY] = 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    pb_fast_sites_update();
    pb_hooks_update();
}

struct pb_base_search { struct pb_plan_module *modules; size_t count; uint64_t *bases; const char *exe; };

static int pb_find_bases(struct dl_phdr_info *info, size_t size, void *data)
{
    struct pb_base_search *s = data;
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : s->exe;
    for (size_t m = 0; m < s->count; m++) {
        if (s->bases[m] || strcmp(s->modules[m].path, path) != 0)
            continue;
        /* Same path; the build-id must match too when both sides have one. */
        struct pb_module_record loaded = {0};
        char id[2 * PB_BUILD_ID_MAX + 1];
        pb_build_id(info, &loaded);
        pb_hex_encode(loaded.build_id, loaded.build_id_len, id);
        if (id[0] && s->modules[m].build_id[0] && strcmp(id, s->modules[m].build_id) != 0) {
            pb_log(PB_LOG_INFO, "%s is another build than the profiled one; its sites pass through",
                   path);
            continue;
        }
        s->bases[m] = info->dlpi_addr ? info->dlpi_addr : 1; /* 1: found, bias 0 (non-PIE) */
    }
    return 0;
}

int pb_routes_install_plan(const struct stat *profile, char *err, size_t errlen)
{
    size_t module_cap = 64, site_cap = PB_ROUTE_SLOTS;
    struct pb_plan_module *modules = pb_map(module_cap * sizeof *modules);
    struct pb_plan_site *sites = pb_map(site_cap * sizeof *sites);
    uint64_t *bases = pb_map(module_cap * sizeof *bases);
    if (!modules || !sites || !bases) {
        snprintf(err, errlen, "out of memory for the executor plan");
        return -3;
    }
    size_t module_count = 0, site_count = 0;
    uint8_t build_id[PB_BUILD_ID_MAX];
    size_t build_id_len = 0;
    pb_main_build_id(build_id, &build_id_len);
    /* Static: the plan is installed once, by the constructor, before the program has a thread
     * (a 4 KB path on the stack would not fit a `ulimit -s 32` process). */
    static char cache[PB_PATH_MAX + 64];
    char id_hex[2 * PB_BUILD_ID_MAX + 1];
    cache[0] = '\0';
    pb_hex_encode(build_id, build_id_len, id_hex);
    int cached = pb_plan_cache_path(profile, id_hex, cache, sizeof cache) == 0 &&
                 pb_plan_cache_read(cache, modules, module_cap, &module_count, sites, site_cap,
                                    &site_count);
    if (cached) {
        pb_log(PB_LOG_DEBUG, "plan read from %s", cache);
    } else {
        /* The Swift core validates the profile (reporting what is wrong with a bad one) and
         * computes the plan; it is then cached for the next runs of this program. */
        struct pb_fpenv fp;
        pb_fpenv_save(&fp); /* the Swift runtime's start-up does floating-point arithmetic */
        pb_core_plan_fn plan = (pb_core_plan_fn)pb_core_symbol("privbox_core_plan", err, errlen);
        int r = plan ? plan(pb_proc.profile_pattern, pb_exe_path(), build_id, build_id_len, modules,
                            module_cap, &module_count, sites, site_cap, &site_count, err, errlen)
                     : -3; /* err says why */
        pb_fpenv_restore(&fp);
        if (r <= 0)
            return r;
        if (cache[0])
            pb_plan_cache_write(cache, modules, module_count, sites, site_count);
    }
    pb_read_calibration();
    struct pb_base_search search = {modules, module_count, bases, pb_exe_path()};
    dl_iterate_phdr(pb_find_bases, &search);
    int routed = 0, inline_sites = 0;
    for (size_t i = 0; i < site_count; i++)
        pb_plan_sees(sites[i].syscall_nr);
    struct pb_copy_request *copy = pb_map(site_count * sizeof *copy + 1);
    size_t ncopy = 0;
    for (size_t i = 0; i < site_count; i++) {
        const struct pb_plan_site *s = &sites[i];
        if (s->module >= module_count || !bases[s->module])
            continue;
        uint64_t bias = bases[s->module] == 1 ? 0 : bases[s->module];
        const char *slash = strrchr(modules[s->module].path, '/');
        const char *file = slash ? slash + 1 : modules[s->module].path;
        char label[96];
        snprintf(label, sizeof label, "%.48s+0x%llx (%s)", file, (unsigned long long)s->offset,
                 pb_syscall_name(s->syscall_nr));
        /* A syscall instruction has no route: only a copy of its function can serve it. */
        if (!s->is_inline) {
            routed += pb_route_add(bias + s->offset, s->syscall_nr, label);
        } else {
            inline_sites++;
        }
        /* A copy serves the identity values at syscall instructions, and at routed calls. (A
         * getrandom call served from a copy measured no faster than through its route: the vDSO
         * call is most of it.) */
        enum pb_executor_id e = pb_executor_for_syscall(s->syscall_nr);
        int identity = e == PB_EXEC_IDENTITY && pb_exec_ready(e) &&
                       (s->is_inline || pb_route_lookup(bias + s->offset, e));
        /* On a privbox kernel, a syscall instruction of any call runs from a boxed copy. */
        int boxed = s->is_inline && pb_kernel_gate_address();
        if (copy && pb_proc.copies && (identity || boxed) && pb_copy_repays(s->calls, (int)s->is_inline, boxed, label))
            copy[ncopy++] = (struct pb_copy_request){bias, s->function_offset, s->function_size,
                                                     s->offset, s->syscall_nr, (int)s->is_inline,
                                                     file, modules[s->module].build_id, s->function, e};
    }
    struct pb_copies_installed installed = {0};
    pb_copies_install(copy, ncopy, &installed);
    /* Calls in the copies return into them: the routed ones get a route there too. */
    for (size_t i = 0; i < installed.alias_count; i++)
        pb_route_alias(installed.aliases[i].site, installed.aliases[i].copy_site);
    pb_copies_installed_free(&installed);
    if (copy)
        pb_unmap(copy, site_count * sizeof *copy + 1);
    pb_routes_publish();
    if (pb_proc.log_level >= PB_LOG_INFO) {
        atexit(pb_routes_report);
        atexit(pb_copies_report);
    }
    pb_log(PB_LOG_INFO, "%d of %zu hot-loop sites routed to an executor (%d syscall instructions "
           "only a copy can serve), the rest pass through", routed, site_count, inline_sites);
    return 1;
}

/* ---- auto mode -------------------------------------------------------------------------------- */

#define PB_AUTO_WARMUP_NS 50000000ull /* 50 ms */
#define PB_AUTO_MIN_CALLS 200u


void pb_auto_begin(void)
{
    pb_read_calibration();
    pb_counting_warmup = pb_auto_maybe_decide; /* profile/counting.c calls it while warming up */
    pb_counting = 1;
    pb_hooks_update();
}

static void pb_auto_maybe_decide(uint64_t now_ns)
{
    if (now_ns < pb_proc.start_ns + PB_AUTO_WARMUP_NS)
        return;
    if (!__atomic_exchange_n(&pb_counting_warmup, (void (*)(uint64_t))0, __ATOMIC_ACQ_REL))
        return; /* another thread decided */
    pb_in_privbox++;
    int routed = 0;
    for (struct pb_thread_table *t = pb_tables_head(); t; t = t->next)
        for (uint32_t i = 0; i < PB_TABLE_SLOTS; i++) {
            uint64_t key = __atomic_load_n(&t->slots[i].key, __ATOMIC_RELAXED);
            if (key && t->slots[i].calls >= PB_AUTO_MIN_CALLS)
                pb_plan_sees((unsigned)(key & 1023u));
        }
    for (struct pb_thread_table *t = pb_tables_head(); t; t = t->next) {
        for (uint32_t i = 0; i < PB_TABLE_SLOTS; i++) {
            const struct pb_slot *s = &t->slots[i];
            uint64_t key = __atomic_load_n(&s->key, __ATOMIC_RELAXED);
            if (!key || s->calls < PB_AUTO_MIN_CALLS)
                continue;
            char label[96];
            snprintf(label, sizeof label, "0x%llx (%s)", (unsigned long long)(key >> 10),
                     pb_syscall_name((unsigned)(key & 1023u)));
            routed += pb_route_add(key >> 10, (unsigned)(key & 1023u), label);
        }
    }
    pb_counting = 0;
    pb_routes_publish();
    pb_in_privbox--;
    if (pb_proc.log_level >= PB_LOG_INFO)
        atexit(pb_routes_report);
    pb_log(PB_LOG_INFO, "auto: warm-up over, %d hot sites routed to an executor", routed);
}

/* ---- the report at exit (PRIVBOX_LOG=info) ------------------------------------------------------ */

static void pb_routes_report(void)
{
    struct pb_fpenv fp;
    pb_fpenv_save(&fp);
    double cycles_per_ns = 0;
    uint64_t ns = pb_monotonic_ns() - pb_proc.start_ns, cyc = pb_cycles() - pb_proc.start_cycles;
    if (ns)
        cycles_per_ns = (double)cyc / (double)ns;
    for (uint32_t i = 0; i < pb_route_used_count; i++) {
        const struct pb_route *r = &pb_routes[pb_route_used[i]];
        double served = r->served_samples ? (double)r->served_cycles / r->served_samples : 0;
        double native = r->native_samples ? (double)r->native_cycles / r->native_samples : 0;
        if (cycles_per_ns > 0) {
            served /= cycles_per_ns;
            native /= cycles_per_ns;
        }
        pb_log(PB_LOG_INFO, "%s: %s %s; sampled %llu served (%.0f ns) and %llu native (%.0f ns)%s",
               r->label, pb_executors[r->executor]->name,
               pb_route_on(r) ? "on"
               : pb_executors[r->executor]->route_off_note ? pb_executors[r->executor]->route_off_note
                                                           : "turned off (slower than the syscall here)",
               (unsigned long long)r->served_samples, served,
               (unsigned long long)r->native_samples, native,
               pb_is_fast_site(r->site) ? "; fast entry (cached answers are not sampled)" : "");
    }
    for (int e = 1; e < PB_EXEC_COUNT; e++)
        if (pb_exec_started(e) && pb_executors[e]->report)
            pb_executors[e]->report();
    for (int e = 1; e < PB_EXEC_COUNT; e++)
        if (pb_exec_why_not(e))
            pb_log(PB_LOG_INFO, "%s was not used: %s", pb_executors[e]->name, pb_exec_why_not(e));
    pb_fpenv_restore(&fp);
}
