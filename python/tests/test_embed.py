"""Embeddings: Pipeline.embed against `lsllama embed --text` (values as printed, %.7g)."""
import pytest

import lsllama
from conftest import MODEL, TOKENIZER, run_cli

np = pytest.importorskip("numpy")  # a test requirement (pyproject [test]); the package itself works without


@pytest.mark.parametrize("pool,mask", [("mean", "bidirectional"), ("last", "causal"), ("max", "bidirectional")])
def test_embed_equals_cli(seq_texts, pool, mask):
    texts = seq_texts[:12]
    _, out, _ = run_cli("embed", MODEL, "--text", "--tokenizer", TOKENIZER, "--pool", pool, "--mask", mask,
                        "--batch-tokens", 64, input="".join(t + "\n" for t in texts))
    cli = [l.split(" ") for l in out.splitlines()]
    with lsllama.pipeline(MODEL, tokenizer=TOKENIZER, threads=1) as p:
        assert p.task == "feature-extraction"
        e = p.embed(texts, pool=pool, mask=mask, batch_tokens=64)
    assert isinstance(e, np.ndarray) and e.dtype == np.float32 and e.shape == (len(texts), p.dim)
    assert [["%.7g" % v for v in row] for row in e.tolist()] == cli


def test_embed_defaults_and_single_text(seq_adapter, seq_texts):
    _, out, _ = run_cli("embed", MODEL, "--text", "--tokenizer", TOKENIZER, "--pool", "mean", "--mask",
                        "bidirectional", input=seq_texts[0] + "\n")
    with lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER) as p:  # the base under an adapter
        v = p.embed(seq_texts[0])
        assert v.shape == (p.dim,)
        assert ["%.7g" % x for x in v.tolist()] == out.split()
        with pytest.raises(lsllama.ArgumentError):
            p.embed(["x"], pool="median")
        with pytest.raises(lsllama.ArgumentError):
            p.embed(["x"], mask="sideways")
