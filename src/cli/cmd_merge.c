/* lsllama merge: a trained adapter merged into its base as a Hugging Face
 * classification folder (transformers' *ForSequenceClassification or
 * *ForTokenClassification) for adapter-free inference. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "lsllama_train.h"

int cmd_merge(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *out = NULL, *dtype = NULL, *tok_path = NULL;
    int overwrite = 0, allow_inexact = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            printf("usage: lsllama merge MODEL --adapter DIR --out DIR [--dtype f32|f16|bf16] [--tokenizer PATH]\n"
                   "                    [--overwrite] [--allow-inexact]\n\n"
                   "Writes a Hugging Face model folder (config.json with id2label, label2id and pad_token_id,\n"
                   "model.safetensors, tokenizer.json + tokenizer_config.json from the base's tokenizer (MODEL, or\n"
                   "--tokenizer), README.md) with the LoRA deltas merged into the base weights and the score head,\n"
                   "for adapter-free inference: transformers' *ForSequenceClassification (or\n"
                   "*ForTokenClassification for a TOKEN_CLS adapter) and pipeline(), or `lsllama predict/eval DIR`.\n"
                   "A classifier transformers would compute differently (pooling other than last, bidirectional\n"
                   "attention, a non-zero head bias, a tokenizer without an exact tokenizer.json, ...) is refused\n"
                   "with the reasons; --allow-inexact writes it anyway and records the reasons in README.md and\n"
                   "config.json (\"lsllama_inexact\"). DIR must be new or empty; --overwrite replaces an earlier\n"
                   "merged model there (never a file the merge does not write). The folder is written beside DIR\n"
                   "and swapped in whole. --dtype: the merged weights' type; default bf16 when the base holds\n"
                   "quantized matrices (GGUF Q4_K, Q8_0, ...: dequantized exactly, then rounded), else f32.\n"
                   "The deltas are merged into the base's values as stored, also for an adapter trained with\n"
                   "--base-precision bf16 or q8_0 (whose products saw the converted values: predictions of the\n"
                   "merged folder then differ from the adapter's by that conversion).\n");
            return 0;
        } else if (!strcmp(o, "--adapter") && v) adapter = argv[++i];
        else if (!strcmp(o, "--out") && v) out = argv[++i];
        else if (!strcmp(o, "--dtype") && v) dtype = argv[++i];
        else if (!strcmp(o, "--tokenizer") && v) tok_path = argv[++i];
        else if (!strcmp(o, "--overwrite")) overwrite = 1;
        else if (!strcmp(o, "--allow-inexact")) allow_inexact = 1;
        else if (o[0] == '-' || model) {
            cli_unexpected("merge", o, !v, "--adapter --out --dtype --tokenizer");
            return 2;
        } else model = o;
    }
    if (!model || !adapter || !out) {
        fprintf(stderr, "lsllama merge: MODEL, --adapter and --out are required (see --help)\n");
        return 2;
    }
    ll_merge_options mo = ll_merge_options_default();
    ll_merge_dtype merge_dtype;
    if (!dtype) mo.dtype = LL_MERGE_DEFAULT;
    else if (ll_merge_dtype_parse(dtype, &merge_dtype) == LL_OK) mo.dtype = (int)merge_dtype;
    else {
        fprintf(stderr, "lsllama merge: --dtype must be f32, f16 or bf16, got '%s'\n", dtype);
        return 2;
    }
    /* an earlier merged model (or anything else) in --out is replaced only when asked */
    DIR *od = overwrite ? NULL : opendir(out);
    for (struct dirent *e; od && (e = readdir(od));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            fprintf(stderr, "lsllama merge: --out %s is not empty (holds '%s'): choose a new folder, or pass "
                            "--overwrite to replace a merged model there\n", out, e->d_name);
            closedir(od);
            return 1;
        }
    if (od) closedir(od);
    ll_error err = {0};
    ll_model *m = NULL;
    ll_classifier *c = NULL;
    ll_adapter_info info = {0};
    ll_tokenizer *tok = NULL;
    int rc = 1;
    if (ll_model_load(&m, model, NULL, &err) || ll_adapter_load(adapter, m, NULL, &c, &info, &err)) {
        fprintf(stderr, "lsllama merge: %s\n", err.message);
        goto done;
    }
    /* the folder is complete only with the tokenizer */
    if (ll_tokenizer_load(&tok, tok_path ? tok_path : model, &err)) {
        if (!allow_inexact) {
            fprintf(stderr, "lsllama merge: %s\n(the merged folder needs the base's tokenizer: give --tokenizer PATH; "
                            "--allow-inexact writes the folder without tokenizer files)\n", err.message);
            goto done;
        }
        fprintf(stderr, "lsllama merge: warning: no tokenizer files written: %s\n", err.message);
    }
    mo.id2label = (const char *const *)info.id2label;
    mo.task_type = info.task_type; /* TOKEN_CLS: *ForTokenClassification */
    mo.tokenizer = tok;
    mo.tokenizer_source = tok_path ? tok_path : model;
    mo.allow_inexact = allow_inexact;
    ll_merge_report rep = {0};
    if (ll_merge_check(c, &mo, &rep, &err) || ll_merge_save(c, out, &mo, &err)) {
        fprintf(stderr, "lsllama merge: %s\n", err.message);
        goto done;
    }
    for (int i = 0; i < rep.n; i++)
        fprintf(stderr, "lsllama merge: warning: not exact in transformers: %s\n", rep.reason[i]);
    printf("merged model written to %s%s\n", out, rep.n ? " (inexact in transformers: see its README.md)" : "");
    rc = 0;
done:
    ll_tokenizer_free(tok);
    ll_adapter_info_free(&info);
    ll_classifier_free(c);
    ll_model_free(m);
    return rc;
}
