"""PyTorch references for ClipLoss (clip_loss_driver.cpp's inputs and outputs).

The loss is written here as open_clip / EVA-CLIP compute it: the model's forward normalises the latents
(F.normalize) and takes logit_scale.exp(); ClipLoss(local_loss=True, gather_with_grad=True) all-gathers
with torch.distributed.nn.all_gather and uses rank-offset labels. References run in float64 on the same
float32 inputs, so a difference is Loom's float32 rounding only.

one_process(): the whole batch in one process (labels arange(N)).
distributed(): real torch.distributed (gloo) processes, one per rank, running that code path, which gives
each rank's own (pre-averaging) gradients.
"""
import os
import struct
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

STATS = 7  # loss, loss_i2t, loss_t2i, i2t_acc, t2i_acc, logit_scale, local d_param


def make_case(N, E, Fdim, seed, param=2.659260036932778, d_param_init=0.0, tiny_rows=()):
    """Random inputs; rows in tiny_rows get image features scaled so their latent norm is below 1e-12
    (F.normalize's clamp)."""
    rng = np.random.default_rng(seed)
    c = {
        "N": N, "E": E, "F": Fdim,
        "param": np.float32(param), "d_param_init": np.float32(d_param_init),
        "f_img": rng.standard_normal((N, Fdim)).astype(np.float32),
        "f_txt": rng.standard_normal((N, Fdim)).astype(np.float32),
        "W_img": (rng.standard_normal((E, Fdim)) / np.sqrt(Fdim)).astype(np.float32),
        "W_txt": (rng.standard_normal((E, Fdim)) / np.sqrt(Fdim)).astype(np.float32),
    }
    for r in tiny_rows:
        c["f_img"][r] *= np.float32(1e-14)
    return c


def write_case(c, path):
    with open(path, "wb") as f:
        f.write(struct.pack("<3i", c["N"], c["E"], c["F"]))
        f.write(struct.pack("<2f", float(c["param"]), float(c["d_param_init"])))
        for k in ("f_img", "f_txt", "W_img", "W_txt"):
            f.write(np.ascontiguousarray(c[k], dtype="<f4").tobytes())


def read_output(path, c, R):
    N, E, Fdim = c["N"], c["E"], c["F"]
    a = np.fromfile(path, dtype="<f4")
    sizes = [STATS * R, 1, E * Fdim, E * Fdim, N * E, N * E]
    assert a.size == sum(sizes), (a.size, sum(sizes))
    out, o = [], 0
    for s in sizes:
        out.append(a[o:o + s])
        o += s
    return {
        "stats": out[0].reshape(R, STATS), "d_param": float(out[1][0]),
        "dW_img": out[2].reshape(E, Fdim), "dW_txt": out[3].reshape(E, Fdim),
        "d_img": out[4].reshape(N, E), "d_txt": out[5].reshape(N, E),
    }


def _tensors(c):
    t = lambda k: torch.tensor(c[k], dtype=torch.float64)
    W_img = t("W_img").requires_grad_()
    W_txt = t("W_txt").requires_grad_()
    p = torch.tensor(float(c["param"]), dtype=torch.float64, requires_grad=True)
    return t("f_img"), t("f_txt"), W_img, W_txt, p


def _local_terms(img_lat, txt_lat, p, all_img, all_txt, labels):
    """ClipLoss's local-loss logits and loss on already-gathered features."""
    scale = p.exp()
    li = scale * img_lat @ all_txt.T
    lt = scale * txt_lat @ all_img.T
    l_i2t = F.cross_entropy(li, labels)
    l_t2i = F.cross_entropy(lt, labels)
    i2t_acc = (li.argmax(-1) == labels).double().mean()
    t2i_acc = (lt.argmax(-1) == labels).double().mean()
    return (l_i2t + l_t2i) / 2, l_i2t, l_t2i, i2t_acc, t2i_acc, scale


def one_process(c, grad_scale, R):
    """The whole batch in one process; also each rank's local loss (its rows of the global logits)."""
    f_img, f_txt, W_img, W_txt, p = _tensors(c)
    N = c["N"]
    # the raw latents as leaves, for their gradients
    raw_i = (f_img @ W_img.T).detach().requires_grad_()
    raw_t = (f_txt @ W_txt.T).detach().requires_grad_()
    u, v = F.normalize(raw_i, dim=-1), F.normalize(raw_t, dim=-1)
    loss, *_ = _local_terms(u, v, p, u, v, torch.arange(N))
    (loss * grad_scale).backward()
    # parameter gradients through the linear towers: dW = d_latent^T @ f
    dW_img = raw_i.grad.T @ f_img
    dW_txt = raw_t.grad.T @ f_txt
    b = N // R
    per_rank = []
    with torch.no_grad():
        for r in range(R):
            rows = slice(r * b, (r + 1) * b)
            vals = _local_terms(u[rows], v[rows], p, u, v, torch.arange(b) + r * b)
            per_rank.append([float(x) for x in vals])
    return {
        "loss": float(loss), "d_param": float(p.grad) + float(c["d_param_init"]),
        "dW_img": dW_img.numpy(), "dW_txt": dW_txt.numpy(),
        "d_img": raw_i.grad.numpy(), "d_txt": raw_t.grad.numpy(), "per_rank": per_rank,
    }


def _worker(rank, R, c, grad_scale, init_file, out_dir):
    import torch.distributed as dist
    import torch.distributed.nn  # noqa: F401  (all_gather with a backward)
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=R)
    f_img, f_txt, W_img, W_txt, p = _tensors(c)
    b = c["N"] // R
    rows = slice(rank * b, (rank + 1) * b)
    raw_i = (f_img[rows] @ W_img.T).detach().requires_grad_()
    raw_t = (f_txt[rows] @ W_txt.T).detach().requires_grad_()
    img, txt = F.normalize(raw_i, dim=-1), F.normalize(raw_t, dim=-1)
    # open_clip's gather_features(gather_with_grad=True)
    all_img = torch.cat(torch.distributed.nn.all_gather(img), dim=0)
    all_txt = torch.cat(torch.distributed.nn.all_gather(txt), dim=0)
    loss, *_ = _local_terms(img, txt, p, all_img, all_txt, torch.arange(b) + b * rank)
    (loss * grad_scale).backward()
    np.savez(os.path.join(out_dir, "rank%d.npz" % rank), loss=float(loss), d_param=float(p.grad),
             d_img=raw_i.grad.numpy(), d_txt=raw_t.grad.numpy())
    dist.barrier()
    dist.destroy_process_group()


def distributed(c, grad_scale, R):
    """Each rank's local loss and local gradients from real torch.distributed processes (gloo)."""
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory() as d:
        # fork: the children share the imported torch (no re-import, no __main__ guard needed)
        mp.start_processes(_worker, args=(R, c, grad_scale, os.path.join(d, "pg"), d), nprocs=R, join=True,
                           start_method="fork")
        return [dict(np.load(os.path.join(d, "rank%d.npz" % r))) for r in range(R)]


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
