/*
 * sys/symbols.h — finding functions at run time (sys/symbols.c): libc's definition behind each
 * wrapper (dlsym RTLD_NEXT) and the entry points of libprivbox_core.so, the Swift core that
 * accelerate mode loads before main.
 */
#ifndef PRIVBOX_SYS_SYMBOLS_H
#define PRIVBOX_SYS_SYMBOLS_H

#include "sys/attributes.h"

#include <stddef.h>

void *pb_resolve(const char *name) PB_HIDDEN;
void *pb_resolve_soft(const char *name) PB_HIDDEN;
/* libc's definition of `name` into pb_real_NAME, if not yet there. Everything is resolved in the
 * constructor (PB_RESOLVE_SOFT, which leaves a function an older libc lacks null), so the lazy
 * PB_RESOLVE in a wrapper, which aborts on a missing symbol, only runs for calls made before it. */
#define PB_RESOLVE(name) (pb_real_##name ? (void)0 : (void)(*(void **)&pb_real_##name = pb_resolve(#name)))
#define PB_RESOLVE_SOFT(name) (pb_real_##name ? (void)0 : (void)(*(void **)&pb_real_##name = pb_resolve_soft(#name)))
/* A symbol of libprivbox_core.so (in pb_proc.lib_dir), loaded on first use (accelerate mode,
 * before main): null with err saying why when the core cannot be loaded or lacks it. */
void *pb_core_symbol(const char *name, char *err, size_t errlen) PB_HIDDEN;

#endif
