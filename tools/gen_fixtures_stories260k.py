"""Reference greedy continuation for stories260K (llama2.c legacy checkpoint).

Loads ../shared/models/stories260K/stories260K.bin into a transformers
LlamaForCausalLM (q/k rows converted from llama2.c's interleaved-pair RoPE
layout to Hugging Face's rotate-half layout), encodes "Once upon a time" with
BOS using llama2.c's tokenizer algorithm on tok512.bin (as lsllama's tokenizer
parity test checks), and greedy-decodes 40 tokens with transformers'
generate(). Writes tests/fixtures/stories260k/expected.txt: the prompt ids and
the generated ids, one line each, and prints the decoded text, which must
begin with the golden text quoted in ../shared/models/README.md.
"""
import argparse
import os
import struct

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "models", "stories260K")
GOLDEN = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park"


def read_tok512(path):
    data = open(path, "rb").read()
    off, pieces, scores = 4, [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n])
        scores.append(score)
        off += n
    return pieces, scores


def llama2c_encode(text, pieces, scores):
    """llama2.c's encode(): BOS, dummy-prefix space, per-character lookup
    (bytes + 3 as fallback), then merge the best-scoring pair until none."""
    lookup = {p: i for i, p in enumerate(pieces)}
    ids = [1]
    if text:
        ids.append(lookup[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        ids.extend([lookup[b]] if b in lookup else [x + 3 for x in b])
    while True:
        best, best_i, best_id = -1e10, -1, -1
        for i in range(1, len(ids) - 1):
            merged = pieces[ids[i]] + pieces[ids[i + 1]]
            if merged in lookup and scores[lookup[merged]] > best:
                best, best_i, best_id = scores[lookup[merged]], i, lookup[merged]
        if best_i < 0:
            return ids
        ids[best_i:best_i + 2] = [best_id]


def load_model(path):
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack_from("<7i", raw, 0)
    assert vocab > 0, "stories260K ties its classifier"
    hd = dim // heads
    f = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = f[pos:pos + n].reshape(shape).copy()
        pos += n
        return torch.from_numpy(out)

    def to_rotate_half(w, n_heads):
        # row (h, 2i + j) of the interleaved layout is row (h, j * hd/2 + i) in HF's
        return w.reshape(n_heads, hd // 2, 2, -1).transpose(1, 2).reshape(w.shape)

    emb = take(vocab, dim)
    att_norm = take(layers, dim)
    wq, wk = take(layers, dim, dim), take(layers, kv_heads * hd, dim)
    wv, wo = take(layers, kv_heads * hd, dim), take(layers, dim, dim)
    ffn_norm = take(layers, dim)
    w1, w2, w3 = take(layers, hidden, dim), take(layers, dim, hidden), take(layers, hidden, dim)
    final_norm = take(dim)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=seq_len,
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=1,
                      eos_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    sd = {"model.embed_tokens.weight": emb, "model.norm.weight": final_norm, "lm_head.weight": emb}
    for l in range(layers):
        p = f"model.layers.{l}."
        sd[p + "input_layernorm.weight"] = att_norm[l]
        sd[p + "self_attn.q_proj.weight"] = to_rotate_half(wq[l], heads)
        sd[p + "self_attn.k_proj.weight"] = to_rotate_half(wk[l], kv_heads)
        sd[p + "self_attn.v_proj.weight"] = wv[l]
        sd[p + "self_attn.o_proj.weight"] = wo[l]
        sd[p + "post_attention_layernorm.weight"] = ffn_norm[l]
        sd[p + "mlp.gate_proj.weight"] = w1[l]
        sd[p + "mlp.down_proj.weight"] = w2[l]
        sd[p + "mlp.up_proj.weight"] = w3[l]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "stories260k"))
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    torch.manual_seed(0)
    pieces, scores = read_tok512(os.path.join(SHARED, "tok512.bin"))
    prompt = llama2c_encode("Once upon a time", pieces, scores)
    model = load_model(os.path.join(SHARED, "stories260K.bin"))
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=args.steps, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    gen = out[0, len(prompt):].tolist()
    text = b"".join(pieces[i] for i in prompt[1:] + gen).decode("utf-8", "replace").lstrip(" ")
    print("prompt ids:", prompt)
    print("text:", text)
    assert text.startswith(GOLDEN), "transformers does not reproduce the golden text"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "expected.txt"), "w") as fh:
        fh.write(" ".join(map(str, prompt)) + "\n" + " ".join(map(str, gen)) + "\n")
    print("wrote", os.path.join(args.out, "expected.txt"))


if __name__ == "__main__":
    main()
