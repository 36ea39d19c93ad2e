/* Small helpers shared by the subcommands. */
#ifndef LL_CLI_UTIL_H
#define LL_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parse a whole decimal integer in [lo, hi]; prints an error naming the
 * command and option and returns 0 on failure. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);

/* Read one line (any length) into *buf; returns length, or -1 at EOF. */
long cli_getline(char **buf, size_t *cap, FILE *f);

/* Parse space-separated token ids of one line. Returns count or -1 (with
 * message in errbuf) on a non-integer. */
long cli_parse_ids(const char *line, int32_t **ids, size_t *cap, char *errbuf, size_t errcap);

#endif
