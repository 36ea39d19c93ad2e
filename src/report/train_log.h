/* Reading one numeric series out of a training log (the DIR/log.jsonl that
 * `lsllama train` writes: one JSON object per line, training lines without an
 * "eval" key, evaluation lines with "eval": "dev").
 *
 * A resumed run appends to the log and repeats the steps after its
 * checkpoint: a training line whose step is not above the previous one
 * replaces every point from that step on. Its "elapsed_s" restarts at 0, so
 * that key is offset by the elapsed time of the last step kept. Evaluation
 * lines carry no "elapsed_s": they take it from the training line of the same
 * step. */
#ifndef LL_REPORT_TRAIN_LOG_H
#define LL_REPORT_TRAIN_LOG_H

#include <stddef.h>

#include "lsllama.h"

typedef struct ll_series {
    double *x, *y;
    size_t n, cap;
} ll_series;

typedef struct ll_log_query {
    const char *y_key; /* e.g. "loss", "accuracy", "f1" */
    const char *x_key; /* "step" (NULL = "step"), "elapsed_s" or another numeric key */
    const char *eval;  /* NULL or "none": training lines; else lines with "eval": this */
} ll_log_query;

/* Read path and fill *out (zeroed first) with the lines the query selects
 * that have both keys. Lines of other kinds, or without the keys, are
 * skipped. Errors name path:line (a line that is not a JSON object, a key
 * whose value is not a finite number), and a query no line matches is an
 * error naming the file and key. */
int ll_train_log_read(const char *path, const ll_log_query *q, ll_series *out, ll_error *err);

void ll_series_free(ll_series *s);

#endif
