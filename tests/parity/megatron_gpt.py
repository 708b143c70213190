"""Plain-PyTorch reference of Megatron-LM GPT training (fp32 by default, dropout 0).

Everything Loom's parity tests and the torch benchmark need:
  * parameter names/shapes (Megatron-core state-dict names) and Megatron init,
  * the model (pre-LN GPT, fused QKV with Megatron's per-head [q|k|v] row layout,
    tanh-GELU MLP, final LayerNorm, output layer tied to the word embedding),
  * the masked per-token cross-entropy loss with gradient accumulation,
  * Megatron's OptimizerParamScheduler lr, clip_grad_norm_fp32 and AdamW param groups,
  * `train_reference`, which runs the whole protocol and returns losses, grad norms, lrs,
    iteration-0 grads and final weights.

Data protocol (shared with tests/gpt_parity_driver):
  tokens    int32  [steps, global_batch, seq+1]; sample[:-1] are inputs, sample[1:] labels
  loss_mask f32    [steps, global_batch, seq]
  iteration k uses tokens[k]; micro-batch j is samples [j*micro_batch, (j+1)*micro_batch).
"""

import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

CONFIG_DEFAULTS = {
    "num_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "ffn_hidden_size": None,          # default 4*hidden
    "seq_length": 32,
    "max_position_embeddings": None,  # default seq_length
    "padded_vocab_size": 512,
    "micro_batch_size": 2,
    "global_batch_size": 4,
    "steps": 20,
    "lr": 1e-3,
    "min_lr": 0.0,
    "lr_decay_style": "cosine",
    "lr_warmup_iters": 0,
    "lr_decay_iters": None,           # default steps
    "lr_warmup_init": 0.0,
    "weight_decay": 0.01,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_eps": 1e-8,
    "clip_grad": 1.0,
    "layernorm_epsilon": 1e-5,
    "init_method_std": 0.02,
}


def normalize_config(cfg):
    """Fills defaults and derived values; returns a new dict."""
    c = dict(CONFIG_DEFAULTS)
    c.update(cfg)
    if c["ffn_hidden_size"] is None:
        c["ffn_hidden_size"] = 4 * c["hidden_size"]
    if c["max_position_embeddings"] is None:
        c["max_position_embeddings"] = c["seq_length"]
    if c["lr_decay_iters"] is None:
        c["lr_decay_iters"] = c["steps"]
    if c["hidden_size"] % c["num_attention_heads"]:
        raise ValueError("hidden_size must be divisible by num_attention_heads")
    if c["global_batch_size"] % c["micro_batch_size"]:
        raise ValueError("global_batch_size must be a multiple of micro_batch_size")
    if c["seq_length"] > c["max_position_embeddings"]:
        raise ValueError("seq_length > max_position_embeddings")
    return c


# ----------------------------------------------------------------------------- parameters

def param_shapes(cfg):
    """OrderedDict name -> shape, in Megatron-core state-dict names and order."""
    c = normalize_config(cfg)
    h, f, V, P = c["hidden_size"], c["ffn_hidden_size"], c["padded_vocab_size"], c["max_position_embeddings"]
    s = OrderedDict()
    s["embedding.word_embeddings.weight"] = (V, h)
    s["embedding.position_embeddings.weight"] = (P, h)
    for i in range(c["num_layers"]):
        p = f"decoder.layers.{i}."
        s[p + "input_layernorm.weight"] = (h,)
        s[p + "input_layernorm.bias"] = (h,)
        s[p + "self_attention.linear_qkv.weight"] = (3 * h, h)
        s[p + "self_attention.linear_qkv.bias"] = (3 * h,)
        s[p + "self_attention.linear_proj.weight"] = (h, h)
        s[p + "self_attention.linear_proj.bias"] = (h,)
        s[p + "pre_mlp_layernorm.weight"] = (h,)
        s[p + "pre_mlp_layernorm.bias"] = (h,)
        s[p + "mlp.linear_fc1.weight"] = (f, h)
        s[p + "mlp.linear_fc1.bias"] = (f,)
        s[p + "mlp.linear_fc2.weight"] = (h, f)
        s[p + "mlp.linear_fc2.bias"] = (h,)
    s["decoder.final_layernorm.weight"] = (h,)
    s["decoder.final_layernorm.bias"] = (h,)
    return s


def is_no_weight_decay(name, shape):
    """Megatron: no weight decay for biases and 1-D (LayerNorm) params; embeddings ARE decayed."""
    return name.endswith(".bias") or len(shape) == 1


def init_weights(cfg, seed=1234, perturb_extras=0.0, dtype=np.float32):
    """Megatron init: N(0, std) for embeddings and linear weights, N(0, std/sqrt(2L)) for
    linear_proj / linear_fc2 weights, biases 0, LayerNorm weight 1 / bias 0.

    perturb_extras > 0 adds N(0, perturb_extras) noise to LayerNorm weights/biases and to
    all linear biases (parity tests use this so those gradients are non-trivial)."""
    c = normalize_config(cfg)
    rng = np.random.default_rng(seed)
    std = c["init_method_std"]
    out_std = std / math.sqrt(2.0 * c["num_layers"])
    w = OrderedDict()
    for name, shape in param_shapes(c).items():
        if "layernorm" in name:
            base = np.ones(shape) if name.endswith(".weight") else np.zeros(shape)
            a = base + (rng.standard_normal(shape) * perturb_extras if perturb_extras else 0.0)
        elif name.endswith(".bias"):
            a = rng.standard_normal(shape) * perturb_extras if perturb_extras else np.zeros(shape)
        elif name.endswith("linear_proj.weight") or name.endswith("linear_fc2.weight"):
            a = rng.standard_normal(shape) * out_std
        else:
            a = rng.standard_normal(shape) * std
        w[name] = np.asarray(a, dtype=dtype)
    return w


# ----------------------------------------------------------------------------- model

def gelu_tanh(u):
    return 0.5 * u * (1.0 + torch.tanh(0.7978845608028654 * (u + 0.044715 * u * u * u)))


class MegatronGPT(torch.nn.Module):
    """GPT with Megatron semantics. Parameters are kept in `self.p` (name -> Parameter)
    under the Megatron names; they are also registered (dots mangled to '__')."""

    def __init__(self, cfg, weights=None, dtype=torch.float32, seed=1234):
        super().__init__()
        self.cfg = c = normalize_config(cfg)
        if weights is None:
            weights = init_weights(c, seed=seed)
        shapes = param_shapes(c)
        missing = set(shapes) - set(weights)
        extra = set(weights) - set(shapes)
        if missing or extra:
            raise ValueError(f"weights mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}")
        self.p = OrderedDict()
        for name, shape in shapes.items():
            t = torch.as_tensor(np.asarray(weights[name])) if not torch.is_tensor(weights[name]) else weights[name]
            t = t.detach().to(dtype).clone().contiguous()
            if tuple(t.shape) != tuple(shape):
                raise ValueError(f"{name}: shape {tuple(t.shape)} != expected {shape}")
            prm = torch.nn.Parameter(t)
            self.p[name] = prm
            self.register_parameter(name.replace(".", "__"), prm)
        self.h = c["hidden_size"]
        self.nh = c["num_attention_heads"]
        self.d = self.h // self.nh
        self.eps = c["layernorm_epsilon"]
        self._mask_cache = {}

    def named_megatron_parameters(self):
        return list(self.p.items())

    def _causal_mask(self, s, device):
        key = (s, device)
        m = self._mask_cache.get(key)
        if m is None:
            m = torch.ones(s, s, dtype=torch.bool, device=device).triu_(1)  # True = masked
            self._mask_cache[key] = m
        return m

    def _attention(self, x, i):
        p = self.p
        pre = f"decoder.layers.{i}.self_attention."
        b, s, h = x.shape
        nh, d = self.nh, self.d
        qkv = F.linear(x, p[pre + "linear_qkv.weight"], p[pre + "linear_qkv.bias"])  # [b, s, 3h]
        # Megatron layout: per head n, columns [n*3d, n*3d+d) = q, next d = k, next d = v.
        qkv = qkv.view(b, s, nh, 3 * d).permute(0, 2, 1, 3)  # [b, nh, s, 3d]
        q, k, v = qkv.split(d, dim=-1)
        q = q.reshape(b * nh, s, d)
        k = k.reshape(b * nh, s, d)
        v = v.reshape(b * nh, s, d)
        # (torch 1.13's baddbmm(empty, ..., beta=0) can propagate NaN from the uninitialised input)
        scores = torch.bmm(q, k.transpose(1, 2)).mul_(1.0 / math.sqrt(d))
        scores = scores.view(b, nh, s, s).masked_fill_(self._causal_mask(s, x.device), float("-inf"))
        probs = torch.softmax(scores, dim=-1)  # fp32 (or fp64 reference) softmax
        ctx = torch.bmm(probs.view(b * nh, s, s), v)  # [b*nh, s, d]
        ctx = ctx.view(b, nh, s, d).transpose(1, 2).reshape(b, s, h)
        return F.linear(ctx, p[pre + "linear_proj.weight"], p[pre + "linear_proj.bias"])

    def _mlp(self, x, i):
        p = self.p
        pre = f"decoder.layers.{i}.mlp."
        u = F.linear(x, p[pre + "linear_fc1.weight"], p[pre + "linear_fc1.bias"])
        # Megatron's fused bias-GELU (and --openai-gelu) is the tanh form; unfused (--no-bias-gelu-fusion) F.gelu
        u = F.gelu(u) if self.cfg.get("activation") == "gelu_exact" else F.gelu(u, approximate="tanh")
        return F.linear(u, p[pre + "linear_fc2.weight"], p[pre + "linear_fc2.bias"])

    def forward(self, tokens):
        """tokens: int [b, s] -> logits [b, s, Vp]."""
        p = self.p
        h = self.h
        s = tokens.shape[1]
        pos = torch.arange(s, device=tokens.device)
        x = F.embedding(tokens, p["embedding.word_embeddings.weight"]) + \
            F.embedding(pos, p["embedding.position_embeddings.weight"]).unsqueeze(0)
        for i in range(self.cfg["num_layers"]):
            pre = f"decoder.layers.{i}."
            # --apply-residual-connection-post-layernorm: the residual is the norm's output, not its input.
            post_ln = self.cfg.get("apply_residual_connection_post_layernorm", False)
            y = F.layer_norm(x, (h,), p[pre + "input_layernorm.weight"], p[pre + "input_layernorm.bias"], self.eps)
            x = (y if post_ln else x) + self._attention(y, i)
            y = F.layer_norm(x, (h,), p[pre + "pre_mlp_layernorm.weight"], p[pre + "pre_mlp_layernorm.bias"], self.eps)
            x = (y if post_ln else x) + self._mlp(y, i)
        x = F.layer_norm(x, (h,), p["decoder.final_layernorm.weight"], p["decoder.final_layernorm.bias"], self.eps)
        return F.linear(x, p["embedding.word_embeddings.weight"])  # tied output layer

    def token_losses(self, tokens, labels):
        logits = self.forward(tokens)
        V = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), reduction="none").view(labels.shape)

    def loss(self, tokens, labels, loss_mask):
        """Megatron masked mean: sum(loss * mask) / sum(mask)."""
        lt = self.token_losses(tokens, labels)
        m = loss_mask.to(lt.dtype)
        return (lt * m).sum() / m.sum()


# ----------------------------------------------------------------------------- optimizer

class MegatronLRScheduler:
    """Megatron-core OptimizerParamScheduler.get_lr (lr part; weight decay is constant).
    Steps are counted in samples: warmup_steps = lr_warmup_iters * global_batch,
    decay_steps = lr_decay_iters * global_batch."""

    def __init__(self, cfg):
        c = normalize_config(cfg)
        gb = c["global_batch_size"]
        self.max_lr = float(c["lr"])
        self.min_lr = float(c["min_lr"])
        self.init_lr = float(c.get("lr_warmup_init", 0.0))
        self.warmup_steps = int(c["lr_warmup_iters"]) * gb
        self.decay_steps = int(c["lr_decay_iters"]) * gb
        self.style = c["lr_decay_style"]
        self.global_batch = gb
        assert self.decay_steps > 0 and self.warmup_steps < self.decay_steps
        assert 0.0 <= self.min_lr <= self.max_lr and self.init_lr <= self.max_lr
        self.num_steps = 0

    def get_lr(self, num_steps=None):
        n = self.num_steps if num_steps is None else num_steps
        if self.warmup_steps > 0 and n <= self.warmup_steps:
            return self.init_lr + (self.max_lr - self.init_lr) * float(n) / float(self.warmup_steps)
        if self.style == "constant":
            return self.max_lr
        if n > self.decay_steps:
            return self.min_lr
        if self.style == "inverse-square-root":
            lr = self.max_lr * max(self.warmup_steps, 1) ** 0.5 / (max(n, 1) ** 0.5)
            return max(self.min_lr, lr)
        ratio = float(n - self.warmup_steps) / float(self.decay_steps - self.warmup_steps)
        assert 0.0 <= ratio <= 1.0
        if self.style == "linear":
            coeff = 1.0 - ratio
        elif self.style == "cosine":
            coeff = 0.5 * (math.cos(math.pi * ratio) + 1.0)
        else:
            raise ValueError(f"unsupported lr_decay_style {self.style}")
        return self.min_lr + coeff * (self.max_lr - self.min_lr)

    def lr_for_iteration(self, k):
        return self.get_lr(k * self.global_batch)

    def step(self):
        self.num_steps += self.global_batch


def make_optimizer(model, cfg, foreach=None):
    """torch.optim.AdamW with Megatron's two param groups (decay / no decay); with cfg["optimizer"] "sgd",
    torch.optim.SGD(momentum=sgd_momentum, weight_decay) as Megatron's --optimizer sgd builds it."""
    c = normalize_config(cfg)
    decay, no_decay = [], []
    for name, prm in model.named_megatron_parameters():
        (no_decay if is_no_weight_decay(name, tuple(prm.shape)) else decay).append(prm)
    groups = [{"params": decay, "weight_decay": c["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    kw = {} if foreach is None else {"foreach": foreach}
    if c.get("optimizer", "adam") == "sgd":
        return torch.optim.SGD(groups, lr=c["lr"], momentum=c["sgd_momentum"], **kw)
    return torch.optim.AdamW(groups, lr=c["lr"], betas=(c["adam_beta1"], c["adam_beta2"]),
                             eps=c["adam_eps"], **kw)


def total_grad_norm(params):
    """L2 norm over all grads (computed in float64 for a stable reference value)."""
    sq = torch.zeros((), dtype=torch.float64)
    for prm in params:
        if prm.grad is not None:
            sq += prm.grad.detach().double().pow(2).sum()
    return float(sq.sqrt())


def clip_grads_(params, clip, total_norm):
    """Megatron clip_grad_by_total_norm_fp32: coeff = clip/(norm+1e-6), applied if < 1."""
    if clip is None or clip <= 0:
        return 1.0
    coeff = clip / (total_norm + 1.0e-6)
    if coeff < 1.0:
        for prm in params:
            if prm.grad is not None:
                prm.grad.mul_(coeff)
    return coeff


# ----------------------------------------------------------------------------- training

def split_batch(tokens_it, mask_it, micro_batch):
    """tokens_it [gb, s+1], mask_it [gb, s] -> list of (inputs, labels, mask) micro-batches."""
    gb = tokens_it.shape[0]
    out = []
    for j in range(0, gb, micro_batch):
        t = tokens_it[j:j + micro_batch]
        out.append((t[:, :-1], t[:, 1:], mask_it[j:j + micro_batch]))
    return out


def train_reference(cfg, weights, tokens, loss_mask, dtype=torch.float32, steps=None, foreach=None, model_factory=None):
    """Runs Megatron-style training. tokens [steps, gb, s+1] int, loss_mask [steps, gb, s].
    model_factory(cfg, weights, dtype) builds another model with the same interface (named_megatron_parameters,
    loss); the default is MegatronGPT. Names in grads0/final are the model's own.

    Returns dict: loss [steps] (iteration loss before its update = mean of micro-batch losses),
    grad_norm [steps] (pre-clip), lr [steps] (lr used), grads0 {name: grad of iteration 0,
    accumulated, pre-clip}, final {name: weights after all steps}. Arrays are float64 numpy."""
    c = normalize_config(cfg)
    steps = c["steps"] if steps is None else steps
    tokens = torch.as_tensor(np.asarray(tokens)).long()
    loss_mask = torch.as_tensor(np.asarray(loss_mask)).to(dtype)
    assert tokens.shape[0] >= steps and tokens.shape[1] == c["global_batch_size"]
    model = (model_factory or MegatronGPT)(c, weights, dtype=dtype)
    params = [prm for _, prm in model.named_megatron_parameters()]
    opt = make_optimizer(model, c, foreach=foreach)
    sched = MegatronLRScheduler(c)
    M = c["global_batch_size"] // c["micro_batch_size"]
    losses, norms, lrs = [], [], []
    grads0 = None
    for k in range(steps):
        lr = sched.get_lr()
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=False)
        mb_losses = []
        for inp, lab, msk in split_batch(tokens[k], loss_mask[k], c["micro_batch_size"]):
            l = model.loss(inp, lab, msk)
            (l / M).backward()
            mb_losses.append(float(l.detach()))
        losses.append(sum(mb_losses) / M)
        norm = total_grad_norm(params)
        norms.append(norm)
        lrs.append(lr)
        if k == 0:
            grads0 = OrderedDict((n, prm.grad.detach().double().numpy().copy())
                                 for n, prm in model.named_megatron_parameters())
        clip_grads_(params, c["clip_grad"], norm)
        opt.step()
        sched.step()
    final = OrderedDict((n, prm.detach().double().numpy().copy()) for n, prm in model.named_megatron_parameters())
    return {"loss": np.array(losses), "grad_norm": np.array(norms), "lr": np.array(lrs),
            "grads0": grads0, "final": final}
