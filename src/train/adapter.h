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
 * A merged model folder (config.json + model.safetensors + tokenizer.json +
 * tokenizer_config.json + README.md) holds the base with W' = W + scale * B A
 * in every adapted projection plus the score head: a plain
 * LlamaForSequenceClassification for transformers (exact, or refused unless
 * allow_inexact: ll_merge_check), and a model lsllama's commands take with no
 * adapter (ll_merged_load).
 *
 * Every file is written to a temporary name and fsynced first; only when all
 * files of the folder are complete are they renamed over the old ones, so a
 * failed save leaves an earlier adapter or model in that folder intact. */
#ifndef LL_TRAIN_ADAPTER_H
#define LL_TRAIN_ADAPTER_H

#include "io/dtype.h"
#include "lsllama_tokenizer.h"
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
    int pad_token_id;            /* < 0: the tokenizer's EOS (transformers' convention for Llama classifiers,
                                    whose vocabularies have no pad), else the base config's EOS; none: null */
    const ll_tokenizer *tokenizer; /* the base's tokenizer: written as tokenizer.json + tokenizer_config.json;
                                      NULL: no tokenizer files (README.md says so; `lsllama merge` always gives
                                      one unless --allow-inexact and none can be loaded) */
    const char *tokenizer_source;  /* the path it was loaded from (a tokenizer.json is copied as it is) */
    int allow_inexact;           /* write a folder transformers computes differently, with the reasons in
                                    README.md and config.json's "lsllama_inexact" */
} ll_merge_options;

/* F32, pad id from the tokenizer, labels LABEL_i, the classifier's task, no
 * tokenizer, exact only. */
ll_merge_options ll_merge_options_default(void);

/* Why transformers (Llama/Mistral/Qwen2 For{Sequence,Token}Classification,
 * text-classification pipeline) would compute something other than c on the
 * merged folder; each reason names the setting and its value. */
#define LL_MERGE_MAX_REASONS 8
typedef struct ll_merge_report {
    int n;
    char reason[LL_MERGE_MAX_REASONS][320];
} ll_merge_report;

/* Fills rep (n = 0: the export is exact). Reasons, after transformers 5's
 * GenericForSequenceClassification / GenericForTokenClassification:
 *  - pooling other than last (transformers takes the logits of the rightmost
 *    token whose id is not pad_token_id);
 *  - bidirectional_from < n_layers (transformers' Llama is causal everywhere);
 *  - sequence task: a head bias with a non-zero entry (the score Linear has
 *    no bias; an all-zero bias is exact and not written);
 *  - sequence task: a tokenizer that appends the pad id (EOS) itself, so
 *    transformers would pool the token before it; no pad id at all
 *    (transformers refuses batches > 1);
 *  - single-label with one label (the pipeline applies a sigmoid);
 *  - a tokenizer with no exact tokenizer.json form (the message).
 * The token task writes score.bias (zeros when c has no bias), as
 * LlamaForTokenClassification's head has one. */
int ll_merge_check(const ll_classifier *c, const ll_merge_options *opt, ll_merge_report *rep, ll_error *err);

/* Write the merged model into out_dir (created if needed): config.json,
 * model.safetensors, README.md, and with a tokenizer tokenizer.json and
 * tokenizer_config.json. opt may be NULL. An inexact export (ll_merge_check)
 * fails with LL_ERR_UNSUPPORTED naming every reason unless allow_inexact. */
int ll_merge_save(const ll_classifier *c, const char *out_dir, const ll_merge_options *opt, ll_error *err);

/* 1 if path is a folder whose config.json names a *ForSequenceClassification
 * or *ForTokenClassification architecture (a merged model). */
int ll_merged_is_classifier(const char *path);

/* The classifier of a merged folder on base (loaded from the same folder):
 * task from the architecture, labels from id2label, problem_type,
 * lsllama's head settings from config.json's "lsllama" (pooling,
 * bidirectional_from; absent: transformers' last token, causal), score.weight
 * and score.bias (when present) as the head; no LoRA. info receives the
 * labels. */
int ll_merged_load(const char *dir, ll_model *base, ll_classifier **out, ll_adapter_info *info, ll_error *err);

/* Copy the score head (score.weight [K, dim], score.bias [K] when c has a
 * bias) of a Hugging Face checkpoint (a merged model folder) into c. */
int ll_classifier_load_head(ll_classifier *c, const char *path, ll_error *err);

#endif
