"""`lsllama serve` on stories260K classifiers trained here: every route's JSON
against its schema, /predict and /ner against `lsllama predict` byte for byte,
answers that do not depend on the load (batch invariance), bad requests each
answered in TEI's error shape with the server healthy afterwards, the API key,
and a graceful SIGTERM. Run by ctest (environment: LSLLAMA_CLI, LL_SHARED_DIR)."""
import base64
import json
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from serve_util import (CLI, STORIES, STORIES_TOK, SST2, CONLL, Server, check, finish, run_cli, sst2_sentences,
                        conll_sentences, write_lines, tei_error, openai_error, raw_exchange, tempdir)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# set by main() (test_serve_smollm2.py runs these checks on SmolLM2 with its own)
WORK = None
MODEL = [STORIES, "--tokenizer", STORIES_TOK]
TOKENIZER = STORIES_TOK
NER_STEPS = "40"  # training of the causal token classifier the pipeline comparison merges


def train_adapters():
    write_lines(os.path.join(WORK, "train.tsv"), 201, os.path.join(SST2, "train.tsv"))
    write_lines(os.path.join(WORK, "dev.tsv"), 51, os.path.join(SST2, "dev.tsv"))
    run_cli(["train"] + MODEL + ["--train", os.path.join(WORK, "train.tsv"), "--dev", os.path.join(WORK, "dev.tsv"),
                                 "--out", os.path.join(WORK, "seq"), "--max-steps", "6", "--no-progress"])
    write_lines(os.path.join(WORK, "train.conll"), 2000, os.path.join(CONLL, "train.txt"))
    run_cli(["train"] + MODEL + ["--task", "token", "--train", os.path.join(WORK, "train.conll"), "--out",
                                 os.path.join(WORK, "tok"), "--max-steps", "6", "--no-progress"])


def predict_cli(adapter, texts, extra=()):
    """`lsllama predict` on texts (one per line), its JSON lines with numbers kept as written."""
    path = os.path.join(WORK, "predict_in.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in texts))
    out = run_cli(["predict"] + MODEL + ["--adapter", adapter, "--input", path, "--no-progress"] + list(extra))
    return [json.loads(line, parse_float=str) for line in out.splitlines()]


def loads_str(data):
    return json.loads(data, parse_float=str)


# ---- the sequence classifier ------------------------------------------------------------------------------


def check_schema_predict(obj, labels, what):
    ok = isinstance(obj, list) and len(obj) == len(labels) and \
        all(isinstance(e, dict) and set(e) == {"label", "score"} and isinstance(e["score"], float) for e in obj)
    ok = ok and sorted(e["label"] for e in obj) == sorted(labels)
    ok = ok and all(obj[i]["score"] >= obj[i + 1]["score"] for i in range(len(obj) - 1))
    return check(ok, f"{what}: /predict answer shape {obj!r:.300}")


def test_sequence_routes(sv, labels, texts):
    st, h, body = sv.get("/health")
    check(st == 200, "/health 200")
    st, h, body = sv.get("/info")
    info = json.loads(body)
    D = info["hidden_size"]
    check(st == 200 and info["model_type"]["classifier"]["id2label"] == {str(i): l for i, l in enumerate(labels)},
          f"/info labels {body[:300]!r}")
    for key in ("model_id", "max_input_length", "max_batch_tokens", "max_client_batch_size", "max_concurrent_requests",
                "pooling", "mask", "task", "auto_truncate", "tokenization_workers"):
        check(key in info, f"/info has {key}")
    check(info["task"] == "text-classification" and info["pooling"] == "last" and info["mask"] == "causal",
          f"/info task/pooling/mask {info}")

    # /predict: one string -> one list; a list -> a list of lists; equal to lsllama predict byte for byte
    st, _, body = sv.post("/predict", {"inputs": texts[0]})
    check(st == 200, f"/predict single: {st} {body[:200]!r}")
    check_schema_predict(json.loads(body), labels, "single")
    st, _, body = sv.post("/predict", {"inputs": texts[:32]})
    got = loads_str(body)
    check(st == 200 and isinstance(got, list) and len(got) == 32, "/predict list of 32")
    for e in json.loads(body):
        check_schema_predict(e, labels, "list")
    ref = predict_cli(os.path.join(WORK, "seq", "best"), texts[:32])
    same = all({e["label"]: e["score"] for e in got[i]} == ref[i]["probabilities"] for i in range(32))
    check(same, "/predict scores are lsllama predict's, byte for byte")
    # / routes to /predict for a sequence classifier; raw_scores gives logits, sorted
    st, _, body2 = sv.post("/", {"inputs": texts[:32]})
    check(st == 200 and body2 == body, "POST / is /predict for a sequence classifier")
    st, _, body = sv.post("/predict", {"inputs": texts[0], "raw_scores": True})
    raw = json.loads(body)
    check(st == 200 and abs(sum(e["score"] for e in raw) - 1) > 1e-4 or len(raw) == len(labels),
          "raw_scores answers logits")
    # parameters.top_k (the HF Inference API's form)
    st, _, body = sv.post("/", {"inputs": texts[0], "parameters": {"top_k": 1}})
    check(st == 200 and len(json.loads(body)) == 1, f"parameters.top_k 1: {body[:200]!r}")

    # vLLM /classify
    st, _, body = sv.post("/classify", {"model": sv.name, "input": texts[:3]})
    obj = json.loads(body)
    ok = st == 200 and obj.get("object") == "list" and len(obj["data"]) == 3 and "usage" in obj
    for i, d in enumerate(obj.get("data", [])):
        ok = ok and d["index"] == i and d["num_classes"] == len(labels) and len(d["probs"]) == len(labels) and \
            d["label"] in labels and d["label"] == labels[max(range(len(labels)), key=lambda k: d["probs"][k])]
    check(ok, f"/classify shape: {body[:300]!r}")
    probs = [[str(p) for p in d["probs"]] for d in loads_str(body)["data"]]
    check(probs == [[ref[i]["probabilities"][l] for l in labels] for i in range(3)], "/classify probs = predict's")
    check(obj["usage"]["prompt_tokens"] == sum(len(x) for x in tokenize_cli(texts[:3])), "/classify usage tokens")
    st, _, body = sv.post("/classify", {"model": "other", "input": "x"})
    check(st == 404, f"/classify with another model name: {st}")

    # embeddings of the classifier (its pooling: last)
    st, _, body = sv.post("/embed", {"inputs": texts[:2]})
    emb = json.loads(body)
    check(st == 200 and len(emb) == 2 and len(emb[0]) == D, "/embed shape")
    check(all(abs(math.sqrt(sum(x * x for x in e)) - 1) < 1e-5 for e in emb), "/embed is normalized by default")
    st, _, body = sv.post("/embed_all", {"inputs": texts[:2]})
    ea = json.loads(body)
    toks = tokenize_cli(texts[:2])
    check(st == 200 and [len(x) for x in ea] == [len(t) for t in toks] and len(ea[0][0]) == D, "/embed_all shape")
    # the last token's hidden state, normalized, is /embed's (pooling last)
    last = ea[0][-1]
    n = math.sqrt(sum(x * x for x in last))
    check(all(abs(a / n - b) < 1e-6 for a, b in zip(last, emb[0])), "/embed = normalized last row of /embed_all")
    st, _, body = sv.post("/v1/embeddings", {"input": texts[:2], "model": sv.name})
    v1 = json.loads(body)
    check(st == 200 and v1["object"] == "list" and [d["index"] for d in v1["data"]] == [0, 1] and
          v1["data"][0]["embedding"] == emb[0] and v1["usage"]["prompt_tokens"] == sum(len(t) for t in toks),
          "/v1/embeddings = /embed, OpenAI shape")
    st, _, body = sv.post("/v1/embeddings", {"input": texts[0], "encoding_format": "base64"})
    b64 = json.loads(body)["data"][0]["embedding"]
    dec = struct.unpack(f"<{D}f", base64.b64decode(b64))
    check(st == 200 and all(abs(a - b) < 1e-7 for a, b in zip(dec, emb[0])), "/v1/embeddings base64 = float")
    st, _, body = sv.get("/v1/models")
    check(st == 200 and json.loads(body)["data"][0]["id"] == sv.name, "/v1/models")
    st, _, body = sv.post("/v1/embeddings", {"input": [1, 2, 3]})
    check(openai_error(st, body, 422) and json.loads(body)["error"]["type"] == "invalid_request_error",
          f"/v1 errors in OpenAI's shape and types: {st} {body[:200]!r}")
    st, _, body = sv.post("/v1/embeddings", {"input": "a", "truncate_prompt_tokens": 3})
    check(openai_error(st, body, 422) and b"truncate_prompt_tokens" in body, "/v1: an unsupported field refused")
    # a second server on the port in use is refused, not started beside the first
    second = subprocess.run([CLI, "serve"] + MODEL + ["--port", str(sv.port)], capture_output=True, text=True,
                            timeout=120)
    check(second.returncode != 0 and "cannot listen" in second.stderr,
          f"a second server on port {sv.port}: refused ({second.returncode}: {second.stderr[-200:]!r})")

    # /tokenize: lsllama tokenize's ids and character offsets; special tokens have no span
    st, _, body = sv.post("/tokenize", {"inputs": ["héllo wörld", texts[1]]})
    tk = json.loads(body)
    ref_tok = run_cli(["tokenize", TOKENIZER, "--offsets"], stdin="héllo wörld\n" + texts[1] + "\n").splitlines()
    for i, line in enumerate(ref_tok):
        want = [(int(p.split(":")[0]), p.split(":")[1]) for p in line.split()]
        have = [(t["id"], f"{t['start']}-{t['stop']}" if t["start"] is not None else "0-0") for t in tk[i]]
        check(want == have, f"/tokenize ids and offsets = lsllama tokenize's ({want[:5]} vs {have[:5]})")
    check(tk[0][0]["special"] is True and tk[0][0]["start"] is None and tk[0][1]["text"] == "h" or
          tk[0][1]["special"] is False, "/tokenize special flag")
    st, _, body = sv.post("/tokenize", {"inputs": "ab", "add_special_tokens": False})
    check(st == 200 and all(not t["special"] for t in json.loads(body)[0]), "/tokenize add_special_tokens false")

    # routes and methods
    check(tei_error(*sv.get("/predict")[::2], 405), "GET /predict: 405")
    check(tei_error(*sv.get("/nothing")[::2], 404), "unknown route: 404")
    check(tei_error(*sv.post("/ner", {"inputs": "x"})[::2], 404), "/ner on a sequence classifier: 404")


def tokenize_cli(texts):
    out = run_cli(["tokenize", TOKENIZER], stdin="".join(t + "\n" for t in texts))
    return [line.split() for line in out.splitlines()]


def test_truncation(sv, texts):
    long_text = " ".join(texts[:60])  # far more than 512 tokens
    st, _, body = sv.post("/predict", {"inputs": long_text})
    check(tei_error(st, body, 413, "validation") and b"512" in body, f"too long: 413 {body[:200]!r}")
    st, _, body = sv.post("/predict", {"inputs": long_text, "truncate": True})
    ref = predict_cli(os.path.join(WORK, "seq", "best"), [long_text], ["--max-length", "512"])
    check(st == 200 and {e["label"]: e["score"] for e in loads_str(body)} == ref[0]["probabilities"],
          "truncate: lsllama predict --max-length 512's answer")
    st, _, body = sv.post("/predict", {"inputs": long_text, "truncate": True, "truncation_direction": "Left"})
    check(tei_error(st, body, 422), "truncation_direction Left refused by name")


def test_batch_invariance(sv, texts):
    """The same request alone and in the middle of a load gives the same bytes."""
    probe = texts[5]
    alone = sv.post("/predict", {"inputs": probe})[2]
    alone_list = sv.post("/predict", {"inputs": [probe]})[2]
    before = metrics(sv)
    stop = threading.Event()
    errors = []
    sent = [0]

    def load(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            batch = rng.sample(texts, rng.randint(1, 8))
            st, _, _ = sv.post("/predict", {"inputs": batch})
            sent[0] += 1
            if st != 200:
                errors.append(st)

    threads = [threading.Thread(target=load, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    during = [sv.post("/predict", {"inputs": probe})[2] for _ in range(10)]
    mixed = []
    for k in range(5):
        others = random.Random(k).sample(texts, 6)
        others.insert(k, probe)
        mixed.append((k, json.dumps(json.loads(sv.post("/predict", {"inputs": others})[2])[k])))
    stop.set()
    for t in threads:
        t.join()
    after = metrics(sv)
    check(not errors, f"load requests all 200 ({errors[:5]})")
    check(all(d == alone for d in during), "a request alone and under load: the same bytes")
    check(all(m == json.dumps(json.loads(alone)) for _, m in mixed), "a text alone and inside a list: the same answer")
    check(json.loads(alone_list)[0] == json.loads(alone), "[text] and text give the same scores")
    reqs = after["predict_200"] - before["predict_200"]
    batches = after["batches"] - before["batches"]
    check(0 < batches < reqs, f"the worker packed requests together under load ({batches} batches, {reqs} requests)")


def metrics(sv):
    st, _, body = sv.get("/metrics")
    out = {"predict_200": 0, "batches": 0}
    for line in body.decode().splitlines():
        if line.startswith('lsllama_requests_total{route="/predict",status="200"}'):
            out["predict_200"] = int(line.split()[-1])
        elif line.startswith("lsllama_batch_tokens_count"):
            out["batches"] = int(line.split()[-1])
        elif line.startswith("lsllama_requests_in_flight"):
            out["in_flight"] = int(line.split()[-1])
    return out


def test_bad_requests(sv, texts):
    bad = [
        ("malformed JSON", b'{"inputs": "a",}', 422),
        ("truncated JSON", b'{"inputs": "a', 422),
        ("not an object", b'["a"]', 422),
        ("inputs a number", b'{"inputs": 5}', 422),
        ("inputs with a number", b'{"inputs": ["a", 3]}', 422),
        ("raw_scores a string", b'{"inputs": "a", "raw_scores": "yes"}', 422),
        ("no inputs", b'{"text": "a"}', 422),
        ("empty inputs", b'{"inputs": []}', 400),
        ("an empty text", b'{"inputs": ["a", ""]}', 400),
        ("prompt_name", b'{"inputs": "a", "prompt_name": "query"}', 422),
        ("truncate_prompt_tokens", b'{"inputs": "a", "truncate_prompt_tokens": 3}', 422),
        ("too many inputs", json.dumps({"inputs": ["a"] * 33}).encode(), 413),
        ("invalid UTF-8", b'{"inputs": "caf\xc3 \xff"}', 422),
        ("empty body", b"", 422),
    ]
    for what, body, code in bad:
        st, _, answer = sv.request("POST", "/predict", body)
        check(tei_error(st, answer, code), f"{what}: {code} in TEI's shape (got {st} {answer[:200]!r})")
    # a body over the payload limit (12 MB here), and a 10 MB single text (413: too many tokens)
    st, _, answer = sv.request("POST", "/predict", b'{"inputs": "' + b"a" * 13_000_000 + b'"}')
    check(tei_error(st, answer, 413), f"body over --payload-limit: 413 ({st} {answer[:200]!r})")
    ten_mb = ("the cat sat on the mat. " * (10_000_000 // 24))
    st, _, answer = sv.post("/predict", {"inputs": ten_mb})
    check(tei_error(st, answer, 413, "validation"), f"10 MB text: 413 ({st} {answer[:200]!r})")
    st, _, answer = sv.post("/predict", {"inputs": ten_mb, "truncate": True})
    check(st == 200, f"10 MB text, truncated: 200 ({st})")
    check(sv.healthy(), "healthy after the bad requests")


def test_slow_client(sv, texts):
    """A client sending its body one byte a second is closed after --timeout (3 s) without holding the worker."""
    s = socket.create_connection(("127.0.0.1", sv.port), timeout=30)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    closed_after = None
    t0 = time.monotonic()
    result = {}

    def other():
        t = time.monotonic()
        result["status"] = sv.post("/predict", {"inputs": texts[0]})[0]
        result["dt"] = time.monotonic() - t

    th = threading.Thread(target=other)
    for i in range(20):
        try:
            s.sendall(b"{")
        except OSError:
            closed_after = time.monotonic() - t0
            break
        if i == 1:
            th.start()
        time.sleep(1)
        s.settimeout(0.01)
        try:
            if s.recv(1) == b"":
                closed_after = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed_after = time.monotonic() - t0
            break
    s.close()
    th.join()
    check(closed_after is not None and closed_after < 10, f"slow client closed after the timeout ({closed_after})")
    check(result.get("status") == 200 and result["dt"] < 5, f"another request answered meanwhile ({result})")


def test_many_connections(sv):
    socks = []
    for _ in range(500):
        socks.append(socket.create_connection(("127.0.0.1", sv.port), timeout=60))
    check(sv.healthy(), "healthy with 500 connections open")
    for s in socks:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ok = 0
    for s in socks:
        data = b""
        try:
            while True:
                c = s.recv(4096)
                if not c:
                    break
                data += c
        except OSError:
            pass
        ok += data.startswith(b"HTTP/1.1 200")
        s.close()
    check(ok == 500, f"500 connections opened at once all answered ({ok})")


def test_disconnects(sv, texts):
    body = json.dumps({"inputs": texts[:32]}).encode()
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    raw_exchange(sv.port, head + body[:len(body) // 2], read=False)  # gone mid-body
    for _ in range(5):
        raw_exchange(sv.port, head + body, read=False)  # gone before the answer
    check(sv.healthy() and sv.post("/predict", {"inputs": texts[0]})[0] == 200, "healthy after clients went away")
    deadline = time.monotonic() + 120  # the abandoned jobs still run: their connections close when they end
    while metrics(sv).get("in_flight") != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(metrics(sv).get("in_flight") == 0, "no request left in flight after the disconnects")


def test_api_key():
    sv = Server(MODEL + ["--adapter", os.path.join(WORK, "seq", "best"), "--api-key", "s3cret"], WORK)
    try:
        check(sv.get("/health")[0] == 200, "/health needs no key")
        check(tei_error(*sv.post("/predict", {"inputs": "a"})[::2], 401), "no key: 401")
        check(tei_error(*sv.post("/predict", {"inputs": "a"}, headers={"Authorization": "Bearer nope"})[::2], 401),
              "wrong key: 401")
        check(tei_error(*sv.post("/predict", {"inputs": "a"}, headers={"Authorization": "s3cret"})[::2], 401),
              "key without Bearer: 401")
        check(sv.post("/predict", {"inputs": "a"}, headers={"Authorization": "Bearer s3cret"})[0] == 200, "key: 200")
        check(openai_error(*sv.get("/v1/models")[::2], 401), "/v1/ without a key: 401 in OpenAI's shape")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")


def test_overload_and_sigint(texts):
    """--max-concurrent 1: requests beyond the one admitted are answered 429 at once (TEI's shape), the others
    200; SIGINT stops the server as SIGTERM does."""
    sv = Server(MODEL + ["--adapter", os.path.join(WORK, "seq", "best"), "--max-concurrent", "1", "--threads", "1"],
                WORK)
    results = []
    lock = threading.Lock()

    def one(i):
        st, _, body = sv.post("/predict", {"inputs": texts[i:i + 32]})
        with lock:
            results.append((st, body))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(st for st, _ in results)
    check(200 in statuses and 429 in statuses and set(statuses) <= {200, 429},
          f"--max-concurrent 1 under 8 concurrent requests: 200s and 429s ({statuses})")
    check(all(tei_error(st, body, 429, "overloaded") for st, body in results if st == 429), "429 in TEI's shape")
    check(sv.healthy() and sv.post("/predict", {"inputs": texts[0]})[0] == 200, "healthy after the overload")
    check(sv.stop(signal.SIGINT) == 0, "exit 0 on SIGINT")


def corrupt_model(path):
    """stories260K whose attention norms are 1e30 (llama2.c layout: a 7-int header, the token embeddings, then
    rms_att_weight [n_layers, dim]): finite weights, a loadable checkpoint, attention scores that overflow."""
    data = bytearray(open(STORIES, "rb").read())
    dim, n_layers = struct.unpack_from("<i", data, 0)[0], struct.unpack_from("<i", data, 8)[0]
    vocab = abs(struct.unpack_from("<i", data, 20)[0])
    at = 28 + 4 * dim * vocab
    huge = struct.pack("<f", 1e30)
    for i in range(n_layers * dim):
        data[at + 4 * i:at + 4 * i + 4] = huge
    with open(path, "wb") as f:
        f.write(data)


def test_model_failure(texts):
    """A model whose outputs are not finite: every answer is 424 (TEI's "backend"), never nan."""
    bad = os.path.join(WORK, "nan.bin")
    corrupt_model(bad)
    sv = Server([bad, "--tokenizer", STORIES_TOK, "--adapter", os.path.join(WORK, "seq", "best")], WORK)
    try:
        for route, body in (("/predict", {"inputs": texts[0]}), ("/embed", {"inputs": texts[:2]}),
                            ("/classify", {"input": texts[0]}), ("/v1/embeddings", {"input": texts[0]})):
            st, _, answer = sv.post(route, body)
            ok = openai_error(st, answer, 424) if route.startswith("/v1/") else tei_error(st, answer, 424, "backend")
            check(ok and b"nan" not in answer.lower().replace(b"non-finite", b""),
                  f"{route} on a model with non-finite outputs: 424 ({st} {answer[:200]!r})")
        check(sv.healthy(), "healthy after the model failures")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")


def test_graceful_stop(texts):
    sv = Server(MODEL + ["--adapter", os.path.join(WORK, "seq", "best"), "--threads", "1"], WORK)
    sv.name = "best"
    results = []

    def one(i):
        results.append(sv.post("/predict", {"inputs": texts[i:i + 32]})[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while metrics(sv).get("in_flight", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    rc = sv.stop()
    for t in threads:
        t.join()
    check(rc == 0, f"SIGTERM: exit 0 ({rc}); log: {sv.log_text()[-300:]}")
    check(results.count(200) == 8 or (results.count(200) >= 2 and all(s in (200, 503) for s in results)),
          f"SIGTERM: the accepted requests are answered ({results})")
    try:
        socket.create_connection(("127.0.0.1", sv.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    check(refused, "no longer listening after SIGTERM")


# ---- the token classifier -----------------------------------------------------------------------------------


def test_ner():
    sv = Server(MODEL + ["--adapter", os.path.join(WORK, "tok", "final")], WORK)
    try:
        sents = conll_sentences("valid.txt", 12)
        ref = predict_cli(os.path.join(WORK, "tok", "final"), sents)
        st, _, body = sv.post("/ner", {"inputs": sents})
        got = loads_str(body)
        check(st == 200 and len(got) == len(sents), f"/ner list: {st} {body[:200]!r}")
        for i in range(len(sents)):
            want = [{"entity_group": e["type"], "score": e["score"], "word": e["text"], "start": e["start"],
                     "end": e["end"]} for e in ref[i]["entities"]]
            check(got[i] == want, f"/ner = lsllama predict's entities (sentence {i}: {got[i]} vs {want})")
        n_ents = sum(len(r["entities"]) for r in ref)
        check(n_ents > 0, "the reference has entities to compare")
        st, _, body = sv.post("/ner", {"inputs": sents[0]})
        check(st == 200 and loads_str(body) == got[0], "/ner single input: one list")
        st, _, body2 = sv.post("/", {"inputs": sents[0]})
        check(st == 200 and body2 == body, "POST / is /ner for a token classifier")
        # newlines inside an input: the same words, offsets into the input as sent
        text = sents[0].replace(" ", "\n", 1)
        st, _, body = sv.post("/ner", {"inputs": text})
        got_nl = json.loads(body)
        check(st == 200 and [(e["start"], e["end"]) for e in got_nl] ==
              [(e["start"], e["end"]) for e in json.loads(json.dumps(got[0]))] and
              all(text[e["start"]:e["end"]] == e["word"] for e in got_nl), "/ner keeps offsets of the input as sent")
        st, _, body = sv.post("/ner", {"inputs": ["   ", sents[1]]})
        check(st == 200 and json.loads(body)[0] == [], "a blank input: no entities")
        types = sorted({e["entity_group"] for e in got[0]})
        if types:
            st, _, body = sv.post("/ner", {"inputs": sents[0], "ignore_labels": ["O", types[0]]})
            check(st == 200 and all(e["entity_group"] != types[0] for e in json.loads(body)), "ignore_labels")
        st, _, body = sv.post("/ner", {"inputs": sents[0], "aggregation_strategy": "first"})
        check(st == 200 and loads_str(body) == got[0], "aggregation_strategy first")
        st, _, body = sv.post("/ner", {"inputs": sents[0], "aggregation_strategy": "bogus"})
        check(tei_error(st, body, 422), "an unknown aggregation_strategy: 422")
        st, _, body = sv.post("/ner", {"inputs": sents[0], "parameters": {"aggregation_strategy": "first"}})
        check(st == 200 and loads_str(body) == got[0], "parameters.aggregation_strategy (the Inference API's form)")
        st, _, body = sv.post("/ner", {"inputs": sents[0], "parameters": {"stride": 16}})
        check(tei_error(st, body, 422) and b"stride" in body, "parameters.stride refused by name")
        st, _, body = sv.post("/ner", {"inputs": sents[0], "aggregation_strategy": "none", "ignore_labels": []})
        toks = json.loads(body)
        check(st == 200 and toks and all(set(e) == {"entity", "score", "index", "word", "start", "end"} and
                                         sents[0][e["start"]:e["end"]] == e["word"] for e in toks),
              "aggregation none: one entry per token, the pipeline's keys")
        check(tei_error(*sv.post("/predict", {"inputs": "x"})[::2], 404), "/predict on a token classifier: 404")
        st, _, body = sv.get("/info")
        check(json.loads(body)["task"] == "token-classification", "/info task token-classification")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")


def pipeline_words(pipe, text, strategy):
    """The word strategies (first, average, max) as transformers computes them (its model's scores, its
    group_entities), over lsllama's words: whitespace-separated, a lone space piece part of none (the pipeline's
    own heuristic would make that piece a word, which training never labels)."""
    import numpy as np
    import torch
    enc = pipe.tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True, return_tensors="pt")
    with torch.no_grad():
        logits = pipe.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0].numpy()
    maxes = np.max(logits, axis=-1, keepdims=True)  # the pipeline's softmax
    scores = np.exp(logits - maxes)
    scores = scores / scores.sum(axis=-1, keepdims=True)
    words = []
    for i, ((a, b), special) in enumerate(zip(enc["offset_mapping"][0].tolist(), enc["special_tokens_mask"][0].tolist())):
        while a < b and text[a].isspace():
            a += 1
        if special or a == b:
            continue
        if not words or (a >= words[-1][-1][2] and (a == 0 or text[a - 1].isspace())):
            words.append([])
        words[-1].append((scores[i], a, b))
    id2label = pipe.model.config.id2label
    entities = []
    for toks in words:
        if strategy == "first":
            vec = toks[0][0]
        elif strategy == "max":
            vec = max(toks, key=lambda t: t[0].max())[0]
        else:
            vec = np.nanmean(np.stack([t[0] for t in toks]), axis=0)
        k = int(vec.argmax())
        entities.append({"entity": id2label[k], "score": vec[k], "word": text[toks[0][1]:toks[-1][2]],
                         "start": toks[0][1], "end": toks[-1][2]})
    return pipe.group_entities(entities)


def test_ner_pipeline():
    """Every aggregation strategy against transformers on the merged model (a causal token classifier merges
    exactly), "O" groups included: none and simple are the token-classification pipeline's own answers; first,
    average and max transformers' arithmetic and grouping over lsllama's whitespace words. The one documented
    difference: a token's span starts at its word, where the tokenizer's offsets include the space before it."""
    from transformers import pipeline
    adapter = os.path.join(WORK, "tokc", "final")
    run_cli(["train"] + MODEL + ["--task", "token", "--mask", "causal", "--train", os.path.join(WORK, "train.conll"),
                                 "--out", os.path.join(WORK, "tokc"), "--max-steps", NER_STEPS, "--lr", "3e-3",
                                 "--no-progress"])
    merged = os.path.join(WORK, "tokc_merged")
    run_cli(["merge"] + MODEL + ["--adapter", adapter, "--out", merged, "--dtype", "f32"])  # the weights as lsllama holds them
    sents = conll_sentences("valid.txt", 30)
    sv = Server([merged], WORK)
    try:
        for strategy in ("none", "simple", "first", "average", "max"):
            pipe = pipeline("token-classification", model=merged, aggregation_strategy=strategy, device="cpu")
            st, _, body = sv.post("/ner", {"inputs": sents, "aggregation_strategy": strategy, "ignore_labels": []})
            ours = json.loads(body)
            check(st == 200 and len(ours) == len(sents), f"/ner {strategy}: {st}")
            key = "entity" if strategy == "none" else "entity_group"
            n_ents = bad = 0
            for text, got in zip(sents, ours):
                ref = []
                found = pipe(text, ignore_labels=[]) if strategy in ("none", "simple") else \
                    pipeline_words(pipe, text, strategy)
                for e in found:
                    start = e["start"]
                    while start < e["end"] and text[start].isspace():
                        start += 1
                    ref.append((e[key], start, e["end"], float(e["score"]), e.get("index")))
                have = [(e[key], e["start"], e["end"], e["score"], e.get("index")) for e in got]
                n_ents += len(ref)
                same = len(ref) == len(have) and all(
                    a[0] == b[0] and a[1] == b[1] and a[2] == b[2] and abs(a[3] - b[3]) < 1e-5 and a[4] == b[4]
                    for a, b in zip(ref, have))
                if not same:
                    bad += 1
                    at = next((i for i, (a, b) in enumerate(zip(ref, have)) if a[:3] != b[:3] or abs(a[3] - b[3]) >= 1e-5
                               or a[4] != b[4]), min(len(ref), len(have)))
                    print(f"  {strategy}: {text!r}: from entry {at} ({len(ref)} against {len(have)} entries)\n"
                          f"    transformers {ref[at:at + 3]}\n    lsllama      {have[at:at + 3]}")
            check(bad == 0 and n_ents >= len(sents),
                  f"/ner {strategy} = transformers on the merged model ({bad} of {len(sents)} sentences differ; "
                  f"{n_ents} entities)")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")


# ---- a bare model: embeddings and tokenization only ------------------------------------------------------------


def test_bare_model(texts):
    sv = Server(MODEL, WORK)
    try:
        st, _, body = sv.post("/embed", {"inputs": texts[:4], "normalize": False})
        got = json.loads(body)
        ref = run_cli(["embed"] + MODEL + ["--text", "--pool", "mean"],
                      stdin="".join(t + "\n" for t in texts[:4])).splitlines()
        ok = st == 200 and len(got) == 4
        for g, line in zip(got, ref):
            r = [float(x) for x in line.split()]
            ok = ok and len(g) == len(r) and all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in zip(g, r))
        check(ok, "a bare model's /embed (mean) = lsllama embed --pool mean")
        st, _, body2 = sv.post("/", {"inputs": texts[:4], "normalize": False})
        check(st == 200 and body2 == body, "POST / is /embed for a bare model")
        check(tei_error(*sv.post("/predict", {"inputs": "x"})[::2], 404), "/predict on a bare model: 404")
        check(tei_error(*sv.post("/classify", {"input": "x"})[::2], 404), "/classify on a bare model: 404")
        st, _, body = sv.get("/info")
        check(json.loads(body)["model_type"] == {"embedding": {"pooling": "mean"}}, "/info of a bare model")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")


def main():
    global WORK
    WORK = tempdir()
    train_adapters()
    labels = ["0", "1"]
    texts = sst2_sentences("dev.tsv", 200)
    sv = Server(MODEL + ["--adapter", os.path.join(WORK, "seq", "best"), "--payload-limit", "12000000",
                         "--timeout", "3"], WORK)
    sv.name = "best"
    try:
        test_sequence_routes(sv, labels, texts)
        test_truncation(sv, texts)
        test_batch_invariance(sv, texts)
        test_bad_requests(sv, texts)
        test_slow_client(sv, texts)
        test_many_connections(sv)
        test_disconnects(sv, texts)
        # the README's standard-library client
        out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "serve_client.py"),
                              f"http://127.0.0.1:{sv.port}", texts[0], texts[1]], capture_output=True, text=True)
        lines = [json.loads(x) for x in out.stdout.splitlines()] if out.returncode == 0 else []
        top = [json.loads(sv.post("/predict", {"inputs": t})[2])[0] for t in texts[:2]]
        check(len(lines) == 2 and all(l["text"] == t and l["label"] == p["label"] and l["score"] == p["score"]
                                      for l, t, p in zip(lines, texts, top)),
              f"examples/serve_client.py: {out.stdout[:300]} {out.stderr[:300]}")
        st, _, body = sv.get("/metrics")
        check(st == 200 and b'lsllama_requests_total{route="/predict",status="200"}' in body and
              b"lsllama_request_duration_seconds_bucket" in body and b"lsllama_queue_size" in body, "/metrics")
        check(sv.healthy(), "healthy at the end")
    finally:
        check(sv.stop() == 0, "exit 0 on SIGTERM")
    test_api_key()
    test_ner()
    test_ner_pipeline()
    test_bare_model(texts)
    test_overload_and_sigint(texts)
    test_model_failure(texts)
    test_graceful_stop(texts)
    shutil.rmtree(WORK, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
