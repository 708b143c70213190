#!/usr/bin/python3
"""End-to-end parity of `--optimizer sgd` (Megatron builds torch.optim.SGD(params, lr, weight_decay,
momentum=--sgd-momentum)) with the torch reference: the same 2-layer GPT and 20 steps as test_gpt_parity.py,
momentum 0.9, weight decay 0.1 on Megatron's decay group only, gradient clipping at 1.0, the cosine schedule at lr 1.0 (large steps: the weights move far from their
start), same tolerances."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import test_gpt_parity  # noqa: E402

if __name__ == "__main__":
    sys.exit(test_gpt_parity.main(["--optimizer", "sgd", "--lr", "1.0"] + sys.argv[1:]))
