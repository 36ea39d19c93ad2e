#include "report/svg_plot.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "text/utf8.h"

/* Okabe & Ito (2008), ordered for contrast on white; yellow last. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000", "#F0E442"};
#define N_COLORS 8
#define N_SHAPES 4 /* circle, square, triangle, diamond */

#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"
#define FS_TICK 12.0
#define FS_LABEL 13.0
#define FS_TITLE 15.0
#define CHAR_W 0.62 /* average glyph width / font size, for layout estimates */
#define TICK_LEN 5.0
#define MARKER_R 3.5
#define LEGEND_ROW 20.0
#define LEGEND_SWATCH 26.0
#define MAX_TICKS 64

void ll_moving_average(const double *y, size_t n, int w, double *out) {
    if (w <= 1) {
        memmove(out, y, n * sizeof(double));
        return;
    }
    const size_t before = (size_t)(w - 1) / 2, after = (size_t)w / 2;
    /* running sum over the window [lo, hi] */
    double sum = 0;
    size_t lo = 0, hi = 0; /* window is [lo, hi) */
    double *tmp = NULL;
    if (out == y) { /* in place: work from a copy */
        tmp = malloc(n * sizeof(double));
        if (!tmp) return; /* leave the values unsmoothed */
        memcpy(tmp, y, n * sizeof(double));
        y = tmp;
    }
    for (size_t i = 0; i < n; i++) {
        const size_t a = i > before ? i - before : 0, b = i + after + 1 < n ? i + after + 1 : n;
        while (hi < b) sum += y[hi++];
        while (lo < a) sum -= y[lo++];
        out[i] = sum / (double)(hi - lo);
    }
    free(tmp);
}

/* ---- text ----------------------------------------------------------------- */

/* Code points of a UTF-8 string (invalid bytes count one each). */
static size_t text_len(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

static double text_w(const char *s, double fs) { return (double)text_len(s) * fs * CHAR_W; }

/* XML character data / attribute value: escapes the five specials, turns
 * control characters into spaces and invalid UTF-8 into U+FFFD. */
static void put_escaped(FILE *f, const char *s) {
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s);
    while (n) {
        int bad = 0, len = ll_utf8_valid_len(p, n, &bad);
        if (!len) {
            fputs("\xEF\xBF\xBD", f);
            p += bad, n -= (size_t)bad;
            continue;
        }
        if (len == 1) {
            const char c = (char)*p;
            if (c == '&') fputs("&amp;", f);
            else if (c == '<') fputs("&lt;", f);
            else if (c == '>') fputs("&gt;", f);
            else if (c == '"') fputs("&quot;", f);
            else if (c == '\'') fputs("&apos;", f);
            else if ((unsigned char)c < 0x20 || c == 0x7F) fputc(' ', f);
            else fputc(c, f);
        } else {
            fwrite(p, 1, (size_t)len, f);
        }
        p += len, n -= (size_t)len;
    }
}

/* ---- ticks ---------------------------------------------------------------- */

typedef struct ticks {
    double v[MAX_TICKS]; /* data values (not log10) */
    char label[MAX_TICKS][32];
    int n;
} ticks;

/* 1, 2 or 5 x 10^k near raw. */
static double nice_step(double raw) {
    const double mag = pow(10, floor(log10(raw))), norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

/* A tick value as text, with the decimals the step needs; tiny or huge
 * values in scientific notation, sharing the exponent of the axis's largest
 * value so that the labels line up ("5.0e-4", "4.5e-4", ..., "0.5e-4"). */
static void format_tick(double v, double step, double maxabs, char *buf, size_t cap) {
    if (v == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    const int k = (int)floor(log10(step) + 1e-9);
    if (step < 1e-3 || maxabs >= 1e6) {
        const int e = (int)floor(log10(maxabs) + 1e-9), digits = e - k;
        snprintf(buf, cap, "%.*fe%d", digits < 0 ? 0 : digits > 15 ? 15 : digits, v / pow(10, e), e);
    } else {
        snprintf(buf, cap, "%.*f", k < 0 ? -k : 0, v);
    }
}

/* Linear ticks at multiples of a nice step inside [lo, hi], about target of them. */
static void linear_ticks(double lo, double hi, int target, ticks *t) {
    t->n = 0;
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo)) return;
    const double step = nice_step((hi - lo) / (target > 1 ? target : 1));
    if (!isfinite(step) || !(step > 0)) return;
    const double first = ceil(lo / step - 1e-9), last = floor(hi / step + 1e-9);
    double maxabs = 0;
    for (double k = first; k <= last && t->n < MAX_TICKS; k++) {
        double v = k * step;
        if (fabs(v) < step * 1e-9) v = 0;
        t->v[t->n++] = v;
        maxabs = fabs(v) > maxabs ? fabs(v) : maxabs;
    }
    for (int i = 0; i < t->n; i++) format_tick(t->v[i], step, maxabs, t->label[i], sizeof t->label[0]);
}

/* Ticks for a log10 axis spanning [lo, hi] (in log10 units): powers of ten,
 * else 1, 2, 5 x 10^k, else linear nice ticks for a range under a decade. */
static void log_ticks(double lo, double hi, int target, ticks *t) {
    t->n = 0;
    const int d0 = (int)ceil(lo - 1e-9), d1 = (int)floor(hi + 1e-9);
    if (d1 - d0 + 1 >= 3) {
        const int every = (d1 - d0 + 1 + target - 1) / (target > 1 ? target : 1);
        for (int d = d0; d <= d1 && t->n < MAX_TICKS; d++) {
            if ((d - d0) % (every > 0 ? every : 1)) continue;
            t->v[t->n] = pow(10, d);
            if (d >= -4 && d <= 5) snprintf(t->label[t->n], sizeof t->label[0], "%.*f", d < 0 ? -d : 0, pow(10, d));
            else snprintf(t->label[t->n], sizeof t->label[0], "1e%d", d);
            t->n++;
        }
        return;
    }
    static const int mult[] = {1, 2, 5};
    for (int d = (int)floor(lo) - 1; d <= (int)ceil(hi) && t->n < MAX_TICKS; d++)
        for (int m = 0; m < 3 && t->n < MAX_TICKS; m++) {
            const double v = mult[m] * pow(10, d), l = log10(v);
            if (l < lo - 1e-9 || l > hi + 1e-9) continue;
            t->v[t->n] = v;
            format_tick(v, pow(10, d), v, t->label[t->n], sizeof t->label[0]);
            t->n++;
        }
    if (t->n >= 3) return;
    linear_ticks(pow(10, lo), pow(10, hi), target, t);
    int k = 0; /* a linear tick at 0 has no place on a log axis */
    for (int i = 0; i < t->n; i++)
        if (t->v[i] > 0) t->v[k] = t->v[i], memmove(t->label[k], t->label[i], sizeof t->label[0]), k++;
    t->n = k;
}

/* ---- layout --------------------------------------------------------------- */

typedef struct layout {
    double W, H;
    double left, top, pw, ph;  /* the frame */
    double xlo, xhi, ylo, yhi; /* data extent (y in log10 with logy) */
    ticks xt, yt;
    int legend_rows;
    double title_y, legend_y;
} layout;

static double px(const layout *L, double x) {
    return L->left + LL_PLOT_PAD + (x - L->xlo) / (L->xhi - L->xlo) * (L->pw - 2 * LL_PLOT_PAD);
}

static double py(const layout *L, double y, int logy) {
    const double v = logy ? log10(y) : y;
    return L->top + LL_PLOT_PAD + (L->yhi - v) / (L->yhi - L->ylo) * (L->ph - 2 * LL_PLOT_PAD);
}

static int use_markers(const ll_plot_options *o, size_t n) {
    return o->markers > 0 || (o->markers == 0 && n <= LL_PLOT_AUTO_MARKERS);
}

static double legend_item_w(const ll_plot_series *s) {
    return LEGEND_SWATCH + 6 + text_w(s->label ? s->label : "", FS_LABEL) + 18;
}

/* Rows the legend needs within width w. */
static int legend_rows(const ll_plot_series *s, size_t n, double w) {
    int rows = 1;
    double x = 0;
    for (size_t i = 0; i < n; i++) {
        const double iw = legend_item_w(&s[i]);
        if (x > 0 && x + iw > w) rows++, x = 0;
        x += iw;
    }
    return rows;
}

/* Value range [lo, hi] widened by pad pixels on either side of an axis of len pixels. */
static void frame_range(double lo, double hi, double len, double *flo, double *fhi) {
    const double ext = LL_PLOT_PAD / (len - 2 * LL_PLOT_PAD) * (hi - lo);
    *flo = lo - ext, *fhi = hi + ext;
}

static int do_layout(layout *L, const ll_plot_series *s, size_t n, const ll_plot_options *o, ll_error *err) {
    memset(L, 0, sizeof *L);
    L->W = o->width ? o->width : 800;
    L->H = o->height ? o->height : 480;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < s[i].n; k++) {
            const double x = s[i].x[k], y = o->logy ? log10(s[i].y[k]) : s[i].y[k];
            xlo = x < xlo ? x : xlo, xhi = x > xhi ? x : xhi;
            ylo = y < ylo ? y : ylo, yhi = y > yhi ? y : yhi;
        }
    /* all equal: a range around the value, which maps to the middle */
    if (!(xhi > xlo)) {
        const double d = xlo != 0 ? fabs(xlo) * 0.1 : 1;
        xlo -= d, xhi += d;
    }
    if (!(yhi > ylo)) {
        const double d = o->logy ? 0.1 : ylo != 0 ? fabs(ylo) * 0.1 : 1;
        ylo -= d, yhi += d;
    }
    if (!isfinite(xhi - xlo) || !isfinite(yhi - ylo))
        return ll_fail(err, LL_ERR_ARG, "the values span too wide a range to draw");
    L->xlo = xlo, L->xhi = xhi, L->ylo = ylo, L->yhi = yhi;
    const int has_title = o->title && *o->title, has_xl = o->xlabel && *o->xlabel, has_yl = o->ylabel && *o->ylabel;
    const double bottom = TICK_LEN + 4 + FS_TICK + (has_xl ? 10 + FS_LABEL : 0) + 10;
    const double right = 24;
    L->title_y = 10 + FS_TITLE;
    int rows = 1;
    for (int iter = 0; iter < 4; iter++) {
        L->legend_y = (has_title ? L->title_y + 14 : 8) + LEGEND_ROW / 2;
        L->top = L->legend_y - LEGEND_ROW / 2 + rows * LEGEND_ROW + 6;
        L->ph = L->H - L->top - bottom;
        if (L->ph < 2 * LL_PLOT_PAD + 30) break;
        double flo, fhi;
        frame_range(L->ylo, L->yhi, L->ph, &flo, &fhi);
        int target = (int)(L->ph / 45);
        target = target < 2 ? 2 : target > 12 ? 12 : target;
        if (o->logy) log_ticks(flo, fhi, target, &L->yt);
        else linear_ticks(flo, fhi, target, &L->yt);
        double tw = 0;
        for (int i = 0; i < L->yt.n; i++) {
            const double w = text_w(L->yt.label[i], FS_TICK);
            tw = w > tw ? w : tw;
        }
        L->left = 10 + (has_yl ? FS_LABEL + 10 : 0) + tw + 4 + TICK_LEN;
        L->pw = L->W - L->left - right;
        const int r = legend_rows(s, n, L->W - L->left - 10);
        if (r == rows) break;
        rows = r;
    }
    L->legend_rows = rows;
    if (L->ph < 2 * LL_PLOT_PAD + 30 || L->pw < 2 * LL_PLOT_PAD + 30)
        return ll_fail(err, LL_ERR_ARG, "%gx%g pixels leave no room for the plot, its labels and %zu legend %s", L->W,
                       L->H, n, n == 1 ? "entry" : "entries");
    /* x ticks: as many as fit without their labels touching */
    double flo, fhi;
    frame_range(L->xlo, L->xhi, L->pw, &flo, &fhi);
    const int most = (int)(L->pw / 85);
    for (int target = most < 3 ? 3 : most > 12 ? 12 : most; target >= 1; target--) {
        linear_ticks(flo, fhi, target, &L->xt);
        double tw = 0;
        for (int i = 0; i < L->xt.n; i++) {
            const double w = text_w(L->xt.label[i], FS_TICK);
            tw = w > tw ? w : tw;
        }
        const double spacing = L->xt.n > 1 ? px(L, L->xt.v[1]) - px(L, L->xt.v[0]) : L->pw;
        if (tw + 12 <= spacing) break;
    }
    return LL_OK;
}

int ll_svg_plot_check(const ll_plot_series *s, size_t n, const ll_plot_options *o, ll_error *err) {
    if (!n) return ll_fail(err, LL_ERR_ARG, "no series");
    if ((o->width && (o->width < 200 || o->width > 20000)) || (o->height && (o->height < 150 || o->height > 20000)))
        return ll_fail(err, LL_ERR_ARG, "size %dx%d is out of range (200..20000 x 150..20000)", o->width,
                       o->height);
    if (o->smooth < 0) return ll_fail(err, LL_ERR_ARG, "negative smoothing window %d", o->smooth);
    for (size_t i = 0; i < n; i++) {
        const char *label = s[i].label ? s[i].label : "";
        if (!s[i].n || !s[i].x || !s[i].y) return ll_fail(err, LL_ERR_ARG, "series '%s' is empty", label);
        for (size_t k = 0; k < s[i].n; k++) {
            if (!isfinite(s[i].x[k]) || !isfinite(s[i].y[k]))
                return ll_fail(err, LL_ERR_ARG, "series '%s' has a value that is not finite (point %zu)",
                               label, k + 1);
            if (o->logy && !(s[i].y[k] > 0))
                return ll_fail(err, LL_ERR_ARG, "series '%s' has y = %g at x = %g: a log axis needs y > 0",
                               label, s[i].y[k], s[i].x[k]);
        }
    }
    layout L;
    return do_layout(&L, s, n, o, err);
}

/* ---- drawing -------------------------------------------------------------- */

/* One marker as a closed subpath centred on (x, y). */
static void put_marker(FILE *f, int shape, double x, double y) {
    const double r = MARKER_R;
    switch (shape) {
    case 0: /* circle: two half arcs */
        fprintf(f, "M%.2f,%.2fa%.2f,%.2f 0 1,0 %.2f,0a%.2f,%.2f 0 1,0 %.2f,0z", x - r, y, r, r, 2 * r, r, r, -2 * r);
        break;
    case 1: /* square */
        fprintf(f, "M%.2f,%.2fh%.2fv%.2fh%.2fz", x - r * 0.9, y - r * 0.9, 1.8 * r, 1.8 * r, -1.8 * r);
        break;
    case 2: /* triangle */
        fprintf(f, "M%.2f,%.2fL%.2f,%.2fL%.2f,%.2fz", x, y - r * 1.2, x + r * 1.1, y + r * 0.8, x - r * 1.1,
                y + r * 0.8);
        break;
    default: /* diamond */
        fprintf(f, "M%.2f,%.2fL%.2f,%.2fL%.2f,%.2fL%.2f,%.2fz", x, y - r * 1.25, x + r, y, x, y + r * 1.25, x - r, y);
        break;
    }
}

static void put_polyline(FILE *f, const layout *L, const double *x, const double *y, size_t n, int logy,
                         const char *cls, const char *color, double width, double opacity) {
    fprintf(f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%g\"", cls, color, width);
    if (opacity < 1) fprintf(f, " stroke-opacity=\"%g\"", opacity);
    fputs(" stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"", f);
    for (size_t k = 0; k < n; k++) fprintf(f, k ? " %.2f,%.2f" : "%.2f,%.2f", px(L, x[k]), py(L, y[k], logy));
    fputs("\"/>\n", f);
}

int ll_svg_plot_write(FILE *f, const ll_plot_series *s, size_t n, const ll_plot_options *o, ll_error *err) {
    layout L;
    int rc = ll_svg_plot_check(s, n, o, err);
    if (rc || (rc = do_layout(&L, s, n, o, err))) return rc;
    const int logy = o->logy;
    const int smooth = o->smooth > 1 ? o->smooth : 0;
    const double x0 = L.left, x1 = L.left + L.pw, y0 = L.top, y1 = L.top + L.ph;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%g\" height=\"%g\" "
               "viewBox=\"0 0 %g %g\" font-family=\"%s\">\n", L.W, L.H, L.W, L.H, FONT);
    fputs("<title>", f);
    put_escaped(f, o->title && *o->title ? o->title : o->ylabel && *o->ylabel ? o->ylabel : "plot");
    fputs("</title>\n", f);
    fprintf(f, "<rect class=\"background\" x=\"0\" y=\"0\" width=\"%g\" height=\"%g\" fill=\"#ffffff\"/>\n", L.W, L.H);

    /* grid and ticks */
    fputs("<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n", f);
    for (int i = 0; i < L.xt.n; i++) {
        const double x = px(&L, L.xt.v[i]);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, y0, x, y1);
    }
    for (int i = 0; i < L.yt.n; i++) {
        const double y = py(&L, L.yt.v[i], logy);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x0, y, x1, y);
    }
    fputs("</g>\n", f);
    fprintf(f, "<g class=\"xticks\" font-size=\"%g\" fill=\"#333333\" text-anchor=\"middle\">\n", FS_TICK);
    for (int i = 0; i < L.xt.n; i++) {
        const double x = px(&L, L.xt.v[i]);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#555555\"/>\n", x, y1, x,
                y1 + TICK_LEN);
        fprintf(f, "<text class=\"tick\" x=\"%.2f\" y=\"%.2f\">%s</text>\n", x, y1 + TICK_LEN + 3 + FS_TICK,
                L.xt.label[i]);
    }
    fputs("</g>\n", f);
    fprintf(f, "<g class=\"yticks\" font-size=\"%g\" fill=\"#333333\" text-anchor=\"end\">\n", FS_TICK);
    for (int i = 0; i < L.yt.n; i++) {
        const double y = py(&L, L.yt.v[i], logy);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#555555\"/>\n", x0 - TICK_LEN, y,
                x0, y);
        fprintf(f, "<text class=\"tick\" x=\"%.2f\" y=\"%.2f\">%s</text>\n", x0 - TICK_LEN - 4, y + FS_TICK * 0.35,
                L.yt.label[i]);
    }
    fputs("</g>\n", f);

    /* titles */
    if (o->xlabel && *o->xlabel) {
        fprintf(f, "<text class=\"xlabel\" x=\"%.2f\" y=\"%.2f\" font-size=\"%g\" fill=\"#222222\" "
                   "text-anchor=\"middle\">", (x0 + x1) / 2, L.H - 10, FS_LABEL);
        put_escaped(f, o->xlabel);
        fputs("</text>\n", f);
    }
    if (o->ylabel && *o->ylabel) {
        const double x = 10 + FS_LABEL * 0.8, y = (y0 + y1) / 2;
        fprintf(f, "<text class=\"ylabel\" x=\"%.2f\" y=\"%.2f\" transform=\"rotate(-90 %.2f %.2f)\" "
                   "font-size=\"%g\" fill=\"#222222\" text-anchor=\"middle\">", x, y, x, y, FS_LABEL);
        put_escaped(f, o->ylabel);
        fputs("</text>\n", f);
    }
    if (o->title && *o->title) {
        fprintf(f, "<text class=\"title\" x=\"%.2f\" y=\"%.2f\" font-size=\"%g\" font-weight=\"bold\" "
                   "fill=\"#111111\" text-anchor=\"middle\">", (x0 + x1) / 2, L.title_y, FS_TITLE);
        put_escaped(f, o->title);
        fputs("</text>\n", f);
    }

    /* series: every faint raw line first, under the strong ones */
    size_t max_n = 0;
    for (size_t i = 0; i < n; i++) max_n = s[i].n > max_n ? s[i].n : max_n;
    double *sm = smooth ? malloc(max_n * sizeof(double)) : NULL;
    if (smooth && !sm) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    if (smooth) {
        fputs("<g class=\"raw-lines\">\n", f);
        for (size_t i = 0; i < n; i++)
            if (s[i].n > 1) put_polyline(f, &L, s[i].x, s[i].y, s[i].n, logy, "raw", palette[i % N_COLORS], 1, 0.28);
        fputs("</g>\n", f);
    }
    for (size_t i = 0; i < n; i++) {
        const char *color = palette[i % N_COLORS];
        const int shape = (int)((i + i / N_COLORS) % N_SHAPES);
        const double *y = s[i].y;
        if (smooth) {
            ll_moving_average(s[i].y, s[i].n, smooth, sm);
            y = sm;
        }
        fprintf(f, "<g class=\"series\" id=\"series-%zu\">\n", i);
        if (s[i].n > 1) put_polyline(f, &L, s[i].x, y, s[i].n, logy, "line", color, 2, 1);
        if (use_markers(o, s[i].n)) {
            fprintf(f, "<path class=\"markers\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"0.8\" d=\"", color);
            for (size_t k = 0; k < s[i].n; k++) put_marker(f, shape, px(&L, s[i].x[k]), py(&L, y[k], logy));
            fputs("\"/>\n", f);
        }
        fputs("</g>\n", f);
    }
    free(sm);

    /* frame over the data's ends */
    fprintf(f, "<rect class=\"frame\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
               "stroke=\"#555555\" stroke-width=\"1\"/>\n", x0, y0, L.pw, L.ph);

    /* legend: rows above the plot, left-aligned with it */
    fprintf(f, "<g class=\"legend\" font-size=\"%g\" fill=\"#222222\">\n", FS_LABEL);
    double lx = x0, ly = L.legend_y;
    for (size_t i = 0; i < n; i++) {
        const double iw = legend_item_w(&s[i]);
        if (lx > x0 && lx + iw > L.W - 10) lx = x0, ly += LEGEND_ROW;
        const char *color = palette[i % N_COLORS];
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx,
                ly, lx + LEGEND_SWATCH, ly, color);
        if (use_markers(o, s[i].n)) {
            fprintf(f, "<path fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"0.8\" d=\"", color);
            put_marker(f, (int)((i + i / N_COLORS) % N_SHAPES), lx + LEGEND_SWATCH / 2, ly);
            fputs("\"/>\n", f);
        }
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", lx + LEGEND_SWATCH + 6, ly + FS_LABEL * 0.35);
        put_escaped(f, s[i].label ? s[i].label : "");
        fputs("</text>\n", f);
        lx += iw;
    }
    fputs("</g>\n</svg>\n", f);
    if (ferror(f)) return ll_fail(err, LL_ERR_IO, "cannot write: %s", strerror(errno ? errno : EIO));
    return LL_OK;
}

int ll_svg_plot_save(const char *path, const ll_plot_series *s, size_t n, const ll_plot_options *o, ll_error *err) {
    int rc = ll_svg_plot_check(s, n, o, err);
    if (rc) return rc;
    ll_atomic_file af;
    if ((rc = ll_atomic_open(&af, path, err))) return rc;
    if ((rc = ll_svg_plot_write(af.fp, s, n, o, err))) {
        ll_fail_prefix(err, "%s: ", path);
        ll_atomic_abort(&af);
        return rc;
    }
    if ((rc = ll_atomic_close(&af, err))) return rc;
    return ll_atomic_commit(&af, err);
}
