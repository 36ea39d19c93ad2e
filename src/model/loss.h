/* The classifier's losses, the probabilities that evaluation and predict
 * report, and the score head's backward: one implementation each, called by
 * training (train/classifier.c), evaluation (train/trainer.c), token
 * predictions (data/token_data.c) and the CLI's predict. It lives in model/
 * because the data layer (token_data.c) needs the softmax too, and data may
 * only call downwards (cli -> train -> data -> model -> kernels).
 *
 * Shapes: N rows (sequences, or tokens of a token task), K classes; logits
 * [N, K] row-major float. A forward ADDS each row's loss into a running
 * double sum the caller keeps (one sum may span many batches: evaluation)
 * and returns how many rows it added; the caller divides (the mean). A
 * backward OVERWRITES dlogits [N, K] with d(scale * mean loss) / dlogits.
 *
 * Floating point, as every caller computed it before this module (the
 * adapters and logs are bit-identical):
 *  - softmax: zmax = the row's largest logit (float; found by fmaxf for the
 *    cross-entropy, by ">" for the probabilities and argmax: the same value
 *    on finite rows, the only ones evaluation and predict accept); s = sum
 *    over k in ascending order, in double, of exp((double)z[k] - zmax);
 *    p[k] = exp((double)z[k] - zmax) / s (double);
 *  - a row's cross-entropy: ((double)zmax + log(s)) - (double)z[y];
 *  - its gradient: float(p[k]) - [k == y], then / float(n_labelled), then
 *    * scale, in float;
 *  - BCE with logits of one element: (max(x, 0) - float(x * y)) +
 *    log1p(exp(-|x|)) in double; its gradient (1 / (1 + expf(-x)) - y) /
 *    float(N * K) * scale in float (a float sigmoid, unlike the double one
 *    ll_sigmoid_row reports). */
#ifndef LL_MODEL_LOSS_H
#define LL_MODEL_LOSS_H

#include <stddef.h>
#include <stdint.h>

/* ---- probabilities ------------------------------------------------------ */

/* The first index of the largest of z[K] (ties: the lowest index): the
 * predicted class. */
size_t ll_argmax_row(const float *z, size_t K);

/* sum over k = 0..K-1, in that order, in double, of exp((double)z[k] -
 * zmax): the softmax denominator of z[K] shifted by its maximum zmax. */
double ll_softmax_sum(const float *z, size_t K, float zmax);

/* p[K] = softmax(z[K]) in double (torch.softmax); returns the argmax. */
size_t ll_softmax_row(double *p, const float *z, size_t K);

/* The softmax probability of z[K]'s argmax (stored in *best): 1 / s, which
 * is p[best] of ll_softmax_row exactly (exp(0) = 1). */
double ll_softmax_top(const float *z, size_t K, size_t *best);

/* p[K] = 1 / (1 + exp(-z[k])) in double (torch.sigmoid). */
void ll_sigmoid_row(double *p, const float *z, size_t K);

/* Multi-label decisions: pred[k] = 1 where sigmoid(z[k]) > 0.5, tested as
 * z[k] > 0 (the double sigmoid rounds to exactly 0.5 for 0 < z < ~2e-16, so
 * the two tests differ there; evaluation and predict have always used z > 0). */
void ll_multilabel_predict(int *pred, const float *z, size_t K);

/* ---- single-label and token cross-entropy -----------------------------------
 * torch.nn.functional.cross_entropy(logits, labels, reduction="mean",
 * ignore_index=-100) (aten/src/ATen/native/LossNLL.cpp: log_softmax, then
 * nll_loss averaged over the rows whose target is not ignored):
 * L = sum over labelled rows n of (logsumexp(z_n) - z_n[y_n]) / n_labelled.
 * The sequence task is the case where no row is ignored, the token task
 * (labels LL_IGNORE_LABEL = -100 on the tokens outside the loss) the general
 * one. A row with any negative label is outside the loss (evaluation marks an
 * unlabelled example -1); labels must otherwise be in 0..K-1 (the callers
 * check). No labelled row: PyTorch's mean is 0/0 = nan; callers report 0. */

/* One row's loss, logsumexp(z[K]) - z[y] (y in 0..K-1). */
double ll_crossentropy_row(const float *z, size_t K, int32_t y);

/* *sum += each labelled row's loss, rows in order; returns the number of
 * labelled rows. logits [N, K], labels [N]. */
size_t ll_crossentropy_forward(double *sum, const float *logits, const int32_t *labels, size_t N, size_t K);

/* dlogits [N, K] = (softmax(z_n) - onehot(y_n)) / n_labelled * scale for the
 * labelled rows, 0 for the others; n_labelled as ll_crossentropy_forward
 * returned it (0: every row is 0). */
void ll_crossentropy_backward(float *dlogits, const float *logits, const int32_t *labels, size_t N, size_t K,
                              size_t n_labelled, float scale);

/* ---- multi-label binary cross-entropy with logits ---------------------------
 * torch.nn.functional.binary_cross_entropy_with_logits(logits, targets,
 * reduction="mean") (aten/src/ATen/native/Loss.cpp): every element's
 * -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], averaged over N * K.
 * Written as max(x, 0) - x y + log1p(exp(-|x|)), which never overflows
 * (PyTorch's form, (1 - y) x + m + log(exp(-m) + exp(-x - m)) with m =
 * max(-x, 0), is the same function). targets [N, K] in [0, 1]. */

/* One element's loss, logit x and target y (double). */
double ll_bce_logits_elem(float x, float y);

/* *sum += every element's loss, row-major (rows, then k); the training mean
 * is *sum / (N * K). */
void ll_bce_logits_forward(double *sum, const float *logits, const float *targets, size_t N, size_t K);

/* One row's mean loss, (sum over k of the element losses) / K. Evaluation
 * averages these over the rows: the same mean as training's *sum / (N * K),
 * but summed in another order, so the last bits differ; both are kept as
 * they were (a model's logged dev loss and train loss are unchanged). */
double ll_bce_logits_row_mean(const float *z, const float *y, size_t K);

/* dlogits [N, K] = (sigmoid(x) - y) / (N * K) * scale, in float. */
void ll_bce_logits_backward(float *dlogits, const float *logits, const float *targets, size_t N, size_t K,
                            float scale);

/* ---- the score head's backward ----------------------------------------------
 * For y[N, K] = x[N, D] W[K, D]^T (+ b[K]) (ll_linear_forward) given dy [N, K]:
 * dW [K, D] += dy^T x; db [K] += sum over rows of dy (rows in order; db NULL:
 * no bias); dx [N, D] = dy W, overwritten (dx NULL: not wanted, e.g. nothing
 * below the head is trained). The sequence head's x is the pooled states, the
 * token head's every token's (dropped-out) hidden state. */
void ll_linear_head_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                             size_t N, size_t D, size_t K);

#endif
