"""Shared helpers for the forward-pass fixture scripts (gen_fixtures_forward.py, gen_fixtures_smollm2.py).

Conventions used by every expected.safetensors written with these helpers:

- Sequences are packed without padding: ``tokens`` I32 [T] is all sequences concatenated, ``seq_start`` I32
  [n_seqs+1] holds the offset of each sequence (seq_start[0] = 0, seq_start[-1] = T). Positions restart at 0
  in every sequence.
- Hidden states are the *final-norm* outputs (after model.norm), one row per real token, packed like tokens.
- "causal": token i attends to tokens 0..i of its own sequence; "bidirectional": to every token of its own
  sequence; never to padding or to other sequences.

How the reference is computed (and self-checked):

1. One right-padded batch [B, L] through the HF model with a user-supplied 4D float mask [B, 1, L, L] that holds
   0.0 where attention is allowed and torch.finfo(float32).min where it is not. transformers 5.24 passes a 4D
   mask through unchanged (masking_utils._preprocess_mask_arguments returns early for any 4D tensor) and the
   eager attention adds it to the scores (a bool mask would instead mean True = attend). We run in "eager"
   attention and cross-check the batch against "sdpa".
2. Every sequence alone, without padding and without a user mask (causal: the model's own causal mask;
   bidirectional: config.is_causal=False, which makes create_causal_mask build a bidirectional mask): the
   packed rows must agree with (1).
3. Our own loop over the decoder layers with one mask per layer reproduces (1) and gives the mixed
   "causal in layer 0, bidirectional from layer 1" hidden states.
"""

import math
import os

import numpy as np
import torch
from safetensors.numpy import save_file

NEG = torch.finfo(torch.float32).min


# ---------------------------------------------------------------------------------------------- packing

def log(msg):
    print(msg, flush=True)


def check(name, d, tol):
    """A generator's self-check: prints the figure against its bound and stops the script when it fails."""
    ok = d < tol
    log(f"  check {name:66s} {d:.3e} (< {tol:.0e})  {'OK' if ok else 'FAIL'}")
    assert ok, name


def pack(seqs):
    """list of int lists -> (tokens I32 [T], seq_start I32 [n+1])"""
    lens = [len(s) for s in seqs]
    tokens = np.array([t for s in seqs for t in s], dtype=np.int32)
    seq_start = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    return tokens, seq_start


def padded_batch(seqs, pad_id=0):
    """right-padded input_ids [B, L] (long), position_ids [B, L], lengths"""
    lens = [len(s) for s in seqs]
    L = max(lens)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
    pos = torch.arange(L, dtype=torch.long).unsqueeze(0).expand(len(seqs), L).contiguous()
    return ids, pos, lens


def mask_4d(lens, L, causal):
    """Additive float mask [B, 1, L, L]: 0 = may attend, finfo.min = may not.

    Keys beyond a sequence's length (padding) are never attended. Padding query rows attend to the real keys
    (like the last real token in the causal case) so that no row is fully masked; their outputs are dropped.
    """
    B = len(lens)
    m = torch.full((B, 1, L, L), NEG, dtype=torch.float32)
    q = torch.arange(L).view(L, 1)
    k = torch.arange(L).view(1, L)
    for b, n in enumerate(lens):
        allowed = (k < n).expand(L, L)
        if causal:
            allowed = allowed & (k <= q)
        m[b, 0][allowed] = 0.0
    return m


def unpad(h, lens):
    """[B, L, D] -> packed [T, D] (numpy float32)"""
    return torch.cat([h[b, :n] for b, n in enumerate(lens)], dim=0).detach().float().numpy()


def pool(h, seq_start, how):
    """pool packed [T, D] per sequence -> [n, D]"""
    out = []
    for a, b in zip(seq_start[:-1], seq_start[1:]):
        x = h[a:b].astype(np.float64)
        if how == "last":
            out.append(x[-1])
        elif how == "first":
            out.append(x[0])
        elif how == "mean":
            out.append(x.mean(axis=0))
        elif how == "max":
            out.append(x.max(axis=0))
        else:
            raise ValueError(how)
    return np.stack(out).astype(np.float32)


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


# ---------------------------------------------------------------------------------------------- running HF

@torch.no_grad()
def hf_final_hidden(model, ids, pos, mask):
    """Final-norm hidden states [B, L, D] via output_hidden_states; also checks hidden_states[-1] is post-norm."""
    out = model(input_ids=ids, position_ids=pos, attention_mask=mask, output_hidden_states=True, use_cache=False)
    hs = out.hidden_states
    assert len(hs) == model.config.num_hidden_layers + 1
    last = hs[-1]
    # transformers 5.24 (capture_outputs, tie_last_hidden_states=True) replaces hidden_states[-1] by
    # last_hidden_state, i.e. the output of model.norm. Check it against norm(output of the last layer) computed
    # by our own layer loop elsewhere; here check the lm_head consistency: logits == lm_head(hidden[-1]).
    assert torch.allclose(out.logits, model.lm_head(last), atol=1e-5, rtol=0)
    return last


@torch.no_grad()
def layer_loop(model, ids, pos, masks):
    """Our own forward: embed -> each decoder layer with its own 4D mask -> final norm. masks: list per layer."""
    inner = model.model
    h = inner.embed_tokens(ids)
    pe = inner.rotary_emb(h, position_ids=pos)
    pre_norm = None
    for layer, m in zip(inner.layers, masks):
        h = layer(h, attention_mask=m, position_ids=pos, position_embeddings=pe, use_cache=False)
        if isinstance(h, tuple):
            h = h[0]
        pre_norm = h
    return inner.norm(h), pre_norm


@torch.no_grad()
def hf_alone(model, seq, causal):
    """One sequence, no padding, no user mask: the model's own causal / bidirectional mask."""
    ids = torch.tensor([seq], dtype=torch.long)
    old = getattr(model.config, "is_causal", True)
    try:
        model.config.is_causal = causal
        for mod in model.modules():  # keep the per-module flags consistent (used by sdpa's is_causal shortcut)
            if hasattr(mod, "is_causal"):
                mod.is_causal = causal
        out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
    finally:
        model.config.is_causal = old
        for mod in model.modules():
            if hasattr(mod, "is_causal"):
                mod.is_causal = old
    return out.hidden_states[-1][0].float().numpy()


def compute_expected(model, seqs, tol=1e-5, rel=False, with_logits=False, log=print):
    """Run all passes, self-check them, return dict of expected tensors (numpy) for safetensors."""
    model.eval()
    n_layers = model.config.num_hidden_layers
    tokens, seq_start = pack(seqs)
    ids, pos, lens = padded_batch(seqs)
    L = ids.shape[1]
    m_causal = mask_4d(lens, L, causal=True)
    m_bidir = mask_4d(lens, L, causal=False)

    def check(name, a, b):
        d = maxdiff(a, b)
        scale = max(1.0, float(np.max(np.abs(b)))) if rel else 1.0
        ok = d / scale < tol
        log(f"  check {name:58s} max|diff| = {d:.3e}{' (scale %.3g)' % scale if rel else ''}  "
            f"{'OK' if ok else 'FAIL'}")
        assert ok, name

    model.set_attn_implementation("eager")
    h_causal_b = hf_final_hidden(model, ids, pos, m_causal)
    h_bidir_b = hf_final_hidden(model, ids, pos, m_bidir)
    h_causal = unpad(h_causal_b, lens)
    h_bidir = unpad(h_bidir_b, lens)

    # (2) each sequence alone, model's own masks
    alone_c = np.concatenate([hf_alone(model, s, True) for s in seqs])
    alone_b = np.concatenate([hf_alone(model, s, False) for s in seqs])
    check("causal: padded batch + 4D mask vs each sequence alone", h_causal, alone_c)
    check("bidirectional: padded batch + 4D mask vs each sequence alone", h_bidir, alone_b)

    # the mask really matters: bidirectional differs from causal for every multi-token sequence
    for b, (a0, a1) in enumerate(zip(seq_start[:-1], seq_start[1:])):
        d = maxdiff(h_causal[a0:a1], h_bidir[a0:a1])
        if a1 - a0 > 1:
            assert d > 1e-3, f"sequence {b}: bidirectional == causal ({d})"
        else:
            assert d < tol * (max(1.0, float(np.abs(h_causal[a0:a1]).max())) if rel else 1.0), \
                f"length-1 sequence {b} differs ({d})"
    log(f"  check bidirectional != causal for every sequence longer than 1 (and == for length 1): OK")

    # the batch padding must not leak: change the pad token id, results must not move
    ids2 = ids.clone()
    for b, n in enumerate(lens):
        ids2[b, n:] = (ids2[b, n:] + 7) % model.config.vocab_size
    check("causal: different padding ids change nothing", unpad(hf_final_hidden(model, ids2, pos, m_causal), lens),
          h_causal)

    # sdpa with the same 4D float mask
    model.set_attn_implementation("sdpa")
    check("causal: sdpa attention vs eager (same 4D mask)", unpad(hf_final_hidden(model, ids, pos, m_causal), lens),
          h_causal)
    check("bidirectional: sdpa attention vs eager (same 4D mask)",
          unpad(hf_final_hidden(model, ids, pos, m_bidir), lens), h_bidir)
    model.set_attn_implementation("eager")

    # (3) our own per-layer loop
    loop_c, pre_norm = layer_loop(model, ids, pos, [m_causal] * n_layers)
    check("own layer loop (all causal) vs model forward", unpad(loop_c, lens), h_causal)
    with torch.no_grad():
        check("hidden_states[-1] == model.norm(last layer output)", unpad(model.model.norm(pre_norm), lens),
              h_causal)
    loop_b, _ = layer_loop(model, ids, pos, [m_bidir] * n_layers)
    check("own layer loop (all bidirectional) vs model forward", unpad(loop_b, lens), h_bidir)
    loop_mix, _ = layer_loop(model, ids, pos, [m_causal] + [m_bidir] * (n_layers - 1))
    h_mix = unpad(loop_mix, lens)
    d0, d1 = maxdiff(h_mix, h_causal), maxdiff(h_mix, h_bidir)
    assert d0 > 1e-3 and d1 > 1e-3, (d0, d1)
    log(f"  check bidir_from_1 differs from causal ({d0:.3g}) and from bidirectional ({d1:.3g}): OK")

    exp = {"tokens": tokens, "seq_start": seq_start,
           "hidden_causal": h_causal, "hidden_bidirectional": h_bidir, "hidden_bidir_from_1": h_mix}
    for mode, h in (("causal", h_causal), ("bidirectional", h_bidir)):
        for how in ("last", "mean", "max", "first"):
            exp[f"pooled_{how}_{mode}"] = pool(h, seq_start, how)
    if with_logits:
        with torch.no_grad():
            last_rows = torch.from_numpy(h_causal[seq_start[1:] - 1])
            exp["logits_last_causal"] = model.lm_head(last_rows).float().numpy()
    return exp


def save_expected(path, tensors, description):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    for k, v in tensors.items():
        assert v.dtype in (np.float32, np.int32, np.uint8), (k, v.dtype)
        if v.dtype == np.float32:
            assert np.all(np.isfinite(v)), k
    # a single metadata entry: safetensors writes a multi-entry map in hash order, which breaks byte-identity
    save_file(tensors, path, metadata={"description": description})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    for k, v in tensors.items():
        print(f"  {k:32s} {str(v.dtype):8s} {list(v.shape)}")


# ---------------------------------------------------------------------------------------------- numpy oracle

def rope_inv_freq(head_dim, theta, scaling=None):
    """RoPE inverse frequencies, with optional Llama-3 frequency scaling (written from the published formula)."""
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    if scaling and scaling.get("rope_type") == "llama3":
        factor = scaling["factor"]
        lo, hi = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_ctx = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        out = np.empty_like(inv)
        for i, (f, w) in enumerate(zip(inv, wavelen)):
            if w < old_ctx / hi:  # high frequency: unchanged
                out[i] = f
            elif w > old_ctx / lo:  # low frequency: divided by factor
                out[i] = f / factor
            else:  # in between: interpolate
                s = (old_ctx / w - lo) / (hi - lo)
                out[i] = (1 - s) * f / factor + s * f
        inv = out
    return inv


def np_forward(W, cfg, seq, layer_causal, rope_layout, inv_freq):
    """Float64 reference forward of one sequence from raw weight matrices; returns final-norm hidden [n, D].

    W: dict with embed [V,D], norm [D], and per layer l: attn_norm, wq, wk, wv, wo (+ optional bq, bk, bv),
    ffn_norm, w_gate, w_up, w_down (HF [out, in] orientation). rope_layout: "halves" (HF: pairs (j, j+hd/2))
    or "interleaved" (GGUF / llama.cpp: pairs (2j, 2j+1)).
    """
    H, KV, eps = cfg["n_heads"], cfg["n_kv_heads"], cfg["eps"]
    D = W["embed"].shape[1]
    hd = D // H if "head_dim" not in cfg else cfg["head_dim"]
    n = len(seq)
    x = W["embed"][np.array(seq)].astype(np.float64)
    ang = np.arange(n, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rms(v, w):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * w

    def rope(t):
        t = t.copy()
        if rope_layout == "halves":
            a, b = t[..., : hd // 2].copy(), t[..., hd // 2:].copy()
            t[..., : hd // 2], t[..., hd // 2:] = a * cos - b * sin, b * cos + a * sin
        else:
            a, b = t[..., 0::2].copy(), t[..., 1::2].copy()
            t[..., 0::2], t[..., 1::2] = a * cos - b * sin, b * cos + a * sin
        return t

    for l, causal in enumerate(layer_causal):
        p = W["layers"][l]
        h = rms(x, p["attn_norm"])
        q = h @ p["wq"].T + p.get("bq", 0.0)
        k = h @ p["wk"].T + p.get("bk", 0.0)
        v = h @ p["wv"].T + p.get("bv", 0.0)
        q, k, v = rope(q.reshape(n, H, hd)), rope(k.reshape(n, KV, hd)), v.reshape(n, KV, hd)
        o = np.empty((n, H, hd))
        for hh in range(H):
            g = hh // (H // KV)
            s = q[:, hh] @ k[:, g].T / math.sqrt(hd)
            if causal:
                s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            o[:, hh] = (s / s.sum(axis=1, keepdims=True)) @ v[:, g]
        x = x + o.reshape(n, H * hd) @ p["wo"].T
        h = rms(x, p["ffn_norm"])
        gate = h @ p["w_gate"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ p["w_up"].T)) @ p["w_down"].T
    return rms(x, W["norm"])


def hf_state_to_np(sd, n_layers):
    """HF state dict (name -> tensor) -> W for np_forward (float64)."""
    f = lambda k: sd[k].double().numpy()  # noqa: E731
    W = {"embed": f("model.embed_tokens.weight"), "norm": f("model.norm.weight"), "layers": []}
    for l in range(n_layers):
        pre = f"model.layers.{l}."
        p = {"attn_norm": f(pre + "input_layernorm.weight"), "ffn_norm": f(pre + "post_attention_layernorm.weight"),
             "wq": f(pre + "self_attn.q_proj.weight"), "wk": f(pre + "self_attn.k_proj.weight"),
             "wv": f(pre + "self_attn.v_proj.weight"), "wo": f(pre + "self_attn.o_proj.weight"),
             "w_gate": f(pre + "mlp.gate_proj.weight"), "w_up": f(pre + "mlp.up_proj.weight"),
             "w_down": f(pre + "mlp.down_proj.weight")}
        for b in ("q", "k", "v"):
            if pre + f"self_attn.{b}_proj.bias" in sd:
                p["b" + b] = f(pre + f"self_attn.{b}_proj.bias")
        W["layers"].append(p)
    return W


def np_check_all(W, cfg, seqs, exp, rope_layout, inv_freq, tol, log=print):
    """Compare the numpy oracle with the expected hidden states for all three attention configurations."""
    n_layers = len(W["layers"])
    ss = exp["seq_start"]
    for key, flags in (("hidden_causal", [True] * n_layers), ("hidden_bidirectional", [False] * n_layers),
                       ("hidden_bidir_from_1", [True] + [False] * (n_layers - 1))):
        ref = np.concatenate([np_forward(W, cfg, s, flags, rope_layout, inv_freq) for s in seqs])
        d = maxdiff(ref, exp[key])
        log(f"  check numpy float64 oracle ({rope_layout:11s} RoPE) vs {key:22s} max|diff| = {d:.3e}  "
            f"{'OK' if d < tol else 'FAIL'}")
        assert d < tol, key
    assert ss[-1] == exp["hidden_causal"].shape[0]
