/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The gate's user API comes from the patched kernel tree's uapi headers
 * (scripts/kernel-test passes -I<tree>/arch/x86/include/uapi); the prctl
 * numbers are in <linux/prctl.h> there, which the C library's own headers
 * shadow, so they are checked here against the patch's values.
 */
#ifndef PRIVBOX_TEST_UAPI_H
#define PRIVBOX_TEST_UAPI_H
#include <asm/privbox.h>
#ifndef PR_PRIVBOX
#define PR_PRIVBOX		0x50425831
#define PR_PRIVBOX_QUERY	1
#define PR_PRIVBOX_REGISTER	2
#endif
#endif
