#!/usr/bin/env python3
"""Reference hidden states of the real Gemma 3 270M (the Q4_K_M GGUF scripts/setup.sh --tests fetches), as
transformers computes them loading the same GGUF.

Writes into OUT (default build/generated/gemma3):

  expected.safetensors
    tokens I32 [T], seq_start I32 [9]          the first 8 SST-2 dev sentences, BOS first (Gemma's tokenizer.json,
                                               converted from the GGUF by tools/gen_fixtures_tokenizer.py)
    hidden_causal, hidden_bidirectional        F32 [T, 640] final-norm hidden states, each sentence alone
    long_tokens I32 [1200]                     BOS then SST-2 dev sentences end to end, cut at 1,200 tokens:
                                               longer than the sliding window (512)
    long_hidden_causal, long_hidden_bidirectional F32 [1200, 640]

Bidirectional: Gemma3TextConfig built with use_bidirectional_attention=True (every layer bidirectional, the
sliding layers' window halved to 512 // 2 + 1 = 257, as a config.json with the key gives), the same weights.
Eager attention, float32. The C side is tests/test_gemma3.c (tolerance 1e-3 of the largest magnitude).

About a minute on 2 cores. Run: python3 tools/gen_fixtures_gemma3.py [--model PATH.gguf] [--out DIR]
"""

import argparse
import csv
import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoModelForCausalLM, Gemma3TextConfig, Gemma3TextModel  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("LSLLAMA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lsllama")
LONG = 1200

transformers.logging.set_verbosity_error()


def hidden(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy().astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(CACHE, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--tokenizer", default=os.path.join(REPO, "build", "generated", "tokenizer", "tok", "gemma3",
                                                         "tokenizer.json"))
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "sst2", "dev.tsv"))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "generated", "gemma3"))
    a = ap.parse_args()
    if not os.path.exists(a.model):
        sys.exit(f"{a.model}: missing (run scripts/setup.sh --tests)")
    torch.set_num_threads(os.cpu_count() or 1)
    tok = Tokenizer.from_file(a.tokenizer)
    with open(a.data, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t")][1:]
    texts = [r[0].strip() for r in rows]
    seqs = [tok.encode(t).ids for t in texts[:8]]
    assert all(s[0] == 2 for s in seqs), "Gemma's tokenizer puts BOS (2) first"
    long_ids = [2]
    for t in texts:
        long_ids += tok.encode(t, add_special_tokens=False).ids
        if len(long_ids) >= LONG:
            break
    long_ids = long_ids[:LONG]

    lm = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.model), gguf_file=os.path.basename(a.model),
                                              dtype=torch.float32, attn_implementation="eager").eval()
    causal = lm.model
    cfg = causal.config
    assert cfg.sliding_window == 512 and cfg.query_pre_attn_scalar == 256, (cfg.sliding_window,
                                                                            cfg.query_pre_attn_scalar)
    bcfg = Gemma3TextConfig(**{**cfg.to_dict(), "use_bidirectional_attention": True})
    bcfg._attn_implementation = "eager"
    assert bcfg.sliding_window == 257
    bidir = Gemma3TextModel(bcfg).float().eval()
    missing, unexpected = bidir.load_state_dict(causal.state_dict(), strict=False)
    assert not [k for k in missing if "rotary" not in k] and not unexpected, (missing, unexpected)

    out = {
        "tokens": np.array([t for s in seqs for t in s], dtype=np.int32),
        "seq_start": np.cumsum([0] + [len(s) for s in seqs]).astype(np.int32),
        "hidden_causal": np.concatenate([hidden(causal, s) for s in seqs]),
        "hidden_bidirectional": np.concatenate([hidden(bidir, s) for s in seqs]),
        "long_tokens": np.array(long_ids, dtype=np.int32),
        "long_hidden_causal": hidden(causal, long_ids),
        "long_hidden_bidirectional": hidden(bidir, long_ids),
    }
    # the bidirectional model differs (the mask reaches every layer), and the window matters on the long one
    assert np.abs(out["hidden_causal"] - out["hidden_bidirectional"]).max() > 1e-2
    os.makedirs(a.out, exist_ok=True)
    save_file(out, os.path.join(a.out, "expected.safetensors"))
    print(f"{len(seqs)} sentences ({len(out['tokens'])} tokens) and one of {LONG} tokens in {a.out}")


if __name__ == "__main__":
    main()
