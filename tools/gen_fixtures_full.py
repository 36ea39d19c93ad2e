#!/usr/bin/env python3
"""Reference for full fine-tuning: the tiny LlamaForSequenceClassification of tests/fixtures/peft_seqcls/base
trained in full for 5 AdamW steps by transformers + torch, float32, CPU, twice:

  OUT/expected.safetensors      every linear weight of every layer and the score head (embeddings and norms frozen:
                                lsllama's --full)
  OUT/expected_all.safetensors  the same plus every RMSNorm weight (input, post-attention, final) and the input
                                embeddings (lsllama's --full-targets all)

(OUT default build/generated/full_seqcls; scripts/test.sh makes them at test time.) Each file holds:

  logits0 [6, 3], loss0 [1]            the first step's forward (causal attention, last-token pooling, the batch
                                       of peft_seqcls/expected.safetensors: its tokens, seq_start and labels)
  grad.<name>                          the first step's gradient of every trained tensor, under its Hugging Face
                                       name (model.layers.0.self_attn.q_proj.weight, ..., score.weight)
  loss.stepK, lr.stepK, gradnorm.stepK the loss, learning rate and pre-clipping gradient norm of step K (0..4)
  final.<name>                         every trained tensor after 5 steps
  logits_trained [6, 3]                the trained model's logits on the batch

Optimiser: torch.optim.AdamW (lr 1e-2, betas (0.9, 0.999), eps 1e-6, weight decay 0.01 on every trained tensor;
eps 1e-6, not 1e-8: an element whose gradient is at the level of float rounding otherwise moves by about lr in a
direction the rounding picks, and float32 against float64 differed by 2e-3 of a tensor's largest value), transformers' get_linear_schedule_with_warmup (2 warm-up steps of 10),
torch.nn.utils.clip_grad_norm_ to 1.0. Self-checks: the batch against each sequence alone, the loss decreases,
and a float64 copy of the model trained by the same five steps lands within 1e-4 of the float32 parameters.

Run: python3 tools/gen_fixtures_full.py [--out DIR]
"""

import argparse
import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import load_file as st_load_np  # noqa: E402
from safetensors.numpy import save_file as st_save_np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402

import transformers  # noqa: E402
from transformers import LlamaForSequenceClassification, get_linear_schedule_with_warmup  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEFT_FIX = os.path.join(REPO, "tests", "fixtures", "peft_seqcls")
DEFAULT_OUT = os.path.join(REPO, "build", "generated", "full_seqcls")
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
HP = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01, "warmup": 2, "total": 10, "steps": 5,
      "max_grad_norm": 1.0}
PAD_ID = 0

transformers.logging.set_verbosity_error()


log, check = fc.log, fc.check


def is_trained(name, everything):
    """Whether a parameter is trained: the linear weights and score.weight; with everything, also the norms
    (model.layers.N.input_layernorm.weight, ...post_attention_layernorm.weight, model.norm.weight) and
    model.embed_tokens.weight."""
    if name == "score.weight" or (name.endswith(".weight") and name.split(".")[-2] in LINEAR):
        return True
    return everything and (name.endswith("layernorm.weight") or name in ("model.norm.weight",
                                                                          "model.embed_tokens.weight"))


def trained(model, everything):
    """name -> parameter of every trained tensor, freezing the rest."""
    out = {}
    for name, p in model.named_parameters():
        p.requires_grad_(is_trained(name, everything))
        if p.requires_grad:
            out[name] = p
    return out


def run(dtype, everything, ids, attn2d, labels, exp=None):
    """Five AdamW steps on the batch; returns {name: final tensor} (and fills exp for the float32 run)."""
    model = LlamaForSequenceClassification.from_pretrained(os.path.join(PEFT_FIX, "base"), dtype=dtype)
    model.set_attn_implementation("eager")
    model.train()  # the config's dropouts are 0: train and eval compute the same
    tm = trained(model, everything)
    n_layers = model.config.num_hidden_layers
    assert len(tm) == (9 * n_layers + 3 if everything else 7 * n_layers + 1), sorted(tm)
    params = list(tm.values())
    opt = torch.optim.AdamW(params, lr=HP["lr"], betas=HP["betas"], eps=HP["eps"], weight_decay=HP["weight_decay"])
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=HP["warmup"], num_training_steps=HP["total"])
    losses = []
    for k in range(HP["steps"]):
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=ids, attention_mask=attn2d, labels=labels, use_cache=False)
        out.loss.backward()
        if exp is not None and k == 0:  # before clipping scales them
            exp["logits0"] = fc_np(out.logits)
            exp["loss0"] = fc_np(out.loss.reshape(1))
            for n, p in tm.items():
                exp[f"grad.{n}"] = fc_np(p.grad)
        gn = torch.nn.utils.clip_grad_norm_(params, max_norm=HP["max_grad_norm"])
        lr = opt.param_groups[0]["lr"]
        losses.append(out.loss.item())
        if exp is not None:
            exp[f"loss.step{k}"] = fc_np(out.loss.reshape(1))
            exp[f"lr.step{k}"] = np.array([lr], dtype=np.float32)
            exp[f"gradnorm.step{k}"] = fc_np(gn.reshape(1))
            log(f"  step {k}: loss {out.loss.item():.6f}  lr {lr:.6g}  grad norm (pre-clip) {gn.item():.6f}")
        opt.step()
        sched.step()
    assert losses[4] < losses[2] < losses[1] and losses[1] == losses[0], losses  # step 0 has lr 0
    if exp is not None:
        with torch.no_grad():
            exp["logits_trained"] = fc_np(model(input_ids=ids, attention_mask=attn2d, use_cache=False).logits)
        for n, p in tm.items():
            exp[f"final.{n}"] = fc_np(p)
    return {n: p.detach().double().numpy() for n, p in tm.items()}, model


def fc_np(t):
    return t.detach().to(torch.float32).contiguous().numpy().copy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}")

    inputs = st_load_np(os.path.join(PEFT_FIX, "expected.safetensors"))
    tokens, seq_start, labels_np = inputs["tokens"], inputs["seq_start"], inputs["labels"]
    seqs = [tokens[seq_start[i]:seq_start[i + 1]].tolist() for i in range(len(seq_start) - 1)]
    ids, pos, lens = fc.padded_batch(seqs, pad_id=PAD_ID)
    attn2d = (torch.arange(ids.shape[1]).unsqueeze(0) < torch.tensor(lens).unsqueeze(1)).long()
    labels = torch.from_numpy(labels_np.astype(np.int64))

    for everything, fname in ((False, "expected.safetensors"), (True, "expected_all.safetensors")):
        what = "linear weights, norms and embeddings" if everything else "linear weights"
        log(f"== full fine-tuning ({what}), float32: 5 AdamW steps ==")
        exp = {}
        final32, model = run(torch.float32, everything, ids, attn2d, labels, exp)
        with torch.no_grad():
            alone = torch.cat([model(input_ids=torch.tensor([s]), use_cache=False).logits for s in seqs])
        check("trained: batch vs each sequence alone (logits)", fc.maxdiff(alone.numpy(), exp["logits_trained"]), 1e-5)
        log("== the same in float64 ==")
        final64, _ = run(torch.float64, everything, ids, attn2d, labels)
        worst = max(float(np.max(np.abs(final32[n] - final64[n])) / np.max(np.abs(final64[n]))) for n in final64)
        check("float32 vs float64 parameters after 5 steps (relative)", worst, 1e-4)
        st_save_np(exp, os.path.join(args.out, fname))
        log(f"wrote {os.path.join(args.out, fname)} ({len(exp)} tensors)")

if __name__ == "__main__":
    main()
