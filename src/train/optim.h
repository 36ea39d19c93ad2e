/* AdamW with decoupled weight decay (as torch.optim.AdamW), linear warm-up
 * and decay schedule (transformers' get_linear_schedule_with_warmup), and
 * global-norm gradient clipping (torch.nn.utils.clip_grad_norm_). */
#ifndef LL_TRAIN_OPTIM_H
#define LL_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct ll_adamw {
    float beta1, beta2, eps, weight_decay;
    size_t n;
    float *m, *v; /* moments, n each */
    int64_t t;    /* steps taken */
} ll_adamw;

int ll_adamw_init(ll_adamw *o, size_t n, float beta1, float beta2, float eps, float weight_decay);
void ll_adamw_free(ll_adamw *o);
void ll_adamw_step(ll_adamw *o, float *params, const float *grads, float lr);

/* Learning rate at `step` (0-based) for a linear warm-up over `warmup`
 * steps then linear decay to 0 at `total`. */
float ll_lr_linear(int64_t step, int64_t warmup, int64_t total, float base_lr);

/* Scale grads so their global L2 norm is at most max_norm (scale =
 * max_norm / (norm + 1e-6) when below 1). Returns the norm before clipping.
 * max_norm <= 0 only measures. */
float ll_clip_grad_norm(float *grads, size_t n, float max_norm);

#endif
