/* Every symbol liblsllama.a exports carries the ll_ prefix, so a program can
 * link it beside ggml, llama.cpp or a tokenizer library without a clash:
 * `nm -g --defined-only` lists each object's defined globals, and any whose
 * name does not begin with "ll_" fails the test (named). The list must be
 * non-trivial and hold the public entry points, so a failed nm cannot pass.
 * Sanitizer builds' "__odr_asan.NAME" indicators are checked by their NAME. */
#include <stdio.h>
#include <string.h>

#include "test_util.h"

int main(void) {
    FILE *p = popen("nm -g --defined-only " LL_BUILD_DIR "/liblsllama.a 2>&1", "r");
    REQUIRE(p);
    char line[1024];
    int n_symbols = 0, n_bad = 0, have_train = 0, have_forward = 0, have_tokenizer = 0;
    while (fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[512];
        if (sscanf(line, "%63s %7s %511s", addr, type, name) != 3) continue; /* "file.o:" headers, blank lines */
        /* sanitizer builds add an ODR indicator per global: "__odr_asan.NAME" checks as NAME */
        static const char odr[] = "__odr_asan.";
        const char *sym = !strncmp(name, odr, sizeof odr - 1) ? name + sizeof odr - 1 : name;
        n_symbols++;
        have_train |= !strcmp(name, "ll_train");
        have_forward |= !strcmp(name, "ll_forward");
        have_tokenizer |= !strcmp(name, "ll_tokenizer_encode");
        if (strncmp(sym, "ll_", 3)) {
            n_bad++;
            fprintf(stderr, "exported without the ll_ prefix: %s (%s)\n", name, type);
        }
    }
    CHECK(pclose(p) == 0);
    CHECK_MSG(n_symbols > 200, "only %d symbols: did nm read the library?", n_symbols);
    CHECK(have_train && have_forward && have_tokenizer);
    CHECK_MSG(n_bad == 0, "%d exported symbols lack the ll_ prefix", n_bad);
    printf("%d exported symbols\n", n_symbols);
    return test_summary("test_exported_symbols");
}
