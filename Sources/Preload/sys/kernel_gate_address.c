/*
 * sys/kernel_gate_address.c — the kernel gate's address (sys/kernel_gate_address.h), asked of the
 * kernel on first use and kept: the rewriter (boxing copies) and the fusion executor (which does
 * not start where boxes make calls dispatch cannot see) ask it, and the kernel is asked once.
 *
 * May use: sys/ and Sources/CShim (pb_probe_privbox_gate, the user API's constants).
 */
#include "sys/kernel_gate_address.h"
#include "sys/process.h"
#include "privbox_shim.h"

static int pb_kernel_gate_state; /* 0: not asked yet; 1: usable; -1: not */
static uint64_t pb_kernel_gate;
static uint32_t pb_kernel_gate_flag_bits;

uint64_t pb_kernel_gate_address(void)
{
    if (!pb_kernel_gate_state) {
        struct pb_privbox_info info;
        pb_kernel_gate_state = -1;
        if (pb_proc.gate && pb_probe_privbox_gate(&info) == 0 && info.version == PB_PRIVBOX_VERSION &&
            (info.flags & PB_PRIVBOX_F_AVAILABLE) && info.gate) {
            pb_kernel_gate = info.gate;
            pb_kernel_gate_flag_bits = info.flags;
            pb_kernel_gate_state = 1;
        }
    }
    return pb_kernel_gate_state > 0 ? pb_kernel_gate : 0;
}

uint32_t pb_kernel_gate_flags(void)
{
    return pb_kernel_gate_address() ? pb_kernel_gate_flag_bits : 0;
}
