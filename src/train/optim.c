#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ll_adamw_init(ll_adamw *o, size_t n, float beta1, float beta2, float eps, float weight_decay) {
    memset(o, 0, sizeof *o);
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay, o->n = n;
    o->m = calloc(n ? n : 1, sizeof(float));
    o->v = calloc(n ? n : 1, sizeof(float));
    return o->m && o->v;
}

void ll_adamw_free(ll_adamw *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

void ll_adamw_step(ll_adamw *o, float *p, const float *g, float lr) {
    o->t++;
    const double bc1 = 1.0 - pow(o->beta1, (double)o->t), bc2 = 1.0 - pow(o->beta2, (double)o->t);
    const float step = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), decay = 1.0f - lr * o->weight_decay;
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
#pragma omp parallel for schedule(static) if (o->n > 65536)
    for (size_t i = 0; i < o->n; i++) {
        p[i] *= decay;
        o->m[i] = b1 * o->m[i] + (1.0f - b1) * g[i];
        o->v[i] = b2 * o->v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * o->m[i] / (sqrtf(o->v[i]) / bc2_sqrt + eps);
    }
}

float ll_lr_linear(int64_t step, int64_t warmup, int64_t total, float base_lr) {
    if (step < warmup) return base_lr * (float)step / (float)(warmup > 1 ? warmup : 1);
    const double left = (double)(total - step) / (double)(total - warmup > 1 ? total - warmup : 1);
    return base_lr * (float)(left > 0 ? left : 0);
}

float ll_clip_grad_norm(float *g, size_t n, float max_norm) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    const float norm = (float)sqrt(ss);
    if (max_norm > 0) {
        const float scale = max_norm / (norm + 1e-6f);
        if (scale < 1.0f)
            for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    return norm;
}
