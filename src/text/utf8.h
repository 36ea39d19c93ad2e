/* UTF-8 helpers with Python-compatible replacement of invalid input. */
#ifndef LL_TEXT_UTF8_H
#define LL_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence starting at s[0] (1..4), or 0 if the
 * bytes there do not start a valid sequence. On 0, *bad is the length of the
 * maximal invalid subpart (>= 1) to replace by one U+FFFD (Unicode's
 * "maximal subpart" practice, which Python's errors='replace' follows). */
int ll_utf8_valid_len(const uint8_t *s, size_t n, int *bad);

/* 1 if s[0..n) is valid UTF-8. */
int ll_utf8_is_valid(const uint8_t *s, size_t n);

/* Replace invalid subsequences with U+FFFD. *out is malloc'd (NUL-terminated);
 * *map (malloc'd, out_len+1 entries) gives for each output byte the offset of
 * the input byte it came from (a replacement's 3 bytes map to the start of the
 * invalid subpart; map[out_len] = n). Returns 0 or -1 on allocation failure. */
int ll_utf8_sanitize(const uint8_t *s, size_t n, char **out, size_t *out_len, int64_t **map);

/* Decode one code point of valid UTF-8 (no checks); returns its length. */
static inline int ll_utf8_decode(const uint8_t *s, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (c < 0xF0) { *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F); return 3; }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* Length of the character starting with lead byte c in valid UTF-8. */
static inline int ll_utf8_len(uint8_t c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Encode a code point; returns the length (1..4). */
int ll_utf8_encode(uint32_t cp, char *out);

#endif
