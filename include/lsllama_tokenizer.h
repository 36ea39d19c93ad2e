/* lsllama tokenizers: byte-level BPE (GPT-2 / SmolLM2 / Llama 3 style) and
 * SentencePiece-style BPE with byte fallback (Llama 2 / TinyLlama / llama2.c),
 * id-for-id identical to Hugging Face `tokenizers` on the tokenizer.json they
 * read, to sentencepiece on tokenizer.model, and to llama2.c on tokenizer.bin.
 *
 * Loading: ll_tokenizer_load() auto-detects
 *   - a GGUF file (tokenizer.ggml.model = gpt2 | llama),
 *   - a Hugging Face tokenizer.json (model type BPE),
 *   - a SentencePiece tokenizer.model (BPE model type),
 *   - a llama2.c tokenizer.bin (e.g. tok512.bin),
 *   - a directory holding tokenizer.json (preferred) or tokenizer.model.
 *
 * Input text is UTF-8. Invalid UTF-8 is defined behaviour: every maximal
 * invalid subsequence is replaced by U+FFFD exactly as Python's
 * bytes.decode('utf-8', errors='replace') does, and the result is tokenized.
 * Character offsets count code points of that replaced text (what a Python
 * str index would be); byte offsets index the caller's original bytes.
 * NUL bytes are ordinary characters (U+0000).
 *
 * Thread safety: a tokenizer handle keeps a pre-token cache and regex match
 * state, so encode on one handle from one thread at a time (load one handle
 * per thread for parallel work). */
#ifndef LSLLAMA_TOKENIZER_H
#define LSLLAMA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default) /* exported from liblsllama.so (see lsllama.h) */
#endif

typedef struct ll_tokenizer ll_tokenizer;

typedef enum ll_tokenizer_kind {
    LL_TOK_BYTE_LEVEL_BPE = 1, /* GPT-2 byte-to-unicode alphabet, merges by rank */
    LL_TOK_SPM_BPE = 2,        /* SentencePiece-style BPE over characters, byte fallback */
} ll_tokenizer_kind;

/* Source formats (for ll_tokenizer_load_memory and ll_tokenizer_format). */
typedef enum ll_tokenizer_format {
    LL_TOKFMT_AUTO = 0,
    LL_TOKFMT_JSON = 1,     /* tokenizer.json */
    LL_TOKFMT_SPM = 2,      /* SentencePiece tokenizer.model */
    LL_TOKFMT_LLAMA2C = 3,  /* llama2.c tokenizer.bin */
    LL_TOKFMT_GGUF = 4,
} ll_tokenizer_format;

int ll_tokenizer_load(ll_tokenizer **out, const char *path, ll_error *err);
/* Load from memory (tests, fuzzers). name is used in error messages. The
 * bytes are copied/parsed; the caller keeps ownership. */
int ll_tokenizer_load_memory(ll_tokenizer **out, const void *data, size_t size, ll_tokenizer_format fmt,
                             const char *name, ll_error *err);
void ll_tokenizer_free(ll_tokenizer *t);
/* What a loaded tokenizer's user should be told, or NULL: a GGUF byte-level
 * BPE without tokenizer.ggml.pre loads as llama.cpp loads it (its 'default'
 * pre-tokenizer), with this warning, as llama.cpp prints one. */
const char *ll_tokenizer_warning(const ll_tokenizer *t);

ll_tokenizer_kind ll_tokenizer_get_kind(const ll_tokenizer *t);
ll_tokenizer_format ll_tokenizer_get_format(const ll_tokenizer *t);
int ll_tokenizer_n_vocab(const ll_tokenizer *t);
int ll_tokenizer_bos_id(const ll_tokenizer *t); /* -1 if none */
int ll_tokenizer_eos_id(const ll_tokenizer *t); /* -1 if none */
int ll_tokenizer_unk_id(const ll_tokenizer *t); /* -1 if none */
/* The raw vocabulary string of a token (e.g. "Ġworld", "▁Hello", "<0x0A>"),
 * not NUL-terminated; NULL if id is out of range. */
const char *ll_tokenizer_piece(const ll_tokenizer *t, int id, size_t *len);
/* Id of a raw vocabulary string, or -1. */
int ll_tokenizer_piece_id(const ll_tokenizer *t, const char *piece, size_t len);
/* 1 if the id is a special/control token (skipped by decode when asked). */
int ll_tokenizer_is_special(const ll_tokenizer *t, int id);

/* Encode flags. */
enum {
    LL_TOK_ADD_SPECIAL = 1,   /* add BOS/EOS as the tokenizer's post-processor does
                                 (Hugging Face add_special_tokens=True) */
    LL_TOK_PARSE_SPECIAL = 2, /* match added/special tokens written in the text
                                 (Hugging Face default; sentencepiece and llama2.c
                                 formats have none to match) */
    LL_TOK_DEFAULT = LL_TOK_ADD_SPECIAL | LL_TOK_PARSE_SPECIAL,
};

/* Result of an encode. Reuse one across calls to avoid allocations; free it
 * with ll_encoding_free. For token i: ids[i]; its span in the input is
 * chars [char_start[i], char_end[i]) (code points) and bytes
 * [byte_start[i], byte_end[i]). Added BOS/EOS tokens have empty spans (0,0),
 * like Hugging Face. A token that covers only some bytes of a character
 * (byte-level or byte-fallback pieces of an emoji) spans the whole character. */
typedef struct ll_encoding {
    int32_t *ids;
    int32_t *char_start, *char_end;
    int64_t *byte_start, *byte_end;
    size_t n, cap;
} ll_encoding;

int ll_tokenizer_encode(ll_tokenizer *t, const char *text, size_t len, int flags, ll_encoding *enc,
                        ll_error *err);
void ll_encoding_free(ll_encoding *enc);

/* Cut enc to at most max_length tokens as Hugging Face truncation (side
 * right) does: tokens added by the post-processor (BOS/EOS: empty spans) at
 * either end are kept and the text's tokens are cut. Returns 1 if enc was
 * cut, 0 if it already fitted (max_length >= 1). */
int ll_encoding_truncate(ll_encoding *enc, size_t max_length);
/* Decode ids back to UTF-8 text (malloc'd, NUL-terminated; *len excludes the
 * NUL). skip_special drops special/control tokens. Byte pieces are joined and
 * invalid UTF-8 that results is replaced by U+FFFD (as Hugging Face does). */
int ll_tokenizer_decode(const ll_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                        size_t *len, ll_error *err);

/* Word alignment for token classification (NER): the words are joined with
 * single spaces, encoded with `flags`, and for each word w its tokens are
 * enc->ids[word_first[w] .. word_end[w]) : every token whose character span
 * overlaps the word (a token starting on the space before a word belongs to
 * that word). A word with no token gets word_first = word_end = the index
 * of the next token. enc receives the encoding of the joined text. */
int ll_tokenizer_align_words(ll_tokenizer *t, const char *const *words, size_t n_words, int flags,
                             ll_encoding *enc, int32_t *word_first, int32_t *word_end, ll_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
