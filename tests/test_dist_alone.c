/* ll_dist without a launcher: one rank that takes the same path as W ranks
 * (rank 0, size 1, its own threads, agreement on its own status), the block
 * arithmetic that deals micro-batches to ranks, and, in a build without MPI,
 * a clear refusal when mpirun starts it as one of several ranks. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsllama_train.h"
#include "test_util.h"
#include "train/dist.h"

int main(void) {
    unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMI_SIZE"), unsetenv("PMIX_RANK"), unsetenv("PMI_RANK");
    ll_dist *d = NULL;
    ll_error err = {0};
    REQUIRE(ll_dist_init(&d, NULL, NULL, &err) == LL_OK);
    CHECK(ll_dist_size(d) == 1 && ll_dist_rank(d) == 0 && ll_dist_local_size(d) == 1);
    CHECK(ll_dist_threads(d) == omp_get_max_threads());
    int bad = 7;
    CHECK(ll_dist_agree(d, 0, &bad) == 0 && bad == -1);
    CHECK(ll_dist_agree(d, LL_ERR_IO, &bad) == LL_ERR_IO && bad == 0);
    float v[3] = {1, 2, 3};
    CHECK(ll_dist_bcast(d, v, sizeof v, &err) == LL_OK && v[2] == 3);
    ll_dist_finalize(d);
    CHECK(ll_dist_size(NULL) == 1 && ll_dist_rank(NULL) == 0);

    /* blocks of `per` in rank order, cut to n: 4 micro-batches, 2 each; an epoch's tail of 3 */
    size_t lo, hi;
    ll_dist_block(4, 2, 1, &lo, &hi);
    CHECK(lo == 2 && hi == 4);
    ll_dist_block(3, 2, 1, &lo, &hi);
    CHECK(lo == 2 && hi == 3);
    ll_dist_block(1, 2, 1, &lo, &hi);
    CHECK(lo == 1 && hi == 1);
    ll_dist_block(10, 3, 3, &lo, &hi);
    CHECK(lo == 9 && hi == 10);

    if (!ll_dist_compiled()) { /* mpirun starting a build without MPI: refused, not W runs fighting over --out */
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "OMPI_COMM_WORLD_SIZE=2 %s train %s/models/stories260K/stories260K.bin --train "
                 "/nonexistent --out /nonexistent 2>&1 | grep -q 'built without MPI: rebuild with cmake -DLL_MPI=ON'",
                 LL_CLI_PATH, LL_SHARED_DIR);
        CHECK(test_run(cmd) == 0);
        setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
        CHECK(ll_dist_init(&d, NULL, NULL, &err) == LL_ERR_UNSUPPORTED && d == NULL);
        unsetenv("OMPI_COMM_WORLD_SIZE");
    }
    return test_summary("test_dist_alone");
}
