/* RoPE inverse frequencies: the one place that interprets a config's RoPE
 * settings (the kernels only see the resulting tables). Each frequency is
 * computed in double and rounded to float once. */
#include "model/rope_freq.h"

#include <math.h>

void ll_rope_inv_freq(float *inv_freq, const ll_config *cfg, const float *freq_divisors) {
    const int half = cfg->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow((double)cfg->rope_theta, (2.0 * i) / (double)cfg->head_dim);
        if (cfg->rope_scaling == LL_ROPE_LINEAR) {
            f /= cfg->rope_factor;
        } else if (cfg->rope_scaling == LL_ROPE_LLAMA3) {
            /* Llama 3.1: long wavelengths are divided by factor, short ones
             * kept, and the band between interpolated smoothly. */
            const double old_ctx = cfg->rope_original_max_pos, lo = cfg->rope_low_freq_factor,
                         hi = cfg->rope_high_freq_factor, factor = cfg->rope_factor;
            const double wavelen = 2.0 * M_PI / f;
            if (wavelen > old_ctx / lo) {
                f = f / factor;
            } else if (wavelen >= old_ctx / hi) {
                const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
                f = (1.0 - smooth) * f / factor + smooth * f;
            }
        }
        if (freq_divisors) f /= freq_divisors[i];
        inv_freq[i] = (float)f;
    }
}
