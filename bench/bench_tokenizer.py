#!/usr/bin/env python3
"""Hugging Face fast tokenizer throughput on SST-2 train, one thread.
usage: bench_tokenizer.py TOKENIZER_DIR_OR_GGUF [SST2_TSV] [PASSES]
Run with TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 (bench_tokenizer.sh does)."""
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
import transformers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
path = sys.argv[1]
tsv = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/sst2/train.tsv"
passes = int(sys.argv[3]) if len(sys.argv) > 3 else 5
if path.endswith(".gguf"):
    tk = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
else:
    tk = AutoTokenizer.from_pretrained(path)
backend = tk.backend_tokenizer
texts = []
with open(tsv, "rb") as f:
    for i, line in enumerate(f.read().split(b"\n")):
        if i and line:
            texts.append(line.rsplit(b"\t", 1)[0].decode("utf-8", "replace"))
nbytes = sum(len(t.encode()) for t in texts)
print("hf: %s, %d sentences, %d bytes" % (path, len(texts), nbytes))
for mode in ["encode_batch", "encode"]:
    best = 0
    for p in range(passes):
        t0 = time.perf_counter()
        if mode == "encode_batch":
            encs = backend.encode_batch(texts, add_special_tokens=True)
            ntok = sum(len(e.ids) for e in encs)
        else:
            ntok = 0
            for t in texts:
                ntok += len(backend.encode(t, add_special_tokens=True).ids)
        dt = time.perf_counter() - t0
        best = max(best, ntok / dt)
        print("hf %s pass %d: %d tokens in %.3f s = %.0f tokens/s" % (mode, p + 1, ntok, dt, ntok / dt))
    print("hf %s best: %.0f tokens/s" % (mode, best))
