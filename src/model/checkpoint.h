/* A checkpoint: hyper-parameters plus a table of stored tensors under
 * canonical (Hugging Face Llama) names, whatever the file format and
 * architecture (the row of model/arch.h maps the file's names):
 *
 *   model.embed_tokens.weight                      [vocab, dim]
 *   model.layers.{i}.input_layernorm.weight        [dim]
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight  ([out, in], PyTorch order)
 *   model.layers.{i}.self_attn.{q,k,v}_proj.bias   (Qwen2; Llama attention_bias)
 *   model.layers.{i}.self_attn.o_proj.bias         (Llama attention_bias)
 *   model.layers.{i}.mlp.{gate,up,down}_proj.bias  (Llama mlp_bias)
 *   model.layers.{i}.post_attention_layernorm.weight
 *   model.layers.{i}.mlp.{gate,up,down}_proj.weight
 *   model.norm.weight, lm_head.weight (absent when tied)
 *   rope_freqs.weight                               (GGUF per-frequency divisors)
 *
 * GGUF and llama2.c store q/k rows for interleaved-pair RoPE; such tensors
 * carry rope_interleaved = 1 and the model loader permutes them to the
 * rotate-half layout used internally. */
#ifndef LL_MODEL_CHECKPOINT_H
#define LL_MODEL_CHECKPOINT_H

#include <stdint.h>

#include "io/dtype.h"
#include "lsllama.h"

typedef struct ll_tensor_info {
    char *name;             /* canonical name */
    char *stored_name;      /* name in the file */
    const char *dtype_name; /* stored type as the file names it */
    ll_dtype dtype;         /* LL_DTYPE_INVALID when we cannot load it */
    int ndim;
    int64_t shape[8];       /* PyTorch order: outermost first */
    uint64_t n_elems;
    const void *data;
    uint64_t nbytes;
    const char *file;       /* path of the file holding it */
    int rope_interleaved;
} ll_tensor_info;

typedef struct ll_checkpoint ll_checkpoint;
struct ll_arch;

int ll_checkpoint_open(ll_checkpoint **out, const char *path, ll_error *err);
/* The same, knowing the rows of extra_archs (NULL-terminated, may be NULL)
 * besides the built-in architectures (model/arch.h); the rows must outlive
 * the checkpoint. */
int ll_checkpoint_open_archs(ll_checkpoint **out, const char *path, const struct ll_arch *const *extra_archs,
                             ll_error *err);
void ll_checkpoint_close(ll_checkpoint *c);
/* Build a checkpoint from an already parsed GGUF file (fuzzers, in-memory
 * files); takes ownership of g on success and failure alike. */
struct ll_gguf_file;
int ll_checkpoint_from_gguf(ll_checkpoint **out, struct ll_gguf_file *g, ll_error *err);

const ll_config *ll_checkpoint_config(const ll_checkpoint *c);
const char *ll_checkpoint_format(const ll_checkpoint *c); /* "gguf", "safetensors", "llama2c" */
const char *ll_checkpoint_path(const ll_checkpoint *c);
/* The architecture row the checkpoint was read with. */
const struct ll_arch *ll_checkpoint_arch(const ll_checkpoint *c);
size_t ll_checkpoint_n_tensors(const ll_checkpoint *c);
const ll_tensor_info *ll_checkpoint_tensor(const ll_checkpoint *c, size_t i);
const ll_tensor_info *ll_checkpoint_find(const ll_checkpoint *c, const char *name);
/* The name a tensor has (or would have) in the file, for error messages:
 * differs from the canonical name for GGUF ("blk.0.attn_q.weight"). Returns
 * name itself, a stored name, or buf. */
const char *ll_checkpoint_stored_name(const ll_checkpoint *c, const char *name, char *buf, size_t cap);

/* Metadata lines for `inspect` (GGUF keys, config.json fields); may be NULL. */
typedef void (*ll_meta_visitor)(void *ctx, const char *key, const char *value);
void ll_checkpoint_visit_metadata(const ll_checkpoint *c, ll_meta_visitor fn, void *ctx);

/* The ll_activation for a transformers hidden_act name (ACT2FN key), or -1
 * for a name this engine does not compute. */
int ll_activation_from_name(const char *name);

/* Check a config for consistency (positive sizes, heads dividing, ...). */
int ll_config_validate(const ll_config *cfg, const char *path, ll_error *err);

#endif
