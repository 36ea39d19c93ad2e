#!/usr/bin/env python3
"""Forward throughput of transformers on the batches bench_forward runs: the
base model's final hidden states (no head), float32, no gradients.

  python3 tools/hf_forward_bench.py --model FILE.gguf --ids IDS [--batch-tokens 2048] [--reps 3]
      [--mask causal|bidirectional] [--threads N]
  python3 tools/hf_forward_bench.py --model FILE.gguf --tsv FILE --write-ids IDS [--limit N]

--write-ids encodes the first column of a TSV with a header (SST-2) with the GGUF's tokenizer as transformers
loads it (special tokens added) and writes one id sequence per line, the format `bench_forward --ids` reads, so
both programs run the same ids. The timing run packs consecutive sequences into batches of at most
--batch-tokens real tokens, as bench_forward does; transformers needs them right-padded to the longest sequence
of the batch, with an attention mask, and tokens/s counts real tokens only. --mask bidirectional is
transformers' use_bidirectional_attention, which only Gemma 3 defines. Peak RSS is this process's ru_maxrss
(transformers holds the GGUF's weights dequantized to float32). Prints one JSON line.
"""
import argparse
import csv
import json
import os
import resource
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loading progress bars
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def write_ids(args):
    d, name = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    with open(args.tsv, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    if args.limit:
        rows = rows[:args.limit]
    with open(args.write_ids, "w") as out:
        for r in rows:
            out.write(" ".join(str(i) for i in tok(r[0])["input_ids"]) + "\n")
    print(json.dumps({"sequences": len(rows), "ids": args.write_ids}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--ids", help="one id sequence per line")
    ap.add_argument("--tsv", help="with --write-ids: a TSV whose first column is the text")
    ap.add_argument("--write-ids", help="encode --tsv into this file and stop")
    ap.add_argument("--limit", type=int, default=0, help="with --write-ids: the first N rows only")
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mask", choices=("causal", "bidirectional"), default="causal")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    if args.write_ids:
        if not args.tsv:
            sys.exit("--write-ids needs --tsv")
        return write_ids(args)
    if not args.ids:
        sys.exit("--ids is required (or --tsv with --write-ids)")
    torch.set_num_threads(args.threads)

    with open(args.ids) as f:
        seqs = [[int(x) for x in line.split()] for line in f if line.strip()]
    batches, s = [], 0
    while s < len(seqs):  # bench_forward's packing: consecutive sequences up to batch_tokens
        e, n = s + 1, len(seqs[s])
        while e < len(seqs) and n + len(seqs[e]) <= args.batch_tokens:
            n += len(seqs[e])
            e += 1
        batches.append(seqs[s:e])
        s = e

    d, name = os.path.split(os.path.abspath(args.model))
    t0 = time.perf_counter()
    lm = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    base = lm.model
    if args.mask == "bidirectional":
        if not hasattr(base.config, "use_bidirectional_attention"):
            sys.exit(f"--mask bidirectional: transformers' {type(base.config).__name__} has no "
                     "use_bidirectional_attention")
        cfg = type(base.config)(**{**base.config.to_dict(), "use_bidirectional_attention": True})
        bidir = type(base)(cfg).float()
        missing, unexpected = bidir.load_state_dict(base.state_dict(), strict=False)
        if [k for k in missing if "rotary" not in k] or unexpected:
            sys.exit(f"bidirectional copy: missing {missing}, unexpected {unexpected}")
        base = bidir
    base.eval()
    load_s = time.perf_counter() - t0

    inputs = []
    for b in batches:
        width = max(len(x) for x in b)
        ids = torch.zeros(len(b), width, dtype=torch.long)
        mask = torch.zeros(len(b), width, dtype=torch.long)
        for i, x in enumerate(b):
            ids[i, :len(x)] = torch.tensor(x)
            mask[i, :len(x)] = 1
        inputs.append((ids, mask))
    n_tok = sum(len(x) for x in seqs)
    best = float("inf")
    with torch.no_grad():
        for _ in range(args.reps):
            t1 = time.perf_counter()
            for ids, mask in inputs:
                base(input_ids=ids, attention_mask=mask)
            best = min(best, time.perf_counter() - t1)
    padded = sum(int(ids.numel()) for ids, _ in inputs)
    print(json.dumps({"sequences": len(seqs), "tokens": n_tok, "padded_tokens": padded, "batches": len(batches),
                      "mask": args.mask, "load_s": round(load_s, 2), "forward_s": round(best, 3),
                      "tokens_per_s": round(n_tok / best, 1), "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
