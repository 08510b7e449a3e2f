/*
 * sys/modules.c — the loaded modules as the dynamic loader reports them (dl_iterate_phdr): GNU
 * build-ids, the program's path and build-id, and pb_module_at, the one lookup of the module and
 * segment holding an address (for the rewriter's unwind tables and bounds checks, and for
 * libprivbox.so's own code segment). It reads the loader's program headers and /proc/self/exe,
 * nothing else.
 */
#include "sys/modules.h"
#include "privbox_shim.h"

#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void pb_build_id(const struct dl_phdr_info *info, struct pb_module_record *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            size_t name_sz = (n->n_namesz + 3u) & ~3u, desc_sz = (n->n_descsz + 3u) & ~3u;
            const char *name = p + sizeof *n, *desc = name + name_sz;
            if (desc + n->n_descsz > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                size_t len = n->n_descsz < PB_BUILD_ID_MAX ? n->n_descsz : PB_BUILD_ID_MAX;
                memcpy(m->build_id, desc, len);
                m->build_id_len = (uint32_t)len;
                return;
            }
            p = desc + desc_sz;
        }
    }
}

const char *pb_exe_path(void)
{
    static char exe[PB_PATH_MAX];
    if (!exe[0]) {
        /* Raw: readlink() would be privbox's own wrapper (counted in profile mode). */
        long n = pb_raw_syscall6(SYS_readlink, (long)"/proc/self/exe", (long)exe, sizeof exe - 1, 0, 0, 0);
        exe[n > 0 ? n : 0] = '\0';
    }
    return exe;
}

static int pb_first_module_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    pb_build_id(info, data);
    return 1; /* the first module is the main program */
}

int pb_main_build_id(uint8_t *out, size_t *len)
{
    /* dl_iterate_phdr reports the main program first. */
    struct pb_module_record main_program = {0};
    *len = 0;
    if (!dl_iterate_phdr(pb_first_module_build_id, &main_program))
        return -1;
    memcpy(out, main_program.build_id, main_program.build_id_len);
    *len = main_program.build_id_len;
    return 0;
}

struct pb_module_search { uint64_t address; struct pb_module_at *out; };

static int pb_module_holding(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct pb_module_search *s = data;
    struct pb_module_at *out = s->out;
    int inside = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && !inside && s->address >= start && s->address < start + ph->p_memsz) {
            inside = 1;
            out->segment_start = start;
            out->segment_end = start + ph->p_memsz;
            out->segment_flags = ph->p_flags;
        }
        if (ph->p_type == PT_GNU_EH_FRAME)
            out->eh_frame_hdr = start;
        if (ph->p_type == PT_DYNAMIC)
            out->dynamic = (const void *)(uintptr_t)start;
    }
    if (!inside)
        return 0;
    out->bias = info->dlpi_addr;
    struct pb_module_record m = {0};
    pb_build_id(info, &m);
    out->build_id_len = m.build_id_len;
    memcpy(out->build_id, m.build_id, m.build_id_len);
    return 1;
}

int pb_module_at(uint64_t address, struct pb_module_at *out)
{
    struct pb_module_search s = {address, out};
    if (dl_iterate_phdr(pb_module_holding, &s))
        return 0;
    memset(out, 0, sizeof *out);
    return -1;
}
