"""Checks that `lsllama merge` from a quantized GGUF base wrote the base's weights
exactly: each matrix LoRA did not adapt equals the gguf package's dequantization
of the GGUF tensor (dtype F32), or that dequantization rounded to bfloat16 by
torch (dtype BF16, the default for a quantized base). q/k are skipped (GGUF
stores their rows permuted for RoPE; the permutation is tested elsewhere).

usage: check_merged_dequant.py MODEL.gguf FOLDER F32|BF16   (exit 1 on a mismatch)
"""
import sys

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors import safe_open

gguf_path, folder, want = sys.argv[1], sys.argv[2], sys.argv[3]
reader = GGUFReader(gguf_path)
names = {"token_embd.weight": "model.embed_tokens.weight"}
for layer in (0, 7, 29):
    for g, hf in (("ffn_up", "mlp.up_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_down", "mlp.down_proj"),
                  ("attn_output", "self_attn.o_proj")):
        names[f"blk.{layer}.{g}.weight"] = f"model.layers.{layer}.{hf}.weight"
bad = 0
with safe_open(f"{folder}/model.safetensors", framework="pt") as f:
    tensors = {t.name: t for t in reader.tensors}
    for gname, hfname in names.items():
        t = tensors[gname]
        ref = torch.from_numpy(np.ascontiguousarray(dequantize(t.data, t.tensor_type)).astype(np.float32))
        got = f.get_tensor(hfname)
        if str(got.dtype) != {"F32": "torch.float32", "BF16": "torch.bfloat16"}[want]:
            print(f"{hfname}: dtype {got.dtype}, expected {want}")
            bad += 1
            continue
        expect = ref if want == "F32" else ref.to(torch.bfloat16)
        if tuple(got.shape) != tuple(expect.shape) or not torch.equal(got, expect):
            print(f"{hfname} ({t.tensor_type.name}): differs from the gguf package's dequantization")
            bad += 1
print(f"{len(names) - bad} of {len(names)} matrices exact ({want})")
sys.exit(1 if bad else 0)
