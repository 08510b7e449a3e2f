/*
 * sys/modules.h — the loaded modules (the program, its libraries, the vDSO) as the dynamic loader
 * reports them (sys/modules.c): a module's GNU build-id, the program's path and build-id, and the
 * one lookup of "the module and segment holding an address".
 */
#ifndef PRIVBOX_SYS_MODULES_H
#define PRIVBOX_SYS_MODULES_H

#include "sys/attributes.h"

#include <stddef.h>
#include <stdint.h>

#define PB_BUILD_ID_MAX 40 /* bytes; GNU build-ids are 20 (sha1) */

/* A loaded module as a profile records it. */
struct pb_module_record {
    const char *path;       /* as the loader knows it; "" for the main program is replaced */
    uint64_t base;          /* load bias */
    uint32_t build_id_len;
    uint8_t build_id[PB_BUILD_ID_MAX];
};

/* The GNU build-id of a loaded object, from its PT_NOTE segments (build_id_len 0 if none). */
struct dl_phdr_info;
void pb_build_id(const struct dl_phdr_info *info, struct pb_module_record *m) PB_HIDDEN;
/* /proc/self/exe, read once ("" if it cannot be read). */
const char *pb_exe_path(void) PB_HIDDEN;
/* The main program's build-id (the first module the loader reports): 0, or -1. */
int pb_main_build_id(uint8_t *out, size_t *len) PB_HIDDEN;

/* What pb_module_at finds about the module holding an address. */
struct pb_module_at {
    uint64_t bias;              /* the module's load bias (dlpi_addr) */
    uint64_t segment_start;     /* the PT_LOAD segment holding the address: [start, end) */
    uint64_t segment_end;
    uint32_t segment_flags;     /* its PF_R | PF_W | PF_X */
    uint64_t eh_frame_hdr;      /* PT_GNU_EH_FRAME's address (.eh_frame_hdr), 0 if none */
    const void *dynamic;        /* PT_DYNAMIC's address (ElfW(Dyn) array), null if none */
    uint32_t build_id_len;      /* its GNU build-id, 0 bytes if none */
    uint8_t build_id[PB_BUILD_ID_MAX];
};
/* The module one of whose PT_LOAD segments holds `address` (dl_iterate_phdr, which takes the
 * loader's lock: not in a signal handler). 0 with *out filled, or -1 (*out zeroed) when no module
 * maps it. */
int pb_module_at(uint64_t address, struct pb_module_at *out) PB_HIDDEN;

#endif
