/* BPE merge engine: symbols in a linked list, candidate merges in a binary
 * heap ordered by (rank, position), stale candidates skipped when popped.
 * Equivalent to Hugging Face tokenizers' Word::merge_all and to
 * sentencepiece's BPE agenda (rank = dense rank of the merged piece's score). */
#include "text/bpe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"

typedef struct bpe_sym {
    int32_t id;
    int32_t prev, next;
    uint32_t start, len; /* bytes, relative to the piece */
} bpe_sym;

typedef struct bpe_cand {
    int32_t rank;
    int32_t left, right;
    int32_t lid, rid, merged;
} bpe_cand;

struct ll_bpe_scratch {
    bpe_sym *sym;
    size_t sym_cap;
    char *word; /* a byte-level piece in the alphabet (ignore_merges lookup) */
    size_t word_cap;
    uint32_t *aoff; /* byte-level: alphabet offset of each byte of the piece */
    size_t aoff_cap;
    bpe_cand *heap;
    size_t heap_cap, heap_n;
};

ll_bpe_scratch *ll_bpe_scratch_new(void) { return calloc(1, sizeof(ll_bpe_scratch)); }

void ll_bpe_scratch_free(ll_bpe_scratch *s) {
    if (!s) return;
    free(s->sym);
    free(s->word);
    free(s->aoff);
    free(s->heap);
    free(s);
}

static inline int cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int heap_push(ll_bpe_scratch *s, bpe_cand c) {
    if (s->heap_n == s->heap_cap) {
        size_t nc = s->heap_cap ? s->heap_cap * 2 : 256;
        bpe_cand *nh = realloc(s->heap, nc * sizeof *nh);
        if (!nh) return -1;
        s->heap = nh;
        s->heap_cap = nc;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = c;
    return 0;
}

static bpe_cand heap_pop(ll_bpe_scratch *s) {
    bpe_cand top = s->heap[0];
    bpe_cand last = s->heap[--s->heap_n];
    size_t n = s->heap_n, i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t r = l + 1, m = (r < n && cand_less(&s->heap[r], &s->heap[l])) ? r : l;
        if (!cand_less(&s->heap[m], &last)) break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (n) s->heap[i] = last;
    return top;
}

static int push_pair(ll_bpe_scratch *s, const ll_pairmap *pm, int32_t left) {
    bpe_sym *sym = s->sym;
    int32_t right = sym[left].next;
    if (right < 0) return 0;
    const ll_pair_entry *e = ll_pairmap_get(pm, sym[left].id, sym[right].id);
    if (!e) return 0;
    bpe_cand c = {e->rank, left, right, sym[left].id, sym[right].id, e->merged};
    return heap_push(s, c);
}

static int ensure_syms(ll_bpe_scratch *s, size_t n) {
    if (n <= s->sym_cap) return 0;
    size_t nc = s->sym_cap ? s->sym_cap : 256;
    while (nc < n) nc *= 2;
    bpe_sym *ns = realloc(s->sym, nc * sizeof *ns);
    if (!ns) return -1;
    s->sym = ns;
    s->sym_cap = nc;
    return 0;
}

static int ensure_word(ll_bpe_scratch *s, size_t n) {
    if (n <= s->word_cap) return 0;
    size_t nc = s->word_cap ? s->word_cap : 256;
    while (nc < n) nc *= 2;
    char *nw = realloc(s->word, nc);
    if (!nw) return -1;
    s->word = nw;
    s->word_cap = nc;
    return 0;
}

static int ensure_aoff(ll_bpe_scratch *s, size_t n) {
    if (n <= s->aoff_cap) return 0;
    size_t nc = s->aoff_cap ? s->aoff_cap : 256;
    while (nc < n) nc *= 2;
    uint32_t *na = realloc(s->aoff, nc * sizeof *na);
    if (!na) return -1;
    s->aoff = na;
    s->aoff_cap = nc;
    return 0;
}

int ll_bpe_encode_piece(const ll_bpe_params *p, ll_bpe_scratch *s, const uint8_t *text, size_t n, ll_bpe_emit_fn emit,
                     void *ctx) {
    if (n == 0) return 0;
    if (p->ignore_merges && p->lookup) {
        /* tokenizers' BPE with ignore_merges: a pre-token that is itself in the
         * vocabulary is one token. The vocabulary is written in the byte-level
         * alphabet, so a byte-level piece is looked up after mapping each byte
         * to its alphabet character ("the movie" -> "Ġmovie"). */
        int32_t id;
        if (p->byte_level) {
            if (n > SIZE_MAX / 2 || ensure_word(s, 2 * n)) return -1;
            size_t m = 0;
            for (size_t i = 0; i < n; i++) m += (size_t)ll_utf8_encode(p->byte_char[text[i]], s->word + m);
            id = p->lookup(p->lookup_ctx, s->word, m);
        } else {
            id = p->lookup(p->lookup_ctx, (const char *)text, n);
        }
        if (id >= 0) return emit(ctx, id, 0, (uint32_t)n);
    }
    if (ensure_syms(s, n + 1)) return -1;
    bpe_sym *sym = s->sym;
    size_t ns = 0;
    if (p->byte_level) {
        /* a byte whose alphabet character is not in the vocabulary becomes
         * unk_token (consecutive ones fused into one with fuse_unk), or is
         * dropped without unk_token, as tokenizers' BPE::merge_word does */
        /* Positions are counted, as tokenizers' Word does, in bytes of the
         * alphabet string summed over the symbols kept: a dropped character
         * shifts the offsets of those after it. They are mapped back to the
         * piece's bytes when emitted (aoff: alphabet offset of each byte). */
        if (ensure_aoff(s, n + 1)) return -1;
        uint32_t acum = 0;
        for (size_t i = 0; i < n; i++) {
            s->aoff[i] = acum;
            acum += p->byte_char[text[i]] < 0x80 ? 1 : 2;
        }
        s->aoff[n] = acum;
        int pending_unk = 0;
        uint32_t cum = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t id = p->byte_id[text[i]];
            uint32_t al = p->byte_char[text[i]] < 0x80 ? 1 : 2;
            if (id < 0) {
                if (p->unk_id < 0) continue;
                if (p->fuse_unk && pending_unk) {
                    sym[ns - 1].len += al;
                    cum += al;
                    continue;
                }
                id = p->unk_id;
                pending_unk = 1;
            } else {
                pending_unk = 0;
            }
            sym[ns].id = id;
            sym[ns].start = cum;
            sym[ns].len = al;
            cum += al;
            ns++;
        }
    } else {
        /* positions: bytes summed over the symbols kept (see above) */
        int pending_unk = 0;
        uint32_t cum = 0;
        for (size_t i = 0; i < n;) {
            size_t cl = (size_t)ll_utf8_len(text[i]);
            if (cl > n - i) cl = n - i;
            int32_t id = -1;
            if (cl == 1 && text[i] < 0x80)
                id = p->ascii_id[text[i]];
            else
                id = p->lookup(p->lookup_ctx, (const char *)text + i, cl);
            if (id >= 0) {
                sym[ns].id = id;
                sym[ns].start = cum;
                sym[ns].len = (uint32_t)cl;
                cum += (uint32_t)cl;
                ns++;
                pending_unk = 0;
                i += cl;
                continue;
            }
            if (p->byte_fallback) {
                int ok = 1;
                for (size_t j = 0; j < cl; j++)
                    if (p->byte_id[text[i + j]] < 0) ok = 0;
                if (ok) {
                    for (size_t j = 0; j < cl; j++) {
                        sym[ns].id = p->byte_id[text[i + j]];
                        sym[ns].start = cum++;
                        sym[ns].len = 1;
                        ns++;
                    }
                    pending_unk = 0;
                    i += cl;
                    continue;
                }
            }
            if (p->unk_id >= 0) {
                if (p->fuse_unk && pending_unk) {
                    sym[ns - 1].len += (uint32_t)cl;
                } else {
                    sym[ns].id = p->unk_id;
                    sym[ns].start = cum;
                    sym[ns].len = (uint32_t)cl;
                    ns++;
                    pending_unk = 1;
                }
                cum += (uint32_t)cl;
            }
            i += cl;
        }
    }
    for (size_t i = 0; i < ns; i++) {
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    if (p->merges->count) {
        for (size_t i = 0; i + 1 < ns; i++)
            if (push_pair(s, p->merges, (int32_t)i)) return -1;
        while (s->heap_n) {
            bpe_cand c = heap_pop(s);
            bpe_sym *l = &sym[c.left], *r = &sym[c.right];
            if (l->len == 0 || l->next != c.right || l->id != c.lid || r->len == 0 || r->id != c.rid) continue;
            l->id = c.merged;
            l->len += r->len;
            l->next = r->next;
            if (r->next >= 0) sym[r->next].prev = c.left;
            r->len = 0;
            if (l->prev >= 0 && push_pair(s, p->merges, l->prev)) return -1;
            if (push_pair(s, p->merges, c.left)) return -1;
        }
    }
    size_t j = 0;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = sym[i].next) {
        uint32_t st = sym[i].start, ln = sym[i].len;
        if (p->byte_level) {
            /* alphabet offsets -> the bytes whose characters hold them */
            uint32_t a0 = sym[i].start, a1 = a0 + sym[i].len;
            while (j + 1 < n && s->aoff[j + 1] <= a0) j++;
            size_t k = j;
            while (k < n && s->aoff[k] < a1) k++;
            st = (uint32_t)j;
            ln = (uint32_t)(k - j);
        }
        int rc = emit(ctx, sym[i].id, st, ln);
        if (rc) return rc;
    }
    return 0;
}
