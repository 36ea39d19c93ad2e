"""Reference classification metrics made by scikit-learn.

Writes tests/fixtures/metrics/cases.txt: several cases of gold and predicted
labels (random, with classes that are never predicted and never gold, so the
zero-division rule matters), each followed by scikit-learn's accuracy,
per-class precision/recall/F1/support (zero_division=0), macro and weighted
F1. Format per case: "case K N", "gold ...", "pred ...", "accuracy X",
"precision ...", "recall ...", "f1 ...", "support ...", "macro P R F1",
"weighted_f1 X".

Then multi-label cases (label indicator matrices, scikit-learn's
multilabel-indicator definitions: accuracy is subset accuracy): "mlcase K N",
"gold" and "pred" (N x K 0/1, row-major), "accuracy X", "precision ...",
"recall ...", "f1 ...", "support ...", "macro P R F1", "micro P R F1",
"weighted_f1 X".
"""
import argparse
import os

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_multilabel_case(f, k, gold, pred):
    p, r, f1, s = precision_recall_fscore_support(gold, pred, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(gold, pred, average="macro", zero_division=0)
    up, ur, uf, _ = precision_recall_fscore_support(gold, pred, average="micro", zero_division=0)
    wf = f1_score(gold, pred, average="weighted", zero_division=0)
    f.write(f"mlcase {k} {len(gold)}\n")
    f.write("gold " + " ".join(map(str, gold.ravel())) + "\n")
    f.write("pred " + " ".join(map(str, pred.ravel())) + "\n")
    f.write(f"accuracy {accuracy_score(gold, pred):.17g}\n")
    for name, v in (("precision", p), ("recall", r), ("f1", f1), ("support", s)):
        f.write(name + " " + " ".join(f"{x:.17g}" for x in v) + "\n")
    f.write(f"macro {mp:.17g} {mr:.17g} {mf:.17g}\nmicro {up:.17g} {ur:.17g} {uf:.17g}\nweighted_f1 {wf:.17g}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "metrics"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = []
    for k, n in [(2, 50), (3, 200), (5, 300), (4, 7), (6, 120)]:
        gold = rng.integers(0, k, n)
        pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, k, n))
        if k >= 5:  # a class never predicted and one never in gold
            pred[pred == k - 1] = 0
            gold[gold == k - 2] = 1
        cases.append((k, gold, pred))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cases.txt"), "w") as f:
        for k, gold, pred in cases:
            labels = list(range(k))
            p, r, f1, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
            mp, mr, mf, _ = precision_recall_fscore_support(gold, pred, labels=labels, average="macro",
                                                            zero_division=0)
            wf = f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)
            f.write(f"case {k} {len(gold)}\n")
            f.write("gold " + " ".join(map(str, gold)) + "\n")
            f.write("pred " + " ".join(map(str, pred)) + "\n")
            f.write(f"accuracy {accuracy_score(gold, pred):.17g}\n")
            for name, v in (("precision", p), ("recall", r), ("f1", f1), ("support", s)):
                f.write(name + " " + " ".join(f"{x:.17g}" for x in v) + "\n")
            f.write(f"macro {mp:.17g} {mr:.17g} {mf:.17g}\nweighted_f1 {wf:.17g}\n")
        # multi-label: a label never gold, one never predicted, rows with no label at all
        for k, n in [(3, 40), (5, 200), (4, 9)]:
            gold = (rng.random((n, k)) < 0.35).astype(int)
            flip = rng.random((n, k)) < 0.25
            pred = np.where(flip, 1 - gold, gold)
            if k >= 4:
                gold[:, k - 1] = 0
                pred[:, 0] = 0
            write_multilabel_case(f, k, gold, pred)
    print("wrote", os.path.join(args.out, "cases.txt"))


if __name__ == "__main__":
    main()
