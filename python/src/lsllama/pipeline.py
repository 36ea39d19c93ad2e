"""lsllama.pipeline: trained classifiers and embeddings called the way transformers' pipelines are called."""
import math
import threading

from . import _core
from .errors import ArgumentError

_LEGACY = object()  # top_k not given: transformers' legacy top-1 output


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def _sigmoid(z):
    return [1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)) for v in z]


def _tag_parts(tag):
    """transformers' TokenClassificationPipeline.get_tag: ("B"|"I", type)."""
    if tag.startswith("B-"):
        return "B", tag[2:]
    if tag.startswith("I-"):
        return "I", tag[2:]
    return "I", tag  # not in B-/I- form: the tag itself is the type


def _group_words(text, words):
    """Word entities [(tag, score, start, end)] grouped as transformers' group_entities groups them: a word
    joins the open group when its type equals the group's last word's type and its tag is not B-."""
    groups, cur = [], []
    for w in words:
        if cur:
            bi, typ = _tag_parts(w[0])
            _, last_typ = _tag_parts(cur[-1][0])
            if typ == last_typ and bi != "B":
                cur.append(w)
                continue
            groups.append(cur)
        cur = [w]
    if cur:
        groups.append(cur)
    out = []
    for g in groups:
        start, end = g[0][2], g[-1][3]
        out.append({"entity_group": g[0][0].split("-", 1)[-1], "score": sum(w[1] for w in g) / len(g),
                    "word": text[start:end], "start": start, "end": end})
    return out


_STRATEGIES = ("none", "simple", "first", "average", "max")


def _aggregate_tokens(text, tokens, names, strategy):
    """transformers' token-classification aggregation over the library's sub-token rows (per word, tuples
    (between, probabilities, label id, start, end, index)): "none" every token with its argmax; "simple"
    those grouped; "average"/"max" per word the mean of its tokens' probabilities, or the probabilities of
    its most confident token, then grouped. A lone space piece (between) is listed by none/simple and is part
    of no word."""
    if strategy in ("none", "simple"):
        items = [(names[t[2]], t[1][t[2]], t[3], t[4], t[5]) for word in tokens for t in word]
        if strategy == "none":
            return [{"entity": e, "score": s, "index": i, "word": text[a:b], "start": a, "end": b}
                    for e, s, a, b, i in items]
        return _group_words(text, [x[:4] for x in items])
    words = []
    for word in tokens:
        own = [t for t in word if not t[0]]
        if not own:
            continue
        if strategy == "max":  # the first of equally confident tokens
            best = own[0]
            for t in own[1:]:
                if t[1][t[2]] > best[1][best[2]]:
                    best = t
            probs, label = best[1], best[2]
        else:
            probs = [sum(t[1][k] for t in own) / len(own) for k in range(len(names))]
            label = max(range(len(names)), key=lambda k: (probs[k], -k))
        words.append((names[label], probs[label], own[0][3], own[-1][4]))
    return _group_words(text, words)


class Pipeline:
    """A classifier (or a base model for embeddings) ready to call; see ``lsllama.pipeline``.

    Attributes: ``task`` ("text-classification", "token-classification" or "feature-extraction"),
    ``labels`` (label names, id order), ``multi_label`` (bool), ``dim`` (hidden size).

    One pipeline serves one call at a time (a lock serializes calls from several threads); separate
    pipelines run concurrently, each with its own model in memory.
    """

    def __init__(self, model, adapter=None, tokenizer=None, threads=None, base_precision=None, compute=None,
                 max_length=None, batch_tokens=2048):
        self.threads = threads
        self.max_length = 256 if max_length is None else int(max_length)
        self.batch_tokens = int(batch_tokens)
        self._lock = threading.Lock()
        self._clf = None
        self._model = None
        _core.set_threads(threads)
        if adapter is None and not _core.L.ll_merged_is_classifier(_core._path(model, "model")):
            self._model = _core.Model(model, tokenizer, base_precision, compute)
            self.task, self.labels, self.multi_label = "feature-extraction", [], False
        else:
            self._clf = _core.Classifier(model, adapter, tokenizer, base_precision, compute)
            self._model = self._clf.model
            self.task = "token-classification" if self._clf.token_task else "text-classification"
            self.labels = list(self._clf.labels)
            self.multi_label = self._clf.multi_label
        self.dim = self._model.dim
        if max_length is not None and self._model.max_seq_len > 0 and self.max_length > self._model.max_seq_len:
            raise ArgumentError("max_length %d exceeds the model's context length %d"
                                % (self.max_length, self._model.max_seq_len))

    # ---- lifetime ----------------------------------------------------------------------------------------------
    def close(self):
        """Free the model, tokenizer and classifier now (otherwise when the pipeline is collected)."""
        with self._lock:
            if self._clf is not None:
                self._clf.close()
            elif self._model is not None:
                self._model.close()
            self._clf = self._model = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if self._model is None:
            raise ArgumentError("the pipeline is closed")

    # ---- classification ----------------------------------------------------------------------------------------
    def __call__(self, inputs, top_k=_LEGACY, function_to_apply=None, aggregation_strategy=None,
                 ignore_labels=None):
        """Classify a text (str) or texts (list of str).

        Sequence classifiers (transformers' text-classification pipeline):
          - ``top_k`` not given: one ``{"label": str, "score": float}`` per text, the top label; a str input
            gives ``[dict]``, a list gives ``[dict, ...]`` (one per text).
          - ``top_k=None``: every label, by descending score; ``top_k=k``: the k best. A str gives
            ``[dict, ...]``, a list gives a list of such lists.
          - ``function_to_apply``: "softmax" (default for single-label), "sigmoid" (default for
            multi-label, or one label) or "none" (the raw logits). The default's scores are the library's
            probabilities, the same doubles ``lsllama predict`` prints (%.6f); the others are computed here
            from the float32 logits.
        Token classifiers (transformers' token-classification pipeline with aggregation):
          - ``aggregation_strategy`` (any case): "first" (the default: each word takes the tag of its first
            sub-token, as lsllama trains and predicts), "average" (the mean of its sub-tokens'
            probabilities), "max" (its most confident sub-token's), "simple" (sub-tokens grouped without
            words) or "none" (every sub-token): transformers' strategies. Words are split on ASCII whitespace;
            a lone space piece some tokenizers emit before a word is part of no word (transformers' word
            heuristic would make it one); spans start at the word, not at a space a token's offsets include.
          - returns, per text, ``[{"entity_group": str, "score": float, "word": str, "start": int,
            "end": int}]``: consecutive words grouped as transformers groups them (a word joins the group
            when its type equals the previous word's and its tag is not B-), score the mean of the words'
            tag probabilities, start/end character offsets into the text (a Python str slice, also "word");
            groups whose type is in ``ignore_labels`` (default ["O"]) are left out. With "none": per token
            ``{"entity", "score", "index", "word", "start", "end"}`` (index: its position in the encoding,
            special tokens counted), those whose tag is in ``ignore_labels`` left out.
        Texts are truncated to ``max_length`` tokens (default 256), as ``lsllama predict`` does.
        Errors: ArgumentError (a pipeline without a classifier, a non-str input, unknown options, an option of
        the other kind of classifier: top_k or function_to_apply for a token classifier, aggregation_strategy or
        ignore_labels for a sequence classifier),
        FormatError for texts the library refuses (sequence classifiers: an empty text, named by its
        1-based position, "<texts>:N: empty text"); the library's message names the text.
        """
        if self._clf is None:
            self._live()
            raise ArgumentError("this pipeline holds a base model without a classifier: give adapter= (or a "
                                "merged folder) to classify; .embed() works without one")
        single = isinstance(inputs, str)
        texts = [inputs] if single else _core.text_list(inputs, "inputs")
        if self._clf.token_task:
            if top_k is not _LEGACY or function_to_apply is not None:
                raise ArgumentError("top_k and function_to_apply apply to sequence classifiers; this adapter tags "
                                    "tokens (its options: aggregation_strategy, ignore_labels)")
            res = self._ner(texts, "first" if aggregation_strategy is None else aggregation_strategy,
                            ("O",) if ignore_labels is None else ignore_labels)
        else:
            if aggregation_strategy is not None or ignore_labels is not None:
                raise ArgumentError("aggregation_strategy and ignore_labels apply to token classifiers; this "
                                    "adapter classifies sequences (its options: top_k, function_to_apply)")
            res = self._classify(texts, top_k, function_to_apply)
        if single:
            return res[0] if (self._clf.token_task or top_k is not _LEGACY) else res
        return res

    def _run(self, f, *a):
        with self._lock:
            self._live()
            _core.set_threads(self.threads)
            return f(*a)

    def predict(self, texts):
        """The library's raw prediction per text (list of str): a dict with "label" (top label name; None for
        multi-label), "labels" (multi-label: the predicted names, logit > 0), "logits" (n_labels floats,
        float32 values), "probabilities" (n_labels doubles: softmax, or independent sigmoids for
        multi-label), exactly what ``lsllama predict`` prints."""
        if self._clf is None or self._clf.token_task:
            raise ArgumentError("predict() needs a sequence classifier")
        raw = self._run(self._clf.predict_sequences, _core.text_list(texts), self.max_length, self.batch_tokens)
        names = self.labels
        return [{"label": names[lab] if lab >= 0 else None,
                 "labels": [names[k] for k in range(len(names)) if pred[k]] if pred is not None else None,
                 "logits": logits, "probabilities": probs} for lab, logits, probs, pred in raw]

    def _classify(self, texts, top_k, function_to_apply):
        default = "sigmoid" if (self.multi_label or len(self.labels) == 1) else "softmax"
        fn = (function_to_apply or default)
        fn = fn.lower() if isinstance(fn, str) else fn
        if fn not in ("softmax", "sigmoid", "none"):
            raise ArgumentError("function_to_apply must be softmax, sigmoid or none, got %r" % (function_to_apply,))
        if top_k is not _LEGACY and top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ArgumentError("top_k must be None or a positive int, got %r" % (top_k,))
        raw = self._run(self._clf.predict_sequences, texts, self.max_length, self.batch_tokens)
        out = []
        for lab, logits, probs, pred in raw:
            if fn == default and fn == ("sigmoid" if self.multi_label else "softmax"):
                scores = probs  # the library's own probabilities, bit for bit
            elif fn == "softmax":
                scores = _softmax(logits)
            elif fn == "sigmoid":
                scores = _sigmoid(logits)
            else:
                scores = list(logits)
            if top_k is _LEGACY:
                best = max(range(len(scores)), key=lambda k: (scores[k], -k))  # first of equal maxima
                out.append({"label": self.labels[best], "score": scores[best]})
            else:
                d = [{"label": self.labels[k], "score": s} for k, s in enumerate(scores)]
                d.sort(key=lambda x: x["score"], reverse=True)
                out.append(d if top_k is None else d[:top_k])
        return out

    def tag_words(self, texts):
        """Token classifiers: per text (list of str) a dict of per-word lists, "words", "tags", "scores"
        (probability of each tag, float32 values), "start", "end" (character offsets), as ``lsllama
        predict`` computes them (its "words" and "tags")."""
        if self._clf is None or not self._clf.token_task:
            raise ArgumentError("tag_words() needs a token classifier")
        return self._run(self._clf.predict_words, _core.text_list(texts), self.max_length, self.batch_tokens)

    def _ner(self, texts, aggregation_strategy, ignore_labels):
        strategy = aggregation_strategy.lower() if isinstance(aggregation_strategy, str) else aggregation_strategy
        if strategy not in _STRATEGIES:
            raise ArgumentError("aggregation_strategy must be one of %s, got %r"
                                % (", ".join(_STRATEGIES), aggregation_strategy))
        ignore = set(ignore_labels or ())
        key = "entity" if strategy == "none" else "entity_group"
        out = []
        for text, r in zip(texts, self.tag_words(texts)):
            if strategy == "first":  # the library's word tags (a word without tokens: "O")
                found = _group_words(text, list(zip(r["tags"], r["scores"], r["start"], r["end"])))
            else:
                found = _aggregate_tokens(text, r["tokens"], self.labels, strategy)
            out.append([g for g in found if g[key] not in ignore])
        return out

    # ---- embeddings --------------------------------------------------------------------------------------------
    def embed(self, texts, pool="mean", mask="bidirectional", bidirectional_from=None, batch_tokens=2048):
        """Pooled final-norm hidden states of the base model (no adapter), as ``lsllama embed --text`` computes
        them: each text encoded with the tokenizer (special tokens added), packed in order into batches of
        about ``batch_tokens`` tokens.

        texts: a str or a list of str. pool: "mean" (default), "last", "max" or "first". mask:
        "bidirectional" (default) or "causal" attention in every layer; ``bidirectional_from=k`` instead
        makes layers < k causal. Returns a numpy.ndarray of float32, shape [n, dim] (or [dim] for a str);
        lists of floats when numpy is not installed. Errors: ArgumentError for an unknown pool or mask, a
        text that encodes to no tokens or exceeds the context length.
        """
        single = isinstance(texts, str)
        texts = [texts] if single else _core.text_list(texts)
        if mask not in _core.L.LL_MASKS:
            raise ArgumentError("mask must be causal or bidirectional, got %r" % (mask,))
        with self._lock:
            self._live()
            n_layers = self._model.n_layers
            bf = bidirectional_from if bidirectional_from is not None else (0 if mask == "bidirectional"
                                                                           else n_layers)
            _core.set_threads(self.threads)
            rows = self._model.embed(texts, pool, int(bf), int(batch_tokens))
        try:
            import numpy as np
        except ImportError:
            return rows[0] if single else rows
        arr = np.array(rows, dtype=np.float32).reshape(len(rows), self.dim)
        return arr[0] if single else arr


def pipeline(model, adapter=None, tokenizer=None, threads=None, **kwargs):
    """A callable classifier over a trained adapter, in transformers' pipeline conventions.

    model: a checkpoint (GGUF, llama2.c .bin, safetensors file or Hugging Face folder) or a folder written by
    ``lsllama merge``. adapter: an adapter folder written by ``lsllama train`` (``runs/x/best``) or PEFT;
    None with a merged folder, or with a plain checkpoint for a pipeline that only embeds. tokenizer: a
    tokenizer.json, tokenizer folder or llama2.c tokenizer.bin for checkpoints that carry none (the CLI's
    --tokenizer). threads: OpenMP threads for this pipeline's calls (None: OMP_NUM_THREADS or all cores).
    Keyword options: base_precision ("stored", "bf16", "q8_0", "f32"; default: the one the adapter was
    trained with, else "stored"), compute ("f32", "bf16"), max_length (tokens kept per text, default 256; a
    value given is checked against the model's context length, as the CLI checks --max-length),
    batch_tokens (default 2048): those of ``lsllama predict``.

    Returns a ``Pipeline``; ``task`` says which kind. Errors: FileIOError (a missing file), FormatError (a
    corrupt file), UnsupportedError, ShapeError, ConfigError, ArgumentError, each with the library's message.
    """
    return Pipeline(model, adapter=adapter, tokenizer=tokenizer, threads=threads, **kwargs)
