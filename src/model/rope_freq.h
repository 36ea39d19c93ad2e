/* RoPE inverse frequencies from a model's configuration. */
#ifndef LL_MODEL_ROPE_FREQ_H
#define LL_MODEL_ROPE_FREQ_H

#include "lsllama.h"

/* inv_freq[cfg->head_dim / 2] from the config: base theta, then linear or
 * llama3 scaling (cfg->rope_scaling and its factors), then, when given, the
 * per-frequency divisors freq_divisors[head_dim / 2] (GGUF rope_freqs). The
 * kernels' ll_rope_tables turns them into cos/sin tables. */
void ll_rope_inv_freq(float *inv_freq, const ll_config *cfg, const float *freq_divisors);

#endif
