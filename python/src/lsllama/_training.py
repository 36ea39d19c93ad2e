"""lsllama.train: LoRA (or full) fine-tuning of a classifier, the `lsllama train` command as a call."""
import math
import numbers
import os
import sys
import warnings
from ctypes import byref, c_int, c_uint, c_void_p, pointer

from . import _lib as L
from ._core import _b, _path, check, parse_name, set_threads
from .errors import ArgumentError, FormatError


class InMemory:
    """Training data held in memory: ``data`` (bytes) in ``format`` ("jsonl", "tsv", "csv", "conll"), named
    ``name`` in error messages. ``lsllama.train`` takes it wherever it takes a file path."""

    def __init__(self, data, format="jsonl", name="<memory>"):
        self.data = data if isinstance(data, bytes) else data.encode("utf-8")
        self.format = format
        self.name = name


def _event_record(ev):
    """A progress report as a dict in log.jsonl's names."""
    if ev.kind == L.LL_TRAIN_STEP:
        return {"step": ev.step, "epoch": ev.epoch, "loss": ev.loss, "lr": ev.lr, "grad_norm": ev.grad_norm,
                "tokens_per_s": ev.tokens_per_s, "total_steps": ev.total_steps, "eta_s": ev.eta_s}
    if ev.kind == L.LL_TRAIN_EVAL:
        r = {"step": ev.step, "eval": "dev", "loss": ev.dev_loss}
        if ev.token_task:
            r.update(f1=ev.f1, precision=ev.precision, recall=ev.recall, token_accuracy=ev.token_accuracy)
        else:
            r.update(accuracy=ev.accuracy, macro_f1=ev.macro_f1)
        r["best"] = bool(ev.best)
        return r
    return {"step": ev.step, "end": True, "total_steps": ev.total_steps}


def _tqdm(progress):
    """tqdm's class for progress=True, or for None in a notebook or while stderr is a terminal (as the CLI shows
    its progress line); None for no bar."""
    if progress is False:
        return None
    if progress is None and "ipykernel" not in sys.modules and not sys.stderr.isatty():
        return None
    try:
        if "ipykernel" in sys.modules:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
    except ImportError:
        if progress is True:
            warnings.warn("progress=True: tqdm is not installed, no progress bar", stacklevel=3)
        return None
    return tqdm


def _fmt(name):
    f = c_int()
    if L.ll_data_format_parse(_b(name), byref(f)) != 0:
        raise ArgumentError("format must be tsv, csv, jsonl, lines or conll, got %r" % (name,))
    return f.value


def train(model, train, out, dev=None, callback=None, progress=None, *, task="seq", tokenizer=None,
          text_column=None, label_column=None, format=None, header=None, skip_invalid=False, multi_label=False,
          max_length=None, base_precision=None, compute=None, word_column=None, tag_column=None,
          tokens_field=None, tags_field=None, tag_names=None, label_all_subtokens=False, any_tags=False,
          pool="last", mask=None, bidirectional_from=None, head_bias=False, head_dropout=None, lora_r=12,
          lora_alpha=32.0, lora_dropout=0.1, lora_targets="q,v", rslora=False, head_only=False, full=False,
          full_targets=None, epochs=1, max_steps=None, lr=1e-4, weight_decay=0.01, warmup_ratio=0.06,
          max_grad_norm=1.0, grad_accum=1, batch_tokens=2048, batch_size=None, recompute=False, seed=42,
          eval_every=None, patience=None, metric=None, checkpoint_every=None, resume=False, overwrite=False,
          threads=None):
    """Train a classifier as ``lsllama train`` does, with its options as keyword arguments (``--lora-r 8`` is
    ``lora_r=8``, ``--head-only`` is ``head_only=True``; defaults are the CLI's), and the same files out:
    ``out/final`` (and ``out/best`` with a dev set), ``out/log.jsonl``, ``out/checkpoint``.

    model: checkpoint path. train, dev: data files (TSV/CSV/JSONL; CoNLL or JSONL for task="token"), or
    ``lsllama.InMemory`` data. out: the run folder (new or empty unless resume/overwrite).
    callback: called with each progress record, a dict in log.jsonl's names: after every optimiser step
    {"step", "epoch" (0-based), "loss" (mean training loss of the step), "tokens_per_s", "total_steps",
    "eta_s" (seconds)}, after every dev evaluation {"step", "eval": "dev", "loss", "accuracy", "macro_f1"
    (token tasks: "f1", "precision", "recall", "token_accuracy"), "best"}, and at the end {"step", "end": True}.
    Step records also carry "lr" and "grad_norm" (before clipping), as log.jsonl does.
    Returning False stops training after that step (final/ is saved, as early stopping does); an exception
    in the callback stops it too and is raised here. progress: a tqdm bar over the steps (None: when tqdm is
    installed and stderr is a terminal or a notebook runs the call; True; False).
    threads: OpenMP threads (None: OMP_NUM_THREADS or all cores).

    Returns a dict {"steps", "best_metric" (-1: no dev evaluation), "best_step" (-1: none),
    "train_tokens_per_s", "seconds", "out", "adapter" (out/best if a dev evaluation saved one, else
    out/final)}. Errors: ArgumentError for bad option values and combinations, FileIOError, FormatError
    (naming the file and line), ConfigError, UnsupportedError, each with the library's message.
    """
    set_threads(threads)
    err = L.ll_error()
    token_task = {"seq": False, "token": True}.get(task)
    if token_task is None:
        raise ArgumentError("task must be seq or token, got %r" % (task,))
    # every argument checked before anything is opened or created
    _path(model, "model")
    _path(out, "out")
    if tokenizer is not None:
        _path(tokenizer, "tokenizer")
    if tag_names is not None:
        _path(tag_names, "tag_names")
    for key, src in (("train", train), ("dev", dev)):
        if (src is not None or key == "train") and not isinstance(src, InMemory):
            _path(src, key)
    if callback is not None and not callable(callback):
        raise ArgumentError("callback must be callable (a function of one dict), got %s" % type(callback).__name__)
    for name, v in (("lora_targets", lora_targets), ("full_targets", full_targets), ("tokens_field", tokens_field),
                    ("tags_field", tags_field)):
        if v is not None and not isinstance(v, str):
            raise ArgumentError("%s must be a str, got %s" % (name, type(v).__name__))
    for name, v, lo, hi in (("epochs", epochs, 1, 100000), ("max_steps", max_steps, 1, 1 << 40),
                            ("grad_accum", grad_accum, 1, 1 << 16), ("batch_tokens", batch_tokens, 1, 1 << 24),
                            ("batch_size", batch_size, 1, 1 << 20), ("seed", seed, 0, 1 << 62),
                            ("eval_every", eval_every, 1, 1 << 40), ("patience", patience, 1, 1 << 20),
                            ("checkpoint_every", checkpoint_every, 1, 1 << 40), ("lora_r", lora_r, 0, 4096),
                            ("max_length", max_length, 1, 1 << 20), ("word_column", word_column, 0, 1 << 20),
                            ("tag_column", None if tag_column == "last" else tag_column, 0, 1 << 20),
                            ("bidirectional_from", bidirectional_from, 0, 1 << 20)):
        if v is not None and not (isinstance(v, numbers.Integral) and not isinstance(v, bool) and lo <= v <= hi):
            raise ArgumentError("%s must be an int in %d..%d, got %r" % (name, lo, hi, v))
    for name, v, lo, hi, hi_open in (("lr", lr, 1e-12, 10, 0), ("weight_decay", weight_decay, 0, 10, 0),
                                     ("warmup_ratio", warmup_ratio, 0, 1, 0), ("max_grad_norm", max_grad_norm, 0, 1e6, 0),
                                     ("lora_alpha", lora_alpha, 1e-6, 1e6, 0), ("lora_dropout", lora_dropout, 0, 1, 1),
                                     ("head_dropout", head_dropout, 0, 1, 1)):
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        if v is not None and not (ok and lo <= v and (v < hi if hi_open else v <= hi)):
            raise ArgumentError("%s must be in [%g, %g%s, got %r" % (name, lo, hi, ")" if hi_open else "]", v))
    # data options (cls_parse_common)
    dopt = L.ll_data_options()
    L.ll_data_options_default(byref(dopt))
    topt = L.ll_token_data_options()
    L.ll_token_data_options_default(byref(topt))
    keep = []  # the bytes the option structs point to
    if text_column is not None:
        keep.append(_b(str(text_column)))
        dopt.text_columns = keep[-1]
    if label_column is not None:
        keep.append(_b(str(label_column)))
        dopt.label_column = keep[-1]
    if format is not None:
        f = _fmt(format)
        if f == 0:
            raise ArgumentError("format must be tsv, csv, jsonl, lines or conll")
        dopt.format = topt.format = f
    if header is not None:
        dopt.header = L.LL_HEADER_YES if header else L.LL_HEADER_NO
    if skip_invalid:
        dopt.skip_invalid = topt.skip_invalid = 1
    cc = L.ll_classifier_config()
    cc.pool = parse_name("pool", L.ll_pool_parse, pool, L.ll_pool_name)
    cc.bidirectional_from = -1 if bidirectional_from is None else int(bidirectional_from)
    cc.lora_r, cc.lora_alpha, cc.lora_dropout = int(lora_r), float(lora_alpha), float(lora_dropout)
    if multi_label:
        dopt.multi_label = cc.multi_label = 1
    if head_bias:
        cc.head_bias = 1
    if rslora:
        cc.use_rslora = 1
    if word_column is not None:
        topt.word_column = int(word_column)
    if tag_column is not None:
        topt.tag_column = L.LL_COLUMN_LAST if tag_column == "last" else int(tag_column)
    if tokens_field is not None:
        keep.append(_b(tokens_field))
        topt.tokens_field = keep[-1]
    if tags_field is not None:
        keep.append(_b(tags_field))
        topt.tags_field = keep[-1]
    if any_tags:
        topt.any_tags = 1
    tt = L.ll_token_tokenize_options(1 if label_all_subtokens else 0, 0)
    mask_bidir = -1
    if mask is not None:
        if mask not in L.LL_MASKS:
            raise ArgumentError("mask must be causal or bidirectional, got %r" % (mask,))
        mask_bidir = 1 if mask == "bidirectional" else 0
    lora_given = (lora_r, lora_alpha, lora_dropout, lora_targets, rslora) != (12, 32.0, 0.1, "q,v", False)
    # training options
    to = L.ll_train_options()
    L.ll_train_options_default(byref(to))
    to.epochs = int(epochs)
    if max_steps is not None:
        to.max_steps = int(max_steps)
    to.lr, to.weight_decay, to.warmup_ratio, to.max_grad_norm = float(lr), float(weight_decay), \
        float(warmup_ratio), float(max_grad_norm)
    to.grad_accum, to.batch_tokens = int(grad_accum), int(batch_tokens)
    if batch_size is not None:
        to.batch_seqs = int(batch_size)
    to.recompute = 1 if recompute else 0
    to.seed = int(seed)
    if eval_every is not None:
        to.eval_every = int(eval_every)
    if patience is not None:
        to.patience = int(patience)
    if checkpoint_every is not None:
        to.checkpoint_every = int(checkpoint_every)
    to.resume, to.overwrite = 1 if resume else 0, 1 if overwrite else 0
    m = -1 if metric is None else parse_name("metric", L.ll_metric_parse, metric, L.ll_metric_name)
    if token_task:
        if multi_label:
            raise ArgumentError("multi_label is for sequence tasks")
        if m in (L.LL_METRIC_ACCURACY, L.LL_METRIC_MACRO_F1):
            raise ArgumentError("metric for token tasks is f1 or token_accuracy")
        to.metric = L.LL_METRIC_ENTITY_F1 if m < 0 else m
        cc.token_task = 1
        cc.head_bias = 1
        cc.head_dropout = 0.1 if head_dropout is None else float(head_dropout)
        if mask_bidir < 0 and cc.bidirectional_from < 0:
            mask_bidir = 1
    else:
        if m in (L.LL_METRIC_ENTITY_F1, L.LL_METRIC_TOKEN_ACCURACY):
            raise ArgumentError("metric for sequence tasks is accuracy or macro_f1")
        if head_dropout is not None:
            raise ArgumentError("head_dropout is for token tasks (transformers' sequence head has none)")
        to.metric = m if m >= 0 else L.LL_METRIC_ACCURACY
    if full and full_targets is None:
        full_targets = "all-linear"
    if full_targets is not None and (head_only or lora_given):
        raise ArgumentError("full fine-tuning (full, full_targets) trains the base weights themselves: %s does not "
                            "apply to it" % ("head_only" if head_only else "LoRA options"))
    mask_bits = c_uint()
    if full_targets is not None:
        check(L.ll_full_targets_parse(_b(full_targets, "full_targets"), byref(mask_bits), byref(err)), err)
        cc.full_targets = mask_bits.value
        cc.lora_r = cc.lora_targets = 0
    elif head_only:
        cc.lora_r = cc.lora_targets = 0
    elif cc.lora_r == 0:
        raise ArgumentError("lora_r 0 with LoRA requested (use head_only=True to train the head alone)")
    if not head_only and full_targets is None:
        check(L.ll_lora_targets_parse(_b(lora_targets, "lora_targets"), byref(mask_bits), byref(err)), err)
        cc.lora_targets = mask_bits.value
    if resume and overwrite:
        raise ArgumentError("resume=True and overwrite=True exclude each other")
    lo = L.ll_load_options()
    if base_precision is not None:
        lo.base_precision = parse_name("base_precision", L.ll_base_precision_parse, base_precision,
                                       L.ll_base_precision_name)
    if compute is not None:
        lo.compute = parse_name("compute", L.ll_compute_parse, compute, L.ll_compute_name)
        check(L.ll_compute_check(lo.compute, byref(err)), err)

    handles = {"rd": c_void_p(), "m": c_void_p(), "tok": c_void_p(), "map": c_void_p(), "train": c_void_p(),
               "dev": c_void_p(), "c": c_void_p(), "names": c_void_p()}
    bar = None
    try:
        mode = L.LL_RUN_RESUME if resume else L.LL_RUN_OVERWRITE if overwrite else L.LL_RUN_NEW
        check(L.ll_run_dir_open(byref(handles["rd"]), _path(out, "out"), mode, byref(err)), err)
        to.run_dir = handles["rd"]
        if resume:
            v = c_int()
            if base_precision is None and check(L.ll_run_base_precision(_path(out, "out"), byref(v), byref(err)), err) == 1:
                lo.base_precision = v.value
            if compute is None and check(L.ll_run_compute(_path(out, "out"), byref(v), byref(err)), err) == 1:
                lo.compute = v.value
        check(L.ll_model_load(byref(handles["m"]), _path(model, "model"), byref(lo), byref(err)), err)
        tok_src = tokenizer if tokenizer is not None else model
        check(L.ll_tokenizer_load(byref(handles["tok"]), _path(tok_src, "tokenizer"), byref(err)), err)
        w = L.ll_tokenizer_warning(handles["tok"])
        if w:
            warnings.warn(w.decode("utf-8", "replace"), stacklevel=2)
        cfg = L.ll_model_config(handles["m"]).contents
        if max_length is not None and cfg.max_seq_len > 0 and max_length > cfg.max_seq_len:
            raise ArgumentError("max_length %d exceeds the model's context length %d" % (max_length, cfg.max_seq_len))
        if cc.bidirectional_from > cfg.n_layers:
            raise ArgumentError("bidirectional_from %d exceeds the model's %d layers"
                                % (cc.bidirectional_from, cfg.n_layers))
        if cc.bidirectional_from < 0:  # no mask given: the model's default, as the CLI's
            cc.bidirectional_from = 0 if mask_bidir > 0 else cfg.n_layers if mask_bidir == 0 else \
                L.ll_config_default_bidirectional_from(L.ll_model_config(handles["m"]))
        max_len = 256 if max_length is None else int(max_length)
        if tag_names is not None:
            check(L.ll_tag_names_load(byref(handles["names"]), _path(tag_names, "tag_names"), byref(err)), err)
            topt.tag_names = handles["names"]

        def load_split(src, key):
            ds = handles[key]
            if isinstance(src, InMemory):
                o = dopt if not token_task else topt
                saved = o.format
                if o.format == 0:
                    o.format = _fmt(src.format)
                try:
                    if token_task:
                        check(L.ll_token_dataset_load_memory(byref(ds), src.data, len(src.data), _b(src.name),
                                                             byref(topt), byref(err)), err)
                    else:
                        check(L.ll_dataset_load_memory(byref(ds), src.data, len(src.data), _b(src.name),
                                                       byref(dopt), byref(err)), err)
                finally:
                    o.format = saved
                name = src.name
            else:
                name = os.fspath(src)
                if token_task:
                    check(L.ll_token_dataset_load(byref(ds), _path(src, key), byref(topt), byref(err)), err)
                else:
                    check(L.ll_dataset_load(byref(ds), _path(src, key), byref(dopt), byref(err)), err)
            if not handles["map"]:
                check(L.ll_labelmap_build(byref(handles["map"]), ds, byref(err)), err)
            check(L.ll_dataset_apply_labels(ds, handles["map"], byref(err)), err)
            if token_task:
                check(L.ll_token_dataset_tokenize(ds, handles["tok"], max_len, byref(tt), byref(err)), err)
            else:
                check(L.ll_dataset_tokenize(ds, handles["tok"], max_len, byref(err)), err)
            info = L.ll_dataset_info()
            L.ll_dataset_get_info(ds, byref(info))
            if (info.n_sentences if token_task else info.n_examples) == 0:
                raise FormatError("%s: no usable %s" % (name, "sentences" if token_task else "examples"))
            return info

        info = load_split(train, "train")
        if not token_task and info.multi_label:  # JSONL label arrays make the data multi-label on their own
            cc.multi_label = dopt.multi_label = 1
        if dev is not None:
            load_split(dev, "dev")
        cc.n_labels = L.ll_labelmap_size(handles["map"])
        check(L.ll_classifier_create(byref(handles["c"]), handles["m"], byref(cc), to.seed, byref(err)), err)
        keep.extend([_path(out, "out"), _path(model, "model"), _path(tok_src, "tokenizer")])
        to.out_dir, to.base_model_name, to.tokenizer_source = keep[-3], keep[-2], keep[-1]
        to.label_names = L.ll_labelmap_names(handles["map"])
        to.tokenizer = handles["tok"]
        stop = c_int(0)
        to.stop = pointer(stop)
        failure = []
        tqdm = _tqdm(progress)

        def on_event(ctx, evp):
            nonlocal bar
            try:
                ev = evp.contents
                if tqdm is not None:
                    if bar is None:
                        bar = tqdm(total=int(ev.total_steps), unit="step", desc="train")
                    if ev.kind == L.LL_TRAIN_STEP:
                        bar.n = int(ev.step)
                        bar.set_postfix(loss="%.4f" % ev.loss, refresh=False)
                        bar.refresh()
                    elif ev.kind == L.LL_TRAIN_EVAL:
                        bar.write("dev @%d: %s" % (ev.step, ", ".join(
                            "%s %.4f" % kv for kv in _event_record(ev).items() if isinstance(kv[1], float))))
                if callback is not None and callback(_event_record(ev)) is False:
                    stop.value = 1
            except BaseException as e:  # never across the C frames: stop, raise after ll_train returns
                failure.append(e)
                stop.value = 1

        cb = L.TRAIN_PROGRESS_FN(on_event)
        to.progress = cb
        res = L.ll_train_result()
        rc = L.ll_train(handles["c"], handles["train"], handles["dev"] or None, byref(to), byref(res), byref(err))
        if failure:
            raise failure[0]
        check(rc, err)
        outp = os.fspath(out)
        best = os.path.join(outp, "best")
        return {"steps": res.steps, "best_metric": res.best_metric, "best_step": res.best_step,
                "train_tokens_per_s": res.train_tokens_per_s, "seconds": res.seconds, "out": outp,
                "adapter": best if res.best_step >= 0 and os.path.isdir(best) else os.path.join(outp, "final")}
    finally:
        if bar is not None:
            bar.close()
        L.ll_classifier_free(handles["c"])
        L.ll_dataset_free(handles["train"])
        L.ll_dataset_free(handles["dev"])
        L.ll_labelmap_free(handles["map"])
        L.ll_labelmap_free(handles["names"])
        L.ll_tokenizer_free(handles["tok"])
        L.ll_model_free(handles["m"])
        L.ll_run_dir_close(handles["rd"])
