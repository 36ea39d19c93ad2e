/* `lsllama plot` and the library behind it (src/report): training logs are
 * read as the trainer writes them (resumed runs included), and the SVG is
 * checked by parsing it: balanced tags, one line per series with a point per
 * log line, x increasing with the step, the extreme values on the edges of
 * the data area, tick labels that are nice numbers placed where their values
 * map, escaped legend labels, one-point and constant series in the middle.
 * Bad input fails with the file (and line) named and leaves an existing
 * output file as it was. */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "report/svg_plot.h"
#include "report/train_log.h"
#include "test_util.h"

static char tmp[] = "/tmp/lsllama_plot_XXXXXX";

/* Run `lsllama plot ARGS` in tmp; returns the exit status (-1 on a signal)
 * and the stderr text in *err (malloc'd). */
static int run_plot(const char *args, char **err) {
    char cmd[8192], errp[600];
    snprintf(errp, sizeof errp, "%s/stderr.txt", tmp);
    snprintf(cmd, sizeof cmd, "cd %s && %s plot %s > /dev/null 2> %s", tmp, LL_CLI_PATH, args, errp);
    const int st = system(cmd);
    *err = test_read_file(errp);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- a few SVG readers ---------------------------------------------------- */

/* Every tag closed in order, comments skipped, one root element, and every
 * '&' starting an entity. */
static int well_formed(const char *s, char *why, size_t cap) {
    const char *stack[256];
    size_t lens[256];
    int depth = 0, roots = 0;
    for (const char *p = s; *p;) {
        if (*p == '&') {
            static const char *ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int ok = 0;
            for (int i = 0; i < 5; i++) ok |= !strncmp(p, ent[i], strlen(ent[i]));
            if (!ok) return snprintf(why, cap, "bare '&' at offset %ld", (long)(p - s)), 0;
            p++;
            continue;
        }
        if (*p == '>') return snprintf(why, cap, "stray '>' at offset %ld", (long)(p - s)), 0;
        if (*p != '<') {
            p++;
            continue;
        }
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p, "-->");
            if (!e) return snprintf(why, cap, "unterminated comment"), 0;
            p = e + 3;
            continue;
        }
        const char *gt = strchr(p, '>'), *lt = strchr(p + 1, '<');
        if (!gt || (lt && lt < gt)) return snprintf(why, cap, "unterminated tag at offset %ld", (long)(p - s)), 0;
        if (p[1] == '/') {
            const char *name = p + 2;
            const size_t len = strcspn(name, " \t\n>");
            if (!depth || lens[depth - 1] != len || strncmp(stack[depth - 1], name, len))
                return snprintf(why, cap, "</%.*s> does not close the open element", (int)len, name), 0;
            depth--;
        } else {
            const char *name = p + 1;
            const size_t len = strcspn(name, " \t\n/>");
            if (!depth) roots++;
            if (gt[-1] != '/') {
                if (depth == 256) return snprintf(why, cap, "too deep"), 0;
                stack[depth] = name, lens[depth] = len, depth++;
            }
        }
        p = gt + 1;
    }
    if (depth) return snprintf(why, cap, "%d elements left open", depth), 0;
    if (roots != 1) return snprintf(why, cap, "%d root elements", roots), 0;
    return 1;
}

/* The value of attribute name in the element starting at e (NULL if absent). */
static double attr_num(const char *e, const char *name) {
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *gt = strchr(e, '>'), *a = strstr(e, key);
    if (!a || (gt && a > gt)) return NAN;
    return strtod(a + strlen(key), NULL);
}

/* The text of the group starting at the element with this opening text, up
 * to its closing </g> (groups hold no nested groups here). malloc'd. */
static char *group(const char *svg, const char *open) {
    const char *a = strstr(svg, open);
    if (!a) return NULL;
    const char *b = strstr(a, "</g>");
    if (!b) return NULL;
    char *out = malloc((size_t)(b - a) + 1);
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = 0;
    return out;
}

/* Points of the first <polyline class="cls"> in s, from *from on. */
static int polyline(const char *s, const char *cls, double *x, double *y, int cap, const char **from) {
    char key[64];
    snprintf(key, sizeof key, "<polyline class=\"%s\"", cls);
    const char *e = strstr(from && *from ? *from : s, key);
    if (!e) return -1;
    const char *p = strstr(e, " points=\"");
    if (!p) return -1;
    p += 9;
    int n = 0;
    while (*p != '"') {
        char *end;
        const double a = strtod(p, &end);
        if (end == p || *end != ',') return -1;
        const double b = strtod(end + 1, &end);
        if (n < cap) x[n] = a, y[n] = b;
        n++;
        p = end;
        while (*p == ' ') p++;
    }
    if (from) *from = p;
    return n;
}

/* Tick texts of a group: positions (x or y attribute) and values. */
static int tick_labels(const char *g, const char *coord, double *pos, double *val, int cap) {
    int n = 0;
    for (const char *p = g; (p = strstr(p, "<text class=\"tick\"")) && n < cap; p++) {
        pos[n] = attr_num(p, coord);
        const char *t = strchr(p, '>') + 1;
        char *end;
        val[n] = strtod(t, &end);
        if (end == t || *end != '<') val[n] = NAN;
        n++;
    }
    return n;
}

/* Values a multiple of one step that is 1, 2 or 5 x 10^k. */
static int nice(const double *v, int n) {
    if (n < 2) return 0;
    const double step = v[1] - v[0];
    if (!(step > 0)) return 0;
    const double mag = pow(10, floor(log10(step) + 1e-9)), m = step / mag;
    if (fabs(m - 1) > 1e-6 && fabs(m - 2) > 1e-6 && fabs(m - 5) > 1e-6) return 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]) || fabs(v[i] / step - round(v[i] / step)) > 1e-6) return 0;
        if (i && fabs(v[i] - v[i - 1] - step) > step * 1e-6) return 0;
    }
    return 1;
}

typedef struct frame {
    double x, y, w, h;
} frame;

static frame get_frame(const char *svg) {
    const char *e = strstr(svg, "<rect class=\"frame\"");
    frame f = {NAN, NAN, NAN, NAN};
    if (e) f = (frame){attr_num(e, "x"), attr_num(e, "y"), attr_num(e, "width"), attr_num(e, "height")};
    return f;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- the logs --------------------------------------------------------------- */

static const double loss_a[10] = {0.9, 0.7, 0.8, 0.5, 0.45, 0.5, 0.3, 0.35, 0.25, 0.2};

static void write_logs(void) {
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/runA", tmp);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/runB", tmp);
    REQUIRE(mkdir(path, 0755) == 0);
    /* runA: ten steps, dev evaluations at 5 and 10, an event line, a blank line */
    char text[8192] = "{\"event\": \"start\", \"model\": \"x\"}\n";
    for (int s = 1; s <= 10; s++) {
        snprintf(line, sizeof line,
                 "{\"step\": %d, \"epoch\": 0, \"loss\": %g, \"lr\": 1e-05, \"grad_norm\": 1.5, "
                 "\"tokens_per_s\": 300.0, \"elapsed_s\": %d.5}\n",
                 s, loss_a[s - 1], 2 * s);
        strcat(text, line);
        if (s % 5 == 0) {
            snprintf(line, sizeof line,
                     "{\"step\": %d, \"eval\": \"dev\", \"loss\": 0.4, \"accuracy\": %g, \"macro_f1\": 0.7, "
                     "\"best\": true}\n",
                     s, s == 5 ? 0.7 : 0.82);
            strcat(text, line);
        }
        if (s == 3) strcat(text, "\n");
    }
    test_write_file(tmp, "runA/log.jsonl", text);
    /* runB: four steps, then a run resumed from its checkpoint at step 2
     * repeats steps 3-4 and goes on to 6, its clock restarting at 0 */
    test_write_file(tmp, "runB/log.jsonl",
               "{\"step\": 1, \"epoch\": 0, \"loss\": 1.0, \"elapsed_s\": 10}\n"
               "{\"step\": 2, \"epoch\": 0, \"loss\": 0.9, \"elapsed_s\": 20}\n"
               "{\"step\": 3, \"epoch\": 0, \"loss\": 0.8, \"elapsed_s\": 30}\n"
               "{\"step\": 4, \"epoch\": 0, \"loss\": 0.7, \"elapsed_s\": 40}\n"
               "{\"step\": 4, \"eval\": \"dev\", \"accuracy\": 0.5}\n"
               "{\"step\": 3, \"epoch\": 0, \"loss\": 0.6, \"elapsed_s\": 5}\n"
               "{\"step\": 4, \"epoch\": 0, \"loss\": 0.5, \"elapsed_s\": 10}\n"
               "{\"step\": 4, \"eval\": \"dev\", \"accuracy\": 0.6}\n"
               "{\"step\": 5, \"epoch\": 0, \"loss\": 0.4, \"elapsed_s\": 15}\n"
               "{\"step\": 6, \"epoch\": 0, \"loss\": 0.3, \"elapsed_s\": 20}\n"
               "{\"step\": 6, \"eval\": \"dev\", \"accuracy\": 0.65}\n");
}

/* ---- library ---------------------------------------------------------------- */

static void test_read(void) {
    char path[600];
    ll_error err = {0};
    ll_series s;
    snprintf(path, sizeof path, "%s/runA/log.jsonl", tmp);
    ll_log_query q = {.y_key = "loss"};
    REQUIRE(ll_train_log_read(path, &q, &s, &err) == 0);
    CHECK(s.n == 10);
    for (size_t i = 0; i < s.n && i < 10; i++) CHECK(s.x[i] == (double)(i + 1) && s.y[i] == loss_a[i]);
    ll_series_free(&s);
    /* dev accuracy against time: evaluation lines take their step's elapsed_s */
    q = (ll_log_query){.y_key = "accuracy", .eval = "dev", .x_key = "elapsed_s"};
    REQUIRE(ll_train_log_read(path, &q, &s, &err) == 0);
    CHECK(s.n == 2 && s.x[0] == 10.5 && s.x[1] == 20.5 && s.y[0] == 0.7 && s.y[1] == 0.82);
    ll_series_free(&s);
    /* the resumed run: later lines replace steps 3-4, time continues from step 2 */
    snprintf(path, sizeof path, "%s/runB/log.jsonl", tmp);
    q = (ll_log_query){.y_key = "loss", .x_key = "elapsed_s"};
    REQUIRE(ll_train_log_read(path, &q, &s, &err) == 0);
    const double bx[] = {10, 20, 25, 30, 35, 40}, by[] = {1.0, 0.9, 0.6, 0.5, 0.4, 0.3};
    CHECK(s.n == 6);
    for (size_t i = 0; i < s.n && i < 6; i++)
        CHECK_MSG(s.x[i] == bx[i] && s.y[i] == by[i], "point %zu: %g %g", i, s.x[i], s.y[i]);
    ll_series_free(&s);
    q = (ll_log_query){.y_key = "accuracy", .eval = "dev", .x_key = "elapsed_s"};
    REQUIRE(ll_train_log_read(path, &q, &s, &err) == 0);
    CHECK(s.n == 2 && s.x[0] == 30 && s.y[0] == 0.6 && s.x[1] == 40 && s.y[1] == 0.65);
    ll_series_free(&s);
    /* no such key: the file and the key named */
    q = (ll_log_query){.y_key = "f1", .eval = "dev"};
    CHECK(ll_train_log_read(path, &q, &s, &err) != 0 && strstr(err.message, "runB/log.jsonl") &&
          strstr(err.message, "\"f1\"") && s.n == 0 && !s.x);
    printf("missing key: %s\n", err.message);

    double y[] = {1, 2, 3, 4, 10}, m[5];
    ll_moving_average(y, 5, 3, m);
    CHECK(m[0] == 1.5 && m[1] == 2 && m[2] == 3 && fabs(m[3] - 17.0 / 3) < 1e-12 && m[4] == 7);
    ll_moving_average(y, 5, 1, m);
    CHECK(!memcmp(m, y, sizeof y));
    ll_moving_average(y, 5, 4, y); /* in place: windows [i-1, i+2] */
    CHECK(y[0] == 2 && y[1] == 2.5 && y[2] == 4.75 && fabs(y[4] - 7) < 1e-12);
}

/* ---- the command ---------------------------------------------------------- */

static void test_two_runs(void) {
    char *err, path[600];
    int st = run_plot("runA='A&B <1>' runB --y loss --out two.svg --title 'loss \"both\" <runs>'", &err);
    CHECK_MSG(st == 0, "exit %d: %s", st, err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/two.svg", tmp);
    char *svg = test_read_file(path);
    REQUIRE(svg);
    char why[256] = "";
    size_t len = strlen(svg);
    while (len && (svg[len - 1] == '\n' || svg[len - 1] == ' ')) len--;
    CHECK(!strncmp(svg, "<svg", 4) && len >= 6 && !strncmp(svg + len - 6, "</svg>", 6));
    CHECK(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\"") && strstr(svg, "version=\"1.1\""));
    CHECK_MSG(well_formed(svg, why, sizeof why), "%s", why);
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"));
    /* escaped labels and title */
    CHECK(strstr(svg, ">A&amp;B &lt;1&gt;</text>") && !strstr(svg, "A&B"));
    CHECK(strstr(svg, "loss &quot;both&quot; &lt;runs&gt;</text>"));
    char *legend = group(svg, "<g class=\"legend\"");
    CHECK(legend && strstr(legend, ">A&amp;B &lt;1&gt;<") && strstr(legend, ">runB<"));
    free(legend);

    /* one line per series, a point per training line, x increasing */
    const frame fr = get_frame(svg);
    REQUIRE(isfinite(fr.x) && isfinite(fr.h) && fr.w > 100 && fr.h > 100);
    CHECK(count(svg, "<polyline") == 2 && count(svg, "<g class=\"series\"") == 2);
    double xa[32], ya[32], xb[32], yb[32];
    char *ga = group(svg, "<g class=\"series\" id=\"series-0\"");
    char *gb = group(svg, "<g class=\"series\" id=\"series-1\"");
    REQUIRE(ga && gb);
    const int na = polyline(ga, "line", xa, ya, 32, NULL), nb = polyline(gb, "line", xb, yb, 32, NULL);
    CHECK_MSG(na == 10 && nb == 6, "points %d %d", na, nb);
    for (int i = 1; i < na && i < 10; i++) CHECK(xa[i] > xa[i - 1]);
    for (int i = 1; i < nb && i < 6; i++) CHECK(xb[i] > xb[i - 1]);
    /* markers: on by default for series this short */
    CHECK(strstr(ga, "<path class=\"markers\"") && count(strstr(ga, "<path class=\"markers\""), "M") == 10);
    /* the extremes on the data area's edges: x 1..10, y 0.2 (runA step 10) .. 1.0 (runB step 1) */
    const double P = LL_PLOT_PAD, top = fr.y + P, bottom = fr.y + fr.h - P, left = fr.x + P, right = fr.x + fr.w - P;
    if (na == 10 && nb == 6) {
        CHECK_MSG(fabs(yb[0] - top) < 0.011, "max y at %g, top %g", yb[0], top);
        CHECK_MSG(fabs(ya[9] - bottom) < 0.011, "min y at %g, bottom %g", ya[9], bottom);
        CHECK(fabs(xa[0] - left) < 0.011 && fabs(xb[0] - left) < 0.011 && fabs(xa[9] - right) < 0.011);
        /* runB's points are at steps 1..6 on the same axis as runA's */
        for (int i = 0; i < 6; i++) CHECK(fabs(xb[i] - xa[i]) < 0.011);
        /* every point where the linear map puts it */
        for (int i = 0; i < 10; i++)
            CHECK(fabs(ya[i] - (top + (1.0 - loss_a[i]) / 0.8 * (bottom - top))) < 0.011);
        for (int i = 0; i < na; i++) CHECK(ya[i] >= top - 1e-9 && ya[i] <= bottom + 1e-9);
    }
    /* tick labels: nice numbers, placed where their values map */
    double pos[64], val[64];
    char *gx = group(svg, "<g class=\"xticks\""), *gy = group(svg, "<g class=\"yticks\"");
    REQUIRE(gx && gy);
    int nt = tick_labels(gy, "y", pos, val, 64);
    CHECK_MSG(nt >= 3 && nice(val, nt), "%d y ticks, first %g", nt, val[0]);
    for (int i = 0; i < nt; i++) {
        const double want = top + (1.0 - val[i]) / 0.8 * (bottom - top) + 12 * 0.35; /* baseline below the line */
        CHECK_MSG(fabs(pos[i] - want) < 0.02 && pos[i] >= fr.y && pos[i] <= fr.y + fr.h + 5, "y tick %g at %g, want %g",
                  val[i], pos[i], want);
    }
    nt = tick_labels(gx, "x", pos, val, 64);
    CHECK_MSG(nt >= 3 && nice(val, nt), "%d x ticks", nt);
    for (int i = 0; i < nt; i++) CHECK(fabs(pos[i] - (left + (val[i] - 1) / 9 * (right - left))) < 0.02);
    free(gx);
    free(gy);
    free(ga);
    free(gb);
    free(svg);

    /* smoothing: raw lines faint underneath, the line is the moving average */
    st = run_plot("runA runB --y loss --smooth 3 --out smooth.svg", &err);
    CHECK_MSG(st == 0, "exit %d: %s", st, err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/smooth.svg", tmp);
    svg = test_read_file(path);
    REQUIRE(svg);
    CHECK_MSG(well_formed(svg, why, sizeof why), "%s", why);
    CHECK(count(svg, "<polyline class=\"raw\"") == 2 && count(svg, "<polyline class=\"line\"") == 2);
    const frame fs = get_frame(svg);
    const double st_top = fs.y + P, st_bot = fs.y + fs.h - P;
    double xr[32], yr[32], xs[32], ys[32];
    const char *at = NULL;
    CHECK(polyline(svg, "raw", xr, yr, 32, &at) == 10 && polyline(svg, "line", xs, ys, 32, NULL) == 10);
    double m[10];
    ll_moving_average(loss_a, 10, 3, m);
    for (int i = 0; i < 10; i++) {
        CHECK(fabs(yr[i] - (st_top + (1.0 - loss_a[i]) / 0.8 * (st_bot - st_top))) < 0.011);
        CHECK(fabs(ys[i] - (st_top + (1.0 - m[i]) / 0.8 * (st_bot - st_top))) < 0.011);
    }
    CHECK(strstr(svg, "moving average over 3 points"));
    free(svg);

    /* dev accuracy: two runs, markers on each point */
    st = run_plot("runA runB=resumed --y accuracy --eval dev --out dev.svg", &err);
    CHECK_MSG(st == 0, "exit %d: %s", st, err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/dev.svg", tmp);
    svg = test_read_file(path);
    REQUIRE(svg);
    CHECK_MSG(well_formed(svg, why, sizeof why), "%s", why);
    ga = group(svg, "<g class=\"series\" id=\"series-1\"");
    CHECK(ga && polyline(ga, "line", xa, ya, 32, NULL) == 2 && count(ga, "M") == 2 && ya[1] < ya[0]);
    CHECK(strstr(svg, ">resumed</text>") && strstr(svg, ">dev accuracy</text>"));
    free(ga);
    free(svg);
}

/* One point, and a constant series: the middle of the data area. */
static void test_degenerate(void) {
    char *err, path[600];
    test_write_file(tmp, "one.jsonl", "{\"step\": 7, \"loss\": 0.5}\n");
    test_write_file(tmp, "flat.jsonl", "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": 2}\n{\"step\": 3, \"loss\": 2}\n");
    int st = run_plot("one.jsonl --y loss --out one.svg", &err);
    CHECK_MSG(st == 0, "exit %d: %s", st, err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/one.svg", tmp);
    char *svg = test_read_file(path), why[256];
    REQUIRE(svg);
    CHECK_MSG(well_formed(svg, why, sizeof why), "%s", why);
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf") && !strstr(svg, "<polyline"));
    frame fr = get_frame(svg);
    char *g0 = group(svg, "<g class=\"series\" id=\"series-0\"");
    const char *mk = g0 ? strstr(g0, "<path class=\"markers\"") : NULL;
    CHECK(mk && count(mk, "M") == 1);
    if (mk) { /* the circle starts r left of its centre */
        const char *d = strstr(mk, " d=\"M");
        double cx = 0, cy = 0;
        CHECK(d && sscanf(d + 5, "%lf,%lf", &cx, &cy) == 2);
        CHECK_MSG(fabs(cx + 3.5 - (fr.x + fr.w / 2)) < 0.011 && fabs(cy - (fr.y + fr.h / 2)) < 0.011, "at %g,%g", cx,
                  cy);
    }
    free(g0);
    CHECK(strstr(svg, ">one</text>"));
    double pos[64], val[64];
    char *g = group(svg, "<g class=\"yticks\"");
    const int nt = g ? tick_labels(g, "y", pos, val, 64) : 0;
    CHECK(nt >= 2 && nice(val, nt));
    free(g);
    free(svg);

    st = run_plot("flat.jsonl=flat --y loss --out flat.svg", &err);
    CHECK_MSG(st == 0, "exit %d: %s", st, err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/flat.svg", tmp);
    svg = test_read_file(path);
    REQUIRE(svg);
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"));
    fr = get_frame(svg);
    double x[8], y[8];
    CHECK(polyline(svg, "line", x, y, 8, NULL) == 3);
    CHECK(fabs(y[0] - (fr.y + fr.h / 2)) < 0.011 && y[1] == y[0] && y[2] == y[0]);
    CHECK(fabs(x[0] - (fr.x + LL_PLOT_PAD)) < 0.011 && fabs(x[2] - (fr.x + fr.w - LL_PLOT_PAD)) < 0.011);
    free(svg);
}

/* Refused with the cause named; keep.svg stays as it was, no temporary files left. */
static void expect_fail(const char *label, const char *args, const char *n1, const char *n2) {
    char *err;
    const int st = run_plot(args, &err);
    CHECK_MSG(st > 0, "%s: exit status %d (want a non-zero exit, no signal)", label, st);
    CHECK_MSG(err && (!n1 || strstr(err, n1)) && (!n2 || strstr(err, n2)), "%s: stderr lacks '%s'/'%s': %s", label,
              n1 ? n1 : "", n2 ? n2 : "", err ? err : "(none)");
    CHECK_MSG(err && !strstr(err, "Sanitizer") && !strstr(err, "runtime error"), "%s: sanitizer report", label);
    printf("%-28s -> %s", label, err && *err ? err : "(no message)\n");
    free(err);
    char path[600];
    snprintf(path, sizeof path, "%s/keep.svg", tmp);
    char *keep = test_read_file(path);
    CHECK_MSG(keep && !strcmp(keep, "<svg>old</svg>\n"), "%s: keep.svg changed", label);
    free(keep);
    DIR *d = opendir(tmp);
    REQUIRE(d);
    for (struct dirent *e; (e = readdir(d));) CHECK_MSG(!strstr(e->d_name, ".tmp."), "%s: left %s", label, e->d_name);
    closedir(d);
}

static void test_bad_input(void) {
    test_write_file(tmp, "keep.svg", "<svg>old</svg>\n");
    /* line 3 is cut short (line 2 is blank) */
    test_write_file(tmp, "bad.jsonl", "{\"step\": 1, \"loss\": 0.5}\n\n{\"step\": 2, \"loss\": 0.4,\n{\"step\": 3}\n");
    test_write_file(tmp, "notobj.jsonl", "{\"step\": 1, \"loss\": 0.5}\n[1, 2]\n");
    test_write_file(tmp, "strloss.jsonl", "{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"loss\": \"low\"}\n");
    test_write_file(tmp, "empty.jsonl", "");
    test_write_file(tmp, "zero.jsonl", "{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"loss\": 0}\n");
    expect_fail("malformed line", "runA bad.jsonl --y loss --out keep.svg", "bad.jsonl:3", "JSON");
    expect_fail("not an object", "notobj.jsonl --y loss --out keep.svg", "notobj.jsonl:2", "object");
    expect_fail("non-numeric value", "strloss.jsonl --y loss --out keep.svg", "strloss.jsonl:2", "\"loss\"");
    expect_fail("missing key", "runA --y f1 --out keep.svg", "runA/log.jsonl", "\"f1\"");
    expect_fail("missing key (dev)", "runA --y grad_norm --eval dev --out keep.svg", "runA/log.jsonl", "\"grad_norm\"");
    expect_fail("no evaluation lines", "runA --y loss --eval test --out keep.svg", "runA/log.jsonl", "\"test\"");
    expect_fail("empty log", "empty.jsonl --y loss --out keep.svg", "empty.jsonl", "\"loss\"");
    expect_fail("missing file", "nope.jsonl --y loss --out keep.svg", "nope.jsonl", NULL);
    expect_fail("missing folder", "runZ=label --y loss --out keep.svg", "runZ", NULL);
    expect_fail("log axis and zero", "zero.jsonl --y loss --logy --out keep.svg", "zero", "y = 0");
    expect_fail("no --y", "runA --out keep.svg", "--y", NULL);
    expect_fail("no --out", "runA --y loss", "--out", NULL);
    expect_fail("bad --smooth", "runA --y loss --smooth x --out keep.svg", "--smooth", NULL);
    expect_fail("output folder missing", "runA --y loss --out no/such/dir.svg", "no/such/dir.svg", NULL);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    write_logs();
    test_read();
    test_two_runs();
    test_degenerate();
    test_bad_input();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (!test_failures_) (void)system(cmd);
    else fprintf(stderr, "files kept in %s\n", tmp);
    return test_summary("test_plot");
}
