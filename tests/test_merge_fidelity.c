/* `merge` is exact or refused (issue 11, faults 3 and 4), on stories260K
 * (llama2.c checkpoint + tok512.bin):
 *  - every train option that changes the computation, as a classifier with
 *    random LoRA B and head: the exact ones (last token, causal, q/v or all
 *    seven targets, rsLoRA, head-only, multi-label, an all-zero head bias, a
 *    causal token task with and without bias) are written, and transformers'
 *    pipeline on the folder (one batch of 8 SST-2 dev sentences of mixed
 *    lengths, right padding with the folder's pad id) gives `lsllama predict
 *    FOLDER`'s labels and probabilities within 1e-4 (tools/merge_parity.py);
 *    the inexact ones (mean/max/first pooling, bidirectional from layer 0 or
 *    3, a non-zero sequence head bias, a bidirectional token task) are
 *    refused naming the setting, and with allow_inexact written with the
 *    reason in README.md and config.json's lsllama_inexact, and `lsllama
 *    predict FOLDER` still computes the classifier (= predict with the
 *    adapter, 1e-5);
 *  - the folder is complete: pad_token_id set, tokenizer.json that
 *    `tokenizers` and transformers' AutoTokenizer read id for id as lsllama
 *    reads tok512.bin (SST-2 dev + edge strings); the Llama 2 tokenizer.model
 *    written the same way;
 *  - the CLI: `merge` refuses a mean-pooled adapter (exit 1, the reason on
 *    stderr), --allow-inexact writes it; `eval FOLDER` equals `eval --adapter`;
 *    `embed FOLDER --text` runs on the folder's own tokenizer. */
#include "merge_fidelity_util.h"

#define MODEL LL_SHARED_DIR "/models/stories260K/stories260K.bin"
#define TOKENIZER LL_SHARED_DIR "/models/stories260K/tok512.bin"
#define LLAMA2_TOK LL_SHARED_DIR "/models/llama2-tokenizer/tokenizer.model"
#define SST2_DEV LL_SHARED_DIR "/data/sst2/dev.tsv"
#define PARITY "python3 " LL_SOURCE_DIR "/tools/merge_parity.py"

static char tmp[] = "/tmp/lsllama_merge_fid_XXXXXX";

typedef struct merge_case {
    const char *name;
    ll_classifier_config cc;
    int bias_nonzero;
    const char *refused; /* NULL: exact; else what the refusal must name */
} merge_case;

static const char *const EDGE[] = {
    "hello  world", "  leading spaces", "trailing  ", "<s> </s> <unk>", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
    "\xf0\x9f\xa4\x97", "\ttab", " a", "aaaaaaaaaa bbbbbbbb", "12345 \xc2\xbd", "x", "!!!???...", "don't can't",
    "\xe2\x96\x81 lower one eighth", "a\xc2\xa0" "b",
};

static void run_case(ll_model *m, ll_tokenizer *tok, const merge_case *k) {
    ll_error err = {0};
    ll_classifier *c;
    REQUIRE(ll_classifier_create(&c, m, &k->cc, 7, &err) == 0);
    randomize(c, k->bias_nonzero);
    char dir[600], adapter[700], merged[700], cfg[800], readme[800];
    snprintf(dir, sizeof dir, "%s/%s", tmp, k->name);
    snprintf(adapter, sizeof adapter, "%s/adapter", dir);
    snprintf(merged, sizeof merged, "%s/merged", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", merged);
    snprintf(readme, sizeof readme, "%s/README.md", merged);
    REQUIRE(ll_adapter_save(c, adapter, NULL, &err) == 0);
    ll_merge_options o = ll_merge_options_default();
    o.tokenizer = tok;
    o.tokenizer_source = TOKENIZER;
    ll_merge_report rep;
    REQUIRE(ll_merge_check(c, &o, &rep, &err) == 0);
    const int rc = ll_merge_save(c, merged, &o, &err);
    const char *task = k->cc.token_task ? "token" : "seq";
    if (!k->refused) {
        CHECK_MSG(rc == 0 && rep.n == 0, "%s: exact classifier not written: %s", k->name, rc ? err.message : rep.reason[0]);
        if (rc) goto done;
        CHECK_MSG(file_contains(cfg, "\"pad_token_id\": 2") && exists(readme), "%s: config/README incomplete", k->name);
        CHECK_MSG(!file_contains(cfg, "lsllama_inexact"), "%s: exact folder marked inexact", k->name);
        /* transformers' pipeline on the folder = lsllama predict on the folder */
        CHECK_MSG(sh("%s predict %s --input %s/eight.txt --no-progress > %s/pred.jsonl", LL_CLI_PATH, merged, tmp,
                     dir) == 0, "%s: predict on the merged folder failed", k->name);
        CHECK_MSG(sh("%s %s %s %s/eight.txt %s/pred.jsonl > %s/parity.out 2>&1 || (cat %s/parity.out; false)", PARITY,
                     task, merged, tmp, dir, dir, dir) == 0,
                  "%s: transformers disagrees with lsllama on the merged folder", k->name);
    } else {
        CHECK_MSG(rc == LL_ERR_UNSUPPORTED && strstr(err.message, k->refused), "%s: not refused naming '%s' (rc %d: %s)",
                  k->name, k->refused, rc, err.message);
        CHECK_MSG(!exists(merged), "%s: a refused merge left a folder", k->name);
        int named = 0;
        for (int i = 0; i < rep.n; i++) named |= strstr(rep.reason[i], k->refused) != NULL;
        CHECK_MSG(named, "%s: ll_merge_check does not name '%s'", k->name, k->refused);
        o.allow_inexact = 1;
        CHECK_MSG(ll_merge_save(c, merged, &o, &err) == 0, "%s: allow_inexact: %s", k->name, err.message);
        CHECK_MSG(file_contains(cfg, "lsllama_inexact") && file_contains(cfg, k->refused),
                  "%s: config.json does not record '%s'", k->name, k->refused);
        CHECK_MSG(file_contains(readme, k->refused), "%s: README.md does not record '%s'", k->name, k->refused);
        if (!k->cc.token_task) { /* lsllama itself still computes the trained classifier from the folder */
            CHECK(sh("%s predict %s --input %s/eight.txt --no-progress > %s/pred.jsonl", LL_CLI_PATH, merged, tmp,
                     dir) == 0);
            CHECK(sh("%s predict %s --tokenizer %s --adapter %s --input %s/eight.txt --no-progress > %s/pred_adapter.jsonl",
                     LL_CLI_PATH, MODEL, TOKENIZER, adapter, tmp, dir) == 0);
            char a[800], b[800];
            snprintf(a, sizeof a, "%s/pred.jsonl", dir);
            snprintf(b, sizeof b, "%s/pred_adapter.jsonl", dir);
            CHECK_MSG(same_predictions(a, b, 1e-5), "%s: predict on the inexact folder != predict with the adapter",
                      k->name);
        }
    }
done:
    ll_classifier_free(c);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    ll_error err = {0};
    ll_model *m;
    ll_tokenizer *tok;
    REQUIRE(ll_model_load(&m, MODEL, NULL, &err) == 0);
    REQUIRE(ll_tokenizer_load(&tok, TOKENIZER, &err) == 0);
    const int L = ll_model_config(m)->n_layers;
    /* 8 SST-2 dev sentences of mixed lengths (every 9th), and dev + edge strings for the tokenizer */
    REQUIRE(sh("tail -n +2 %s | cut -f1 | awk 'NR%%9==1' | head -8 > %s/eight.txt", SST2_DEV, tmp) == 0);
    REQUIRE(sh("tail -n +2 %s | cut -f1 > %s/texts.txt", SST2_DEV, tmp) == 0);
    char path[700];
    snprintf(path, sizeof path, "%s/texts.txt", tmp);
    FILE *f = fopen(path, "a");
    REQUIRE(f);
    for (size_t i = 0; i < sizeof EDGE / sizeof *EDGE; i++) fprintf(f, "%s\n", EDGE[i]);
    fclose(f);

    const unsigned QV = (1u << LL_LORA_Q) | (1u << LL_LORA_V), ALL = (1u << LL_LORA_N_TARGETS) - 1;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init" /* each case overrides SEQ's defaults */
#define SEQ(...) {.n_labels = 2, .pool = LL_POOL_LAST, .bidirectional_from = L, .lora_r = 4, .lora_alpha = 8, \
                  .lora_targets = QV, __VA_ARGS__}
    const merge_case cases[] = {
        {"last_causal_qv", SEQ(.lora_dropout = 0.1f), 0, NULL},
        {"all_linear_rslora", SEQ(.lora_targets = ALL, .use_rslora = 1, .lora_r = 3), 0, NULL},
        {"head_only", SEQ(.lora_r = 0, .lora_targets = 0), 0, NULL},
        {"multi_label", SEQ(.n_labels = 3, .multi_label = 1), 0, NULL},
        {"zero_head_bias", SEQ(.head_bias = 1), 0, NULL},
        {"token_causal_bias", SEQ(.n_labels = 5, .token_task = 1, .head_bias = 1, .lora_targets = ALL), 1, NULL},
        {"token_causal_no_bias", SEQ(.n_labels = 3, .token_task = 1), 0, NULL},
        {"pool_mean", SEQ(.pool = LL_POOL_MEAN), 0, "pooling 'mean'"},
        {"pool_max", SEQ(.pool = LL_POOL_MAX), 0, "pooling 'max'"},
        {"pool_first", SEQ(.pool = LL_POOL_FIRST), 0, "pooling 'first'"},
        {"bidirectional", SEQ(.bidirectional_from = 0), 0, "bidirectional_from 0"},
        {"bidirectional_from_3", SEQ(.bidirectional_from = 3), 0, "bidirectional_from 3"},
        {"head_bias", SEQ(.head_bias = 1), 1, "head_bias"},
        {"token_bidirectional", SEQ(.n_labels = 3, .token_task = 1, .head_bias = 1, .bidirectional_from = 0), 1,
         "bidirectional_from 0"},
    };
#undef SEQ
#pragma GCC diagnostic pop
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(m, tok, &cases[i]);

    /* tokenizer.json of the merged folder vs lsllama on tok512.bin */
    CHECK(sh("%s tokenize %s < %s/texts.txt > %s/ids.txt", LL_CLI_PATH, TOKENIZER, tmp, tmp) == 0);
    CHECK_MSG(sh("%s tokenizer %s/last_causal_qv/merged %s/texts.txt %s/ids.txt", PARITY, tmp, tmp, tmp) == 0,
              "tok512.bin: the written tokenizer.json tokenizes differently");
    /* the Llama 2 tokenizer.model (SentencePiece BPE) */
    ll_tokenizer *l2;
    REQUIRE(ll_tokenizer_load(&l2, LLAMA2_TOK, &err) == 0);
    char *json = NULL;
    size_t len = 0;
    CHECK_MSG(ll_tokenizer_to_json(l2, LLAMA2_TOK, &json, &len, &err) == 0, "llama2: %s", err.message);
    snprintf(path, sizeof path, "%s/llama2", tmp);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/llama2/tokenizer.json", tmp);
    f = fopen(path, "wb");
    REQUIRE(f && json);
    fwrite(json, 1, len, f);
    fclose(f);
    free(json);
    ll_tokenizer_free(l2);
    CHECK(sh("%s tokenize %s < %s/texts.txt > %s/ids_llama2.txt", LL_CLI_PATH, LLAMA2_TOK, tmp, tmp) == 0);
    CHECK_MSG(sh("%s tokenizer %s/llama2 %s/texts.txt %s/ids_llama2.txt", PARITY, tmp, tmp, tmp) == 0,
              "tokenizer.model: the written tokenizer.json tokenizes differently");

    /* CLI: refusal, --allow-inexact, eval on the folder */
    CHECK(sh("%s merge %s --tokenizer %s --adapter %s/pool_mean/adapter --out %s/cli_mean 2> %s/cli.err; test $? -eq 1",
             LL_CLI_PATH, MODEL, TOKENIZER, tmp, tmp, tmp) == 0);
    snprintf(path, sizeof path, "%s/cli.err", tmp);
    CHECK_MSG(file_contains(path, "pooling 'mean'") && file_contains(path, "--allow-inexact"),
              "merge CLI: the refusal does not name the setting and the way out");
    CHECK(sh("%s merge %s --tokenizer %s --adapter %s/pool_mean/adapter --out %s/cli_mean --allow-inexact > /dev/null "
             "2>&1", LL_CLI_PATH, MODEL, TOKENIZER, tmp, tmp) == 0);
    CHECK(sh("(echo 'sentence\tlabel'; tail -n +2 %s | head -40 | awk -F'\\t' '{print $1 \"\\tLABEL_\" $2}') > %s/dev40.tsv", SST2_DEV, tmp) == 0);
    CHECK(sh("%s eval %s/cli_mean --data %s/dev40.tsv --json --no-progress > %s/eval_folder.json", LL_CLI_PATH, tmp,
             tmp, tmp) == 0);
    CHECK(sh("%s eval %s --tokenizer %s --adapter %s/pool_mean/adapter --data %s/dev40.tsv --json --no-progress > "
             "%s/eval_adapter.json", LL_CLI_PATH, MODEL, TOKENIZER, tmp, tmp, tmp) == 0);
    CHECK_MSG(sh("cmp -s %s/eval_folder.json %s/eval_adapter.json", tmp, tmp) == 0, "eval FOLDER != eval --adapter");
    CHECK(sh("%s predict %s --input %s/eight.txt 2> /dev/null; test $? -eq 2", LL_CLI_PATH, MODEL, tmp) == 0);
    /* embed reads the merged folder's base and tokenizer */
    CHECK(sh("echo 'a charming movie' | %s embed %s/cli_mean --text > /dev/null", LL_CLI_PATH, tmp) == 0);

    ll_tokenizer_free(tok);
    ll_model_free(m);
    if (!test_failures_) sh("rm -rf %s", tmp);
    return test_summary("test_merge_fidelity");
}
