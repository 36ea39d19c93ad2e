#!/usr/bin/env python3
"""Reference fixtures for the loss module (src/model/loss.c), computed by PyTorch.

Writes tests/fixtures/loss/loss.safetensors (or --out DIR/loss.safetensors). Inputs are float32 (what the C
code gets); every expected value is computed by PyTorch in float64 from those float32 inputs, so it is
accurate far beyond the C code's float rounding.

Cross-entropy cases CASE in ce_small, ce_large, ce_token, ce_wide:
  CASE_logits   F32 [N, K]   logits (ce_large: magnitudes 80 and 1000, ties, a row of equal logits)
  CASE_labels   I32 [N]      class ids; ce_token also -100 (ignored)
  CASE_loss     F64 [1]      F.cross_entropy(logits, labels, reduction="mean", ignore_index=-100)
  CASE_sum      F64 [1]      the same with reduction="sum" (what a forward adds into its running sum)
  CASE_grad     F64 [N, K]   d(mean loss) / d(logits) by autograd (0 on ignored rows)
  CASE_softmax  F64 [N, K]   torch.softmax(logits, -1)
  CASE_sigmoid  F64 [N, K]   torch.sigmoid(logits)
  CASE_argmax   I32 [N]      torch.argmax(logits, -1) (the first maximal index on ties)

Multi-label cases CASE in bce_small, bce_large, bce_k1:
  CASE_logits   F32 [N, K]   logits (bce_large: +-80, +-100, +-1000, tiny values, soft targets)
  CASE_targets  F32 [N, K]   targets in [0, 1]
  CASE_loss     F64 [1]      F.binary_cross_entropy_with_logits(logits, targets, reduction="mean")
  CASE_sum      F64 [1]      the same with reduction="sum"
  CASE_rowmean  F64 [N]      reduction="none", then mean over each row's K
  CASE_grad     F64 [N, K]   d(mean loss) / d(logits) by autograd

Score head (torch.nn.functional.linear with bias), y = x W^T + b:
  head_x F32 [N, D], head_W F32 [K, D], head_dy F32 [N, K]     inputs
  head_dW0 F32 [K, D], head_db0 F32 [K]                        gradients already accumulated
  head_dW F64 [K, D] = head_dW0 + dW, head_db F64 [K] = head_db0 + db, head_dx F64 [N, D]   by autograd

Deterministic (fixed seed), idempotent. Run: python3 tools/gen_fixtures_loss.py [--out DIR]
"""

import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

SEED = 20261130
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "loss")


def f64(t):
    return t.detach().double().numpy()


def ce_case(name, logits, labels, out):
    z = torch.from_numpy(logits).double().requires_grad_()
    y = torch.from_numpy(labels).long()
    loss = F.cross_entropy(z, y, reduction="mean", ignore_index=-100)
    loss.backward()
    out[f"{name}_logits"] = logits
    out[f"{name}_labels"] = labels
    out[f"{name}_loss"] = np.array([loss.item()])
    out[f"{name}_sum"] = np.array([F.cross_entropy(z, y, reduction="sum", ignore_index=-100).item()])
    out[f"{name}_grad"] = f64(z.grad)
    out[f"{name}_softmax"] = f64(torch.softmax(z, -1))
    out[f"{name}_sigmoid"] = f64(torch.sigmoid(z))
    out[f"{name}_argmax"] = torch.argmax(z, -1).numpy().astype(np.int32)


def bce_case(name, logits, targets, out):
    z = torch.from_numpy(logits).double().requires_grad_()
    y = torch.from_numpy(targets).double()
    loss = F.binary_cross_entropy_with_logits(z, y, reduction="mean")
    loss.backward()
    out[f"{name}_logits"] = logits
    out[f"{name}_targets"] = targets
    out[f"{name}_loss"] = np.array([loss.item()])
    out[f"{name}_sum"] = np.array([F.binary_cross_entropy_with_logits(z, y, reduction="sum").item()])
    out[f"{name}_rowmean"] = f64(F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(dim=1))
    out[f"{name}_grad"] = f64(z.grad)


def head_case(rng, out, N=6, D=8, K=3):
    x = rng.standard_normal((N, D)).astype(np.float32)
    W = (0.5 * rng.standard_normal((K, D))).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    dy = rng.standard_normal((N, K)).astype(np.float32)
    dW0 = rng.standard_normal((K, D)).astype(np.float32)
    db0 = rng.standard_normal(K).astype(np.float32)
    xt = torch.from_numpy(x).double().requires_grad_()
    Wt = torch.from_numpy(W).double().requires_grad_()
    bt = torch.from_numpy(b).double().requires_grad_()
    F.linear(xt, Wt, bt).backward(torch.from_numpy(dy).double())
    out.update(head_x=x, head_W=W, head_dy=dy, head_dW0=dW0, head_db0=db0,
               head_dW=dW0.astype(np.float64) + f64(Wt.grad), head_db=db0.astype(np.float64) + f64(bt.grad),
               head_dx=f64(xt.grad))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    out = {}

    ce_case("ce_small", (2 * rng.standard_normal((4, 3))).astype(np.float32), np.array([0, 2, 1, 2], np.int32), out)
    large = np.array([[80, -80, 0, 79.5],        # two near the top, one far below
                      [-80, -80, -80, -80],      # all equal: uniform, argmax 0
                      [-80, 80, 80, -3],         # a tie at the top: argmax 1
                      [1e-3, -1e-3, 80, -80],
                      [-79.75, -80, -79.5, -80],
                      [1000, -1000, 999, 0]], np.float32)  # exp(1000) overflows even a double: needs the shift
    ce_case("ce_large", large, np.array([1, 3, 2, 3, 0, 2], np.int32), out)
    ce_case("ce_token", (3 * rng.standard_normal((7, 5))).astype(np.float32),
            np.array([4, -100, 0, -100, -100, 2, 1], np.int32), out)
    ce_case("ce_wide", (10 * rng.standard_normal((3, 17))).astype(np.float32), np.array([16, 0, 7], np.int32), out)

    bce_case("bce_small", (2 * rng.standard_normal((3, 4))).astype(np.float32),
             rng.integers(0, 2, (3, 4)).astype(np.float32), out)
    bce_case("bce_large", np.array([[80, -80, 100, -100], [1e-30, -1e-30, 0, 17.25], [-80, 80, 3, -3],
                                    [1000, -1000, 1000, -1000]], np.float32),
             np.array([[1, 0, 0, 1], [1, 0, 0.5, 0.25], [1, 0, 0.75, 1], [1, 0, 0, 1]], np.float32), out)
    bce_case("bce_k1", (4 * rng.standard_normal((5, 1))).astype(np.float32),
             np.array([[1], [0], [1], [1], [0]], np.float32), out)

    head_case(rng, out)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "loss.safetensors")
    tensors = {k: np.ascontiguousarray(v) for k, v in sorted(out.items())}
    for k, v in tensors.items():
        assert v.dtype in (np.float32, np.float64, np.int32), (k, v.dtype)
        assert np.all(np.isfinite(v)), k
    save_file(tensors, path, metadata={"description": "loss module references (tools/gen_fixtures_loss.py)"})
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
