#!/usr/bin/env python3
"""Checks a folder written by `lsllama merge` against transformers / tokenizers.

    merge_parity.py tokenizer FOLDER TEXTS.txt IDS.txt
        IDS.txt: `lsllama tokenize`'s output for the lines of TEXTS.txt (the
        ids lsllama gives). tokenizers' Tokenizer.from_file(FOLDER/tokenizer.json)
        and transformers' AutoTokenizer.from_pretrained(FOLDER) must give the
        same ids.
    merge_parity.py seq FOLDER TEXTS.txt PREDICT.jsonl
        transformers' pipeline("text-classification", model=FOLDER) on the
        lines of TEXTS.txt in one batch of all of them (right padding with
        the folder's pad id) must give `lsllama predict FOLDER`'s labels and
        probabilities (PREDICT.jsonl) within 1e-4 (softmax, or sigmoid for a
        multi_label_classification problem_type, as the pipeline chooses).
    merge_parity.py token FOLDER TEXTS.txt PREDICT.jsonl
        pipeline("token-classification", model=FOLDER, ignore_labels=[]) per
        token; for each word of lsllama's output its first token's label must
        be lsllama's tag, and each entity's score the mean of those tokens'
        probabilities within 1e-4.
Exit status 0 when everything agrees; messages name the first disagreements.
"""
import json
import sys

import torch


def fail(msgs):
    for m in msgs[:10]:
        print(m)
    print(f"{len(msgs)} disagreements")
    sys.exit(1)


def check_tokenizer(folder, texts_path, ids_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    import os
    tk = Tokenizer.from_file(f"{folder}/tokenizer.json")
    # a merged folder (with tokenizer_config.json) also through transformers
    at = AutoTokenizer.from_pretrained(folder) if os.path.exists(f"{folder}/tokenizer_config.json") else None
    bad, n = [], 0
    texts = [l.rstrip("\n") for l in open(texts_path, encoding="utf-8", errors="replace")]
    ids = [[int(x) for x in l.split()] for l in open(ids_path)]
    assert len(texts) == len(ids), (len(texts), len(ids))
    for text, i in zip(texts, ids):
        r = {"text": text, "ids": i}
        n += 1
        a = tk.encode(r["text"]).ids
        b = at(r["text"])["input_ids"] if at else a
        if a != r["ids"] or b != r["ids"]:
            bad.append(f"{r['text']!r}: lsllama {r['ids'][:16]} tokenizers {a[:16]} transformers {b[:16]}")
    if bad:
        fail(bad)
    print(f"tokenizer: {n} texts, ids identical (tokenizers and transformers)")


def check_seq(folder, texts_path, pred_path):
    from transformers import pipeline
    texts = [l.rstrip("\n") for l in open(texts_path, encoding="utf-8")]
    preds = [json.loads(l) for l in open(pred_path, encoding="utf-8")]
    assert len(texts) == len(preds), (len(texts), len(preds))
    pipe = pipeline("text-classification", model=folder, dtype=torch.float32, top_k=None, device="cpu")
    outs = pipe(texts, batch_size=len(texts))
    multi = pipe.model.config.problem_type == "multi_label_classification"
    bad, worst = [], 0.0
    for t, o, p in zip(texts, outs, preds):
        probs = {d["label"]: d["score"] for d in o}
        for k, v in p["probabilities"].items():
            worst = max(worst, abs(probs[k] - v))
            if abs(probs[k] - v) > 1e-4:
                bad.append(f"{t!r}: label {k}: transformers {probs[k]:.6f} lsllama {v:.6f}")
        if multi:
            hf_labels = sorted(k for k, v in probs.items() if v > 0.5)
            if hf_labels != sorted(p["labels"]):
                bad.append(f"{t!r}: labels transformers {hf_labels} lsllama {p['labels']}")
        elif max(probs, key=probs.get) != p["label"]:
            bad.append(f"{t!r}: label transformers {max(probs, key=probs.get)} lsllama {p['label']}")
    if bad:
        fail(bad)
    print(f"seq: {len(texts)} texts in one batch, labels equal, probabilities within {worst:.2e}")


def check_token(folder, texts_path, pred_path):
    from transformers import pipeline
    preds = [json.loads(l) for l in open(pred_path, encoding="utf-8")]
    pipe = pipeline("token-classification", model=folder, dtype=torch.float32, ignore_labels=[], device="cpu")
    outs = pipe([p["text"] for p in preds], batch_size=len(preds))
    bad, worst = [], 0.0
    for p, toks in zip(preds, outs):
        # each word's character span in text (words joined by single spaces), its first token
        pos, first = 0, []
        for w in p["words"]:
            start = p["text"].index(w, pos)
            end = start + len(w)
            pos = end
            cand = [t for t in toks if t["end"] > start and t["start"] < end]
            first.append(cand[0] if cand else None)
        for w, (tag, t) in enumerate(zip(p["tags"], first)):
            if t is None or t["entity"] != tag:
                bad.append(f"{p['text']!r} word {w}: transformers {t and t['entity']} lsllama {tag}")
        for e in p["entities"]:
            sc = [first[w]["score"] for w in range(e["word_start"], e["word_end"]) if first[w]]
            m = sum(sc) / max(len(sc), 1)
            worst = max(worst, abs(m - e["score"]))
            if abs(m - e["score"]) > 1e-4:
                bad.append(f"{p['text']!r} entity {e['text']!r}: transformers {m:.6f} lsllama {e['score']:.6f}")
    if bad:
        fail(bad)
    print(f"token: {len(preds)} sentences, word tags equal, entity scores within {worst:.2e}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "tokenizer":
        check_tokenizer(*sys.argv[2:5])
    elif mode == "seq":
        check_seq(*sys.argv[2:5])
    elif mode == "token":
        check_token(*sys.argv[2:5])
    else:
        sys.exit(f"unknown mode {mode}")
