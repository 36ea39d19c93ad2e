/* ll_dist: the ranks of a data-parallel run (MPI-3 calls only, so OpenMPI
 * and MPICH both serve), or this process alone. See dist.h and
 * lsllama_train.h. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "train/dist.h"

#include <limits.h>
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

#ifdef LL_MPI
#include <mpi.h>
#endif

struct ll_dist {
    int rank, size, local_size, threads;
    int joined; /* this process called MPI_Init */
};

int ll_dist_compiled(void) {
#ifdef LL_MPI
    return 1;
#else
    return 0;
#endif
}

#ifdef LL_MPI
/* A launcher (mpirun, mpiexec.hydra, srun with PMIx) started this process:
 * the variables each of them sets for its ranks. */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}
#endif

/* OMP_NUM_THREADS unset: the cores this rank is bound to when a launcher
 * bound it to fewer than the node has, else the node's cores shared among
 * its ranks. */
static int default_threads(int local_size) {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = (int)(online > 0 ? online : 1);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 && CPU_COUNT(&set) < mine)
        return CPU_COUNT(&set);
    mine /= local_size > 0 ? local_size : 1;
    return mine > 0 ? mine : 1;
}

int ll_dist_init(ll_dist **out, int *argc, char ***argv, ll_error *err) {
    *out = NULL;
    ll_dist *d = calloc(1, sizeof *d);
    if (!d) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    d->size = d->local_size = 1;
#ifdef LL_MPI
    if (launched_by_mpi()) {
        int inited = 0;
        MPI_Initialized(&inited);
        if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS) {
            free(d);
            return ll_fail(err, LL_ERR_ARG, "MPI_Init failed (started by a launcher of another MPI library?)");
        }
        d->joined = !inited;
        MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &d->size);
        MPI_Comm node;
        if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
            MPI_Comm_size(node, &d->local_size);
            MPI_Comm_free(&node);
        }
    }
#else
    (void)argc, (void)argv;
    /* W copies each training alone would fight over one --out: say why instead */
    const char *world = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    if (world && atoi(world) > 1) {
        free(d);
        return ll_fail(err, LL_ERR_UNSUPPORTED, "started by an MPI launcher as one of %d ranks, but this lsllama was "
                       "built without MPI: rebuild with cmake -DLL_MPI=ON", atoi(world));
    }
#endif
    const char *env = getenv("OMP_NUM_THREADS");
    if (d->size > 1 && (!env || !*env)) omp_set_num_threads(default_threads(d->local_size));
    d->threads = omp_get_max_threads();
    *out = d;
    return LL_OK;
}

int ll_dist_rank(const ll_dist *d) { return d ? d->rank : 0; }
int ll_dist_size(const ll_dist *d) { return d ? d->size : 1; }
int ll_dist_local_size(const ll_dist *d) { return d ? d->local_size : 1; }
int ll_dist_threads(const ll_dist *d) { return d ? d->threads : omp_get_max_threads(); }

void ll_dist_abort(const ll_dist *d, int exit_code) {
#ifdef LL_MPI
    if (d && d->size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code ? exit_code : 1);
#else
    (void)d, (void)exit_code;
#endif
}

void ll_dist_finalize(ll_dist *d) {
#ifdef LL_MPI
    if (d && d->joined) MPI_Finalize();
#endif
    free(d);
}

void ll_dist_block(size_t n, size_t per, int r, size_t *lo, size_t *hi) {
    size_t a = per * (size_t)r, b = a + per;
    if (a > n) a = n;
    if (b > n) b = n;
    *lo = a, *hi = b;
}

#ifdef LL_MPI
static int multi(const ll_dist *d) { return d && d->size > 1; }

static int mpi_failed(ll_error *err, int rc, const char *call, int peer) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return ll_fail(err, LL_ERR_IO, "%s (peer rank %d) failed: %s", call, peer, msg);
}

/* MPI counts are int: move large buffers in pieces. */
enum { PIECE = 1 << 28 };

int ll_dist_send_floats(const ll_dist *d, const float *buf, size_t n, int dest, int tag, ll_error *err) {
    if (!multi(d)) return LL_OK;
    for (size_t off = 0; off < n; off += PIECE) {
        const int cnt = (int)(n - off < PIECE ? n - off : PIECE);
        const int rc = MPI_Send(buf + off, cnt, MPI_FLOAT, dest, tag, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_failed(err, rc, "MPI_Send", dest);
    }
    return LL_OK;
}

int ll_dist_recv_floats(const ll_dist *d, float *buf, size_t n, int src, int tag, ll_error *err) {
    if (!multi(d)) return LL_OK;
    for (size_t off = 0; off < n; off += PIECE) {
        const int cnt = (int)(n - off < PIECE ? n - off : PIECE);
        const int rc = MPI_Recv(buf + off, cnt, MPI_FLOAT, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_failed(err, rc, "MPI_Recv", src);
    }
    return LL_OK;
}

int ll_dist_bcast(const ll_dist *d, void *buf, size_t bytes, ll_error *err) {
    if (!multi(d)) return LL_OK;
    for (size_t off = 0; off < bytes; off += PIECE) {
        const int cnt = (int)(bytes - off < PIECE ? bytes - off : PIECE);
        const int rc = MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_failed(err, rc, "MPI_Bcast", 0);
    }
    return LL_OK;
}

int ll_dist_allgather_floats(const ll_dist *d, float *buf, const size_t *offsets, ll_error *err) {
    if (!multi(d)) return LL_OK;
    int *counts = malloc(2 * (size_t)d->size * sizeof *counts), *displs = counts ? counts + d->size : NULL;
    if (!counts) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    if (offsets[d->size] > INT_MAX) {
        free(counts);
        return ll_fail(err, LL_ERR_ARG, "%zu floats to gather: more than one MPI call carries", offsets[d->size]);
    }
    for (int r = 0; r < d->size; r++) counts[r] = (int)(offsets[r + 1] - offsets[r]), displs[r] = (int)offsets[r];
    const int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    free(counts);
    return rc == MPI_SUCCESS ? LL_OK : mpi_failed(err, rc, "MPI_Allgatherv", -1);
}

int ll_dist_allgather_u64(const ll_dist *d, const uint64_t *v, size_t n, uint64_t *all, ll_error *err) {
    if (!multi(d)) {
        memcpy(all, v, n * sizeof *v);
        return LL_OK;
    }
    const int rc = MPI_Allgather(v, (int)n, MPI_UINT64_T, all, (int)n, MPI_UINT64_T, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LL_OK : mpi_failed(err, rc, "MPI_Allgather", -1);
}

int ll_dist_agree(const ll_dist *d, int status, int *bad_rank) {
    if (bad_rank) *bad_rank = status ? 0 : -1;
    if (!multi(d)) return status;
    int *all = malloc((size_t)d->size * sizeof *all);
    if (!all) return status ? status : LL_ERR_NOMEM;
    if (MPI_Allgather(&status, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD) != MPI_SUCCESS) {
        free(all);
        return status ? status : LL_ERR_IO;
    }
    int agreed = 0;
    if (bad_rank) *bad_rank = -1;
    for (int r = 0; r < d->size && !agreed; r++)
        if (all[r]) {
            agreed = all[r];
            if (bad_rank) *bad_rank = r;
        }
    free(all);
    return agreed;
}
#else
int ll_dist_send_floats(const ll_dist *d, const float *buf, size_t n, int dest, int tag, ll_error *err) {
    (void)d, (void)buf, (void)n, (void)dest, (void)tag, (void)err;
    return LL_OK;
}
int ll_dist_recv_floats(const ll_dist *d, float *buf, size_t n, int src, int tag, ll_error *err) {
    (void)d, (void)buf, (void)n, (void)src, (void)tag, (void)err;
    return LL_OK;
}
int ll_dist_bcast(const ll_dist *d, void *buf, size_t bytes, ll_error *err) {
    (void)d, (void)buf, (void)bytes, (void)err;
    return LL_OK;
}
int ll_dist_allgather_floats(const ll_dist *d, float *buf, const size_t *offsets, ll_error *err) {
    (void)d, (void)buf, (void)offsets, (void)err;
    return LL_OK;
}
int ll_dist_allgather_u64(const ll_dist *d, const uint64_t *v, size_t n, uint64_t *all, ll_error *err) {
    (void)d, (void)err;
    memcpy(all, v, n * sizeof *v);
    return LL_OK;
}
int ll_dist_agree(const ll_dist *d, int status, int *bad_rank) {
    (void)d;
    if (bad_rank) *bad_rank = status ? 0 : -1;
    return status;
}
#endif
