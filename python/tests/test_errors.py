"""Errors: each ll_status as its own exception class, carrying the library's message (the one the CLI
prints after "lsllama predict: ")."""
import shutil

import pytest

import lsllama
from conftest import MODEL, TOKENIZER, run_cli


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
