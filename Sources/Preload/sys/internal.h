/*
 * internal.h — for now, everything the C files of libprivbox.so share (never Swift): an umbrella
 * that only includes the subject headers, so that the files that still include it keep compiling
 * while their includes are switched to the precise headers (issue 17). New code includes what it
 * uses: sys/<subject>.h, profile/<subject>.h.
 */
#ifndef PRIVBOX_INTERNAL_H
#define PRIVBOX_INTERNAL_H

#include "privbox_shim.h"
#include "sys/attributes.h"
#include "sys/cache.h"
#include "sys/entry_stub.h"
#include "sys/env.h"
#include "sys/files.h"
#include "sys/hash.h"
#include "sys/kernel_abi.h"
#include "sys/log.h"
#include "sys/memory.h"
#include "sys/modules.h"
#include "sys/own_text.h"
#include "sys/process.h"
#include "sys/symbols.h"
#include "sys/syscall_name.h"
#include "profile/counting.h"
#include "profile/inline_discovery.h"
#include "profile/snapshot.h"

/* Declared here until their own layers' headers take them (accelerate/, wrappers/): functions
 * that files of several folders call and that were declared in this header before it was split. */
void pb_hooks_update(void) PB_HIDDEN;                   /* accelerate/routes.c */
void pb_calibration_machine(char *out, size_t len) PB_HIDDEN; /* accelerate/routes.c: "privbox-
    calibration/1 <kernel release> <arch> | <CPU model>": the machine a calibration holds for */
void pb_resolve_all(void) PB_HIDDEN;                    /* wrappers/interpose.c */
void pb_resolve_routed(void) PB_HIDDEN;                 /* wrappers/interpose_routed.c */

#endif
