"""A client of `lsllama serve` made of Python's standard library alone.

    python3 examples/serve_client.py http://127.0.0.1:8080 "a moving film" "a dull mess"

Asks /info what the server serves, then classifies the texts (/predict), tags
them (/ner) or embeds them (/embed), and prints one JSON line per text.
Set LSLLAMA_API_KEY when the server was started with --api-key."""
import json
import os
import sys
import urllib.error
import urllib.request


def call(base, path, body=None):
    """GET (body None) or POST a JSON body; the decoded JSON answer. Errors raise with the server's message."""
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if os.environ.get("LSLLAMA_API_KEY"):
        req.add_header("Authorization", "Bearer " + os.environ["LSLLAMA_API_KEY"])
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        err = json.loads(e.read() or b"{}")
        raise SystemExit(f"{path}: HTTP {e.code}: {err.get('error', err)}")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    base, texts = sys.argv[1], sys.argv[2:]
    task = call(base, "/info")["task"]
    if task == "text-classification":
        answers = call(base, "/predict", {"inputs": texts})  # per text: every label with its score, best first
        for text, labels in zip(texts, answers):
            print(json.dumps({"text": text, "label": labels[0]["label"], "score": labels[0]["score"]}))
    elif task == "token-classification":
        answers = call(base, "/ner", {"inputs": texts, "aggregation_strategy": "first"})
        for text, entities in zip(texts, answers):
            print(json.dumps({"text": text, "entities": entities}))
    else:
        for text, vector in zip(texts, call(base, "/embed", {"inputs": texts})):
            print(json.dumps({"text": text, "dim": len(vector), "head": vector[:4]}))


if __name__ == "__main__":
    main()
