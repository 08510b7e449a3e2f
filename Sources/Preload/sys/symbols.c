/*
 * sys/symbols.c — dlsym for the wrappers (libc's next definition of an interposed name) and
 * dlopen/dlsym of libprivbox_core.so for accelerate mode. Constructor or first-call use only:
 * dlopen is not async-signal-safe. It opens no descriptor the program sees after it returns.
 */
#include "sys/symbols.h"
#include "sys/log.h"
#include "sys/process.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

void *pb_resolve_soft(const char *name)
{
    /* At start-up every wrapper is resolved; a function an older libc lacks (closefrom before
     * glibc 2.34, say) stays null, and only a call to it reaches pb_resolve's abort below. */
    return dlsym(RTLD_NEXT, name);
}

void *pb_resolve(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* Cannot happen for a symbol the program links against (it would not have loaded);
         * calling a null pointer would crash the program, so fail loudly and precisely. */
        pb_log(PB_LOG_ERROR, "libc has no %s; cannot forward the call", name);
        abort();
    }
    return p;
}

void *pb_core_symbol(const char *name, char *err, size_t errlen)
{
    static void *core;
    if (!core) {
        static char path[PB_PATH_MAX + 32]; /* constructor only (accelerate mode's plan) */
        snprintf(path, sizeof path, "%s/libprivbox_core.so", pb_proc.lib_dir);
        core = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!core) {
            snprintf(err, errlen, "the installation is incomplete: cannot load %s (%s)", path, dlerror());
            return 0;
        }
    }
    void *sym = dlsym(core, name);
    if (!sym)
        snprintf(err, errlen, "libprivbox_core.so has no %s: mismatched installation", name);
    return sym;
}
