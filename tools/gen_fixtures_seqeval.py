"""Reference entity-level NER metrics made by seqeval (default mode: conlleval-compatible chunking).

Writes tests/fixtures/seqeval/cases.json: cases of gold and predicted tag sequences (IOB2, IOB1, BIOES, typed
or without a type as in biomedical corpora ("B", "I", "O": seqeval's type "_"), "B-" with an empty type, types
with dashes, and malformed ones: I- without B-, type switches inside a chunk, E- without B-, S- inside a chunk,
bare tags, odd tags such as "X", ".", "OTHER", non-ASCII first characters), each with seqeval's results:

- "report": classification_report(output_dict=True), per type and "micro avg" / "macro avg" / "weighted avg"
  with keys precision, recall, f1-score, support (NaN written as null: seqeval's macro average over no types);
- "report_text": classification_report(digits=4) text, where seqeval can print one (it fails with no types);
- "precision", "recall", "f1": precision_score / recall_score / f1_score (default average "micro");
- "accuracy": accuracy_score (null for no words: seqeval raises ZeroDivisionError);
- "entities": get_entities(tags) of single sentences: [type, start, end] with **end inclusive**.

Tags are stored as ids into the case's "names"; "sent_len" splits the concatenated "gold" / "pred" ids into
sentences. Deterministic (fixed seed); rerunning it rewrites the same bytes.
"""
import argparse
import json
import math
import os
import random
import warnings
from importlib.metadata import version

from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPES = ["PER", "LOC", "ORG", "MISC"]


# ---------------------------------------------------------------------------------------------- gold spans

def random_spans(rng, n, types, density=0.3):
    """Random non-overlapping (type, start, end exclusive) spans over n words; adjacent spans happen."""
    spans, i = [], 0
    while i < n:
        if rng.random() < density:
            length = min(n - i, 1 + int(rng.expovariate(0.9)))
            spans.append((rng.choice(types), i, i + length))
            i += length
        else:
            i += 1
    return spans


def tag(prefix, t):
    """A tag: prefix and type joined by '-'; a type of None is no type at all ("B", as in biomedical corpora)."""
    return prefix if t is None else f"{prefix}-{t}"


def encode(spans, n, scheme):
    """Spans -> well-formed tags of a scheme."""
    tags = ["O"] * n
    prev_end, prev_type = -1, object()
    for t, s, e in spans:
        if scheme == "iob2":
            tags[s:e] = [tag("B", t)] + [tag("I", t)] * (e - s - 1)
        elif scheme == "iob1":  # B- only where a chunk directly follows one of its type
            first = "B" if (prev_end == s and prev_type == t) else "I"
            tags[s:e] = [tag(first, t)] + [tag("I", t)] * (e - s - 1)
        elif scheme == "bioes":
            tags[s:e] = [tag("S", t)] if e - s == 1 else [tag("B", t)] + [tag("I", t)] * (e - s - 2) + [tag("E", t)]
        prev_end, prev_type = e, t
    return tags


# ---------------------------------------------------------------------------------------------- corruption

def vocabulary(scheme, types):
    prefixes = {"iob2": "BI", "iob1": "BI", "bioes": "BIES"}[scheme]
    return ["O"] + [tag(p, t) for p in prefixes for t in types]


def corrupt(rng, tags, scheme, types):
    """Tagger-like errors and malformed sequences, applied a few at a time."""
    tags = list(tags)
    n = len(tags)
    if n == 0:
        return tags
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(n)
        kind = rng.randrange(8)
        if kind == 0:  # any tag of the scheme: I- without B-, E- without B-, S- inside a chunk, ...
            tags[i] = rng.choice(vocabulary(scheme, types))
        elif kind == 1 and tags[i] != "O" and (tags[i][1:2] == "-" or None in types):  # type switch (B-PER I-LOC)
            tags[i] = tag(tags[i][0], rng.choice(types))
        elif kind == 2 and tags[i][:1] == "B":  # I- without B-
            tags[i] = "I" + tags[i][1:]
        elif kind == 3:  # drop a chunk's tag
            tags[i] = "O"
        elif kind == 4:  # extend the previous chunk by one word
            if i > 0 and tags[i - 1] != "O":
                tags[i] = "I" + tags[i - 1][1:]
        elif kind == 5:  # stray bare tag
            tags[i] = rng.choice(["B", "I", "E", "S"] if scheme == "bioes" else ["B", "I"])
        elif kind == 6:  # spurious single-word entity
            t = rng.choice(types)
            tags[i] = tag("S" if scheme == "bioes" else "B", t)
        elif kind == 7 and scheme == "bioes" and tags[i][:1] in ("I", "B"):  # E- / S- in the middle
            tags[i] = rng.choice("ES") + tags[i][1:]
    return tags


# ---------------------------------------------------------------------------------------------- cases

def make_sentences(rng, n_sent, scheme, *, gold_types=TYPES, pred_types=TYPES, pred_mode="corrupt",
                   gold_mode="normal", max_len=16):
    gold, pred = [], []
    for k in range(n_sent):
        n = 0 if rng.random() < 0.04 else rng.randint(1, max_len)
        if gold_mode == "all_o" or rng.random() < 0.1:  # sentences that are all O
            g = ["O"] * n
        else:
            g = encode(random_spans(rng, n, gold_types), n, scheme)
            if rng.random() < 0.08:  # malformed gold too: seqeval chunks it the same way
                g = corrupt(rng, g, scheme, gold_types)
        if pred_mode == "all_o" or (pred_mode == "corrupt" and rng.random() < 0.05):  # empty predictions
            p = ["O"] * n
        elif pred_mode == "random":
            p = encode(random_spans(rng, n, pred_types), n, scheme)
        else:
            p = corrupt(rng, g, scheme, pred_types)
        gold.append(g)
        pred.append(p)
    return gold, pred


ODD_TAGS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "B", "I", "E", "S", "X", ".", "OTHER",
            "B-", "I-", "B-PER-X", "BPER", "IPER", "\u00c9PER", "\u00c9-PER", "X-LOC", "O-PER", "PER"]


def odd_sentences(rng, n_sent):
    """Tags outside the schemes: prefixes without rules, '.', types with '-', non-ASCII first characters."""
    gold, pred = [], []
    for _ in range(n_sent):
        n = rng.randint(0, 9)
        gold.append([rng.choice(ODD_TAGS) for _ in range(n)])
        pred.append([t if rng.random() < 0.6 else rng.choice(ODD_TAGS) for t in gold[-1]])
    # "X" after a sentence opens no chunk (same type "_" as the separator "O"), yet B-LOC closes one: seqeval
    # gives it the start of the last chunk opened, in the sentence before, which differs between gold and pred.
    gold += [["B-PER", "O"], ["X", "B-LOC"], ["O", "X", "I-PER"]]
    pred += [["O", "B-PER"], ["X", "B-LOC"], ["O", "X", "I-PER"]]
    return gold, pred


def numbers(x):
    """numpy scalars -> float/int; NaN -> None (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: numbers(v) for k, v in x.items()}
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def run_case(name, gold, pred, rng, extra_names=(), n_entity_sentences=12):
    names = sorted({t for s in gold + pred for t in s} | set(extra_names))
    rng.shuffle(names)  # ids are arbitrary; the C side must not rely on an order
    index = {t: i for i, t in enumerate(names)}
    pred_index = dict(index)
    if name == "odd_tags":  # a second id for "O" in the predictions: accuracy compares strings, not ids
        pred_index["O"] = len(names)
        names.append("O")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(gold, pred, output_dict=True)
        try:
            text = classification_report(gold, pred, digits=4)
        except ValueError:  # max() of no type names
            text = None
        try:
            acc = accuracy_score(gold, pred)
        except ZeroDivisionError:
            acc = None
        case = {
            "name": name,
            "names": names,
            "sent_len": [len(s) for s in gold],
            "gold": [index[t] for s in gold for t in s],
            "pred": [pred_index[t] for s in pred for t in s],
            "precision": numbers(precision_score(gold, pred)),
            "recall": numbers(recall_score(gold, pred)),
            "f1": numbers(f1_score(gold, pred)),
            "accuracy": acc,
            "report": numbers(report),
            "report_text": text,
            "entities": [],
        }
        picks = range(len(gold)) if name == "odd_tags" else range(min(n_entity_sentences, len(gold)))
        for s in picks:
            for tags in (gold[s], pred[s]):
                case["entities"].append({"tags": tags, "entities": [list(e) for e in get_entities(tags)]})
    # Cross-check the dict report against the scalar calls.
    if case["report"]["micro avg"]["precision"] != case["precision"]:
        raise AssertionError(name)
    return case


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "seqeval"))
    args = ap.parse_args()
    rng = random.Random(20240611)
    cases = []
    for scheme, n in (("iob2", 300), ("iob1", 200), ("bioes", 250)):
        cases.append(run_case(scheme, *make_sentences(rng, n, scheme), rng))
    cases.append(run_case("pred_all_o", *make_sentences(rng, 40, "iob2", pred_mode="all_o"), rng))
    cases.append(run_case("gold_all_o", *make_sentences(rng, 40, "iob2", gold_mode="all_o", pred_mode="random"),
                          rng))
    cases.append(run_case("pred_extra_types",
                          *make_sentences(rng, 60, "bioes", gold_types=["PER", "LOC"], pred_types=TYPES), rng))
    g, _ = make_sentences(rng, 20, "iob2", gold_mode="all_o")
    cases.append(run_case("all_o", g, [list(s) for s in g], rng, extra_names=["B-PER", "I-PER"]))
    cases.append(run_case("odd_tags", *odd_sentences(rng, 80), rng))
    # Tags without a type (biomedical corpora: B I O, B I O E S), which seqeval scores as the type "_", alone
    # and mixed with "B-" (empty type, also "_"), "B-_", typed tags and types with dashes ("B-ORG-X": "ORG-X").
    for scheme, n in (("iob2", 120), ("iob1", 80), ("bioes", 100)):
        cases.append(run_case(scheme + "_untyped", *make_sentences(rng, n, scheme, gold_types=[None],
                                                                   pred_types=[None]), rng))
    mixed = [None, "", "_", "PER", "ORG-X", "A-B-C"]
    cases.append(run_case("mixed_untyped", *make_sentences(rng, 120, "bioes", gold_types=mixed, pred_types=mixed),
                          rng))
    # The file of issue 11 (word, tag per line), with a tagger's predictions.
    cases.append(run_case("issue11_example", [["B", "O", "B", "I", "O"], ["O", "O", "B"]],
                          [["B", "O", "B", "B", "O"], ["O", "B", "I"]], rng))
    doc = {"seqeval_version": version("seqeval"), "made_by": "tools/gen_fixtures_seqeval.py", "cases": cases}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "cases.json")
    with open(path, "w", encoding="utf-8") as f:  # one key per line, values compact: small, diffable
        f.write('{"seqeval_version": %s, "made_by": %s, "cases": [\n' % (json.dumps(doc["seqeval_version"]),
                                                                          json.dumps(doc["made_by"])))
        for i, case in enumerate(cases):
            body = ",\n ".join(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
                               for k, v in case.items())
            f.write("{" + body + "}" + (",\n" if i + 1 < len(cases) else "\n"))
        f.write("]}\n")
    print("wrote", path, os.path.getsize(path), "bytes,", len(cases), "cases")


if __name__ == "__main__":
    main()
