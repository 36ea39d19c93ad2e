#!/usr/bin/env python3
"""Reference fixtures for the loader and forward pass on tiny random LLaMA-family models.

Writes (default root tests/fixtures/tiny_llama/, override with --out DIR):

  hf/config.json, hf/model.safetensors        tiny LlamaForCausalLM, float32, untied LM head, config.json as
                                               written by transformers 5 ("rope_parameters")
  tiny_llama_f32.gguf                          the same model as GGUF (arch "llama", all F32), Q/K rows permuted
                                               to llama.cpp's interleaved-pair RoPE layout
  expected.safetensors                         expected outputs of that model (hf/ and the GGUF alike)
  hf_bf16_sharded/                             tiny Llama-3.1-style model (llama3 RoPE scaling, tied embeddings),
                                               bf16 weights in 2+ shards + model.safetensors.index.json;
                                               config.json in the Hub's legacy form (rope_theta, rope_scaling)
  hf_bf16_sharded/expected.safetensors
  hf_qwen2_f16/                                tiny Qwen2ForCausalLM (q/k/v biases), float16 weights,
                                               config.json in the legacy form (rope_theta)
  hf_qwen2_f16/expected.safetensors

Every expected.safetensors holds (T = total real tokens, n = number of sequences, D = hidden size):
  tokens I32 [T], seq_start I32 [n+1]                       packed inputs (positions restart at 0 per sequence)
  hidden_causal, hidden_bidirectional, hidden_bidir_from_1  F32 [T, D] final-norm hidden states
                                                            (bidir_from_1: layer 0 causal, layers >= 1 bidirectional)
  pooled_{last,mean,max,first}_{causal,bidirectional}       F32 [n, D] pooled over each sequence's tokens
  logits_last_causal F32 [n, vocab]                          (first model only) LM head on each last token

Why: the C engine's loaders (safetensors f32/bf16/f16, sharded index, GGUF) and its packed, mask-per-layer
forward pass are tested against these numbers without Python. The expected values come from transformers'
own model on one right-padded batch with a 4D float mask and are self-checked (each sequence alone, sdpa vs
eager, an own per-layer loop, and an independent float64 numpy forward that reads the files written to disk,
including the GGUF with its permuted Q/K and interleaved RoPE). See tools/fixture_common.py.

Deterministic (fixed seeds), idempotent, ~20 s on 2 cores.  Run: python3 tools/gen_fixtures_forward.py [--out DIR]
"""

import argparse
import json
import os
import shutil
import sys

os.environ.setdefault("TQDM_DISABLE", "1")  # quiet transformers' GGUF loader
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402

import gguf  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file as st_load_torch  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "tiny_llama")

DIMS = dict(hidden_size=60, num_attention_heads=6, num_key_value_heads=2, intermediate_size=100,
            num_hidden_layers=3, vocab_size=97, rms_norm_eps=1e-5, max_position_embeddings=128,
            attention_bias=False, bos_token_id=1, eos_token_id=2, pad_token_id=None)
INIT_STD = 0.1

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def randomize(model, seed):
    """Overwrite every parameter from our own generator: matrices/embeddings N(0, 0.1), biases N(0, 0.1),
    RMSNorm weights 1 + 0.1 N(0, 1). Independent of transformers' init code."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(INIT_STD * noise)


def random_seqs(seed, lens, vocab):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=n).tolist() for n in lens]


def fresh_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def to_legacy_config(path):
    """Rewrite config.json's transformers-5 "rope_parameters" as the Hub's usual rope_theta / rope_scaling."""
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = rp
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def assert_same_weights(a, b, what):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), what
    for k in sa:
        assert torch.equal(sa[k].float(), sb[k].float()), (what, k)
    print(f"  check {what}: all {len(sa)} tensors bit-identical: OK")


# ---------------------------------------------------------------------------------------------- GGUF

def permute_qk(w, n_head):
    """HF rotate-half row order -> llama.cpp interleaved-pair order (as convert_hf_to_gguf.py does for Llama).

    Within each head, HF row j (first half) and row j + hd/2 (second half) form a RoPE pair; llama.cpp wants
    them adjacent at rows 2j and 2j+1."""
    rows, cols = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def write_gguf(model, path):
    c = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w = gguf.GGUFWriter(path, "llama")  # writes general.architecture
    w.add_name("tiny_llama")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(float(c.rope_parameters["rope_theta"]))
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for l in range(c.num_hidden_layers):
        p = f"model.layers.{l}."
        names = [("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
                 ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
                 ("ffn_norm", "post_attention_layernorm"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                 ("ffn_down", "mlp.down_proj")]
        for gname, hname in names:
            t = sd[p + hname + ".weight"]
            if gname == "attn_q":
                t = permute_qk(t, c.num_attention_heads)
            elif gname == "attn_k":
                t = permute_qk(t, c.num_key_value_heads)
            w.add_tensor(f"blk.{l}.{gname}.weight", np.ascontiguousarray(t, dtype=np.float32))
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def gguf_to_np(path):
    """Read our GGUF back with gguf-py (not transformers) into np_forward's weight dict, Q/K left permuted."""
    r = gguf.GGUFReader(path)
    t = {x.name: np.array(x.data, dtype=np.float64) for x in r.tensors}
    for x in r.tensors:
        assert x.tensor_type == gguf.GGMLQuantizationType.F32, x.name
    f = lambda k: int(r.fields[k].parts[r.fields[k].data[0]][0])  # noqa: E731
    cfg = {"n_heads": f("llama.attention.head_count"), "n_kv_heads": f("llama.attention.head_count_kv"),
           "eps": float(r.fields["llama.attention.layer_norm_rms_epsilon"].parts[-1][0])}
    W = {"embed": t["token_embd.weight"], "norm": t["output_norm.weight"], "layers": []}
    for l in range(f("llama.block_count")):
        b = f"blk.{l}."
        W["layers"].append({"attn_norm": t[b + "attn_norm.weight"], "ffn_norm": t[b + "ffn_norm.weight"],
                            "wq": t[b + "attn_q.weight"], "wk": t[b + "attn_k.weight"], "wv": t[b + "attn_v.weight"],
                            "wo": t[b + "attn_output.weight"], "w_gate": t[b + "ffn_gate.weight"],
                            "w_up": t[b + "ffn_up.weight"], "w_down": t[b + "ffn_down.weight"]})
    theta = float(r.fields["llama.rope.freq_base"].parts[-1][0])
    return W, cfg, theta, t["output.weight"]


# ---------------------------------------------------------------------------------------------- variants

def variant_llama_f32(out):
    print("== tiny_llama: LlamaForCausalLM float32, untied, rope_theta 10000 ==")
    torch.manual_seed(1)
    config = LlamaConfig(**DIMS, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    randomize(model, seed=1001)
    model.eval()
    hf_dir = os.path.join(out, "hf")
    fresh_dir(hf_dir)
    model.save_pretrained(hf_dir)
    reloaded = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    assert_same_weights(model, reloaded, "hf/ reloaded vs original")
    gguf_path = os.path.join(out, "tiny_llama_f32.gguf")
    write_gguf(model, gguf_path)

    seqs = random_seqs(2001, [7, 1, 13, 4, 10], config.vocab_size)
    exp = fc.compute_expected(reloaded, seqs, tol=1e-5, with_logits=True)

    # independent float64 oracle on the safetensors file as written (HF rotate-half layout)
    sd = st_load_torch(os.path.join(hf_dir, "model.safetensors"))
    W = fc.hf_state_to_np(sd, config.num_hidden_layers)
    cfg = {"n_heads": 6, "n_kv_heads": 2, "eps": 1e-5}
    inv = fc.rope_inv_freq(10, 10000.0)
    fc.np_check_all(W, cfg, seqs, exp, "halves", inv, tol=1e-4)
    # ... and on the GGUF as written (permuted Q/K, interleaved RoPE): this verifies the permutation
    Wg, cfg_g, theta_g, out_w = gguf_to_np(gguf_path)
    # GGUF stores eps and freq_base as float32
    assert cfg_g["eps"] == float(np.float32(1e-5)) and theta_g == 10000.0, (cfg_g, theta_g)
    assert (cfg_g["n_heads"], cfg_g["n_kv_heads"]) == (6, 2), cfg_g
    fc.np_check_all(Wg, cfg_g, seqs, exp, "interleaved", inv, tol=1e-4)
    logits = exp["hidden_causal"][exp["seq_start"][1:] - 1].astype(np.float64) @ out_w.T
    d = fc.maxdiff(logits, exp["logits_last_causal"])
    print(f"  check logits_last_causal vs GGUF output.weight @ hidden max|diff| = {d:.3e}  {'OK' if d < 1e-4 else 'FAIL'}")
    assert d < 1e-4
    # the permutation really matters: without it (interleaved RoPE on HF layout) the result is different
    bad = fc.np_forward(W, cfg, seqs[0], [True] * 3, "interleaved", inv)
    assert fc.maxdiff(bad, exp["hidden_causal"][: len(seqs[0])]) > 1e-2
    print("  check HF-layout Q/K with interleaved RoPE gives different results (the permutation is needed): OK")

    # transformers' own GGUF loader (it un-permutes Q/K) must give the same hidden states
    try:
        g = AutoModelForCausalLM.from_pretrained(out, gguf_file=os.path.basename(gguf_path),
                                                 dtype=torch.float32).eval()
        assert_same_weights(model, g, "GGUF loaded by transformers (un-permuted) vs original")
        ids, pos, lens = fc.padded_batch(seqs)
        g.set_attn_implementation("eager")
        hg = fc.unpad(fc.hf_final_hidden(g, ids, pos, fc.mask_4d(lens, ids.shape[1], True)), lens)
        d = fc.maxdiff(hg, exp["hidden_causal"])
        print(f"  check GGUF via transformers: hidden_causal max|diff| = {d:.3e}  {'OK' if d < 1e-6 else 'FAIL'}")
        assert d < 1e-6
    except Exception as e:  # keep the fixture usable; the numpy check above already covers the GGUF
        print(f"  NOTE: transformers could not load the GGUF ({type(e).__name__}: {e}); "
              "relying on the numpy oracle check of the GGUF")
        raise
    fc.save_expected(os.path.join(out, "expected.safetensors"), exp,
                     "tests/fixtures/tiny_llama (hf/ and tiny_llama_f32.gguf): tools/gen_fixtures_forward.py")


def variant_llama3_bf16(out):
    print("== hf_bf16_sharded: Llama-3.1-style (llama3 RoPE scaling), tied, bf16 shards ==")
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 128}
    torch.manual_seed(2)
    config = LlamaConfig(**{**DIMS, "max_position_embeddings": 1024}, rope_parameters=rope, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    randomize(model, seed=1002)
    model = model.to(torch.bfloat16)
    d = os.path.join(out, "hf_bf16_sharded")
    fresh_dir(d)
    model.save_pretrained(d, max_shard_size="80KB")
    to_legacy_config(os.path.join(d, "config.json"))
    shards = sorted(x for x in os.listdir(d) if x.startswith("model-") and x.endswith(".safetensors"))
    assert len(shards) >= 2 and os.path.exists(os.path.join(d, "model.safetensors.index.json")), shards
    print(f"  shards: {shards}")
    ref = model.to(torch.float32).eval()
    m = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    assert m.config.rope_parameters == rope, m.config.rope_parameters
    assert m.config.tie_word_embeddings and m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()
    assert_same_weights(ref, m, "bf16 shards reloaded (legacy config.json) vs bf16-rounded original")

    inv = fc.rope_inv_freq(10, 500000.0, rope)
    d_inv = fc.maxdiff(inv, m.model.rotary_emb.inv_freq.double().numpy())
    wl = 2 * np.pi / fc.rope_inv_freq(10, 500000.0)
    bands = ["high(kept)" if w < 128 / 4 else "low(/8)" if w > 128 / 1 else "smoothed" for w in wl]
    assert set(bands) == {"high(kept)", "low(/8)", "smoothed"}, bands
    print(f"  llama3 inv_freq (own formula vs transformers) max|diff| = {d_inv:.2e}; bands per pair: {bands}")
    assert d_inv < 1e-6 * inv.max()

    seqs = random_seqs(2002, [37, 1, 60, 9, 52], config.vocab_size)
    exp = fc.compute_expected(m, seqs, tol=1e-5)
    sd = {}
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        for shard in sorted(set(json.load(f)["weight_map"].values())):
            part = st_load_torch(os.path.join(d, shard))
            assert all(v.dtype == torch.bfloat16 for v in part.values())
            sd.update(part)
    W = fc.hf_state_to_np(sd, config.num_hidden_layers)
    fc.np_check_all(W, {"n_heads": 6, "n_kv_heads": 2, "eps": 1e-5}, seqs, exp, "halves", inv, tol=1e-4)
    fc.save_expected(os.path.join(d, "expected.safetensors"), exp,
                     "tests/fixtures/tiny_llama/hf_bf16_sharded: tools/gen_fixtures_forward.py (f32 math on bf16 weights)")


def variant_qwen2_f16(out):
    print("== hf_qwen2_f16: Qwen2ForCausalLM (q/k/v bias), float16 ==")
    dims = {k: v for k, v in DIMS.items() if k != "attention_bias"}
    torch.manual_seed(3)
    config = Qwen2Config(**dims, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                         tie_word_embeddings=False, use_sliding_window=False, sliding_window=None)
    assert all(t == "full_attention" for t in config.layer_types), config.layer_types
    model = Qwen2ForCausalLM(config)
    randomize(model, seed=1003)
    model = model.to(torch.float16)
    d = os.path.join(out, "hf_qwen2_f16")
    fresh_dir(d)
    model.save_pretrained(d)
    to_legacy_config(os.path.join(d, "config.json"))
    ref = model.to(torch.float32).eval()
    m = Qwen2ForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    assert_same_weights(ref, m, "f16 reloaded (legacy config.json) vs f16-rounded original")
    assert m.model.layers[0].self_attn.q_proj.bias is not None and m.model.layers[0].self_attn.o_proj.bias is None

    seqs = random_seqs(2003, [11, 3, 1, 17, 6], config.vocab_size)
    exp = fc.compute_expected(m, seqs, tol=1e-5)
    sd = st_load_torch(os.path.join(d, "model.safetensors"))
    assert all(v.dtype == torch.float16 for v in sd.values())
    W = fc.hf_state_to_np(sd, config.num_hidden_layers)
    assert "bq" in W["layers"][0]
    fc.np_check_all(W, {"n_heads": 6, "n_kv_heads": 2, "eps": 1e-5}, seqs, exp, "halves",
                    fc.rope_inv_freq(10, 1000000.0), tol=1e-4)
    fc.save_expected(os.path.join(d, "expected.safetensors"), exp,
                     "tests/fixtures/tiny_llama/hf_qwen2_f16: tools/gen_fixtures_forward.py (f32 math on f16 weights)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, gguf {gguf.__version__ if hasattr(gguf, '__version__') else '?'}")
    variant_llama_f32(args.out)
    variant_llama3_bf16(args.out)
    variant_qwen2_f16(args.out)
    print("all self-checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
