"""Fashion-MNIST for the benchmarks: IDX reading, the paper's Table I counts, subsets.

The IDX files come from `apt-get install dataset-fashion-mnist` (/usr/share/datasets/
fashion-mnist) or from torchvision's own download (ROOT/FashionMNIST/raw).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["TABLE_I_TRAIN", "TABLE_I_TEST", "find_root", "load_split", "take_counts"]

# DeepSMOTE (TNNLS 2022), Table I: Fashion-MNIST / MNIST class counts.
TABLE_I_TRAIN = (4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40)
TABLE_I_TEST = (1000, 500, 250, 187, 125, 87, 50, 25, 15, 10)

_CANDIDATES = ("/usr/share/datasets/fashion-mnist",)


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the four IDX .gz files."""
    candidates = [Path(root)] if root else []
    candidates += [Path(c) for c in _CANDIDATES]
    candidates += [Path(root or ".") / "FashionMNIST" / "raw"]
    for path in candidates:
        if (path / "train-images-idx3-ubyte.gz").exists():
            return path
    raise FileNotFoundError(
        "Fashion-MNIST IDX files not found in "
        + ", ".join(map(str, candidates))
        + ". Install them with `apt-get install dataset-fashion-mnist`, or pass --root to a "
        "folder where torchvision downloaded FashionMNIST."
    )


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(train: bool, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the train or test split."""
    base = find_root(root)
    prefix = "train" if train else "t10k"
    images = _read_idx(base / f"{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(base / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def take_counts(labels: np.ndarray, counts: tuple[int, ...], seed: int) -> np.ndarray:
    """Indices of a random subset with ``counts[c]`` items of class ``c`` (sorted)."""
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(labels == c), n, replace=False) for c, n in enumerate(counts)
    ]
    return np.sort(np.concatenate(picks))
