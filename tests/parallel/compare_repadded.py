"""compare_repadded.py A B VOCAB: checkpoint B is checkpoint A loaded into a layout whose vocabulary is
padded to another size (another tensor-parallel size) and saved again before any step. As Megatron's
converters do: every tensor equals A's bit for bit, except that the vocabulary-sized ones (word
embedding, output layer; weights and both Adam moments) keep their first VOCAB rows bit for bit and
have zero rows up to B's padded size. Exit 1 with the first difference."""

import sys

import numpy as np

from checkpoint_full import load_checkpoint

_, a_dir, b_dir, vocab = sys.argv
vocab = int(vocab)
meta_a, a = load_checkpoint(a_dir)
meta_b, b = load_checkpoint(b_dir)
problems = []
if sorted(a) != sorted(b):
    problems.append(f"tensor sets differ: {sorted(set(a) ^ set(b))}")
repadded = 0
for key in sorted(set(a) & set(b)):
    x, y = a[key], b[key]
    vocab_sized = key.endswith("/embedding.word_embeddings.weight") or key.endswith("/output_layer.weight")
    if vocab_sized and x.shape != y.shape:
        repadded += 1
        if x.shape[1:] != y.shape[1:] or y.shape[0] < vocab:
            problems.append(f"{key}: {x.shape} -> {y.shape}")
        elif not np.array_equal(x[:vocab].view(np.uint32), y[:vocab].view(np.uint32)):
            problems.append(f"{key}: the {vocab} vocabulary rows changed")
        elif np.any(y[vocab:] != 0):
            problems.append(f"{key}: padding rows {vocab}..{y.shape[0]} are not zero")
    elif x.shape != y.shape or not np.array_equal(x.view(np.uint32), y.view(np.uint32)):
        problems.append(f"{key}: differs")
if repadded == 0:
    problems.append("no vocabulary-sized tensor changed its padded size: the test does not test re-padding")
for p in problems:
    print("compare_repadded:", p)
sys.exit(1 if problems else 0)
