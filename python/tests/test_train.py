"""lsllama.train against `lsllama train` with the same options (adapter bytes), its progress records, and
stopping from the callback."""
import json

import pytest

import lsllama
from conftest import MODEL, TOKENIZER, conll_sentences, run_cli, sst2_rows

ADAPTER_FILES = ["adapter_model.safetensors", "adapter_config.json", "label_map.json"]


def same_files(a, b):
    for f in ADAPTER_FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.fixture(scope="module")
def sst_files(work):
    tr, dv = work / "t_train.tsv", work / "t_dev.tsv"
    tr.write_text("sentence\tlabel\n" + "".join("%s\t%s\n" % r for r in sst2_rows("train.tsv", 48)), encoding="utf-8")
    dv.write_text("sentence\tlabel\n" + "".join("%s\t%s\n" % r for r in sst2_rows("dev.tsv", 16)), encoding="utf-8")
    return tr, dv


def test_sequence_run_equals_cli(work, sst_files):
    tr, dv = sst_files
    opts = ["--max-steps", 3, "--batch-tokens", 256, "--eval-every", 2, "--lora-r", 4, "--lora-alpha", 8,
            "--lora-targets", "q,k,v,o", "--lr", "5e-4", "--seed", 7, "--pool", "mean", "--mask", "bidirectional"]
    run_cli("train", MODEL, "--tokenizer", TOKENIZER, "--train", tr, "--dev", dv, "--out", work / "cli_seq",
            "--no-progress", *opts)
    records = []
    res = lsllama.train(str(MODEL), train=tr, dev=dv, out=work / "py_seq", tokenizer=str(TOKENIZER), max_steps=3,
                        batch_tokens=256, eval_every=2, lora_r=4, lora_alpha=8, lora_targets="q,k,v,o", lr=5e-4,
                        seed=7, pool="mean", mask="bidirectional", callback=records.append, progress=False)
    assert res["steps"] == 3 and res["best_step"] in (2, 3)
    same_files(work / "cli_seq" / "final", work / "py_seq" / "final")
    same_files(work / "cli_seq" / "best", work / "py_seq" / "best")
    # the records are the log's: losses as log.jsonl prints them
    log = [json.loads(l) for l in (work / "py_seq" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "epoch" in r]
    evals = [r for r in records if r.get("eval") == "dev"]
    assert [r["step"] for r in steps] == [1, 2, 3] and [r["step"] for r in evals] == [2, 3]
    assert records[-1] == {"step": 3, "end": True, "total_steps": 3}
    assert ["%.6f" % r["loss"] for r in steps] == ["%.6f" % r["loss"] for r in log if "lr" in r]
    printed = [(str(l["lr"]), l["grad_norm"]) for l in (json.loads(x, parse_float=str) for x in
               (work / "py_seq" / "log.jsonl").read_text().splitlines()) if "lr" in l]
    assert [("%.6g" % r["lr"], "%.5f" % r["grad_norm"]) for r in steps] == printed
    assert [(r["accuracy"], r["best"]) for r in evals] == [(r["accuracy"], r["best"]) for r in log
                                                            if r.get("eval") == "dev"]


def test_token_run_equals_cli(work):
    sents = conll_sentences(30)
    f = work / "t_ner.txt"
    f.write_text("\n".join("".join("%s %s\n" % wt for wt in zip(w, t)) for w, t in sents), encoding="utf-8")
    run_cli("train", MODEL, "--tokenizer", TOKENIZER, "--task", "token", "--train", f, "--out", work / "cli_tok",
            "--max-steps", 3, "--batch-tokens", 256, "--lr", "1e-3", "--no-progress")
    lsllama.train(str(MODEL), train=f, out=work / "py_tok", tokenizer=str(TOKENIZER), task="token", max_steps=3,
                  batch_tokens=256, lr=1e-3)
    same_files(work / "cli_tok" / "final", work / "py_tok" / "final")


def test_callback_stops_training(work, sst_files):
    tr, _ = sst_files
    seen = []

    def cb(r):
        seen.append(r)
        return not (r.get("step") == 2 and "epoch" in r)  # False after the second step

    res = lsllama.train(str(MODEL), train=tr, out=work / "stopped", tokenizer=str(TOKENIZER), max_steps=6,
                        batch_tokens=256, callback=cb)
    assert res["steps"] == 2 and seen[-1] == {"step": 2, "end": True, "total_steps": 6}
    assert (work / "stopped" / "final" / "adapter_model.safetensors").exists()
    log = [json.loads(l) for l in (work / "stopped" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "lr" in r] == [1, 2]

    class Boom(Exception):
        pass

    def bad(r):
        raise Boom("from the callback")

    with pytest.raises(Boom):
        lsllama.train(str(MODEL), train=tr, out=work / "boom", tokenizer=str(TOKENIZER), max_steps=4,
                      batch_tokens=256, callback=bad)
    assert [json.loads(l)["step"] for l in (work / "boom" / "log.jsonl").read_text().splitlines()
            if "lr" in l] == [1]


def test_errors(work, sst_files):
    tr, _ = sst_files
    with pytest.raises(lsllama.ArgumentError, match="lr"):
        lsllama.train(str(MODEL), train=tr, out=work / "e1", tokenizer=str(TOKENIZER), lr=-1)
    with pytest.raises(lsllama.ArgumentError, match="head_dropout"):
        lsllama.train(str(MODEL), train=tr, out=work / "e1", tokenizer=str(TOKENIZER), head_dropout=0.2)
    with pytest.raises(lsllama.ArgumentError, match="nope"):
        lsllama.train(str(MODEL), train=tr, out=work / "e1", tokenizer=str(TOKENIZER), lora_targets="q,nope")
    with pytest.raises(lsllama.FileIOError, match="missing.tsv"):
        lsllama.train(str(MODEL), train=work / "missing.tsv", out=work / "e2", tokenizer=str(TOKENIZER))
    bad = work / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood row\t1\nno label column here\n", encoding="utf-8")
    with pytest.raises(lsllama.DataError) as e:
        lsllama.train(str(MODEL), train=bad, out=work / "e3", tokenizer=str(TOKENIZER), max_steps=1)
    assert "bad.tsv:3" in str(e.value)
    _, _, err = run_cli("train", MODEL, "--tokenizer", TOKENIZER, "--train", bad, "--out", work / "e4",
                        "--max-steps", 1, check=False)
    assert str(e.value) in err
    # a folder holding a run is refused unless overwrite
    with pytest.raises(lsllama.ArgumentError):
        lsllama.train(str(MODEL), train=tr, out=work / "stopped", tokenizer=str(TOKENIZER), max_steps=1)


def test_progress_bar(work, sst_files, capsys):
    tr, _ = sst_files
    lsllama.train(str(MODEL), train=tr, out=work / "bar", tokenizer=str(TOKENIZER), max_steps=2, batch_tokens=256,
                  progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "train" in err  # tqdm's bar on stderr, at its last step


def test_stop_then_resume_equals_uninterrupted(work, sst_files):
    """A run stopped by its callback after step 2 (with checkpoints) and resumed to step 4 writes the adapter
    of an uninterrupted 4-step run (the library's bit-identical resume)."""
    tr, dv = sst_files
    common = dict(train=tr, dev=dv, tokenizer=str(TOKENIZER), max_steps=4, batch_tokens=256, eval_every=2,
                  checkpoint_every=1, lr=5e-4)
    lsllama.train(str(MODEL), out=work / "whole", **common)
    res = lsllama.train(str(MODEL), out=work / "parts", callback=lambda r: r.get("step") != 2 or "epoch" not in r,
                        **common)
    assert res["steps"] == 2
    res = lsllama.train(str(MODEL), out=work / "parts", resume=True, **common)
    assert res["steps"] == 4
    same_files(work / "whole" / "final", work / "parts" / "final")
    same_files(work / "whole" / "best", work / "parts" / "best")
