/*
 * wrappers/wrappers.h — what the interposed symbols' files offer the start-up (runtime.c) and each
 * other: resolving libc's definitions once, before main, and the identity wrappers' plain entries
 * for the instrumented copies. The wrappers themselves are libc's names.
 *
 * May use: sys/ (declarations only).
 */
#ifndef PRIVBOX_WRAPPERS_H
#define PRIVBOX_WRAPPERS_H

#include "sys/attributes.h"

/* Resolves libc's definition of every wrapped symbol (interpose.c), the routed ones included
 * (pb_resolve_routed, interpose_routed.c): the constructor calls it, so that no wrapper resolves
 * lazily on a later call (see PB_RESOLVE in sys/symbols.h). */
void pb_resolve_all(void) PB_HIDDEN;
void pb_resolve_routed(void) PB_HIDDEN;
void pb_sigmask_resolve(void) PB_HIDDEN; /* sigmask_wrappers.c, called by pb_resolve_routed */
/* Tells the rewriter where the identity wrappers' plain entries are (the copies' call entries
 * continue there): before the plan's copies are built, and by the golden tests' entry. */
void pb_wrappers_give_copies_their_entries(void) PB_HIDDEN;

#endif
