#!/usr/bin/python3
"""End-to-end parity of `--apply-residual-connection-post-layernorm` (Megatron's ParallelTransformerLayer /
TransformerLayer option: each half's residual is its norm's output, x1 = LN1(x) + attn(LN1(x)),
out = LN2(x1) + mlp(LN2(x1))) with the torch reference: the same 2-layer GPT, 20 AdamW steps and
tolerances as test_gpt_parity.py, with "apply_residual_connection_post_layernorm" in the model metadata
(what loom train sets for the flag)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import test_gpt_parity  # noqa: E402

if __name__ == "__main__":
    sys.exit(test_gpt_parity.main(["--post-ln-residual"] + sys.argv[1:]))
