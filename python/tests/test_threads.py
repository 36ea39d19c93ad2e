"""Two threads predicting at once on separate pipelines give the results of one at a time."""
import threading

import lsllama
from conftest import MODEL, TOKENIZER, sst2_rows


def test_two_pipelines_in_two_threads(seq_adapter):
    texts = [t for t, _ in sst2_rows("dev.tsv", 64, start=100)]
    a = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, threads=1)
    b = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, threads=1)
    alone = [r["probabilities"] for r in a.predict(texts)]
    alone_rev = [r["probabilities"] for r in a.predict(texts[::-1])]
    results, errors = {}, []
    start = threading.Barrier(2)

    def work(name, pipe, xs):
        try:
            start.wait()
            for rep in range(5):
                results[(name, rep)] = [r["probabilities"] for r in pipe.predict(xs)]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=("a", a, texts)),
               threading.Thread(target=work, args=("b", b, texts[::-1]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for rep in range(5):
        assert results[("a", rep)] == alone
        assert results[("b", rep)] == alone_rev
    a.close()
    b.close()


def test_one_pipeline_shared_by_threads_is_serialized(seq_adapter):
    texts = [t for t, _ in sst2_rows("dev.tsv", 16)]
    p = lsllama.pipeline(MODEL, adapter=seq_adapter, tokenizer=TOKENIZER, threads=1)
    alone = p(texts, top_k=None)
    out = [None] * 4

    def work(i):
        out[i] = p(texts, top_k=None)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [alone] * 4
