#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

int ll_utf8_valid_len(const uint8_t *s, size_t n, int *bad) {
    uint8_t c = s[0];
    *bad = 1;
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else return 0; /* 0x80..0xC1, 0xF5..0xFF: one invalid byte */
    /* second byte has the special range, the rest 80..BF */
    size_t i = 1;
    for (; i <= (size_t)need; i++) {
        if (i >= n) { *bad = (int)i; return 0; }
        uint8_t b = s[i];
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) { *bad = (int)i; return 0; }
    }
    return need + 1;
}

int ll_utf8_is_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        int bad, l = ll_utf8_valid_len(s + i, n - i, &bad);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

int ll_utf8_sanitize(const uint8_t *s, size_t n, char **out, size_t *out_len, int64_t **map) {
    /* worst case: every byte becomes 3 bytes */
    size_t cap = n * 3 + 1;
    char *o = malloc(cap);
    int64_t *m = malloc((cap + 1) * sizeof *m);
    if (!o || !m) { free(o); free(m); return -1; }
    size_t i = 0, k = 0;
    while (i < n) {
        int bad, l = s[i] < 0x80 ? 1 : ll_utf8_valid_len(s + i, n - i, &bad);
        if (l) {
            for (int j = 0; j < l; j++) { o[k] = (char)s[i + j]; m[k++] = (int64_t)(i + j); }
            i += (size_t)l;
        } else {
            o[k] = (char)0xEF; m[k++] = (int64_t)i;
            o[k] = (char)0xBF; m[k++] = (int64_t)i;
            o[k] = (char)0xBD; m[k++] = (int64_t)i;
            i += (size_t)bad;
        }
    }
    o[k] = 0;
    m[k] = (int64_t)n;
    *out = o;
    *out_len = k;
    *map = m;
    return 0;
}

int ll_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
