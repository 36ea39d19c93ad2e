/* lsllama plot: SVG line plots of training logs (DIR/log.jsonl written by
 * `lsllama train`): training loss or a dev metric against step or time, one
 * series per run. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "report/svg_plot.h"
#include "report/train_log.h"

#define MAX_INPUTS 64

static void help(void) {
    printf("usage: lsllama plot LOG_OR_DIR[=LABEL] ... --y KEY --out FILE.svg [options]\n\n"
           "Draws one line per training log as an SVG image. A folder stands for its log.jsonl (the log\n"
           "`lsllama train --out DIR` writes); LABEL names the series in the legend (default: the folder).\n\n"
           "  --y KEY          value to plot: loss, accuracy, macro_f1, lr, grad_norm, ... (any numeric key)\n"
           "  --eval NAME      plot evaluation lines (\"eval\": NAME, e.g. dev); 'none' (default) plots the\n"
           "                   training lines (those without \"eval\")\n"
           "  --x KEY          step (default), elapsed_s or another numeric key\n"
           "  --out FILE       the SVG file to write (replaced atomically; left as it was on any error)\n"
           "  --title T        title (default e.g. 'training loss' or 'dev accuracy')\n"
           "  --xlabel T, --ylabel T  axis labels (default: the keys)\n"
           "  --smooth N       centred moving average over N points; the raw values are drawn faintly\n"
           "  --width W, --height H   size in pixels (default 800 x 480)\n"
           "  --logy           logarithmic y axis\n"
           "  --markers, --no-markers  mark every point (default: series of at most %d points)\n\n"
           "A resumed run's log repeats the steps after its checkpoint: the later lines win, and elapsed_s\n"
           "continues from the time of the checkpoint. Evaluation lines take elapsed_s from their step.\n",
           LL_PLOT_AUTO_MARKERS);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* The last component of a path's resolved form ("." -> the folder's name). */
static void base_name(const char *path, char *out, size_t cap) {
    char real[PATH_MAX];
    const char *p = realpath(path, real) ? real : path;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && p[b - 1] != '/') b--;
    snprintf(out, cap, "%.*s", (int)(n - b), p + b);
}

typedef struct input {
    char path[PATH_MAX + 16];
    char label[256];
    const char *given_label;
    ll_series s;
} input;

/* "PATH[=LABEL]": split at the first '=' after which the path exists, so
 * both paths and labels may contain '='. 0 (after a message) when the path
 * or the label is too long to keep whole. */
static int parse_input(const char *arg, input *in) {
    if (strlen(arg) >= PATH_MAX) {
        fprintf(stderr, "lsllama plot: '%.40s...': longer than %d characters\n", arg, PATH_MAX - 1);
        return 0;
    }
    char path[PATH_MAX];
    const char *eq = NULL;
    if (!exists(arg))
        for (const char *p = strchr(arg, '='); p; p = strchr(p + 1, '=')) {
            snprintf(path, sizeof path, "%.*s", (int)(p - arg), arg);
            if (!eq) eq = p; /* nothing exists: the first '=', so the error names the path part */
            if (exists(path)) {
                eq = p;
                break;
            }
        }
    snprintf(path, sizeof path, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    in->given_label = eq ? eq + 1 : NULL;
    if (is_dir(path)) {
        snprintf(in->path, sizeof in->path, "%s%slog.jsonl", path, path[strlen(path) - 1] == '/' ? "" : "/");
        base_name(path, in->label, sizeof in->label);
    } else {
        snprintf(in->path, sizeof in->path, "%s", path);
        const char *slash = strrchr(path, '/'), *file = slash ? slash + 1 : path;
        if (!strcmp(file, "log.jsonl")) { /* the run's folder */
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
            base_name(dir, in->label, sizeof in->label);
        } else {
            size_t n = strlen(file);
            if (n > 6 && !strcmp(file + n - 6, ".jsonl")) n -= 6;
            snprintf(in->label, sizeof in->label, "%.*s", (int)n, file);
        }
    }
    if (in->given_label) {
        if (strlen(in->given_label) >= sizeof in->label) {
            fprintf(stderr, "lsllama plot: %s: the label '%.40s...' is longer than %zu characters\n", path,
                    in->given_label, sizeof in->label - 1);
            return 0;
        }
        snprintf(in->label, sizeof in->label, "%s", in->given_label);
    }
    return 1;
}

int cmd_plot(int argc, char **argv) {
    static input inputs[MAX_INPUTS];
    int n_in = 0, rc = 1;
    const char *y_key = NULL, *x_key = "step", *eval = "none", *out = NULL, *title = NULL, *xlabel = NULL,
               *ylabel = NULL;
    ll_plot_options po = {0};
    long v;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            help();
            return 0;
        } else if (!strcmp(o, "--logy")) {
            po.logy = 1;
        } else if (!strcmp(o, "--markers")) {
            po.markers = 1;
        } else if (!strcmp(o, "--no-markers")) {
            po.markers = -1;
        } else if (!val && (!strcmp(o, "--y") || !strcmp(o, "--x") || !strcmp(o, "--eval") || !strcmp(o, "--out") ||
                            !strcmp(o, "--title") || !strcmp(o, "--xlabel") || !strcmp(o, "--ylabel") ||
                            !strcmp(o, "--smooth") || !strcmp(o, "--width") || !strcmp(o, "--height"))) {
            fprintf(stderr, "lsllama plot: %s needs a value (see --help)\n", o);
            return 2;
        } else if (!strcmp(o, "--y")) {
            y_key = argv[++i];
        } else if (!strcmp(o, "--x")) {
            x_key = argv[++i];
        } else if (!strcmp(o, "--eval")) {
            eval = argv[++i];
        } else if (!strcmp(o, "--out")) {
            out = argv[++i];
        } else if (!strcmp(o, "--title")) {
            title = argv[++i];
        } else if (!strcmp(o, "--xlabel")) {
            xlabel = argv[++i];
        } else if (!strcmp(o, "--ylabel")) {
            ylabel = argv[++i];
        } else if (!strcmp(o, "--smooth")) {
            if (!cli_parse_int("plot", o, argv[++i], 1, 1000000, &v)) return 2;
            po.smooth = (int)v;
        } else if (!strcmp(o, "--width")) {
            if (!cli_parse_int("plot", o, argv[++i], 200, 20000, &v)) return 2;
            po.width = (int)v;
        } else if (!strcmp(o, "--height")) {
            if (!cli_parse_int("plot", o, argv[++i], 150, 20000, &v)) return 2;
            po.height = (int)v;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "lsllama plot: unknown option '%s' (see --help)\n", o);
            return 2;
        } else if (n_in == MAX_INPUTS) {
            fprintf(stderr, "lsllama plot: at most %d logs in one plot\n", MAX_INPUTS);
            return 2;
        } else {
            if (!parse_input(o, &inputs[n_in++])) return 2;
        }
    }
    if (!n_in || !y_key || !*y_key || !out || !*out) {
        fprintf(stderr, "lsllama plot: %s (see --help)\n",
                !n_in ? "missing LOG_OR_DIR" : !y_key || !*y_key ? "missing --y KEY" : "missing --out FILE.svg");
        return 2;
    }
    if (!*eval || !*x_key) {
        fprintf(stderr, "lsllama plot: --eval and --x need a non-empty value\n");
        return 2;
    }
    const int train = !strcmp(eval, "none");
    /* the default title holds the keys whole (no fixed buffer to cut them) */
    char *title_buf = NULL;
    if (!title) {
        const size_t cap = strlen(eval) + strlen(y_key) + 64;
        title_buf = malloc(cap);
        if (!title_buf) {
            fprintf(stderr, "lsllama plot: out of memory\n");
            return 1;
        }
        snprintf(title_buf, cap, "%s %s", train ? "training" : eval, y_key);
        if (po.smooth > 1)
            snprintf(title_buf + strlen(title_buf), cap - strlen(title_buf), " (moving average over %d points)",
                     po.smooth);
        title = title_buf;
    }
    if (!xlabel) xlabel = !strcmp(x_key, "elapsed_s") ? "elapsed time (s)" : x_key;
    po.title = title, po.xlabel = xlabel, po.ylabel = ylabel ? ylabel : y_key;

    ll_error err = {0};
    ll_plot_series ps[MAX_INPUTS];
    const ll_log_query q = {.y_key = y_key, .x_key = x_key, .eval = eval};
    int n_read = 0;
    for (; n_read < n_in; n_read++) {
        input *in = &inputs[n_read];
        if (ll_train_log_read(in->path, &q, &in->s, &err)) {
            fprintf(stderr, "lsllama plot: %s\n", err.message);
            goto done;
        }
        ps[n_read] = (ll_plot_series){.label = in->label, .x = in->s.x, .y = in->s.y, .n = in->s.n};
    }
    if (ll_svg_plot_save(out, ps, (size_t)n_in, &po, &err)) {
        fprintf(stderr, "lsllama plot: %s\n", err.message);
        goto done;
    }
    for (int i = 0; i < n_in; i++)
        fprintf(stderr, "%s: %zu point%s\n", inputs[i].label, inputs[i].s.n, inputs[i].s.n == 1 ? "" : "s");
    fprintf(stderr, "wrote %s\n", out);
    rc = 0;
done:
    free(title_buf);
    for (int i = 0; i < n_read; i++) ll_series_free(&inputs[i].s);
    return rc;
}
