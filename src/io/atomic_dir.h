/* Crash-safe replacement of a whole folder (an adapter, a training
 * checkpoint, a merged model): a folder of several files is committed as one
 * unit, so a reader (or a --resume after kill -9) sees the complete old
 * version or the complete new one, never a mix.
 *
 *   1. ll_atomic_dir_open creates "<path>.tmp.<pid>" beside the target;
 *   2. the caller writes every file into it (ll_atomic_dir_file gives paths;
 *      each file written with io/atomic_file.h, so each is fsynced);
 *   3. ll_atomic_dir_commit fsyncs the new folder and swaps it in with one
 *      rename: renameat2(RENAME_EXCHANGE) when the target exists (Linux >=
 *      3.15 on ext4, xfs, btrfs, tmpfs, ...), a plain rename when it does not;
 *      the displaced old version is then removed and the parent fsynced.
 *      Where the file system cannot exchange, the old folder is first renamed
 *      to "<path>.old.<pid>"; a kill between the two renames leaves that
 *      folder, which ll_atomic_dir_recover renames back.
 *
 * Replacing never deletes a file that the new version does not also hold:
 * when the target holds another name (a user's README, a plot), commit
 * refuses and names it, and nothing changes. */
#ifndef LL_IO_ATOMIC_DIR_H
#define LL_IO_ATOMIC_DIR_H

#include "lsllama.h"

typedef struct ll_atomic_dir {
    char *path;     /* the target folder */
    char *tmp_path; /* "<path>.tmp.<pid>": the new version, written here */
} ll_atomic_dir;

/* Create the temporary folder (and the target's missing parents). A stale
 * temporary folder of this pid (from a dead process) is removed first. */
int ll_atomic_dir_open(ll_atomic_dir *d, const char *path, ll_error *err);

/* "<tmp_path>/<name>", malloc'd (NULL when out of memory). */
char *ll_atomic_dir_file(const ll_atomic_dir *d, const char *name);

/* Swap the complete new folder in (see above); frees d. On failure the
 * target is unchanged and the temporary folder removed. */
int ll_atomic_dir_commit(ll_atomic_dir *d, ll_error *err);

/* Remove the temporary folder and free d. Safe on a zeroed or finished d. */
void ll_atomic_dir_abort(ll_atomic_dir *d);

/* Finish or undo what a killed writer of path left: when path is missing and
 * "<path>.old.<pid>" exists, rename it back; remove "<path>.tmp.<pid>" and
 * "<path>.old.<pid>" folders whose process is gone (all of them when
 * any_owner is set: the caller holds the lock of the folder around them). */
int ll_atomic_dir_recover(const char *path, int any_owner, ll_error *err);

/* Remove a folder and everything in it (rm -r; symbolic links are removed,
 * never followed). */
int ll_remove_tree(const char *path, ll_error *err);

#endif
