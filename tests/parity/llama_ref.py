"""Plain-PyTorch Llama, computing as transformers' LlamaForCausalLM does, under its tensor names.

Written for Loom's tests from transformers' definitions (modeling_llama.py, modeling_rope_utils.py),
without importing transformers:
  * model.embed_tokens.weight [V, h]; per layer model.layers.N.{input_layernorm, post_attention_layernorm}.weight,
    self_attn.{q,k,v,o}_proj.weight ([H*D, h], [G*D, h], [G*D, h], [h, H*D]),
    mlp.{gate,up,down}_proj.weight ([f, h], [f, h], [h, f]); model.norm.weight; lm_head.weight (untied only);
  * LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) in at least fp32, times the weight;
  * rotary embedding: inv_freq = 1 / base^(2i/D), llama3 scaling as _compute_llama3_parameters, cos/sin of
    position * inv_freq duplicated over both halves, q * cos + rotate_half(q) * sin (pairs (i, i + D/2));
  * grouped-query attention through repeat_kv (query head n uses key/value group n // (H/G)), causal softmax
    with scale 1/sqrt(D); SwiGLU MLP down(silu(gate(x)) * up(x)); tied or untied lm_head.
The reference computes in float64 by default (softmax and RMSNorm stay in that dtype; HF upcasts half
types to fp32 there, which is what `max(fp32, dtype)` below does for lower precisions).

The config is a dict in transformers' LlamaConfig keys (hidden_size, intermediate_size, num_hidden_layers,
num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps, rope_theta, rope_scaling,
tie_word_embeddings, vocab_size, max_position_embeddings), as config.json holds them.
"""

import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F


def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def kv_heads(c):
    return c.get("num_key_value_heads") or c["num_attention_heads"]


def has_biases(c):
    """HF's attention_bias (q/k/v/o) and mlp_bias (gate/up/down): Megatron's add_bias_linear sets both, so the
    reference takes them together."""
    a, m = bool(c.get("attention_bias", False)), bool(c.get("mlp_bias", False))
    if a != m:
        raise ValueError("attention_bias and mlp_bias must agree (Megatron's --disable-bias-linear sets both)")
    return a


def param_shapes(c):
    """OrderedDict name -> shape in HF names (the order of a transformers state dict)."""
    h, f, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    H, G, D = c["num_attention_heads"], kv_heads(c), head_dim(c)
    s = OrderedDict()
    s["model.embed_tokens.weight"] = (V, h)
    for i in range(L):
        p = f"model.layers.{i}."
        s[p + "self_attn.q_proj.weight"] = (H * D, h)
        s[p + "self_attn.k_proj.weight"] = (G * D, h)
        s[p + "self_attn.v_proj.weight"] = (G * D, h)
        s[p + "self_attn.o_proj.weight"] = (h, H * D)
        s[p + "mlp.gate_proj.weight"] = (f, h)
        s[p + "mlp.up_proj.weight"] = (f, h)
        s[p + "mlp.down_proj.weight"] = (h, f)
        if has_biases(c):
            for n, rows in (("self_attn.q_proj", H * D), ("self_attn.k_proj", G * D), ("self_attn.v_proj", G * D),
                            ("self_attn.o_proj", h), ("mlp.gate_proj", f), ("mlp.up_proj", f),
                            ("mlp.down_proj", h)):
                s[p + n + ".bias"] = (rows,)
        s[p + "input_layernorm.weight"] = (h,)
        s[p + "post_attention_layernorm.weight"] = (h,)
    s["model.norm.weight"] = (h,)
    if not c.get("tie_word_embeddings", False):
        s["lm_head.weight"] = (V, h)
    return s


def init_weights(c, seed=1234, std=0.02, norm_noise=0.05, dtype=np.float32):
    """Random weights: N(0, std) matrices (o_proj/down_proj scaled by 1/sqrt(2L)), norms 1 + N(0, norm_noise),
    biases N(0, std) (not zero, so that a misplaced bias shows)."""
    rng = np.random.default_rng(seed)
    out_std = std / math.sqrt(2.0 * c["num_hidden_layers"])
    w = OrderedDict()
    for name, shape in param_shapes(c).items():
        if name.endswith(".bias"):
            a = rng.standard_normal(shape) * std
        elif name.endswith("norm.weight"):
            a = 1.0 + rng.standard_normal(shape) * norm_noise
        elif name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
            a = rng.standard_normal(shape) * out_std
        else:
            a = rng.standard_normal(shape) * std
        w[name] = np.asarray(a, dtype=dtype)
    return w


def rope_inv_freq(c, dtype=torch.float64):
    """_compute_default_rope_parameters, then _compute_llama3_parameters when rope_scaling asks for it."""
    D = head_dim(c)
    base = float(c.get("rope_theta", 10000.0))
    inv_freq = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.int64).to(dtype) / D))
    rs = c.get("rope_scaling")
    if not rs:
        return inv_freq
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv_freq
    if kind != "llama3":
        raise ValueError(f"rope_type {kind} is not implemented by this reference")
    factor, low, high = float(rs["factor"]), float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
    old_context_len = float(rs["original_max_position_embeddings"])
    low_freq_wavelen = old_context_len / low
    high_freq_wavelen = old_context_len / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, g, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, g, n_rep, s, d).reshape(b, g * n_rep, s, d)


class LlamaRef(torch.nn.Module):
    """LlamaForCausalLM's forward. `weights`: name -> array in HF names (param_shapes)."""

    def __init__(self, c, weights, dtype=torch.float64):
        super().__init__()
        self.c = c
        self.dtype = dtype
        self.p = OrderedDict()
        for name, shape in param_shapes(c).items():
            t = torch.as_tensor(np.asarray(weights[name])).to(dtype).clone().contiguous()
            if tuple(t.shape) != tuple(shape):
                raise ValueError(f"{name}: shape {tuple(t.shape)} != {shape}")
            self.p[name] = torch.nn.Parameter(t)
            self.register_parameter(name.replace(".", "__"), self.p[name])
        self.inv_freq = rope_inv_freq(c)  # float64; cos/sin taken in float64 then cast, as HF takes them in fp32

    def named_megatron_parameters(self):  # the interface megatron_gpt.train_reference drives
        return list(self.p.items())

    def _norm(self, x, w):
        wide = torch.promote_types(x.dtype, torch.float32)
        y = x.to(wide)
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"])
        return w * y.to(x.dtype)

    def _rope(self, s):
        pos = torch.arange(s, dtype=torch.float64)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    def forward(self, tokens):
        """tokens: int [b, s] -> logits [b, s, V]."""
        c, p = self.c, self.p
        b, s = tokens.shape
        H, G, D = c["num_attention_heads"], kv_heads(c), head_dim(c)
        x = F.embedding(tokens, p["model.embed_tokens.weight"])
        cos, sin = self._rope(s)
        mask = torch.ones(s, s, dtype=torch.bool).triu_(1)
        for i in range(c["num_hidden_layers"]):
            pre = f"model.layers.{i}."
            y = self._norm(x, p[pre + "input_layernorm.weight"])
            lin = lambda t, n: F.linear(t, p[pre + n + ".weight"], p.get(pre + n + ".bias"))
            q = lin(y, "self_attn.q_proj").view(b, s, H, D).transpose(1, 2)
            k = lin(y, "self_attn.k_proj").view(b, s, G, D).transpose(1, 2)
            v = lin(y, "self_attn.v_proj").view(b, s, G, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k, v = repeat_kv(k, H // G), repeat_kv(v, H // G)
            scores = (q @ k.transpose(2, 3)) * (D ** -0.5)
            scores = scores.masked_fill(mask, float("-inf"))
            probs = torch.softmax(scores.to(torch.promote_types(scores.dtype, torch.float32)), dim=-1).to(q.dtype)
            o = (probs @ v).transpose(1, 2).reshape(b, s, H * D)
            x = x + lin(o, "self_attn.o_proj")
            y = self._norm(x, p[pre + "post_attention_layernorm.weight"])
            m = F.silu(lin(y, "mlp.gate_proj")) * lin(y, "mlp.up_proj")
            x = x + lin(m, "mlp.down_proj")
        x = self._norm(x, p["model.norm.weight"])
        head = p["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else p["lm_head.weight"]
        return F.linear(x, head)

    def loss(self, tokens, labels, loss_mask):
        """Megatron's masked mean of the per-token cross-entropy (what the parity protocol trains)."""
        logits = self.forward(tokens)
        lt = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
        m = loss_mask.to(lt.dtype).reshape(-1)
        return (lt * m).sum() / m.sum()


# ----------------------------------------------------------------------------- Loom's names and layouts

def to_loom(c, w):
    """HF-named weights -> Loom's (Megatron-core) names: q/k/v fused into linear_qkv in Megatron's per-group
    layout [q of heads g*r .. g*r+r-1, k_g, v_g], gate/up as linear_fc1_gate/_up, lm_head as output_layer."""
    H, G, D = c["num_attention_heads"], kv_heads(c), head_dim(c)
    r = H // G
    out = OrderedDict()
    out["embedding.word_embeddings.weight"] = w["model.embed_tokens.weight"]
    for i in range(c["num_hidden_layers"]):
        hf, lm = f"model.layers.{i}.", f"decoder.layers.{i}."
        kinds = ("weight", "bias") if has_biases(c) else ("weight",)
        out[lm + "input_layernorm.weight"] = w[hf + "input_layernorm.weight"]
        for kind in kinds:
            q, k, v = (w[hf + f"self_attn.{n}_proj.{kind}"] for n in "qkv")
            rows = []
            for g in range(G):
                rows += [q[g * r * D:(g + 1) * r * D], k[g * D:(g + 1) * D], v[g * D:(g + 1) * D]]
            out[lm + "self_attention.linear_qkv." + kind] = np.concatenate(rows, axis=0)
            out[lm + "self_attention.linear_proj." + kind] = w[hf + "self_attn.o_proj." + kind]
        out[lm + "pre_mlp_layernorm.weight"] = w[hf + "post_attention_layernorm.weight"]
        for kind in kinds:
            out[lm + "mlp.linear_fc1_gate." + kind] = w[hf + "mlp.gate_proj." + kind]
            out[lm + "mlp.linear_fc1_up." + kind] = w[hf + "mlp.up_proj." + kind]
            out[lm + "mlp.linear_fc2." + kind] = w[hf + "mlp.down_proj." + kind]
    out["decoder.final_layernorm.weight"] = w["model.norm.weight"]
    if not c.get("tie_word_embeddings", False):
        out["output_layer.weight"] = w["lm_head.weight"]
    return out


def loom_name(c, hf_name):
    """The Loom parameter an HF parameter lives in (q/k/v all in linear_qkv)."""
    if hf_name == "model.embed_tokens.weight":
        return "embedding.word_embeddings.weight"
    if hf_name == "model.norm.weight":
        return "decoder.final_layernorm.weight"
    if hf_name == "lm_head.weight":
        return "output_layer.weight"
    i = hf_name.split(".")[2]
    tail = ".".join(hf_name.split(".")[3:])
    if tail.endswith(".bias"):
        return loom_name(c, hf_name[: -len(".bias")] + ".weight")[: -len(".weight")] + ".bias"
    return f"decoder.layers.{i}." + {
        "input_layernorm.weight": "input_layernorm.weight",
        "post_attention_layernorm.weight": "pre_mlp_layernorm.weight",
        "self_attn.q_proj.weight": "self_attention.linear_qkv.weight",
        "self_attn.k_proj.weight": "self_attention.linear_qkv.weight",
        "self_attn.v_proj.weight": "self_attention.linear_qkv.weight",
        "self_attn.o_proj.weight": "self_attention.linear_proj.weight",
        "mlp.gate_proj.weight": "mlp.linear_fc1_gate.weight",
        "mlp.up_proj.weight": "mlp.linear_fc1_up.weight",
        "mlp.down_proj.weight": "mlp.linear_fc2.weight",
    }[tail]


def loom_arch(c):
    """The architecture keys of the parity driver's config JSON for this HF config (the keys of Loom's weights
    metadata, model_config_metadata)."""
    a = {
        "normalization": "RMSNorm",
        "activation": "swiglu",
        "position_embedding_type": "rope",
        "rotary_base": float(c.get("rope_theta", 10000.0)),
        "num_query_groups": kv_heads(c),
        "kv_channels": head_dim(c),
        "add_bias_linear": has_biases(c),
        "add_qkv_bias": has_biases(c),  # Megatron's add_qkv_bias follows add_bias_linear
        "tie_embeddings": bool(c.get("tie_word_embeddings", False)),
        "layernorm_epsilon": c["rms_norm_eps"],
        "use_rope_scaling": False,
    }
    rs = c.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        a.update(use_rope_scaling=True, rope_scaling_factor=float(rs["factor"]),
                 rope_low_freq_factor=float(rs["low_freq_factor"]),
                 rope_high_freq_factor=float(rs["high_freq_factor"]),
                 rope_original_max_position=int(rs["original_max_position_embeddings"]))
    return a
