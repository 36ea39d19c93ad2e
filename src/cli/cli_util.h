/* Small helpers shared by the subcommands. */
#ifndef LL_CLI_UTIL_H
#define LL_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lsllama.h"

/* Parse a whole decimal integer in [lo, hi]; prints an error naming the
 * command and option and returns 0 on failure. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
/* --base-precision's value: 1 and *out set, else 0 after the message. */
int cli_parse_base_precision(const char *cmd, const char *s, ll_base_precision *out);
/* --compute's value: 1 and *out set, else 0 after the message. */
int cli_parse_compute(const char *cmd, const char *s, ll_compute *out);
/* The help line of --compute. */
#define CLI_COMPUTE_HELP                                                                                       \
    "--compute f32|bf16: the arithmetic of the frozen-weight products (f32 = the default; bf16 = both\n"     \
    "        operands rounded to bf16, f32 sums: AMX or AVX512-BF16, refused on CPUs without them; LoRA,\n"  \
    "        head, attention and optimiser stay f32)\n"
/* The help line of --base-precision. */
#define CLI_BASE_PRECISION_HELP                                                                              \
    "--base-precision stored|bf16|q8_0|f32: the frozen base's matrices in memory: stored = as the file\n"      \
    "        stores them (memory-mapped); bf16, q8_0 = F32/F16/BF16 matrices converted at load (quantized\n"    \
    "        ones stay as stored); f32 = all converted. stored and f32 give the same results\n"


/* Parse a whole finite decimal number in [lo, hi] (hi_open: in [lo, hi));
 * prints an error naming the command and option and returns 0 on failure. */
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, int hi_open, double *out);

/* The usage error for an argument a command does not take: "OPT needs a
 * value" when arg is one of value_opts (space-separated) given last without
 * its value, else "unexpected argument". */
void cli_unexpected(const char *cmd, const char *arg, int is_last, const char *value_opts);

/* Read one line (any length) into *buf; returns length, or -1 at EOF. */
long cli_getline(char **buf, size_t *cap, FILE *f);

/* Parse space-separated token ids of one line. Returns count or -1 (with
 * message in errbuf) on a non-integer. */
long cli_parse_ids(const char *line, int32_t **ids, size_t *cap, char *errbuf, size_t errcap);

/* ---- output ----------------------------------------------------------------
 * Every record a command writes is followed by cli_output_ok, so a full disk
 * or a failing device stops the command at the first failed write with
 * "lsllama CMD: error writing NAME: REASON" instead of leaving a cut file
 * and exit status 0; main() ends every command with cli_output_finish on
 * standard output, so no command can forget the final flush. The message is
 * printed once per stream. */

/* 1 while f has had no write error; otherwise prints the message and returns 0. */
int cli_output_ok(const char *cmd, FILE *f, const char *name);

/* Flush f and check it (and close it when close_it); 1 if all of f's
 * output reached the system, else prints the message and returns 0. */
int cli_output_finish(const char *cmd, FILE *f, const char *name, int close_it);

/* 1 if all n values are finite (no NaN, no infinity). */
int cli_all_finite(const float *v, size_t n);

/* ---- progress ----------------------------------------------------------------
 * A one-line progress report on stderr ("\reval: 120/872 examples (13%) ...")
 * while stderr is a terminal, at most a few times a second. */
typedef struct cli_progress {
    int on;
    const char *what, *unit;
    double t0, last;
    int shown;
} cli_progress;

/* enabled: not --no-progress; the line shows only when stderr is a terminal too. */
void cli_progress_init(cli_progress *p, const char *what, const char *unit, int enabled);
/* done of total items; the signature of ll_eval_progress's callback (ctx: a cli_progress). */
void cli_progress_update(void *ctx, size_t done, size_t total);
/* Ends the line (if one was shown). */
void cli_progress_end(cli_progress *p);

/* Print a loaded tokenizer's warning (ll_tokenizer_warning), if any, on stderr. */
struct ll_tokenizer;
void cli_tokenizer_warning(const char *cmd, const struct ll_tokenizer *t);

#endif
