/* lsllama tokenize: text lines in, token ids out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "lsllama_tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lsllama tokenize MODEL_OR_TOKENIZER [--offsets] [--byte-offsets] [--no-special]\n"
            "                        [--no-parse-special] [--pieces] [--decode] [--info]\n"
            "\n"
            "Reads UTF-8 text lines from standard input (the trailing newline is not part\n"
            "of the text) and writes one line of space-separated token ids per input line.\n"
            "MODEL_OR_TOKENIZER: a GGUF model, tokenizer.json, SentencePiece tokenizer.model,\n"
            "llama2.c tokenizer.bin, or a directory holding tokenizer.json / tokenizer.model.\n"
            "\n"
            "  --offsets          write each token as ID:START-END, START/END in characters\n"
            "                     (code points) of the input line, END exclusive\n"
            "  --byte-offsets     same with byte offsets into the input line\n"
            "  --no-special       do not add BOS/EOS (Hugging Face add_special_tokens=False)\n"
            "  --no-parse-special treat special tokens written in the text as plain text\n"
            "  --pieces           write each token's vocabulary string instead of its id\n"
            "  --decode           reverse: read lines of ids, write the decoded text\n"
            "  --info             print vocabulary size and BOS/EOS/UNK ids, then exit\n"
            "\n"
            "Invalid UTF-8 is replaced by U+FFFD (as Python's errors='replace') before\n"
            "tokenization; character offsets count code points of the replaced text.\n");
}

/* --decode: each line's ids (checked: integers within the vocabulary) to text. */
static int decode_lines(ll_tokenizer *t) {
    char *line = NULL, msg[256] = "";
    size_t cap = 0, ids_cap = 0;
    int32_t *ids = NULL;
    const int V = ll_tokenizer_n_vocab(t);
    int status = 0;
    for (long lineno = 1; cli_getline(&line, &cap, stdin) >= 0; lineno++) {
        const long k = cli_parse_ids(line, &ids, &ids_cap, msg, sizeof msg);
        for (long i = 0; k > 0 && i < k && !msg[0]; i++)
            if (ids[i] >= V) snprintf(msg, sizeof msg, "token id %d is outside the vocabulary (0..%d)", ids[i], V - 1);
        if (k < 0 || msg[0]) {
            fprintf(stderr, "lsllama tokenize: <stdin>:%ld: %s\n", lineno, msg);
            status = 1;
            break;
        }
        char *text;
        size_t len;
        ll_error err;
        if (ll_tokenizer_decode(t, ids, (size_t)k, 0, &text, &len, &err)) {
            fprintf(stderr, "lsllama tokenize: <stdin>:%ld: %s\n", lineno, err.message);
            status = 1;
            break;
        }
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
        free(text);
        if (!cli_output_ok("tokenize", stdout, "standard output")) {
            status = 1;
            break;
        }
        msg[0] = 0;
    }
    if (!status && ferror(stdin)) {
        fprintf(stderr, "lsllama tokenize: error reading standard input: %s\n", strerror(errno));
        status = 1;
    }
    free(ids);
    free(line);
    return status;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    int offsets = 0, byte_offsets = 0, pieces = 0, decode = 0, info = 0;
    int flags = LL_TOK_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--offsets")) offsets = 1;
        else if (!strcmp(a, "--byte-offsets")) byte_offsets = 1;
        else if (!strcmp(a, "--no-special")) flags &= ~LL_TOK_ADD_SPECIAL;
        else if (!strcmp(a, "--no-parse-special")) flags &= ~LL_TOK_PARSE_SPECIAL;
        else if (!strcmp(a, "--pieces")) pieces = 1;
        else if (!strcmp(a, "--decode")) decode = 1;
        else if (!strcmp(a, "--info")) info = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "lsllama tokenize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) path = a;
        else {
            fprintf(stderr, "lsllama tokenize: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    ll_tokenizer *t;
    ll_error err;
    if (ll_tokenizer_load(&t, path, &err)) {
        fprintf(stderr, "lsllama tokenize: %s\n", err.message);
        return 1;
    }
    cli_tokenizer_warning("tokenize", t);
    if (info) {
        printf("vocab %d bos %d eos %d unk %d kind %s\n", ll_tokenizer_n_vocab(t), ll_tokenizer_bos_id(t),
               ll_tokenizer_eos_id(t), ll_tokenizer_unk_id(t),
               ll_tokenizer_get_kind(t) == LL_TOK_BYTE_LEVEL_BPE ? "byte-level-bpe" : "sentencepiece-bpe");
        ll_tokenizer_free(t);
        return 0;
    }
    if (decode) {
        int rc = decode_lines(t);
        ll_tokenizer_free(t);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    ll_encoding enc = {0};
    int status = 0;
    for (long lineno = 1; (n = getline(&line, &cap, stdin)) >= 0; lineno++) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        if (ll_tokenizer_encode(t, line, len, flags, &enc, &err)) {
            fprintf(stderr, "lsllama tokenize: <stdin>:%ld: %s\n", lineno, err.message);
            status = 1;
            fputc('\n', stdout); /* keep output lines aligned with the input lines */
            continue;
        }
        for (size_t i = 0; i < enc.n; i++) {
            if (i) fputc(' ', stdout);
            if (pieces) {
                size_t pl;
                const char *p = ll_tokenizer_piece(t, enc.ids[i], &pl);
                fwrite(p, 1, pl, stdout);
            } else {
                printf("%d", (int)enc.ids[i]);
            }
            if (offsets) printf(":%d-%d", (int)enc.char_start[i], (int)enc.char_end[i]);
            if (byte_offsets) printf(":%lld-%lld", (long long)enc.byte_start[i], (long long)enc.byte_end[i]);
        }
        fputc('\n', stdout);
        if (!cli_output_ok("tokenize", stdout, "standard output")) { /* stop at the first failed write */
            status = 1;
            break;
        }
    }
    if (!status && ferror(stdin)) {
        fprintf(stderr, "lsllama tokenize: error reading standard input: %s\n", strerror(errno));
        status = 1;
    }
    free(line);
    ll_encoding_free(&enc);
    ll_tokenizer_free(t);
    return status; /* main() flushes and checks standard output */
}
