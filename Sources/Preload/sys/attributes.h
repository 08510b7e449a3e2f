/*
 * sys/attributes.h — the compiler attributes every file of the preload writes through these names:
 * symbol visibility (nothing but the interposed libc names and privbox's entry points leaves
 * libprivbox.so), branch hints and the initial-exec TLS model (no allocation, no lock, safe in a
 * signal handler). Macros only; it touches nothing.
 */
#ifndef PRIVBOX_SYS_ATTRIBUTES_H
#define PRIVBOX_SYS_ATTRIBUTES_H

#define PB_HIDDEN __attribute__((visibility("hidden")))
#define PB_EXPORT __attribute__((visibility("default")))
#define PB_LIKELY(x) __builtin_expect(!!(x), 1)
#define PB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PB_TLS __thread __attribute__((tls_model("initial-exec")))

#endif
