#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"

struct ll_run_dir {
    char *path;
    int lock_fd;
    ll_run_mode mode;
    int begun;   /* ll_run_dir_begin has run */
    int created;      /* the folder did not exist before open */
    int created_lock; /* neither did its lock file */
};

/* What ll_train writes into its folder, and into each of its subfolders:
 * --overwrite removes these and only these. */
static const char *const run_entries[] = {"log.jsonl", "best", "final", "checkpoint"};
enum { N_RUN_ENTRIES = sizeof run_entries / sizeof run_entries[0] };
/* best/ and final/: a PEFT adapter, or with full fine-tuning a model folder (what ll_merge_save writes) */
static const char *const adapter_files[] = {"adapter_config.json", "adapter_model.safetensors", "label_map.json",
                                            "config.json", "model.safetensors", "README.md", "tokenizer.json",
                                            "tokenizer_config.json", NULL};
static const char *const checkpoint_files[] = {"state.safetensors", "state.json", NULL};

/* The files training writes into run entry i (NULL: it is a file, not a folder). */
static const char *const *entry_files(int i) {
    return !strcmp(run_entries[i], "checkpoint") ? checkpoint_files
           : !strcmp(run_entries[i], "log.jsonl") ? NULL
                                                  : adapter_files;
}

static int is_run_entry(const char *name) {
    for (int i = 0; i < N_RUN_ENTRIES; i++)
        if (!strcmp(name, run_entries[i])) return 1;
    return 0;
}

static char *join(const char *dir, const char *name) {
    const size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static int take_lock(ll_run_dir *rd, ll_error *err) {
    char *lock_path = join(rd->path, LL_RUN_LOCK_FILE);
    if (!lock_path) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    int rc = LL_OK;
    struct stat st;
    rd->created_lock = lstat(lock_path, &st) != 0 && errno == ENOENT;
    rd->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (rd->lock_fd < 0) {
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot create the lock file: %s", lock_path, strerror(errno));
    } else if (flock(rd->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        char owner[32] = "";
        const ssize_t n = pread(rd->lock_fd, owner, sizeof owner - 1, 0);
        owner[n > 0 ? n : 0] = '\0';
        owner[strcspn(owner, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            rc = ll_fail(err, LL_ERR_IO, "%s: another lsllama process (pid %s) is writing this folder (lock %s); "
                         "wait for it or choose another --out", rd->path, *owner ? owner : "unknown", lock_path);
        else
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot lock %s: %s", rd->path, lock_path, strerror(e));
        close(rd->lock_fd);
        rd->lock_fd = -1;
        rd->created_lock = 0; /* the other writer's */
    } else {
        char pid[32];
        const int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(rd->lock_fd, 0) != 0 || pwrite(rd->lock_fd, pid, (size_t)n, 0) != n)
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", lock_path, strerror(errno));
    }
    free(lock_path);
    return rc;
}

/* Under the lock: finish or undo the folder swaps and single-file writes
 * that a killed writer left half done. */
static int clean_leftovers(const ll_run_dir *rd, ll_error *err) {
    int rc = LL_OK;
    for (int i = 0; i < N_RUN_ENTRIES && !rc; i++) {
        char *p = join(rd->path, run_entries[i]);
        rc = p ? ll_atomic_dir_recover(p, 1, err) : ll_fail(err, LL_ERR_NOMEM, "out of memory");
        free(p);
    }
    DIR *dir = rc ? NULL : opendir(rd->path);
    if (!rc && !dir) rc = ll_fail(err, LL_ERR_IO, "%s: cannot open folder: %s", rd->path, strerror(errno));
    for (struct dirent *e; dir && !rc && (e = readdir(dir));) {
        const char *tmp = strstr(e->d_name, ".tmp.");
        if (!tmp) continue;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(tmp - e->d_name), e->d_name);
        if (!is_run_entry(base)) continue; /* only what a training run writes */
        char *p = join(rd->path, e->d_name);
        rc = p ? ll_remove_tree(p, err) : ll_fail(err, LL_ERR_NOMEM, "out of memory");
        free(p);
    }
    if (dir) closedir(dir);
    return rc;
}

/* Run entry i holds only what training writes there (leftovers "*.tmp.*" aside). */
static int check_own_files(const ll_run_dir *rd, int i, ll_error *err) {
    const char *const *own = entry_files(i);
    char *p = join(rd->path, run_entries[i]);
    if (!p) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    struct stat st;
    int rc = LL_OK;
    if (lstat(p, &st) != 0) {
        free(p);
        return errno == ENOENT ? LL_OK : ll_fail(err, LL_ERR_IO, "%s/%s: %s", rd->path, run_entries[i], strerror(errno));
    }
    if (!own != !S_ISDIR(st.st_mode) || (!own && !S_ISREG(st.st_mode))) {
        free(p);
        return ll_fail(err, LL_ERR_ARG, "%s/%s: is not the %s training writes: --overwrite will not remove it; move "
                       "it away or choose another --out", rd->path, run_entries[i], own ? "folder" : "file");
    }
    DIR *dir = own ? opendir(p) : NULL;
    if (own && !dir) rc = ll_fail(err, LL_ERR_IO, "%s: cannot open folder: %s", p, strerror(errno));
    for (struct dirent *e; dir && !rc && (e = readdir(dir));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || strstr(e->d_name, ".tmp.")) continue;
        int known = 0;
        for (const char *const *f = own; *f && !known; f++) known = !strcmp(e->d_name, *f);
        if (!known)
            rc = ll_fail(err, LL_ERR_ARG, "%s/%s: holds '%s', which training did not write: --overwrite will not "
                         "remove it; move it away or choose another --out", rd->path, run_entries[i], e->d_name);
    }
    if (dir) closedir(dir);
    free(p);
    return rc;
}

/* --out must not lie inside another run's folder (its best/, checkpoint/...):
 * that run's next save would meet our files, and ours its. */
static int check_not_nested(const ll_run_dir *rd, ll_error *err) {
    char *p = strdup(rd->path);
    if (!p) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = '\0';
    char *slash = strrchr(p, '/');
    if (slash == p) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(p, ".");
    char *lock = join(p, LL_RUN_LOCK_FILE);
    struct stat st;
    const int nested = lock && lstat(lock, &st) == 0;
    int rc = nested ? ll_fail(err, LL_ERR_ARG, "%s: lies inside the training run folder %s (it holds %s): choose a "
                              "folder outside it", rd->path, p, LL_RUN_LOCK_FILE)
                    : LL_OK;
    if (!lock) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
    free(lock);
    free(p);
    return rc;
}

static int check_mode(const ll_run_dir *rd, ll_run_mode mode, ll_error *err) {
    DIR *dir = opendir(rd->path);
    if (!dir) return ll_fail(err, LL_ERR_IO, "%s: cannot open folder: %s", rd->path, strerror(errno));
    char first_run[64] = "", first_other[256] = "";
    int has_checkpoint = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, LL_RUN_LOCK_FILE)) continue;
        if (is_run_entry(e->d_name)) {
            if (!*first_run) snprintf(first_run, sizeof first_run, "%s", e->d_name);
            has_checkpoint |= !strcmp(e->d_name, "checkpoint");
        } else if (!*first_other) {
            snprintf(first_other, sizeof first_other, "%s", e->d_name);
        }
    }
    closedir(dir);
    switch (mode) {
    case LL_RUN_NEW:
        if (*first_run) /* --resume only where there is a checkpoint to resume from */
            return ll_fail(err, LL_ERR_ARG, "%s: already holds a training run (%s): %s--overwrite to replace it, "
                           "or choose another --out", rd->path, first_run,
                           has_checkpoint ? "pass --resume to continue it or "
                                          : "it saved no checkpoint/ to resume from; pass ");
        if (*first_other)
            return ll_fail(err, LL_ERR_ARG, "%s: is not empty (holds '%s'): training writes into a new or empty "
                           "folder", rd->path, first_other);
        return LL_OK;
    case LL_RUN_RESUME:
        if (!has_checkpoint)
            return ll_fail(err, LL_ERR_ARG, "%s: no checkpoint/ to resume from (a run saves one with "
                           "--checkpoint-every N)", rd->path);
        return LL_OK;
    case LL_RUN_OVERWRITE:
        if (*first_other)
            return ll_fail(err, LL_ERR_ARG, "%s: holds '%s', which training did not write: --overwrite replaces "
                           "only a training run's own files (log.jsonl, best/, final/, checkpoint/); move it away "
                           "or choose another --out", rd->path, first_other);
        for (int i = 0; i < N_RUN_ENTRIES; i++) {
            const int rc = check_own_files(rd, i, err);
            if (rc) return rc;
        }
        return LL_OK; /* the earlier run is removed by ll_run_dir_begin, once the new one is ready to write */
    }
    return ll_fail(err, LL_ERR_ARG, "%s: unknown run mode %d", rd->path, (int)mode);
}

int ll_run_dir_open(ll_run_dir **out, const char *path, ll_run_mode mode, ll_error *err) {
    *out = NULL;
    if (!path || !*path) return ll_fail(err, LL_ERR_ARG, "training needs an output folder");
    ll_run_dir *rd = calloc(1, sizeof *rd);
    if (!rd || !(rd->path = strdup(path))) {
        free(rd);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    rd->lock_fd = -1;
    rd->mode = mode;
    struct stat st;
    rd->created = stat(path, &st) != 0 && errno == ENOENT;
    int rc = check_not_nested(rd, err);
    if (!rc) rc = ll_mkdir_p(path, err);
    if (!rc) rc = take_lock(rd, err);
    if (!rc) rc = clean_leftovers(rd, err);
    if (!rc) rc = check_mode(rd, mode, err);
    if (rc) {
        ll_run_dir_close(rd);
        return rc;
    }
    *out = rd;
    return LL_OK;
}

int ll_run_dir_begin(ll_run_dir *rd, ll_error *err) {
    if (rd->begun) return LL_OK;
    rd->begun = 1;
    if (rd->mode != LL_RUN_OVERWRITE) return LL_OK;
    for (int i = 0; i < N_RUN_ENTRIES; i++) {
        char *p = join(rd->path, run_entries[i]);
        const int rc = p ? ll_remove_tree(p, err) : ll_fail(err, LL_ERR_NOMEM, "out of memory");
        free(p);
        if (rc) return rc;
    }
    return ll_fsync_folder(rd->path) ? ll_fail(err, LL_ERR_IO, "%s: cannot sync the folder", rd->path) : LL_OK;
}

const char *ll_run_dir_path(const ll_run_dir *rd) { return rd->path; }

void ll_run_dir_close(ll_run_dir *rd) {
    if (!rd) return;
    if (!rd->begun && rd->created_lock && rd->lock_fd >= 0) { /* a run that never started leaves nothing behind */
        char *lock_path = join(rd->path, LL_RUN_LOCK_FILE);
        if (lock_path && unlink(lock_path) == 0 && rd->created) rmdir(rd->path);
        free(lock_path);
    }
    if (rd->lock_fd >= 0) close(rd->lock_fd); /* releases the flock */
    free(rd->path);
    free(rd);
}
