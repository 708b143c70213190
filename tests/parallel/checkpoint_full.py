"""Every tensor of a Loom checkpoint iteration directory as one full numpy array, assembled from the
slices its metadata.json records (each shard file holds a rectangle of the tensor: rows for dim 0,
columns for dim 1, everything for -1). Independent of Loom's reader: it follows the file format only."""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from safetensors_np import load_file  # noqa: E402


def load_checkpoint(iteration_dir):
    meta = json.load(open(os.path.join(iteration_dir, "metadata.json")))
    files = {name: load_file(os.path.join(iteration_dir, name)) for name in meta["files"]}
    out = {}
    for key, rec in meta["tensors"].items():
        full = np.full(rec["global_shape"], np.nan, dtype=np.float32)
        for sh in rec["shards"]:
            part = files[sh["file"]][key]
            if sh["dim"] < 0:
                full[...] = part
            elif sh["dim"] == 0:
                full[sh["offset"]:sh["offset"] + part.shape[0]] = part
            else:
                full[:, sh["offset"]:sh["offset"] + part.shape[1]] = part
        assert not np.isnan(full).any(), f"{iteration_dir}: the shards do not cover all of '{key}'"
        out[key] = full
    return meta, out
