"""ctypes declarations of liblsllama's public API (include/lsllama.h, lsllama_tokenizer.h, lsllama_train.h).

Only what the package calls is declared. Every call goes through ctypes.CDLL, which releases the GIL for the
duration of the call, so Python threads working on separate handles run the library concurrently.
"""
import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_ubyte, c_uint, c_uint64, c_void_p)

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load():
    path = os.environ.get("LSLLAMA_LIBRARY") or os.path.join(_HERE, "liblsllama.so")
    return ctypes.CDLL(path)


lib = _load()


class ll_error(Structure):
    _fields_ = [("code", c_int), ("message", c_char * 1024)]


class ll_config(Structure):
    _fields_ = [("arch", c_char * 32), ("dim", c_int), ("hidden_dim", c_int), ("n_layers", c_int),
                ("n_heads", c_int), ("n_kv_heads", c_int), ("head_dim", c_int), ("vocab_size", c_int),
                ("max_seq_len", c_int), ("rope_theta", c_float), ("rms_eps", c_float), ("rope_scaling", c_int),
                ("rope_factor", c_float), ("rope_low_freq_factor", c_float), ("rope_high_freq_factor", c_float),
                ("rope_original_max_pos", c_int), ("tied_embeddings", c_int), ("qkv_bias", c_int),
                ("o_bias", c_int), ("mlp_bias", c_int), ("hidden_act", c_int), ("hidden_act_name", c_char * 24),
                ("sliding_window", c_int), ("bos_token_id", c_int), ("eos_token_id", c_int),
                ("query_pre_attn_scalar", c_float), ("rope_local_theta", c_float),
                ("sliding_layers", c_uint64 * (1024 // 64)), ("use_bidirectional_attention", c_int)]


class ll_load_options(Structure):
    _fields_ = [("with_lm_head", c_int), ("base_precision", c_int), ("compute", c_int)]


class ll_batch(Structure):
    _fields_ = [("tokens", POINTER(c_int32)), ("seq_start", POINTER(c_int32)), ("n_seqs", c_int)]


class ll_forward_options(Structure):
    _fields_ = [("bidirectional_from", c_int)]


class ll_forward_outputs(Structure):
    _fields_ = [("hidden", POINTER(c_float)), ("pooled", POINTER(c_float)), ("pool", c_int),
                ("logits_last", POINTER(c_float))]


class ll_encoding(Structure):
    _fields_ = [("ids", POINTER(c_int32)), ("char_start", POINTER(c_int32)), ("char_end", POINTER(c_int32)),
                ("byte_start", POINTER(c_int64)), ("byte_end", POINTER(c_int64)), ("n", c_size_t),
                ("cap", c_size_t)]


class ll_data_options(Structure):
    _fields_ = [("format", c_int), ("header", c_int), ("text_columns", c_char_p), ("label_column", c_char_p),
                ("no_labels", c_int), ("text_join", c_char_p), ("multi_label", c_int), ("label_sep", c_char_p),
                ("no_quotes", c_int), ("strip_text", c_int), ("skip_invalid", c_int)]


class ll_token_data_options(Structure):
    _fields_ = [("format", c_int), ("word_column", c_int), ("tag_column", c_int), ("tokens_field", c_char_p),
                ("tags_field", c_char_p), ("tag_names", c_void_p), ("no_tags", c_int), ("any_tags", c_int),
                ("skip_invalid", c_int)]


class ll_token_tokenize_options(Structure):
    _fields_ = [("label_all_subtokens", c_int), ("own_tokens", c_int)]


class ll_classifier_config(Structure):
    _fields_ = [("n_labels", c_int), ("pool", c_int), ("bidirectional_from", c_int), ("head_bias", c_int),
                ("multi_label", c_int), ("lora_r", c_int), ("lora_alpha", c_float), ("lora_dropout", c_float),
                ("lora_targets", c_uint), ("use_rslora", c_int), ("token_task", c_int), ("head_dropout", c_float),
                ("full_targets", c_uint)]


class ll_adapter_info(Structure):
    _fields_ = [("task_type", c_char * 16), ("base_model_name_or_path", c_char_p), ("n_labels", c_int),
                ("id2label", POINTER(c_char_p)), ("has_label_map", c_int)]


class ll_seq_prediction(Structure):
    _fields_ = [("index", c_size_t), ("text", c_char_p), ("n_labels", c_int), ("label", c_int),
                ("logits", POINTER(c_float)), ("probabilities", POINTER(c_double)), ("predicted", POINTER(c_int))]


class ll_entity_span(Structure):
    _fields_ = [("type", c_char_p), ("start", c_int), ("end", c_int), ("byte_start", c_int), ("byte_end", c_int),
                ("word_start", c_int), ("word_end", c_int), ("score", c_double)]


class ll_sentence_prediction(Structure):
    _fields_ = [("index", c_size_t), ("text", c_void_p), ("text_len", c_size_t), ("n_words", c_int),
                ("words", POINTER(c_char_p)), ("tags", POINTER(c_char_p)), ("scores", POINTER(c_float)),
                ("n_entities", c_size_t), ("entities", POINTER(ll_entity_span)),
                ("n_labels", c_int), ("word_token", POINTER(c_int)), ("token_between", POINTER(c_ubyte)),
                ("token_probs", POINTER(c_float)), ("token_label", POINTER(c_int)), ("token_start", POINTER(c_int)),
                ("token_end", POINTER(c_int)), ("token_byte_start", POINTER(c_int)),
                ("token_byte_end", POINTER(c_int)), ("token_index", POINTER(c_int))]


PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_size_t, c_size_t)


class ll_eval_progress(Structure):
    _fields_ = [("fn", PROGRESS_FN), ("ctx", c_void_p)]


SEQ_PREDICTION_FN = CFUNCTYPE(c_int, c_void_p, POINTER(ll_seq_prediction))
SENTENCE_PREDICTION_FN = CFUNCTYPE(c_int, c_void_p, POINTER(ll_sentence_prediction))

# enum values (include/*.h)
LL_DATA_JSONL = 3
LL_DATA_LINES = 4
LL_TOK_DEFAULT = 3
LL_POOLS = {"last": 0, "mean": 1, "max": 2, "first": 3}
LL_MASKS = {"causal": 0, "bidirectional": 1}

E = POINTER(ll_error)


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    globals()[name] = f


def _check_cpu():
    """Refuse a library compiled for a CPU with instruction sets this one lacks (a wheel built with -march=native
    elsewhere) with UnsupportedError naming them, before a later call could die of SIGILL: ll_cpu_check runs on
    any x86-64 CPU."""
    _fn("ll_cpu_check", c_int, E)
    err = ll_error()
    rc = ll_cpu_check(ctypes.byref(err))  # noqa: F821 (declared by _fn)
    if rc:
        from .errors import raise_for
        raise_for(rc, err)


_check_cpu()
_fn("ll_status_name", c_char_p, c_int)
_fn("ll_version", c_char_p)
_fn("ll_base_precision_parse", c_int, c_char_p, POINTER(c_int))
_fn("ll_base_precision_name", c_char_p, c_int)
_fn("ll_compute_parse", c_int, c_char_p, POINTER(c_int))
_fn("ll_compute_name", c_char_p, c_int)
_fn("ll_model_load", c_int, POINTER(c_void_p), c_char_p, POINTER(ll_load_options), E)
_fn("ll_model_free", None, c_void_p)
_fn("ll_model_config", POINTER(ll_config), c_void_p)
_fn("ll_config_default_bidirectional_from", c_int, POINTER(ll_config))
_fn("ll_forward", c_int, c_void_p, POINTER(ll_batch), POINTER(ll_forward_options), POINTER(ll_forward_outputs), E)
_fn("ll_tokenizer_load", c_int, POINTER(c_void_p), c_char_p, E)
_fn("ll_tokenizer_free", None, c_void_p)
_fn("ll_tokenizer_warning", c_char_p, c_void_p)
_fn("ll_tokenizer_encode", c_int, c_void_p, c_char_p, c_size_t, c_int, POINTER(ll_encoding), E)
_fn("ll_encoding_free", None, POINTER(ll_encoding))
_fn("ll_data_options_default", None, POINTER(ll_data_options))
_fn("ll_dataset_load_memory", c_int, POINTER(c_void_p), c_char_p, c_size_t, c_char_p, POINTER(ll_data_options), E)
_fn("ll_dataset_free", None, c_void_p)
_fn("ll_dataset_tokenize", c_int, c_void_p, c_void_p, c_int, E)
_fn("ll_token_data_options_default", None, POINTER(ll_token_data_options))
_fn("ll_token_dataset_load_memory", c_int, POINTER(c_void_p), c_char_p, c_size_t, c_char_p,
    POINTER(ll_token_data_options), E)
_fn("ll_token_dataset_tokenize", c_int, c_void_p, c_void_p, c_int, POINTER(ll_token_tokenize_options), E)
_fn("ll_labelmap_from_names", c_int, POINTER(c_void_p), POINTER(c_char_p), c_int, E)
_fn("ll_labelmap_free", None, c_void_p)
_fn("ll_classifier_free", None, c_void_p)
_fn("ll_classifier_get_config", POINTER(ll_classifier_config), c_void_p)
_fn("ll_classifier_predict", c_int, c_void_p, c_void_p, c_size_t, POINTER(ll_eval_progress), SEQ_PREDICTION_FN,
    c_void_p, E)
_fn("ll_classifier_predict_tokens", c_int, c_void_p, c_void_p, c_void_p, c_size_t, POINTER(ll_eval_progress),
    SENTENCE_PREDICTION_FN, c_void_p, E)
_fn("ll_adapter_load", c_int, c_char_p, c_void_p, POINTER(ll_classifier_config), POINTER(c_void_p),
    POINTER(ll_adapter_info), E)
_fn("ll_adapter_info_free", None, POINTER(ll_adapter_info))
_fn("ll_adapter_base_precision", c_int, c_char_p, POINTER(c_int), E)
_fn("ll_merged_is_classifier", c_int, c_char_p)
_fn("ll_merged_load", c_int, c_char_p, c_void_p, POINTER(c_void_p), POINTER(ll_adapter_info), E)


def _omp(name, restype, *argtypes):
    # OpenMP's thread count is a per-thread setting (the calling thread's team); libgomp is a dependency of
    # liblsllama.so, so dlsym through the library's handle finds it.
    try:
        f = getattr(lib, name)
    except AttributeError:  # pragma: no cover - a library without OpenMP
        return None
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


omp_set_num_threads = _omp("omp_set_num_threads", None, c_int)
omp_get_max_threads = _omp("omp_get_max_threads", c_int)


# ---- training (lsllama_train.h) ----------------------------------------------------------------------------------

class ll_dataset_info(Structure):
    _fields_ = [("path", c_char_p), ("token_task", c_int), ("multi_label", c_int), ("has_labels", c_int),
                ("n_examples", c_size_t), ("n_skipped", c_size_t), ("first_skip", c_char_p),
                ("n_truncated", c_size_t), ("n_sentences", c_size_t), ("n_words", c_size_t), ("n_split", c_size_t),
                ("n_empty_words", c_size_t), ("n_cut_words", c_size_t)]


class ll_train_event(Structure):
    _fields_ = [("kind", c_int), ("step", c_int64), ("total_steps", c_int64), ("epoch", c_int64), ("loss", c_double),
                ("tokens_per_s", c_double), ("eta_s", c_double), ("token_task", c_int), ("dev_loss", c_double),
                ("accuracy", c_double), ("macro_f1", c_double), ("f1", c_double), ("precision", c_double),
                ("recall", c_double), ("token_accuracy", c_double), ("best", c_int), ("lr", c_double),
                ("grad_norm", c_double)]


TRAIN_PROGRESS_FN = CFUNCTYPE(None, c_void_p, POINTER(ll_train_event))


class ll_train_options(Structure):
    _fields_ = [("epochs", c_int), ("max_steps", c_int64), ("lr", c_float), ("weight_decay", c_float),
                ("warmup_ratio", c_float), ("max_grad_norm", c_float), ("beta1", c_float), ("beta2", c_float),
                ("adam_eps", c_float), ("grad_accum", c_int), ("batch_tokens", c_size_t), ("batch_seqs", c_size_t),
                ("recompute", c_int), ("seed", c_uint64), ("eval_every", c_int64), ("patience", c_int),
                ("metric", c_int), ("checkpoint_every", c_int64), ("out_dir", c_char_p),
                ("base_model_name", c_char_p), ("label_names", POINTER(c_char_p)), ("resume", c_int),
                ("overwrite", c_int), ("run_dir", c_void_p), ("progress", TRAIN_PROGRESS_FN),
                ("progress_ctx", c_void_p), ("stop_after_steps", c_int64), ("batches_out", c_char_p),
                ("dist", c_void_p), ("dist_check_every", c_int64), ("tokenizer", c_void_p),
                ("tokenizer_source", c_char_p), ("stop", POINTER(c_int))]


class ll_train_result(Structure):
    _fields_ = [("steps", c_int64), ("best_metric", c_double), ("best_step", c_int64),
                ("train_tokens_per_s", c_double), ("seconds", c_double)]


LL_TRAIN_STEP, LL_TRAIN_EVAL, LL_TRAIN_END = 0, 1, 2
LL_RUN_NEW, LL_RUN_RESUME, LL_RUN_OVERWRITE = 0, 1, 2
LL_METRIC_ACCURACY, LL_METRIC_MACRO_F1, LL_METRIC_ENTITY_F1, LL_METRIC_TOKEN_ACCURACY = 0, 1, 2, 3
LL_HEADER_AUTO, LL_HEADER_YES, LL_HEADER_NO = 0, 1, 2
LL_COLUMN_LAST = -1

_fn("ll_pool_parse", c_int, c_char_p, POINTER(c_int))
_fn("ll_pool_name", c_char_p, c_int)
_fn("ll_data_format_parse", c_int, c_char_p, POINTER(c_int))
_fn("ll_metric_parse", c_int, c_char_p, POINTER(c_int))
_fn("ll_metric_name", c_char_p, c_int)
_fn("ll_lora_targets_parse", c_int, c_char_p, POINTER(c_uint), E)
_fn("ll_full_targets_parse", c_int, c_char_p, POINTER(c_uint), E)
_fn("ll_compute_check", c_int, c_int, E)
_fn("ll_run_dir_open", c_int, POINTER(c_void_p), c_char_p, c_int, E)
_fn("ll_run_dir_close", None, c_void_p)
_fn("ll_run_base_precision", c_int, c_char_p, POINTER(c_int), E)
_fn("ll_run_compute", c_int, c_char_p, POINTER(c_int), E)
_fn("ll_dataset_load", c_int, POINTER(c_void_p), c_char_p, POINTER(ll_data_options), E)
_fn("ll_token_dataset_load", c_int, POINTER(c_void_p), c_char_p, POINTER(ll_token_data_options), E)
_fn("ll_tag_names_load", c_int, POINTER(c_void_p), c_char_p, E)
_fn("ll_labelmap_build", c_int, POINTER(c_void_p), c_void_p, E)
_fn("ll_labelmap_size", c_int, c_void_p)
_fn("ll_labelmap_names", POINTER(c_char_p), c_void_p)
_fn("ll_dataset_apply_labels", c_int, c_void_p, c_void_p, E)
_fn("ll_dataset_get_info", None, c_void_p, POINTER(ll_dataset_info))
_fn("ll_classifier_create", c_int, POINTER(c_void_p), c_void_p, POINTER(ll_classifier_config), c_uint64, E)
_fn("ll_classifier_n_params", c_size_t, c_void_p)
_fn("ll_train_options_default", None, POINTER(ll_train_options))
_fn("ll_train", c_int, c_void_p, c_void_p, c_void_p, POINTER(ll_train_options), POINTER(ll_train_result), E)
