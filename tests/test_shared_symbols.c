/* liblsllama.so exports exactly the public API: the functions the headers in include/
 * declares, nothing else. The headers are read (comments removed) for every
 * identifier "ll_NAME" followed by "(" (function declarations; function
 * pointer typedefs are "(*ll_NAME)(" and do not count), then
 * `nm -D --defined-only` lists the shared library's dynamic symbols:
 *  - a defined dynamic symbol that no header declares fails (named): an
 *    internal function leaked out of -fvisibility=hidden;
 *  - a declared function that the library does not export fails (named): a
 *    caller of the header (the Python package's ctypes binding) would not
 *    find it;
 *  - the key entry points must be among them, and the lists must be long
 *    enough that a failed nm or an unreadable header cannot pass. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define MAX_NAMES 2048

typedef struct names {
    char *v[MAX_NAMES];
    int n;
} names;

static int names_has(const names *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name)) return 1;
    return 0;
}

static void names_add(names *s, const char *name, size_t len) {
    char buf[256];
    REQUIRE(len < sizeof buf);
    memcpy(buf, name, len);
    buf[len] = 0;
    if (names_has(s, buf)) return;
    REQUIRE(s->n < MAX_NAMES);
    s->v[s->n++] = strdup(buf);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    REQUIRE(s && fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* Blank out comments (the text's layout is kept; comments name functions in prose). */
static void strip_comments(char *s) {
    for (char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            char *e = strstr(p + 2, "*/");
            REQUIRE(e);
            memset(p, ' ', (size_t)(e + 2 - p));
            p = e + 1;
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n') *p++ = ' ';
            if (!*p) break;
        }
    }
}

static int is_ident(int c) { return isalnum(c) || c == '_'; }

static void declared_functions(const char *header, names *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/include/%s", LL_SOURCE_DIR, header);
    char *s = read_file(path);
    strip_comments(s);
    for (char *p = s; (p = strstr(p, "ll_")) != NULL;) {
        if (p > s && is_ident((unsigned char)p[-1])) {
            p += 3;
            continue;
        }
        char *e = p;
        while (is_ident((unsigned char)*e)) e++;
        char *q = e;
        while (*q == ' ' || *q == '\t' || *q == '\n') q++;
        if (*q == '(') names_add(out, p, (size_t)(e - p));
        p = e;
    }
    free(s);
}

int main(void) {
    static names declared, exported;
    const char *headers[] = {"lsllama.h", "lsllama_tokenizer.h", "lsllama_train.h"};
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) declared_functions(headers[i], &declared);
    CHECK_MSG(declared.n > 100, "only %d functions declared in include/*.h: were the headers read?", declared.n);

    FILE *p = popen("nm -D --defined-only " LL_BUILD_DIR "/liblsllama.so 2>&1", "r");
    REQUIRE(p);
    char line[1024];
    int n_bad = 0;
    while (fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[512];
        if (sscanf(line, "%63s %7s %511s", addr, type, name) != 3) {
            fprintf(stderr, "nm: %s", line);
            continue;
        }
        char *at = strchr(name, '@'); /* a versioned name "sym@@VERSION" */
        if (at) *at = 0;
        if (type[0] == 'A') continue; /* version definitions, not symbols */
        names_add(&exported, name, strlen(name));
        if (!names_has(&declared, name)) {
            n_bad++;
            fprintf(stderr, "exported but not declared in include/*.h: %s (%s)\n", name, type);
        }
    }
    CHECK(pclose(p) == 0);
    CHECK_MSG(exported.n > 100, "only %d dynamic symbols: did nm read liblsllama.so?", exported.n);
    CHECK_MSG(n_bad == 0, "%d symbols exported beyond the public API", n_bad);

    int n_missing = 0;
    for (int i = 0; i < declared.n; i++)
        if (!names_has(&exported, declared.v[i])) {
            n_missing++;
            fprintf(stderr, "declared in include/*.h but not exported: %s\n", declared.v[i]);
        }
    CHECK_MSG(n_missing == 0, "%d public functions missing from liblsllama.so", n_missing);
    const char *key[] = {"ll_model_load", "ll_forward", "ll_train", "ll_classifier_predict",
                         "ll_classifier_predict_tokens", "ll_tokenizer_encode", "ll_dataset_load_memory",
                         "ll_adapter_load", "ll_error_message_dummy_never_declared"};
    for (size_t i = 0; i + 1 < sizeof key / sizeof *key; i++)
        CHECK_MSG(names_has(&exported, key[i]), "%s is not exported", key[i]);
    CHECK(!names_has(&exported, key[sizeof key / sizeof *key - 1])); /* the lookup does not match everything */
    printf("%d functions declared, %d exported\n", declared.n, exported.n);
    return test_summary("test_shared_symbols");
}
