"""Errors: each ll_status as its own exception class, carrying the library's message (the one the CLI
prints after "lsllama predict: ")."""
import inspect
import re
import shutil

import pytest

import lsllama
from conftest import MODEL, REPO, TOKENIZER, run_cli, sst2_rows


def cli_message(*args):
    rc, _, err = run_cli(*args, check=False)
    assert rc != 0
    line = [l for l in err.splitlines() if l.startswith("lsllama ")][-1]
    return line.split(": ", 1)[1]


def test_classes_and_codes():
    assert lsllama.ModelFormatError is lsllama.FormatError is lsllama.DataError
    for cls, code in [(lsllama.FileIOError, -1), (lsllama.FormatError, -2), (lsllama.UnsupportedError, -3),
                      (lsllama.ShapeError, -4), (lsllama.ConfigError, -5), (lsllama.OutOfMemoryError, -6),
                      (lsllama.ArgumentError, -7)]:
        assert issubclass(cls, lsllama.LsllamaError) and cls.code == code
    assert issubclass(lsllama.FileIOError, OSError) and issubclass(lsllama.OutOfMemoryError, MemoryError)


def test_missing_model(work, seq_adapter):
    missing = work / "no_such_model.bin"
    with pytest.raises(lsllama.FileIOError) as e:
        lsllama.pipeline(missing, adapter=seq_adapter, tokenizer=TOKENIZER)
    assert str(missing) in str(e.value) and e.value.code == -1
    assert str(e.value) == cli_message("predict", missing, "--tokenizer", TOKENIZER, "--adapter", seq_adapter)


def test_corrupt_model(work, seq_adapter):
    bad = work / "corrupt.bin"
    data = MODEL.read_bytes()
    bad.write_bytes(data[: len(data) // 3])  # truncated: the header promises more tensors than the file holds
    with pytest.raises(lsllama.FormatError) as e:
        lsllama.pipeline(bad, adapter=seq_adapter, tokenizer=TOKENIZER)
    assert str(bad) in str(e.value) and e.value.status == "LL_ERR_FORMAT"
    assert str(e.value) == cli_message("predict", bad, "--tokenizer", TOKENIZER, "--adapter", seq_adapter)


def test_corrupt_adapter(work, seq_adapter):
    bad = work / "bad_adapter"
    shutil.copytree(seq_adapter, bad)
    (bad / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(lsllama.LsllamaError) as e:
        lsllama.pipeline(MODEL, adapter=bad, tokenizer=TOKENIZER)
    assert type(e.value) is lsllama.error_class(e.value.code) and e.value.code < 0
    assert "adapter_model.safetensors" in str(e.value)
    assert str(e.value) == cli_message("predict", MODEL, "--tokenizer", TOKENIZER, "--adapter", bad)


def test_bad_arguments(seq_adapter):
    with pytest.raises(lsllama.ArgumentError, match="base_precision"):
        lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, base_precision="f64")
    with pytest.raises(lsllama.ArgumentError, match="without a classifier"):
        p = lsllama.pipeline(MODEL, tokenizer=TOKENIZER)
        p("text")
    with pytest.raises(lsllama.ArgumentError):
        lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, threads=0)


def test_messages_name_keyword_arguments(tmp_path):
    """The library names options as the tool spells them; a Python caller reads the keyword arguments it passes."""
    tr = tmp_path / "train.tsv"
    tr.write_text("sentence\tlabel\n" + "".join("%s\t%s\n" % r for r in sst2_rows("train.tsv", 16)), encoding="utf-8")
    opts = dict(tokenizer=str(TOKENIZER), max_steps=1, batch_tokens=128, progress=False)
    # a run that saved a checkpoint: resume or overwrite
    lsllama.train(str(MODEL), train=tr, out=tmp_path / "run", checkpoint_every=1, **opts)
    with pytest.raises(lsllama.ArgumentError) as e:
        lsllama.train(str(MODEL), train=tr, out=tmp_path / "run", **opts)
    msg = str(e.value)
    assert "pass resume=True to continue it or overwrite=True to replace it, or choose another out=" in msg, msg
    assert "--" not in msg
    # the tool's own message for the same run folder names its flags
    rc, _, err = run_cli("train", MODEL, "--tokenizer", TOKENIZER, "--train", tr, "--out", tmp_path / "run",
                         "--max-steps", 1, check=False)
    assert rc != 0 and "pass --resume to continue it or --overwrite" in err
    # a run without a checkpoint cannot be resumed: the message offers overwrite alone
    lsllama.train(str(MODEL), train=tr, out=tmp_path / "plain", **opts)
    with pytest.raises(lsllama.ArgumentError) as e:
        lsllama.train(str(MODEL), train=tr, out=tmp_path / "plain", **opts)
    assert "it saved no checkpoint/ to resume from; pass overwrite=True to replace it, or choose another out=" \
        in str(e.value) and "resume=True" not in str(e.value), str(e.value)
    with pytest.raises(lsllama.ArgumentError, match=r"^resume=True and overwrite=True exclude each other"):
        lsllama.train(str(MODEL), train=tr, out=tmp_path / "run", resume=True, overwrite=True, **opts)


def test_python_spelling():
    sp = lsllama.errors.python_spelling
    assert sp("--grad-accum 4: the 3 processes must divide it") == "grad_accum=4: the 3 processes must divide it"
    assert sp("products (--compute bf16) need ...: use --compute f32.") == \
        'products (compute="bf16") need ...: use compute="f32".'
    assert sp("(--checkpoint-every N)") == "(checkpoint_every=N)"
    assert sp("--any-tags reads any tag") == "any_tags=True reads any tag"
    assert sp("are the token task's: --task token)") == 'are the token task\'s: task="token")'
    # paths and words holding two dashes are not options
    for text in ("/tmp/--x.tsv: bad row", "a--b.tsv: 3", "x -- y", "see --out.tsv"):
        assert sp(text) == text


# Options the library names only in messages a Python caller cannot meet: `lsllama merge --allow-inexact` and two
# train switches the package does not offer (the batch dump, the kill-test stop).
CLI_ONLY = {"allow_inexact", "dump_batches", "stop_after_steps"}


def test_every_option_the_library_names_is_a_keyword():
    """Each option written in a string of the library's sources (src/, the tool's own src/cli/ aside) becomes, in
    Python spelling, a keyword argument of the package's calls (or is one of CLI_ONLY), so no library message
    sends a Python caller to a flag."""
    keywords = set()
    for fn in (lsllama.train, lsllama.pipeline, lsllama.LSClassifier.__init__, lsllama.LSTokenClassifier.__init__):
        keywords.update(inspect.signature(fn).parameters)
    named = {}
    for path in (REPO / "src").rglob("*.[ch]"):
        if "cli" in path.relative_to(REPO / "src").parts:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', line):
                for m in re.finditer(r"(?<![\w/.-])--[a-z][a-z0-9-]*", literal):
                    named.setdefault(lsllama.errors.python_spelling(m.group(0)).split("=")[0], []).append(
                        "%s:%d" % (path.relative_to(REPO), i))
    assert {"overwrite", "resume", "out", "compute", "grad_accum"} <= set(named), sorted(named)
    unknown = {k: v for k, v in named.items() if k not in keywords | CLI_ONLY}
    assert not unknown, unknown


def test_option_values_listed():
    """A wrong name for an enumerated option lists the accepted ones (the library's names)."""
    with pytest.raises(lsllama.ArgumentError, match=r"^pool must be last, mean, max or first, got 'bogus'$"):
        lsllama.train(str(MODEL), train="unused.tsv", out="unused", tokenizer=str(TOKENIZER), pool="bogus")
    with pytest.raises(lsllama.ArgumentError, match=r"^compute must be f32 or bf16, got 'fp8'$"):
        lsllama.pipeline(MODEL, tokenizer=TOKENIZER, compute="fp8")
    with pytest.raises(lsllama.ArgumentError, match=r"^base_precision must be stored, bf16, q8_0 or f32, got 'q2'$"):
        lsllama.pipeline(MODEL, tokenizer=TOKENIZER, base_precision="q2")


def test_library_messages_in_keyword_spelling(seq_adapter):
    clf = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, max_length=0)
    with pytest.raises(lsllama.ArgumentError, match=r"^max_length=0: must be at least 1$"):
        clf("a film")
    _, _, err = run_cli("predict", MODEL, "--tokenizer", TOKENIZER, "--adapter", seq_adapter, "--max-length", 0,
                        input="a film\n", check=False)
    assert "--max-length expects an integer in [1, " in err, err  # the tool checks its flag before the library
