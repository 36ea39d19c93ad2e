#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

void ll_fault_after_rename(void) {
    static atomic_long count;
    static long kill_at = -1; /* read once; renames come from one thread at a time in practice */
    if (kill_at < 0) {
        const char *s = getenv("LSLLAMA_FAULT_KILL_AFTER_RENAME");
        kill_at = s ? strtol(s, NULL, 10) : 0;
        if (kill_at < 0) kill_at = 0;
    }
    if (kill_at > 0 && atomic_fetch_add(&count, 1) + 1 == kill_at) raise(SIGKILL);
}

int ll_rename(const char *from, const char *to) {
    const int rc = rename(from, to);
    if (rc == 0) ll_fault_after_rename();
    return rc;
}

static void atomic_free(ll_atomic_file *f) {
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    f->fp = NULL;
    f->closed = 0;
}

int ll_atomic_open(ll_atomic_file *f, const char *path, ll_error *err) {
    memset(f, 0, sizeof *f);
    const size_t n = strlen(path) + 32;
    f->path = strdup(path);
    f->tmp_path = malloc(n);
    if (!f->path || !f->tmp_path) {
        atomic_free(f);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    /* The rename at commit replaces whatever the name is: only ever a regular file (never a device such as
     * /dev/full, a pipe, a folder or a symbolic link, which would be replaced rather than written to). */
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int rc = ll_fail(err, LL_ERR_IO, "%s: is not a regular file (%s): lsllama writes a file beside it and "
                         "renames it over the name, which would replace it; choose a file name",
                         path, S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a folder"
                                                   : S_ISFIFO(st.st_mode) ? "a pipe" : "a device or socket");
        atomic_free(f);
        return rc;
    }
    /* O_EXCL: never write through a stale file or link left at that name */
    const int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        const int e = errno;
        int rc = ll_fail(err, LL_ERR_IO, "%s: cannot create temporary file %s: %s", path, f->tmp_path, strerror(e));
        atomic_free(f);
        return rc;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        const int e = errno;
        close(fd);
        unlink(f->tmp_path);
        int rc = ll_fail(err, LL_ERR_IO, "%s: cannot open temporary file %s: %s", path, f->tmp_path, strerror(e));
        atomic_free(f);
        return rc;
    }
    return LL_OK;
}

int ll_atomic_close(ll_atomic_file *f, ll_error *err) {
    if (!f->fp) return ll_fail(err, LL_ERR_ARG, "%s: file is not open", f->path ? f->path : "?");
    int e = 0;
    if (ferror(f->fp)) e = errno ? errno : EIO;
    if (!e && fflush(f->fp) != 0) e = errno;
    if (!e && fsync(fileno(f->fp)) != 0) e = errno;
    if (fclose(f->fp) != 0 && !e) e = errno;
    f->fp = NULL;
    if (e) {
        int rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", f->path, strerror(e));
        ll_atomic_abort(f);
        return rc;
    }
    f->closed = 1;
    return LL_OK;
}

int ll_fsync_folder(const char *dir) {
    int e = 0;
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    if (fsync(fd) != 0 && errno != EINVAL) e = errno; /* some file systems cannot fsync folders */
    close(fd);
    return e;
}

/* fsync the folder holding path so that a rename in it is durable. */
static int fsync_parent(const char *path) {
    char *dir = strdup(path);
    if (!dir) return ENOMEM;
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    const int e = ll_fsync_folder(dir);
    free(dir);
    return e;
}

int ll_fsync_parent(const char *path) { return fsync_parent(path); }

int ll_atomic_commit(ll_atomic_file *f, ll_error *err) {
    if (!f->closed) {
        int rc = ll_fail(err, LL_ERR_ARG, "%s: commit before the file was closed", f->path ? f->path : "?");
        ll_atomic_abort(f);
        return rc;
    }
    if (ll_rename(f->tmp_path, f->path) != 0) {
        const int e = errno;
        int rc = ll_fail(err, LL_ERR_IO, "%s: cannot rename %s over it: %s", f->path, f->tmp_path, strerror(e));
        ll_atomic_abort(f);
        return rc;
    }
    const int e = fsync_parent(f->path);
    int rc = LL_OK;
    if (e) rc = ll_fail(err, LL_ERR_IO, "%s: written, but cannot sync its folder: %s", f->path, strerror(e));
    atomic_free(f);
    return rc;
}

void ll_atomic_abort(ll_atomic_file *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    atomic_free(f);
}

int ll_atomic_write(const char *path, const void *data, size_t n, ll_error *err) {
    ll_atomic_file f;
    int rc = ll_atomic_open(&f, path, err);
    if (rc) return rc;
    if (n && fwrite(data, 1, n, f.fp) != n) {
        const int e = errno;
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", path, strerror(e));
        ll_atomic_abort(&f);
        return rc;
    }
    if ((rc = ll_atomic_close(&f, err))) return rc;
    return ll_atomic_commit(&f, err);
}

int ll_mkdir_p(const char *dir, ll_error *err) {
    if (!dir || !*dir) return ll_fail(err, LL_ERR_ARG, "empty folder name");
    char *p = strdup(dir);
    if (!p) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = '\0';
    for (char *s = p + 1;; s++) {
        const int end = *s == '\0';
        if (*s == '/' || end) {
            *s = '\0';
            struct stat st;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                const int e = errno;
                int rc = ll_fail(err, LL_ERR_IO, "%s: cannot create folder %s: %s", dir, p, strerror(e));
                free(p);
                return rc;
            }
            if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
                int rc = ll_fail(err, LL_ERR_IO, "%s: %s exists and is not a folder", dir, p);
                free(p);
                return rc;
            }
            if (end) break;
            *s = '/';
        }
    }
    free(p);
    return LL_OK;
}
