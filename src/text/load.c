/* ll_tokenizer_load: format detection and the directory case. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/mapped_file.h"
#include "text/tok_internal.h"

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static ll_tokenizer_format sniff(const uint8_t *d, size_t n, const char *path) {
    if (n >= 4 && !memcmp(d, "GGUF", 4)) return LL_TOKFMT_GGUF;
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) i++;
    if (i < n && d[i] == '{') return LL_TOKFMT_JSON;
    if (path && ends_with(path, ".json")) return LL_TOKFMT_JSON;
    if (path && ends_with(path, ".model")) return LL_TOKFMT_SPM;
    if (path && ends_with(path, ".bin")) return LL_TOKFMT_LLAMA2C;
    if (n >= 1 && d[0] == 0x0A) return LL_TOKFMT_SPM; /* protobuf field 1, length-delimited */
    return LL_TOKFMT_LLAMA2C;
}

int ll_tokenizer_load_memory(ll_tokenizer **out, const void *data, size_t size, ll_tokenizer_format fmt,
                             const char *name, ll_error *err) {
    if (!out) return ll_fail(err, LL_ERR_ARG, "ll_tokenizer_load_memory: NULL output");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!data && size) return ll_fail(err, LL_ERR_ARG, "%s: NULL data", name);
    if (!data) data = "";
    if (fmt == LL_TOKFMT_AUTO) fmt = sniff(data, size, name);
    switch (fmt) {
    case LL_TOKFMT_JSON: return ll_tok_load_json(out, data, size, name, err);
    case LL_TOKFMT_SPM: return ll_tok_load_spm(out, data, size, name, err);
    case LL_TOKFMT_LLAMA2C: return ll_tok_load_llama2c(out, data, size, name, err);
    case LL_TOKFMT_GGUF: return ll_tok_load_gguf(out, data, size, name, err);
    default: return ll_fail(err, LL_ERR_ARG, "%s: unknown tokenizer format %d", name, (int)fmt);
    }
}

/* tokenizer_config.json beside a tokenizer.json: bos/eos token names, each
 * unless the template post-processor already decided it (a template adding
 * BOS but no EOS, as Gemma's, leaves EOS to this file: without it a guess from
 * well-known names took Gemma's plain piece "</s>" for its "<eos>") */
static void apply_config(ll_tokenizer *t, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *text;
    size_t len;
    ll_error e;
    if (ll_read_text_file(path, &text, &len, &e)) return;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return;
    const char *keys[2] = {"bos_token", "eos_token"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (!cJSON_IsString(v)) continue;
        int id = ll_tokenizer_piece_id(t, v->valuestring, strlen(v->valuestring));
        if (id < 0) continue;
        if (k == 0 && t->n_pre == 0) t->bos_id = id;
        else if (k == 1 && t->n_post == 0) t->eos_id = id;
    }
    cJSON_Delete(root);
}

int ll_tokenizer_load(ll_tokenizer **out, const char *path, ll_error *err) {
    if (!out || !path) return ll_fail(err, LL_ERR_ARG, "ll_tokenizer_load: NULL argument");
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return ll_fail(err, LL_ERR_IO, "%s: %s", path, errno == ENOENT ? "no such file or directory" : strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char p[4096];
        const char *names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.bin"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s", path, names[i]);
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                int rc = ll_tokenizer_load(out, p, err);
                if (!rc && i == 0 && *out) apply_config(*out, path);
                return rc;
            }
        }
        return ll_fail(err, LL_ERR_IO, "%s: directory holds no tokenizer.json, tokenizer.model or tokenizer.bin", path);
    }
    ll_mapped_file f;
    int rc = ll_map_file(&f, path, err);
    if (rc) return rc;
    ll_tokenizer_format fmt = sniff(f.data, f.size, path);
    rc = ll_tokenizer_load_memory(out, f.data, f.size, fmt, path, err);
    ll_unmap_file(&f);
    if (!rc && fmt == LL_TOKFMT_JSON) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        apply_config(*out, dir);
    }
    return rc;
}
