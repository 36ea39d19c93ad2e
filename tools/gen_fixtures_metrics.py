"""Reference classification metrics made by scikit-learn: what `lsllama eval` prints for sequence classifiers.

Writes tests/fixtures/metrics/cases.json: cases of gold and predicted labels, each with scikit-learn's

- "report": classification_report(labels=range(k), target_names=names, output_dict=True) with its defaults
  (zero_division="warn", which scores 0.0): per class precision / recall / f1-score / support, then
  single-label: "accuracy", "macro avg", "weighted avg"; multi-label: "micro avg", "macro avg",
  "weighted avg", "samples avg";
- "report_text": the same report as text, digits=4 (what the table starts with);
- "accuracy": accuracy_score (multi-label: subset accuracy);
- "confusion": confusion_matrix(labels=range(k)) [gold][predicted] (single-label only).

Single-label cases: random labels with classes never predicted and never gold (the zero-division rule
matters), binary, a class neither gold nor predicted, names with non-ASCII characters and names longer than
"weighted avg". Multi-label cases (label indicator matrices, "gold"/"pred" row-major n x k): a label never gold,
one never predicted, rows with no label at all, and data with no gold label anywhere (the weighted average's
weights all zero). Labels are ids 0..k-1; "names" is null where the report uses the ids ("0", "1", ...).
Deterministic (fixed seeds); rerunning it rewrites the same bytes.
"""
import argparse
import json
import os
import warnings
from importlib.metadata import version

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def case(name, k, gold, pred, names=None):
    labels = list(range(k))
    multi = gold.ndim == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning: zero_division="warn" scores 0.0
        kw = dict(labels=labels, target_names=names)
        c = {
            "name": name,
            "multi_label": multi,
            "k": k,
            "names": names,
            "n": int(len(gold)),
            "gold": [int(x) for x in gold.ravel()],
            "pred": [int(x) for x in pred.ravel()],
            "accuracy": float(accuracy_score(gold, pred)),
            "report": classification_report(gold, pred, output_dict=True, **kw),
            "report_text": classification_report(gold, pred, digits=4, **kw),
        }
    if not multi:
        c["confusion"] = confusion_matrix(gold, pred, labels=labels).tolist()
    return c


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
        cases.append(case(f"random_k{k}_n{n}", k, gold, pred))
    # multi-label: a label never gold, one never predicted, rows with no label at all
    for k, n in [(3, 40), (5, 200), (4, 9)]:
        gold = (rng.random((n, k)) < 0.35).astype(int)
        flip = rng.random((n, k)) < 0.25
        pred = np.where(flip, 1 - gold, gold)
        if k >= 4:
            gold[:, k - 1] = 0
            pred[:, 0] = 0
        cases.append(case(f"multi_k{k}_n{n}", k, gold, pred))

    rng = np.random.default_rng(11)
    gold = rng.integers(0, 2, 80)
    pred = np.where(rng.random(80) < 0.8, gold, 1 - gold)
    cases.append(case("binary_named", 2, gold, pred, ["negative", "positive"]))
    # class 3 is neither gold nor predicted; names wider than "weighted avg", one non-ASCII
    gold = rng.integers(0, 3, 150)
    pred = np.where(rng.random(150) < 0.5, gold, rng.integers(0, 3, 150))
    cases.append(case("names_unused_class", 4, gold, pred,
                      ["Zürich weather", "sports", "a very long label name", "never seen"]))
    # every prediction one class
    gold = rng.integers(0, 3, 60)
    cases.append(case("one_class_predicted", 3, gold, np.full(60, 2), ["a", "b", "c"]))
    # multi-label with names; and with no gold label anywhere (weighted average: weights all zero)
    gold = (rng.random((60, 4)) < 0.4).astype(int)
    pred = np.where(rng.random((60, 4)) < 0.2, 1 - gold, gold)
    cases.append(case("multi_named", 4, gold, pred, ["toxic", "obscene", "insult", "threat"]))
    gold = np.zeros((12, 3), dtype=int)
    pred = (rng.random((12, 3)) < 0.3).astype(int)
    cases.append(case("multi_no_gold", 3, gold, pred))

    doc = {"sklearn_version": version("scikit-learn"), "made_by": "tools/gen_fixtures_metrics.py", "cases": cases}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "cases.json")
    with open(path, "w", encoding="utf-8") as f:  # one case per line: small, diffable
        f.write('{"sklearn_version": %s, "made_by": %s, "cases": [\n' % (json.dumps(doc["sklearn_version"]),
                                                                          json.dumps(doc["made_by"])))
        for i, c in enumerate(cases):
            f.write(json.dumps(c, ensure_ascii=False, separators=(",", ":")) + (",\n" if i + 1 < len(cases) else "\n"))
        f.write("]}\n")
    print("wrote", path, os.path.getsize(path), "bytes,", len(cases), "cases")


if __name__ == "__main__":
    main()
