"""`lsllama serve` on SmolLM2-135M (its Q4_1 GGUF, byte-level BPE tokenizer):
the routes and /predict's parity with `lsllama predict`, batch invariance
under load on the quantized products, /ner against `lsllama predict` and
every aggregation strategy against transformers on a merged classifier, and a
client written for text-embeddings-inference (huggingface_hub's
InferenceClient) working unchanged. Labelled slow (ctest -L slow)."""
import json
import os
import time

import test_serve as ts
from serve_util import SMOLLM2, Server, check, finish, run_cli, sst2_sentences, conll_sentences, tempdir


def test_tei_client(seq_adapter, texts):
    """huggingface_hub's InferenceClient, pointed at the server as at a TEI endpoint."""
    from huggingface_hub import InferenceClient
    sv = Server([SMOLLM2, "--adapter", seq_adapter], ts.WORK)
    try:
        client = InferenceClient(model=f"http://127.0.0.1:{sv.port}")
        got = client.text_classification(texts[0])
        ref = json.loads(sv.post("/predict", {"inputs": texts[0]})[2])
        # the client reads the first element of the answer: the best label
        top = got[0] if isinstance(got, list) else got
        check(top.label == ref[0]["label"] and abs(top.score - ref[0]["score"]) < 1e-9,
              f"InferenceClient.text_classification: {got} against {ref}")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")
    sv = Server([SMOLLM2], ts.WORK)
    try:
        client = InferenceClient(model=f"http://127.0.0.1:{sv.port}")
        emb = client.feature_extraction(texts[1])
        ref = json.loads(sv.post("/embed", {"inputs": texts[1]})[2])
        check(list(emb.shape) == [1, 576] and all(abs(float(a) - b) < 1e-6 for a, b in zip(emb[0], ref[0])),
              f"InferenceClient.feature_extraction: shape {getattr(emb, 'shape', None)}")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")


T0 = time.monotonic()


def phase(what):
    print(f"[{time.monotonic() - T0:6.1f} s] {what}", flush=True)


def main():
    ts.WORK = tempdir()
    ts.MODEL = [SMOLLM2]
    ts.TOKENIZER = SMOLLM2
    ts.NER_STEPS = "12"
    phase("training the adapters")
    ts.train_adapters()
    phase("sequence routes")
    seq = os.path.join(ts.WORK, "seq", "best")
    texts = sst2_sentences("dev.tsv", 200)
    sv = Server([SMOLLM2, "--adapter", seq], ts.WORK)
    sv.name = "best"
    try:
        ts.test_sequence_routes(sv, ["0", "1"], texts)
        ref = ts.predict_cli(seq, texts[:100])
        got = json.loads(sv.post("/predict", {"inputs": texts[:32]})[2], parse_float=str)
        got += json.loads(sv.post("/predict", {"inputs": texts[32:64]})[2], parse_float=str)
        got += json.loads(sv.post("/predict", {"inputs": texts[64:96]})[2], parse_float=str)
        check(all({e["label"]: e["score"] for e in got[i]} == ref[i]["probabilities"] for i in range(96)),
              "SmolLM2 /predict = lsllama predict, byte for byte, on 96 SST-2 sentences")
        ts.test_batch_invariance(sv, texts)
        check(sv.healthy(), "healthy at the end")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")
    phase("NER")
    # NER: the bidirectional adapter against lsllama predict, the causal merged one against transformers
    sv = Server([SMOLLM2, "--adapter", os.path.join(ts.WORK, "tok", "final")], ts.WORK)
    try:
        sents = conll_sentences("valid.txt", 20)
        ref = ts.predict_cli(os.path.join(ts.WORK, "tok", "final"), sents)
        got = json.loads(sv.post("/ner", {"inputs": sents})[2], parse_float=str)
        want = [[{"entity_group": e["type"], "score": e["score"], "word": e["text"], "start": e["start"],
                  "end": e["end"]} for e in r["entities"]] for r in ref]
        check(got == want, "SmolLM2 /ner = lsllama predict's entities")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")
    phase("NER against transformers")
    ts.test_ner_pipeline()
    phase("TEI client")
    test_tei_client(seq, texts)
    phase("done")
    finish()


if __name__ == "__main__":
    main()
