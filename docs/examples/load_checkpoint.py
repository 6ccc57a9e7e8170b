#!/usr/bin/python3
"""Load a pimqat checkpoint with h5py and print what a PyTorch user needs: the resolved config,
the epoch count, every tensor with its shape, and the learning curve.

Usage: load_checkpoint.py DIR/checkpoint.h5
To build a PyTorch state_dict: names map as /model/<layer>/<leaf> -> "<layer>.<leaf>" (weights are
OIHW like torch.nn.Conv2d; BN running_mean/running_var like torch.nn.BatchNorm2d; `alpha` is the
PACT clipping level of a quantized layer).
"""
import sys

import h5py
import numpy as np


def state_dict(path):
    tensors = {}
    with h5py.File(path, "r") as f:
        assert f.attrs["kind"] == "pimqat-checkpoint", "not a pimqat checkpoint"
        for layer, group in f["model"].items():
            for leaf, ds in group.items():
                tensors[f"{layer}.{leaf}"] = np.asarray(ds)
    return tensors


def main(path):
    with h5py.File(path, "r") as f:
        print("format_version", int(f.attrs["format_version"]))
        print("epochs_done", int(f.attrs["epochs_done"]), "complete", int(f.attrs["complete"]))
        history = f["history"]
        columns = list(history.attrs["columns"])
        curve = {c: history[c][:] for c in columns}
        print("columns", ",".join(columns))
        if len(curve["epoch"]):
            print("last_test_accuracy", float(curve["test_accuracy"][-1]))
    tensors = state_dict(path)
    print("tensors", len(tensors))
    for name, value in sorted(tensors.items()):
        print(name, tuple(value.shape), value.dtype)


if __name__ == "__main__":
    main(sys.argv[1])
