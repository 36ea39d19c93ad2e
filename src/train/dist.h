/* Data movement between the ranks of an ll_dist (MPI when built with
 * LL_MPI and started by a launcher; otherwise one rank, and every call below
 * is a no-op that succeeds). Only copies travel: no call here adds floats, so
 * what a rank computes never depends on how MPI routes or reduces; sums are
 * made by the caller in an order of its own choosing. Every call returns 0 or
 * an ll_status with err naming the call and the peer rank. */
#ifndef LL_TRAIN_DIST_H
#define LL_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama_train.h"

/* Point to point, tag chosen by the caller (a micro-batch index, ...). */
int ll_dist_send_floats(const ll_dist *d, const float *buf, size_t n, int dest, int tag, ll_error *err);
int ll_dist_recv_floats(const ll_dist *d, float *buf, size_t n, int src, int tag, ll_error *err);
/* ll_dist_bcast (lsllama_train.h) sends any size, in pieces below INT_MAX. */
/* buf holds floats [offsets[0], offsets[W]); rank r has filled
 * [offsets[r], offsets[r+1]); afterwards every rank holds all of them. */
int ll_dist_allgather_floats(const ll_dist *d, float *buf, const size_t *offsets, ll_error *err);
/* all[W * n] receives every rank's v[n], in rank order. */
int ll_dist_allgather_u64(const ll_dist *d, const uint64_t *v, size_t n, uint64_t *all, ll_error *err);

/* Rank r's contiguous share [*lo, *hi) of n items (micro-batches, dev
 * batches) dealt in blocks of `per` in rank order: [r per, (r+1) per) cut to
 * n, so the last ranks' shares may be short or empty. */
void ll_dist_block(size_t n, size_t per, int r, size_t *lo, size_t *hi);

#endif
