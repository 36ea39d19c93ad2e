#define _GNU_SOURCE /* renameat2, RENAME_EXCHANGE */
#include "io/atomic_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/atomic_file.h"

static char *str_printf2(const char *a, const char *sep, const char *b) {
    const size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, sep, b);
    return s;
}

static char *with_suffix(const char *path, const char *what, long pid) {
    char tail[48];
    snprintf(tail, sizeof tail, ".%s.%ld", what, pid);
    return str_printf2(path, "", tail);
}

int ll_remove_tree(const char *path, ll_error *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return LL_OK;
        return ll_fail(err, LL_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) return ll_fail(err, LL_ERR_IO, "%s: cannot open folder: %s", path, strerror(errno));
        int rc = LL_OK;
        for (struct dirent *e; !rc && (e = readdir(dir));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *child = str_printf2(path, "/", e->d_name);
            rc = child ? ll_remove_tree(child, err) : ll_fail(err, LL_ERR_NOMEM, "out of memory");
            free(child);
        }
        closedir(dir);
        if (rc) return rc;
        if (rmdir(path) != 0) return ll_fail(err, LL_ERR_IO, "%s: cannot remove folder: %s", path, strerror(errno));
        return LL_OK;
    }
    if (unlink(path) != 0) return ll_fail(err, LL_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return LL_OK;
}

int ll_atomic_dir_open(ll_atomic_dir *d, const char *path, ll_error *err) {
    memset(d, 0, sizeof *d);
    d->path = strdup(path);
    if (d->path) /* no trailing slash: the temporary folder must sit beside the target, not in it */
        for (size_t n = strlen(d->path); n > 1 && d->path[n - 1] == '/'; n--) d->path[n - 1] = '\0';
    d->tmp_path = d->path ? with_suffix(d->path, "tmp", (long)getpid()) : NULL;
    if (!d->path || !d->tmp_path) {
        ll_atomic_dir_abort(d);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    int rc = LL_OK;
    char *slash = strrchr(d->path, '/');
    if (slash && slash != d->path) { /* the target's parents */
        *slash = '\0';
        rc = ll_mkdir_p(d->path, err);
        *slash = '/';
        if (rc && err) { /* name the folder being written, not just its parent */
            char cause[sizeof err->message];
            snprintf(cause, sizeof cause, "%s", err->message);
            rc = ll_fail(err, rc, "%s: cannot create its parent folder: %s", path, cause);
        }
    }
    if (!rc) rc = ll_remove_tree(d->tmp_path, err); /* a dead process of our pid left it */
    if (!rc && mkdir(d->tmp_path, 0777) != 0)
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot create temporary folder %s: %s", path, d->tmp_path, strerror(errno));
    if (rc) {
        free(d->path);
        free(d->tmp_path);
        memset(d, 0, sizeof *d);
    }
    return rc;
}

char *ll_atomic_dir_file(const ll_atomic_dir *d, const char *name) { return str_printf2(d->tmp_path, "/", name); }

/* Refuse when the target holds a name that the new version does not (it
 * would be deleted with the old version); leftovers "*.tmp.*" may go. */
static int check_replaceable(const ll_atomic_dir *d, ll_error *err) {
    DIR *dir = opendir(d->path);
    if (!dir) return ll_fail(err, LL_ERR_IO, "%s: cannot open folder: %s", d->path, strerror(errno));
    int rc = LL_OK;
    for (struct dirent *e; !rc && (e = readdir(dir));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || strstr(e->d_name, ".tmp.")) continue;
        char *mine = str_printf2(d->tmp_path, "/", e->d_name);
        struct stat st;
        if (!mine) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        else if (lstat(mine, &st) != 0)
            rc = ll_fail(err, LL_ERR_IO,
                         "%s: holds '%s', which the new version does not: not replacing the folder (move that file "
                         "away or choose another folder)", d->path, e->d_name);
        free(mine);
    }
    closedir(dir);
    return rc;
}

/* File systems without RENAME_EXCHANGE take the two-rename path; the crash
 * tests force it with LSLLAMA_FAULT_NO_EXCHANGE=1 to cover its recovery. */
static int no_exchange(void) {
    const char *s = getenv("LSLLAMA_FAULT_NO_EXCHANGE");
    return s && *s == '1';
}

int ll_atomic_dir_commit(ll_atomic_dir *d, ll_error *err) {
    if (!d->tmp_path) return ll_fail(err, LL_ERR_ARG, "%s: folder is not open", d->path ? d->path : "?");
    int rc = LL_OK, e;
    char *displaced = NULL; /* where the old version ends up */
    if ((e = ll_fsync_folder(d->tmp_path))) {
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot sync %s: %s", d->path, d->tmp_path, strerror(e));
        goto fail;
    }
    struct stat st;
    int empty_target = 0;
    if (lstat(d->path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            rc = ll_fail(err, LL_ERR_IO, "%s: exists and is not a folder", d->path);
            goto fail;
        }
        if ((rc = check_replaceable(d, err))) goto fail;
        empty_target = rmdir(d->path) == 0; /* made by open for the parents, or left empty */
    }
    if (empty_target || lstat(d->path, &st) != 0) {
        if (ll_rename(d->tmp_path, d->path) != 0) {
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot rename %s to it: %s", d->path, d->tmp_path, strerror(errno));
            goto fail;
        }
    } else if (!no_exchange() && renameat2(AT_FDCWD, d->tmp_path, AT_FDCWD, d->path, RENAME_EXCHANGE) == 0) {
        ll_fault_after_rename();
        displaced = d->tmp_path, d->tmp_path = NULL;
    } else if (no_exchange() || errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
        /* No exchange here: old aside, new in; recover() undoes a kill in between. */
        displaced = with_suffix(d->path, "old", (long)getpid());
        if (!displaced) {
            rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((rc = ll_remove_tree(displaced, err))) goto fail;
        if (ll_rename(d->path, displaced) != 0) {
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot rename it to %s: %s", d->path, displaced, strerror(errno));
            goto fail;
        }
        if (ll_rename(d->tmp_path, d->path) != 0) {
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot rename %s to it: %s", d->path, d->tmp_path, strerror(errno));
            if (rename(displaced, d->path) != 0) /* put the old version back */
                rc = ll_fail(err, LL_ERR_IO, "%s: cannot rename %s to it, and the old version stays in %s", d->path,
                             d->tmp_path, displaced);
            goto fail;
        }
    } else {
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot exchange it with %s: %s", d->path, d->tmp_path, strerror(errno));
        goto fail;
    }
    if ((e = ll_fsync_parent(d->path))) rc = ll_fail(err, LL_ERR_IO, "%s: written, but cannot sync its folder: %s",
                                                     d->path, strerror(e));
    /* The new version is in place; the old one is garbage whatever happens now. */
    if (displaced) {
        ll_error ignored;
        ll_remove_tree(displaced, &ignored);
    }
    free(displaced);
    ll_atomic_dir_abort(d);
    return rc;
fail:
    free(displaced);
    ll_atomic_dir_abort(d);
    return rc;
}

void ll_atomic_dir_abort(ll_atomic_dir *d) {
    if (!d) return;
    if (d->tmp_path) {
        ll_error ignored;
        ll_remove_tree(d->tmp_path, &ignored);
    }
    free(d->path);
    free(d->tmp_path);
    d->path = d->tmp_path = NULL;
}

/* "<base>.<what>.<digits>" -> the pid; 0 when name is not of that shape. */
static long leftover_pid(const char *name, const char *base, const char *what) {
    const size_t nb = strlen(base), nw = strlen(what);
    if (strncmp(name, base, nb) || name[nb] != '.' || strncmp(name + nb + 1, what, nw) || name[nb + 1 + nw] != '.')
        return 0;
    const char *digits = name + nb + nw + 2;
    char *end;
    const long pid = strtol(digits, &end, 10);
    return *digits && !*end && pid > 0 ? pid : 0;
}

static int owner_gone(long pid) { return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH; }

int ll_atomic_dir_recover(const char *path, int any_owner, ll_error *err) {
    char *p = strdup(path);
    if (!p) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = '\0';
    char *slash = strrchr(p, '/');
    const char *base = slash ? slash + 1 : p;
    char *parent = slash ? strndup(p, (size_t)(slash - p) + (slash == p)) : strdup(".");
    DIR *dir = parent ? opendir(parent) : NULL;
    int rc = LL_OK;
    if (!parent) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
    else if (!dir) rc = errno == ENOENT ? LL_OK : ll_fail(err, LL_ERR_IO, "%s: cannot open folder: %s", parent,
                                                           strerror(errno));
    struct stat st;
    for (struct dirent *e; dir && !rc && (e = readdir(dir));) {
        const long tmp_pid = leftover_pid(e->d_name, base, "tmp"), old_pid = leftover_pid(e->d_name, base, "old");
        const long pid = tmp_pid ? tmp_pid : old_pid;
        if (!pid || !(any_owner ? pid != (long)getpid() : owner_gone(pid))) continue;
        char *left = str_printf2(parent, "/", e->d_name);
        if (!left) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        else if (old_pid && lstat(p, &st) != 0 && errno == ENOENT) { /* killed between the two renames */
            if (rename(left, p) != 0)
                rc = ll_fail(err, LL_ERR_IO, "%s: cannot restore it from %s: %s", p, left, strerror(errno));
        } else {
            rc = ll_remove_tree(left, err);
        }
        free(left);
    }
    if (dir) closedir(dir);
    free(parent);
    free(p);
    return rc;
}
