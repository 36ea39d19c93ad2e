#!/usr/bin/env python3
"""Reference fixtures for the scalar dequantizers and float conversions.

Writes tests/fixtures/quants/quants.safetensors (or --out DIR/quants.safetensors):

  <T>_raw       U8  [n_blocks * block_bytes]   random blocks of GGML type T
  <T>_expected  F32 [n_blocks * block_elems]   gguf.quants.dequantize(raw, T)
      for T in Q8_0 (64 blocks), Q4_0 (64), Q4_1 (64), Q4_K (8), Q6_K (8), and, drawn after
      everything else (so the earlier tensors keep their bytes), Q5_0 (64), Q5_1 (64), Q5_K (8)
  F16_raw           U8  [2n]  little-endian f16 bit patterns (all finite classes, +-inf; no NaN)
  F16_expected      F32 [n]   numpy float16 -> float32
  BF16_raw          U8  [2n]  little-endian bf16 bit patterns (no NaN)
  BF16_expected     F32 [n]   bits << 16
  F32toF16_input    F32 [m]   values incl. exact ties, subnormal results, overflow
  F32toF16_expected U8  [2m]  little-endian f16 bits of numpy float32 -> float16
                              (round to nearest, ties to even; overflow -> inf)

Why: the C dequantizers (src/io, src/kernels) must match the reference (ggml's
scalar dequantize_row_*, mirrored by gguf-py) exactly.  The quant payload bytes
are uniform random, but every f16 scale / min field is overwritten with a random
*finite* f16 (including negative, zero and subnormal values) so that the
expected values never contain NaN/Inf and the half->float conversion of the
scales is exercised on all finite classes.

Expected values are computed in float32 with the same operation order as the
ggml scalar code (Q4_1: q*d + m; Q4_K: (d*sc)*q - dmin*m; Q6_K: (d*sc)*q), so a
C implementation compiled without FP contraction (-ffp-contract=off) matches
bit for bit; with FMA contraction Q4_1/Q4_K may differ by 1 ulp.

Deterministic (fixed seed), idempotent.  Run: python3 tools/gen_fixtures_quants.py [--out DIR]
"""

import argparse
import os
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType as QT
from gguf.quants import dequantize
from safetensors.numpy import save_file

SEED = 20240607
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "quants")

# type -> (block bytes, elements per block, byte offsets of f16 scale/min fields, n_blocks)
LAYOUTS = {
    "Q8_0": (34, 32, [0], 64),          # f16 d; int8 qs[32]
    "Q4_0": (18, 32, [0], 64),          # f16 d; u8 qs[16]
    "Q4_1": (20, 32, [0, 2], 64),       # f16 d; f16 m; u8 qs[16]
    "Q4_K": (144, 256, [0, 2], 8),      # f16 d; f16 dmin; u8 scales[12]; u8 qs[128]
    "Q6_K": (210, 256, [208], 8),       # u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d
}
LATER_LAYOUTS = {
    "Q5_0": (22, 32, [0], 64),          # f16 d; u8 qh[4]; u8 qs[16]
    "Q5_1": (24, 32, [0, 2], 64),       # f16 d; f16 m; u8 qh[4]; u8 qs[16]
    "Q5_K": (176, 256, [0, 2], 8),      # f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
}


def random_finite_f16_bits(rng, n):
    """n random finite f16 bit patterns, mixing realistic scales, subnormals, +-0 and arbitrary finite values."""
    kind = rng.integers(0, 8, size=n)
    sign = rng.integers(0, 2, size=n).astype(np.uint16) << 15
    out = np.empty(n, dtype=np.uint16)
    for i, k in enumerate(kind):
        if k <= 2:  # typical quant scale magnitude 1e-4 .. 1e-1
            v = np.float16(10.0 ** rng.uniform(-4, -1))
            out[i] = v.view(np.uint16)
        elif k <= 4:  # subnormal: exponent 0, mantissa 1..1023
            out[i] = rng.integers(1, 1024)
        elif k == 5:  # zero
            out[i] = 0
        else:  # any finite pattern (exponent 0..30)
            out[i] = (rng.integers(0, 31) << 10) | rng.integers(0, 1024)
    return out | sign


def make_quant(rng, name):
    block_bytes, block_elems, f16_offsets, n_blocks = {**LAYOUTS, **LATER_LAYOUTS}[name]
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in f16_offsets:
        bits = random_finite_f16_bits(rng, n_blocks)
        raw[:, off:off + 2] = bits.astype("<u2").view(np.uint8).reshape(n_blocks, 2)
    # Make sure the first blocks hit the interesting scale classes deterministically.
    specials = [0x8001, 0x03FF, 0xBC00, 0x7BFF]  # -min subnormal, max subnormal, -1.0, max finite
    for b, bits in enumerate(specials[: n_blocks]):
        raw[b, f16_offsets[0]:f16_offsets[0] + 2] = np.array([bits], dtype="<u2").view(np.uint8)
    qtype = getattr(QT, name)
    expected = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
    assert expected.size == n_blocks * block_elems, (name, expected.size)
    assert np.all(np.isfinite(expected)), name
    scales = np.concatenate([raw[:, o:o + 2].copy().view("<f2").reshape(-1) for o in f16_offsets])
    print(f"  {name:5s}: {n_blocks:3d} blocks x {block_bytes} B -> {expected.size} floats; "
          f"scales: {int(np.sum(scales < 0))} negative, "
          f"{int(np.sum((scales != 0) & (np.abs(scales) < np.float16(6.104e-05))))} subnormal, "
          f"{int(np.sum(scales == 0))} zero; max |x| = {np.abs(expected).max():.6g}")
    return raw.reshape(-1), expected


def self_check_q8_0(raw, expected):
    """Independent re-derivation of Q8_0 so that the fixture does not rest on gguf-py alone."""
    blocks = raw.reshape(-1, 34)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)
    q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
    mine = (q * d).reshape(-1)
    assert np.array_equal(mine.view(np.uint32), expected.view(np.uint32)), "Q8_0 self-check"


def self_check_q4_1(raw, expected):
    blocks = raw.reshape(-1, 20)
    d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)
    m = blocks[:, 2:4].copy().view("<f2").astype(np.float32)
    qs = blocks[:, 4:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)  # element j<16: low nibble of byte j
    mine = (q * d + m).reshape(-1)
    assert np.array_equal(mine.view(np.uint32), expected.view(np.uint32)), "Q4_1 self-check"


def make_f16(rng):
    fixed = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x3555,
                      0x7BFF, 0xFBFF, 0x7C00, 0xFC00], dtype=np.uint16)
    rand = rng.integers(0, 1 << 16, size=1024, dtype=np.uint32).astype(np.uint16)
    sub = rng.integers(1, 1024, size=64).astype(np.uint16) | (rng.integers(0, 2, size=64).astype(np.uint16) << 15)
    bits = np.concatenate([fixed, rand, sub])
    is_nan = ((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0)
    bits = bits[~is_nan]
    expected = bits.view(np.float16).astype(np.float32)
    # cross-check with torch
    t = torch.from_numpy(bits.view(np.int16).copy()).view(torch.float16).float().numpy()
    assert np.array_equal(t.view(np.uint32), expected.view(np.uint32)), "F16 torch cross-check"
    return bits.astype("<u2").view(np.uint8), expected


def make_bf16(rng):
    fixed = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x3F80, 0xBF80, 0x7F7F,
                      0xFF7F, 0x7F80, 0xFF80], dtype=np.uint16)
    rand = rng.integers(0, 1 << 16, size=1024, dtype=np.uint32).astype(np.uint16)
    sub = rng.integers(1, 128, size=32).astype(np.uint16) | (rng.integers(0, 2, size=32).astype(np.uint16) << 15)
    bits = np.concatenate([fixed, rand, sub])
    is_nan = ((bits & 0x7F80) == 0x7F80) & ((bits & 0x007F) != 0)
    bits = bits[~is_nan]
    expected = (bits.astype(np.uint32) << 16).view(np.float32)
    t = torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    assert np.array_equal(t.view(np.uint32), expected.view(np.uint32)), "BF16 torch cross-check"
    return bits.astype("<u2").view(np.uint8), expected


def make_f32_to_f16(rng):
    f32 = np.float32
    vals = [0.0, -0.0, 1.0, -1.0, 65504.0, -65504.0, 65519.0, 65520.0, -65520.0, 65536.0, 1e6, -1e30,
            np.inf, -np.inf, 2.0 ** -14, 2.0 ** -24, 2.0 ** -25, -(2.0 ** -25), 2.0 ** -26, 3 * 2.0 ** -25,
            2.0 ** -25 * 1.0000001, 1e-10, 5.960464477539063e-08, 6.097555160522461e-05, 0.1, 1.0 / 3.0]
    # exact ties between neighbouring f16 values (normal and subnormal): must round to even
    for base_bits in [0x3C00, 0x3C01, 0x4B00, 0x4B01, 0x0001, 0x0002, 0x02FF, 0x0300, 0x7BFE, 0xBC00, 0xBC01]:
        a = np.array([base_bits], dtype=np.uint16).view(np.float16).astype(f32)[0]
        b = np.array([base_bits + 1], dtype=np.uint16).view(np.float16).astype(f32)[0]
        mid = f32((np.float64(a) + np.float64(b)) / 2)
        assert np.float64(mid) == (np.float64(a) + np.float64(b)) / 2  # exactly representable in f32
        vals += [mid, np.nextafter(mid, f32(np.inf)), np.nextafter(mid, f32(-np.inf))]
    vals = np.array(vals, dtype=f32)
    rand = (rng.standard_normal(512) * 10.0 ** rng.uniform(-9, 5.5, size=512)).astype(f32)
    tiny = (rng.uniform(-1, 1, size=128) * 2.0 ** -14).astype(f32)  # results subnormal in f16
    bits = rng.integers(0, 1 << 32, size=256, dtype=np.uint64).astype(np.uint32)
    bits = bits[(bits & 0x7F800000) != 0x7F800000]  # drop NaN/inf patterns
    inp = np.concatenate([vals, rand, tiny, bits.view(f32)])
    with np.errstate(over="ignore"):
        out = inp.astype(np.float16)
    t = torch.from_numpy(inp).to(torch.float16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(t, out.view(np.uint16)), "F32->F16 torch cross-check"
    n_sub = int(np.sum((out != 0) & (np.abs(out) < np.float16(6.104e-05))))
    n_inf = int(np.sum(np.isinf(out) & np.isfinite(inp)))
    print(f"  F32toF16: {inp.size} values, {n_sub} round to subnormal, {n_inf} finite values overflow to inf")
    return inp, out.view(np.uint16).astype("<u2").view(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    tensors = {}
    print("quant blocks:")
    for name in LAYOUTS:
        raw, expected = make_quant(rng, name)
        tensors[f"{name}_raw"] = raw
        tensors[f"{name}_expected"] = expected
    self_check_q8_0(tensors["Q8_0_raw"], tensors["Q8_0_expected"])
    self_check_q4_1(tensors["Q4_1_raw"], tensors["Q4_1_expected"])
    print("self-check: independent Q8_0 and Q4_1 dequantization matches gguf-py bit for bit: OK")
    tensors["F16_raw"], tensors["F16_expected"] = make_f16(rng)
    tensors["BF16_raw"], tensors["BF16_expected"] = make_bf16(rng)
    tensors["F32toF16_input"], tensors["F32toF16_expected"] = make_f32_to_f16(rng)
    print(f"self-check: F16->F32, BF16->F32, F32->F16 agree with torch bit for bit: OK "
          f"({tensors['F16_expected'].size} f16, {tensors['BF16_expected'].size} bf16 values)")
    print("later quant blocks:")
    for name in LATER_LAYOUTS:
        raw, expected = make_quant(rng, name)
        tensors[f"{name}_raw"] = raw
        tensors[f"{name}_expected"] = expected
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "quants.safetensors")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path,
              metadata={"generator": f"tools/gen_fixtures_quants.py seed={SEED}"})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    for k, v in tensors.items():
        print(f"  {k:20s} {str(v.dtype):8s} {list(v.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
