#!/usr/bin/python3
"""End-to-end parity of `--no-bias-gelu-fusion` (Megatron's unfused MLP: the exact erf GELU, F.gelu) with the
torch reference: the same 2-layer GPT, 20 AdamW steps and tolerances as test_gpt_parity.py, with the
activation "gelu_exact" in the model metadata (what loom train --no-bias-gelu-fusion sets)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import test_gpt_parity  # noqa: E402

if __name__ == "__main__":
    sys.exit(test_gpt_parity.main(["--activation", "gelu_exact"] + sys.argv[1:]))
