#!/usr/bin/env python3
"""Interop check between lsllama's adapter / merged-model files and transformers + PEFT.

Run by tests/test_peft_interop.c (ctest), which writes the inputs; can be run by hand:

  python3 tools/interop_peft.py --base BASE_DIR --adapter ADAPTER_DIR --batch BATCH.safetensors
                                [--merged MERGED_DIR] [--peft-out DIR] [--tol 1e-3]

  BASE_DIR        Hugging Face folder of the base model (config.json + safetensors)
  ADAPTER_DIR     adapter written by lsllama (adapter_config.json, adapter_model.safetensors, label_map.json)
  BATCH           safetensors with tokens I32 [T] and seq_start I32 [n+1] (packed, no padding) and
                  logits F32 [n, K]: lsllama's logits for that batch with the adapter
  MERGED_DIR      optional: merged model written by lsllama (config.json + model.safetensors); its logits in
                  transformers (no PEFT) must match too
  --peft-out DIR  optional, the reverse direction: perturb the loaded PEFT model's LoRA and score weights
                  (fixed seed), save it with PeftModel.save_pretrained into DIR/peft_adapter and write its logits for
                  the batch to DIR/peft_logits.safetensors (the C test then loads that adapter and compares)

How the adapter is loaded: transformers takes num_labels (and the label names) from the *base* config, not from
the adapter, so we read K, id2label and label2id from lsllama's label_map.json and pass them to
AutoModelForSequenceClassification.from_pretrained(base, num_labels=K, id2label=..., label2id=...,
ignore_mismatched_sizes=True), then PeftModel.from_pretrained(model, adapter_dir). PEFT replaces the score head by
the adapter's (modules_to_save), so a base that already has a score head of another size (ignore_mismatched_sizes)
or none (a CausalLM checkpoint: transformers initialises one) does not matter.

The batch is right-padded with a pad id that does not occur in it; transformers pools the last non-pad token
(LlamaForSequenceClassification), which is lsllama's "last" pooling with causal attention. Logits must agree
within tol * max(1, max|logits|). Exit status 0 on agreement, 1 on a mismatch, 2 on bad arguments/files.
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


def padded(tokens, seq_start, vocab_size):
    present = set(tokens.tolist())
    pad = next((i for i in range(vocab_size) if i not in present), None)
    if pad is None:
        sys.exit("interop_peft: every token id occurs in the batch; no pad id is free")
    lens = [int(seq_start[i + 1] - seq_start[i]) for i in range(len(seq_start) - 1)]
    ids = torch.full((len(lens), max(lens)), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for s, n in enumerate(lens):
        ids[s, :n] = tokens[seq_start[s]:seq_start[s] + n].long()
        mask[s, :n] = 1
    return ids, mask, pad


def logits_of(model, ids, mask, pad):
    model.config.pad_token_id = pad
    inner = getattr(model, "get_base_model", None)  # PeftModel: the wrapped transformers model reads its config
    if inner is not None:
        inner().config.pad_token_id = pad
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits.float()


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
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()

    import peft
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    print(f"transformers {transformers.__version__}, peft {peft.__version__}, torch {torch.__version__}")
    torch.manual_seed(0)
    b = load_file(a.batch)
    tokens, seq_start, want = b["tokens"], b["seq_start"], b["logits"]
    with open(os.path.join(a.adapter, "label_map.json")) as f:
        lm = json.load(f)
    K = int(lm["num_labels"])
    id2label = {int(k): v for k, v in lm["id2label"].items()}
    with open(os.path.join(a.adapter, "adapter_config.json")) as f:
        task = json.load(f).get("task_type", "SEQ_CLS")
    if task != "SEQ_CLS":
        sys.exit(f"interop_peft: task_type {task} is not checked by this script")

    base = AutoModelForSequenceClassification.from_pretrained(
        a.base, num_labels=K, id2label=id2label, label2id=lm["label2id"], dtype=torch.float32,
        attn_implementation="eager", ignore_mismatched_sizes=True)
    ids, mask, pad = padded(tokens, seq_start, base.config.vocab_size)
    model = PeftModel.from_pretrained(base, a.adapter)
    ok = compare("lsllama adapter in PEFT vs lsllama", logits_of(model, ids, mask, pad), want, a.tol)

    if a.merged:
        merged = AutoModelForSequenceClassification.from_pretrained(a.merged, dtype=torch.float32,
                                                                    attn_implementation="eager")
        ok &= merged.config.num_labels == K and merged.config.id2label == id2label
        ok &= compare("lsllama merged model in transformers vs lsllama", logits_of(merged, ids, mask, pad), want,
                      a.tol)

    if a.peft_out:
        # Reverse direction: change every trainable tensor, let PEFT save the adapter, record its logits.
        g = torch.Generator().manual_seed(1234)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name or "modules_to_save" in name:
                    p.add_(0.05 * torch.randn(p.shape, generator=g))
        out = os.path.join(a.peft_out, "peft_adapter")
        model.save_pretrained(out)
        readme = os.path.join(out, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
        got = logits_of(model, ids, mask, pad)
        save_file({"logits": got.contiguous()}, os.path.join(a.peft_out, "peft_logits.safetensors"))
        print(f"PEFT adapter written to {out}")

    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
