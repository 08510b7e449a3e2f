/*
 * privbox_symbolize.h — turning (module file, offset) into function, file:line and loop ranges,
 * for the `privbox` CLI. Offline and after the fact: never in a profiled process.
 */
#ifndef PRIVBOX_SYMBOLIZE_H
#define PRIVBOX_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pbs_module;

/* Opens the ELF file at path, which must be a regular file (a FIFO or device is never opened),
 * with its separate debug information if it has none itself (by build-id under /usr/lib/debug, or
 * by its .gnu_debuglink next to it, in .debug/ or under /usr/lib/debug; regular files only). If
 * expected_build_id (lower-case hex) is non-empty and differs from the
 * file's, fails: the file on disk is not the build that was profiled. NULL with err on failure. */
struct pbs_module *pbs_open(const char *path, const char *expected_build_id, char *err, size_t errlen);
void pbs_close(struct pbs_module *module);

struct pbs_symbol {
    char function[512];   /* demangled where the name is C++ or Swift; "" if no symbol covers it */
    uint64_t start;       /* the function's first address (file virtual address) */
    uint64_t size;
    char file[1024];      /* source file of `address`, "" without line information */
    int line;
};

/* Describes the code at `address` (an offset as recorded: the file's virtual address). 0 if a
 * symbol was found, -1 otherwise (file/line may still be filled). */
int pbs_lookup(struct pbs_module *module, uint64_t address, struct pbs_symbol *out);

/* Source location of one address. 0 and file/line, or -1. */
int pbs_line(struct pbs_module *module, uint64_t address, char *file, size_t filelen, int *line);

/* The loops of the function [start, start+size): every backward jump whose target lies inside
 * the function gives a loop [target, end of the jump instruction). Writes at most max pairs and
 * returns how many loops there are, or -1 if the function's code cannot be read. */
int pbs_loops(struct pbs_module *module, uint64_t start, uint64_t size, uint64_t (*loops)[2], int max);

/* Demangles a C++ (_Z...) or Swift ($s..., _T...) name into out; returns 0, or -1 if not mangled. */
int pbs_demangle(const char *name, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
