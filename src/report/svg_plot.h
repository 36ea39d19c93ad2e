/* Line plots of numeric series as standalone SVG 1.1 (training loss or a dev
 * metric against step, for the docs): "nice" axis ticks (1, 2 or 5 x 10^k),
 * grid, axis labels, title, legend, Okabe-Ito colours (colour-blind safe)
 * with a distinct marker shape per series, optional moving-average smoothing
 * and logarithmic y axis.
 *
 * Geometry, which tests rely on: the plot area is the element
 * <rect class="frame" x= y= width= height=>. The data occupy that frame
 * inset by LL_PLOT_PAD pixels on every side: the smallest x of all series
 * (raw points) maps to the inset's left edge and the largest to its right
 * edge; the largest y to its top and the smallest to its bottom, linearly (in
 * log10 y with logy). Where all x (or all y) are equal, they map to the
 * middle. Each series i is one <g class="series" id="series-i"> holding a
 * <polyline class="line"> (the smoothed values when smoothing; series of at
 * least two points) and a <path class="markers"> with one subpath ("M...z")
 * per point when markers are drawn. With smoothing, the raw values are faint
 * <polyline class="raw"> lines, in series order, in a <g class="raw-lines">
 * drawn before every series group.
 * Tick labels are <text class="tick"> inside <g class="xticks"> and
 * <g class="yticks">; legend labels are <text> inside <g class="legend">.
 * Coordinates are written with two decimals. */
#ifndef LL_REPORT_SVG_PLOT_H
#define LL_REPORT_SVG_PLOT_H

#include <stddef.h>
#include <stdio.h>

#include "lsllama.h"

#define LL_PLOT_PAD 10.0
#define LL_PLOT_AUTO_MARKERS 60 /* markers are drawn on series of at most this many points */

typedef struct ll_plot_series {
    const char *label; /* legend entry (UTF-8; escaped on output) */
    const double *x, *y;
    size_t n;
} ll_plot_series;

typedef struct ll_plot_options {
    const char *title, *xlabel, *ylabel; /* NULL or "": none */
    int width, height;                   /* pixels; 0: 800 x 480 */
    int smooth;  /* > 1: centred moving average over this many points, raw values drawn faintly */
    int logy;    /* logarithmic y axis (every y must be > 0) */
    int markers; /* 0: on series of at most LL_PLOT_AUTO_MARKERS points; 1: always; -1: never */
} ll_plot_options;

/* Check the series and options (non-empty series, finite values, y > 0 with
 * logy, a size that leaves room for the plot) without writing anything. */
int ll_svg_plot_check(const ll_plot_series *s, size_t n_series, const ll_plot_options *o, ll_error *err);

/* Write the SVG document to f. */
int ll_svg_plot_write(FILE *f, const ll_plot_series *s, size_t n_series, const ll_plot_options *o, ll_error *err);

/* Write it to path atomically: on any error the file is left as it was. */
int ll_svg_plot_save(const char *path, const ll_plot_series *s, size_t n_series, const ll_plot_options *o,
                     ll_error *err);

/* Centred moving average over a window of w points (w <= 1: a copy), the
 * window shrinking at the ends. */
void ll_moving_average(const double *y, size_t n, int w, double *out);

#endif
