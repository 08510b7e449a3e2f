/*
 * config.c — PRIVBOX_* environment parsing, shared by the preload's constructor and the CLI.
 *
 * Runs before the program's main() inside every preloaded process, so it must not allocate,
 * must not call anything that could be interposed, and must never fail loudly: a bad value
 * produces one sentence in cfg->error and mode OFF, and the preload then stays out of the way.
 */
#include "privbox_shim.h"

#include <string.h>

struct pb_name { const char *name; int value; };

static const struct pb_name pb_modes[] = {
    {"off", PB_MODE_OFF}, {"profile", PB_MODE_PROFILE},
    {"accelerate", PB_MODE_ACCELERATE}, {"auto", PB_MODE_AUTO}, {0, 0},
};
static const struct pb_name pb_levels[] = {
    {"error", PB_LOG_ERROR}, {"warn", PB_LOG_WARN},
    {"info", PB_LOG_INFO}, {"debug", PB_LOG_DEBUG}, {0, 0},
};
static const struct pb_name pb_bools[] = { {"0", 0}, {"1", 1}, {0, 0} };
static const struct pb_name pb_copy_modes[] = { {"0", 0}, {"1", 1}, {"always", 2}, {0, 0} };
static const struct pb_name pb_gate_modes[] = { {"on", 1}, {"off", 0}, {0, 0} };

/* Every variable privbox reads. A PRIVBOX_* name outside this list is reported, because a typo
 * (PRIVBOX_MDOE=profile) would otherwise silently run the program natively. */
const char *const pb_known_vars[] = {
    "PRIVBOX_MODE", "PRIVBOX_PROFILE", "PRIVBOX_LOG", "PRIVBOX_INHERIT", "PRIVBOX_INLINE",
    "PRIVBOX_COPY", "PRIVBOX_GATE", 0,
};

static int pb_lookup(const struct pb_name *table, const char *value, int *out)
{
    for (; table->name; table++) {
        if (strcmp(table->name, value) == 0) {
            *out = table->value;
            return 0;
        }
    }
    return -1;
}

static const char *pb_name_of(const struct pb_name *table, int value)
{
    for (; table->name; table++)
        if (table->value == value)
            return table->name;
    return "?";
}

const char *pb_mode_name(int mode) { return pb_name_of(pb_modes, mode); }
const char *pb_log_level_name(int level) { return pb_name_of(pb_levels, level); }

/* strlcat-like append that never overflows and always terminates. */
static void pb_append(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(dst);
    while (*src && n + 1 < cap)
        dst[n++] = *src++;
    dst[n] = '\0';
}

/* Appends at most 64 bytes of a user-supplied value, with non-printable bytes shown as '?', so
 * the error line stays one line whatever the environment holds. */
static void pb_append_value(char *dst, size_t cap, const char *value)
{
    char clean[72];
    size_t i = 0;
    for (; value[i] && i < 64; i++) {
        unsigned char c = (unsigned char)value[i];
        clean[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    clean[i] = '\0';
    pb_append(dst, cap, clean);
    if (value[i])
        pb_append(dst, cap, "...");
}

static int pb_fail(struct pb_config *cfg, const char *name, const char *value, const char *expected)
{
    if (cfg->error[0] == '\0') {
        pb_append(cfg->error, sizeof cfg->error, name);
        pb_append(cfg->error, sizeof cfg->error, "=");
        pb_append_value(cfg->error, sizeof cfg->error, value);
        pb_append(cfg->error, sizeof cfg->error, " is not valid (expected ");
        pb_append(cfg->error, sizeof cfg->error, expected);
        pb_append(cfg->error, sizeof cfg->error, "); running natively");
    }
    return -1;
}

static int pb_parse_enum(struct pb_config *cfg, const struct pb_name *table, const char *name,
                         const char *value, const char *expected, int *out)
{
    if (value[0] == '\0') /* an empty value means "unset", as for most tools' variables */
        return 0;
    if (pb_lookup(table, value, out) != 0)
        return pb_fail(cfg, name, value, expected);
    return 0;
}

int pb_config_parse(struct pb_config *cfg, char *const *envp)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->mode = PB_MODE_OFF;
    cfg->log_level = PB_LOG_WARN;
    cfg->inherit = 1;
    cfg->copies = 1;
    cfg->gate = 0; /* the gate has not been measured faster (BENCHMARKS.md): opt-in */
    int status = 0;

    for (char *const *e = envp; e && *e; e++) {
        const char *entry = *e;
        if (strncmp(entry, "PRIVBOX_", 8) != 0)
            continue;
        const char *eq = strchr(entry, '=');
        if (!eq)
            continue;
        size_t name_len = (size_t)(eq - entry);
        const char *value = eq + 1;
        char name[64];
        if (name_len >= sizeof name) {
            name_len = sizeof name - 1;
        }
        memcpy(name, entry, name_len);
        name[name_len] = '\0';

        if (strcmp(name, "PRIVBOX_MODE") == 0) {
            status |= pb_parse_enum(cfg, pb_modes, name, value, "off, profile, accelerate or auto",
                                    &cfg->mode);
        } else if (strcmp(name, "PRIVBOX_LOG") == 0) {
            status |= pb_parse_enum(cfg, pb_levels, name, value, "error, warn, info or debug",
                                    &cfg->log_level);
        } else if (strcmp(name, "PRIVBOX_INHERIT") == 0) {
            status |= pb_parse_enum(cfg, pb_bools, name, value, "0 or 1", &cfg->inherit);
        } else if (strcmp(name, "PRIVBOX_INLINE") == 0) {
            status |= pb_parse_enum(cfg, pb_bools, name, value, "0 or 1", &cfg->inline_discovery);
        } else if (strcmp(name, "PRIVBOX_COPY") == 0) {
            status |= pb_parse_enum(cfg, pb_copy_modes, name, value, "0, 1 or always", &cfg->copies);
        } else if (strcmp(name, "PRIVBOX_GATE") == 0) {
            status |= pb_parse_enum(cfg, pb_gate_modes, name, value, "on or off", &cfg->gate);
        } else if (strcmp(name, "PRIVBOX_PROFILE") == 0) {
            size_t len = strlen(value);
            if (len == 0)
                continue;
            if (len >= sizeof cfg->profile_path) {
                status |= pb_fail(cfg, name, value, "a path shorter than 4096 bytes");
                continue;
            }
            memcpy(cfg->profile_path, value, len + 1);
            cfg->profile_path_set = 1;
        } else {
            int known = 0;
            for (const char *const *k = pb_known_vars; *k; k++)
                known |= strcmp(*k, name) == 0;
            if (!known && cfg->error[0] == '\0') {
                pb_append(cfg->error, sizeof cfg->error, "unknown variable ");
                pb_append_value(cfg->error, sizeof cfg->error, name);
                pb_append(cfg->error, sizeof cfg->error, " (known:");
                for (const char *const *k = pb_known_vars; *k; k++) {
                    pb_append(cfg->error, sizeof cfg->error, k == pb_known_vars ? " " : ", ");
                    pb_append(cfg->error, sizeof cfg->error, *k);
                }
                pb_append(cfg->error, sizeof cfg->error, "); running natively");
                status = -1;
            }
        }
    }

    if (!cfg->profile_path_set) {
        const char *def = cfg->mode == PB_MODE_PROFILE ? PB_DEFAULT_PROFILE_WRITE
                                                       : PB_DEFAULT_PROFILE_READ;
        memcpy(cfg->profile_path, def, strlen(def) + 1);
    }
    if (status != 0) {
        cfg->mode = PB_MODE_OFF;
        return -1;
    }
    return 0;
}

int pb_expand_path(const char *pattern, long pid, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && (p[1] == 'p' || p[1] == '%')) {
            char digits[24];
            size_t d = 0;
            if (p[1] == '%') {
                digits[d++] = '%';
            } else {
                unsigned long v = pid < 0 ? 0 : (unsigned long)pid;
                char rev[24];
                size_t r = 0;
                do { rev[r++] = (char)('0' + v % 10); v /= 10; } while (v);
                while (r) digits[d++] = rev[--r];
            }
            if (n + d >= outlen)
                return -1;
            memcpy(out + n, digits, d);
            n += d;
            p++;
            continue;
        }
        if (n + 1 >= outlen)
            return -1;
        out[n++] = *p;
    }
    if (n >= outlen)
        return -1;
    out[n] = '\0';
    return 0;
}
