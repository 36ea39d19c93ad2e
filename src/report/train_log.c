#include "report/train_log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void ll_series_free(ll_series *s) {
    if (!s) return;
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

/* Points read so far, with the step of each (for a resumed run), and the
 * training lines' (step, elapsed_s) for evaluation lines to borrow from. */
typedef struct reader {
    ll_series *out;
    double *step; /* per point; NAN where the line had none */
    double *t_step, *t_elapsed;
    size_t t_n, t_cap;
} reader;

static int grow(double **a, size_t need, size_t *cap, double **b, double **c) {
    if (need <= *cap) return 1;
    size_t n = *cap ? *cap * 2 : 256;
    while (n < need) n *= 2;
    double *pa = realloc(*a, n * sizeof(double));
    if (pa) *a = pa;
    double *pb = pa ? realloc(*b, n * sizeof(double)) : NULL;
    if (pb) *b = pb;
    double *pc = pb && c ? realloc(*c, n * sizeof(double)) : NULL;
    if (pc) *c = pc;
    if (!pa || !pb || (c && !pc)) return 0;
    *cap = n;
    return 1;
}

/* The number at key, or NULL when absent; -1 (with the message) when present
 * but not a finite number. */
static int get_number(const cJSON *j, const char *key, const double **v, const char *path, long line, ll_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, key);
    *v = NULL;
    if (!it) return 0;
    if (!cJSON_IsNumber(it))
        return ll_fail(err, LL_ERR_FORMAT, "%s:%ld: \"%s\" is not a number", path, line, key);
    if (!isfinite(it->valuedouble))
        return ll_fail(err, LL_ERR_FORMAT, "%s:%ld: \"%s\" is not a finite number", path, line, key);
    *v = &it->valuedouble;
    return 0;
}

int ll_train_log_read(const char *path, const ll_log_query *q, ll_series *out, ll_error *err) {
    memset(out, 0, sizeof *out);
    if (!q || !q->y_key || !*q->y_key) return ll_fail(err, LL_ERR_ARG, "%s: no key to read", path);
    const char *x_key = q->x_key && *q->x_key ? q->x_key : "step";
    const int want_train = !q->eval || !strcmp(q->eval, "none");
    const int x_elapsed = !strcmp(x_key, "elapsed_s");
    FILE *f = fopen(path, "rb");
    if (!f) return ll_fail(err, LL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    reader r = {.out = out};
    char *buf = NULL;
    size_t bufcap = 0;
    long line = 0, n_selected = 0, n_with_y = 0;
    double last_train_step = -INFINITY, offset = 0;
    int rc = LL_OK;
    for (;;) {
        errno = 0;
        ssize_t len = getline(&buf, &bufcap, f);
        if (len < 0) {
            if (ferror(f)) rc = ll_fail(err, LL_ERR_IO, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
            break;
        }
        line++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = 0;
        if (strspn(buf, " \t") == (size_t)len) continue; /* blank line */
        if (strlen(buf) != (size_t)len) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s:%ld: malformed line (a NUL byte)", path, line);
            break;
        }
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithOpts(buf, &end, 1);
        if (!j || !cJSON_IsObject(j)) {
            if (j) rc = ll_fail(err, LL_ERR_FORMAT, "%s:%ld: not a JSON object", path, line);
            else
                rc = ll_fail(err, LL_ERR_FORMAT, "%s:%ld: malformed JSON (at column %ld)", path, line,
                             end && end >= buf && end <= buf + len ? (long)(end - buf) + 1 : 1L);
            cJSON_Delete(j);
            break;
        }
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "eval");
        const int is_train = ev == NULL;
        const double *step, *elapsed = NULL, *x, *y;
        if ((rc = get_number(j, "step", &step, path, line, err)) ||
            (is_train && (rc = get_number(j, "elapsed_s", &elapsed, path, line, err)))) {
            cJSON_Delete(j);
            break;
        }
        if (is_train && step) {
            if (*step <= last_train_step) {
                /* a resumed run: its lines replace the old ones from this step on */
                size_t k = 0;
                for (size_t i = 0; i < out->n; i++)
                    if (!(r.step[i] >= *step)) out->x[k] = out->x[i], out->y[k] = out->y[i], r.step[k] = r.step[i], k++;
                out->n = k;
                k = 0;
                for (size_t i = 0; i < r.t_n; i++)
                    if (r.t_step[i] < *step) r.t_step[k] = r.t_step[i], r.t_elapsed[k] = r.t_elapsed[i], k++;
                r.t_n = k;
                offset = k ? r.t_elapsed[k - 1] : 0;
            }
            last_train_step = *step;
            if (elapsed) {
                if (!grow(&r.t_step, r.t_n + 1, &r.t_cap, &r.t_elapsed, NULL)) {
                    rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
                    cJSON_Delete(j);
                    break;
                }
                r.t_step[r.t_n] = *step, r.t_elapsed[r.t_n] = *elapsed + offset, r.t_n++;
            }
        }
        const int selected = want_train ? is_train : cJSON_IsString(ev) && !strcmp(ev->valuestring, q->eval);
        if (!selected) {
            cJSON_Delete(j);
            continue;
        }
        n_selected += step != NULL; /* for the message: lines of this kind, not events */
        if ((rc = get_number(j, q->y_key, &y, path, line, err)) || (rc = get_number(j, x_key, &x, path, line, err))) {
            cJSON_Delete(j);
            break;
        }
        if (y) n_with_y++;
        double xv = x ? *x + (x_elapsed ? offset : 0) : NAN;
        if (!x && x_elapsed && step) /* an evaluation line: the time of its training step */
            for (size_t i = r.t_n; i-- > 0;)
                if (r.t_step[i] == *step) {
                    xv = r.t_elapsed[i];
                    break;
                }
        if (y && !isnan(xv)) {
            if (!grow(&out->x, out->n + 1, &out->cap, &out->y, &r.step)) {
                rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
                cJSON_Delete(j);
                break;
            }
            out->x[out->n] = xv, out->y[out->n] = *y, r.step[out->n] = step ? *step : NAN, out->n++;
        }
        cJSON_Delete(j);
    }
    fclose(f);
    free(buf);
    free(r.step);
    free(r.t_step);
    free(r.t_elapsed);
    if (!rc && out->n == 0) {
        char kind[160];
        if (want_train) snprintf(kind, sizeof kind, "training lines (without \"eval\")");
        else snprintf(kind, sizeof kind, "lines with \"eval\": \"%.100s\"", q->eval);
        if (n_with_y)
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: none of the %ld %s with \"%s\" has \"%s\"", path, n_with_y, kind,
                         q->y_key, x_key);
        else if (n_selected)
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: none of the %ld %s has \"%s\"", path, n_selected, kind, q->y_key);
        else
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: no %s to read \"%s\" from", path, kind, q->y_key);
    }
    if (rc) ll_series_free(out);
    return rc;
}
