"""Small data folders in the exact formats users have, written by the tests: a subset of real
MNIST as IDX files, and a random CIFAR-10 ``cifar-10-batches-py`` folder."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from xnorflow.train.data import read_idx


def write_idx(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        header = struct.pack(">IIII", 2051, *array.shape)
    else:
        header = struct.pack(">II", 2049, len(array))
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist_subset(source: Path, out: Path, train: int, test: int) -> Path:
    """The first ``train``/``test`` images of the MNIST-layout folder ``source`` as IDX files."""
    out.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        for kind in ("images-idx3", "labels-idx1"):
            stem = f"{prefix}-{kind}-ubyte"
            found = next(p for p in (source / stem, source / f"{stem}.gz") if p.is_file())
            write_idx(out / stem, read_idx(found)[:count])
    return out


def write_random_cifar(out: Path, per_batch: int, seed: int = 0) -> Path:
    """A cifar-10-batches-py folder (5 training batches and a test batch of ``per_batch``
    random images each), pickled as the original (bytes keys, (N, 3072) uint8 rows)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
                 b"batch_label": name.encode()}
        with open(out / name, "wb") as f:
            pickle.dump(entry, f)
    return out
