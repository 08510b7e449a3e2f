/*
 * sys/kernel_gate_address.h — whether this process may use a privbox kernel's gate, and where it
 * is: kernel state, asked once (one prctl). The rewriter boxes its copies behind the gate; fusion
 * does not start where boxes make system calls dispatch cannot see.
 *
 * May use: sys/ and Sources/CShim (declarations only).
 */
#ifndef PRIVBOX_KERNEL_GATE_ADDRESS_H
#define PRIVBOX_KERNEL_GATE_ADDRESS_H

#include "sys/attributes.h"

#include <stdint.h>

/* The gate's address when this process may box its copies (a privbox kernel, CAP_SYS_ADMIN,
 * PRIVBOX_GATE on), else 0; and the kernel's PB_PRIVBOX_F_* flags then. */
uint64_t pb_kernel_gate_address(void) PB_HIDDEN;
uint32_t pb_kernel_gate_flags(void) PB_HIDDEN;

#endif
