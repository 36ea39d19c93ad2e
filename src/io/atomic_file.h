/* Crash-safe file replacement: write to "<path>.tmp.<pid>", flush and fsync,
 * rename over the target, fsync the directory. A reader sees the old file or
 * the new one, never a half-written one; on any error the temporary file is
 * removed and the target is untouched.
 *
 * Several files can be replaced as a group (an adapter folder): write each
 * with ll_atomic_open/ll_atomic_close, and only when all are complete call
 * ll_atomic_commit on each (or ll_atomic_abort on all after a failure). */
#ifndef LL_IO_ATOMIC_FILE_H
#define LL_IO_ATOMIC_FILE_H

#include <stdio.h>

#include "lsllama.h"

typedef struct ll_atomic_file {
    char *path;     /* final name */
    char *tmp_path; /* "<path>.tmp.<pid>" */
    FILE *fp;       /* open for writing between open and close */
    int closed;     /* data flushed, fsynced and closed: ready to commit */
} ll_atomic_file;

/* Create the temporary file (it must not exist yet). */
int ll_atomic_open(ll_atomic_file *f, const char *path, ll_error *err);
/* Check stream errors, fflush, fsync and close the temporary file. */
int ll_atomic_close(ll_atomic_file *f, ll_error *err);
/* Rename the closed temporary file over the target and fsync the directory;
 * frees f. On failure the temporary file is removed. */
int ll_atomic_commit(ll_atomic_file *f, ll_error *err);
/* Close and remove the temporary file (any state); frees f. Safe to call on
 * a zeroed or already committed/aborted f. */
void ll_atomic_abort(ll_atomic_file *f);

/* One-shot helper: replace path with n bytes of data. */
int ll_atomic_write(const char *path, const void *data, size_t n, ll_error *err);

/* rename(2), then the crash tests' fault-injection point: when the
 * environment variable LSLLAMA_FAULT_KILL_AFTER_RENAME holds N > 0, the N-th
 * rename (or folder exchange) of this process is followed by SIGKILL, so a
 * test can stop a writer between any two steps of a multi-file commit.
 * Returns rename's result (errno set on failure). */
int ll_rename(const char *from, const char *to);
/* The fault-injection point alone, for renames made another way. */
void ll_fault_after_rename(void);

/* fsync a folder / the folder holding path (0 or an errno value; file
 * systems that cannot fsync folders count as success). */
int ll_fsync_folder(const char *dir);
int ll_fsync_parent(const char *path);

/* mkdir -p: create dir and missing parents (mode 0777 & ~umask). */
int ll_mkdir_p(const char *dir, ll_error *err);

#endif
