#!/usr/bin/env python3
"""Reference fixtures for LS-LLaMA training: a tiny LlamaForSequenceClassification with a PEFT LoRA adapter.

Writes (default root tests/fixtures/peft_seqcls/, override with --out DIR):

  base/config.json, base/model.safetensors     tiny random LlamaForSequenceClassification, float32, as written
                                               by transformers' save_pretrained (model.* tensors + score.weight)
  adapter_init/adapter_config.json             PEFT LoRA adapter (SEQ_CLS, r=4, alpha=8, dropout 0, q/v/o) at its
  adapter_init/adapter_model.safetensors       initial values (A: PEFT's Kaiming-uniform, B: our random values,
                                               score: copy of base score.weight), written by PEFT save_pretrained
  adapter_trained/...                          the same adapter after 5 AdamW steps, written by PEFT
  hparams.json                                 optimiser / schedule / LoRA / head settings used
  expected.safetensors                         inputs, logits, losses, gradients, per-step lr / loss / grad norm,
                                               initial and final trainable parameters (see tests/fixtures/README.md)

What is computed (all by transformers 5.24 + PEFT 0.21.2 + torch, float32, CPU):

  * "last" (LS-LLaMA): one right-padded batch with a 2D attention_mask through the PEFT model, causal attention,
    pooled at the last non-padding token by transformers' own code, cross-entropy as transformers computes it.
    Step 0: logits, loss, gradients of every trainable tensor (before clipping). Then 5 steps of
    AdamW + linear warm-up schedule + global-norm clipping on the same batch; per-step loss, lr, pre-clip norm;
    the final parameters; the trained adapter saved by PEFT and its logits.
  * "mean_bidir." (LS-unLLaMA): same initial model, no causal mask (a 4D float mask that only hides padding
    keys), mean over each sequence's real tokens of the final-norm hidden states, the score head, cross-entropy.
    Step 0 only.

Self-checks: every sequence alone (no padding) vs the batch; eager vs sdpa attention; an independent float64
forward written here (it reads base/ and the adapter files as written to disk, so it also proves PEFT's key names
and the LoRA formula) reproduces logits and loss, its autograd gradients match the float32 reference gradients,
and central finite differences in float64 confirm those autograd gradients; our own float64 AdamW / schedule /
clipping, fed with the recorded gradients, reproduces the final parameters, and a whole 5-step float64 run
(oracle gradients) lands within 2e-6 (relative) of them; the adapters reloaded by PEFT give
the recorded logits; the loss decreases.

Deterministic (fixed seeds; the script re-executes itself with PYTHONHASHSEED=0 because PEFT writes
target_modules from a Python set, whose order depends on the hash seed), idempotent, ~10 s on 2 cores.
Run: python3 tools/gen_fixtures_peft.py [--out DIR]
"""

import argparse
import copy
import json
import math
import os
import shutil
import sys

if os.environ.get("PYTHONHASHSEED") != "0":  # make PEFT's set -> JSON list order reproducible
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("TQDM_DISABLE", "1")
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402

import peft  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from safetensors.torch import load_file as st_load_torch  # noqa: E402
from transformers import LlamaConfig, LlamaForSequenceClassification, get_linear_schedule_with_warmup  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "peft_seqcls")

PAD_ID = 0
BASE_NAME = "tests/fixtures/peft_seqcls/base"  # base_model_name_or_path in adapter_config.json
DIMS = dict(hidden_size=60, num_attention_heads=6, num_key_value_heads=2, intermediate_size=100,
            num_hidden_layers=2, vocab_size=97, rms_norm_eps=1e-5, max_position_embeddings=128,
            attention_bias=False, bos_token_id=1, eos_token_id=2, pad_token_id=PAD_ID, num_labels=3,
            tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
INIT_STD = 0.1   # base matrices, embeddings, score head
B_STD = 0.05     # LoRA B (PEFT would start it at zero; non-zero exercises the gradient path into A)
LENS = [5, 1, 15, 8, 3, 11]
MODULES = ["q", "v", "o"]
HP = {
    "lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
    "num_warmup_steps": 2, "num_training_steps": 10, "steps_run": 5, "max_grad_norm": 1.0,
    "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "use_rslora": False,
    "target_modules": ["q_proj", "v_proj", "o_proj"], "modules_to_save": ["score"],
    "pooling": "last", "attention": "causal", "head_bias": False,
    "problem_type": "single_label_classification", "loss_reduction": "mean",
    "weight_decay_applies_to": "all trainable tensors (LoRA A, LoRA B, score)",
    "variant_mean_bidir": {"pooling": "mean", "attention": "bidirectional", "steps_run": 0},
}

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
warnings.filterwarnings("ignore", category=FutureWarning)
# PEFT looks for base_model_name_or_path relative to the working directory when saving; harmless elsewhere
warnings.filterwarnings("ignore", message="Could not find a config file")


log, check = fc.log, fc.check


def fresh_dir(d):
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)


def randomize(model, seed):
    """Every parameter from our own generator: matrices/embeddings N(0, 0.1), RMSNorm weights 1 + 0.1 N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            p.copy_(1.0 + 0.1 * noise if name.endswith("norm.weight") else INIT_STD * noise)


def trainable_map(pm):
    """fixture name -> parameter, in a fixed order: layers.{i}.{q,v,o}.lora_{A,B}, then score."""
    named = dict(pm.named_parameters())
    out = {}
    for i in range(DIMS["num_hidden_layers"]):
        for m in MODULES:
            for ab in ("A", "B"):
                out[f"layers.{i}.{m}.lora_{ab}"] = named[
                    f"base_model.model.model.layers.{i}.self_attn.{m}_proj.lora_{ab}.default.weight"]
    out["score"] = named["base_model.model.score.modules_to_save.default.weight"]
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert trainable == {n for n, p in named.items() if any(p is q for q in out.values())}, sorted(trainable)
    return out


def peft_key(fixture_name):
    """fixture name -> the key PEFT writes in adapter_model.safetensors"""
    if fixture_name == "score":
        return "base_model.model.score.weight"
    _, i, m, ab = fixture_name.split(".")
    return f"base_model.model.model.layers.{i}.self_attn.{m}_proj.{ab}.weight"


def np32(t):
    return t.detach().to(torch.float32).contiguous().numpy().copy()


# ---------------------------------------------------------------------------------------------- HF passes

def batch_inputs(seqs):
    ids, pos, lens = fc.padded_batch(seqs, pad_id=PAD_ID)
    L = ids.shape[1]
    attn2d = (torch.arange(L).unsqueeze(0) < torch.tensor(lens).unsqueeze(1)).long()
    return ids, pos, lens, attn2d


def last_forward(pm, ids, attn2d, labels):
    """The LS-LLaMA path exactly as a transformers user runs it: PEFT model, 2D mask, labels -> loss."""
    out = pm(input_ids=ids, attention_mask=attn2d, labels=labels, use_cache=False)
    return out.logits, out.loss


def mean_bidir_forward(pm, ids, pos, lens, labels):
    """LS-unLLaMA: no causal mask (4D float mask hiding only padding keys), mean over real tokens, score head."""
    cls = pm.base_model.model  # LlamaForSequenceClassification with LoRA layers injected
    L = ids.shape[1]
    mask = fc.mask_4d(lens, L, causal=False)
    h = cls.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).last_hidden_state
    real = (torch.arange(L).unsqueeze(0) < torch.tensor(lens).unsqueeze(1)).to(h.dtype).unsqueeze(-1)
    pooled = (h * real).sum(dim=1) / torch.tensor(lens, dtype=h.dtype).unsqueeze(1)
    logits = cls.score(pooled)  # ModulesToSaveWrapper -> the trainable copy
    return logits, F.cross_entropy(logits, labels)


@torch.no_grad()
def alone_last(pm, seqs):
    return torch.cat([pm(input_ids=torch.tensor([s]), use_cache=False).logits for s in seqs])


@torch.no_grad()
def alone_mean_bidir(pm, seqs):
    """Each sequence alone, no user mask, the model's own bidirectional mask (config.is_causal = False)."""
    cls = pm.base_model.model
    flagged = [m for m in cls.modules() if hasattr(m, "is_causal")]
    old = cls.config.is_causal if hasattr(cls.config, "is_causal") else True
    try:
        cls.config.is_causal = False
        for m in flagged:
            m.is_causal = False
        rows = [cls.model(input_ids=torch.tensor([s]), use_cache=False).last_hidden_state[0].mean(dim=0)
                for s in seqs]
    finally:
        cls.config.is_causal = old
        for m in flagged:
            m.is_causal = old
    return cls.score(torch.stack(rows))


def grads_of(tm):
    return {n: p.grad.detach().clone() for n, p in tm.items()}


# ---------------------------------------------------------------------------------------------- float64 oracle

class Oracle:
    """Independent float64 forward of the LoRA'd classifier, one sequence at a time, from the files on disk.

    LoRA as PEFT defines it: y = x W^T + (alpha / r) * (x A^T) B^T (dropout 0). RoPE in HF's rotate-half
    layout (pairs (j, j + hd/2)), GQA, SwiGLU, RMSNorm with eps inside the square root, score without bias.
    """

    def __init__(self, base_dir):
        with open(os.path.join(base_dir, "config.json")) as f:
            self.cfg = json.load(f)
        sd = st_load_torch(os.path.join(base_dir, "model.safetensors"))
        self.W = {k: v.double() for k, v in sd.items()}
        c = self.cfg
        self.H, self.KV = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c["hidden_size"] // self.H
        self.eps = c["rms_norm_eps"]
        theta = c["rope_parameters"]["rope_theta"]
        self.inv_freq = 1.0 / theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)

    @staticmethod
    def load_adapter(adapter_dir):
        """PEFT adapter dir -> (params dict fixture name -> float64 leaf tensor, scaling)"""
        with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
            ac = json.load(f)
        sd = st_load_torch(os.path.join(adapter_dir, "adapter_model.safetensors"))
        names = [f"layers.{i}.{m}.lora_{ab}" for i in range(DIMS["num_hidden_layers"]) for m in MODULES
                 for ab in ("A", "B")] + ["score"]
        assert set(sd) == {peft_key(n) for n in names}, sorted(sd)
        P = {n: sd[peft_key(n)].double().clone().requires_grad_(True) for n in names}
        return P, ac["lora_alpha"] / ac["r"]

    def rms(self, x, w):
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + self.eps) * w

    def rope(self, t, n):
        ang = torch.arange(n, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        a, b = t[..., : self.hd // 2], t[..., self.hd // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    def lin(self, x, w, P, key, s):
        y = x @ w.T
        if key + ".lora_A" in P:
            y = y + s * (x @ P[key + ".lora_A"].T) @ P[key + ".lora_B"].T
        return y

    def pooled(self, seq, P, s, causal, pooling):
        W, H, KV, hd = self.W, self.H, self.KV, self.hd
        n = len(seq)
        x = W["model.embed_tokens.weight"][torch.tensor(seq)]
        for i in range(self.cfg["num_hidden_layers"]):
            pre = f"model.layers.{i}."
            h = self.rms(x, W[pre + "input_layernorm.weight"])
            q = self.lin(h, W[pre + "self_attn.q_proj.weight"], P, f"layers.{i}.q", s).view(n, H, hd)
            k = self.lin(h, W[pre + "self_attn.k_proj.weight"], P, f"layers.{i}.k", s).view(n, KV, hd)
            v = self.lin(h, W[pre + "self_attn.v_proj.weight"], P, f"layers.{i}.v", s).view(n, KV, hd)
            q, k = self.rope(q, n), self.rope(k, n)
            heads = []
            for hh in range(H):
                g = hh // (H // KV)
                sc = q[:, hh] @ k[:, g].T / math.sqrt(hd)
                if causal:
                    sc = sc.masked_fill(~torch.tril(torch.ones(n, n, dtype=torch.bool)), float("-inf"))
                heads.append(torch.softmax(sc, dim=-1) @ v[:, g])
            o = torch.cat(heads, dim=-1)
            x = x + self.lin(o, W[pre + "self_attn.o_proj.weight"], P, f"layers.{i}.o", s)
            h = self.rms(x, W[pre + "post_attention_layernorm.weight"])
            gate = h @ W[pre + "mlp.gate_proj.weight"].T
            x = x + (F.silu(gate) * (h @ W[pre + "mlp.up_proj.weight"].T)) @ W[pre + "mlp.down_proj.weight"].T
        x = self.rms(x, W["model.norm.weight"])
        return x[-1] if pooling == "last" else x.mean(dim=0)

    def logits_loss(self, seqs, labels, P, s, causal, pooling):
        pooled = torch.stack([self.pooled(sq, P, s, causal, pooling) for sq in seqs])
        logits = pooled @ P["score"].T
        return logits, F.cross_entropy(logits, labels)


def oracle_checks(oracle, P, s, seqs, labels, causal, pooling, ref_logits, ref_loss, ref_grads, tag, fd_seed):
    """float64 oracle vs the float32 reference: logits, loss, every gradient; then finite differences."""
    for p in P.values():
        p.grad = None
    logits, loss = oracle.logits_loss(seqs, labels, P, s, causal, pooling)
    loss.backward()
    check(f"{tag}: float64 oracle logits vs reference", fc.maxdiff(logits.detach().numpy(), ref_logits), 1e-5)
    check(f"{tag}: float64 oracle loss vs reference", abs(loss.item() - float(ref_loss[0])), 1e-6)
    worst = 0.0
    for n, g in ref_grads.items():
        a = P[n].grad.numpy()
        worst = max(worst, fc.maxdiff(a, g) / max(1e-12, float(np.abs(a).max())))
    check(f"{tag}: float32 grads vs float64 oracle autograd (max |diff| / max |g|)", worst, 1e-4)

    # central finite differences in float64 on a few entries per tensor type: the largest-|g| entry + 2 random
    rng = np.random.default_rng(fd_seed)
    picks = ["layers.0.q.lora_A", "layers.0.v.lora_B", "layers.1.o.lora_A", "layers.1.o.lora_B",
             "layers.1.q.lora_B", "layers.0.o.lora_A", "score"]
    h = 1e-6
    worst_fd = 0.0
    n_fd = 0
    with torch.no_grad():
        for name in picks:
            p, g = P[name], P[name].grad
            flat = [int(torch.argmax(g.abs()))] + rng.integers(0, p.numel(), size=2).tolist()
            for idx in flat:
                view = p.view(-1)
                orig = view[idx].item()
                view[idx] = orig + h
                lp = oracle.logits_loss(seqs, labels, P, s, causal, pooling)[1].item()
                view[idx] = orig - h
                lm = oracle.logits_loss(seqs, labels, P, s, causal, pooling)[1].item()
                view[idx] = orig
                fd = (lp - lm) / (2 * h)
                an = g.view(-1)[idx].item()
                err = abs(fd - an) / max(abs(an), abs(fd), 1e-6)
                worst_fd = max(worst_fd, err)
                n_fd += 1
                # the reference float32 gradient for the same entry
                ref = float(ref_grads[name].reshape(-1)[idx])
                assert abs(ref - fd) <= 1e-4 * max(abs(fd), 1e-3), (name, idx, ref, fd)
    check(f"{tag}: finite differences vs float64 autograd ({n_fd} entries, max rel err)", worst_fd, 1e-6)


# ---------------------------------------------------------------------------------------------- own AdamW

def own_adamw(init, grads_per_step, lrs):
    """float64 re-implementation of clip_grad_norm_ + torch AdamW (decoupled decay) for the documented formulas."""
    b1, b2 = HP["betas"]
    eps, wd, maxn = HP["eps"], HP["weight_decay"], HP["max_grad_norm"]
    p = {n: v.astype(np.float64) for n, v in init.items()}
    m = {n: np.zeros_like(v) for n, v in p.items()}
    v2 = {n: np.zeros_like(v) for n, v in p.items()}
    norms = []
    for k, (grads, lr) in enumerate(zip(grads_per_step, lrs)):
        t = k + 1
        total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
        norms.append(total)
        coef = min(maxn / (total + 1e-6), 1.0)
        for n in p:
            g = grads[n].astype(np.float64) * coef
            p[n] *= 1.0 - lr * wd
            m[n] = b1 * m[n] + (1 - b1) * g
            v2[n] = b2 * v2[n] + (1 - b2) * g * g
            denom = np.sqrt(v2[n]) / math.sqrt(1 - b2 ** t) + eps
            p[n] -= lr / (1 - b1 ** t) * m[n] / denom
    return p, norms


def own_lr(k):
    w, tot = HP["num_warmup_steps"], HP["num_training_steps"]
    f = k / max(1, w) if k < w else max(0.0, (tot - k) / max(1, tot - w))
    return HP["lr"] * f


# ---------------------------------------------------------------------------------------------- main

def build(out):
    log("== base: tiny random LlamaForSequenceClassification ==")
    torch.manual_seed(4)
    config = LlamaConfig(**DIMS)
    model = LlamaForSequenceClassification(config)
    assert model.score.bias is None
    randomize(model, seed=1004)
    base_dir = os.path.join(out, "base")
    fresh_dir(base_dir)
    model.save_pretrained(base_dir)
    written = sorted(st_load_torch(os.path.join(base_dir, "model.safetensors")))
    log(f"  base/model.safetensors: {len(written)} tensors, e.g. {written[0]}, ..., {written[-1]}")
    assert "score.weight" in written and not any(k.startswith("lm_head") for k in written)
    base = LlamaForSequenceClassification.from_pretrained(base_dir, dtype=torch.float32)
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), base.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    log("  base/ reloaded == original: OK")
    # PEFT writes the base model's name_or_path into adapter_config.json; from_pretrained set it to the absolute
    # folder, which would make the files machine-dependent. Use the path from the repository root instead.
    base.name_or_path = BASE_NAME
    return base, base_dir


def attach_lora(base):
    torch.manual_seed(5)  # PEFT's Kaiming-uniform init of lora_A draws from the global generator
    lc = LoraConfig(task_type="SEQ_CLS", r=HP["r"], lora_alpha=HP["lora_alpha"], lora_dropout=HP["lora_dropout"],
                    target_modules=list(HP["target_modules"]))
    pm = get_peft_model(base, lc)
    mts = pm.peft_config["default"].modules_to_save
    log(f"  PEFT modules_to_save (added by task_type SEQ_CLS): {mts}")
    assert "score" in mts
    tm = trainable_map(pm)
    g = torch.Generator().manual_seed(1005)
    with torch.no_grad():
        for n, p in tm.items():
            if n.endswith("lora_B"):
                assert torch.count_nonzero(p) == 0  # PEFT's init: B = 0
                p.copy_(B_STD * torch.randn(p.shape, generator=g, dtype=torch.float32))
    A = tm["layers.0.q.lora_A"]
    bound = 1.0 / math.sqrt(A.shape[1])  # kaiming_uniform_(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    amax = float(A.detach().abs().max())
    assert amax <= bound, (amax, bound)
    assert torch.equal(tm["score"], pm.base_model.model.score.original_module.weight)
    return pm, tm


def save_adapter(pm, d):
    fresh_dir(d)
    pm.save_pretrained(d)
    card = os.path.join(d, "README.md")  # PEFT's empty model-card template: not needed by anyone
    if os.path.exists(card):
        os.remove(card)
    keys = sorted(st_load_torch(os.path.join(d, "adapter_model.safetensors")))
    return keys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")

    base, base_dir = build(args.out)
    base.set_attn_implementation("eager")
    pm, tm = attach_lora(base)
    pm.train()  # dropout is 0 everywhere: train and eval mode compute the same thing
    params = list(tm.values())

    rng = np.random.default_rng(2004)
    seqs = [rng.integers(1, DIMS["vocab_size"], size=n).tolist() for n in LENS]  # never the pad id 0
    labels_np = np.array([0, 2, 1, 2, 0, 1], dtype=np.int32)
    labels = torch.from_numpy(labels_np).long()
    tokens, seq_start = fc.pack(seqs)
    assert PAD_ID not in tokens
    ids, pos, lens, attn2d = batch_inputs(seqs)

    exp = {"tokens": tokens, "seq_start": seq_start, "labels": labels_np}
    init = {n: np32(p) for n, p in tm.items()}
    for n, v in init.items():
        exp[f"init.{n}"] = v
    keys_init = save_adapter(pm, os.path.join(args.out, "adapter_init"))

    # ---------------------------------------------------------------- mean_bidir (step 0 only, initial params)
    log("== mean_bidir: bidirectional attention, mean pooling, step 0 ==")
    pm.zero_grad(set_to_none=True)
    mb_logits, mb_loss = mean_bidir_forward(pm, ids, pos, lens, labels)
    mb_loss.backward()
    exp["mean_bidir.logits0"] = np32(mb_logits)
    exp["mean_bidir.loss0"] = np32(mb_loss.reshape(1))
    mb_grads = grads_of(tm)
    for n, g in mb_grads.items():
        exp[f"mean_bidir.grad.{n}"] = np32(g)
    check("mean_bidir: batch vs each sequence alone (logits)",
          fc.maxdiff(alone_mean_bidir(pm, seqs).numpy(), exp["mean_bidir.logits0"]), 1e-5)
    pm.zero_grad(set_to_none=True)

    # ---------------------------------------------------------------- last/causal: sdpa cross-check at step 0
    log("== last: causal, last-token pooling, 5 AdamW steps ==")
    pm.base_model.model.set_attn_implementation("sdpa")
    sd_logits, sd_loss = last_forward(pm, ids, attn2d, labels)
    sd_loss.backward()
    sdpa_grads = {n: np32(g) for n, g in grads_of(tm).items()}
    pm.zero_grad(set_to_none=True)
    pm.base_model.model.set_attn_implementation("eager")

    opt = torch.optim.AdamW(params, lr=HP["lr"], betas=tuple(HP["betas"]), eps=HP["eps"],
                            weight_decay=HP["weight_decay"])
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=HP["num_warmup_steps"],
                                            num_training_steps=HP["num_training_steps"])
    grads_per_step, lrs, losses = [], [], []
    for k in range(HP["steps_run"]):
        opt.zero_grad(set_to_none=True)
        logits, loss = last_forward(pm, ids, attn2d, labels)
        loss.backward()
        if k == 0:
            exp["logits0"] = np32(logits)
            exp["loss0"] = np32(loss.reshape(1))
            for n, g in grads_of(tm).items():
                exp[f"grad.{n}"] = np32(g)
            d = abs(loss.item() - F.cross_entropy(logits, labels).item())
            check("loss0 == mean cross-entropy of logits0", d, 1e-7)
            check("alone vs batch (logits0)", fc.maxdiff(alone_last(pm, seqs).numpy(), exp["logits0"]), 1e-5)
            check("sdpa vs eager (logits0)", fc.maxdiff(np32(sd_logits), exp["logits0"]), 1e-5)
            check("sdpa vs eager (every gradient)",
                  max(fc.maxdiff(sdpa_grads[n], exp[f"grad.{n}"]) for n in tm), 1e-5)
        grads_per_step.append({n: np32(g) for n, g in grads_of(tm).items()})
        gn = torch.nn.utils.clip_grad_norm_(params, max_norm=HP["max_grad_norm"])
        lr = opt.param_groups[0]["lr"]
        exp[f"loss.step{k}"] = np32(loss.reshape(1))
        exp[f"lr.step{k}"] = np.array([lr], dtype=np.float32)
        exp[f"gradnorm.step{k}"] = np32(gn.reshape(1))
        lrs.append(lr)
        losses.append(loss.item())
        log(f"  step {k}: loss {loss.item():.6f}  lr {lr:.6g}  grad norm (pre-clip) {gn.item():.6f}")
        opt.step()
        sched.step()
    for n, p in tm.items():
        exp[f"final.{n}"] = np32(p)

    pm.eval()
    with torch.no_grad():
        logits_t, loss_t = last_forward(pm, ids, attn2d, labels)
    exp["logits_trained"] = np32(logits_t)
    exp["loss_trained"] = np32(loss_t.reshape(1))
    log(f"  after 5 steps: loss {loss_t.item():.6f}")
    keys_trained = save_adapter(pm, os.path.join(args.out, "adapter_trained"))
    assert keys_init == keys_trained

    # ---------------------------------------------------------------- self-checks
    log("== self-checks ==")
    for k in range(HP["steps_run"]):
        assert abs(lrs[k] - own_lr(k)) < 1e-12, (k, lrs[k], own_lr(k))
    log(f"  check lr schedule (linear warm-up 2, decay to 0 at 10): {lrs}  OK")
    assert lrs[0] == 0.0 and losses[1] == losses[0], "warm-up step 0 must not move the parameters"
    assert losses[4] < losses[2] < losses[1] and loss_t.item() < losses[4], losses
    log("  check loss decreases (step 1 == step 0 because lr(0) = 0): OK")
    own_final, own_norms = own_adamw(init, grads_per_step, lrs)
    check("pre-clip grad norms vs own float64 norm", max(abs(a - float(exp[f"gradnorm.step{k}"][0]))
                                                         for k, a in enumerate(own_norms)), 1e-6)
    assert own_norms[0] > HP["max_grad_norm"], "clipping should be active at least at step 0"
    check("final params vs own float64 clip + AdamW on the recorded grads",
          max(fc.maxdiff(own_final[n], exp[f"final.{n}"]) for n in tm), 1e-6)
    assert all(fc.maxdiff(exp[f"final.{n}"], init[n]) > 1e-4 for n in tm), "every trainable tensor must move"

    # PEFT reloads its own files onto a fresh base and gives the recorded logits
    for sub, key in (("adapter_init", "logits0"), ("adapter_trained", "logits_trained")):
        b = LlamaForSequenceClassification.from_pretrained(base_dir, dtype=torch.float32)
        b.set_attn_implementation("eager")
        r = PeftModel.from_pretrained(b, os.path.join(args.out, sub)).eval()
        with torch.no_grad():
            lg = r(input_ids=ids, attention_mask=attn2d, use_cache=False).logits
        check(f"PEFT reloads base/ + {sub}/ -> {key}", fc.maxdiff(lg.numpy(), exp[key]), 1e-6)

    oracle = Oracle(base_dir)
    P, s = Oracle.load_adapter(os.path.join(args.out, "adapter_init"))
    assert s == HP["lora_alpha"] / HP["r"]
    for n in tm:
        assert np.array_equal(P[n].detach().numpy().astype(np.float32), init[n]), n
    step0_grads = {n: exp[f"grad.{n}"] for n in tm}
    oracle_checks(oracle, P, s, seqs, labels, True, "last", exp["logits0"], exp["loss0"], step0_grads,
                  "last", 3001)
    mb_ref = {n: exp[f"mean_bidir.grad.{n}"] for n in tm}
    oracle_checks(oracle, P, s, seqs, labels, False, "mean", exp["mean_bidir.logits0"], exp["mean_bidir.loss0"],
                  mb_ref, "mean_bidir", 3002)
    Pt, _ = Oracle.load_adapter(os.path.join(args.out, "adapter_trained"))
    with torch.no_grad():
        lg, ls = oracle.logits_loss(seqs, labels, Pt, s, True, "last")
    check("float64 oracle on adapter_trained/ vs logits_trained", fc.maxdiff(lg.numpy(), exp["logits_trained"]),
          1e-5)
    for n in tm:
        assert np.array_equal(Pt[n].detach().numpy().astype(np.float32), exp[f"final.{n}"]), n
    log("  check adapter_trained/ tensors == final.* bit for bit: OK")
    # the whole 5-step run again in float64 (oracle gradients, own AdamW): how close an exact f32 engine can get
    P64, _ = Oracle.load_adapter(os.path.join(args.out, "adapter_init"))
    g64 = []
    for k in range(HP["steps_run"]):
        cur, _ = own_adamw(init, g64, lrs[:k]) if k else ({n: v.astype(np.float64) for n, v in init.items()}, None)
        Pk = {n: torch.from_numpy(cur[n]).requires_grad_(True) for n in tm}
        lossk = oracle.logits_loss(seqs, labels, Pk, s, True, "last")[1]
        lossk.backward()
        assert abs(lossk.item() - losses[k]) < 1e-5, (k, lossk.item(), losses[k])
        g64.append({n: Pk[n].grad.numpy() for n in tm})
    fin64, _ = own_adamw(init, g64, lrs)
    rel_t = max(fc.maxdiff(fin64[n], exp[f"final.{n}"]) / float(np.abs(fin64[n]).max()) for n in tm)
    upd = max(fc.maxdiff(fin64[n], exp[f"final.{n}"]) /
              float(np.abs(fin64[n] - init[n].astype(np.float64)).max()) for n in tm)
    check("float64 5-step run vs final.* (max |diff| / max |param|, any tensor)", rel_t, 1e-4)
    elem = max(float(np.max(np.abs(fin64[n] - exp[f"final.{n}"]) / np.maximum(np.abs(fin64[n]), 1e-3))) for n in tm)
    log(f"  info  float64 5-step run vs final.*, element-wise |diff| / max(|p|, 1e-3): {elem:.3e}")
    check("float64 5-step run vs final.* (max |diff| / max |update|, any tensor)", upd, 1e-3)
    d = fc.maxdiff(exp["mean_bidir.logits0"], exp["logits0"])
    assert d > 1e-2, d
    log(f"  check mean_bidir logits differ from last/causal ({d:.3g}): OK")

    # ---------------------------------------------------------------- write
    with open(os.path.join(args.out, "hparams.json"), "w") as f:
        json.dump(HP, f, indent=2, sort_keys=True)
        f.write("\n")
    fc.save_expected(os.path.join(args.out, "expected.safetensors"), exp,
                     "tests/fixtures/peft_seqcls: tools/gen_fixtures_peft.py")
    log("adapter_model.safetensors keys: " + ", ".join(keys_init))
    log("all self-checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
