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
#include "lsllama_train.h"
#include "train/classifier.h"

#define LL_ADAPTER_CONFIG_FILE "adapter_config.json"
#define LL_ADAPTER_WEIGHTS_FILE "adapter_model.safetensors"
#define LL_ADAPTER_LABELS_FILE "label_map.json"

/* ll_adapter_meta, ll_adapter_save, ll_adapter_info, ll_adapter_load, ll_merge_options and the merge
 * calls below: declared in include/lsllama_train.h. */

/* ll_merge_check fills rep (n = 0: the export is exact) with why transformers
 * (Llama/Mistral/Qwen2 For{Sequence,Token}Classification, text-classification
 * pipeline) would compute something other than c, each reason naming the
 * setting and its value. Reasons, after transformers 5's
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

/* Copy the score head (score.weight [K, dim], score.bias [K] when c has a
 * bias) of a Hugging Face checkpoint (a merged model folder) into c. */
int ll_classifier_load_head(ll_classifier *c, const char *path, ll_error *err);

struct cJSON;
/* bp (may be NULL) as a base precision: 1 and *out set, 0 when bp is NULL,
 * LL_ERR_CONFIG naming path and key for any other value. */
int ll_base_precision_from_json(const struct cJSON *bp, const char *path, const char *key, ll_base_precision *out,
                                ll_error *err);

#endif
