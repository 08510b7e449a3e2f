/*
 * hex.c — bytes as lower-case hexadecimal, the one encoder of build-ids and escapes: the preload's
 * profile writer and plan (Sources/Preload), the Swift core (PreloadCore) and the CLI's symbolizer
 * (CSymbolize). Pure: it writes out only.
 */
#include "privbox_shim.h"

void pb_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}
