"""scikit-learn style estimators over lsllama.train and lsllama.pipeline (scikit-learn is not imported).

They follow scikit-learn's estimator contract: __init__ only stores its arguments, get_params/set_params,
fit returns self, fitted attributes end in "_" (classes_, adapter_), so sklearn.base.clone, Pipeline and
GridSearchCV work with them.
"""
import inspect
import json
import os
import shutil
import tempfile

from ._core import text_list
from .errors import ArgumentError, FileIOError
from .pipeline import Pipeline
from ._training import InMemory, train

_STATE = "lsllama_estimator.json"


def _labels(y, what):
    """y as a list (labels, or tag lists): a lone str is refused, as are None and non-iterables."""
    if isinstance(y, (str, bytes)) or y is None or not hasattr(y, "__iter__"):
        raise ArgumentError("%s must be a list of labels, got %s" % (what, "None" if y is None else type(y).__name__))
    return list(y)


def _sentences(X, what):
    """X as a list of sentences, each a list of words (str). ArgumentError naming ``what`` (and the index) for
    a lone str, None, a non-iterable, or a sentence given as one str (split it into words first)."""
    if isinstance(X, (str, bytes)) or X is None or not hasattr(X, "__iter__"):
        raise ArgumentError("%s must be a list of sentences (lists of words), got %s"
                            % (what, "None" if X is None else type(X).__name__))
    out = []
    for i, ws in enumerate(X):
        if isinstance(ws, (str, bytes)) or ws is None or not hasattr(ws, "__iter__"):
            raise ArgumentError("%s[%d] must be a list of words, got %s%s" % (
                what, i, "None" if ws is None else type(ws).__name__,
                " (split the sentence into words)" if isinstance(ws, str) else ""))
        out.append(list(ws))
    return out


def _np():
    try:
        import numpy
        return numpy
    except ImportError:
        return None


class _Base:
    _task = "seq"

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep=True):
        """The constructor's arguments as a dict (scikit-learn's contract)."""
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params):
        """Set constructor arguments (a refit applies them); an unknown name is a ValueError. Returns self."""
        names = self._param_names()
        for k, v in params.items():
            if k not in names:
                raise ValueError("invalid parameter %r for %s; valid ones: %s" % (k, type(self).__name__,
                                                                                   ", ".join(names)))
            setattr(self, k, v)
        return self

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        changed = ["%s=%r" % (k, getattr(self, k)) for k, p in sig.parameters.items()
                   if k != "self" and getattr(self, k) != p.default]
        return "%s(%s)" % (type(self).__name__, ", ".join(changed))

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6's estimator tags (sklearn is imported here only, when sklearn asks): texts in,
        a target required, fitted before predicting."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_class=True, multi_label=self._task == "seq"),
                    input_tags=InputTags(one_d_array=True, two_d_array=False, string=True), no_validation=True,
                    requires_fit=True)

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["string"], "requires_y": True, "no_validation": True}

    def _train_options(self):
        return dict(tokenizer=self.tokenizer, lora_r=self.lora_r, lora_alpha=self.lora_alpha,
                    lora_dropout=self.lora_dropout, lora_targets=self.lora_targets, lr=self.lr, epochs=self.epochs,
                    max_steps=self.max_steps, mask=self.mask, seed=self.seed, batch_tokens=self.batch_tokens,
                    max_length=self.max_length, eval_every=self.eval_every, threads=self.threads,
                    progress=self.progress)

    def _fit_data(self, train_rows, dev_rows):
        if self.model is None:
            raise ArgumentError("%s: model (a checkpoint path) is required" % type(self).__name__)
        old_tmp = getattr(self, "_tmp_", None)
        if self.out_dir is None:
            tmp = tempfile.mkdtemp(prefix="lsllama_fit_")
            out, overwrite = os.path.join(tmp, "run"), False
        else:
            out, overwrite = self.out_dir, os.path.isdir(os.path.join(self.out_dir, "final"))
        jl = lambda rows, name: InMemory("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "jsonl",
                                         name)
        opts = self._train_options()
        opts.update(self._task_options())
        try:
            res = train(self.model, jl(train_rows, "<X>"), out, dev=jl(dev_rows, "<X_dev>") if dev_rows else None,
                        task=self._task, overwrite=overwrite, **opts)
        except BaseException:
            if self.out_dir is None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        # a refit replaces the previous fit's temporary folder only once the new one is trained
        self._tmp_ = tmp if self.out_dir is None else None
        if old_tmp and old_tmp != self._tmp_:
            shutil.rmtree(old_tmp, ignore_errors=True)
        self.adapter_ = res["adapter"]
        self.train_result_ = res
        self._open(self.adapter_)

    def _open(self, adapter):
        self.pipeline_ = Pipeline(self.model, adapter=adapter, tokenizer=self.tokenizer, threads=self.threads,
                                  max_length=self.max_length, batch_tokens=self.batch_tokens)

    def _check_fitted(self):
        if getattr(self, "pipeline_", None) is None:
            raise ArgumentError("%s is not fitted: call fit first" % type(self).__name__)

    def save(self, path):
        """Write the fitted adapter (a PEFT adapter folder, usable by `lsllama predict --adapter`) and the
        estimator's parameters and classes (lsllama_estimator.json) into the folder path (created)."""
        self._check_fitted()
        os.makedirs(path, exist_ok=True)
        if os.path.realpath(self.adapter_) != os.path.realpath(path):  # saving a loaded estimator where it lies
            for f in os.listdir(self.adapter_):
                shutil.copy2(os.path.join(self.adapter_, f), os.path.join(path, f))
        state = {"class": type(self).__name__, "params": self.get_params(), "classes": list(self._classes_json())}
        with open(os.path.join(path, _STATE), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)

    @classmethod
    def load(cls, path, **overrides):
        """The estimator saved in path (by save), fitted; overrides replace saved parameters (model=, threads=)."""
        state_path = os.path.join(path, _STATE)
        if not os.path.isfile(state_path):
            raise FileIOError("%s: no %s: not a folder an estimator's save() wrote%s" % (
                path, _STATE, " (a PEFT adapter folder: open it with lsllama.pipeline(model, adapter=path))"
                if os.path.isfile(os.path.join(path, "adapter_config.json")) else ""))
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        if state.get("class") != cls.__name__:
            raise ArgumentError("%s holds a %s, not a %s" % (path, state.get("class"), cls.__name__))
        params = dict(state["params"])
        params.update(overrides)
        est = cls(**params)
        est.adapter_ = os.path.abspath(path)
        est._restore_classes(state["classes"])
        est._open(est.adapter_)
        return est

    def __getstate__(self):
        """Pickling (joblib, multiprocessing): the parameters, the fitted attributes and, when fitted, the
        adapter's files themselves; the open model is not pickled (the unpickled copy opens the same model path
        again). The state is that of ``save``, so a copy predicts as the original does."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("pipeline_", "_tmp_", "adapter_")}
        if getattr(self, "pipeline_", None) is not None:
            files = {}
            for name in sorted(os.listdir(self.adapter_)):
                full = os.path.join(self.adapter_, name)
                if os.path.isfile(full):
                    with open(full, "rb") as f:
                        files[name] = f.read()
            state["_adapter_files"] = files
        return state

    def __setstate__(self, state):
        files = state.pop("_adapter_files", None)
        self.__dict__.update(state)
        self._tmp_ = None
        self.pipeline_ = None
        if files is not None:
            tmp = tempfile.mkdtemp(prefix="lsllama_pickle_")
            try:
                for name, data in files.items():
                    with open(os.path.join(tmp, name), "wb") as f:
                        f.write(data)
                self._tmp_ = tmp
                self.adapter_ = tmp
                self._open(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                self._tmp_ = None
                raise

    def __del__(self):
        tmp = getattr(self, "_tmp_", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


class LSClassifier(_Base):
    """A text classifier fine-tuned with LoRA (LS-LLaMA), in scikit-learn's estimator shape.

    model: checkpoint path; tokenizer: for checkpoints without one. lora_r, lora_alpha, lora_dropout,
    lora_targets, lr, epochs, max_steps (None: by epochs), pool ("last", "mean", "max", "first"), mask
    ("causal", "bidirectional"; None: the model's default, causal unless its config.json sets
    use_bidirectional_attention), seed, batch_tokens, max_length, eval_every: ``lsllama train``'s options
    (defaults as the CLI's, except lr 5e-4, the README's SST-2 setting). out_dir: the training run's folder
    (None: a temporary one, removed with the estimator; a folder with a run is overwritten by a refit).
    threads: OpenMP threads. progress: a tqdm bar while fitting (None: when tqdm is installed).

    fit(X, y, X_dev=None, y_dev=None): X a list of str, y their labels (str or int; a list of labels per
    text makes it multi-label). With a dev set the adapter of the best dev accuracy is kept, else the last.
    Fitted: classes_ (sorted as the library sorts labels: numerically when all are integers), adapter_
    (folder), pipeline_ (lsllama.Pipeline).
    """

    _estimator_type = "classifier"

    def __init__(self, model=None, tokenizer=None, lora_r=12, lora_alpha=32.0, lora_dropout=0.1,
                 lora_targets="q,v", lr=5e-4, epochs=1, max_steps=None, pool="last", mask=None, seed=42,
                 batch_tokens=2048, max_length=256, eval_every=None, out_dir=None, threads=None, progress=False):
        self.model = model
        self.tokenizer = tokenizer
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_targets = lora_targets
        self.lr = lr
        self.epochs = epochs
        self.max_steps = max_steps
        self.pool = pool
        self.mask = mask
        self.seed = seed
        self.batch_tokens = batch_tokens
        self.max_length = max_length
        self.eval_every = eval_every
        self.out_dir = out_dir
        self.threads = threads
        self.progress = progress

    def _task_options(self):
        return {"pool": self.pool}

    @staticmethod
    def _rows(X, y, names=("X", "y")):
        X, y = text_list(X, names[0]), _labels(y, names[1])
        if len(X) != len(y):
            raise ArgumentError("%s has %d texts, %s %d labels" % (names[0], len(X), names[1], len(y)))
        conv = lambda v: [str(e) for e in v] if isinstance(v, (list, tuple)) else str(v.item() if hasattr(
            v, "item") else v)
        return [{"text": x, "label": conv(v)} for x, v in zip(X, y)]

    def fit(self, X, y, X_dev=None, y_dev=None):
        """Train on texts X with labels y (and evaluate on X_dev, y_dev); returns self."""
        rows = self._rows(X, y)
        dev_rows = self._rows(X_dev, y_dev, ("X_dev", "y_dev")) if X_dev is not None else None
        self._orig = {}
        for v in list(y) + (list(y_dev) if y_dev is not None else []):
            for e in (v if isinstance(v, (list, tuple)) else [v]):
                e = e.item() if hasattr(e, "item") else e
                self._orig.setdefault(str(e), e)
        self._fit_data(rows, dev_rows)
        self.classes_ = self._as_array([self._orig.get(n, n) for n in self.pipeline_.labels])
        self.multi_label_ = self.pipeline_.multi_label
        return self

    def _classes_json(self):
        return [c.item() if hasattr(c, "item") else c for c in self.classes_]

    def _restore_classes(self, classes):
        self.classes_ = self._as_array(classes)
        self._orig = {str(c): c for c in classes}

    @staticmethod
    def _as_array(v):
        np = _np()
        return np.array(v) if np is not None else list(v)

    def predict_proba(self, X):
        """Probabilities [n_texts, n_classes] (softmax; multi-label: independent sigmoids), the library's
        doubles as `lsllama predict` prints them; numpy array (lists without numpy)."""
        self._check_fitted()
        p = [r["probabilities"] for r in self.pipeline_.predict(text_list(X, "X"))]
        np = _np()
        return np.array(p, dtype=np.float64).reshape(len(p), len(self.pipeline_.labels)) if np is not None else p

    def predict(self, X):
        """The predicted class per text (multi-label: the list of predicted classes, logit > 0)."""
        self._check_fitted()
        out = []
        for r in self.pipeline_.predict(text_list(X, "X")):
            if r["label"] is None:
                out.append([self._orig.get(n, n) for n in r["labels"]])
            else:
                out.append(self._orig.get(r["label"], r["label"]))
        np = _np()
        return np.array(out) if np is not None and not self.pipeline_.multi_label else out

    def score(self, X, y):
        """Mean accuracy on (X, y) (multi-label: subset accuracy)."""
        X, y = text_list(X, "X"), _labels(y, "y")
        if len(X) != len(y):
            raise ArgumentError("score: X has %d texts, y %d labels" % (len(X), len(y)))
        pred = self.predict(X)
        if not y:
            raise ArgumentError("score: y is empty")
        same = lambda a, b: (sorted(map(str, a)) == sorted(map(str, b))) if isinstance(b, (list, tuple)) else \
            str(a.item() if hasattr(a, "item") else a) == str(b.item() if hasattr(b, "item") else b)
        return sum(same(p, t) for p, t in zip(pred, y)) / len(y)


class LSTokenClassifier(_Base):
    """A token (NER) classifier fine-tuned with LoRA (LS-unLLaMA: bidirectional attention), in scikit-learn's
    estimator shape. Parameters as LSClassifier's (mask default "bidirectional"; no pool), plus
    label_all_subtokens.

    fit(X, y, X_dev=None, y_dev=None): X a list of sentences, each a list of words (str); y their tags
    (lists of str, IOB1/IOB2/BIOES as `lsllama train --task token` reads them). With a dev set the adapter of
    the best dev entity F1 is kept. predict(X) -> a list of tag lists; predict_proba(X) -> per sentence the
    probability of each predicted tag (list of floats); score(X, y) -> word-level tag accuracy.
    classes_: the tag set.
    """

    _task = "token"
    _estimator_type = "classifier"

    def __init__(self, model=None, tokenizer=None, lora_r=12, lora_alpha=32.0, lora_dropout=0.1,
                 lora_targets="q,v", lr=5e-4, epochs=1, max_steps=None, mask="bidirectional", seed=42,
                 batch_tokens=2048, max_length=256, eval_every=None, label_all_subtokens=False, out_dir=None,
                 threads=None, progress=False):
        self.model = model
        self.tokenizer = tokenizer
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_targets = lora_targets
        self.lr = lr
        self.epochs = epochs
        self.max_steps = max_steps
        self.mask = mask
        self.seed = seed
        self.batch_tokens = batch_tokens
        self.max_length = max_length
        self.eval_every = eval_every
        self.label_all_subtokens = label_all_subtokens
        self.out_dir = out_dir
        self.threads = threads
        self.progress = progress

    def _task_options(self):
        return {"label_all_subtokens": self.label_all_subtokens}

    @staticmethod
    def _rows(X, y, names=("X", "y")):
        X, y = _sentences(X, names[0]), _labels(y, names[1])
        if len(X) != len(y):
            raise ArgumentError("%s has %d sentences, %s %d tag lists" % (names[0], len(X), names[1], len(y)))
        rows = []
        for i, (ws, ts) in enumerate(zip(X, y)):
            if isinstance(ts, str):
                raise ArgumentError("%s[%d] is a str: each sentence's tags are a list" % (names[1], i))
            ws, ts = [str(w) for w in ws], [str(t) for t in ts]
            if len(ws) != len(ts):
                raise ArgumentError("sentence %d: %d words, %d tags" % (i, len(ws), len(ts)))
            rows.append({"tokens": ws, "ner_tags": ts})
        return rows

    def fit(self, X, y, X_dev=None, y_dev=None):
        """Train on sentences X (word lists) with tags y; returns self."""
        self._fit_data(self._rows(X, y), self._rows(X_dev, y_dev, ("X_dev", "y_dev")) if X_dev is not None else None)
        self.classes_ = list(self.pipeline_.labels)
        return self

    def _classes_json(self):
        return list(self.classes_)

    def _restore_classes(self, classes):
        self.classes_ = list(classes)

    def _tag(self, X):
        self._check_fitted()
        p = self.pipeline_
        return p._run(p._clf.predict_split_words, _sentences(X, "X"), p.max_length, p.batch_tokens)

    def predict(self, X):
        """Tags per word of each sentence (list of lists of str)."""
        return [t for t, _ in self._tag(X)]

    def predict_proba(self, X):
        """Per sentence, the probability of each word's predicted tag (list of lists of float)."""
        return [s for _, s in self._tag(X)]

    def score(self, X, y):
        """Word-level tag accuracy on (X, y)."""
        X, y = _sentences(X, "X"), list(y)
        if len(X) != len(y):
            raise ArgumentError("score: X has %d sentences, y %d tag lists" % (len(X), len(y)))
        pred = self.predict(X)
        n = ok = 0
        for p, t in zip(pred, y):
            t = list(t)
            n += len(t)
            ok += sum(a == str(b) for a, b in zip(p, t))
        if n == 0:
            raise ArgumentError("score: no words")
        return ok / n
