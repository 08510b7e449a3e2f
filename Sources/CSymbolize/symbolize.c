/*
 * symbolize.c — function names and source lines with elfutils (libdwfl), and loop ranges from
 * the machine code with capstone. Used by the CLI after a profile is written.
 *
 * Offsets in a profile are "address - load bias", which is exactly the file's virtual address for
 * executables (PIE or not) and shared libraries; the module is therefore reported to libdwfl at
 * bias 0 and looked up with those addresses unchanged.
 *
 * The module paths come from the profile, which is input anyone may have edited: a path is opened
 * only if it is a regular file (pbs_open_regular), never a FIFO or a device, and so is every
 * separate debug file looked for (pbs_find_debuginfo); nothing is written.
 */
#define _GNU_SOURCE
#include "privbox_symbolize.h"
#include "privbox_shim.h"

#include <capstone/capstone.h>
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct pbs_module {
    Dwfl *dwfl;
    Dwfl_Module *mod;
    int fd;
};

static int pbs_open_regular(const char *path, char *err, size_t errlen);

/* The regular file at path if its CRC-32 is crc (the .gnu_debuglink check), else -1. */
static int pbs_open_debuglink_candidate(const char *path, GElf_Word crc)
{
    char ignored[64];
    int fd = pbs_open_regular(path, ignored, sizeof ignored);
    if (fd < 0)
        return -1;
    uLong sum = crc32(0, Z_NULL, 0);
    unsigned char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        sum = crc32(sum, buf, (uInt)n);
    }
    if ((GElf_Word)sum != crc || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* libdwfl's find_debuginfo callback, for a module without its own DWARF. Not libdwfl's standard
 * one: that one open()s its candidates plainly, and a module file can name any file next to it
 * in its .gnu_debuglink (a FIFO there blocked `privbox report` and `privbox profile`'s merge for
 * good). Here every candidate is opened by pbs_open_regular, so only regular files, in the usual
 * places: /usr/lib/debug/.build-id/xx/rest.debug by build-id, then the debuglink's name (a plain
 * name, no '/') next to the module, in its .debug/ and under /usr/lib/debug, checked by CRC. */
static int pbs_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                              const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                              char **debuginfo_file_name)
{
    (void)userdata, (void)modname, (void)base;
    char path[8192], ignored[64];
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(mod, &bits, &vaddr);
    if (len > 1 && len < 100) {
        char id[200];
        pb_hex_encode(bits, (size_t)len, id);
        snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
        int fd = pbs_open_regular(path, ignored, sizeof ignored);
        if (fd >= 0) {
            *debuginfo_file_name = strdup(path);
            return fd;
        }
    }
    if (!debuglink_file || !debuglink_file[0] || strchr(debuglink_file, '/') || !file_name)
        return -1;
    const char *slash = strrchr(file_name, '/');
    int dirlen = slash ? (int)(slash - file_name) : 1;
    const char *dir = slash ? file_name : ".";
    const char *forms[] = {"%.*s/%s", "%.*s/.debug/%s", "/usr/lib/debug%.*s/%s"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        if ((size_t)snprintf(path, sizeof path, forms[i], dirlen, dir, debuglink_file) >= sizeof path)
            continue;
        int fd = pbs_open_debuglink_candidate(path, debuglink_crc);
        if (fd >= 0) {
            *debuginfo_file_name = strdup(path);
            return fd;
        }
    }
    return -1;
}

static const Dwfl_Callbacks pbs_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = pbs_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

/* A descriptor for the regular file at path, or -1 with err. The paths come from a profile, which
 * anyone may have edited: the preload's own rule applies (pb_open_regular, files.c: nothing but a
 * regular file is opened, so neither a FIFO, which would block forever, nor a device, which an
 * open can act on). Its O_NONBLOCK is cleared, so that libdwfl's reads are plain blocking reads
 * whatever the file system. */
static int pbs_open_regular(const char *path, char *err, size_t errlen)
{
    struct stat st;
    const char *kind;
    long fd = pb_open_regular(AT_FDCWD, path, 0, &st, &kind);
    if (fd < 0) {
        if (kind)
            snprintf(err, errlen, "%s is %s, not a regular file", path, kind);
        else
            snprintf(err, errlen, "cannot open %s: %s", path, strerror((int)-fd));
        return -1;
    }
    int flags = fcntl((int)fd, F_GETFL);
    if (flags >= 0)
        fcntl((int)fd, F_SETFL, flags & ~O_NONBLOCK);
    return (int)fd;
}

struct pbs_module *pbs_open(const char *path, const char *expected_build_id, char *err, size_t errlen)
{
    int fd = pbs_open_regular(path, err, errlen);
    if (fd < 0)
        return NULL;
    Dwfl *dwfl = dwfl_begin(&pbs_callbacks);
    if (!dwfl) {
        close(fd);
        snprintf(err, errlen, "libdwfl: %s", dwfl_errmsg(-1));
        return NULL;
    }
    Dwfl_Module *mod = dwfl_report_elf(dwfl, path, path, fd, 0, true);
    dwfl_report_end(dwfl, NULL, NULL);
    if (!mod) {
        snprintf(err, errlen, "%s is not a readable ELF file (%s)", path, dwfl_errmsg(-1));
        dwfl_end(dwfl);
        return NULL;
    }
    GElf_Addr bias = 0;
    if (!dwfl_module_getelf(mod, &bias)) {
        snprintf(err, errlen, "%s: %s", path, dwfl_errmsg(-1));
        dwfl_end(dwfl);
        return NULL;
    }
    if (expected_build_id && expected_build_id[0]) {
        const unsigned char *bits = NULL;
        GElf_Addr vaddr;
        int len = dwfl_module_build_id(mod, &bits, &vaddr);
        char hex[256] = "";
        if (len > 0)
            pb_hex_encode(bits, len < 100 ? (size_t)len : 100, hex);
        if (strcmp(hex, expected_build_id) != 0) {
            snprintf(err, errlen, "%s on disk is build %s, the profile recorded %s", path,
                     hex[0] ? hex : "(none)", expected_build_id);
            dwfl_end(dwfl);
            return NULL;
        }
    }
    struct pbs_module *m = calloc(1, sizeof *m);
    m->dwfl = dwfl;
    m->mod = mod;
    m->fd = fd; /* owned by libdwfl once reported; closed by dwfl_end */
    return m;
}

void pbs_close(struct pbs_module *m)
{
    if (!m)
        return;
    dwfl_end(m->dwfl);
    free(m);
}

int pbs_demangle(const char *name, char *out, size_t outlen)
{
    char *demangled = NULL;
    if (!strncmp(name, "_Z", 2)) {
        /* libstdc++'s demangler, looked up at run time: the CLI links libstdc++ through Swift. */
        char *(*cxa)(const char *, char *, size_t *, int *) =
            (char *(*)(const char *, char *, size_t *, int *))dlsym(RTLD_DEFAULT, "__cxa_demangle");
        int status = -1;
        if (cxa)
            demangled = cxa(name, NULL, NULL, &status);
        if (status != 0) {
            free(demangled);
            demangled = NULL;
        }
    } else if (!strncmp(name, "$s", 2) || !strncmp(name, "_T", 2) || !strncmp(name, "$S", 2)) {
        char *(*swift)(const char *, size_t, char *, size_t *, uint32_t) =
            (char *(*)(const char *, size_t, char *, size_t *, uint32_t))dlsym(RTLD_DEFAULT, "swift_demangle");
        if (swift)
            demangled = swift(name, strlen(name), NULL, NULL, 0);
    }
    if (!demangled)
        return -1;
    snprintf(out, outlen, "%s", demangled);
    free(demangled);
    return 0;
}

int pbs_line(struct pbs_module *m, uint64_t address, char *file, size_t filelen, int *line)
{
    Dwfl_Line *l = dwfl_module_getsrc(m->mod, address);
    if (!l)
        return -1;
    Dwarf_Addr a;
    int ln = 0, col = 0;
    const char *src = dwfl_lineinfo(l, &a, &ln, &col, NULL, NULL);
    if (!src)
        return -1;
    snprintf(file, filelen, "%s", src);
    *line = ln;
    return 0;
}

int pbs_lookup(struct pbs_module *m, uint64_t address, struct pbs_symbol *out)
{
    memset(out, 0, sizeof *out);
    pbs_line(m, address, out->file, sizeof out->file, &out->line);
    GElf_Off offset;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(m->mod, address, &offset, &sym, NULL, NULL, NULL);
    if (!name)
        return -1;
    if (pbs_demangle(name, out->function, sizeof out->function) != 0)
        snprintf(out->function, sizeof out->function, "%s", name);
    out->start = address - offset;
    out->size = sym.st_size;
    return 0;
}

/* The bytes of [start, start+size) from the executable section holding them. */
static const uint8_t *pbs_code(struct pbs_module *m, uint64_t start, uint64_t size)
{
    GElf_Addr bias = 0;
    Elf *elf = dwfl_module_getelf(m->mod, &bias);
    if (!elf)
        return NULL;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr shdr;
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_PROGBITS || !(shdr.sh_flags & SHF_EXECINSTR))
            continue;
        uint64_t lo = shdr.sh_addr + bias;
        if (start < lo || start + size > lo + shdr.sh_size)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !data->d_buf || data->d_size < shdr.sh_size)
            return NULL;
        return (const uint8_t *)data->d_buf + (start - lo);
    }
    return NULL;
}

struct pbs_insn {
    uint64_t address;
    uint32_t size;
    uint8_t kind;    /* PBS_FLOW_* */
    uint64_t target; /* direct jump target */
};

enum { PBS_FLOW_NEXT, PBS_FLOW_COND, PBS_FLOW_JUMP, PBS_FLOW_INDIRECT, PBS_FLOW_STOP };

/* Index of the instruction at address, or -1 (binary search: insns are sorted). */
static long pbs_find(const struct pbs_insn *insns, long n, uint64_t address)
{
    long lo = 0, hi = n - 1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (insns[mid].address == address) return mid;
        if (insns[mid].address < address) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* Is instruction `goal` reachable from instruction `from` inside the function? An indirect jump
 * (a switch table, a computed goto) may go anywhere in the function, so it reaches everything. */
static int pbs_reaches(const struct pbs_insn *insns, long n, long from, long goal, unsigned char *seen, long *stack)
{
    memset(seen, 0, (size_t)n);
    long top = 0;
    stack[top++] = from;
    seen[from] = 1;
    while (top) {
        long i = stack[--top];
        if (i == goal)
            return 1;
        const struct pbs_insn *in = &insns[i];
        if (in->kind == PBS_FLOW_INDIRECT)
            return 1;
        long next[2];
        int k = 0;
        if (in->kind == PBS_FLOW_NEXT || in->kind == PBS_FLOW_COND)
            next[k++] = i + 1 < n ? i + 1 : -1;
        if (in->kind == PBS_FLOW_COND || in->kind == PBS_FLOW_JUMP)
            next[k++] = pbs_find(insns, n, in->target);
        for (int j = 0; j < k; j++) {
            if (next[j] >= 0 && !seen[next[j]]) {
                seen[next[j]] = 1;
                stack[top++] = next[j];
            }
        }
    }
    return 0;
}

int pbs_loops(struct pbs_module *m, uint64_t start, uint64_t size, uint64_t (*loops)[2], int max)
{
    if (size == 0 || size > (16u << 20))
        return -1;
    const uint8_t *code = pbs_code(m, start, size);
    if (!code)
        return -1;
    csh cs;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
        return -1;
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
    /* Data in text or undecodable bytes: skip a byte and go on, as the linear sweep would. */
    cs_option(cs, CS_OPT_SKIPDATA, CS_OPT_ON);
    struct pbs_insn *insns = malloc(sizeof *insns * (size_t)(size + 1));
    unsigned char *seen = malloc((size_t)size + 1);
    long *stack = malloc(sizeof *stack * (size_t)(size + 1));
    cs_insn *insn = cs_malloc(cs);
    if (!insns || !seen || !stack || !insn) {
        free(insns); free(seen); free(stack);
        if (insn) cs_free(insn, 1);
        cs_close(&cs);
        return -1;
    }
    const uint8_t *p = code;
    size_t left = size;
    uint64_t addr = start;
    long n = 0;
    while (cs_disasm_iter(cs, &p, &left, &addr, insn)) {
        struct pbs_insn *in = &insns[n++];
        in->address = insn->address;
        in->size = insn->size;
        in->kind = PBS_FLOW_NEXT;
        in->target = 0;
        if (!insn->detail)
            continue;
        int jump = cs_insn_group(cs, insn, CS_GRP_JUMP);
        if (cs_insn_group(cs, insn, CS_GRP_RET) || insn->id == X86_INS_HLT || insn->id == X86_INS_UD2) {
            in->kind = PBS_FLOW_STOP;
        } else if (jump) {
            cs_x86 *x = &insn->detail->x86;
            int direct = x->op_count == 1 && x->operands[0].type == X86_OP_IMM;
            int unconditional = insn->id == X86_INS_JMP;
            if (!direct) {
                in->kind = unconditional ? PBS_FLOW_INDIRECT : PBS_FLOW_COND;
            } else {
                in->target = (uint64_t)x->operands[0].imm;
                int inside = in->target >= start && in->target < start + size;
                if (unconditional)
                    in->kind = inside ? PBS_FLOW_JUMP : PBS_FLOW_STOP; /* a tail call leaves */
                else
                    in->kind = inside ? PBS_FLOW_COND : PBS_FLOW_NEXT;
            }
        }
    }
    /* A backward jump is a loop only if the jump is reachable again from its target (the code
     * layout alone also puts plain "if" blocks behind backward jumps). */
    int count = 0;
    for (long i = 0; i < n; i++) {
        const struct pbs_insn *in = &insns[i];
        if ((in->kind != PBS_FLOW_JUMP && in->kind != PBS_FLOW_COND) || in->target > in->address)
            continue;
        long t = pbs_find(insns, n, in->target);
        if (t < 0 || !pbs_reaches(insns, n, t, i, seen, stack))
            continue;
        if (count < max) {
            loops[count][0] = in->target;
            loops[count][1] = in->address + in->size;
        }
        count++;
    }
    cs_free(insn, 1);
    cs_close(&cs);
    free(insns);
    free(seen);
    free(stack);
    return count;
}
