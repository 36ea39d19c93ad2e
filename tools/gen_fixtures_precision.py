#!/usr/bin/env python3
"""Fixtures for the frozen base kept in its stored precision (issue 18): tiny LLaMA GGUF files, one per weight type,
written with the gguf package. The C side is tests/test_base_precision.c (and tests/test_quant_fuzz.c for the
corrupt files).

Writes into OUT (default build/generated/precision):

  tiny_<T>.gguf        general.architecture "llama", dim 256, 2 layers, FFN 512, 4 heads (head_dim 64), 2 kv heads,
                       vocab 300, tied embeddings (no output.weight), no tokenizer; every matrix (token_embd
                       included) of GGML type T, the norms F32; T in F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
                       Q4_K, Q5_K, Q6_K. Quantized matrices are random valid blocks built in numpy as raw bytes
                       (random payload, every f16 scale/min field a finite value of a size that keeps the weights
                       around 0.05, as trained models have them), written with raw_dtype=T.
  <T>.<tensor>.f32.bin  gguf.quants.dequantize of that matrix (little-endian f32, row-major) for the tensors in
                       CHECKED: what the loaders must make of the stored blocks, from the gguf package.
  F32.<tensor>.q8_0.bin  gguf.quants.quantize(W, Q8_0) of the F32 file's matrix W (raw blocks, row-major): what
                       --base-precision q8_0 must keep resident.
  F32.<tensor>.bf16.bin  gguf.quants.quantize(W, BF16) of the same (little-endian bf16): --base-precision bf16.
  tiny_Q4_K_nan.gguf   tiny_Q4_K.gguf with block 1 of row 5 of blk.1.ffn_down.weight given the f16 d = 0x7E00 (NaN):
                       the loader must refuse it, naming the tensor.
  tiny_Q6_K_inf_q.gguf tiny_Q6_K.gguf with row 5 of blk.0.attn_q.weight (one block) given d = 0x7C00 (+inf): the same, for
                       a matrix the loader reorders into its own copy (q/k rows) rather than maps.
  tiny_F32_nan.gguf    tiny_F32.gguf with element [3, 40] of blk.0.ffn_up.weight NaN: refused under every
                       --base-precision, the conversions to bf16 and q8_0 included (Q8_0's block maximum would
                       otherwise skip a NaN).
  manifest.txt         one line per model file: "<file> <type>".

The q/k matrices of a llama GGUF are stored in llama.cpp's interleaved-pair row order and reordered by the loader;
their values are random here, so no permutation is applied, and the byte comparisons use matrices that are not q/k.
The F32 file's blk.0.ffn_up.weight starts with rows that make Q8_0's and BF16's rounding ties exact (values x with
x / d = k + 1/2; f32 values halfway between two bf16 values) and an all-zero block (d = 0).

Deterministic (fixed seed), idempotent. Run: python3 tools/gen_fixtures_precision.py [--out DIR]
"""

import argparse
import os

import gguf
import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf.quants import dequantize, quantize

SEED = 20261130
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "build", "generated", "precision")

DIM, LAYERS, FFN, HEADS, KV_HEADS, VOCAB, CTX = 256, 2, 512, 4, 2, 300, 128
HEAD_DIM = DIM // HEADS

# type -> (elements per block, bytes per block, [(byte offset of an f16 scale/min field, magnitude of its values)])
# The magnitudes keep the dequantized weights around 0.05: d * q with q up to 127 (Q8_0), 8 (Q4_0), 16 (Q5_0),
# d * q + m with q up to 15 / 31 (Q4_1 / Q5_1), (d * sc) * q - dmin * m with 6-bit sc, m (Q4_K, Q5_K), (d * sc) * q
# with 8-bit sc and q up to 32 (Q6_K: d is the block's LAST field). Some of them are f16 subnormals.
QUANT = {
    "Q8_0": (32, 34, [(0, 4e-4)]),
    "Q4_0": (32, 18, [(0, 6e-3)]),
    "Q4_1": (32, 20, [(0, 4e-3), (2, 3e-2)]),
    "Q5_0": (32, 22, [(0, 3e-3)]),
    "Q5_1": (32, 24, [(0, 2e-3), (2, 3e-2)]),
    "Q4_K": (256, 144, [(0, 1e-4), (2, 2e-4)]),
    "Q5_K": (256, 176, [(0, 5e-5), (2, 2e-4)]),
    "Q6_K": (256, 210, [(208, 1.5e-5)]),
}
PLAIN = ["F32", "F16", "BF16"]
TYPES = PLAIN + list(QUANT)
FILE_TYPE = {
    "F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16, "BF16": gguf.LlamaFileType.MOSTLY_BF16,
    "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    "Q4_1": gguf.LlamaFileType.MOSTLY_Q4_1, "Q5_0": gguf.LlamaFileType.MOSTLY_Q5_0,
    "Q5_1": gguf.LlamaFileType.MOSTLY_Q5_1, "Q4_K": gguf.LlamaFileType.MOSTLY_Q4_K_M,
    "Q5_K": gguf.LlamaFileType.MOSTLY_Q5_K_M, "Q6_K": gguf.LlamaFileType.MOSTLY_Q6_K,
}
# matrices whose dequantized values (and, for the F32 file, Q8_0 / BF16 conversions) are written out: not q/k
CHECKED = ["blk.0.ffn_up.weight", "blk.1.ffn_down.weight", "blk.0.attn_v.weight", "token_embd.weight"]


def matrices():
    """(GGUF name, rows, cols) of every matrix, in the order llama.cpp writes them."""
    out = [("token_embd.weight", VOCAB, DIM)]
    for l in range(LAYERS):
        b = f"blk.{l}."
        out += [(b + "attn_q.weight", HEADS * HEAD_DIM, DIM), (b + "attn_k.weight", KV_HEADS * HEAD_DIM, DIM),
                (b + "attn_v.weight", KV_HEADS * HEAD_DIM, DIM), (b + "attn_output.weight", DIM, HEADS * HEAD_DIM),
                (b + "ffn_gate.weight", FFN, DIM), (b + "ffn_up.weight", FFN, DIM),
                (b + "ffn_down.weight", DIM, FFN)]
    return out


def f16_bits(values):
    return np.asarray(values, dtype=np.float32).astype(np.float16).view(np.uint16)


def random_quant(rng, tname, rows, cols):
    """rows x (cols / block) random valid blocks of tname as a uint8 array [rows, row_bytes]."""
    be, bb, fields = QUANT[tname]
    nb = rows * cols // be
    raw = rng.integers(0, 256, size=(nb, bb), dtype=np.uint8)
    for off, mag in fields:
        raw[:, off:off + 2] = f16_bits(rng.uniform(-mag, mag, size=nb)).astype("<u2").view(np.uint8).reshape(nb, 2)
    return raw.reshape(rows, cols // be * bb)


def bf16_bytes(w):
    """w (f32) rounded to bf16 by the gguf package, as raw bytes [rows, 2 cols]."""
    return quantize(np.ascontiguousarray(w, dtype=np.float32), QT.BF16).reshape(w.shape[0], -1)


def tie_rows(w):
    """Rows of the F32 file's blk.0.ffn_up.weight that put Q8_0's and BF16's roundings on exact ties."""
    cols = w.shape[1]
    # Q8_0: a block whose max |x| is 127 * 2^-10 has d = 2^-10 and 1/d = 2^10 exactly; x = (k + 1/2) 2^-10 is then a
    # tie, which gguf (and llama.cpp) round half away from zero
    r0 = np.array([(k % 20 - 10 + 0.5) * 2.0 ** -10 for k in range(cols)], dtype=np.float32)
    r0[::32] = 127 * 2.0 ** -10 * np.where(np.arange(cols // 32) % 2, -1, 1)
    w[0] = r0
    # BF16: f32 values exactly halfway between two bf16 values (low 16 bits 0x8000), odd and even upper halves
    base = np.array([0x3D4C0000 + (k << 16) for k in range(cols)], dtype=np.uint32)
    w[1] = (base | 0x8000).view(np.float32) * np.where(np.arange(cols) % 3 == 0, -1, 1).astype(np.float32)
    # an all-zero Q8_0 block (d = 0) among ordinary values
    w[2, 32:64] = 0.0
    return w


def write_model(path, tname, tensors):
    w = gguf.GGUFWriter(path, "llama")  # writes general.architecture
    w.add_name(f"tiny_{tname}")
    w.add_file_type(FILE_TYPE[tname])
    w.add_context_length(CTX)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_vocab_size(VOCAB)
    for name, (data, raw_dtype) in tensors.items():
        w.add_tensor(name, data, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def model_tensors(rng, tname):
    """name -> (array, raw_dtype or None): the matrices in tname, the norms F32, in llama.cpp's order."""
    out = {}
    norms = lambda: (rng.uniform(0.5, 1.5, size=DIM).astype(np.float32), None)  # noqa: E731
    for name, rows, cols in matrices():
        if tname in QUANT:
            data = (random_quant(rng, tname, rows, cols), getattr(QT, tname))
        else:
            w = rng.normal(0.0, 0.05, size=(rows, cols)).astype(np.float32)
            if tname == "F32" and name == "blk.0.ffn_up.weight":
                w = tie_rows(w)
            data = (w, None) if tname == "F32" else (w.astype(np.float16), None) if tname == "F16" else \
                (bf16_bytes(w), QT.BF16)
        if name.startswith("blk."):
            l = name.split(".")[1]
            if name.endswith("attn_q.weight"):
                out[f"blk.{l}.attn_norm.weight"] = norms()
            if name.endswith("ffn_gate.weight"):
                out[f"blk.{l}.ffn_norm.weight"] = norms()
        out[name] = data
    out["output_norm.weight"] = norms()
    return out


def as_f32(data, raw_dtype, rows, cols):
    """The gguf package's dequantization of one stored matrix."""
    if raw_dtype is None:
        return np.asarray(data, dtype=np.float32).reshape(rows, cols)
    return dequantize(np.ascontiguousarray(data).reshape(-1), raw_dtype).astype(np.float32).reshape(rows, cols)


def set_block_scale(data, tname, row, block, bits):
    """Overwrites the f16 d of one block of a quantized matrix (a copy) with the given bit pattern."""
    be, bb, fields = QUANT[tname]
    out = data.copy()
    off = block * bb + fields[0][0]
    out[row, off:off + 2] = np.array([bits], dtype="<u2").view(np.uint8)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    shapes = {n: (r, c) for n, r, c in matrices()}
    manifest = []
    for tname in TYPES:
        tensors = model_tensors(rng, tname)
        path = os.path.join(args.out, f"tiny_{tname}.gguf")
        write_model(path, tname, tensors)
        manifest.append(f"tiny_{tname}.gguf {tname}")
        worst = 0.0
        for name, (rows, cols) in shapes.items():
            f = as_f32(*tensors[name], rows, cols)
            assert np.all(np.isfinite(f)), (tname, name)
            worst = max(worst, float(np.abs(f).max()))
            if name in CHECKED:
                f.astype("<f4").tofile(os.path.join(args.out, f"{tname}.{name}.f32.bin"))
        if tname == "F32":
            bad = dict(tensors)
            w = tensors["blk.0.ffn_up.weight"][0].copy()
            w[3, 40] = np.nan
            bad["blk.0.ffn_up.weight"] = (w, None)
            write_model(os.path.join(args.out, "tiny_F32_nan.gguf"), tname, bad)
            print("  tiny_F32_nan.gguf: blk.0.ffn_up.weight [3, 40] = NaN")
            for name in CHECKED:
                w = tensors[name][0]
                q8 = quantize(w, QT.Q8_0)
                assert q8.shape == (w.shape[0], w.shape[1] // 32 * 34), q8.shape
                q8.tofile(os.path.join(args.out, f"F32.{name}.q8_0.bin"))
                bf16_bytes(w).tofile(os.path.join(args.out, f"F32.{name}.bf16.bin"))
        print(f"  {tname:5s}: {os.path.getsize(path):8d} bytes, max |w| = {worst:.3g}")
        # corrupt copies: a NaN scale in a mapped matrix, an infinite one in a reordered (q) matrix
        for bad_type, bad_name, row, block, bits, suffix in [("Q4_K", "blk.1.ffn_down.weight", 5, 1, 0x7E00, "nan"),
                                                             ("Q6_K", "blk.0.attn_q.weight", 5, 0, 0x7C00, "inf_q")]:
            if tname != bad_type:
                continue
            data, raw_dtype = tensors[bad_name]
            bad = dict(tensors)
            bad[bad_name] = (set_block_scale(data, tname, row, block, bits), raw_dtype)
            rows, cols = shapes[bad_name]
            with np.errstate(invalid="ignore"):  # inf * 0 in the corrupt block
                assert not np.all(np.isfinite(as_f32(*bad[bad_name], rows, cols)))
            bad_path = os.path.join(args.out, f"tiny_{tname}_{suffix}.gguf")
            write_model(bad_path, tname, bad)
            print(f"  {os.path.basename(bad_path)}: {bad_name} row {row} block {block} d = 0x{bits:04X}")
    with open(os.path.join(args.out, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
