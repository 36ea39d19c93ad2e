/* A training run's output folder: one writer at a time, and a finished run is
 * never replaced without being told to.
 *
 * Opening takes an advisory lock (flock on "<dir>/lsllama.lock", which holds
 * the owner's pid; the kernel releases it when the process dies, kill -9
 * included), so a second writer is refused with the first one's pid. Under the
 * lock, what a killed writer left is cleaned up ("*.tmp.<pid>" files and
 * folders, a folder swap cut in half: see io/atomic_dir.h), then the folder is
 * checked against the mode:
 *   LL_RUN_NEW        the folder must be new or empty;
 *   LL_RUN_RESUME     it must hold checkpoint/ (the run continues there);
 *   LL_RUN_OVERWRITE  a training run's own entries (log.jsonl, best/, final/,
 *                     checkpoint/) are removed by ll_run_dir_begin, once the
 *                     new run has loaded and checked its inputs and is about to
 *                     write (a run that fails before then leaves the earlier
 *                     one whole); any other file is kept and refused by name,
 *                     so a mistyped --out never deletes a user's data. */
#ifndef LL_TRAIN_RUN_DIR_H
#define LL_TRAIN_RUN_DIR_H

#include "lsllama.h"
#include "lsllama_train.h"

/* ll_run_mode, ll_run_dir_open and ll_run_dir_close: include/lsllama_train.h. */

/* The run starts writing: in LL_RUN_OVERWRITE mode remove the earlier run's
 * entries (once). */
int ll_run_dir_begin(ll_run_dir *rd, ll_error *err);

const char *ll_run_dir_path(const ll_run_dir *rd);

#define LL_RUN_LOCK_FILE "lsllama.lock"

#endif
