/* lsllama train: LS-LLaMA LoRA training of a sequence classifier, or with
 * --task token of a token classifier (NER, LS-unLLaMA). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_classify.h"
#include "cli_util.h"
#include "commands.h"
#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "lsllama_train.h"

/* A finite number in [lo, hi] (hi_open: [lo, hi)); on a bad value *ok = 0 after the message. */
static double parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, int hi_open, int *ok) {
    double v = 0;
    if (!cli_parse_double(cmd, opt, s, lo, hi, hi_open, &v)) *ok = 0;
    return v;
}

/* ll_train's progress on stderr. On a terminal: a step line rewritten in
 * place, a line per dev evaluation, a newline at the end. Elsewhere (a log
 * file, a pipe) only the dev lines, so the file holds no carriage returns.
 * ctx: an int, 1 when stderr is a terminal. */
static void print_progress(void *ctx, const ll_train_event *ev) {
    const int tty = *(const int *)ctx;
    const char *nl = tty ? "\n" : "";
    if (ev->kind == LL_TRAIN_STEP && tty) {
        const double eta = ev->eta_s;
        fprintf(stderr, "\rstep %lld/%lld  epoch %lld  loss %.4f  %.0f tokens/s  ETA %02d:%02d:%02d   ",
                (long long)ev->step, (long long)ev->total_steps, (long long)ev->epoch + 1, ev->loss, ev->tokens_per_s,
                (int)(eta / 3600), (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
    } else if (ev->kind == LL_TRAIN_EVAL && ev->token_task) {
        fprintf(stderr, "%s  dev @%lld: loss %.4f entity F1 %.4f (P %.4f R %.4f) token accuracy %.4f%s\n", nl,
                (long long)ev->step, ev->dev_loss, ev->f1, ev->precision, ev->recall, ev->token_accuracy,
                ev->best ? "  (best so far: saved)" : "");
    } else if (ev->kind == LL_TRAIN_EVAL) {
        fprintf(stderr, "%s  dev @%lld: loss %.4f accuracy %.4f macro-F1 %.4f%s\n", nl, (long long)ev->step,
                ev->dev_loss, ev->accuracy, ev->macro_f1, ev->best ? "  (best so far: saved)" : "");
    } else if (ev->kind == LL_TRAIN_END && tty) {
        fputc('\n', stderr);
    }
}

static void train_usage(FILE *f) {
    fprintf(f,
        "usage: lsllama train MODEL --train FILE --out DIR [--dev FILE] [options]\n\n"
        "Label-supervised LoRA fine-tuning of a sequence classifier (LS-LLaMA) or, with --task token,\n"
        "of a token classifier for NER (LS-unLLaMA: bidirectional attention by default).\n"
        "task:   --task seq|token (seq)\n"
        "data:   --text-column C --label-column C (names, or 0-based indices; default text/sentence, label)\n"
        "        --format tsv|csv|jsonl|conll  --header|--no-header  --skip-invalid  --multi-label\n"
        "        --max-length N (256; token tasks: longer sentences become overlapping windows)\n"
        "        --tokenizer PATH (default: the model's own)\n"
        "base:   " CLI_BASE_PRECISION_HELP
        "        (default stored; with --resume, the run's own, from DIR/log.jsonl)\n"
        "        " CLI_COMPUTE_HELP
        "        (default f32; with --resume, the run's own, from DIR/log.jsonl)\n"
        "token:  --word-column N (0)  --tag-column N|last (last)  --tokens-field F (tokens)  --tags-field F\n"
        "        (ner_tags)  --tag-names FILE (names of integer tags)  --label-all-subtokens\n"
        "        --any-tags (any tag, e.g. POS; default: O, B, I, E, S, B-/I-/E-/S-TYPE as seqeval reads them)\n"
        "model:  --pool last|mean|max|first (last)  --mask causal|bidirectional (causal; token, or a config.json with use_bidirectional_attention: bidirectional)\n"
        "        --bidirectional-from K  --head-bias (token: always)  --head-dropout P (token: 0.1)\n"
        "LoRA:   --lora-r R (12)  --lora-alpha A (32)  --lora-dropout P (0.1)  --rslora\n"
        "        --lora-targets q,v (PEFT's Llama default; any of q,k,v,o,gate,up,down or all-linear)\n"
        "        --head-only (no LoRA: train the score head alone)\n"
        "full:   --full (no LoRA: train every linear weight of the base, in f32, with the head; 16 bytes per weight)\n"
        "        --full-targets LIST: any of q,k,v,o,gate,up,down (or q_proj, ..., all-linear), norms, embeddings,\n"
        "        or all (--full: all-linear); best/ and final/ are then whole model folders (as lsllama merge\n"
        "        writes), for transformers or `lsllama predict DIR`. The copies start from the base as loaded\n"
        "        (--base-precision converts it first; untrained tensors are then written converted too)\n"
        "train:  --epochs N (1)  --max-steps N (overrides --epochs)  --lr X (1e-4)  --weight-decay X (0.01)\n"
        "        --warmup-ratio X (0.06)  --max-grad-norm X (1.0)  --grad-accum N (1)  --batch-tokens N (2048)\n"
        "        --batch-size N (no limit)  --recompute (keep only each layer's input, recompute the rest in the\n"
        "        backward pass: a fraction of the activation memory, up to about a third more time, same results)\n"
        "        --seed N (42)  --eval-every N (epoch ends only)  --patience N\n"
        "        --metric accuracy|macro_f1 (seq: accuracy) | f1|token_accuracy (token: f1, entity-level micro)\n"
        "        --checkpoint-every N  --resume (continue DIR's run)  --overwrite (replace DIR's run)  --no-progress\n"
        "        --dump-batches FILE (each step's example indices: to train another tool on the same batches)\n"
        "Writes DIR/best (best dev metric) and DIR/final as PEFT adapters (with --full: model folders),\n"
        "DIR/log.jsonl, DIR/checkpoint.\n"
        "Data-parallel (a build with -DLL_MPI=ON): mpirun -np W lsllama train ... --grad-accum K, W dividing K;\n"
        "the same adapter bytes at every W; --resume may change W.\n"
        "DIR must be new or empty unless --resume or --overwrite; one process writes it at a time.\n"
        "Progress on stderr: a step line while it is a terminal, and a line per dev evaluation\n"
        "(--no-progress: neither).\n");
}

static int train_main(int argc, char **argv, const ll_dist *dist);

/* mpirun -np W lsllama train ...: every rank runs this command; rank 0 alone
 * prints progress and results and owns --out. A rank's error is printed
 * with its rank, then MPI_Abort stops them all (a failed rank may leave the
 * others waiting in a collective, so every failure aborts). Ranks above 0
 * hold their stderr until the end and then show only their error lines:
 * startup lines appear once, from rank 0. */
int cmd_train(int argc, char **argv) {
    ll_dist *dist = NULL;
    ll_error err = {0};
    if (ll_dist_init(&dist, &argc, &argv, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        return 1;
    }
    const int W = ll_dist_size(dist), rank = ll_dist_rank(dist);
    FILE *held = NULL;
    int saved_stderr = -1;
    if (rank > 0 && (held = tmpfile())) {
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        if (saved_stderr < 0 || dup2(fileno(held), STDERR_FILENO) < 0) {
            if (saved_stderr >= 0) close(saved_stderr);
            saved_stderr = -1;
        }
    }
    int rc = train_main(argc, argv, dist);
    if (saved_stderr >= 0) { /* back to the real stderr; show a runtime error, prefixed with the rank */
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        if (rc != 0) { /* its error lines (rank 0 printed the rest once) */
            char line[4096];
            rewind(held);
            while (fgets(line, sizeof line, held))
                if (!strncmp(line, "lsllama", 7)) fprintf(stderr, "[rank %d of %d] %s", rank, W, line);
        }
    }
    if (held) fclose(held);
    if (rc != 0 && W > 1) {
        fprintf(stderr, "lsllama train: rank %d of %d failed: stopping every rank\n", rank, W);
        fflush(stderr);
        ll_dist_abort(dist, rc);
    }
    ll_dist_finalize(dist);
    return rc;
}

static int train_main(int argc, char **argv, const ll_dist *dist) {
    const int lead = ll_dist_rank(dist) == 0;
    cls_args a = {0};
    ll_data_options_default(&a.data_opt);
    ll_train_options_default(&a.to);
    a.max_length = 256;
    a.cc = (ll_classifier_config){.pool = LL_POOL_LAST, .bidirectional_from = -1, .lora_r = 12, .lora_alpha = 32,
                                  .lora_dropout = 0.1f};
    a.targets = "q,v";
    ll_token_data_options_default(&a.tok_opt);
    int mask_bidir = -1, metric = -1, ok = 1;
    ll_task task;
    ll_mask mask;
    ll_metric parsed_metric;
    double head_dropout = -1;
    long n;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cls_parse_common("train", &a, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            train_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--train") && v) a.train = argv[++i];
        else if (!strcmp(o, "--dev") && v) a.dev = argv[++i];
        else if (!strcmp(o, "--out") && v) a.out = argv[++i];
        else if (!strcmp(o, "--pool") && v) {
            if (ll_pool_parse(argv[++i], &a.cc.pool) != LL_OK) {
                fprintf(stderr, "lsllama train: --pool must be last, mean, max or first\n");
                return 2;
            }
        } else if (!strcmp(o, "--mask") && v) {
            if (ll_mask_parse(argv[++i], &mask) != LL_OK) {
                fprintf(stderr, "lsllama train: --mask must be causal or bidirectional\n");
                return 2;
            }
            mask_bidir = mask == LL_MASK_BIDIRECTIONAL;
        } else if (!strcmp(o, "--bidirectional-from") && v) {
            if (!cli_parse_int("train", o, argv[++i], 0, 1 << 20, &n)) return 2;
            a.cc.bidirectional_from = (int)n;
        } else if (!strcmp(o, "--head-bias")) a.cc.head_bias = 1;
        else if (!strcmp(o, "--head-dropout") && v) head_dropout = parse_float("train", o, argv[++i], 0, 1, 1, &ok);
        else if (!strcmp(o, "--task") && v) {
            if (ll_task_parse(argv[++i], &task) != LL_OK) {
                fprintf(stderr, "lsllama train: --task must be seq or token\n");
                return 2;
            }
            a.token_task = task == LL_TASK_TOKEN;
        } else if (!strcmp(o, "--lora-r") && v) {
            if (!cli_parse_int("train", o, argv[++i], 0, 4096, &n)) return 2;
            a.cc.lora_r = (int)n;
            a.lora_option = a.lora_option ? a.lora_option : o;
        } else if (!strcmp(o, "--lora-alpha") && v) {
            a.cc.lora_alpha = (float)parse_float("train", o, argv[++i], 1e-6, 1e6, 0, &ok);
            a.lora_option = a.lora_option ? a.lora_option : o;
        } else if (!strcmp(o, "--lora-dropout") && v) {
            a.cc.lora_dropout = (float)parse_float("train", o, argv[++i], 0, 1, 1, &ok);
            a.lora_option = a.lora_option ? a.lora_option : o;
        } else if (!strcmp(o, "--lora-targets") && v) {
            a.targets = argv[++i];
            a.lora_option = a.lora_option ? a.lora_option : o;
        } else if (!strcmp(o, "--rslora")) {
            a.cc.use_rslora = 1;
            a.lora_option = a.lora_option ? a.lora_option : o;
        } else if (!strcmp(o, "--full")) a.full_targets = a.full_targets ? a.full_targets : "all-linear";
        else if (!strcmp(o, "--full-targets") && v) a.full_targets = argv[++i];
        else if (!strcmp(o, "--head-only")) a.head_only = 1;
        else if (!strcmp(o, "--epochs") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 100000, &n)) return 2;
            a.to.epochs = (int)n;
        } else if (!strcmp(o, "--max-steps") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.max_steps = n;
        } else if (!strcmp(o, "--lr") && v) a.to.lr = (float)parse_float("train", o, argv[++i], 1e-12, 10, 0, &ok);
        else if (!strcmp(o, "--weight-decay") && v) a.to.weight_decay = (float)parse_float("train", o, argv[++i], 0, 10, 0, &ok);
        else if (!strcmp(o, "--warmup-ratio") && v) a.to.warmup_ratio = (float)parse_float("train", o, argv[++i], 0, 1, 0, &ok);
        else if (!strcmp(o, "--max-grad-norm") && v) a.to.max_grad_norm = (float)parse_float("train", o, argv[++i], 0, 1e6, 0, &ok);
        else if (!strcmp(o, "--grad-accum") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1 << 16, &n)) return 2;
            a.to.grad_accum = (int)n;
        } else if (!strcmp(o, "--batch-size") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1 << 20, &n)) return 2;
            a.to.batch_seqs = (size_t)n;
        } else if (!strcmp(o, "--seed") && v) {
            if (!cli_parse_int("train", o, argv[++i], 0, 1L << 62, &n)) return 2;
            a.to.seed = (uint64_t)n;
        } else if (!strcmp(o, "--eval-every") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.eval_every = n;
        } else if (!strcmp(o, "--patience") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1 << 20, &n)) return 2;
            a.to.patience = (int)n;
        } else if (!strcmp(o, "--metric") && v) {
            if (ll_metric_parse(argv[++i], &parsed_metric) != LL_OK) {
                fprintf(stderr, "lsllama train: --metric must be accuracy, macro_f1, f1 or token_accuracy\n");
                return 2;
            }
            metric = (int)parsed_metric;
        } else if (!strcmp(o, "--checkpoint-every") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.checkpoint_every = n;
        } else if (!strcmp(o, "--stop-after-steps") && v) { /* testing: end as if killed */
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.stop_after_steps = n;
        } else if (!strcmp(o, "--dump-batches") && v) a.to.batches_out = argv[++i];
        else if (!strcmp(o, "--resume")) a.to.resume = 1;
        else if (!strcmp(o, "--overwrite")) a.to.overwrite = 1;
        else if (!strcmp(o, "--recompute")) a.to.recompute = 1;
        else if (o[0] == '-' || a.model) {
            cli_unexpected("train", o, !v,
                           CLS_COMMON_VALUE_OPTS " --train --dev --out --pool --mask --bidirectional-from --head-dropout "
                                             "--task --lora-r --lora-alpha --lora-dropout --lora-targets --full-targets --epochs "
                                             "--max-steps --lr --weight-decay --warmup-ratio --max-grad-norm "
                                             "--grad-accum --batch-size --seed --eval-every --patience --metric "
                                             "--checkpoint-every --stop-after-steps --dump-batches");
            return 2;
        } else a.model = o;
        if (!ok) return 2;
    }
    if (!a.model || !a.train || !a.out) {
        fprintf(stderr, "lsllama train: MODEL, --train and --out are required (see --help)\n");
        return 2;
    }
    const int W = ll_dist_size(dist);
    if (a.to.grad_accum % W) { /* told before minutes of loading */
        int given = 0;
        for (int i = 1; i < argc; i++) given |= !strcmp(argv[i], "--grad-accum");
        fprintf(stderr, "lsllama train: --grad-accum %d%s: the %d processes must divide it (each computes grad-accum "
                "/ W micro-batches of every step): use --grad-accum %d or a multiple of it\n", a.to.grad_accum,
                given ? "" : " (the default)", W, W);
        return 2;
    }
    /* token tasks: LS-unLLaMA's defaults and transformers' token head */
    if (a.token_task) {
        if (a.cc.multi_label) {
            fprintf(stderr, "lsllama train: --multi-label is for sequence tasks\n");
            return 2;
        }
        if (metric == LL_METRIC_ACCURACY || metric == LL_METRIC_MACRO_F1) {
            fprintf(stderr, "lsllama train: --metric for token tasks is f1 or token_accuracy\n");
            return 2;
        }
        a.to.metric = metric < 0 ? LL_METRIC_ENTITY_F1 : metric;
        a.cc.token_task = 1;
        a.cc.head_bias = 1;
        a.cc.head_dropout = head_dropout < 0 ? 0.1f : (float)head_dropout;
        if (mask_bidir < 0 && a.cc.bidirectional_from < 0) mask_bidir = 1;
    } else {
        if (metric == LL_METRIC_ENTITY_F1 || metric == LL_METRIC_TOKEN_ACCURACY) {
            fprintf(stderr, "lsllama train: --metric for sequence tasks is accuracy or macro_f1\n");
            return 2;
        }
        if (head_dropout >= 0) {
            fprintf(stderr, "lsllama train: --head-dropout is for token tasks (transformers' sequence head has none)\n");
            return 2;
        }
        a.to.metric = metric >= 0 ? metric : LL_METRIC_ACCURACY;
    }
    if (a.full_targets && (a.head_only || a.lora_option)) {
        fprintf(stderr, "lsllama train: full fine-tuning (--full, --full-targets) trains the base weights "
                "themselves: %s does not apply to it\n", a.head_only ? "--head-only" : a.lora_option);
        return 2;
    }
    ll_error err = {0};
    if (a.full_targets) {
        if (ll_full_targets_parse(a.full_targets, &a.cc.full_targets, &err) != LL_OK) {
            fprintf(stderr, "lsllama train: --full-targets: %s\n", err.message);
            return 2;
        }
        a.cc.lora_r = 0, a.cc.lora_targets = 0;
    } else if (a.head_only) a.cc.lora_r = 0, a.cc.lora_targets = 0;
    else if (a.cc.lora_r == 0) {
        fprintf(stderr, "lsllama train: --lora-r 0 with LoRA requested (use --head-only to train the head alone)\n");
        return 2;
    }
    if (!a.head_only && !a.full_targets && ll_lora_targets_parse(a.targets, &a.cc.lora_targets, &err) != LL_OK) {
        fprintf(stderr, "lsllama train: --lora-targets: %s\n", err.message);
        return 2;
    }
    ll_model *m = NULL;
    ll_tokenizer *tok = NULL;
    ll_labelmap *map = NULL;
    ll_dataset *train = NULL, *dev = NULL;
    ll_classifier *c = NULL;
    ll_run_dir *run_dir = NULL;
    int rc = 1;
    if (a.to.resume && a.to.overwrite) {
        fprintf(stderr, "lsllama train: --resume and --overwrite exclude each other\n");
        return 2;
    }
    /* a CPU without bf16 products is told before --out is touched */
    if (a.compute_given && ll_compute_check(a.compute, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        return 2;
    }
    /* Lock and check --out before minutes of loading: a finished run is never replaced unasked. Rank 0 owns it. */
    if (lead && ll_run_dir_open(&run_dir, a.out, a.to.resume ? LL_RUN_RESUME : a.to.overwrite ? LL_RUN_OVERWRITE
                                                                                      : LL_RUN_NEW, &err)) {
        fprintf(stderr, "lsllama train: --out %s\n", err.message);
        return 1;
    }
    a.to.run_dir = run_dir;
    a.to.dist = dist;
    /* a resumed run keeps the precision it recorded, unless told otherwise */
    ll_load_options lo = {.base_precision = a.base_precision, .compute = a.compute};
    if (lead && a.to.resume &&
        ((!a.base_precision_given && ll_run_base_precision(a.out, &lo.base_precision, &err) < 0) ||
         (!a.compute_given && ll_run_compute(a.out, &lo.compute, &err) < 0))) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        goto done;
    }
    /* Rank 0 loads and checks the model and the data first; the others start once it has (a bad file is
     * reported once, by rank 0, and stops every rank before training). */
    if (!lead && (ll_dist_agree(dist, 0, NULL) || ll_dist_bcast(dist, &lo, sizeof lo, &err))) goto done;
    if (ll_model_load(&m, a.model, &lo, &err) || ll_tokenizer_load(&tok, a.tokenizer ? a.tokenizer : a.model, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        goto done;
    }
    cli_tokenizer_warning("train", tok);
    if (!cls_check_model_bounds("train", a.max_length, a.max_length_given, a.cc.bidirectional_from, m)) {
        rc = 2;
        goto done;
    }
    const int L = ll_model_config(m)->n_layers;
    if (a.cc.bidirectional_from < 0)
        a.cc.bidirectional_from = mask_bidir > 0    ? 0
                                  : mask_bidir == 0 ? L
                                                    : ll_config_default_bidirectional_from(ll_model_config(m));
    if (cls_load_split("train", &a, a.train, tok, &map, &train)) goto done;
    ll_dataset_info train_info;
    ll_dataset_get_info(train, &train_info);
    if (!a.token_task && train_info.multi_label) { /* JSONL label arrays make the data multi-label on their own */
        a.cc.multi_label = 1;
        a.data_opt.multi_label = 1;
    }
    if (a.dev && cls_load_split("train", &a, a.dev, tok, &map, &dev)) goto done;
    if (lead && (ll_dist_agree(dist, 0, NULL) || ll_dist_bcast(dist, &lo, sizeof lo, &err))) goto done;
    a.cc.n_labels = ll_labelmap_size(map);
    if (ll_classifier_create(&c, m, &a.cc, a.to.seed, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        goto done;
    }
    a.to.out_dir = a.out;
    a.to.base_model_name = a.model;
    a.to.label_names = ll_labelmap_names(map);
    a.to.tokenizer = tok; /* full fine-tuning's model folders carry it */
    a.to.tokenizer_source = a.tokenizer ? a.tokenizer : a.model;
    int stderr_tty = isatty(STDERR_FILENO);
    if (!a.no_progress && lead) a.to.progress = print_progress, a.to.progress_ctx = &stderr_tty;
    if (W > 1) {
        const long cores = sysconf(_SC_NPROCESSORS_ONLN);
        const int local = ll_dist_local_size(dist), threads = ll_dist_threads(dist);
        fprintf(stderr, "data-parallel: %d ranks (%d on this node of %ld cores), %d OpenMP threads on this one "
                "(rank %d), %d micro-batches each per step\n", W, local, cores, threads, ll_dist_rank(dist),
                a.to.grad_accum / W);
        if (lead && cores > 0 && (long)local * threads > cores)
            fprintf(stderr, "lsllama train: warning: %d ranks x %d threads on %ld cores: the threads wait for each "
                    "other and training runs many times slower; leave OMP_NUM_THREADS unset (each rank then takes "
                    "its share of the cores)\n", local, threads, cores);
    }
    char what[160];
    if (a.full_targets) snprintf(what, sizeof what, "full fine-tuning of %s", a.full_targets);
    else snprintf(what, sizeof what, "LoRA r=%d on %s", a.cc.lora_r, a.head_only ? "nothing" : a.targets);
    fprintf(stderr, "training %zu trainable parameters (%s, %d labels), %s attention, %s%s\n",
            ll_classifier_n_params(c), what, ll_labelmap_size(map),
            a.cc.bidirectional_from >= L ? "causal" : a.cc.bidirectional_from == 0 ? "bidirectional" : "mixed",
            a.token_task ? "token head" : ll_pool_name(a.cc.pool), a.token_task ? "" : " pooling");
    ll_train_result res = {0};
    if (a.full_targets && lead) { /* the model folders will load in transformers: say now if it computes otherwise */
        ll_merge_options mo = ll_merge_options_default();
        mo.tokenizer = tok, mo.tokenizer_source = a.to.tokenizer_source, mo.allow_inexact = 1;
        ll_merge_report rep = {0};
        if (ll_merge_check(c, &mo, &rep, &err) == LL_OK)
            for (int i = 0; i < rep.n; i++)
                fprintf(stderr, "lsllama train: warning: transformers will compute the model folders differently "
                        "(lsllama reads them exactly): %s\n", rep.reason[i]);
    }
    if (ll_train(c, train, dev, &a.to, &res, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        goto done;
    }
    if (a.to.stop_after_steps > 0 && res.steps == 0) {
        rc = 0;
        goto done;
    }
    /* only what exists: without --dev (or before its first evaluation) there is no best adapter */
    if (!lead) {
        rc = 0;
        goto done;
    }
    printf("steps %lld, %.1f s, %.0f training tokens/s; ", (long long)res.steps, res.seconds, res.train_tokens_per_s);
    if (dev && res.best_step >= 0)
        printf("best dev %s %.4f at step %lld; %s in %s/best and %s/final\n",
               ll_metric_title((ll_metric)a.to.metric), res.best_metric,
               (long long)res.best_step, a.full_targets ? "models" : "adapters", a.out, a.out);
    else
        printf("%s%s; %s in %s/final\n", dev ? "no dev evaluation ran" : "no --dev file, so no best ",
               dev ? "" : a.full_targets ? "model" : "adapter", a.full_targets ? "model" : "adapter", a.out);
    rc = 0;
done:
    ll_classifier_free(c);
    ll_dataset_free(train);
    ll_dataset_free(dev);
    ll_labelmap_free(map);
    ll_tokenizer_free(tok);
    ll_model_free(m);
    ll_run_dir_close(run_dir);
    return rc;
}

