#!/usr/bin/python3
"""An independent Llama forward pass with Hugging Face's conventions, in numpy
(float64), for test_convert: it reads a Hugging Face folder itself (config.json,
model.safetensors or the shards of model.safetensors.index.json) and writes the
logits after each of the given tokens as float32, one row per position.

    hf_reference.py HF_DIR OUT.f32 TOKEN...

Conventions followed (transformers' modeling_llama): rotate-half RoPE with
inv_freq = 1 / theta^(2i/head_dim) over [freqs, freqs], with rope_scaling of type
llama3 applied to inv_freq as transformers' _compute_llama3_parameters does; grouped-query attention
by repeat_kv (query head h reads key/value head h // (heads / kv_heads));
RMSNorm x * rsqrt(mean(x^2) + eps) * weight; SwiGLU down(silu(gate(x)) * up(x));
lm_head, or the embedding table when tie_word_embeddings.
"""
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin : base + end]
        if info["dtype"] == "F32":
            values = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif info["dtype"] == "F16":
            values = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: {name}: dtype {info['dtype']}")
        tensors[name] = values.reshape(info["shape"])
    return tensors


def read_weights(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(folder, name)))
    return weights


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def llama3_inv_freq(inv_freq, s):
    """RoPE scaling of type llama3, as transformers' _compute_llama3_parameters:
    wavelengths above original / low_freq_factor are slowed by factor, those
    under original / high_freq_factor kept, those between blended."""
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old = s["original_max_position_embeddings"]
    wavelen = 2 * np.pi / inv_freq
    scaled = np.where(wavelen > old / low, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) & ~(wavelen > old / low)
    return np.where(medium, blended, scaled)


def forward(config, w, tokens):
    dim = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_heads
    head_dim = dim // n_heads
    eps = config.get("rms_norm_eps", 1e-6)
    theta = config.get("rope_theta", 10000.0)
    T = len(tokens)

    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    scaling = config.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "llama3":
        inv_freq = llama3_inv_freq(inv_freq, scaling)
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    causal = np.triu(np.full((T, T), -np.inf), k=1)

    x = w["model.embed_tokens.weight"][tokens]
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, n_heads, head_dim)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, n_kv, head_dim)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, n_kv, head_dim)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, n_heads // n_kv, axis=1)  # repeat_kv
        v = np.repeat(v, n_heads // n_kv, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) / np.sqrt(head_dim) + causal
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        attn = np.einsum("hts,shd->thd", scores, v).reshape(T, dim)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if config.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def main():
    folder, out = sys.argv[1], sys.argv[2]
    tokens = [int(t) for t in sys.argv[3:]]
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    logits = forward(config, read_weights(folder), tokens)
    logits.astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
