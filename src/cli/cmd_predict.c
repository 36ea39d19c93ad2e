/* lsllama predict: labels and probabilities per input text (JSONL), or for
 * a token (NER) classifier tags and entity spans per sentence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_classify.h"
#include "cli_util.h"
#include "commands.h"
#include "lsllama.h"
#include "lsllama_train.h"

static void predict_usage(void) {
    printf("usage: lsllama predict MODEL [--adapter DIR] [--input FILE] [--format lines|tsv|csv|jsonl|conll\n"
           "                         --text-column C] [--no-progress]\n\n"
           "Classifies text lines (stdin or FILE; or a column of a data file) and writes one JSON\n"
           "object per input: {\"text\", \"label\", \"probabilities\": {label: p, ...}}.\n"
           "A token (NER) adapter reads text lines (words split on whitespace) or pre-split words\n"
           "(--format conll or jsonl with a \"tokens\" field) and writes per sentence {\"text\", \"words\",\n"
           "\"tags\", \"entities\": [{\"type\", \"text\", \"start\", \"end\" (character offsets in text),\n"
           "\"word_start\", \"word_end\", \"score\" (mean tag probability of its words)}]}.\n"
           "MODEL without --adapter: a folder written by `lsllama merge`.\n"
           "--tokenizer PATH: a tokenizer.json, tokenizer folder or llama2.c tokenizer.bin for a MODEL\n"
           "        that carries none (default: the model's own)\n"
           "--max-length L: tokens per text, longer ones truncated (default 256; token task: words beyond\n"
           "        it go to further windows); --batch-tokens N: tokens per forward batch (default 2048)\n"
           "A progress line goes to stderr while it is a terminal (--no-progress: none).\n"
           "Default base precision: the one the adapter was trained with (label_map.json), else stored.\n"
           CLI_BASE_PRECISION_HELP CLI_COMPUTE_HELP
           "        (default f32, whatever the training used: label_map.json's lsllama.compute says)\n");
}

/* One sequence as a JSON line: {"text", "label", "probabilities"} or, multi-label, {"text", "labels",
 * "probabilities"} with the labels whose logit is above 0 (probability above 0.5). ctx: the label names. */
static int print_sequence(void *ctx, const ll_seq_prediction *p) {
    const char *const *names = ctx;
    fputs("{\"text\": ", stdout);
    cls_json_str(stdout, p->text);
    if (p->label < 0) {
        fputs(", \"labels\": [", stdout);
        for (int k = 0, first = 1; k < p->n_labels; k++)
            if (p->predicted[k]) {
                fputs(first ? "" : ", ", stdout);
                cls_json_str(stdout, names[k]);
                first = 0;
            }
        fputs("]", stdout);
    } else {
        fputs(", \"label\": ", stdout);
        cls_json_str(stdout, names[p->label]);
    }
    fputs(", \"probabilities\": {", stdout);
    for (int k = 0; k < p->n_labels; k++) {
        fputs(k ? ", " : "", stdout);
        cls_json_str(stdout, names[k]);
        printf(": %.6f", p->probabilities[k]);
    }
    fputs("}}\n", stdout);
    return cli_output_ok("predict", stdout, "standard output") ? 0 : 1; /* stop at the first failed write */
}

/* One sentence as a JSON line: its words, their predicted tags, and the entity spans with character
 * offsets into the sentence text and a score (the mean probability of the entity's words' tags). */
static int print_sentence(void *ctx, const ll_sentence_prediction *p) {
    (void)ctx;
    fputs("{\"text\": ", stdout);
    cls_json_str_n(stdout, p->text, p->text_len);
    fputs(", \"words\": [", stdout);
    for (int w = 0; w < p->n_words; w++) {
        fputs(w ? ", " : "", stdout);
        cls_json_str(stdout, p->words[w]);
    }
    fputs("], \"tags\": [", stdout);
    for (int w = 0; w < p->n_words; w++) {
        fputs(w ? ", " : "", stdout);
        cls_json_str(stdout, p->tags[w]);
    }
    fputs("], \"entities\": [", stdout);
    for (size_t e = 0; e < p->n_entities; e++) {
        const ll_entity_span *s = &p->entities[e];
        fputs(e ? ", " : "", stdout);
        fputs("{\"type\": ", stdout);
        cls_json_str(stdout, s->type);
        fputs(", \"text\": ", stdout);
        cls_json_str_n(stdout, p->text + s->byte_start, (size_t)(s->byte_end - s->byte_start));
        printf(", \"start\": %d, \"end\": %d, \"word_start\": %d, \"word_end\": %d, \"score\": %.6f}", s->start,
               s->end, s->word_start, s->word_end, s->score);
    }
    fputs("]}\n", stdout);
    return cli_output_ok("predict", stdout, "standard output") ? 0 : 1; /* stop at the first failed write */
}

/* The input (--input FILE or stdin) as a sequence-task dataset, tokenized. */
static int load_texts(const cls_args *a, const cls_session *ss, ll_dataset **ds) {
    ll_error err = {0};
    int rc;
    if (a->input) {
        rc = ll_dataset_load(ds, a->input, &a->data_opt, &err);
    } else {
        size_t len;
        char *text = cls_read_stdin("predict", &len);
        if (!text) return 1;
        rc = ll_dataset_load_memory(ds, text, len, "<stdin>", &a->data_opt, &err);
        free(text);
    }
    if (rc || ll_dataset_tokenize(*ds, ss->tok, (int)a->max_length, &err)) {
        fprintf(stderr, "lsllama predict: %s\n", err.message);
        return 1;
    }
    return 0;
}

int cmd_predict(int argc, char **argv) {
    cls_args a = {0};
    ll_data_options_default(&a.data_opt);
    ll_token_data_options_default(&a.tok_opt);
    a.data_opt.format = LL_DATA_LINES;
    a.data_opt.no_labels = 1;
    a.max_length = 256;
    a.to.batch_tokens = 2048;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cls_parse_common("predict", &a, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            predict_usage();
            return 0;
        } else if (!strcmp(o, "--adapter") && v) a.adapter = argv[++i];
        else if (!strcmp(o, "--input") && v) a.input = argv[++i];
        else if (o[0] == '-' || a.model) {
            cli_unexpected("predict", o, !v, CLS_COMMON_VALUE_OPTS " --adapter --input");
            return 2;
        } else a.model = o;
    }
    if (!a.model) {
        fprintf(stderr, "lsllama predict: MODEL is required, and --adapter unless MODEL is a merged folder (see "
                        "--help)\n");
        return 2;
    }
    if (a.data_opt.format != LL_DATA_LINES) a.data_opt.no_labels = 1;
    cls_session ss;
    ll_dataset *ds = NULL;
    ll_error err = {0};
    int rc = cls_session_open("predict", &a, &ss);
    if (rc) goto done;
    rc = 1;
    const int token_task = ll_classifier_get_config(ss.c)->token_task;
    if (token_task) {
        if (a.data_opt.format == LL_DATA_LINES || a.tok_opt.format == LL_DATA_AUTO) a.tok_opt.format = a.data_opt.format;
        if (cls_load_token_split("predict", &a, a.input, ss.tok, &ss.map, 1, &ds)) goto done;
    } else if (load_texts(&a, &ss, &ds)) {
        goto done;
    }
    cli_progress pr;
    cli_progress_init(&pr, "predict", token_task ? "windows" : "examples", !a.no_progress);
    const ll_eval_progress ep = {cli_progress_update, &pr};
    const int prc = token_task
                        ? ll_classifier_predict_tokens(ss.c, ds, ss.map, a.to.batch_tokens, &ep, print_sentence, NULL,
                                                       &err)
                        : ll_classifier_predict(ss.c, ds, a.to.batch_tokens, &ep, print_sequence,
                                                (void *)ll_labelmap_names(ss.map), &err);
    cli_progress_end(&pr);
    if (prc < 0) fprintf(stderr, "lsllama predict: %s\n", err.message);
    rc = prc ? 1 : 0; /* > 0: a failed write, already reported */
done:
    ll_dataset_free(ds);
    cls_session_close(&ss);
    return rc;
}
