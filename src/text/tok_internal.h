/* Internal representation shared by the tokenizer loaders and the encoder. */
#ifndef LL_TEXT_TOK_INTERNAL_H
#define LL_TEXT_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "lsllama_tokenizer.h"
#include "text/maps.h"

/* token attributes */
enum { TOK_ATTR_SPECIAL = 1, TOK_ATTR_BYTE = 2, TOK_ATTR_ADDED = 4, TOK_ATTR_UNUSED = 8 };

typedef struct ll_tok_added {
    char *content;
    size_t len;
    int32_t id;
    int special, lstrip, rstrip, single_word;
    int normalized; /* tokenizers' "normalized": matched after the non-normalized ones, in what they leave */
} ll_tok_added;

typedef enum norm_kind {
    NORM_REPLACE_STR = 1,    /* every occurrence of a -> b */
    NORM_REPLACE_REGEX = 2,  /* every match of re -> b */
    NORM_PREPEND = 3,        /* prepend b to a non-empty string */
    NORM_PREPEND_IF_NOT = 4, /* prepend b unless the string starts with b (Metaspace, ByteLevel prefix space);
                                first_only: only for the segment that starts the text */
    NORM_STRIP = 5,          /* strip whitespace left/right */
    NORM_SPM_WHITESPACE = 6, /* sentencepiece remove_extra_whitespaces: strip ' ' and collapse runs */
} norm_kind;

typedef struct norm_op {
    norm_kind kind;
    char *a, *b;
    size_t alen, blen;
    pcre2_code *re;
    int first_only;
    int left, right;
} norm_op;

typedef enum split_behavior {
    SPLIT_REMOVED = 0, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS,
} split_behavior;

typedef struct split_op {
    pcre2_code *re;
    int behavior; /* split_behavior */
    int invert;
} split_op;

typedef struct ll_tok_cache ll_tok_cache;

struct ll_tokenizer {
    ll_tokenizer_kind kind;
    ll_tokenizer_format format;
    char *name;
    char warning[320]; /* "" or what the caller should tell the user (ll_tokenizer_warning) */

    /* vocabulary */
    int32_t n_vocab;
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *off, *len;
    float *score;
    uint8_t *attr;
    ll_strmap vocab;

    /* merges */
    ll_pairmap merges;
    int ignore_merges;

    /* initial symbols */
    int32_t byte_id[256];    /* byte-level: id of the byte's alphabet char; spm: byte-fallback id or -1 */
    uint32_t byte_char[256]; /* byte-level: the code point standing for each byte */
    int byte_fallback;
    int fuse_unk;
    int32_t unk_id, bos_id, eos_id;
    int32_t ascii_id[128];   /* spm: id of each single ASCII char, -1 if absent */

    /* added tokens */
    ll_tok_added *added;
    size_t n_added;
    int has_normalized_added;
    /* added tokens by first byte (built by ll_tok_ready): those starting with
     * byte c are added[added_order[j]] for j in [added_start[c], added_start[c + 1]),
     * longest first, ties in insertion order, so the first that matches is the
     * leftmost-longest match; Gemma has 6,414 added tokens, and scanning all of
     * them at every space dominated its encoding */
    uint32_t added_start[257];
    uint32_t *added_order;

    /* pipeline */
    norm_op *norm;
    size_t n_norm;
    split_op *split;
    size_t n_split;
    int32_t pre_ids[4], post_ids[4];
    int n_pre, n_post;
    /* ByteLevel / RobertaProcessing post-processor trim_offsets (and its add_prefix_space) */
    int trim_offsets, trim_prefix_space;

    /* decoding */
    int decode_strip_space; /* drop one leading space of the decoded text (dummy prefix) */
    int decode_space_char;  /* spm: pieces use U+2581 for spaces (1) or ' ' already (0) */

    /* state (not thread-safe) */
    pcre2_match_data *md;
    pcre2_code *word_re; /* \w for single_word added tokens (NULL when none) */
    ll_tok_cache *cache;
};

/* builder helpers for the loaders */
int ll_tok_new(ll_tokenizer **out, const char *name, ll_tokenizer_kind kind, ll_tokenizer_format fmt, size_t n_vocab,
            ll_error *err);
/* set piece id (0 <= id < n_vocab) */
int ll_tok_set_piece(ll_tokenizer *t, int32_t id, const char *s, size_t n, float score, uint8_t attr, ll_error *err);
/* after all pieces are set: builds the vocabulary map and the byte tables */
int ll_tok_finish_vocab(ll_tokenizer *t, ll_error *err);
int ll_tok_add_merge_str(ll_tokenizer *t, const char *a, size_t an, const char *b, size_t bn, int32_t rank,
                      ll_error *err);
/* merges from scores (sentencepiece / llama2.c): every split of a mergeable
 * piece into two vocabulary pieces; rank = dense rank of the score (higher
 * score first). only_normal restricts merge results to normal/user pieces. */
int ll_tok_merges_from_scores(ll_tokenizer *t, int only_normal, ll_error *err);
int ll_tok_add_added(ll_tokenizer *t, const char *content, size_t len, int32_t id, int special, int lstrip,
                  int rstrip, int single_word, ll_error *err);
int ll_tok_add_norm(ll_tokenizer *t, norm_kind kind, const char *a, size_t alen, const char *b, size_t blen,
                 ll_error *err);
/* pattern: PCRE2 pattern (literal if is_literal) */
int ll_tok_add_split(ll_tokenizer *t, const char *pattern, size_t plen, int is_literal, int behavior, int invert,
                  ll_error *err);
int ll_tok_compile(ll_tokenizer *t, pcre2_code **re, const char *pattern, size_t plen, int is_literal, ll_error *err);
/* finalize state (match data, cache) */
int ll_tok_ready(ll_tokenizer *t, ll_error *err);

/* The split regexes (NULL-terminated) llama.cpp applies for a GGUF
 * tokenizer.ggml.pre name, or NULL for a name it maps elsewhere
 * (load_gguf.c); the GPT-2 regex among them. */
const char *const *ll_tok_gguf_pre_patterns(const char *pre);
const char *ll_tok_gpt2_pattern(void);

/* the GPT-2 byte-level split regex */
extern const char *const ll_gpt2_pattern_text;

/* loaders */
int ll_tok_load_json(ll_tokenizer **out, const char *text, size_t len, const char *name, ll_error *err);
int ll_tok_load_spm(ll_tokenizer **out, const uint8_t *data, size_t len, const char *name, ll_error *err);
int ll_tok_load_llama2c(ll_tokenizer **out, const uint8_t *data, size_t len, const char *name, ll_error *err);
int ll_tok_load_gguf(ll_tokenizer **out, const uint8_t *data, size_t len, const char *name, ll_error *err);

#endif
