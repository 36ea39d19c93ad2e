/* Shared by test_merge_fidelity.c (stories260K) and test_merge_smollm2.c:
 * a classifier with random LoRA B / head, merged, checked against
 * transformers with tools/merge_parity.py. */
#ifndef LL_MERGE_FIDELITY_UTIL_H
#define LL_MERGE_FIDELITY_UTIL_H

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "lsllama_tokenizer.h"
#include "text/save_json.h"
#include "train/adapter.h"
#include "test_util.h"

/* run a shell command (printf-style); its exit status */
static inline int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    const int rc = system(cmd);
    if (rc) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static uint64_t rng_state = 12345;
static inline float rnd(float scale) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return scale * ((float)(rng_state >> 40) / (float)(1ull << 24) - 0.5f);
}

/* LoRA B != 0 (PEFT starts it at 0, so the adapter would not matter), a
 * larger head so the probabilities spread; the bias non-zero only when asked */
static inline void randomize(ll_classifier *c, int bias_nonzero) {
    for (size_t i = 0; i < c->n_views; i++) {
        const ll_param_view *v = &c->views[i];
        const int64_t n = v->rows * v->cols;
        if (strstr(v->name, "lora_B"))
            for (int64_t k = 0; k < n; k++) v->data[k] = rnd(0.2f);
        else if (!strcmp(v->name, "score.weight"))
            for (int64_t k = 0; k < n; k++) v->data[k] = rnd(1.0f);
        else if (!strcmp(v->name, "score.bias") && bias_nonzero)
            for (int64_t k = 0; k < n; k++) v->data[k] = rnd(1.0f);
    }
}

static inline int file_contains(const char *path, const char *needle) {
    char *text = test_read_file(path);
    const int yes = text && strstr(text, needle);
    free(text);
    return yes;
}

static inline int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Two `lsllama predict` outputs (sequence task): same texts and labels,
 * probabilities within tol. */
static inline int same_predictions(const char *a_path, const char *b_path, double tol) {
    char *a = test_read_file(a_path), *b = test_read_file(b_path);
    int ok = a && b, lines = 0;
    for (char *pa = a, *pb = b; ok && *pa && *pb; lines++) {
        char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
        if (!ea || !eb) break;
        *ea = *eb = 0;
        cJSON *ja = cJSON_Parse(pa), *jb = cJSON_Parse(pb);
        const cJSON *xa = cJSON_GetObjectItem(ja, "probabilities"), *xb = cJSON_GetObjectItem(jb, "probabilities");
        ok = xa && xb && cJSON_GetArraySize(xa) == cJSON_GetArraySize(xb) &&
             !strcmp(cJSON_GetObjectItem(ja, "text")->valuestring, cJSON_GetObjectItem(jb, "text")->valuestring);
        for (const cJSON *p = xa ? xa->child : NULL; ok && p; p = p->next) {
            const cJSON *q = cJSON_GetObjectItem(xb, p->string);
            ok = q && fabs(p->valuedouble - q->valuedouble) <= tol;
        }
        cJSON_Delete(ja);
        cJSON_Delete(jb);
        pa = ea + 1, pb = eb + 1;
    }
    free(a);
    free(b);
    return ok && lines > 0;
}

#endif
