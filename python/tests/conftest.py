"""Fixtures of the lsllama package's tests: the tiny stories260K model, small data cut from ../shared/data, and
adapters trained for 3 steps with the command-line tool.

The reference tool is ``lsllama`` as installed with the package (``lsllama.cli_path()``: the same build of the
library, its own C path through it); set LSLLAMA_CLI to compare against another build (build/lsllama).
LSLLAMA_SHARED names the shared models and data folder (default: ../shared beside the repository).
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

import lsllama

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LSLLAMA_SHARED", REPO.parent / "shared"))
MODEL = SHARED / "models" / "stories260K" / "stories260K.bin"
TOKENIZER = SHARED / "models" / "stories260K" / "tok512.bin"
SST2 = SHARED / "data" / "sst2"
CONLL = SHARED / "data" / "conll2003"


def cli_path():
    return os.environ.get("LSLLAMA_CLI") or lsllama.cli_path()


def run_cli(*args, input=None, check=True):
    """Run the lsllama tool; returns (returncode, stdout, stderr) as text."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    p = subprocess.run([cli_path(), *map(str, args)], input=input, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError("lsllama %s failed (%d):\n%s" % (" ".join(map(str, args)), p.returncode, p.stderr))
    return p.returncode, p.stdout, p.stderr


def sst2_rows(split, n, start=0):
    """(text, label) of SST-2 rows start..start+n (header skipped)."""
    with open(SST2 / split, encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    rows = [l.split("\t") for l in lines if l][start:start + n]
    return [(t, lab) for t, lab in rows]


def conll_sentences(n):
    """The first n sentences of CoNLL-2003 train as (words, tags)."""
    out, words, tags = [], [], []
    with open(CONLL / "train.txt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("-DOCSTART-"):
                continue
            if not line.strip():
                if words:
                    out.append((words, tags))
                    words, tags = [], []
                    if len(out) == n:
                        break
                continue
            cols = line.split(" ")
            words.append(cols[0])
            tags.append(cols[-1])
    return out


@pytest.fixture(scope="session", autouse=True)
def _inputs_present():
    for p in (MODEL, TOKENIZER, SST2 / "train.tsv", CONLL / "train.txt"):
        assert p.exists(), "%s is missing (LSLLAMA_SHARED=%s)" % (p, SHARED)
    assert os.access(cli_path(), os.X_OK), "no lsllama tool at %s" % cli_path()


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("lsllama")


def _train(work, name, data_name, data_text, *options):
    data = work / data_name
    data.write_text(data_text, encoding="utf-8")
    out = work / name
    run_cli("train", MODEL, "--tokenizer", TOKENIZER, "--train", data, "--out", out, "--max-steps", 3,
            "--batch-tokens", 256, "--no-progress", *options)
    return out / "final"


@pytest.fixture(scope="session")
def seq_adapter(work):
    rows = sst2_rows("train.tsv", 40)
    return _train(work, "seq", "train.tsv", "sentence\tlabel\n" + "".join("%s\t%s\n" % r for r in rows))


@pytest.fixture(scope="session")
def multilabel_adapter(work):
    rows = sst2_rows("train.tsv", 40)
    labs = ["pos", "neg", "pos,neg"]
    text = "sentence\tlabel\n" + "".join("%s\t%s\n" % (t, labs[i % 3]) for i, (t, _) in enumerate(rows))
    return _train(work, "multi", "multi.tsv", text, "--multi-label")


@pytest.fixture(scope="session")
def token_adapter(work):
    sents = conll_sentences(40)
    text = "\n".join("".join("%s %s\n" % wt for wt in zip(w, t)) for w, t in sents)
    # a higher learning rate so that 3 steps move the tags off one class
    return _train(work, "ner", "ner.txt", text, "--task", "token", "--lr", "5e-2")


@pytest.fixture(scope="session")
def seq_texts():
    return [t for t, _ in sst2_rows("dev.tsv", 24)]


def cli_jsonl(stdout):
    """JSONL lines with numbers kept as the printed strings."""
    return [json.loads(l, parse_float=str) for l in stdout.splitlines() if l.strip()]
