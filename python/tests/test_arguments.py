"""Arguments of the wrong type or shape: an ArgumentError naming the argument, never a crash (None reaching the
library as a NULL path used to end the process with a segfault), never a silent reinterpretation (a lone str
where a list is expected used to be read one character at a time), and nothing created on disk."""
import glob
import os
import tempfile

import pytest

import lsllama
from lsllama import _core
from conftest import MODEL, TOKENIZER, conll_sentences, sst2_rows


def test_none_paths(work, seq_adapter):
    with pytest.raises(lsllama.ArgumentError, match="model must be a path.*None"):
        lsllama.pipeline(None, adapter=seq_adapter, tokenizer=TOKENIZER)
    with pytest.raises(lsllama.ArgumentError, match="model must be a path.*None"):
        lsllama.pipeline(None)
    with pytest.raises(lsllama.ArgumentError, match="adapter is an empty path"):
        lsllama.pipeline(MODEL, adapter="", tokenizer=TOKENIZER)
    with pytest.raises(lsllama.ArgumentError, match="tokenizer must be a path.*int"):
        lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=3)


def test_train_arguments_checked_first(work):
    train = work / "args.tsv"
    train.write_text("sentence\tlabel\n" + "".join("%s\t%s\n" % r for r in sst2_rows("train.tsv", 8)),
                     encoding="utf-8")
    out = work / "args_run"
    bad = [(dict(model=None), "model must be a path"), (dict(lora_targets=None), "lora_targets must be a str"),
           (dict(lora_targets=123), "lora_targets must be a str"), (dict(word_column=2 ** 40), "word_column"),
           (dict(lr="fast"), "lr must be in"), (dict(callback=5), "callback must be callable"),
           (dict(threads=1.7), "threads must be an int"), (dict(train=None), "train must be a path"),
           (dict(seed=True), "seed must be an int")]
    for kw, msg in bad:
        args = dict(model=MODEL, train=train, out=out, tokenizer=TOKENIZER, max_steps=1, batch_tokens=128)
        args.update(kw)
        with pytest.raises(lsllama.ArgumentError, match=msg):
            lsllama.train(args.pop("model"), **args)
        assert not out.exists(), kw  # refused before the run folder was made


def test_lone_string_where_a_list_is_expected(seq_adapter, token_adapter):
    clf = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER)
    for call in (lambda: clf.predict("abc"), lambda: clf(None), lambda: clf(123), lambda: clf([b"bytes"]),
                 lambda: clf(["ok", None])):
        with pytest.raises(lsllama.ArgumentError, match="texts|inputs"):
            call()
    with pytest.raises(lsllama.ArgumentError, match="wrap a single text in a list"):
        clf.predict("abc")
    ner = lsllama.pipeline(MODEL, adapter=token_adapter, tokenizer=TOKENIZER)
    with pytest.raises(lsllama.ArgumentError, match="texts must be a list of str"):
        ner.tag_words("John visited Paris")
    with pytest.raises(lsllama.ArgumentError):
        ner(None)
    assert clf(["a film"])[0]["label"] in clf.labels  # the right shapes still work


def test_estimators_refuse_lone_strings_and_mismatched_lengths(work, seq_adapter):
    rows = sst2_rows("train.tsv", 16)
    X, y = [t for t, _ in rows], [int(l) for _, l in rows]
    est = lsllama.LSClassifier(str(MODEL), tokenizer=str(TOKENIZER), lora_r=4, max_steps=1, batch_tokens=128,
                               threads=1)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "lsllama_fit_*")))
    est.fit(X, y)
    est.fit(X, y)  # a refit replaces the first fit's temporary folder
    mine = set(glob.glob(os.path.join(tempfile.gettempdir(), "lsllama_fit_*"))) - before
    assert len(mine) == 1, mine
    with pytest.raises(lsllama.ArgumentError, match="wrap a single text"):
        est.predict("dull")
    with pytest.raises(lsllama.ArgumentError, match="X has 4 texts, y 1 labels"):
        est.score(X[:4], [1])
    # fit: a lone str is not read one character at a time, for X, y and the dev set alike
    with pytest.raises(lsllama.ArgumentError, match=r"^X must be a list of str, got str \(wrap a single text"):
        est.fit("ab", [0, 1])
    with pytest.raises(lsllama.ArgumentError, match=r"^y must be a list of labels, got str"):
        est.fit(X[:2], "01")
    with pytest.raises(lsllama.ArgumentError, match=r"^X_dev must be a list of str, got str"):
        est.fit(X, y, X_dev="ab", y_dev=[0, 1])
    with pytest.raises(lsllama.ArgumentError, match=r"^X_dev has 2 texts, y_dev 1 labels"):
        est.fit(X, y, X_dev=X[:2], y_dev=[0])
    # load() of a folder save() did not write: the library's class for a missing file, and the way to open it
    with pytest.raises(lsllama.FileIOError, match=r"no lsllama_estimator.json.*lsllama.pipeline\(model, adapter="):
        lsllama.LSClassifier.load(seq_adapter)  # a PEFT adapter folder `lsllama train` wrote
    del est
    import gc
    gc.collect()
    assert not (set(glob.glob(os.path.join(tempfile.gettempdir(), "lsllama_fit_*"))) - before)

    sents = conll_sentences(8)
    tok = lsllama.LSTokenClassifier(str(MODEL), tokenizer=str(TOKENIZER), lora_r=4, max_steps=1,
                                    batch_tokens=128, threads=1, out_dir=str(work / "args_tok"))
    tok.fit([w for w, _ in sents], [t for _, t in sents])
    with pytest.raises(lsllama.ArgumentError, match=r"X\[0\] must be a list of words.*split the sentence"):
        tok.predict(["John visited Paris"])
    with pytest.raises(lsllama.ArgumentError, match="y\\[0\\] is a str"):
        tok.fit([["John"]], ["B-PER"])
    with pytest.raises(lsllama.ArgumentError, match=r"^X must be a list of sentences"):
        tok.fit("John", [["B-PER"]])
    with pytest.raises(lsllama.ArgumentError, match=r"^y_dev must be a list of labels, got str"):
        tok.fit([["John"]], [["B-PER"]], X_dev=[["John"]], y_dev="B-PER")


def test_options_of_the_other_kind_of_classifier_refused(seq_adapter, token_adapter):
    """transformers' pipelines take these keywords per task; one given to the other kind is refused by name, not
    ignored."""
    clf = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER)
    for kw in (dict(aggregation_strategy="max"), dict(ignore_labels=[])):
        with pytest.raises(lsllama.ArgumentError, match="apply to token classifiers; this adapter classifies"):
            clf("a film", **kw)
    ner = lsllama.pipeline(MODEL, adapter=token_adapter, tokenizer=TOKENIZER)
    for kw in (dict(top_k=1), dict(top_k=None), dict(function_to_apply="none")):
        with pytest.raises(lsllama.ArgumentError, match="apply to sequence classifiers; this adapter tags tokens"):
            ner("John visited Paris", **kw)
    assert ner("John visited Paris", aggregation_strategy="first") == ner("John visited Paris")
    assert clf("a film", top_k=1) == clf("a film", top_k=1, function_to_apply="softmax")


def test_threads_do_not_outlive_their_call(seq_adapter):
    default = _core.DEFAULT_THREADS
    n = 2 if default == 1 else 1  # a count other than the default
    lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, threads=n)
    assert lsllama._lib.omp_get_max_threads() == n
    lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER)
    assert lsllama._lib.omp_get_max_threads() == default
    clf = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, threads=n)
    clf(["a film"])
    other = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER)
    other(["a film"])
    assert lsllama._lib.omp_get_max_threads() == default
