"""Handles over liblsllama: a loaded model, tokenizer and classifier, and the calls on them."""
import ctypes
import json
import os
import warnings
from ctypes import byref, c_int, c_void_p

from . import _lib as L
from .errors import ArgumentError, raise_for


def _b(s, what="value"):
    """A text argument as UTF-8 bytes for the library. ArgumentError naming ``what`` for anything but str or
    bytes (None included: the library's calls take no NULL text)."""
    if isinstance(s, str):
        return s.encode("utf-8")
    if isinstance(s, (bytes, bytearray)):
        return bytes(s)
    raise ArgumentError("%s must be a str, got %s" % (what, "None" if s is None else type(s).__name__))


def _path(p, what="path"):
    """A path argument (str, bytes or os.PathLike) as bytes for the library. ArgumentError naming ``what`` for
    None, another type or an empty path."""
    if not isinstance(p, (str, bytes, os.PathLike)):
        raise ArgumentError("%s must be a path (str, bytes or os.PathLike), got %s"
                            % (what, "None" if p is None else type(p).__name__))
    b = os.fsencode(p)
    if not b:
        raise ArgumentError("%s is an empty path" % (what,))
    return b


def text_list(x, what="texts"):
    """x as a list of str. A lone str is refused (this call takes several: wrap it in a list), as are None,
    non-iterables and non-str items, each an ArgumentError naming ``what`` (and the item's index)."""
    if isinstance(x, (str, bytes)) or x is None or not hasattr(x, "__iter__"):
        raise ArgumentError("%s must be a list of str, got %s%s" % (
            what, "None" if x is None else type(x).__name__,
            " (wrap a single text in a list)" if isinstance(x, str) else ""))
    out = list(x)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ArgumentError("%s[%d] is %s, not str" % (what, i, "None" if t is None else type(t).__name__))
    return out


def check(rc, err):
    if rc < 0:
        raise_for(rc, err)
    return rc


# The calling thread's OpenMP team size when the package was imported (OMP_NUM_THREADS, or all cores): what a
# call without threads= runs with, whatever an earlier call's threads= set.
DEFAULT_THREADS = L.omp_get_max_threads() if L.omp_get_max_threads is not None else None


def set_threads(threads):
    """Set the OpenMP team size of the calling thread for the next library call: threads (an int >= 1), or
    with None the size it had when the package was imported (OMP_NUM_THREADS, or all cores)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ArgumentError("threads must be an int >= 1 (or None), got %r" % (threads,))
    n = threads if threads is not None else DEFAULT_THREADS
    if n is not None and L.omp_set_num_threads is not None:
        L.omp_set_num_threads(int(n))


def parse_name(kind, parse, value, name):
    """The enum value of ``value`` (a str) by the library's ``parse``; ArgumentError naming ``kind`` and the
    accepted names (the library's ``name`` of each value from 0 up) for anything else."""
    out = c_int()
    if not isinstance(value, str) or parse(_b(value), byref(out)) != 0:
        names = []
        while len(names) < 64 and name(len(names)) is not None:
            names.append(name(len(names)).decode())
        raise ArgumentError("%s must be %s or %s, got %r" % (kind, ", ".join(names[:-1]), names[-1], value))
    return out.value


def _release(obj, attr, free):
    """Free the handle obj.attr holds (if any, once) and leave a NULL handle in its place."""
    if getattr(obj, attr, None):
        free(getattr(obj, attr))
        setattr(obj, attr, c_void_p())


class Model:
    """A loaded checkpoint (ll_model) and, optionally, its tokenizer."""

    def __init__(self, path, tokenizer=None, base_precision=None, compute=None, need_tokenizer=True):
        self._m = c_void_p()
        self._tok = c_void_p()
        opt = L.ll_load_options()
        if base_precision is not None:
            opt.base_precision = parse_name("base_precision", L.ll_base_precision_parse, base_precision,
                                            L.ll_base_precision_name)
        if compute is not None:
            opt.compute = parse_name("compute", L.ll_compute_parse, compute, L.ll_compute_name)
        err = L.ll_error()
        check(L.ll_model_load(byref(self._m), _path(path, "model"), byref(opt), byref(err)), err)
        self.path = str(path)
        if need_tokenizer:
            try:
                check(L.ll_tokenizer_load(byref(self._tok), _path(tokenizer if tokenizer is not None else path, "tokenizer"),
                                          byref(err)), err)
            except Exception:
                self.close()
                raise
            w = L.ll_tokenizer_warning(self._tok)
            if w:
                warnings.warn(w.decode("utf-8", "replace"), stacklevel=3)
        cfg = L.ll_model_config(self._m).contents
        self.dim = cfg.dim
        self.n_layers = cfg.n_layers
        self.vocab_size = cfg.vocab_size
        self.max_seq_len = cfg.max_seq_len

    def close(self):
        _release(self, "_tok", L.ll_tokenizer_free)
        _release(self, "_m", L.ll_model_free)

    def __del__(self):
        self.close()

    def encode(self, text, enc, err):
        """Token ids of text (str) as the CLI's embed --text encodes a line (special tokens added)."""
        data = text.encode("utf-8")
        check(L.ll_tokenizer_encode(self._tok, data, len(data), L.LL_TOK_DEFAULT, byref(enc), byref(err)), err)
        return enc.ids[:enc.n]

    def embed(self, texts, pool, bidirectional_from, batch_tokens):
        """Pooled final-norm hidden states as `lsllama embed --text` computes them: a list of n rows of dim
        floats (ctypes float arrays), packed into batches of about batch_tokens tokens in order."""
        pool_id = L.LL_POOLS.get(pool)
        if pool_id is None:
            raise ArgumentError("pool must be last, mean, max or first, got %r" % (pool,))
        if bidirectional_from < 0 or bidirectional_from > self.n_layers:
            raise ArgumentError("bidirectional_from %d is outside the model's 0..%d layers"
                                % (bidirectional_from, self.n_layers))
        if batch_tokens < 1:
            raise ArgumentError("batch_tokens must be at least 1")
        err = L.ll_error()
        enc = L.ll_encoding()
        rows = []
        fo = L.ll_forward_options(bidirectional_from)
        try:
            pend_tokens, pend_start = [], [0]

            def flush():
                n = len(pend_start) - 1
                if n == 0:
                    return
                toks = (ctypes.c_int32 * len(pend_tokens))(*pend_tokens)
                starts = (ctypes.c_int32 * len(pend_start))(*pend_start)
                out = (ctypes.c_float * (n * self.dim))()
                batch = L.ll_batch(toks, starts, n)
                fout = L.ll_forward_outputs(None, out, pool_id, None)
                check(L.ll_forward(self._m, byref(batch), byref(fo), byref(fout), byref(err)), err)
                for s in range(n):
                    rows.append(out[s * self.dim:(s + 1) * self.dim])
                del pend_tokens[:]
                del pend_start[1:]

            for i, t in enumerate(texts):
                if not isinstance(t, str):
                    raise ArgumentError("text %d is %s, not str" % (i, type(t).__name__))
                ids = self.encode(t, enc, err)
                if not ids:
                    raise ArgumentError("text %d encodes to no tokens" % i)
                if self.max_seq_len > 0 and len(ids) > self.max_seq_len:
                    raise ArgumentError("text %d: %d tokens exceed the model's context length %d"
                                        % (i, len(ids), self.max_seq_len))
                if pend_tokens and len(pend_tokens) + len(ids) > batch_tokens:
                    flush()
                pend_tokens.extend(ids)
                pend_start.append(len(pend_tokens))
            flush()
        finally:
            L.ll_encoding_free(byref(enc))
        return rows


class Classifier:
    """A trained classifier: model + tokenizer + adapter (or a merged folder) + labels, as `lsllama predict`
    opens them (src/cli/cli_classify.c cls_session_open)."""

    def __init__(self, model, adapter=None, tokenizer=None, base_precision=None, compute=None):
        err = L.ll_error()
        self._c = c_void_p()
        self._map = c_void_p()
        self.model = None
        if adapter is None and not L.ll_merged_is_classifier(_path(model, "model")):
            raise ArgumentError("%s is not a merged classifier folder (config.json with a "
                                "*ForSequenceClassification or *ForTokenClassification architecture): give adapter="
                                % model)
        if base_precision is None and adapter is not None:  # the precision the adapter was trained with
            bp = c_int(0)
            if check(L.ll_adapter_base_precision(_path(adapter, "adapter"), byref(bp), byref(err)), err) == 1:
                name = L.ll_base_precision_name(bp.value)
                base_precision = name.decode() if name else None
        self.model = Model(model, tokenizer, base_precision, compute)
        info = L.ll_adapter_info()
        try:
            if adapter is not None:
                rc = L.ll_adapter_load(_path(adapter, "adapter"), self.model._m, None, byref(self._c), byref(info), byref(err))
            else:
                rc = L.ll_merged_load(_path(model, "model"), self.model._m, byref(self._c), byref(info), byref(err))
            check(rc, err)
            self.labels = [info.id2label[k].decode("utf-8") for k in range(info.n_labels)]
            check(L.ll_labelmap_from_names(byref(self._map), info.id2label, info.n_labels, byref(err)), err)
        except Exception:
            L.ll_adapter_info_free(byref(info))
            self.close()
            raise
        L.ll_adapter_info_free(byref(info))
        cfg = L.ll_classifier_get_config(self._c).contents
        self.token_task = bool(cfg.token_task)
        self.multi_label = bool(cfg.multi_label) and not self.token_task
        self.n_labels = cfg.n_labels

    def close(self):
        _release(self, "_map", L.ll_labelmap_free)
        _release(self, "_c", L.ll_classifier_free)
        if getattr(self, "model", None) is not None:
            self.model.close()
            self.model = None

    def __del__(self):
        self.close()

    def predict_sequences(self, texts, max_length, batch_tokens):
        """Per text: (label id or -1, logits list, probabilities list, predicted list or None), computed by
        ll_classifier_predict over an in-memory dataset of the texts in order (one JSON Lines row each)."""
        lines = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ArgumentError("text %d is %s, not str" % (i, type(t).__name__))
            lines.append(json.dumps({"text": t}, ensure_ascii=False))
        if not lines:
            return []
        data = ("\n".join(lines) + "\n").encode("utf-8")
        opt = L.ll_data_options()
        L.ll_data_options_default(byref(opt))
        opt.format = L.LL_DATA_JSONL
        opt.no_labels = 1
        err = L.ll_error()
        ds = c_void_p()
        out = [None] * len(lines)
        failure = []

        def on_prediction(ctx, pp):
            try:
                p = pp.contents
                k = p.n_labels
                out[p.index] = (p.label, p.logits[:k], p.probabilities[:k],
                                p.predicted[:k] if p.predicted else None)
                return 0
            except BaseException as e:  # never let an exception cross the C frames
                failure.append(e)
                return 1

        cb = L.SEQ_PREDICTION_FN(on_prediction)
        try:
            check(L.ll_dataset_load_memory(byref(ds), data, len(data), b"<texts>", byref(opt), byref(err)), err)
            check(L.ll_dataset_tokenize(ds, self.model._tok, int(max_length), byref(err)), err)
            rc = L.ll_classifier_predict(self._c, ds, int(batch_tokens), None, cb, None, byref(err))
            if failure:
                raise failure[0]
            check(rc, err)
        finally:
            L.ll_dataset_free(ds)
        return out

    def predict_split_words(self, word_lists, max_length, batch_tokens):
        """Per sentence given as a list of words (str without whitespace): (tags, scores) per word, computed by
        ll_classifier_predict_tokens over an in-memory JSON Lines dataset {"tokens": [...]}, as `lsllama
        predict --format jsonl` reads pre-split words."""
        rows = []
        for i, ws in enumerate(word_lists):
            ws = list(ws)
            if not ws or not all(isinstance(w, str) and w for w in ws):
                raise ArgumentError("sentence %d: a non-empty list of non-empty str words is needed" % i)
            rows.append(json.dumps({"tokens": ws}, ensure_ascii=False))
        out = [None] * len(rows)
        if not rows:
            return out
        data = ("\n".join(rows) + "\n").encode("utf-8")
        opt = L.ll_token_data_options()
        L.ll_token_data_options_default(byref(opt))
        opt.format = L.LL_DATA_JSONL
        opt.no_tags = 1
        return self._predict_tokens(data, opt, max_length, batch_tokens, out,
                                    lambda p, n: (p.index, ([p.tags[w].decode("utf-8") for w in range(n)],
                                                            p.scores[:n])))

    def _predict_tokens(self, data, opt, max_length, batch_tokens, out, convert, line_of=None):
        """line_of: the caller's 1-based position of each data line (texts left out make the two differ), put
        in the library's messages in place of the line ("<texts>:N: ...")."""
        tt = L.ll_token_tokenize_options()
        err = L.ll_error()
        ds = c_void_p()
        failure = []

        def on_sentence(ctx, pp):
            try:
                p = pp.contents
                k, v = convert(p, p.n_words)
                out[k] = v
                return 0
            except BaseException as e:
                failure.append(e)
                return 1

        cb = L.SENTENCE_PREDICTION_FN(on_sentence)

        def checked(rc):
            if rc < 0 and line_of is not None:
                import re
                msg = re.sub(rb"<texts>:(\d+):", lambda m: b"<texts>:%d:" % line_of[int(m.group(1)) - 1]
                             if 0 < int(m.group(1)) <= len(line_of) else m.group(0), err.message)
                err.message = msg[:1023]
            check(rc, err)

        try:
            checked(L.ll_token_dataset_load_memory(byref(ds), data, len(data), b"<texts>", byref(opt), byref(err)))
            checked(L.ll_token_dataset_tokenize(ds, self.model._tok, int(max_length), byref(tt), byref(err)))
            rc = L.ll_classifier_predict_tokens(self._c, ds, self._map, int(batch_tokens), None, cb, None,
                                                byref(err))
            if failure:
                raise failure[0]
            checked(rc)
        finally:
            L.ll_dataset_free(ds)
        return out

    def predict_words(self, texts, max_length, batch_tokens):
        """Per text: a dict with "words", "tags", "scores" (the probability of each word's tag), "start" and
        "end" (character offsets of each word in the text), and "tokens" (per word its sub-tokens as
        (between, probabilities, label id, start, end, index): see ll_sentence_prediction), computed by
        ll_classifier_predict_tokens over an in-memory dataset of the texts as lines (words split on ASCII
        whitespace)."""
        lines, index = [], []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ArgumentError("text %d is %s, not str" % (i, type(t).__name__))
            # line breaks are whitespace between words: one character for one keeps the offsets
            line = t.replace("\n", " ").replace("\r", " ")
            if line.strip(" \t\v\f"):
                lines.append(line)
                index.append(i)
        out = [{"words": [], "tags": [], "scores": [], "start": [], "end": [], "tokens": []} for _ in texts]
        if not lines:
            return out
        data = ("\n".join(lines) + "\n").encode("utf-8")
        opt = L.ll_token_data_options()
        L.ll_token_data_options_default(byref(opt))
        opt.format = L.LL_DATA_LINES
        opt.no_tags = 1

        def convert(p, n):
            r = out[index[p.index]]
            r["words"] = [p.words[w].decode("utf-8") for w in range(n)]
            r["tags"] = [p.tags[w].decode("utf-8") for w in range(n)]
            r["scores"] = p.scores[:n]
            # per word its rows: (between, probabilities, argmax label, start, end, index); the tokens of no word
            # before it (a lone space piece) come first with between True
            K = p.n_labels
            r["tokens"] = [[(bool(p.token_between[t]), p.token_probs[t * K:(t + 1) * K], p.token_label[t],
                             p.token_start[t], p.token_end[t], p.token_index[t])
                            for t in range(p.word_token[w], p.word_token[w + 1])] for w in range(n)]
            return index[p.index], r

        self._predict_tokens(data, opt, max_length, batch_tokens, out, convert, [i + 1 for i in index])
        import re
        for i in index:
            r = out[i]
            spans = [(m.start(), m.end()) for m in re.finditer(r"[^ \t\r\n\v\f]+", texts[i])]
            if len(spans) != len(r["words"]):
                raise ArgumentError("text %d: %d words predicted, %d found" % (i, len(r["words"]), len(spans)))
            r["start"] = [s for s, _ in spans]
            r["end"] = [e for _, e in spans]
        return out
