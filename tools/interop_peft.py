#!/usr/bin/env python3
"""Interop check between lsllama's adapter / merged-model files and transformers + PEFT.

Run by tests/test_peft_interop.c (ctest), which writes the inputs; can be run by hand:

  python3 tools/interop_peft.py --base BASE_DIR --adapter ADAPTER_DIR --batch BATCH.safetensors
                                [--merged MERGED_DIR] [--peft-out DIR] [--refused DIR [--refused-merged DIR]]
                                [--tol 1e-3]

  BASE_DIR        Hugging Face folder of the base model (config.json + safetensors)
  ADAPTER_DIR     adapter written by lsllama (adapter_config.json, adapter_model.safetensors, label_map.json)
  BATCH           safetensors with tokens I32 [T] and seq_start I32 [n+1] (packed, no padding) and
                  logits F32 [n, K] (SEQ_CLS) or [T, K] (TOKEN_CLS, the sequences' tokens in packed order):
                  lsllama's logits for that batch with the adapter
  MERGED_DIR      optional: merged model written by lsllama (config.json + model.safetensors); its logits in
                  transformers (no PEFT) must match too, and its config must name the task's class
  --peft-out DIR  optional, the reverse direction: a PEFT adapter saved with PeftModel.save_pretrained into
                  DIR/peft_adapter and its logits for the batch in DIR/peft_logits.safetensors (the C test then loads
                  that adapter and compares). SEQ_CLS: the loaded PEFT model's LoRA and score weights are perturbed
                  (fixed seed). TOKEN_CLS: a fresh get_peft_model(LoraConfig(task_type="TOKEN_CLS", r, lora_alpha,
                  target_modules, use_rslora, lora_dropout as in ADAPTER_DIR)) on the base with random LoRA A and B
                  and score weight and bias; its adapter_config.json values and tensor names / shapes are also
                  compared with what lsllama wrote in ADAPTER_DIR (they must agree)
  --refused DIR   optional: an lsllama head-only adapter (r 0, target_modules []); PeftModel.from_pretrained must
                  refuse it (PEFT will not build a LoRA config that targets nothing); it is an error if PEFT loads it
  --refused-merged DIR  optional, with --refused: that classifier merged by lsllama (base + head, no LoRA), the
                  way to use a head-only classifier in transformers; its logits must match BATCH's head_only_logits

How the adapter is loaded: transformers takes num_labels (and the label names) from the *base* config, not from
the adapter, so we read K, id2label and label2id from lsllama's label_map.json and pass them to
AutoModelForSequenceClassification.from_pretrained(base, num_labels=K, id2label=..., label2id=...,
ignore_mismatched_sizes=True), then PeftModel.from_pretrained(model, adapter_dir). PEFT replaces the score head by
the adapter's (modules_to_save), so a base that already has a score head of another size (ignore_mismatched_sizes)
or none (a CausalLM checkpoint: transformers initialises one) does not matter.

TOKEN_CLS adapters are loaded the same way with AutoModelForTokenClassification (LlamaForTokenClassification:
score = Linear(hidden, K) with bias on every token; PeftModelForTokenClassification).

The batch is right-padded with a pad id that does not occur in it; transformers pools the last non-pad token
(LlamaForSequenceClassification), which is lsllama's "last" pooling with causal attention; token logits are
taken at the real (unpadded) positions, which with causal attention never see the padding. transformers' Llama is
causal only: an adapter whose label_map.json says lsllama.bidirectional_from < num_hidden_layers (LS-unLLaMA), or a
SEQ_CLS one with pooling other than "last", has no transformers counterpart and is refused (exit 2). Logits must
agree within tol * max(1, max|logits|). Exit status 0 on agreement, 1 on a mismatch, 2 on bad arguments/files.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices from inside PEFT/transformers
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402


def die(msg):
    print(f"interop_peft: {msg}", file=sys.stderr)
    sys.exit(2)


def padded(tokens, seq_start, vocab_size):
    present = set(tokens.tolist())
    pad = next((i for i in range(vocab_size) if i not in present), None)
    if pad is None:
        die("every token id occurs in the batch; no pad id is free")
    lens = [int(seq_start[i + 1] - seq_start[i]) for i in range(len(seq_start) - 1)]
    ids = torch.full((len(lens), max(lens)), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for s, n in enumerate(lens):
        ids[s, :n] = tokens[seq_start[s]:seq_start[s] + n].long()
        mask[s, :n] = 1
    return ids, mask, pad


def logits_of(model, ids, mask, pad):
    """[n, K] (sequence task) or [T, K]: every real token's logits, sequences concatenated (token task)."""
    model.config.pad_token_id = pad
    inner = getattr(model, "get_base_model", None)  # PeftModel: the wrapped transformers model reads its config
    if inner is not None:
        inner().config.pad_token_id = pad
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits.float()
    if out.dim() == 3:  # token classification: [n, L, K] -> [T, K]
        out = torch.cat([out[s, :int(mask[s].sum())] for s in range(out.shape[0])])
    return out


def compare_configs(ours_dir, theirs_dir):
    """lsllama's adapter_config.json / tensor names against PEFT's own for the same settings."""
    with open(os.path.join(ours_dir, "adapter_config.json")) as f:
        ours = json.load(f)
    with open(os.path.join(theirs_dir, "adapter_config.json")) as f:
        theirs = json.load(f)
    ok = True
    for k, v in ours.items():
        if k == "base_model_name_or_path":
            continue
        if k not in theirs:
            print(f"adapter_config.json: lsllama writes '{k}', PEFT does not")
            ok = False
            continue
        w = theirs[k]
        same = sorted(v) == sorted(w) if k in ("target_modules", "modules_to_save") and isinstance(v, list) \
            and isinstance(w, list) else v == w
        if not same:
            print(f"adapter_config.json: '{k}': lsllama {v!r}, PEFT {w!r}")
            ok = False
    print(f"adapter_config.json: PEFT writes modules_to_save {theirs.get('modules_to_save')}, lsllama "
          f"{ours.get('modules_to_save')}; {len(ours)} of PEFT's {len(theirs)} keys written by lsllama: "
          f"{'all equal' if ok else 'DIFFERENT'}")
    a = load_file(os.path.join(ours_dir, "adapter_model.safetensors"))
    b = load_file(os.path.join(theirs_dir, "adapter_model.safetensors"))
    sa = {k: (tuple(t.shape), t.dtype) for k, t in a.items()}
    sb = {k: (tuple(t.shape), t.dtype) for k, t in b.items()}
    same = sa == sb
    print(f"adapter_model.safetensors: {len(sa)} tensors (lsllama) vs {len(sb)} (PEFT), names/shapes/dtypes "
          f"{'equal' if same else 'DIFFERENT'}; head: {sorted(k for k in sb if 'score' in k)}")
    if not same:
        for k in sorted(set(sa) | set(sb)):
            if sa.get(k) != sb.get(k):
                print(f"  {k}: lsllama {sa.get(k)}, PEFT {sb.get(k)}")
    return ok and same


def compare(what, got, want, tol):
    scale = max(1.0, float(want.abs().max()))
    err = float((got - want).abs().max())
    ok = got.shape == want.shape and err <= tol * scale
    print(f"{what}: max |diff| {err:.3g} (tolerance {tol * scale:.3g}), shape {tuple(got.shape)}: "
          f"{'ok' if ok else 'MISMATCH'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--merged")
    ap.add_argument("--peft-out")
    ap.add_argument("--refused")
    ap.add_argument("--refused-merged")
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()

    import peft
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    print(f"transformers {transformers.__version__}, peft {peft.__version__}, torch {torch.__version__}")
    torch.manual_seed(0)
    b = load_file(a.batch)
    tokens, seq_start, want = b["tokens"], b["seq_start"], b["logits"]
    with open(os.path.join(a.adapter, "label_map.json")) as f:
        lm = json.load(f)
    K = int(lm["num_labels"])
    id2label = {int(k): v for k, v in lm["id2label"].items()}
    with open(os.path.join(a.adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    task = acfg.get("task_type", "SEQ_CLS")
    if task not in ("SEQ_CLS", "TOKEN_CLS"):
        die(f"task_type {task} is not checked by this script")
    auto_cls = AutoModelForTokenClassification if task == "TOKEN_CLS" else AutoModelForSequenceClassification
    suffix = "ForTokenClassification" if task == "TOKEN_CLS" else "ForSequenceClassification"

    def load_base():
        return auto_cls.from_pretrained(a.base, num_labels=K, id2label=id2label, label2id=lm["label2id"],
                                        dtype=torch.float32, attn_implementation="eager", ignore_mismatched_sizes=True)

    base = load_base()
    ls = lm.get("lsllama", {})
    n_layers = base.config.num_hidden_layers
    # a base whose config sets use_bidirectional_attention (Gemma 3) is bidirectional in every layer, as the adapter
    whole = getattr(base.config, "use_bidirectional_attention", False) and ls.get("bidirectional_from") == 0
    if ls.get("bidirectional_from", n_layers) < n_layers and not whole:
        die(f"the adapter uses bidirectional attention from layer {ls['bidirectional_from']} (label_map.json); "
            f"transformers' {type(base).__name__} is causal, there is nothing to compare")
    if task == "SEQ_CLS" and ls.get("pooling", "last") != "last":
        die(f"pooling '{ls['pooling']}' has no transformers counterpart (last token only)")
    ids, mask, pad = padded(tokens, seq_start, base.config.vocab_size)
    model = PeftModel.from_pretrained(base, a.adapter)
    ok = type(model).__name__ == "PeftModelFor" + suffix[3:]
    print(f"{task} adapter on {type(base).__name__} loaded as {type(model).__name__}")
    ok &= compare(f"lsllama {task} adapter in PEFT vs lsllama", logits_of(model, ids, mask, pad), want, a.tol)

    if a.merged:
        merged = auto_cls.from_pretrained(a.merged, dtype=torch.float32, attn_implementation="eager")
        archs = merged.config.architectures or []
        print(f"merged model: config architectures {archs}, loaded as {type(merged).__name__}")
        ok &= type(merged).__name__.endswith(suffix) and len(archs) == 1 and archs[0].endswith(suffix)
        ok &= merged.config.num_labels == K and merged.config.id2label == id2label
        ok &= compare("lsllama merged model in transformers vs lsllama", logits_of(merged, ids, mask, pad), want,
                      a.tol)

    if a.peft_out:
        out = os.path.join(a.peft_out, "peft_adapter")
        g = torch.Generator().manual_seed(1234)
        if task == "SEQ_CLS":
            # Reverse direction: change every trainable tensor, let PEFT save the adapter, record its logits.
            pm = model
            with torch.no_grad():
                for name, p in pm.named_parameters():
                    if "lora_" in name or "modules_to_save" in name:
                        p.add_(0.05 * torch.randn(p.shape, generator=g))
        else:
            # Reverse direction from scratch: PEFT's own TOKEN_CLS adapter with lsllama's LoRA settings.
            tm = acfg["target_modules"]
            lc = LoraConfig(task_type="TOKEN_CLS", r=acfg["r"], lora_alpha=acfg["lora_alpha"],
                            lora_dropout=acfg["lora_dropout"], use_rslora=acfg["use_rslora"],
                            target_modules=list(tm) if isinstance(tm, list) else tm)
            pm = get_peft_model(load_base(), lc)
            n_b = 0
            with torch.no_grad():
                for name, p in pm.named_parameters():
                    if "lora_B" in name:  # PEFT starts B at 0
                        p.copy_(0.05 * torch.randn(p.shape, generator=g))
                        n_b += 1
                    elif "lora_A" in name or "modules_to_save" in name:
                        p.add_((0.5 if name.endswith("bias") else 0.05) * torch.randn(p.shape, generator=g))
            print(f"fresh PEFT {type(pm).__name__}: {n_b} lora_B set non-zero, "
                  f"modules_to_save {sorted(pm.peft_config['default'].modules_to_save)}")
        pm.save_pretrained(out)
        readme = os.path.join(out, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
        if task == "TOKEN_CLS":
            ok &= compare_configs(a.adapter, out)
        got = logits_of(pm, ids, mask, pad)
        save_file({"logits": got.contiguous()}, os.path.join(a.peft_out, "peft_logits.safetensors"))
        print(f"PEFT adapter written to {out}")

    if a.refused:
        if not os.path.exists(os.path.join(a.refused, "adapter_config.json")):
            die(f"{a.refused}: no adapter_config.json")
        try:
            PeftModel.from_pretrained(load_base(), a.refused)
            print(f"{a.refused}: PEFT loaded the head-only adapter (expected a refusal): UNEXPECTED")
            ok = False
        except ValueError as e:  # PEFT 0.21: NoMatchingPeftModuleError, a ValueError
            print(f"head-only adapter refused by PEFT as expected: {type(e).__name__}: {e}")
        if a.refused_merged:
            if "head_only_logits" not in b:
                die(f"{a.batch}: no head_only_logits for --refused-merged")
            hm = auto_cls.from_pretrained(a.refused_merged, dtype=torch.float32, attn_implementation="eager")
            ok &= type(hm).__name__.endswith(suffix) and hm.config.num_labels == K
            ok &= compare(f"lsllama head-only merged model ({type(hm).__name__}) in transformers vs lsllama",
                          logits_of(hm, ids, mask, pad), b["head_only_logits"], a.tol)

    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
