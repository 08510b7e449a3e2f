/*
 * executors/identity.h — the identity executor's answering path, inlined into its wrappers (the
 * reasons it is exact are in executors/identity.c, with the code that fills and invalidates).
 */
#ifndef PRIVBOX_EXEC_IDENTITY_H
#define PRIVBOX_EXEC_IDENTITY_H

#include "executors/executor.h"

enum { PB_ID_PID, PB_ID_UID, PB_ID_EUID, PB_ID_GID, PB_ID_EGID, PB_ID_PGRP, PB_ID_SID, PB_ID_COUNT };

#define PB_ID_VALID (1ull << 63)

/* In a page the kernel zeroes in every fork child (MADV_WIPEONFORK). A value is served while it
 * is valid. Whatever could change a value (a vfork, an identity change) raises busy and then
 * invalidates every value, and no value is installed while busy: so the valid bit alone says
 * whether a value may be served. */
struct pb_identity_page {
    uint64_t ids[PB_ID_COUNT]; /* bit 63 valid, bits 32..62 epoch, bits 0..31 the value */
    int busy;                  /* vforks and identity changes in flight */
    int started;               /* 1 in the process that ran the constructor; 0 in a fork child */
};
extern struct pb_identity_page *pb_id PB_HIDDEN;
struct pb_thread_identity {
    uint64_t pid_word; /* the pid word (ids[PB_ID_PID]) the tid was read under; 0 = unknown */
    uint32_t tid;
};
extern PB_TLS struct pb_thread_identity pb_my_tid PB_HIDDEN;

/* The slow paths: ask the kernel (and cache where allowed). PB_ID_VALID | value, or 0 to decline. */
uint64_t pb_identity_fill(int which) PB_HIDDEN;
uint64_t pb_identity_tid_fill(void) PB_HIDDEN;

/* PB_ID_VALID | the value, or 0: the executor declines and the call passes through. Returned in a
 * register, so the wrappers' common path needs no stack frame. */
static inline uint64_t pb_identity_word(int which)
{
    struct pb_identity_page *p = pb_id;
    if (PB_LIKELY(p != 0)) {
        uint64_t w = __atomic_load_n(&p->ids[which], __ATOMIC_ACQUIRE);
        if (PB_LIKELY(w & PB_ID_VALID))
            return w;
    }
    return pb_identity_fill(which);
}

static inline uint64_t pb_identity_tid_word(void)
{
    struct pb_identity_page *p = pb_id;
    if (PB_LIKELY(p != 0)) {
        uint64_t w = __atomic_load_n(&p->ids[PB_ID_PID], __ATOMIC_ACQUIRE);
        if (PB_LIKELY((w & PB_ID_VALID) && pb_my_tid.pid_word == w))
            return PB_ID_VALID | pb_my_tid.tid;
    }
    return pb_identity_tid_fill();
}

/* An `attempt` for PB_DEFINE_ROUTED_WRAPPER: stores the value in r, non-zero if served. */
#define PB_ID_ATTEMPT(word)                                                                         \
    __extension__({                                                                                 \
        uint64_t w_ = (word);                                                                       \
        r = (__typeof__(r))(uint32_t)w_;                                                            \
        (int)(w_ >> 63);                                                                            \
    })

/* ---- invalidation entry points (called by the process-creation and credential wrappers) ------ */

/* Around a vfork (or CLONE_VFORK|CLONE_VM): the child borrows the parent's memory and thread. */
void pb_identity_vfork_begin(void) PB_HIDDEN;
void pb_identity_vfork_end(void) PB_HIDDEN;
/* A child that shares memory but not the process (CLONE_VM without CLONE_THREAD), or a thread
 * made outside pthread_create (CLONE_VM|CLONE_THREAD through clone/syscall), is about to exist:
 * caches keyed by process or by thread-local storage can no longer be trusted. */
void pb_identity_shared_memory_child(int is_thread) PB_HIDDEN;
/* Credentials, process group or session are being changed by this process (set*id, setpgid,
 * setsid, unshare, setns): *_begin before the call, *_end after it. */
void pb_identity_change_begin(void) PB_HIDDEN;
void pb_identity_change_end(int disable_credentials, int disable_groups) PB_HIDDEN;

#endif
