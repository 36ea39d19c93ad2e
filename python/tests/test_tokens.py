"""Token classifiers (NER): per-word tags against `lsllama predict`, and transformers' token-classification
grouping (aggregation_strategy="first"; the others against `lsllama serve`'s /ner, which tests/test_serve.py
checks against transformers)."""
import http.client
import json
import signal
import subprocess
import time

import pytest

import lsllama
from lsllama.pipeline import _group_words
from conftest import MODEL, TOKENIZER, cli_jsonl, cli_path, conll_sentences, run_cli


@pytest.fixture(scope="module")
def ner(token_adapter):
    with lsllama.pipeline(MODEL, adapter=token_adapter, tokenizer=TOKENIZER, threads=1) as p:
        yield p


@pytest.fixture(scope="module")
def texts():
    return [" ".join(w) for w, _ in conll_sentences(60)[40:]]


def test_tags_equal_cli(work, token_adapter, ner, texts):
    f = work / "ner_in.txt"
    f.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    _, out, _ = run_cli("predict", MODEL, "--tokenizer", TOKENIZER, "--adapter", token_adapter, "--input", f,
                        "--no-progress")
    cli = cli_jsonl(out)
    assert ner.task == "token-classification"
    got = ner.tag_words(texts)
    n_entities = 0
    for c, g, t in zip(cli, got, texts):
        assert c["words"] == g["words"] == t.split()
        assert c["tags"] == g["tags"]
        assert [t[s:e] for s, e in zip(g["start"], g["end"])] == g["words"]
        groups = {(x["start"], x["end"], x["entity_group"]): x for x in ner(t)}
        for e in c["entities"]:
            # a seqeval chunk that transformers' grouping makes too: same span, type and score as printed
            x = groups.get((e["start"], e["end"], e["type"]))
            if x is not None:
                n_entities += 1
                assert x["word"] == e["text"]
                assert "%.6f" % x["score"] == e["score"]
    assert len({tag for g in got for tag in g["tags"]}) > 1, "the 3-step model tags everything alike"
    assert n_entities > 0


def test_grouping_follows_transformers():
    text = "Angela Merkel visited New York and Paris"
    words = text.split()
    starts = [text.index(w) for w in words]

    def w(tags, scores=None):
        scores = scores or [0.5] * len(tags)
        return [(t, s, st, st + len(x)) for t, s, st, x in zip(tags, scores, starts, words)]

    g = _group_words(text, w(["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-LOC"], [.9, .7, .1, .8, .6, .2, .5]))
    assert [(x["entity_group"], x["word"], x["start"], x["end"]) for x in g] == [
        ("PER", "Angela Merkel", 0, 13), ("O", "visited", 14, 21), ("LOC", "New York", 22, 30),
        ("O", "and", 31, 34), ("LOC", "Paris", 35, 40)]
    assert g[0]["score"] == pytest.approx(0.8) and g[2]["score"] == pytest.approx(0.7)
    # I- after another type starts a group; B- always starts one; I- of the same type continues
    g = _group_words(text, w(["I-PER", "I-PER", "I-LOC", "B-LOC", "B-LOC", "I-LOC", "O"]))
    assert [(x["entity_group"], x["word"]) for x in g] == [
        ("PER", "Angela Merkel"), ("LOC", "visited"), ("LOC", "New"), ("LOC", "York and"), ("O", "Paris")]


def test_call_conventions(ner, texts):
    text = "  Tom   visited\tParis .\nThen Rome "
    r = ner.tag_words([text])[0]
    assert r["words"] == text.split()
    assert [text[s:e] for s, e in zip(r["start"], r["end"])] == r["words"]
    everything = ner(text, ignore_labels=[])
    assert [text[x["start"]:x["end"]] for x in everything] == [x["word"] for x in everything]
    assert sum(len(x["word"].split()) for x in everything) == len(r["words"])
    ents = ner(text)
    assert ents == [x for x in everything if x["entity_group"] != "O"]
    for x in ents:
        assert set(x) == {"entity_group", "score", "word", "start", "end"} and 0 <= x["score"] <= 1
    assert ner(["", "   "]) == [[], []]
    batch = ner(texts[:5])
    assert batch == [ner(t) for t in texts[:5]]
    with pytest.raises(lsllama.ArgumentError, match="average"):
        ner(text, aggregation_strategy="longest")
    # a text the library refuses is named by its position among all the texts, blank ones counted
    with pytest.raises(lsllama.LsllamaError, match=r"<texts>:3: NUL byte"):
        ner(["Tom", "  ", "a\x00b"])


def test_strategies_equal_serve(work, token_adapter, ner, texts):
    """Every aggregation strategy: the pipeline's entities are those of `lsllama serve` /ner (same scores to the
    printed digits), which the C tests compare with transformers' pipeline."""
    port_file = work / "ner_port"
    proc = subprocess.Popen([str(cli_path()), "serve", MODEL, "--tokenizer", TOKENIZER, "--adapter", token_adapter,
                             "--port", "0", "--port-file", str(port_file)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "lsllama serve did not start"
            time.sleep(0.05)
        port = int(port_file.read_text())
        for strategy in ("none", "simple", "first", "average", "max"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/ner", json.dumps({"inputs": texts, "aggregation_strategy": strategy,
                                                     "ignore_labels": []}))
            served = json.loads(conn.getresponse().read(), parse_float=str)
            conn.close()
            got = ner(texts, aggregation_strategy=strategy.upper() if strategy == "max" else strategy,
                      ignore_labels=[])
            for s, g in zip(served, got):
                assert [dict(e, score="%.6f" % e["score"]) for e in g] == s, strategy
            if strategy == "none":
                assert sum(len(g) for g in got) > sum(len(t.split()) for t in texts)  # sub-tokens, not words
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
