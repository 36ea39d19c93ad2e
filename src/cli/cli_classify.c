#include "cli_classify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"

int cls_check_model_bounds(const char *cmd, long max_length, int max_length_given, int bidirectional_from,
                           const ll_model *m) {
    const ll_config *p = ll_model_config(m);
    if (max_length_given && p->max_seq_len > 0 && max_length > p->max_seq_len) {
        fprintf(stderr, "lsllama %s: --max-length %ld exceeds the model's context length %d\n", cmd, max_length,
                p->max_seq_len);
        return 0;
    }
    if (bidirectional_from > p->n_layers) {
        fprintf(stderr, "lsllama %s: --bidirectional-from %d exceeds the model's %d layers\n", cmd, bidirectional_from,
                p->n_layers);
        return 0;
    }
    return 1;
}

int cls_parse_common(const char *cmd, cls_args *a, int argc, char **argv, int *i) {
    const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long n;
#define TAKE() ((*i)++, v)
    if (!strcmp(o, "--text-column") && v) a->data_opt.text_columns = TAKE();
    else if (!strcmp(o, "--label-column") && v) a->data_opt.label_column = TAKE();
    else if (!strcmp(o, "--format") && v) {
        ll_data_format f;
        if (ll_data_format_parse(TAKE(), &f) != LL_OK || f == LL_DATA_AUTO) {
            fprintf(stderr, "lsllama %s: --format must be tsv, csv, jsonl, lines or conll\n", cmd);
            return -1;
        }
        a->data_opt.format = a->tok_opt.format = f;
    } else if (!strcmp(o, "--word-column") && v) {
        if (!cli_parse_int(cmd, o, TAKE(), 0, 1 << 20, &n)) return -1;
        a->tok_opt.word_column = (int)n;
    } else if (!strcmp(o, "--tag-column") && v) {
        const char *t = TAKE();
        if (!strcmp(t, "last")) a->tok_opt.tag_column = LL_COLUMN_LAST;
        else if (!cli_parse_int(cmd, o, t, 0, 1 << 20, &n)) return -1;
        else a->tok_opt.tag_column = (int)n;
    } else if (!strcmp(o, "--tokens-field") && v) a->tok_opt.tokens_field = TAKE();
    else if (!strcmp(o, "--tags-field") && v) a->tok_opt.tags_field = TAKE();
    else if (!strcmp(o, "--tag-names") && v) a->tag_names = TAKE();
    else if (!strcmp(o, "--label-all-subtokens")) a->tt_opt.label_all_subtokens = 1;
    else if (!strcmp(o, "--any-tags")) a->tok_opt.any_tags = 1;
    else if (!strcmp(o, "--header")) a->data_opt.header = LL_HEADER_YES;
    else if (!strcmp(o, "--no-header")) a->data_opt.header = LL_HEADER_NO;
    else if (!strcmp(o, "--skip-invalid")) a->data_opt.skip_invalid = a->tok_opt.skip_invalid = 1;
    else if (!strcmp(o, "--multi-label")) a->data_opt.multi_label = a->cc.multi_label = 1;
    else if (!strcmp(o, "--max-length") && v) {
        if (!cli_parse_int(cmd, o, TAKE(), 1, 1 << 20, &a->max_length)) return -1;
        a->max_length_given = 1;
    } else if (!strcmp(o, "--batch-tokens") && v) {
        if (!cli_parse_int(cmd, o, TAKE(), 1, 1 << 24, &n)) return -1;
        a->to.batch_tokens = (size_t)n;
    } else if (!strcmp(o, "--tokenizer") && v) a->tokenizer = TAKE();
    else if (!strcmp(o, "--base-precision") && v) {
        if (!cli_parse_base_precision(cmd, TAKE(), &a->base_precision)) return -1;
        a->base_precision_given = 1;
    } else if (!strcmp(o, "--compute") && v) {
        if (!cli_parse_compute(cmd, TAKE(), &a->compute)) return -1;
        a->compute_given = 1;
    }
    else if (!strcmp(o, "--json")) a->json = 1;
    else if (!strcmp(o, "--no-progress")) a->no_progress = 1;
    else return 0;
#undef TAKE
    return 1;
}

char *cls_read_stdin(const char *cmd, size_t *len) {
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    *len = 0;
    for (size_t got; text && (got = fread(text + *len, 1, cap - *len, stdin)) > 0;) {
        *len += got;
        if (*len == cap) {
            char *t2 = realloc(text, cap *= 2);
            if (!t2) free(text);
            text = t2;
        }
    }
    if (!text) fprintf(stderr, "lsllama %s: out of memory reading standard input\n", cmd);
    else if (ferror(stdin)) { /* never a silently cut input */
        fprintf(stderr, "lsllama %s: error reading standard input: %s\n", cmd, strerror(errno));
        free(text);
        text = NULL;
    }
    return text;
}

/* The token data of path (NULL: stdin), tags mapped unless no_tags, cut into windows. */
static int read_token_split(const char *cmd, const cls_args *a, const char *path, ll_tokenizer *tok, ll_labelmap **map,
                            int no_tags, ll_dataset **out, ll_error *err) {
    ll_labelmap *names = NULL;
    ll_token_data_options o = a->tok_opt;
    o.no_tags = no_tags;
    int rc = a->tag_names ? ll_tag_names_load(&names, a->tag_names, err) : LL_OK;
    o.tag_names = names;
    if (!rc && path) rc = ll_token_dataset_load(out, path, &o, err);
    if (!rc && !path) {
        size_t len;
        char *text = cls_read_stdin(cmd, &len);
        if (!text) {
            ll_labelmap_free(names);
            return 1; /* the message is out */
        }
        rc = ll_token_dataset_load_memory(out, text, len, "<stdin>", &o, err);
        free(text);
    }
    if (!rc && !no_tags && *map == NULL) rc = ll_labelmap_build(map, *out, err); /* train: this file's tags */
    if (!rc && !no_tags) rc = ll_dataset_apply_labels(*out, *map, err);
    if (!rc) rc = ll_token_dataset_tokenize(*out, tok, (int)a->max_length, &a->tt_opt, err);
    ll_labelmap_free(names);
    if (rc) fprintf(stderr, "lsllama %s: %s\n", cmd, err->message);
    return rc ? 1 : 0;
}

int cls_load_token_split(const char *cmd, const cls_args *a, const char *path, ll_tokenizer *tok, ll_labelmap **map,
                         int no_tags, ll_dataset **out) {
    ll_error err = {0};
    ll_dataset *ds = NULL;
    if (read_token_split(cmd, a, path, tok, map, no_tags, &ds, &err)) {
        ll_dataset_free(ds);
        return 1;
    }
    ll_dataset_info in;
    ll_dataset_get_info(ds, &in);
    fprintf(stderr, "%s: %zu sentences, %zu words, %zu windows", path ? path : "<stdin>", in.n_sentences, in.n_words,
            in.n_examples);
    if (in.n_skipped) fprintf(stderr, ", %zu invalid sentences skipped (first: %s)", in.n_skipped, in.first_skip);
    if (in.n_split) fprintf(stderr, ", %zu sentences split into overlapping windows", in.n_split);
    if (in.n_empty_words) fprintf(stderr, ", %zu words without tokens (predicted O)", in.n_empty_words);
    if (in.n_cut_words) fprintf(stderr, ", %zu words longer than a window (cut)", in.n_cut_words);
    fputc('\n', stderr);
    if (in.n_sentences == 0) {
        fprintf(stderr, "lsllama %s: %s: no usable sentences\n", cmd, path ? path : "<stdin>");
        ll_dataset_free(ds);
        return 1;
    }
    *out = ds;
    return 0;
}

int cls_load_split(const char *cmd, const cls_args *a, const char *path, ll_tokenizer *tok, ll_labelmap **map,
                   ll_dataset **out) {
    if (a->token_task) return cls_load_token_split(cmd, a, path, tok, map, 0, out);
    ll_error err = {0};
    ll_dataset *ds = NULL;
    if (ll_dataset_load(&ds, path, &a->data_opt, &err) ||
        (*map == NULL && ll_labelmap_build(map, ds, &err)) || ll_dataset_apply_labels(ds, *map, &err) ||
        ll_dataset_tokenize(ds, tok, (int)a->max_length, &err)) {
        fprintf(stderr, "lsllama %s: %s\n", cmd, err.message);
        ll_dataset_free(ds);
        return 1;
    }
    ll_dataset_info in;
    ll_dataset_get_info(ds, &in);
    fprintf(stderr, "%s: %zu examples", path, in.n_examples);
    if (in.n_skipped) fprintf(stderr, ", %zu invalid rows skipped (first: %s)", in.n_skipped, in.first_skip);
    if (in.n_truncated) fprintf(stderr, ", %zu truncated to %ld tokens", in.n_truncated, a->max_length);
    fputc('\n', stderr);
    if (in.n_examples == 0) {
        fprintf(stderr, "lsllama %s: %s: no usable examples\n", cmd, path);
        ll_dataset_free(ds);
        return 1;
    }
    *out = ds;
    return 0;
}

int cls_session_open(const char *cmd, const cls_args *a, cls_session *s) {
    ll_error err = {0};
    memset(s, 0, sizeof *s);
    if (!a->adapter && !ll_merged_is_classifier(a->model)) {
        fprintf(stderr, "lsllama %s: %s is not a merged classifier folder (config.json with a "
                        "*ForSequenceClassification or *ForTokenClassification architecture): give --adapter DIR\n",
                cmd, a->model);
        return 2;
    }
    /* the precision the adapter was trained with, unless asked otherwise */
    ll_load_options lo = {.base_precision = a->base_precision, .compute = a->compute};
    if ((!a->base_precision_given && a->adapter && ll_adapter_base_precision(a->adapter, &lo.base_precision, &err) < 0) ||
        ll_model_load(&s->m, a->model, &lo, &err) ||
        ll_tokenizer_load(&s->tok, a->tokenizer ? a->tokenizer : a->model, &err) ||
        (a->adapter ? ll_adapter_load(a->adapter, s->m, NULL, &s->c, &s->info, &err)
                    : ll_merged_load(a->model, s->m, &s->c, &s->info, &err)) ||
        ll_labelmap_from_names(&s->map, (const char *const *)s->info.id2label, s->info.n_labels, &err)) {
        fprintf(stderr, "lsllama %s: %s\n", cmd, err.message);
        return 1;
    }
    cli_tokenizer_warning(cmd, s->tok);
    if (!cls_check_model_bounds(cmd, a->max_length, a->max_length_given, -1, s->m)) return 2;
    return 0;
}

void cls_session_close(cls_session *s) {
    ll_labelmap_free(s->map);
    ll_adapter_info_free(&s->info);
    ll_classifier_free(s->c);
    ll_tokenizer_free(s->tok);
    ll_model_free(s->m);
}

void cls_json_str_n(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        const unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

void cls_json_str(FILE *f, const char *s) { cls_json_str_n(f, s, strlen(s)); }
