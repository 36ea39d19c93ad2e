/* lsllama eval: a trained classifier's report on a labelled file
 * (scikit-learn's classification_report; NER: seqeval's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_classify.h"
#include "cli_util.h"
#include "commands.h"
#include "lsllama.h"
#include "lsllama_train.h"

static void eval_usage(void) {
    printf("usage: lsllama eval MODEL [--adapter DIR] --data FILE [--json] [--no-progress]\n"
           "                      [data options as for train]\n\n"
           "scikit-learn's classification_report of a trained adapter on a labelled file (per-class\n"
           "precision/recall/F1/support; accuracy, macro and weighted averages; multi-label: micro,\n"
           "macro, weighted and samples averages and subset accuracy) and, single-label, the confusion\n"
           "matrix with its gold and predicted labels; as a table (or one JSON object with --json).\n"
           "For a token (NER) adapter: seqeval's classification_report (entity-level precision/recall/\n"
           "F1 per type; micro, macro and weighted averages, as seqeval computes them by default)\n"
           "and token accuracy. Ratios with nothing to divide by are 0, the default of both.\n"
           "MODEL without --adapter: a folder written by `lsllama merge`.\n"
           "--tokenizer PATH: a tokenizer.json, tokenizer folder or llama2.c tokenizer.bin for a MODEL\n"
           "        that carries none (default: the model's own)\n"
           "A progress line goes to stderr while it is a terminal (--no-progress: none).\n"
           "Default base precision: the one the adapter was trained with (label_map.json), else stored.\n"
           CLI_BASE_PRECISION_HELP CLI_COMPUTE_HELP
           "        (default f32, whatever the training used: label_map.json's lsllama.compute says)\n");
}

/* Evaluate ss's classifier on ds and print the report: a heading line and
 * the tables, or the JSON object. 0, or 1 after the message. */
static int print_report(const cls_args *a, cls_session *ss, const ll_dataset *ds) {
    const int token_task = ll_classifier_get_config(ss->c)->token_task;
    ll_error err = {0};
    ll_eval_report *rep = NULL;
    char *text = NULL;
    cli_progress pr;
    cli_progress_init(&pr, "eval", token_task ? "windows" : "examples", !a->no_progress);
    const ll_eval_progress ep = {cli_progress_update, &pr};
    const int erc = ll_classifier_evaluate(ss->c, ds, ss->map, a->to.batch_tokens, &ep, &rep, &err);
    cli_progress_end(&pr);
    int rc = 1;
    const char *bad = erc ? NULL : ll_eval_report_nonfinite(rep);
    if (erc) fprintf(stderr, "lsllama eval: %s\n", err.message);
    else if (bad) fprintf(stderr, "lsllama eval: %s: non-finite %s (model or adapter weights corrupt?)\n", a->data, bad);
    else if (ll_eval_report_text(rep, a->json, &text, &err)) fprintf(stderr, "lsllama eval: %s\n", err.message);
    else {
        if (!a->json) {
            ll_eval_summary s;
            ll_dataset_info in;
            ll_eval_report_summary(rep, &s);
            ll_dataset_get_info(ds, &in);
            if (token_task)
                printf("%s: %zu sentences, %zu words, mean token loss %.4f\n\n", a->data, in.n_sentences, in.n_words,
                       s.mean_loss);
            else printf("%s: %lld examples, mean loss %.4f\n\n", a->data, (long long)s.n, s.mean_loss);
        }
        fputs(text, stdout);
        rc = 0;
    }
    free(text);
    ll_eval_report_free(rep);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    cls_args a = {0};
    ll_data_options_default(&a.data_opt);
    ll_token_data_options_default(&a.tok_opt);
    a.max_length = 256;
    a.to.batch_tokens = 2048;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cls_parse_common("eval", &a, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            eval_usage();
            return 0;
        } else if (!strcmp(o, "--adapter") && v) a.adapter = argv[++i];
        else if (!strcmp(o, "--data") && v) a.data = argv[++i];
        else if (o[0] == '-' || a.model) {
            cli_unexpected("eval", o, !v, CLS_COMMON_VALUE_OPTS " --adapter --data");
            return 2;
        } else a.model = o;
    }
    if (!a.model || !a.data) {
        fprintf(stderr, "lsllama eval: MODEL and --data are required, and --adapter unless MODEL is a merged "
                        "folder (see --help)\n");
        return 2;
    }
    cls_session ss;
    ll_dataset *ds = NULL;
    int rc = cls_session_open("eval", &a, &ss);
    if (rc) goto done;
    rc = 1;
    const ll_classifier_config *cfg = ll_classifier_get_config(ss.c);
    a.token_task = cfg->token_task;
    a.data_opt.multi_label = cfg->multi_label; /* the adapter says how to read the labels */
    if (cls_load_split("eval", &a, a.data, ss.tok, &ss.map, &ds)) goto done;
    rc = print_report(&a, &ss, ds);
done:
    ll_dataset_free(ds);
    cls_session_close(&ss);
    return rc;
}
