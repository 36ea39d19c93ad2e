#!/usr/bin/env python3
"""What a CPU user gets from transformers + PEFT at a model's scale: a
random-weight LlamaForSequenceClassification in float32, in the shape of
Llama-3.2-1B (or the tiny self-test shape of bench/make_synthetic_gguf.py;
llama2-7b needs some 30 GB in float32),
wrapped in PEFT LoRA (r=12, alpha=32, dropout 0.1 on q_proj and v_proj, as
bench_train), trained for a few steps with AdamW on SST-2 sentences, shuffled
and packed into batches of about --batch-tokens real tokens (right-padded to
the longest sentence of the batch, with an attention mask).

  python3 bench/hf_scale_train.py [--shape llama3.2-1b|llama2-7b|tiny] [--steps 2]
      [--batch-tokens 512] [--tsv FILE] [--tokenizer GGUF|DIR] [--threads N]

The first step warms up and is not timed, as in bench_train; tokens/s counts
real tokens (padding excluded) over the timed steps. Peak RSS is this
process's ru_maxrss. Prints a few lines like bench_train's, then one JSON line.
"""
import argparse
import csv
import json
import os
import random
import resource
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("LSLLAMA_CACHE", os.path.expanduser("~/.cache/lsllama"))
SHAPES = {  # as bench/make_synthetic_gguf.py
    "llama3.2-1b": dict(hidden_size=2048, num_hidden_layers=16, intermediate_size=8192, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, tie_word_embeddings=True),
    "llama2-7b": dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=11008, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, rope_theta=10000.0, tie_word_embeddings=False),
    "tiny": dict(hidden_size=256, num_hidden_layers=2, intermediate_size=512, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=32000, rope_theta=10000.0, tie_word_embeddings=False),
}


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        ti, li = header.index("sentence"), header.index("label")
        return [(r[ti], int(r[li])) for r in reader]


def load_tokenizer(path):
    """(encode: text -> ids with the tokenizer's special tokens, pad id, vocabulary size) from a GGUF file, a
    SentencePiece tokenizer.model or a folder with tokenizer.json."""
    if path.endswith(".model"):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=path)
        bos = [sp.bos_id()] if sp.bos_id() >= 0 else []
        return (lambda t: bos + sp.encode(t)), max(sp.unk_id(), 0), sp.get_piece_size()
    if os.path.isfile(path):
        d, name = os.path.split(os.path.abspath(path))
        tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    else:
        tok = AutoTokenizer.from_pretrained(path)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return (lambda t: tok(t)["input_ids"]), pad, len(tok)


def current_rss_mb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024.0
    except (OSError, StopIteration):
        return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=SHAPES, default="llama3.2-1b")
    ap.add_argument("--steps", type=int, default=2, help="timed steps, after one warm-up step")
    ap.add_argument("--batch-tokens", type=int, default=512)
    ap.add_argument("--tsv", default=os.path.join(ROOT, "..", "shared", "data", "sst2", "train.tsv"))
    ap.add_argument("--tokenizer", help="a GGUF file holding a tokenizer, a SentencePiece tokenizer.model or a folder "
                    "with tokenizer.json (default: SmolLM2's GGUF for llama3.2-1b, the Llama 2 tokenizer.model for "
                    "the 32000-token shapes)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    shape = SHAPES[a.shape]
    if not a.tokenizer:
        a.tokenizer = (os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf") if shape["vocab_size"] > 32000
                       else os.path.join(ROOT, "..", "shared", "models", "llama2-tokenizer", "tokenizer.model"))
    encode, pad_id, n_vocab = load_tokenizer(a.tokenizer)
    if n_vocab > shape["vocab_size"]:
        sys.exit(f"{a.tokenizer}: {n_vocab} tokens do not fit the {a.shape} shape's vocabulary of {shape['vocab_size']}")
    rows = read_tsv(a.tsv)
    random.Random(a.seed).shuffle(rows)
    # batches of whole sentences, about batch_tokens real tokens each (lsllama's packing limit)
    batches, cur, cur_tokens, i = [], [], 0, 0
    while len(batches) < a.steps + 1 and i < len(rows):
        text, label = rows[i]
        ids = encode(text)[:a.max_length]
        n = len(ids)
        if cur and cur_tokens + n > a.batch_tokens:
            batches.append(cur)
            cur, cur_tokens = [], 0
        cur.append((ids, label))
        cur_tokens += n
        i += 1
    if len(batches) < a.steps + 1:
        sys.exit(f"{a.tsv}: too few sentences for {a.steps + 1} batches")

    t0 = time.perf_counter()
    cfg = LlamaConfig(**shape, rms_norm_eps=1e-5, max_position_embeddings=4096, num_labels=2, pad_token_id=pad_id,
                      initializer_range=0.02)
    model = LlamaForSequenceClassification(cfg).to(torch.float32)
    lcfg = LoraConfig(task_type="SEQ_CLS", r=12, lora_alpha=32, lora_dropout=0.1, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(model, lcfg)
    model.train()
    t_build = time.perf_counter() - t0
    rss_built_mb = current_rss_mb()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    tokens, padded, seconds, losses = 0, 0, 0.0, []
    for s, batch in enumerate(batches):
        width = max(len(ids) for ids, _ in batch)  # right padding, as LlamaForSequenceClassification expects
        enc = {"input_ids": torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch]),
               "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])}
        labels = torch.tensor([y for _, y in batch])
        t1 = time.perf_counter()
        opt.zero_grad()
        out = model(**enc, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t1
        losses.append(out.loss.item())
        print(f"step {s}{' (warm-up)' if s == 0 else ''}: {len(batch)} sentences, "
              f"{int(enc['attention_mask'].sum())} tokens ({enc['input_ids'].numel()} padded), "
              f"loss {losses[-1]:.4f}, {dt:.2f} s", file=sys.stderr, flush=True)
        if s == 0:
            continue
        seconds += dt
        tokens += int(enc["attention_mask"].sum())
        padded += enc["input_ids"].numel()

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    n_base = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    print(f"model            random {a.shape} LlamaForSequenceClassification, float32, {n_base / 1e9:.2f} B frozen "
          f"parameters, PEFT LoRA r=12 on q,v (built in {t_build:.1f} s)")
    print(f"torch            {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"steps            {a.steps} timed (after 1 warm-up), batches of <= {a.batch_tokens} tokens, "
          f"{tokens} tokens ({padded} with padding)")
    print(f"loss             {losses[0]:.4f} at the warm-up step, {losses[-1]:.4f} at the last")
    print(f"throughput       {tokens / seconds:.0f} training tokens/s ({seconds / a.steps:.2f} s per step)")
    print(f"peak RSS         {rss_mb:.0f} MB ({rss_built_mb:.0f} MB resident once the model was built)")
    print(json.dumps({"shape": a.shape, "steps": a.steps, "train_tokens": tokens, "padded_tokens": padded,
                      "train_seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
                      "peak_rss_mb": round(rss_mb),
                      "built_rss_mb": round(rss_built_mb), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
