/* lsllama: label-supervised fine-tuning of LLaMA-family models, in C.
 *
 * Public API (this header: models and the forward pass; lsllama_tokenizer.h;
 * lsllama_train.h: datasets, training, evaluation, prediction, adapters).
 * Handles are opaque; every fallible call returns 0 on success or a negative
 * ll_status and fills an ll_error (may be NULL) with a message naming the
 * file, tensor, key or line at fault. The library never exits the process
 * and never prints. Pointer arguments must not be NULL unless the comment of
 * the call says so (the ll_error, optional outputs); a NULL the comment does
 * not allow is a programming error, not a checked one.
 *
 * State and threads. The library has no mutable global state that one call
 * leaves for another to see; what it keeps is:
 *  - per handle, grown on first use and reused (never shrunk until *_free):
 *    an ll_model's forward workspace (activations and attention scratch, sized
 *    for the largest batch seen), an ll_classifier's activation and gradient
 *    buffers, an ll_tokenizer's cache of encoded pre-tokens and BPE scratch;
 *  - per OS thread: the matrix kernels' packing buffers (allocated on a
 *    thread's first product, freed when the thread exits);
 *  - OpenMP: the forward and backward passes run on the calling thread's
 *    OpenMP team (OMP_NUM_THREADS / omp_set_num_threads), and OpenBLAS's
 *    threads with it;
 *  - ll_error: the caller's own struct, filled only by the call it was passed to.
 * So a call mutates its handle even when it only reads from the caller's
 * view: ll_forward writes the model's workspace, ll_tokenizer_encode and
 * ll_tokenizer_align_words the tokenizer's cache, and training, evaluation and
 * prediction the classifier and the model under it. Calls on different
 * handles may run concurrently; calls on one handle (or on classifiers that
 * share one model) must not: give each concurrent worker its own model (and
 * tokenizer), or serialize them. Read-only calls (ll_model_config,
 * ll_model_format, ll_tokenizer_decode, ll_tokenizer_piece and the other
 * const-handle getters) may run concurrently with each other. */
#ifndef LSLLAMA_H
#define LSLLAMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything this header declares is liblsllama.so's public interface: the library is compiled with
 * -fvisibility=hidden, and these declarations alone are exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

typedef enum ll_status {
    LL_OK = 0,
    LL_ERR_IO = -1,          /* cannot open / read / map / write a file */
    LL_ERR_FORMAT = -2,      /* malformed or truncated file contents */
    LL_ERR_UNSUPPORTED = -3, /* valid file, feature we do not handle (dtype, arch) */
    LL_ERR_SHAPE = -4,       /* tensor missing or of the wrong shape */
    LL_ERR_CONFIG = -5,      /* inconsistent hyper-parameters */
    LL_ERR_NOMEM = -6,
    LL_ERR_ARG = -7,         /* bad argument from the caller (ids out of range, ...) */
} ll_status;

typedef struct ll_error {
    int code;            /* an ll_status */
    char message[1024];  /* human-readable, names the file/tensor/key */
} ll_error;

const char *ll_status_name(int code);

/* This library's version, "MAJOR.MINOR.PATCH" (CMake's project version; the Python package's __version__). */
const char *ll_version(void);

/* 0 when this CPU has every instruction-set extension this build of the library was compiled to use (a build with
 * the CMake option LL_NATIVE, the default, uses the building machine's: -march=native); else LL_ERR_UNSUPPORTED
 * with err naming the CPU and the missing extensions (as /proc/cpuinfo spells them). Runs on any x86-64 CPU: call
 * it before any other call when the library may have been built elsewhere (the Python package and the lsllama
 * tool do, on load and at start). The matrix kernels' own instruction sets are chosen at run time and need no
 * check. */
int ll_cpu_check(ll_error *err);

/* ---- model ---------------------------------------------------------------- */

typedef enum ll_rope_scaling {
    LL_ROPE_NONE = 0,
    LL_ROPE_LINEAR = 1,
    LL_ROPE_LLAMA3 = 2,
} ll_rope_scaling;

/* The MLP activation act in down(act(gate(x)) * up(x)), transformers' hidden_act
 * (ACT2FN): silu/swish x sigmoid(x); gelu 0.5 x (1 + erf(x / sqrt 2));
 * gelu_pytorch_tanh/gelu_new 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
 * relu max(x, 0). */
typedef enum ll_activation {
    LL_ACT_SILU = 0,
    LL_ACT_GELU = 1,
    LL_ACT_GELU_TANH = 2,
    LL_ACT_RELU = 3,
} ll_activation;

/* Most layers a model may have (config.json num_hidden_layers, GGUF block_count). */
#define LL_MAX_LAYERS 1024

typedef struct ll_config {
    char arch[32];        /* "llama", "mistral", "qwen2", ... */
    int dim;              /* hidden size */
    int hidden_dim;       /* FFN intermediate size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;         /* usually dim / n_heads */
    int vocab_size;
    int max_seq_len;      /* context length from the checkpoint */
    float rope_theta;
    float rms_eps;
    int rope_scaling;     /* ll_rope_scaling */
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int rope_original_max_pos;
    int tied_embeddings;  /* LM head shares the token embedding */
    int qkv_bias;         /* biases on q/k/v projections (Qwen2; Llama attention_bias) */
    int o_bias;           /* bias on o_proj (Llama attention_bias) */
    int mlp_bias;         /* biases on gate/up/down projections (Llama mlp_bias) */
    int hidden_act;       /* ll_activation */
    char hidden_act_name[24]; /* the checkpoint's spelling ("silu", "gelu_new", ...) */
    int sliding_window;   /* attention window W of the sliding layers, 0 = none. A causal sliding layer lets
                           * query q see key k iff q - W < k <= q (transformers' sliding_window_overlay); a
                           * bidirectional one, in Gemma 3 (use_bidirectional_attention), iff |q - k| < W / 2 + 1
                           * (integer division); other architectures define no bidirectional window, so their
                           * bidirectional sliding layers refuse sequences longer than W */
    int bos_token_id, eos_token_id; /* -1 if unknown */
    /* Gemma 3 and later (0 for the Llama family: its behaviour) */
    float query_pre_attn_scalar; /* attention scores scaled by its -1/2 power; 0: head_dim (1 / sqrt(head_dim)) */
    float rope_local_theta;      /* RoPE base of the sliding layers (Gemma 3 rope_local_base_freq, unscaled);
                                  * 0: the sliding layers use rope_theta and its scaling as the others */
    uint64_t sliding_layers[LL_MAX_LAYERS / 64]; /* bit l set: layer l is a sliding layer (window above) */
    int use_bidirectional_attention; /* config.json says every layer is bidirectional (Gemma 3, as lsllama merge
                                      * writes classifiers bidirectional in every layer): forward passes with a
                                      * causal layer (bidirectional_from > 0) are refused */
} ll_config;

/* 1 if layer l of p is a sliding-window layer (p->sliding_window > 0 and its bit set). */
int ll_config_layer_sliding(const ll_config *p, int l);
/* The bidirectional_from of a run that asks for no mask: p->n_layers (causal in every layer), or 0 when
 * config.json sets use_bidirectional_attention (every layer bidirectional: the only pass such a model has). */
int ll_config_default_bidirectional_from(const ll_config *p);

typedef struct ll_model ll_model;

/* How the frozen weight matrices are kept in memory (vectors: norms and
 * biases, are always f32):
 *  - STORED: in the checkpoint's own type (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
 *    Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), read from the memory-mapped file where
 *    its layout allows (GGUF and llama2.c q/k rows are reordered for RoPE,
 *    so those two matrices are copied, still in their type). Products
 *    dequantize while packing; results are bit-identical to F32.
 *  - BF16, Q8_0: matrices stored as F32/F16/BF16 are converted once at load
 *    (as the gguf package converts: bf16 rounded to nearest even; Q8_0 as
 *    llama.cpp's quantize_row_q8_0); quantized matrices stay as stored, and
 *    so do matrices whose rows are not whole Q8_0 blocks (32 values).
 *  - F32: every matrix converted to f32 (the memory of lsllama <= 0.5). */
typedef enum ll_base_precision {
    LL_BASE_STORED = 0,
    LL_BASE_BF16,
    LL_BASE_Q8_0,
    LL_BASE_F32,
} ll_base_precision;
/* "stored", "bf16", "q8_0", "f32": parse returns 0 and sets *out, or
 * LL_ERR_ARG for another name; name returns NULL out of range. */
int ll_base_precision_parse(const char *name, ll_base_precision *out);
const char *ll_base_precision_name(ll_base_precision p);

/* The arithmetic of the products by the frozen matrices (forward x W^T and
 * the input gradient dy W; the LoRA factors, head, attention, norms,
 * optimiser and every reduction stay f32):
 *  - F32: f32 operands and accumulation (the default).
 *  - BF16: both operands rounded to bf16 (nearest even) while the product
 *    packs them, f32 accumulation: AMX-BF16 tiles where the CPU and OS allow
 *    them, else AVX512-BF16's vdpbf16ps; refused (LL_ERR_UNSUPPORTED) on a
 *    CPU with neither. A matrix stored as BF16 is packed unchanged. */
typedef enum ll_compute {
    LL_COMPUTE_F32 = 0,
    LL_COMPUTE_BF16,
} ll_compute;
/* "f32", "bf16": parse returns 0 and sets *out, or LL_ERR_ARG for another
 * name; name returns NULL out of range. */
int ll_compute_parse(const char *name, ll_compute *out);
const char *ll_compute_name(ll_compute c);
/* 0 when this CPU can run products in c, else LL_ERR_UNSUPPORTED with err
 * naming the CPU and the instructions it lacks. */
int ll_compute_check(ll_compute c, ll_error *err);
/* The kernel that runs the frozen-weight products in c: "avx512", "avx2",
 * "c" (F32), "amx_bf16", "avx512_bf16" (BF16) or "none". */
const char *ll_compute_kernel(ll_compute c);

typedef struct ll_load_options {
    int with_lm_head;                 /* also keep an output projection (only generation needs it) */
    ll_base_precision base_precision; /* LL_BASE_STORED (0) unless set */
    ll_compute compute;               /* LL_COMPUTE_F32 (0) unless set; checked by ll_compute_check */
} ll_load_options;

/* Load a checkpoint: a GGUF file, a llama2.c .bin file, a .safetensors file
 * (with config.json beside it) or a Hugging Face directory (config.json +
 * model.safetensors or sharded model-XXXXX-of-YYYYY.safetensors). The format
 * is chosen from the path and the file's magic. Weight matrices are kept as
 * opt->base_precision says (NULL opt: as stored); the model keeps the file
 * mapped until ll_model_free. */
int ll_model_load(ll_model **out, const char *path, const ll_load_options *opt, ll_error *err);
void ll_model_free(ll_model *m);
const ll_config *ll_model_config(const ll_model *m);
/* "gguf", "safetensors", "llama2c" */
const char *ll_model_format(const ll_model *m);
/* The precision the model's matrices were loaded in. */
ll_base_precision ll_model_base_precision(const ll_model *m);
/* The arithmetic of its frozen-weight products (ll_load_options.compute). */
ll_compute ll_model_compute(const ll_model *m);
/* Bytes of weights resident per element type, for `inspect` and logs: for
 * each i < n with a nonzero size, names[i] ("Q4_1", "F32", ...) and bytes[i];
 * mapped[i] (may be NULL) those of them read from the file mapping. Returns
 * the number of types written (n at most). */
int ll_model_resident(const ll_model *m, const char **names, size_t *bytes, size_t *mapped, int n);

/* ---- forward -------------------------------------------------------------- */

typedef enum ll_pool { LL_POOL_LAST = 0, LL_POOL_MEAN, LL_POOL_MAX, LL_POOL_FIRST } ll_pool;
typedef enum ll_mask { LL_MASK_CAUSAL = 0, LL_MASK_BIDIRECTIONAL = 1 } ll_mask;

/* The one list of pooling names ("last", "mean", "max", "first") and of mask
 * names ("causal", "bidirectional"), shared by the CLI, the adapter files and
 * callers: *_parse returns 0 and sets *out, or LL_ERR_ARG (out unchanged) for
 * a name not in the list; *_name returns the name, NULL out of range. */
int ll_pool_parse(const char *name, ll_pool *out);
const char *ll_pool_name(ll_pool p);
int ll_mask_parse(const char *name, ll_mask *out);
const char *ll_mask_name(ll_mask m);

/* A packed batch: the token ids of n_seqs sequences laid end to end, no
 * padding. seq_start has n_seqs+1 entries; sequence s is
 * tokens[seq_start[s] .. seq_start[s+1]). Positions restart at 0 per sequence. */
typedef struct ll_batch {
    const int32_t *tokens;
    const int32_t *seq_start;
    int n_seqs;
} ll_batch;

/* Attention mask per layer: causal for layers < bidirectional_from, full
 * (bidirectional within each sequence) for layers >= bidirectional_from.
 * bidirectional_from = n_layers (or any larger value) is plain causal;
 * 0 is fully bidirectional. */
typedef struct ll_forward_options {
    int bidirectional_from;
} ll_forward_options;

/* Run the model. hidden (optional) receives the final-norm hidden states,
 * [total_tokens, dim] row-major. pooled (optional) receives [n_seqs, dim]
 * pooled by `pool`. logits (optional, needs with_lm_head) receives
 * [n_seqs, vocab] for the last token of each sequence. */
typedef struct ll_forward_outputs {
    float *hidden;
    float *pooled;
    ll_pool pool;
    float *logits_last;
} ll_forward_outputs;

int ll_forward(ll_model *m, const ll_batch *batch, const ll_forward_options *opt,
               ll_forward_outputs *out, ll_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
