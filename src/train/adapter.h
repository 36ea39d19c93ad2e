/* PEFT-compatible LoRA adapters and merged Hugging Face models.
 *
 * An adapter folder, as PEFT 0.21 reads and writes it:
 *
 *   adapter_config.json        peft_type LORA, task_type SEQ_CLS (or TOKEN_CLS), r, lora_alpha, lora_dropout,
 *                              target_modules, modules_to_save ["score"] (TOKEN_CLS: ["classifier", "score"],
 *                              as PEFT writes it), use_rslora, base_model_name_or_path...
 *   adapter_model.safetensors  base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
 *                              base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
 *                              base_model.model.score.weight [K, dim] (and .bias when the head has one)
 *                              lora_A [r, in], lora_B [out, r], float32
 *   label_map.json             (lsllama) {"id2label": {"0": ...}, "label2id": {...}, "num_labels": K,
 *                              "problem_type": ..., "lsllama": {"pooling", "bidirectional_from", "head_bias"}}
 *
 * transformers takes num_labels (and id2label/label2id) from the base's
 * config.json, not from the adapter: load with
 *   AutoModelForSequenceClassification.from_pretrained(base, num_labels=K, id2label=..., label2id=...)
 *   PeftModel.from_pretrained(model, adapter_dir)
 * taking K and the names from label_map.json (tools/interop_peft.py does this).
 *
 * A merged model folder (config.json + model.safetensors) holds the base with
 * W' = W + scale * B A in every adapted projection plus the score head: a
 * plain LlamaForSequenceClassification for transformers, and a checkpoint
 * ll_model_load reads (with ll_classifier_load_head for the head).
 *
 * Every file is written to a temporary name and fsynced first; only when all
 * files of the folder are complete are they renamed over the old ones, so a
 * failed save leaves an earlier adapter or model in that folder intact. */
#ifndef LL_TRAIN_ADAPTER_H
#define LL_TRAIN_ADAPTER_H

#include "io/dtype.h"
#include "train/classifier.h"

#define LL_ADAPTER_CONFIG_FILE "adapter_config.json"
#define LL_ADAPTER_WEIGHTS_FILE "adapter_model.safetensors"
#define LL_ADAPTER_LABELS_FILE "label_map.json"

typedef struct ll_adapter_meta {
    const char *base_model_name_or_path; /* NULL: written as null */
    const char *const *id2label;         /* n_labels names; NULL: "LABEL_0", "LABEL_1", ... */
    const char *task_type;               /* NULL: "SEQ_CLS"; "TOKEN_CLS" for token classification */
} ll_adapter_meta;

/* Write c's LoRA weights and head as a PEFT adapter into dir (created, with
 * parents, if needed). meta may be NULL. */
int ll_adapter_save(const ll_classifier *c, const char *dir, const ll_adapter_meta *meta, ll_error *err);

typedef struct ll_adapter_info {
    char task_type[16];            /* "SEQ_CLS", "TOKEN_CLS" */
    char *base_model_name_or_path; /* NULL when absent or null */
    int n_labels;
    char **id2label;               /* [n_labels]; "LABEL_i" without a label map */
    int has_label_map;             /* label_map.json was found */
} ll_adapter_info;

void ll_adapter_info_free(ll_adapter_info *info);

/* Read the adapter in dir (written by lsllama or PEFT) onto base and create
 * a classifier holding it. The LoRA settings, n_labels and head_bias come
 * from the files; pooling, bidirectional_from and multi_label from head when
 * given, else from label_map.json, else LS-LLaMA's defaults (last token,
 * causal, single-label). info (optional) receives the labels and metadata.
 * Errors name the file and key: LL_ERR_IO (missing file), LL_ERR_FORMAT
 * (malformed JSON, unexpected tensor key), LL_ERR_CONFIG (bad or unknown
 * setting, unknown target module, r < 1), LL_ERR_UNSUPPORTED (DoRA, biases,
 * rank patterns...), LL_ERR_SHAPE (missing tensor, shape not fitting base). */
int ll_adapter_load(const char *dir, ll_model *base, const ll_classifier_config *head, ll_classifier **out,
                    ll_adapter_info *info, ll_error *err);

typedef struct ll_merge_options {
    const char *const *id2label; /* n_labels names; NULL: "LABEL_0", ... */
    const char *task_type;       /* "SEQ_CLS": *ForSequenceClassification; "TOKEN_CLS": *ForTokenClassification;
                                    NULL: the classifier's (cfg.token_task); one that does not fit it is an error */
    ll_dtype dtype;              /* LL_DTYPE_F32, LL_DTYPE_F16 or LL_DTYPE_BF16 */
    int pad_token_id;            /* < 0: none (null) */
} ll_merge_options;

/* F32, no pad id, labels LABEL_i, the classifier's task. */
ll_merge_options ll_merge_options_default(void);

/* Write the merged model into out_dir (created if needed). opt may be NULL. */
int ll_merge_save(const ll_classifier *c, const char *out_dir, const ll_merge_options *opt, ll_error *err);

/* Copy the score head (score.weight [K, dim], score.bias [K] when c has a
 * bias) of a Hugging Face checkpoint (a merged model folder) into c. */
int ll_classifier_load_head(ll_classifier *c, const char *path, ll_error *err);

#endif
