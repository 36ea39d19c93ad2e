#!/usr/bin/env python3
"""PEFT training reference for Gemma 3: a tiny random Gemma3TextForSequenceClassification with LoRA on every
linear target, trained by transformers + PEFT (float32, CPU), as tools/gen_fixtures_peft.py does for Llama.

The model has what makes Gemma 3 differ from Llama: (1 + w) RMSNorms (weights drawn around 0), q/k norms per
head, post-attention and post-feed-forward norms, embeddings scaled by sqrt(hidden), query_pre_attn_scalar,
GeGLU, two sliding layers (window 4, shorter than most test sequences, local RoPE base 100) and a global one.
LoRA r=4, alpha=8, dropout 0 on q,k,v,o,gate,up,down; the score head trained in full (PEFT's modules_to_save).

Writes (default build/generated/peft_gemma3; scripts/test.sh makes it at test time):

  base/config.json, base/model.safetensors   the base, as save_pretrained writes it
  expected.safetensors
    tokens, seq_start, labels                the batch (6 sequences of 5, 1, 15, 8, 3, 11 tokens, 3 labels)
    init.<name>                              every trainable tensor before training (fixture names:
                                             layers.{i}.{q,k,v,o,gate,up,down}.lora_{A,B}, score)
    logits0, loss0, grad.<name>              causal attention, last-token pooling (transformers' own pooling, one
                                             right-padded batch with a 2D attention mask): step 0
    loss.stepK, lr.stepK, gradnorm.stepK     5 steps of AdamW (lr 1e-2, eps 1e-8, weight decay 0.01), linear
                                             warm-up 2 of 10 steps, global-norm clipping to 1.0 (pre-clip norm)
    final.<name>, logits_trained             the parameters after 5 steps, and their logits
    mean_bidir.logits0, .loss0, .grad.<name> use_bidirectional_attention (Gemma's bidirectional mask, sliding
                                             window halved as Gemma3TextConfig does), mean over each sequence's
                                             real tokens of the final hidden states, the score head: step 0

Self-checks: each sequence alone against the batch (both variants); the same computation in float64, one
sequence at a time, agrees (step 0 and the 5-step run); the loss decreases; every trainable tensor moves; the sliding window changes the
result (the same model without it differs).

Run: python3 tools/gen_fixtures_peft_gemma3.py [--out DIR]   (about 10 s on 2 cores)
"""

import argparse
import os
import shutil
import sys

os.environ.setdefault("TQDM_DISABLE", "1")
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402

import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import Gemma3TextConfig, Gemma3TextForSequenceClassification  # noqa: E402
from transformers import get_linear_schedule_with_warmup  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "build", "generated", "peft_gemma3")
PAD_ID = 0
DIMS = dict(hidden_size=48, num_attention_heads=4, num_key_value_heads=2, head_dim=16, intermediate_size=64,
            num_hidden_layers=3, vocab_size=97, rms_norm_eps=1e-6, max_position_embeddings=128,
            query_pre_attn_scalar=20, sliding_window=4,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 10000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}},
            hidden_activation="gelu_pytorch_tanh", attention_bias=False, bos_token_id=2, eos_token_id=1,
            pad_token_id=PAD_ID, num_labels=3, tie_word_embeddings=True)
MODULES = ["q", "k", "v", "o", "gate", "up", "down"]
ATTN = {"q", "k", "v", "o"}
LENS = [5, 1, 15, 8, 3, 11]
LABELS = [0, 2, 1, 2, 0, 1]
HP = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, warmup=2, total=10, steps=5,
          max_grad_norm=1.0, r=4, lora_alpha=8)

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", category=FutureWarning)
log, check = fc.log, fc.check


def randomize(model, seed):
    """Every parameter from our own generator: norm weights 0.2 N(0, 1) (Gemma multiplies by 1 + w), the rest
    0.1 N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            p.copy_((0.2 if "norm" in name else 0.1) * noise)


def trainable_map(pm):
    """fixture name -> parameter, in a fixed order"""
    named = dict(pm.named_parameters())
    out = {}
    for i in range(DIMS["num_hidden_layers"]):
        for m in MODULES:
            block = "self_attn" if m in ATTN else "mlp"
            for ab in ("A", "B"):
                out[f"layers.{i}.{m}.lora_{ab}"] = named[
                    f"base_model.model.model.layers.{i}.{block}.{m}_proj.lora_{ab}.default.weight"]
    out["score"] = named["base_model.model.score.modules_to_save.default.weight"]
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert trainable == {n for n, p in named.items() if any(p is q for q in out.values())}, sorted(trainable)
    return out


def peft_model(base_dir, bidirectional, init, dtype, **override):
    """The base from base_dir (use_bidirectional_attention as asked, config keys overridden), LoRA attached,
    trainables set to init"""
    cfg = Gemma3TextConfig.from_pretrained(base_dir)
    if bidirectional or override:
        cfg = Gemma3TextConfig(**{**cfg.to_dict(), "use_bidirectional_attention": bidirectional, **override})
    if bidirectional:
        assert cfg.sliding_window == DIMS["sliding_window"] // 2 + 1, cfg.sliding_window
    base = Gemma3TextForSequenceClassification.from_pretrained(base_dir, config=cfg, dtype=torch.float32)
    base.set_attn_implementation("eager")
    lc = LoraConfig(task_type="SEQ_CLS", r=HP["r"], lora_alpha=HP["lora_alpha"], lora_dropout=0.0,
                    target_modules=[f"{m}_proj" for m in MODULES])
    pm = get_peft_model(base, lc).to(dtype)
    tm = trainable_map(pm)
    if init is not None:
        with torch.no_grad():
            for n, p in tm.items():
                p.copy_(torch.from_numpy(init[n]))
    return pm, tm


def last_forward(pm, ids, attn2d, labels):
    out = pm(input_ids=ids, attention_mask=attn2d, labels=labels, use_cache=False)
    return out.logits, out.loss


def mean_forward(pm, ids, attn2d, labels):
    """mean over real tokens of the final hidden states, then the score head (lsllama's --pool mean)"""
    cls = pm.base_model.model
    h = cls.model(input_ids=ids, attention_mask=attn2d, use_cache=False).last_hidden_state
    real = attn2d.to(h.dtype).unsqueeze(-1)
    logits = cls.score((h * real).sum(dim=1) / real.sum(dim=1))
    return logits, F.cross_entropy(logits, labels)


def np32(t):
    return t.detach().to(torch.float32).contiguous().numpy().copy()


def alone_forward(pm, seqs, labels, mean):
    """The batch's logits and loss computed one sequence at a time (no padding). The float64 checks need it:
    there a padding query whose window holds only padding keys gets a fully masked row (the mask's finfo.min
    plus a score overflows to -inf), its softmax is NaN, and 0 x NaN spreads it to the real rows"""
    rows = []
    for s in seqs:
        ids, attn = torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long)
        if mean:
            rows.append(mean_forward(pm, ids, attn, labels[:1])[0])
        else:
            rows.append(pm(input_ids=ids, use_cache=False).logits)
    logits = torch.cat(rows)
    return logits, F.cross_entropy(logits, labels)


def record_step0(exp, prefix, logits, loss, tm):
    """logits0, loss0 and every trainable tensor's gradient into exp, under prefix"""
    exp[prefix + "logits0"], exp[prefix + "loss0"] = np32(logits), np32(loss.reshape(1))
    for n, p in tm.items():
        exp[f"{prefix}grad.{n}"] = np32(p.grad)


def worst_rel(values, exp, key):
    """max over tensors of max |values[n] - exp[key % n]| / max |exp[key % n]|"""
    return max(fc.maxdiff(v, exp[key % n]) / float(np.abs(exp[key % n]).max()) for n, v in values.items())


def train(pm, tm, forward):
    """5 AdamW steps under the schedule with clipping: per-step loss, lr, pre-clip norm; the final logits.
    forward() gives the batch's (logits, loss)."""
    params = list(tm.values())
    opt = torch.optim.AdamW(params, lr=HP["lr"], betas=HP["betas"], eps=HP["eps"], weight_decay=HP["weight_decay"])
    sched = get_linear_schedule_with_warmup(opt, HP["warmup"], HP["total"])
    rows = []
    for _ in range(HP["steps"]):
        opt.zero_grad(set_to_none=True)
        _, loss = forward()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, HP["max_grad_norm"])
        rows.append((loss.item(), opt.param_groups[0]["lr"], gn.item()))
        opt.step()
        sched.step()
    with torch.no_grad():
        logits, _ = forward()
    return rows, logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}")

    torch.manual_seed(4)
    model = Gemma3TextForSequenceClassification(Gemma3TextConfig(**DIMS))
    randomize(model, 3004)
    base_dir = os.path.join(args.out, "base")
    if os.path.isdir(base_dir):
        shutil.rmtree(base_dir)
    os.makedirs(base_dir)
    model.save_pretrained(base_dir)

    torch.manual_seed(5)  # PEFT's Kaiming-uniform lora_A init draws from the global generator
    pm, tm = peft_model(base_dir, False, None, torch.float32)
    g = torch.Generator().manual_seed(3005)
    with torch.no_grad():
        for n, p in tm.items():  # B non-zero, so the gradient path into A is exercised
            if n.endswith("lora_B"):
                assert torch.count_nonzero(p) == 0
                p.copy_(0.05 * torch.randn(p.shape, generator=g, dtype=torch.float32))
    init = {n: np32(p) for n, p in tm.items()}

    rng = np.random.default_rng(3006)
    seqs = [rng.integers(3, DIMS["vocab_size"], size=n).tolist() for n in LENS]  # never pad, bos or eos
    tokens, seq_start = fc.pack(seqs)
    ids, _, lens = fc.padded_batch(seqs, PAD_ID)
    attn2d = (torch.arange(ids.shape[1]).unsqueeze(0) < torch.tensor(lens).unsqueeze(1)).long()
    labels = torch.tensor(LABELS)
    exp = {"tokens": tokens, "seq_start": seq_start, "labels": np.array(LABELS, dtype=np.int32)}
    for n, v in init.items():
        exp[f"init.{n}"] = v

    log("== causal, last-token pooling: step 0, then 5 AdamW steps ==")
    logits, loss = last_forward(pm, ids, attn2d, labels)
    loss.backward()
    record_step0(exp, "", logits, loss, tm)
    with torch.no_grad():
        alone = torch.cat([pm(input_ids=torch.tensor([s]), use_cache=False).logits for s in seqs])
    check("batch vs each sequence alone (logits0)", fc.maxdiff(np32(alone), exp["logits0"]), 1e-5)
    pm.zero_grad(set_to_none=True)
    rows, logits_t = train(pm, tm, lambda: last_forward(pm, ids, attn2d, labels))
    for k, (l, lr, gn) in enumerate(rows):
        exp[f"loss.step{k}"] = np.array([l], np.float32)
        exp[f"lr.step{k}"] = np.array([lr], np.float32)
        exp[f"gradnorm.step{k}"] = np.array([gn], np.float32)
        log(f"  step {k}: loss {l:.6f}  lr {lr:.6g}  grad norm (pre-clip) {gn:.6f}")
    for n, p in tm.items():
        exp[f"final.{n}"] = np32(p)
    exp["logits_trained"] = np32(logits_t)
    losses = [r[0] for r in rows]
    assert rows[0][2] > HP["max_grad_norm"], "clipping should be active at step 0"
    assert losses[4] < losses[2] and F.cross_entropy(logits_t, labels).item() < losses[4], losses
    assert all(fc.maxdiff(exp[f"final.{n}"], init[n]) > 1e-4 for n in tm), "every trainable tensor must move"

    log("== float64: the same step 0 and 5 steps ==")
    pm64, tm64 = peft_model(base_dir, False, init, torch.float64)
    lg64, ls64 = alone_forward(pm64, seqs, labels, False)
    ls64.backward()
    check("float64 vs float32 logits0", fc.maxdiff(lg64.detach().numpy(), exp["logits0"]), 1e-5)
    check("float64 vs float32 step-0 gradients (max |diff| / max |grad|)",
          worst_rel({n: p.grad.numpy() for n, p in tm64.items()}, exp, "grad.%s"), 1e-4)
    pm64.zero_grad(set_to_none=True)
    rows64, _ = train(pm64, tm64, lambda: alone_forward(pm64, seqs, labels, False))
    check("float64 vs float32 5-step losses", max(abs(a[0] - b[0]) for a, b in zip(rows, rows64)), 1e-5)
    check("float64 vs float32 final parameters (max |diff| / max |param|)",
          worst_rel({n: p.detach().numpy() for n, p in tm64.items()}, exp, "final.%s"), 1e-4)

    log("== use_bidirectional_attention, mean pooling: step 0 ==")
    pmb, tmb = peft_model(base_dir, True, init, torch.float32)
    lgb, lsb = mean_forward(pmb, ids, attn2d, labels)
    lsb.backward()
    record_step0(exp, "mean_bidir.", lgb, lsb, tmb)
    with torch.no_grad():
        alone, _ = alone_forward(pmb, seqs, labels, True)
    check("batch vs each sequence alone (mean_bidir.logits0)", fc.maxdiff(np32(alone), exp["mean_bidir.logits0"]),
          1e-5)
    pmb64, tmb64 = peft_model(base_dir, True, init, torch.float64)
    lgb64, lsb64 = alone_forward(pmb64, seqs, labels, True)
    lsb64.backward()
    check("float64 vs float32 mean_bidir step-0 gradients (max |diff| / max |grad|)",
          worst_rel({n: p.grad.numpy() for n, p in tmb64.items()}, exp, "mean_bidir.grad.%s"), 1e-4)

    # the window must matter, or a kernel that ignores it would pass
    wide, _ = peft_model(base_dir, False, init, torch.float32, sliding_window=1000)
    with torch.no_grad():
        lw, _ = last_forward(wide, ids, attn2d, labels)
    d = fc.maxdiff(np32(lw), exp["logits0"])
    assert d > 1e-3, d
    log(f"  check a window of 1000 gives other logits ({d:.3g}): OK")

    fc.save_expected(os.path.join(args.out, "expected.safetensors"), exp,
                     "build/generated/peft_gemma3: tools/gen_fixtures_peft_gemma3.py")
    log("all self-checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
