"""LSClassifier / LSTokenClassifier: a 3-step fit equals `lsllama train` with the same options (adapter
bytes), and scikit-learn's estimator basics (clone, get/set params, fit/predict shapes) with scikit-learn."""
import numpy as np
import pytest
from sklearn.base import clone, is_classifier

import lsllama
from conftest import MODEL, TOKENIZER, conll_sentences, run_cli, sst2_rows
from test_train import same_files


@pytest.fixture(scope="module")
def data():
    rows = sst2_rows("train.tsv", 40)
    return [t for t, _ in rows], [int(l) for _, l in rows]


@pytest.fixture(scope="module")
def fitted(work, data):
    X, y = data
    est = lsllama.LSClassifier(str(MODEL), tokenizer=str(TOKENIZER), lora_r=4, lr=5e-4, max_steps=3,
                               batch_tokens=256, threads=1, out_dir=str(work / "est_seq"))
    return est.fit(X, y)


def test_fit_equals_cli(work, data, fitted):
    X, y = data
    f = work / "est.tsv"
    f.write_text("sentence\tlabel\n" + "".join("%s\t%d\n" % r for r in zip(X, y)), encoding="utf-8")
    run_cli("train", MODEL, "--tokenizer", TOKENIZER, "--train", f, "--out", work / "est_cli", "--lora-r", 4,
            "--lr", "5e-4", "--max-steps", 3, "--batch-tokens", 256, "--no-progress")
    same_files(work / "est_cli" / "final", work / "est_seq" / "final")


def test_estimator_contract(data, fitted):
    X, y = data
    assert is_classifier(fitted)
    params = fitted.get_params()
    assert params["lora_r"] == 4 and params["max_steps"] == 3 and "model" in params
    c = clone(fitted)
    assert c.get_params() == params and not hasattr(c, "classes_")
    assert c.set_params(lr=1e-3) is c and c.lr == 1e-3 and fitted.lr == 5e-4
    with pytest.raises(ValueError):
        c.set_params(no_such_param=1)
    with pytest.raises(lsllama.ArgumentError, match="not fitted"):
        c.predict(X[:2])
    assert list(fitted.classes_) == [0, 1]
    pred = fitted.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (len(X),) and set(pred) <= {0, 1}
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(fitted.classes_[proba.argmax(axis=1)]) == list(pred)
    assert fitted.score(X, y) == np.mean(pred == np.array(y))
    # probabilities are the pipeline's (the library's)
    assert proba[0].tolist() == fitted.pipeline_.predict([X[0]])[0]["probabilities"]


def test_save_load(work, data, fitted):
    X, _ = data
    fitted.save(str(work / "saved_est"))
    back = lsllama.LSClassifier.load(str(work / "saved_est"))
    assert back.get_params() == fitted.get_params()
    assert list(back.classes_) == list(fitted.classes_)
    assert back.predict_proba(X).tolist() == fitted.predict_proba(X).tolist()
    # the saved folder is an adapter for the CLI too
    _, out, _ = run_cli("predict", MODEL, "--tokenizer", TOKENIZER, "--adapter", work / "saved_est",
                        input=X[0] + "\n")
    assert '"label": "%d"' % fitted.predict(X[:1])[0] in out


def test_pickle(data, fitted):
    """A fitted estimator pickles with its adapter (joblib, multiprocessing): the copy predicts the same
    probabilities and owns a temporary folder of its own, removed with it; an unfitted one pickles too."""
    import gc
    import os
    import pickle
    X, _ = data
    copy = pickle.loads(pickle.dumps(fitted))
    assert copy.get_params() == fitted.get_params() and list(copy.classes_) == list(fitted.classes_)
    assert copy.predict_proba(X).tolist() == fitted.predict_proba(X).tolist()
    tmp = copy._tmp_
    assert tmp and os.path.isdir(tmp) and tmp != fitted.adapter_
    del copy
    gc.collect()
    assert not os.path.exists(tmp)
    blank = pickle.loads(pickle.dumps(clone(fitted)))
    with pytest.raises(lsllama.ArgumentError, match="not fitted"):
        blank.predict(X[:1])


def test_string_labels_and_temp_dir(data):
    X, y = data
    names = ["neg" if v == 0 else "pos" for v in y]
    est = lsllama.LSClassifier(str(MODEL), tokenizer=str(TOKENIZER), max_steps=1, batch_tokens=256, threads=1)
    est.fit(X, names)
    assert list(est.classes_) == ["neg", "pos"]
    assert set(est.predict(X[:4])) <= {"neg", "pos"}
    assert 0 <= est.score(X, names) <= 1


def test_token_classifier_equals_cli(work):
    sents = conll_sentences(30)
    X, y = [w for w, _ in sents], [t for _, t in sents]
    est = lsllama.LSTokenClassifier(str(MODEL), tokenizer=str(TOKENIZER), max_steps=3, batch_tokens=256, lr=1e-3,
                                    threads=1, out_dir=str(work / "est_tok"))
    est.fit(X, y)
    f = work / "est_ner.txt"
    f.write_text("\n".join("".join("%s %s\n" % wt for wt in zip(w, t)) for w, t in sents), encoding="utf-8")
    run_cli("train", MODEL, "--tokenizer", TOKENIZER, "--task", "token", "--train", f, "--out", work / "est_tok_cli",
            "--max-steps", 3, "--batch-tokens", 256, "--lr", "1e-3", "--no-progress")
    same_files(work / "est_tok_cli" / "final", work / "est_tok" / "final")
    assert est.classes_ == sorted({t for ts in y for t in ts})
    pred = est.predict(X[:5])
    assert [len(p) for p in pred] == [len(x) for x in X[:5]] and all(t in est.classes_ + ["O"] for p in pred
                                                                      for t in p)
    proba = est.predict_proba(X[:5])
    assert [len(p) for p in proba] == [len(x) for x in X[:5]] and all(0 < v <= 1 for p in proba for v in p)
    # the same words as a text line through the pipeline: the same tags
    assert est.pipeline_.tag_words([" ".join(x) for x in X[:5]]) and \
        [r["tags"] for r in est.pipeline_.tag_words([" ".join(x) for x in X[:5]])] == pred
    assert 0 <= est.score(X, y) <= 1


def test_dev_set_keeps_the_best_adapter(work, data):
    X, y = data
    dev = sst2_rows("dev.tsv", 12)
    est = lsllama.LSClassifier(str(MODEL), tokenizer=str(TOKENIZER), max_steps=4, eval_every=2, batch_tokens=256,
                               threads=1, out_dir=str(work / "est_dev"))
    est.fit(X, y, X_dev=[t for t, _ in dev], y_dev=[int(l) for _, l in dev])
    assert est.adapter_ == str(work / "est_dev" / "best")
    assert est.train_result_["best_step"] in (2, 4)


def test_multi_label(data):
    X, _ = data
    y = [["pos"], ["neg"], ["pos", "neg"]] * (len(X) // 3) + [["pos"]] * (len(X) % 3)
    est = lsllama.LSClassifier(str(MODEL), tokenizer=str(TOKENIZER), max_steps=2, batch_tokens=256, threads=1)
    est.fit(X, y)
    assert est.multi_label_ and list(est.classes_) == ["neg", "pos"]
    proba = est.predict_proba(X[:6])
    assert proba.shape == (6, 2)
    pred = est.predict(X[:6])
    assert [sorted(p) for p in pred] == [sorted(np.array(["neg", "pos"])[row > 0.5].tolist()) for row in proba]
    assert 0 <= est.score(X, y) <= 1


def tiny_gemma3(folder, bidirectional):
    """A random Gemma 3 text model (gemma3_text, 2 layers, vocab 512 for tok512.bin) as transformers writes one:
    config.json and an F32 model.safetensors, written here with numpy (no torch in the package's tests)."""
    import json
    import struct
    D, F, H, KV, HD, V = 32, 64, 2, 1, 16, 512
    rng = np.random.default_rng(0)
    t = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    for i in range(2):
        p = "model.layers.%d." % i
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            t[p + n + ".weight"] = (D,)
        t.update({p + "self_attn.q_proj.weight": (H * HD, D), p + "self_attn.k_proj.weight": (KV * HD, D),
                  p + "self_attn.v_proj.weight": (KV * HD, D), p + "self_attn.o_proj.weight": (D, H * HD),
                  p + "self_attn.q_norm.weight": (HD,), p + "self_attn.k_norm.weight": (HD,),
                  p + "mlp.gate_proj.weight": (F, D), p + "mlp.up_proj.weight": (F, D),
                  p + "mlp.down_proj.weight": (D, F)})
    header, blobs, off = {}, [], 0
    for name, shape in t.items():
        b = (0.1 * rng.standard_normal(shape)).astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": D,
        "intermediate_size": F, "num_hidden_layers": 2, "num_attention_heads": H, "num_key_value_heads": KV,
        "head_dim": HD, "vocab_size": V, "rms_norm_eps": 1e-6, "max_position_embeddings": 512,
        "query_pre_attn_scalar": HD, "sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"],
        "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
        "use_bidirectional_attention": bidirectional}))
    return folder


def test_default_mask_is_the_models(work, data):
    """mask=None (the default) trains as the model's config says, as `lsllama train` without --mask does: a Gemma 3
    with use_bidirectional_attention trains bidirectional (it refuses causal attention by name)."""
    import json
    X, y = data
    g = tiny_gemma3(work / "gemma3_bidir", True)
    est = lsllama.LSClassifier(str(g), tokenizer=str(TOKENIZER), lora_r=4, max_steps=2, batch_tokens=256, threads=1,
                               out_dir=str(work / "est_gemma3"))
    est.fit(X, y)
    cfg = json.loads((work / "est_gemma3" / "final" / "label_map.json").read_text())
    assert cfg["lsllama"]["bidirectional_from"] == 0
    f = work / "est_gemma3.tsv"
    f.write_text("sentence\tlabel\n" + "".join("%s\t%d\n" % r for r in zip(X, y)), encoding="utf-8")
    run_cli("train", g, "--tokenizer", TOKENIZER, "--train", f, "--out", work / "est_gemma3_cli", "--lora-r", 4,
            "--lr", "5e-4", "--max-steps", 2, "--batch-tokens", 256, "--no-progress")
    same_files(work / "est_gemma3_cli" / "final", work / "est_gemma3" / "final")
    with pytest.raises(lsllama.LsllamaError, match="use_bidirectional_attention"):
        lsllama.LSClassifier(str(g), tokenizer=str(TOKENIZER), mask="causal", max_steps=1, threads=1).fit(X, y)
