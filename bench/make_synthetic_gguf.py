#!/usr/bin/env python3
"""Synthetic LLaMA-architecture GGUF files with random weights, in the exact
tensor shapes of real models, for memory and speed benchmarks (issue 18).

  python3 bench/make_synthetic_gguf.py --shape llama2-7b|llama3.2-1b|tiny \
      --quant q4_k_m|q8_0 --out FILE [--seed N]
  python3 bench/make_synthetic_gguf.py --version

Shapes (llama.cpp tensor names and shapes, general.architecture "llama"):
  llama2-7b    dim 4096, 32 layers, FFN 11008, 32 heads (32 kv), vocab 32000,
               rope base 10000, output.weight untied
  llama3.2-1b  dim 2048, 16 layers, FFN 8192, 32 heads (8 kv), vocab 128256,
               rope base 500000, tied embeddings (no output.weight); no
               llama3 rope scaling and no rope_freqs tensor
  tiny         dim 256, 2 layers, FFN 512, 4 heads (2 kv), vocab 32000,
               output.weight untied: a quick self-test

Quantisations:
  q4_k_m  as llama.cpp's Q4_K_M: every matrix Q4_K, token_embd Q4_K, except
          output.weight Q6_K (token_embd Q6_K where it doubles as the output,
          as llama.cpp does for tied models) and attn_v / ffn_down Q6_K in the layers
          llama.cpp's use_more_bits() picks (the first and last eighth of the
          layers and every third layer in between: 16 of 32 for llama2-7b)
  q8_0    every matrix Q8_0
  Norms are F32 (1 + N(0, 0.02)).

Quantized blocks are random bytes (numpy default_rng) whose scale fields are
then patched so that every block is valid and the dequantized weights are
zero-mean with a standard deviation of about 0.02 (HF's initializer range):
Q8_0 d ~ 2.7e-4; Q4_K sub-block scales 16..47 with min = scale and
dmin = 7.5 d, so w = d*sc*(q - 7.5), d ~ 1.3e-4; Q6_K scales +-(4..15),
d ~ 1.1e-4. Every f16 scale is a normal number, so activations stay finite
through all layers. Tensors are generated and written one at a time (the
writer's streaming API), so a 7B file needs little memory. No tokenizer is
written: give bench_train / lsllama one with --tokenizer.
"""
import argparse
import os
import sys
import time

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

VERSION = "make_synthetic_gguf 1"

SHAPES = {
    "llama2-7b": dict(dim=4096, layers=32, ffn=11008, heads=32, kv_heads=32, vocab=32000, rope_base=10000.0,
                      ctx=4096, eps=1e-5, tied=False),
    "llama3.2-1b": dict(dim=2048, layers=16, ffn=8192, heads=32, kv_heads=8, vocab=128256, rope_base=500000.0,
                        ctx=131072, eps=1e-5, tied=True),
    "tiny": dict(dim=256, layers=2, ffn=512, heads=4, kv_heads=2, vocab=32000, rope_base=10000.0, ctx=2048,
                 eps=1e-5, tied=False),
}
FILE_TYPE = {"q4_k_m": 15, "q8_0": 7}  # llama_ftype: MOSTLY_Q4_K_M, MOSTLY_Q8_0
SIGMA = 0.02  # target standard deviation of the dequantized weights


def use_more_bits(i, n):
    """llama.cpp (llama-quant.cpp): the layers whose attn_v / ffn_down get Q6_K in Q4_K_M."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def f16_bytes(x):
    return x.astype(np.float16).view(np.uint8).reshape(-1, 2)


def random_blocks(rng, qtype, rows, cols):
    """Random valid blocks of a [rows, cols] matrix, as uint8 [rows, cols / block * block_bytes]."""
    bs, nbytes = GGML_QUANT_SIZES[qtype]
    assert cols % bs == 0, f"{cols} columns are not a multiple of {qtype.name}'s block of {bs}"
    nb = rows * cols // bs
    b = rng.integers(0, 256, size=(nb, nbytes), dtype=np.uint8)
    jitter = rng.uniform(0.8, 1.2, size=nb).astype(np.float32)  # a different d per block
    if qtype == Q.Q8_0:  # d f16, qs int8[32]: w = d * q, q uniform in -128..127 (rms 73.9)
        b[:, 0:2] = f16_bytes(SIGMA / 73.9 * jitter)
    elif qtype == Q.Q4_K:  # d, dmin f16, scales[12] (8 x 6-bit scale, 8 x 6-bit min), qs[128] 4-bit
        sc = rng.integers(16, 48, size=(nb, 8), dtype=np.uint8)  # rms 32.6
        m = sc  # min = scale with dmin = 7.5 d: w = d * sc * (q - 7.5), q uniform in 0..15 (rms 4.61)
        d = SIGMA / (32.6 * 4.61) * jitter
        b[:, 0:2] = f16_bytes(d)
        b[:, 2:4] = f16_bytes(7.5 * d)
        b[:, 4:8] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
        b[:, 8:12] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
        b[:, 12:16] = (sc[:, 4:8] & 0xF) | ((m[:, 4:8] & 0xF) << 4)
    elif qtype == Q.Q6_K:  # ql[128], qh[64], scales int8[16], d f16: w = d * sc * (q - 32), q in 0..63 (rms 18.5)
        mag = rng.integers(4, 16, size=(nb, 16), dtype=np.int8)  # rms 10.2
        sign = np.where(rng.integers(0, 2, size=(nb, 16)) == 1, 1, -1).astype(np.int8)
        b[:, 192:208] = (mag * sign).view(np.uint8)
        b[:, 208:210] = f16_bytes(SIGMA / (10.2 * 18.5) * jitter)
    else:
        raise ValueError(qtype)
    return b.reshape(rows, cols // bs * nbytes)


def tensor_plan(s, quant):
    """(name, numpy shape [rows, cols], type) in llama.cpp's order; type None = F32 norm."""
    d, f, L = s["dim"], s["ffn"], s["layers"]
    hd = d // s["heads"]
    kvd = s["kv_heads"] * hd

    def mat(name, i=None):
        if quant == "q8_0":
            return Q.Q8_0
        if name == "output":
            return Q.Q6_K
        if name in ("attn_v", "ffn_down") and use_more_bits(i, L):
            return Q.Q6_K
        return Q.Q4_K

    plan = [("token_embd.weight", (s["vocab"], d), mat("output" if s["tied"] else "token_embd"))]
    for i in range(L):
        p = f"blk.{i}."
        plan += [(p + "attn_norm.weight", (d,), None),
                 (p + "attn_q.weight", (d, d), mat("attn_q", i)),
                 (p + "attn_k.weight", (kvd, d), mat("attn_k", i)),
                 (p + "attn_v.weight", (kvd, d), mat("attn_v", i)),
                 (p + "attn_output.weight", (d, d), mat("attn_output", i)),
                 (p + "ffn_norm.weight", (d,), None),
                 (p + "ffn_gate.weight", (f, d), mat("ffn_gate", i)),
                 (p + "ffn_up.weight", (f, d), mat("ffn_up", i)),
                 (p + "ffn_down.weight", (d, f), mat("ffn_down", i))]
    plan.append(("output_norm.weight", (d,), None))
    if not s["tied"]:
        plan.append(("output.weight", (s["vocab"], d), mat("output")))
    return plan


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=SHAPES)
    ap.add_argument("--quant", choices=FILE_TYPE)
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--version", action="store_true", help="print the generator version and exit")
    a = ap.parse_args()
    if a.version:
        print(VERSION)
        return 0
    if not (a.shape and a.quant and a.out):
        ap.error("--shape, --quant and --out are required")
    s = SHAPES[a.shape]
    t0 = time.time()
    rng = np.random.default_rng(a.seed)
    plan = tensor_plan(s, a.quant)
    hd = s["dim"] // s["heads"]

    tmp = a.out + ".part"
    w = GGUFWriter(tmp, "llama")
    w.add_name(f"synthetic {a.shape} {a.quant}")
    w.add_description(f"{VERSION}: random weights, --shape {a.shape} --quant {a.quant} --seed {a.seed}")
    w.add_file_type(FILE_TYPE[a.quant])
    w.add_quantization_version(2)
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["dim"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(s["rope_base"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_vocab_size(s["vocab"])
    for name, shape, qt in plan:
        if qt is None:
            w.add_tensor_info(name, shape, np.dtype(np.float32), shape[0] * 4)
        else:
            bs, nbytes = GGML_QUANT_SIZES[qt]
            bshape = (shape[0], shape[1] // bs * nbytes)
            w.add_tensor_info(name, bshape, np.dtype(np.uint8), bshape[0] * bshape[1], raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    total = 0
    for name, shape, qt in plan:
        if qt is None:
            t = (1 + SIGMA * rng.standard_normal(shape[0])).astype(np.float32)
        else:
            t = random_blocks(rng, qt, *shape)
        w.write_tensor_data(t)
        total += t.nbytes
    w.close()
    os.replace(tmp, a.out)
    counts = {}
    for _, _, qt in plan:
        k = "F32" if qt is None else qt.name
        counts[k] = counts.get(k, 0) + 1
    print(f"{a.out}: {a.shape} {a.quant}, {len(plan)} tensors ({', '.join(f'{v} {k}' for k, v in counts.items())}), "
          f"{os.path.getsize(a.out) / 1e9:.2f} GB, {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
