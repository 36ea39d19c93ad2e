"""Sequence classifiers: lsllama.pipeline against `lsllama predict` on the same texts, and transformers'
text-classification output conventions (top_k, function_to_apply)."""
import math

import pytest

import lsllama
from conftest import MODEL, TOKENIZER, cli_jsonl, run_cli


def cli_predict(work, adapter, texts):
    f = work / ("texts_%d.txt" % len(texts))
    f.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    _, out, _ = run_cli("predict", MODEL, "--tokenizer", TOKENIZER, "--adapter", adapter, "--input", f,
                        "--no-progress")
    rows = cli_jsonl(out)
    assert len(rows) == len(texts)
    return rows


@pytest.fixture(scope="module")
def clf(seq_adapter):
    with lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, threads=1) as p:
        yield p


def test_probabilities_equal_cli_bit_for_bit(work, seq_adapter, clf, seq_texts):
    cli = cli_predict(work, seq_adapter, seq_texts)
    raw = clf.predict(seq_texts)
    assert clf.task == "text-classification" and clf.labels == ["0", "1"] and not clf.multi_label
    for c, r, t in zip(cli, raw, seq_texts):
        assert c["text"] == t
        assert c["label"] == r["label"]
        assert list(c["probabilities"]) == clf.labels
        assert [c["probabilities"][k] for k in clf.labels] == ["%.6f" % p for p in r["probabilities"]]
    # the probabilities must differ between texts, or the comparison above proves little
    assert len({r["probabilities"][0] for r in raw}) > len(raw) // 2


def test_call_conventions(work, seq_adapter, clf, seq_texts):
    cli = cli_predict(work, seq_adapter, seq_texts)
    raw = clf.predict(seq_texts)
    # one text, top_k not given: [ {label, score} ] with the top label and its probability
    one = clf(seq_texts[0])
    assert isinstance(one, list) and len(one) == 1 and set(one[0]) == {"label", "score"}
    assert one[0]["label"] == cli[0]["label"]
    assert "%.6f" % one[0]["score"] == cli[0]["probabilities"][cli[0]["label"]]
    assert one[0]["score"] == max(raw[0]["probabilities"])
    # a list, top_k not given: one dict per text
    many = clf(seq_texts)
    assert [m["label"] for m in many] == [c["label"] for c in cli]
    # top_k=None: every label by descending score, a list per text
    full = clf(seq_texts, top_k=None)
    assert len(full) == len(seq_texts)
    for f, r in zip(full, raw):
        assert [d["score"] for d in f] == sorted(r["probabilities"], reverse=True)
        assert sorted(d["label"] for d in f) == clf.labels
    # top_k=1 on one text: a list holding the best dict
    assert clf(seq_texts[0], top_k=1) == [full[0][0]]
    assert clf(seq_texts[:2], top_k=1) == [[full[0][0]], [full[1][0]]]


def test_function_to_apply(clf, seq_texts):
    raw = clf.predict(seq_texts[:4])
    for r, text in zip(raw, seq_texts[:4]):
        z = r["logits"]
        none = {d["label"]: d["score"] for d in clf(text, top_k=None, function_to_apply="none")}
        assert [none[k] for k in clf.labels] == z
        sig = {d["label"]: d["score"] for d in clf(text, top_k=None, function_to_apply="sigmoid")}
        assert [sig[k] for k in clf.labels] == pytest.approx([1 / (1 + math.exp(-v)) for v in z], rel=1e-12)
        e = [math.exp(v - max(z)) for v in z]
        soft = [v / sum(e) for v in e]
        assert r["probabilities"] == pytest.approx(soft, rel=1e-6)
    with pytest.raises(lsllama.ArgumentError):
        clf(seq_texts[0], function_to_apply="tanh")


def test_multilabel_defaults_to_sigmoid(work, multilabel_adapter, seq_texts):
    cli = cli_predict(work, multilabel_adapter, seq_texts)
    with lsllama.pipeline(MODEL, adapter=multilabel_adapter, tokenizer=TOKENIZER, threads=1) as p:
        assert p.multi_label and p.labels == ["neg", "pos"]
        raw = p.predict(seq_texts)
        full = p(seq_texts, top_k=None)
    for c, r, f in zip(cli, raw, full):
        assert c["labels"] == r["labels"] and r["label"] is None
        assert [c["probabilities"][k] for k in p.labels] == ["%.6f" % v for v in r["probabilities"]]
        by = {d["label"]: d["score"] for d in f}
        assert [by[k] for k in p.labels] == r["probabilities"]  # sigmoid: the library's probabilities
        assert [by[k] for k in p.labels] == pytest.approx([1 / (1 + math.exp(-v)) for v in r["logits"]])


def test_texts_with_newlines_quotes_and_unicode(clf):
    texts = ["a \"quoted\"\tfilm", "Zürich — ünïcødé 🙂", "two\nlines", "x"]
    one_by_one = [clf.predict([t])[0]["probabilities"] for t in texts]
    assert [r["probabilities"] for r in clf.predict(texts)] == one_by_one


def test_empty_inputs(clf):
    assert clf([]) == [] and clf.predict([]) == []
    with pytest.raises(lsllama.FormatError, match="<texts>:2: empty text"):
        clf(["fine", ""])
