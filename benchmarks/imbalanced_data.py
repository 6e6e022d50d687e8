"""Image datasets for the classification benchmark: torchvision datasets, the paper's counts.

Fashion-MNIST is read from torchvision's folder layout; where only the IDX .gz files of
`apt-get install dataset-fashion-mnist` exist, they are unpacked once into that layout so
that the benchmark uses ``torchvision.datasets.FashionMNIST`` exactly as a user would.
MNIST, CIFAR-10 and SVHN come through torchvision (``root`` holding them, or a download).
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from fashion_mnist import TABLE_I_TEST, TABLE_I_TRAIN, find_root
from torch.utils.data import DataLoader, Subset

__all__ = ["DATASETS", "PAPER_COUNTS", "balanced_counts", "load_split", "ratio_counts", "scale"]

DATASETS = ("fashion-mnist", "mnist", "cifar10", "svhn")

_COLOUR_TRAIN = (4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80)
# DeepSMOTE (TNNLS 2022), Table I. The imbalanced test counts of Fashion-MNIST/MNIST are the
# training counts / 4; for CIFAR-10 and SVHN we use the training counts / 5 (their test
# splits hold a fifth of a class's training images) -- our choice, not a published table.
PAPER_COUNTS = {
    "fashion-mnist": (TABLE_I_TRAIN, TABLE_I_TEST),
    "mnist": (TABLE_I_TRAIN, TABLE_I_TEST),
    "cifar10": (_COLOUR_TRAIN, tuple(n // 5 for n in _COLOUR_TRAIN)),
    "svhn": (_COLOUR_TRAIN, tuple(n // 5 for n in _COLOUR_TRAIN)),
}


def scale(counts, factor: float, minimum: int = 2) -> tuple[int, ...]:
    """Counts multiplied by ``factor`` (at least ``minimum`` per class)."""
    return tuple(max(minimum, round(n * factor)) for n in counts)


def ratio_counts(n_max: int, ratio: float, n_classes: int = 10) -> tuple[int, ...]:
    """Geometric class counts from ``n_max`` down to ``n_max / ratio`` (the Fig. 8 sweep)."""
    return tuple(max(2, round(n_max * ratio ** (-c / (n_classes - 1)))) for c in range(n_classes))


def balanced_counts(labels: np.ndarray, n_classes: int = 10, cap: int = 1000) -> tuple[int, ...]:
    """Equal counts per class: the smallest class of the test split, at most ``cap``."""
    return (int(min(cap, np.bincount(labels, minlength=n_classes).min())),) * n_classes


def _fashion_mnist(root: str | None, train: bool, work: Path, transform):
    from torchvision.datasets import FashionMNIST

    for base in filter(None, (root, str(work / "torchvision"))):
        try:
            return FashionMNIST(base, train=train, transform=transform)
        except RuntimeError:
            pass
    try:
        idx = find_root(root)
    except FileNotFoundError:  # nothing local: torchvision's own download
        return FashionMNIST(
            root or str(work / "torchvision"), train=train, download=True, transform=transform
        )
    raw = work / "torchvision" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in idx.glob("*-ubyte.gz"):
        target = raw / gz.name[: -len(".gz")]
        if not target.exists():
            with gzip.open(gz, "rb") as src, open(f"{target}.tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(f"{target}.tmp", target)
    return FashionMNIST(str(work / "torchvision"), train=train, transform=transform)


def load_split(name: str, root: str | None, train: bool, work: Path):
    """A torchvision dataset whose items are (float tensor (C, H, W) in [0, 1], int)."""
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    if name == "fashion-mnist":
        return _fashion_mnist(root, train, work, ToTensor())
    root = root or str(work / "torchvision")
    if name == "mnist":
        return datasets.MNIST(root, train=train, transform=ToTensor(), download=True)
    if name == "cifar10":
        return datasets.CIFAR10(root, train=train, transform=ToTensor(), download=True)
    if name == "svhn":
        return datasets.SVHN(
            root, split="train" if train else "test", transform=ToTensor(), download=True
        )
    raise ValueError(f"`dataset` should be one of {DATASETS}, but got dataset={name!r}.")


def labels_of(dataset) -> np.ndarray:
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels
    return np.asarray(labels, dtype=np.int64)


def take(labels: np.ndarray, counts, seed: int) -> np.ndarray:
    """Sorted indices of a random subset with ``counts[c]`` items of class ``c``."""
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(labels == c), n, replace=False) for c, n in enumerate(counts)
    ]
    return np.sort(np.concatenate(picks))


def as_tensors(dataset, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item of ``dataset`` read through a DataLoader, stacked."""
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys).long()


def subset(dataset, indices) -> Subset:
    return Subset(dataset, [int(i) for i in indices])
