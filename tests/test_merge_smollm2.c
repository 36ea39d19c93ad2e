/* `merge` on the real default model, SmolLM2-135M-Instruct (Q4_1 GGUF, a
 * byte-level BPE tokenizer in the GGUF): the folder's tokenizer.json reads
 * SST-2 dev and edge strings id for id as lsllama reads the GGUF (tokenizers
 * and transformers' AutoTokenizer), and transformers' text-classification
 * pipeline on the merged folder (LoRA on q/v with random B, one batch of 8
 * SST-2 dev sentences of mixed lengths) gives `lsllama predict FOLDER`'s
 * labels and probabilities within 1e-4. The base's quantized matrices are
 * written exactly: the gguf package's dequantization, rounded to bf16 by
 * default (a quantized base), bit-equal in f32 with --dtype f32.
 * Skipped when the model is absent. */
// LL_TEST_LABELS: slow
#include "merge_fidelity_util.h"

#define SST2_DEV LL_SHARED_DIR "/data/sst2/dev.tsv"
#define PARITY "python3 " LL_SOURCE_DIR "/tools/merge_parity.py"

static char tmp[] = "/tmp/lsllama_merge_smol_XXXXXX";

int main(void) {
    char model[1024];
    snprintf(model, sizeof model, "%s/.cache/lsllama/models/SmolLM2-135M-Instruct.Q4_1.gguf",
             getenv("HOME") ? getenv("HOME") : "");
    if (!exists(model)) {
        printf("test_merge_smollm2: %s absent, skipped\n", model);
        return 0;
    }
    REQUIRE(mkdtemp(tmp));
    ll_error err = {0};
    ll_model *m;
    ll_tokenizer *tok;
    REQUIRE(ll_model_load(&m, model, NULL, &err) == 0);
    REQUIRE(ll_tokenizer_load(&tok, model, &err) == 0);
    const ll_config *p = ll_model_config(m);
    ll_classifier_config cc = {.n_labels = 2, .pool = LL_POOL_LAST, .bidirectional_from = p->n_layers, .lora_r = 4,
                               .lora_alpha = 8, .lora_targets = (1u << LL_LORA_Q) | (1u << LL_LORA_V)};
    ll_classifier *c;
    REQUIRE(ll_classifier_create(&c, m, &cc, 3, &err) == 0);
    randomize(c, 0);
    char merged[600];
    snprintf(merged, sizeof merged, "%s/merged", tmp);
    ll_merge_options o = ll_merge_options_default();
    o.tokenizer = tok;
    o.tokenizer_source = model;
    CHECK_MSG(ll_merge_save(c, merged, &o, &err) == 0, "%s", err.message);
    REQUIRE(sh("tail -n +2 %s | cut -f1 | awk 'NR%%9==1' | head -8 > %s/eight.txt", SST2_DEV, tmp) == 0);
    REQUIRE(sh("(tail -n +2 %s | cut -f1; printf 'hello  world\\n  8 in  8\\n<|im_end|> x\\ncaf\\303\\251 \\360\\237\\244\\227\\n"
               "\\302\\275 \\302\\276\\n') > %s/texts.txt", SST2_DEV, tmp) == 0);
    CHECK(sh("%s tokenize %s < %s/texts.txt > %s/ids.txt", LL_CLI_PATH, model, tmp, tmp) == 0);
    CHECK_MSG(sh("%s tokenizer %s %s/texts.txt %s/ids.txt", PARITY, merged, tmp, tmp) == 0,
              "SmolLM2 GGUF: the written tokenizer.json tokenizes differently");
    CHECK_MSG(sh("python3 %s/tools/check_merged_dequant.py %s %s BF16", LL_SOURCE_DIR, model, merged) == 0,
              "default merge of a quantized base: not bf16 of the exact dequantized weights");
    char merged32[600];
    snprintf(merged32, sizeof merged32, "%s/merged32", tmp);
    o.dtype = LL_MERGE_F32;
    CHECK_MSG(ll_merge_save(c, merged32, &o, &err) == 0, "%s", err.message);
    CHECK_MSG(sh("python3 %s/tools/check_merged_dequant.py %s %s F32", LL_SOURCE_DIR, model, merged32) == 0,
              "merge --dtype f32 of a quantized base: not the exact dequantized weights");
    CHECK(sh("%s predict %s --input %s/eight.txt --no-progress > %s/pred.jsonl", LL_CLI_PATH, merged, tmp, tmp) == 0);
    CHECK_MSG(sh("%s seq %s %s/eight.txt %s/pred.jsonl", PARITY, merged, tmp, tmp) == 0,
              "transformers' pipeline disagrees with lsllama predict on the merged SmolLM2");
    ll_classifier_free(c);
    ll_tokenizer_free(tok);
    ll_model_free(m);
    if (!test_failures_) sh("rm -rf %s", tmp);
    return test_summary("test_merge_smollm2");
}
