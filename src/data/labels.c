/* Label maps: built from a training set (sorted), saved/loaded as
 * transformers-style id2label/label2id JSON, applied to datasets. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "data/dataset.h"
#include "io/mapped_file.h"

void ll_labelmap_free(ll_labelmap *m) {
    if (!m) return;
    free(m->names);
    ll_strset_free(m->set);
    free(m);
}

int ll_labelmap_find(const ll_labelmap *m, const char *s, size_t len) { return ll_strset_find(m->set, s, len); }

/* names[i] point into m->set after this. */
int ll_labelmap_from_names(ll_labelmap **out, const char *const *names, int n, ll_error *err) {
    *out = NULL;
    ll_labelmap *m = calloc(1, sizeof *m);
    if (!m || !(m->set = ll_strset_new()) || !(m->names = calloc((size_t)(n > 0 ? n : 1), sizeof *m->names))) {
        ll_labelmap_free(m);
        return ll_fail(err, LL_ERR_NOMEM, "label map: out of memory");
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (!len) { ll_labelmap_free(m); return ll_fail(err, LL_ERR_FORMAT, "label map: label %d is empty", i); }
        const int32_t dup = ll_strset_find(m->set, names[i], len);
        if (dup >= 0) {
            ll_labelmap_free(m);
            return ll_fail(err, LL_ERR_FORMAT, "label map: label '%s' appears twice (ids %d and %d)", names[i],
                           (int)dup, i);
        }
        if (ll_strset_intern(m->set, names[i], len) != i) {
            ll_labelmap_free(m);
            return ll_fail(err, LL_ERR_NOMEM, "label map: out of memory");
        }
    }
    for (int i = 0; i < n; i++) m->names[i] = (char *)ll_strset_get(m->set, i);
    m->n = n;
    *out = m;
    return 0;
}

/* Integer label: optional '-', 1..18 digits. */
static int as_int(const char *s, long long *v) {
    const char *p = s + (*s == '-');
    size_t n = strlen(p);
    if (!n || n > 18) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9') return 0;
    *v = strtoll(s, NULL, 10);
    return 1;
}

typedef struct keyed { const char *s; long long v; int32_t raw; } keyed; /* raw: id in the dataset's strings */

static int cmp_int(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return strcmp(x->s, y->s); /* "01" vs "1" */
}
static int cmp_str(const void *a, const void *b) { return strcmp(((const keyed *)a)->s, ((const keyed *)b)->s); }

/* Degenerate training data: a task with nothing to learn is refused here, so
 * every caller that builds its label map from data gets the check. first[r]
 * is the line where raw label r was first read. */
static int check_degenerate(const ll_dataset *ds, const keyed *k, int n, const int32_t *first, ll_error *err) {
    if (ds->token_task) {
        if (n < 2)
            return ll_fail(err, LL_ERR_FORMAT,
                           "%s: every word of the %zu sentences has the tag '%s' (first at line %d): token "
                           "classification needs at least 2 different tags in the training data",
                           ds->path, ds->n_sent, k[0].s, first[k[0].raw]);
        return 0;
    }
    if (!ds->multi_label) {
        if (n < 2)
            return ll_fail(err, LL_ERR_FORMAT,
                           "%s: every one of the %zu rows%s has the label '%s' (first at line %d): classification "
                           "needs at least 2 different labels in the training data",
                           ds->path, ds->n, ds->n_skipped ? " left after skipping invalid ones" : "", k[0].s,
                           first[k[0].raw]);
        return 0;
    }
    /* multi-label: nothing to learn when every row has the same label set */
    const ll_example *e0 = &ds->ex[0];
    for (size_t i = 1; i < ds->n; i++) {
        const ll_example *e = &ds->ex[i];
        if (e->n_lab != e0->n_lab) return 0;
        for (uint32_t a = 0; a < e->n_lab; a++) {
            int found = 0;
            for (uint32_t b = 0; b < e0->n_lab && !found; b++)
                found = ds->raw_labs[e->lab_off + a] == ds->raw_labs[e0->lab_off + b];
            if (!found) return 0;
        }
    }
    return ll_fail(err, LL_ERR_FORMAT,
                   "%s: every one of the %zu rows has the same label set as line %d (%d label%s: '%s'%s): "
                   "multi-label classification needs labels that are present in some rows and absent in others",
                   ds->path, ds->n, e0->line, n, n == 1 ? "" : "s", k[0].s, n > 1 ? ", ..." : "");
}

int ll_labelmap_build(ll_labelmap **out, const ll_dataset *ds, ll_error *err) {
    *out = NULL;
    if (!ds->has_labels || !ds->raw)
        return ll_fail(err, LL_ERR_ARG, "%s: the data has no labels to build a label map from (word-level tags, "
                       "such as a CoNLL file's, are the token task's: --task token)", ds->path);
    size_t nr = ds->raw->n;
    int32_t *first = calloc(nr ? nr : 1, sizeof *first); /* line where each raw label is first read; 0: unused */
    keyed *k = malloc((nr ? nr : 1) * sizeof *k);
    const char **names = malloc((nr ? nr : 1) * sizeof *names);
    if (!first || !k || !names) {
        free(first);
        free(k);
        free(names);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
    }
    if (ds->token_task) {
        for (size_t w = 0; w < ds->n_words; w++)
            if (ds->words[w].raw_tag >= 0 && !first[ds->words[w].raw_tag])
                first[ds->words[w].raw_tag] = ds->words[w].line > 0 ? ds->words[w].line : 1;
    } else {
        for (size_t i = 0; i < ds->n; i++)
            for (uint32_t j = 0; j < ds->ex[i].n_lab; j++) {
                const int32_t r = ds->raw_labs[ds->ex[i].lab_off + j];
                if (!first[r]) first[r] = ds->ex[i].line > 0 ? ds->ex[i].line : 1;
            }
    }
    int n = 0, all_int = 1;
    for (size_t r = 0; r < nr; r++) {
        if (!first[r]) continue;
        k[n].s = ll_strset_get(ds->raw, (int32_t)r);
        k[n].raw = (int32_t)r;
        if (!as_int(k[n].s, &k[n].v)) all_int = 0;
        n++;
    }
    int rc = n ? check_degenerate(ds, k, n, first, err) : ll_fail(err, LL_ERR_FORMAT, "%s: no labels found", ds->path);
    if (!rc) {
        qsort(k, (size_t)n, sizeof *k, all_int ? cmp_int : cmp_str);
        for (int i = 0; i < n; i++) names[i] = k[i].s;
        rc = ll_labelmap_from_names(out, names, n, err);
        if (rc && err && rc != LL_ERR_NOMEM) {
            /* name the file and the line where the offending label was read */
            int line = 0;
            for (int i = 0; i < n && !line; i++)
                if (strstr(err->message, names[i])) line = first[k[i].raw];
            if (line) ll_fail_prefix(err, "%s:%d: ", ds->path, line);
            else ll_fail_prefix(err, "%s: ", ds->path);
        }
    }
    free(names);
    free(first);
    free(k);
    return rc;
}

int ll_labelmap_add_to_json(const ll_labelmap *m, cJSON *obj, ll_error *err) {
    cJSON *id2 = cJSON_CreateObject(), *l2 = cJSON_CreateObject();
    if (!id2 || !l2) goto oom;
    for (int i = 0; i < m->n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        if (!cJSON_AddStringToObject(id2, key, m->names[i]) || !cJSON_AddNumberToObject(l2, m->names[i], i)) goto oom;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "id2label");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "label2id");
    cJSON_AddItemToObject(obj, "id2label", id2);
    cJSON_AddItemToObject(obj, "label2id", l2);
    return 0;
oom:
    cJSON_Delete(id2);
    cJSON_Delete(l2);
    return ll_fail(err, LL_ERR_NOMEM, "label map: out of memory");
}

int ll_labelmap_from_json(ll_labelmap **out, const cJSON *obj, const char *name, ll_error *err) {
    *out = NULL;
    const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(obj, "id2label");
    const cJSON *l2 = cJSON_GetObjectItemCaseSensitive(obj, "label2id");
    if (id2 && !cJSON_IsObject(id2)) return ll_fail(err, LL_ERR_FORMAT, "%s: id2label is not an object", name);
    if (l2 && !cJSON_IsObject(l2)) return ll_fail(err, LL_ERR_FORMAT, "%s: label2id is not an object", name);
    if (!id2 && !l2) return ll_fail(err, LL_ERR_FORMAT, "%s: no id2label or label2id", name);
    const cJSON *src = id2 ? id2 : l2;
    int n = cJSON_GetArraySize(src);
    if (n <= 0) return ll_fail(err, LL_ERR_FORMAT, "%s: empty label map", name);
    const char **names = calloc((size_t)n, sizeof *names);
    if (!names) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
    int rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, src) {
        const char *key = it->string;
        const char *label;
        long long id;
        if (id2) {
            char *end;
            errno = 0;
            id = strtoll(key, &end, 10);
            if (!*key || *end || errno) { rc = ll_fail(err, LL_ERR_FORMAT, "%s: id2label key '%s' is not an integer", name, key); break; }
            if (!cJSON_IsString(it)) { rc = ll_fail(err, LL_ERR_FORMAT, "%s: id2label[\"%s\"] is not a string", name, key); break; }
            label = it->valuestring;
        } else {
            if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble < 2147483647.0) ||
                it->valuedouble != (double)(long long)it->valuedouble) {
                rc = ll_fail(err, LL_ERR_FORMAT, "%s: label2id[\"%s\"] is not a label id (an integer >= 0)", name, key);
                break;
            }
            id = (long long)it->valuedouble;
            label = key;
        }
        if (id < 0 || id >= n) { rc = ll_fail(err, LL_ERR_FORMAT, "%s: label id %lld outside 0..%d", name, id, n - 1); break; }
        if (names[id]) { rc = ll_fail(err, LL_ERR_FORMAT, "%s: label id %lld appears twice", name, id); break; }
        names[id] = label;
    }
    if (!rc) rc = ll_labelmap_from_names(out, names, n, err);
    if (rc && !*out && err && !strstr(err->message, name)) ll_fail_prefix(err, "%s: ", name);
    /* the two halves must agree */
    if (!rc && id2 && l2) {
        cJSON_ArrayForEach(it, l2) {
            int id = ll_labelmap_find(*out, it->string, strlen(it->string));
            if (id < 0 || !cJSON_IsNumber(it) || it->valuedouble != id) {
                rc = ll_fail(err, LL_ERR_FORMAT, "%s: label2id[\"%s\"] does not match id2label", name, it->string);
                break;
            }
        }
        if (!rc && cJSON_GetArraySize(l2) != n)
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: label2id has %d entries, id2label %d", name, cJSON_GetArraySize(l2), n);
        if (rc) { ll_labelmap_free(*out); *out = NULL; }
    }
    free(names);
    return rc;
}

int ll_labelmap_save(const ll_labelmap *m, const char *path, ll_error *err) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
    int rc = ll_labelmap_add_to_json(m, o, err);
    char *text = rc ? NULL : cJSON_Print(o);
    cJSON_Delete(o);
    if (rc) return rc;
    if (!text) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) { free(text); return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path); }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
    } else {
        size_t len = strlen(text), done = 0;
        text[len] = 0;
        while (done < len) {
            ssize_t w = write(fd, text + done, len - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            done += (size_t)w;
        }
        int ok = done == len && write(fd, "\n", 1) == 1 && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
        int e = errno;
        if (close(fd) != 0) ok = 0;
        if (!ok || rename(tmp, path) != 0) {
            if (ok) e = errno;
            unlink(tmp);
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", path, strerror(e));
        }
    }
    free(tmp);
    free(text);
    return rc;
}

int ll_labelmap_load(ll_labelmap **out, const char *path, ll_error *err) {
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = ll_read_text_file(path, &buf, &len, err); /* names the path and the cause (a folder, missing, ...) */
    if (rc) return rc;
    cJSON *o = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ll_fail(err, LL_ERR_FORMAT, "%s: not a JSON object", path);
    }
    rc = ll_labelmap_from_json(out, o, path, err);
    cJSON_Delete(o);
    return rc;
}

/* ---- applying a map -------------------------------------------------------- */

int ll_dataset_apply_labels(ll_dataset *ds, const ll_labelmap *m, ll_error *err) {
    if (ds->token_task) return ll_token_apply_labels(ds, m, err);
    if (!ds->has_labels) return ll_fail(err, LL_ERR_ARG, "%s: the data has no labels", ds->path);
    int32_t *labs = realloc(ds->labs, (ds->labs_cap ? ds->labs_cap : 1) * sizeof *labs);
    if (!labs) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
    ds->labs = labs;
    size_t w = 0;
    for (size_t i = 0; i < ds->n; i++) {
        ll_example *e = &ds->ex[i];
        int ok = 1;
        for (uint32_t j = 0; j < e->n_lab && ok; j++) {
            const char *s = ll_strset_get(ds->raw, ds->raw_labs[e->lab_off + j]);
            int id = ll_labelmap_find(m, s, ds->raw->len[ds->raw_labs[e->lab_off + j]]);
            if (id < 0) {
                int rc = ll_data_bad_row(ds, err, e->line, "label '%s' is not in the label map (%d labels: %s%s%s%s)", s,
                                         m->n, m->names[0], m->n > 1 ? ", " : "", m->n > 1 ? m->names[1] : "",
                                         m->n > 2 ? ", ..." : "");
                if (rc) return rc;
                ok = 0;
            }
            ds->labs[e->lab_off + j] = id;
        }
        if (!ok) continue;
        e->label = !ds->multi_label && e->n_lab == 1 ? ds->labs[e->lab_off] : -1;
        ds->ex[w++] = *e;
    }
    ds->n = w;
    if (!ds->n) return ll_fail(err, LL_ERR_FORMAT, "%s: no rows left (%zu skipped; first: %s)", ds->path, ds->n_skipped, ds->first_skip);
    ds->mapped = 1;
    ds->n_labels = m->n;
    return 0;
}

void ll_dataset_label_counts(const ll_dataset *ds, int64_t *counts) {
    memset(counts, 0, (size_t)ds->n_labels * sizeof *counts);
    if (!ds->mapped) return;
    if (ds->token_task) {
        for (size_t w = 0; w < ds->n_words; w++)
            if (ds->words[w].tag >= 0) counts[ds->words[w].tag]++;
        return;
    }
    for (size_t i = 0; i < ds->n; i++)
        for (uint32_t j = 0; j < ds->ex[i].n_lab; j++) counts[ds->labs[ds->ex[i].lab_off + j]]++;
}
