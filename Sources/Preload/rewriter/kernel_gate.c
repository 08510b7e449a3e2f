/* rewriter/kernel_gate.c — the kernel-gate backend of the rewriter (not an executor: no
 * pb_executor, no id): asking the kernel for the gate's address, the stub through which a boxed
 * copy's `syscall` jumps to the gate, registering a copy's region with the kernel, and the gate's
 * report at exit. With PRIVBOX_GATE=on, on a kernel with privbox's patch series
 * (kernel/patches), the instrumented copy of a function runs in a box, at CPL0 on the program's own stack and page
 * tables, and each of its `syscall` instructions becomes a jump to the kernel's gate (emit.c
 * builds the copy).
 *
 * May touch: the gate's state (asked once), the regions handed to the kernel. Raw system calls;
 * uses sys/ and Sources/CShim (the gate's probe and user API, privbox_shim.h).
 *
 * Why the result is the kernel's: it is the kernel's. The gate builds the same pt_regs that the
 * SYSCALL entry builds, and dispatches through the same syscall table. It returns with SYSCALL's
 * register contract (rax the result, rcx the return address, r11 the flags, every other register
 * kept). Any syscall outside the kernel's fast set, and any task with seccomp, ptrace or audit
 * work, takes the full syscall path. Signals, restarts (-ERESTART*), fork, exec and exit behave as
 * from user mode (kernel/THREAT-MODEL.md, "How the prototype enforces it").
 *
 * What invalidates it:
 * - fork, vfork, clone and clone3: the region is a mapping like any other. It is copied into a
 *   fork child (which re-enters the box where it returns) and shared with threads.
 * - exec: the mapping goes with the old image.
 * - setuid and friends: nothing is cached in user space.
 * - signals: a signal is delivered at the next interrupt, in user mode. Its handler runs natively,
 *   and the box is re-entered when it returns.
 * - seccomp: a filter installed later gives the task syscall work, and from then on every gate
 *   call takes the full path, through the filter.
 *
 * The kernel verifies a region before it maps it (no privileged or segment instructions, no
 * indirect branch but the gate's, no bare syscall). A copy the kernel refuses is built again as
 * an ordinary copy (install.c). Registering needs CAP_SYS_ADMIN, and only then does the kernel tell
 * the gate's address: for other users the gate is simply absent. */
#include "executors/executor.h"
#include "rewriter/copy_request.h"

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

/* The user API's constants and structures are in privbox_shim.h, shared with privbox doctor. */

/* The one sequence through which a region may make a system call (the kernel's verifier accepts
 * no other): rcx gets the return address; the jump goes through the region's slot, which holds
 * the gate's address; the two bytes of `syscall` after it are never run in the box, but are where
 * a restarted call comes back to (the kernel moves the return address back two bytes), and the
 * kernel re-enters such a restart at the lea. Then a jump back to the instruction after the
 * original `syscall`. */
size_t pb_gate_emit_stub(uint8_t *at, uint64_t at_address, uint64_t slot_address, uint64_t back)
{
    static const uint8_t lea_rcx[7] = {0x48, 0x8d, 0x0d, 0x08, 0, 0, 0}; /* lea 8(%rip),%rcx */
    uint8_t *o = at;
    int32_t r;
    memcpy(o, lea_rcx, sizeof lea_rcx);
    o += sizeof lea_rcx;
    *o++ = 0xff; *o++ = 0x25;                                              /* jmp *slot(%rip) */
    r = (int32_t)((int64_t)slot_address - (int64_t)(at_address + (uint64_t)(o - at) + 4));
    memcpy(o, &r, 4); o += 4;
    *o++ = 0x0f; *o++ = 0x05;                                              /* syscall */
    *o++ = 0xe9;                                                           /* jmp back */
    r = (int32_t)((int64_t)back - (int64_t)(at_address + (uint64_t)(o - at) + 4));
    memcpy(o, &r, 4); o += 4;
    return (size_t)(o - at);
}

static const char *pb_gate_reason(uint32_t why)
{
    static const char *const reasons[] = {
        "", "bytes that do not decode", "a privileged or sensitive instruction",
        "an indirect branch", "a branch into an instruction or the slots",
        "a syscall outside the gate sequence", "a jump slot not holding the gate",
        "a %gs override or segment load",
    };
    return why < sizeof reasons / sizeof reasons[0] ? reasons[why] : "an unknown reason";
}

/* Hands the region (page aligned, code then slots) to the kernel, which verifies it and maps its
 * own copy in its place. 0, or -1 with why[] saying what the kernel refused. */
int pb_gate_register(uint8_t *region, size_t len, size_t code_len, char *why, size_t whylen)
{
    struct pb_privbox_region r = {(uint64_t)region, len, code_len, 0, 0, 0};
    long ret = pb_raw_syscall6(SYS_prctl, PB_PR_PRIVBOX, PB_PR_PRIVBOX_REGISTER, (long)&r, 0, 0, 0);
    if (ret == 0)
        return 0;
    if (ret == -22 && r.fail_reason)
        snprintf(why, whylen, "the kernel's verifier refused %s at +0x%llx", pb_gate_reason(r.fail_reason),
                 (unsigned long long)r.fail_offset);
    else
        snprintf(why, whylen, "the kernel refused the region (errno %ld)", -ret);
    return -1;
}

/* At exit (PRIVBOX_LOG=info): the calling thread's box entries and gate calls. */
void pb_gate_report(void)
{
    struct pb_privbox_info info;
    if (!pb_kernel_gate_address() || pb_probe_privbox_gate(&info) != 0)
        return;
    pb_log(PB_LOG_INFO, "kernel gate%s: this thread entered its boxes %llu times; %llu gate calls served "
           "directly, %llu through the full syscall path",
           (pb_kernel_gate_flags() & PB_PRIVBOX_F_ISOLATED) ? "" : " (not isolated)",
           (unsigned long long)info.entries, (unsigned long long)info.gate_fast,
           (unsigned long long)info.gate_slow);
}
