#!/usr/bin/python3
"""Read a pimqat sweep's results.h5 with h5py (and pandas, when it is installed).

Usage: read_results.py RUN_DIR | RUN_DIR/results.h5

Prints the file's provenance, then one line per evaluation setting (the eval rows that differ only in
their die) with the statistics over dies that `pimqat analyze` puts in tables/eval_stats.csv:
    SETTING <axis>=<value>;... n=<dies> mean=<%> std=<%> min=<%>
(accuracy in percent; std is the sample standard deviation, n - 1).

Layout (docs/results-format.md, docs/analysis.md): every table is a group with one 1-D dataset per
column and an attribute "columns" giving their order; text columns are variable-length UTF-8
(h5py returns bytes from ds[:], str from ds.asstr()[:]). In /eval, the axis columns are the ones
between "die" and "accuracy"; accuracy is a fraction.
"""
import os
import sys

import h5py
import numpy as np

try:
    import pandas as pd
except ImportError:  # the example also works with h5py and numpy alone
    pd = None

SUPPORTED_FORMAT_VERSION = 1


def read_table(f, name):
    """A table as {column: numpy array}, in the stored column order (text columns as str)."""
    group = f[name]
    columns = [c.decode() if isinstance(c, bytes) else c for c in group.attrs["columns"]]
    return {c: (group[c].asstr()[:] if group[c].dtype.kind == "O" else group[c][:]) for c in columns}, columns


def axis_columns(columns):
    """Axis columns of /eval: after the fixed columns, before the metrics."""
    start = columns.index("die") + 1
    end = columns.index("accuracy")
    return columns[start:end]


def settings_with_pandas(table, columns, axes):
    df = pd.DataFrame({c: table[c] for c in columns})
    df["accuracy"] = 100.0 * df["accuracy"]
    if not axes:
        groups = [((), df)]
    else:
        groups = df.groupby(axes, dropna=False, sort=True)
    for key, rows in groups:
        key = key if isinstance(key, tuple) else (key,)
        acc = rows["accuracy"]
        yield dict(zip(axes, key)), len(acc), acc.mean(), acc.std(ddof=1), acc.min()


def settings_with_numpy(table, axes):
    accuracy = 100.0 * np.asarray(table["accuracy"], dtype=float)
    keys = list(zip(*[table[a] for a in axes])) if axes else [()] * len(accuracy)
    for key in sorted(set(keys), key=str):
        acc = accuracy[[k == key for k in keys]]
        std = acc.std(ddof=1) if len(acc) > 1 else float("nan")
        yield dict(zip(axes, key)), len(acc), acc.mean(), std, acc.min()


def main(path):
    if os.path.isdir(path):
        path = os.path.join(path, "results.h5")
    with h5py.File(path, "r") as f:
        version = int(f.attrs["format_version"])
        if version != SUPPORTED_FORMAT_VERSION:
            sys.exit(f"{path}: format_version {version}; this example reads {SUPPORTED_FORMAT_VERSION}")
        print("format_version", version)
        print("program_version", f.attrs["program_version"])
        print("tasks", int(f.attrs["tasks_done"]), "of", int(f.attrs["tasks_total"]), "done")
        table, columns = read_table(f, "eval")
    axes = axis_columns(columns)
    print("axes", ",".join(axes))
    print("reader", "pandas" if pd is not None else "numpy")
    rows = settings_with_pandas(table, columns, axes) if pd is not None else settings_with_numpy(table, axes)
    for setting, n, mean, std, minimum in rows:
        label = ";".join(f"{k}={v}" for k, v in setting.items())
        print(f"SETTING {label} n={n} mean={mean:.6f} std={std:.6f} min={minimum:.6f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
