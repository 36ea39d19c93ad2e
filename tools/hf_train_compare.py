"""Train the same LS-LLaMA classifier with transformers + PEFT on exactly the
batches lsllama used, for a side-by-side comparison of dev accuracy and
training throughput.

lsllama writes its batches with `lsllama train ... --dump-batches FILE` (one
line per micro-batch: the optimiser step, then the 0-based indices of the
training examples, i.e. the data rows of the TSV in file order). This script
loads the same GGUF (transformers dequantizes it to f32), wraps it in PEFT
LoRA with the same settings, and replays those batches in order with AdamW,
the same linear warm-up schedule and clipping, right-padded batches with an
attention mask (LlamaForSequenceClassification pools the last non-pad
token). It reports training tokens/s (real tokens, padding excluded, timed
over the optimiser steps only) and dev accuracy / macro-F1 at the end, as
JSON on the last line of stdout, with the precision that ran, torch's CPU
capability, its threads and the matrix-product kernels torch dispatches to
("gemm", seen by a separate probe process with MKL's and oneDNN's verbose
logs on).

--bf16-autocast does what transformers' Trainer does with bf16=True on a
CPU. Trainer leaves mixed precision to accelerate (TrainingArguments sets
mixed_precision="bf16"); accelerate's Accelerator.prepare_model then wraps the
model's forward, loss included (the model computes it from labels), in
torch.autocast(device_type="cpu", dtype=torch.bfloat16) with no further
arguments, and converts bf16 outputs back to f32 (convert_outputs_to_fp32).
Backward, gradient clipping and AdamW run outside autocast on the f32 master
weights; no gradient scaler (only fp16 has one). Evaluation goes through the
same wrapped forward, so it runs under autocast too. (Read in transformers
5.24 trainer.py / training_args.py and accelerate 1.15 accelerator.py,
utils/modeling.py get_mixed_precision_context_manager.)
"""
import argparse
import contextlib
import csv
import json
import os
import re
import subprocess
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup


def read_tsv(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        ti, li = header.index("sentence"), header.index("label")
        for r in reader:
            rows.append((r[ti], int(r[li])))
    return rows


def macro_f1(gold, pred, k):
    f1s = []
    for c in range(k):
        tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred) if g == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / k


# One linear layer's forward and backward, in the precision asked for, for gemm_probe.
PROBE = r"""
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
dim, bf16 = int(sys.argv[2]), sys.argv[3] == "1"
lin = torch.nn.Linear(dim, dim, bias=False)
x = torch.randn(128, dim, requires_grad=True)
with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
    y = lin(x)
y.float().sum().backward()
"""


def gemm_probe(threads, dim, bf16):
    """The matrix-product kernels torch runs for a linear layer of width dim on this CPU, e.g.
    "mkl:SGEMM" or "onednn:matmul:brg_matmul:avx10_1_512_amx". Run in a child process because
    MKL_VERBOSE / ONEDNN_VERBOSE are read at library start and print on the C stdout, which must
    not mix with this script's JSON lines."""
    env = dict(os.environ, MKL_VERBOSE="1", ONEDNN_VERBOSE="1")
    try:
        out = subprocess.run([sys.executable, "-c", PROBE, str(threads), str(dim), "1" if bf16 else "0"],
                             env=env, capture_output=True, text=True, timeout=300).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return [f"unknown ({type(e).__name__})"]
    seen = []
    for line in out.splitlines():
        m = re.match(r"MKL_VERBOSE (\w+)\(", line)
        if m:
            name = "mkl:" + m.group(1)
        elif line.startswith("onednn_verbose") and ",exec,cpu," in line:
            # onednn_verbose[,v1],primitive,exec,cpu,KIND,IMPLEMENTATION,...
            f = line.split(",")
            i = f.index("exec")
            name = f"onednn:{f[i + 2]}:{f[i + 3]}"
        else:
            continue
        if name not in seen:
            seen.append(name)
    return seen or ["unknown (no MKL or oneDNN call logged)"]


def cpu_support():
    """What torch itself detects (torch.cpu._is_*_supported: private, so only where present)."""
    have = {}
    for key in ("avx2", "avx512", "avx512_bf16", "amx_tile"):
        f = getattr(torch.cpu, f"_is_{key}_supported", None)
        if f is not None:
            have[key] = bool(f())
    return have


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--batches", required=True, help="file written by lsllama train --dump-batches")
    ap.add_argument("--steps", type=int, required=True, help="optimiser steps to replay")
    ap.add_argument("--total-steps", type=int, required=True, help="schedule length lsllama used")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup-ratio", type=float, default=0.06)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--lora-r", type=int, default=12)
    ap.add_argument("--lora-alpha", type=float, default=32)
    ap.add_argument("--lora-dropout", type=float, default=0.1)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda to replay the accuracy run on a GPU (f32, no TF32)")
    ap.add_argument("--bf16-autocast", action="store_true",
                    help="forward and loss under torch.autocast(bfloat16), as Trainer's bf16=True; "
                         "master weights, gradients and AdamW stay f32")
    ap.add_argument("--no-eval", action="store_true",
                    help="skip the final dev evaluation (dev_accuracy and dev_macro_f1 null): on a small CPU it "
                         "takes minutes and a throughput benchmark does not need it")
    ap.add_argument("--eval-every", type=int, default=0,
                    help="also evaluate on dev after every N optimiser steps (one JSON line each on stdout)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # Full f32 matrix products on a GPU as on the CPU: TF32 would round inputs to 10-bit mantissas.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev_name = args.device
    device_type = torch.device(dev_name).type

    def autocast():
        # accelerate's get_mixed_precision_context_manager for bf16: the device's type, bfloat16, no other
        # arguments (so cache_enabled keeps its default)
        if args.bf16_autocast:
            return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(**kw):
        # accelerate's convert_outputs_to_fp32: bf16 outputs (loss, logits) come back as f32
        with autocast():
            out = model(**kw)
        return (None if out.loss is None else out.loss.float()), out.logits.float()

    d, name = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(d, gguf_file=name, num_labels=2,
                                                               torch_dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    cfg = LoraConfig(task_type="SEQ_CLS", r=args.lora_r, lora_alpha=args.lora_alpha,
                     lora_dropout=args.lora_dropout, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(model, cfg).to(dev_name)
    train, dev = read_tsv(args.train), read_tsv(args.dev)

    steps = {}
    with open(args.batches) as f:
        for line in f:
            parts = line.split()
            if parts:
                steps.setdefault(int(parts[0]), []).append([int(x) for x in parts[1:]])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    warmup = int(-(-args.warmup_ratio * args.total_steps // 1))
    sched = get_linear_schedule_with_warmup(opt, warmup, args.total_steps)

    def encode(texts):
        return tok(texts, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt",
                   add_special_tokens=True).to(dev_name)

    def evaluate():
        model.eval()
        preds = []
        with torch.no_grad():
            for i in range(0, len(dev), 32):
                chunk = dev[i:i + 32]
                _, logits = forward(**encode([t for t, _ in chunk]))
                preds.extend(logits.argmax(-1).tolist())
        model.train()
        gold = [y for _, y in dev]
        acc = sum(int(g == p) for g, p in zip(gold, preds)) / len(gold)
        return acc, macro_f1(gold, preds, 2)

    model.train()
    tokens, seconds = 0, 0.0
    for step in range(args.steps):
        if step not in steps:
            sys.exit(f"{args.batches}: no batches for step {step}")
        t0 = time.perf_counter()
        opt.zero_grad()
        micro = steps[step]
        loss_sum = 0.0
        for ids in micro:
            enc = encode([train[i][0] for i in ids])
            labels = torch.tensor([train[i][1] for i in ids], device=dev_name)
            loss, _ = forward(**enc, labels=labels)
            (loss / len(micro)).backward()
            loss_sum += loss.item()
            tokens += int(enc["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        opt.step()
        sched.step()
        seconds += time.perf_counter() - t0
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step + 1}/{args.steps} loss {loss_sum / len(micro):.4f} "
                  f"{tokens / seconds:.0f} tokens/s", file=sys.stderr, flush=True)
        done = step + 1
        if args.eval_every and done % args.eval_every == 0 and done < args.steps:
            acc, f1 = evaluate()
            print(json.dumps({"step": done, "train_loss": round(loss_sum / len(micro), 6),
                              "dev_accuracy": round(acc, 6), "dev_macro_f1": round(f1, 6)}), flush=True)

    acc, f1 = (None, None) if args.no_eval else evaluate()
    info = {"precision": "bf16-autocast" if args.bf16_autocast else "f32", "threads": torch.get_num_threads(),
            "device": args.device, "torch": torch.__version__}
    if device_type == "cpu":
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["cpu_support"] = cpu_support()
        info["gemm"] = gemm_probe(torch.get_num_threads(), model.config.hidden_size, args.bf16_autocast)

    def r4(x):
        return None if x is None else round(x, 4)

    print(json.dumps({"steps": args.steps, "train_tokens": tokens, "train_seconds": round(seconds, 2),
                      "tokens_per_s": round(tokens / seconds, 1), "dev_accuracy": r4(acc), "dev_macro_f1": r4(f1),
                      **info}))


if __name__ == "__main__":
    main()
