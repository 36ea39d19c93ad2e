#!/usr/bin/env python3
"""Config-key parity sweep (issue 11): one tiny random transformers model per implemented config option of each
supported architecture (LlamaConfig, MistralConfig, Qwen2Config), and one checkpoint per refused option.

Writes into OUT (default build/generated/config_sweep):

  ok/<case>/config.json, model.safetensors   the model, saved by transformers' save_pretrained (float32)
  ok/<case>/expected.safetensors            tokens I32 [T], seq_start I32 [n+1], hidden F32 [T, D]: the final-norm
                                            hidden states of each sequence run alone through the base model
                                            (causal, eager attention), packed without padding
  refused/<case>/...                        a checkpoint lsllama must refuse
  manifest.txt                              one line per case: "ok <case>" or "refused <case> <substring>", the
                                            substring being what the error message must contain (the key or
                                            tensor name and its value)

Every parameter, biases included, is drawn at random (transformers initialises biases to zero, which would hide a
dropped bias). The C side is tests/test_config_parity.c (tolerance 1e-4).
"""

import argparse
import json
import os
import shutil

import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file, save_file as save_torch
from transformers import (Gemma3TextConfig, Gemma3TextModel, LlamaConfig, LlamaModel, MistralConfig, MistralModel,
                          Qwen2Config, Qwen2Model)

ARCH = {"llama": (LlamaConfig, LlamaModel), "mistral": (MistralConfig, MistralModel), "qwen2": (Qwen2Config, Qwen2Model),
        "gemma3": (Gemma3TextConfig, Gemma3TextModel)}
# Gemma 3: three layers (sliding, global, sliding by sliding_window_pattern 2), heads of 8, a window of 3 that the
# 8-token sequence passes; its expected.safetensors also holds hidden_bidirectional (use_bidirectional_attention,
# which halves the window: |q - k| < 3 // 2 + 1)
GEMMA = dict(num_hidden_layers=3, head_dim=8, sliding_window=3, sliding_window_pattern=2, query_pre_attn_scalar=8)
BASE = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=61, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False)
SEQS = [[1, 5, 9, 33, 2, 17, 40, 8], [3, 60, 12], [7]]

# (architecture, case name, config overrides): each must give hidden states within 1e-4 of transformers'
OK_CASES = [
    ("llama", "default", {}),
    ("llama", "attention_bias", {"attention_bias": True}),
    ("llama", "mlp_bias", {"mlp_bias": True}),
    ("llama", "both_biases_gelu", {"attention_bias": True, "mlp_bias": True, "hidden_act": "gelu"}),
    ("llama", "gelu", {"hidden_act": "gelu"}),
    ("llama", "gelu_new", {"hidden_act": "gelu_new"}),
    ("llama", "gelu_pytorch_tanh", {"hidden_act": "gelu_pytorch_tanh"}),
    ("llama", "relu", {"hidden_act": "relu"}),
    ("llama", "swish", {"hidden_act": "swish"}),
    ("llama", "head_dim_16", {"head_dim": 16}),
    ("llama", "no_kv_heads_key", {"num_key_value_heads": None}),
    ("llama", "rope_theta_500", {"rope_theta": 500.0}),
    ("llama", "rope_linear", {"rope_scaling": {"rope_type": "linear", "factor": 4.0}}),
    ("llama", "rope_llama3", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}),
    ("llama", "pretraining_tp_2", {"pretraining_tp": 2}),
    ("llama", "rms_eps_1e-3", {"rms_norm_eps": 1e-3}),
    ("llama", "no_rms_eps_key", {"rms_norm_eps": None}),
    ("mistral", "default", {"sliding_window": None}),
    ("mistral", "window_not_reached", {"sliding_window": 8}),
    ("mistral", "gelu", {"hidden_act": "gelu", "sliding_window": None}),
    ("mistral", "head_dim_16", {"head_dim": 16, "sliding_window": None}),
    ("qwen2", "default", {}),
    ("qwen2", "relu", {"hidden_act": "relu"}),
    ("qwen2", "gelu_pytorch_tanh", {"hidden_act": "gelu_pytorch_tanh"}),
    ("qwen2", "sliding_off", {"use_sliding_window": False, "sliding_window": 4}),
    ("qwen2", "window_not_reached", {"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 1}),
    # windows the 8-token sequence passes: computed (causal), as transformers' sliding_window_overlay
    ("mistral", "window_3", {"sliding_window": 3}),
    ("qwen2", "window_3", {"use_sliding_window": True, "sliding_window": 3, "max_window_layers": 1}),
    ("gemma3", "default", dict(GEMMA)),
    ("gemma3", "window_2", dict(GEMMA, sliding_window=2)),
    ("gemma3", "window_5", dict(GEMMA, sliding_window=5)),
    ("gemma3", "qpas_20", dict(GEMMA, query_pre_attn_scalar=20)),
    ("gemma3", "attention_bias", dict(GEMMA, attention_bias=True)),
    ("gemma3", "gelu", dict(GEMMA, hidden_activation="gelu")),
    ("gemma3", "rope_parameters", dict(GEMMA, rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 50.0}})),
    ("gemma3", "layer_types", dict(GEMMA, layer_types=["full_attention", "sliding_attention", "sliding_attention"])),
    # layer_types left out of config.json: the default pattern (every 6th layer global) over 7 layers
    ("gemma3", "no_layer_types", dict(GEMMA, num_hidden_layers=7, sliding_window_pattern=None, layer_types=None)),
    ("gemma3", "no_head_dim_key", dict(GEMMA, head_dim=None, query_pre_attn_scalar=None)),
]

# (architecture, case, config overrides, json edits after saving, tensor edit, substring the error must hold)
REFUSED = [
    ("llama", "hidden_act_tanh", {}, {"hidden_act": "tanh"}, None, "'hidden_act' = \"tanh\""),
    ("llama", "hidden_act_quick_gelu", {}, {"hidden_act": "quick_gelu"}, None, "'hidden_act' = \"quick_gelu\""),
    ("llama", "attention_dropout", {}, {"attention_dropout": 0.1}, None, "'attention_dropout' = 0.1"),
    ("llama", "rope_yarn", {}, {"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}},
     None, "'yarn'"),
    ("llama", "rope_dynamic", {}, {"rope_parameters": {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}},
     None, "'dynamic'"),
    # both spellings at once: transformers takes rope_scaling with the default theta, ignoring rope_parameters
    ("llama", "rope_both", {}, {"rope_parameters": {"rope_type": "default", "rope_theta": 300.0},
                                "rope_scaling": {"rope_type": "linear", "factor": 2.0}}, None,
     "both 'rope_parameters' and 'rope_scaling'"),
    ("llama", "partial_rotary", {}, {"partial_rotary_factor": 0.5}, None, "'partial_rotary_factor' = 0.5"),
    ("llama", "quantization_config", {}, {"quantization_config": {"quant_method": "gptq"}}, None,
     "'quantization_config'"),
    # the headline fault: a bias the config does not enable
    ("llama", "o_bias_without_key", {"attention_bias": True}, {"attention_bias": False}, None,
     "\"attention_bias\": true"),
    ("llama", "mlp_bias_without_key", {"mlp_bias": True}, {"mlp_bias": False}, None, "\"mlp_bias\": true"),
    ("llama", "stray_tensor", {}, {}, ("layers.1.mlp.extra.weight", (3, 3)), "'layers.1.mlp.extra.weight'"),
    ("mistral", "mistral_bias", {}, {}, ("layers.0.self_attn.q_proj.bias", (32,)), "q_proj.bias"),
    ("qwen2", "qwen2_o_bias", {}, {}, ("layers.0.self_attn.o_proj.bias", (32,)), "o_proj.bias"),
    ("qwen2", "layer_types_bad", {}, {"use_sliding_window": True, "layer_types": ["full_attention", "chunked"]},
     None, "'layer_types'"),
    ("gemma3", "attn_softcap", dict(GEMMA), {"attn_logit_softcapping": 50.0}, None, "'attn_logit_softcapping' = 50"),
    ("gemma3", "final_softcap", dict(GEMMA), {"final_logit_softcapping": 30.0}, None,
     "'final_logit_softcapping' = 30"),
    ("gemma3", "bidirectional_key_text", dict(GEMMA), {"use_bidirectional_attention": "yes"}, None,
     "'use_bidirectional_attention' = \"yes\""),
    ("gemma3", "local_rope_linear", dict(GEMMA), {"rope_parameters": {
        "full_attention": {"rope_type": "default", "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}}}, None,
     "'rope_parameters.sliding_attention.rope_type' = \"linear\""),
    ("gemma3", "hidden_activation_tanh", dict(GEMMA), {"hidden_activation": "tanh"}, None,
     "'hidden_activation' = \"tanh\""),
    ("gemma3", "layer_types_chunked", dict(GEMMA), {"layer_types": ["full_attention", "chunked", "full_attention"]},
     None, "'layer_types'"),
]


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                # Gemma's RMSNorm multiplies by (1 + weight): its weights are centred on 0
                centre = 0.0 if isinstance(model, Gemma3TextModel) else 1.0
                p.copy_(centre + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def build(arch, over, seed):
    cfg_cls, model_cls = ARCH[arch]
    kw = dict(BASE)
    kw.update({k: v for k, v in over.items() if v is not None})
    for k, v in over.items():
        if v is None:
            kw.pop(k, None)
    if arch == "gemma3":  # Gemma3TextConfig's own defaults, not the Llama-family BASE's (head_dim: 256)
        kw.pop("tie_word_embeddings")
    cfg = cfg_cls(**kw)
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).float().eval()
    randomize(model, seed)
    return model


def bidirectional_twin(folder, twin):
    """The saved Gemma 3 model in folder twin with use_bidirectional_attention in its config.json, loaded: every
    layer bidirectional, the sliding layers' window halved (Gemma3TextConfig.__post_init__)."""
    shutil.copytree(folder, twin)
    path = os.path.join(twin, "config.json")
    j = json.load(open(path))
    j["use_bidirectional_attention"] = True  # as a config.json that says so (from_pretrained(..., key=True) does
    json.dump(j, open(path, "w"), indent=2)  # not halve the window)
    model = Gemma3TextModel.from_pretrained(twin, attn_implementation="eager", dtype=torch.float32).eval()
    assert model.config.sliding_window == j["sliding_window"] // 2 + 1
    return model


def drop_keys(folder, over):
    """A key set to None in the case: remove it from config.json (the loader must use transformers' default)."""
    path = os.path.join(folder, "config.json")
    j = json.load(open(path))
    for k, v in over.items():
        if v is None:
            j.pop(k, None)
            if k == "head_dim":  # query_pre_attn_scalar (256) must not be what makes head_dim's default right
                assert Gemma3TextConfig().head_dim == 256
            if k == "rms_norm_eps":  # the default the test relies on: transformers' 1e-6
                assert LlamaConfig().rms_norm_eps == 1e-6
    json.dump(j, open(path, "w"), indent=2)


def expected(model):
    import numpy as np

    hs = []
    with torch.no_grad():
        for s in SEQS:
            out = model(input_ids=torch.tensor([s]))
            hs.append(out.last_hidden_state[0].numpy())
    toks = np.array([t for s in SEQS for t in s], dtype=np.int32)
    ss = np.cumsum([0] + [len(s) for s in SEQS]).astype(np.int32)
    return {"tokens": toks, "seq_start": ss, "hidden": np.concatenate(hs).astype(np.float32)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/generated/config_sweep")
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    lines = []
    for i, (arch, name, over) in enumerate(OK_CASES):
        case = f"{arch}_{name}"
        folder = os.path.join(a.out, "ok", case)
        model = build(arch, over, 100 + i)
        model.save_pretrained(folder)
        drop_keys(folder, over)
        # the same folder read back by transformers gives the same states (the key defaults hold)
        re = ARCH[arch][1].from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
        e = expected(re)
        if arch == "gemma3":
            # the same weights with use_bidirectional_attention: true in config.json, kept as a case of its own
            # when it is the default case (lsllama runs it bidirectional, and refuses a causal pass)
            twin = os.path.join(a.out, "ok", case + "_bidirectional_key")
            e["hidden_bidirectional"] = expected(bidirectional_twin(folder, twin))["hidden"]
            if name == "default":
                save_file({**e, "hidden": e["hidden_bidirectional"]}, os.path.join(twin, "expected.safetensors"))
                lines.append(f"ok {case}_bidirectional_key")
            else:
                shutil.rmtree(twin)
        save_file(e, os.path.join(folder, "expected.safetensors"))
        lines.append(f"ok {case}")
    for i, (arch, name, over, edits, extra, want) in enumerate(REFUSED):
        case = f"{arch}_{name}"
        folder = os.path.join(a.out, "refused", case)
        model = build(arch, over, 500 + i)
        model.save_pretrained(folder)
        path = os.path.join(folder, "config.json")
        j = json.load(open(path))
        j.update(edits)
        json.dump(j, open(path, "w"), indent=2)
        if extra:
            st = os.path.join(folder, "model.safetensors")
            sd = load_file(st)
            sd[extra[0]] = torch.randn(extra[1])
            save_torch(sd, st, metadata={"format": "pt"})
        lines.append(f"refused {case} {want}")
    open(os.path.join(a.out, "manifest.txt"), "w").write("\n".join(lines) + "\n")
    print(f"{len(OK_CASES)} parity cases, {len(REFUSED)} refusals in {a.out}")


if __name__ == "__main__":
    main()
