/*
 * rewriter/capstone.c — capstone, the x86-64 decoder, loaded on demand (dlopen, only when a plan
 * asks for a copy that is not in the decode cache), behind struct pb_x86_insn (parts.h): the only
 * part of the rewriter that uses capstone's types, instruction ids and operand details.
 *
 * May touch: capstone's library and handle (loaded here, closed by pb_decoder_unload). Uses sys/
 * only. Decoding allocates in capstone's own way (its instruction buffers, in the program's heap):
 * one buffer per decoder, not one per instruction; only the displacement probe below decodes
 * into buffers of capstone's own (cs_disasm), freed at once.
 */
#include "rewriter/parts.h"

#include <capstone/capstone.h>
#include <dlfcn.h>
#include <string.h>

static struct {
    cs_err (*open)(cs_arch, cs_mode, csh *);
    cs_err (*option)(csh, cs_opt_type, size_t);
    size_t (*disasm)(csh, const uint8_t *, size_t, uint64_t, size_t, cs_insn **);
    void (*free)(cs_insn *, size_t);
    cs_err (*close)(csh *);
    cs_insn *(*malloc)(csh);
    bool (*disasm_iter)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *);
    unsigned (*version)(int *, int *);
    void *lib;
    csh handle;
    int state; /* 0 not tried, 1 loaded, -1 unavailable */
} pb_cs;

int pb_decoder_load(void)
{
    if (pb_cs.state)
        return pb_cs.state == 1;
    pb_cs.state = -1;
    /* Only the ABI this file was compiled against (instruction ids and cs_detail differ in 5). */
    void *lib = dlopen("libcapstone.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return 0;
    *(void **)&pb_cs.open = dlsym(lib, "cs_open");
    *(void **)&pb_cs.option = dlsym(lib, "cs_option");
    *(void **)&pb_cs.disasm = dlsym(lib, "cs_disasm");
    *(void **)&pb_cs.free = dlsym(lib, "cs_free");
    *(void **)&pb_cs.close = dlsym(lib, "cs_close");
    *(void **)&pb_cs.malloc = dlsym(lib, "cs_malloc");
    *(void **)&pb_cs.disasm_iter = dlsym(lib, "cs_disasm_iter");
    *(void **)&pb_cs.version = dlsym(lib, "cs_version");
    pb_cs.lib = lib;
    int major = 0, minor = 0;
    if (pb_cs.version)
        pb_cs.version(&major, &minor);
    if (major != CS_API_MAJOR || minor != CS_API_MINOR || !pb_cs.malloc || !pb_cs.disasm_iter ||
        !pb_cs.open || !pb_cs.option || !pb_cs.disasm || !pb_cs.free || !pb_cs.close ||
        pb_cs.open(CS_ARCH_X86, CS_MODE_64, &pb_cs.handle) != CS_ERR_OK)
        return 0;
    pb_cs.option(pb_cs.handle, CS_OPT_DETAIL, CS_OPT_ON);
    pb_cs.state = 1;
    return 1;
}

void pb_decoder_unload(void)
{
    /* Not needed once the copies are built (their decoded form is in the decode cache). */
    if (pb_cs.state == 1) {
        pb_cs.close(&pb_cs.handle);
        dlclose(pb_cs.lib);
        pb_cs.state = -1;
    }
}

int pb_decoder_open(struct pb_decoder *d)
{
    d->scratch = pb_cs.malloc(pb_cs.handle);
    return d->scratch != 0;
}

void pb_decoder_close(struct pb_decoder *d)
{
    if (d->scratch)
        pb_cs.free(d->scratch, 1);
    d->scratch = 0;
}

/* The branch opcode of a relative jmp/jcc/call (after ignorable prefixes), or 0. */
static int pb_branch_form(const cs_insn *in, uint8_t *branch)
{
    size_t i = 0;
    while (i < in->size && (in->bytes[i] == 0xf2 || in->bytes[i] == 0x2e || in->bytes[i] == 0x3e ||
                            (in->bytes[i] & 0xf0) == 0x40))
        i++;
    if (i >= in->size)
        return 0;
    uint8_t b = in->bytes[i];
    if (b == 0xe8 || b == 0xe9) {
        *branch = b;
        return 1;
    }
    if (b == 0xeb) {
        *branch = 0xe9;
        return 1;
    }
    if (b >= 0x70 && b <= 0x7f) {
        *branch = (uint8_t)(0x80 + (b & 15));
        return 1;
    }
    if (b == 0x0f && i + 1 < in->size && in->bytes[i + 1] >= 0x80 && in->bytes[i + 1] <= 0x8f) {
        *branch = in->bytes[i + 1];
        return 1;
    }
    return 0;
}

int pb_decoder_next(struct pb_decoder *d, const uint8_t **code, size_t *left, uint64_t *address,
                    struct pb_x86_insn *out)
{
    cs_insn *in = d->scratch;
    if (!pb_cs.disasm_iter(pb_cs.handle, code, left, address, in))
        return 0;
    const cs_x86 *x = &in->detail->x86;
    memset(out, 0, sizeof *out);
    out->address = in->address;
    out->size = (uint8_t)in->size;
    out->is_call = in->id == X86_INS_CALL;
    for (int g = 0; g < in->detail->groups_count; g++)
        out->is_jump |= in->detail->groups[g] == CS_GRP_JUMP;
    /* capstone 4 puts loop/loope/loopne in the relative-branch group only, not the jump group:
     * without this they were copied with their rel8 unchanged (golden/refuse_loop.S). Named by id,
     * not by that group, which calls are in too. */
    out->is_jump |= in->id == X86_INS_LOOP || in->id == X86_INS_LOOPE || in->id == X86_INS_LOOPNE;
    out->is_jmp = in->id == X86_INS_JMP;
    out->is_syscall = in->id == X86_INS_SYSCALL;
    out->is_xbegin = in->id == X86_INS_XBEGIN;
    out->is_endbr64 = in->id == X86_INS_ENDBR64;
    out->op_count = x->op_count;
    out->has_imm_operand = x->op_count == 1 && x->operands[0].type == X86_OP_IMM;
    if (out->has_imm_operand)
        out->imm = (uint64_t)x->operands[0].imm;
    if (!pb_branch_form(in, &out->rel_branch))
        out->rel_branch = 0;
    out->first_operand_rip_slot = x->operands[0].type == X86_OP_MEM && x->operands[0].mem.base == X86_REG_RIP &&
                                  x->operands[0].mem.index == X86_REG_INVALID;
    if (out->first_operand_rip_slot)
        out->first_operand_disp = x->operands[0].mem.disp;
    for (int o = 0; o < x->op_count; o++)
        out->has_rip_operand |= x->operands[o].type == X86_OP_MEM && x->operands[o].mem.base == X86_REG_RIP;
    for (int o = 0; o < x->op_count; o++)
        out->has_eip_operand |= x->operands[o].type == X86_OP_MEM && x->operands[o].mem.base == X86_REG_EIP;
    memcpy(out->mnemonic, in->mnemonic, sizeof out->mnemonic);
    out->mnemonic[sizeof out->mnemonic - 1] = '\0';
    return 1;
}

/* Where in the instruction its 4-byte RIP-relative displacement is: the candidate positions hold
 * the displacement's bytes; the right one is the position where changing them changes the decoded
 * displacement (and nothing else). 0 if none. */
static int pb_disp_position(const cs_insn *in, int64_t disp)
{
    int32_t d = (int32_t)disp;
    for (int p = (int)in->size - 4; p >= 1; p--) {
        if (memcmp(in->bytes + p, &d, 4) != 0)
            continue;
        uint8_t probe[16];
        memcpy(probe, in->bytes, in->size);
        int32_t changed = d ^ 0x01020304;
        memcpy(probe + p, &changed, 4);
        cs_insn *out = 0;
        size_t n = pb_cs.disasm(pb_cs.handle, probe, in->size, in->address, 1, &out);
        int ok = n == 1 && out->size == in->size && out->id == in->id &&
                 out->detail->x86.disp == changed;
        if (n)
            pb_cs.free(out, n);
        if (ok)
            return p;
    }
    return 0;
}

int pb_decoder_locate_rip_operand(struct pb_decoder *d, uint8_t *disp_pos, uint64_t *target)
{
    const cs_insn *in = d->scratch;
    const cs_x86 *x = &in->detail->x86;
    for (int o = 0; o < x->op_count; o++) {
        if (x->operands[o].type != X86_OP_MEM || x->operands[o].mem.base != X86_REG_RIP)
            continue;
        int pos = pb_disp_position(in, x->operands[o].mem.disp);
        if (!pos)
            return 0;
        *disp_pos = (uint8_t)pos;
        *target = in->address + in->size + (uint64_t)x->operands[o].mem.disp;
    }
    return 1;
}
