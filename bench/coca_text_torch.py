#!/usr/bin/python3
"""The PyTorch side of bench/coca_text.sh: the plain-PyTorch CoCa text tower + caption decoder of
tests/parity/test_coca_text.py at CoCa-B/16's shapes (fp32), forward and backward with the caption loss,
seconds per iteration (best of N after a warm-up).
usage: coca_text_torch.py <batch> <iterations> <threads>"""
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
import test_coca_text as ref  # noqa: E402


def main():
    B, iters, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    ref.VOCAB, ref.CTX, ref.WIDTH, ref.LAYERS, ref.HEADS, ref.MLP = 49408, 77, 512, 12, 8, 2048
    ref.QUERIES, ref.DEC_LAYERS, ref.DEC_HEADS = 256, 12, 8
    torch.manual_seed(0)
    model = ref.TextAndDecoder()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.02 * torch.randn_like(p))
    ids = torch.zeros(B, ref.CTX, dtype=torch.long)
    for b in range(B):
        n = 20 + (b * 13) % 50
        ids[b, 0] = 49406
        ids[b, 1:n - 1] = torch.randint(1, 49000, (n - 2,))
        ids[b, n - 1] = 49407
    image = torch.randn(B, ref.QUERIES, ref.WIDTH, requires_grad=True)
    dlatent = 0.01 * torch.randn(B, ref.WIDTH)
    best, best_cpu = float("inf"), float("inf")
    for it in range(iters + 1):
        model.zero_grad(set_to_none=False)
        t0, c0 = time.perf_counter(), time.process_time()
        latent, tokens = model.text(ids)
        logits = model.text_decoder(image, tokens)[:, :-1]
        caption = nn.CrossEntropyLoss(ignore_index=0)(logits.permute(0, 2, 1), ids[:, 1:])
        ((latent * dlatent).sum() + 2.0 * caption).backward()
        s, c = time.perf_counter() - t0, time.process_time() - c0
        if it == 0:
            print(f"loss {caption.item():.4f}")
        else:
            best, best_cpu = min(best, s), min(best_cpu, c)
    print(f"torch text+decoder fwd+bwd batch {B}: {best:.4f} s/iter wall, {best_cpu:.4f} s/iter cpu "
          f"(best of {iters}, {threads} threads)")


if __name__ == "__main__":
    main()
