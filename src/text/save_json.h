/* A loaded tokenizer written back as a Hugging Face tokenizer.json (the file
 * `tokenizers.Tokenizer.from_file` and transformers' PreTrainedTokenizerFast
 * read), for the folders `lsllama merge` writes.
 *
 * What is written, by source (ll_tokenizer_get_format):
 *  - tokenizer.json: the source file itself, byte for byte;
 *  - GGUF, tokenizer.ggml.model = gpt2 (byte-level BPE) whose
 *    tokenizer.ggml.pre is one of the GPT-2-regex types (default, gpt2, gpt-2,
 *    olmo, jais, poro-chat, viking, bloom, smollm): model BPE (vocab, merges in
 *    rank order), pre_tokenizer ByteLevel (use_regex, no prefix space),
 *    decoder ByteLevel, the added tokens lsllama matches in text;
 *  - SentencePiece BPE (tokenizer.model, llama2.c tokenizer.bin, GGUF llama):
 *    model BPE with byte_fallback / unk_token / fuse_unk, merges = every split
 *    of a normal piece into two pieces, ordered by the piece's score (what
 *    lsllama and sentencepiece apply), the normalizer as lsllama applies it
 *    (Prepend, Replace; sentencepiece's remove_extra_whitespaces as two
 *    Replace regexes), no pre-tokenizer (the whole line is one word);
 * and in every case a TemplateProcessing post-processor adding the BOS/EOS
 * ids lsllama adds (LL_TOK_ADD_SPECIAL).
 *
 * Refused (LL_ERR_UNSUPPORTED, naming the setting): a GGUF pre-tokenizer type
 * other than those above, pieces that are not valid UTF-8 or appear twice,
 * normalizer steps and split regexes tokenizer.json has no exact form for.
 * Known limit (SentencePiece sources): merges of equal score are written in
 * (score, piece id, left id) order, so where two of them overlap on one
 * symbol HF applies the earlier-listed one while lsllama (and sentencepiece)
 * take the leftmost; tests/test_merge_fidelity.c checks SST-2 dev and edge
 * strings id for id. */
#ifndef LL_TEXT_SAVE_JSON_H
#define LL_TEXT_SAVE_JSON_H

#include <stddef.h>

#include "lsllama_tokenizer.h"

/* t, loaded from source_path (a file, or a folder holding tokenizer.json or
 * tokenizer.model, as ll_tokenizer_load takes it), as tokenizer.json text:
 * *out malloc'd, NUL-terminated, *len bytes. */
int ll_tokenizer_to_json(const ll_tokenizer *t, const char *source_path, char **out, size_t *len, ll_error *err);

#endif
