"""Image datasets for the classification benchmark: torchvision datasets, the paper's counts.

Fashion-MNIST comes from the library's reader, ``torch_deepsmote.data.fashion_mnist``
(torchvision's ``FashionMNIST``, filled once from the IDX .gz files of
`apt-get install dataset-fashion-mnist` where they exist), so that the benchmark reads it
exactly as a user would. MNIST, CIFAR-10 and SVHN come through torchvision (``root`` holding
them, or a download).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from torch_deepsmote.data import TABLE_I_TEST, TABLE_I_TRAIN, fashion_mnist, imbalanced_subset

__all__ = ["DATASETS", "PAPER_COUNTS", "balanced_counts", "load_split", "ratio_counts", "scale"]

DATASETS = ("fashion-mnist", "mnist", "cifar10", "svhn", "digits")

_COLOUR_TRAIN = (4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80)
# DeepSMOTE (TNNLS 2022), Table I. The imbalanced test counts of Fashion-MNIST/MNIST are the
# training counts / 4; for CIFAR-10 and SVHN we use the training counts / 5 (their test
# splits hold a fifth of a class's training images) -- our choice, not a published table.
PAPER_COUNTS = {
    "fashion-mnist": (TABLE_I_TRAIN, TABLE_I_TEST),
    "mnist": (TABLE_I_TRAIN, TABLE_I_TEST),
    "cifar10": (_COLOUR_TRAIN, tuple(n // 5 for n in _COLOUR_TRAIN)),
    "svhn": (_COLOUR_TRAIN, tuple(n // 5 for n in _COLOUR_TRAIN)),
    # scikit-learn's bundled 8x8 digits (about 180 images a class): Table I's counts at a
    # fortieth, which keeps the paper's imbalance ratio of 100 (100 images down to 1).
    "digits": (
        tuple(max(1, round(n / 40)) for n in TABLE_I_TRAIN),
        tuple(max(1, round(n / 40)) for n in TABLE_I_TEST),
    ),
}
# The share of each digit class held out as the test split (fixed, as torchvision's splits
# are): 59-61 test images a class, leaving 115-122 to draw the 100 of the largest class from.
DIGITS_TEST_SHARE = 1 / 3


def scale(counts, factor: float, minimum: int = 2) -> tuple[int, ...]:
    """Counts multiplied by ``factor`` (at least ``minimum`` per class)."""
    return tuple(max(minimum, round(n * factor)) for n in counts)


def ratio_counts(n_max: int, ratio: float, n_classes: int = 10) -> tuple[int, ...]:
    """Geometric class counts from ``n_max`` down to ``n_max / ratio`` (the Fig. 8 sweep)."""
    return tuple(max(2, round(n_max * ratio ** (-c / (n_classes - 1)))) for c in range(n_classes))


def balanced_counts(labels: np.ndarray, n_classes: int = 10, cap: int = 1000) -> tuple[int, ...]:
    """Equal counts per class: the smallest class of the test split, at most ``cap``."""
    return (int(min(cap, np.bincount(labels, minlength=n_classes).min())),) * n_classes


def load_split(name: str, root: str | None, train: bool, work: Path):
    """A torchvision dataset whose items are (float tensor (C, H, W) in [0, 1], int)."""
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    root = root or str(work / "torchvision")
    if name == "fashion-mnist":  # the local IDX files where there are any, else a download
        return fashion_mnist(root, train=train, transform=ToTensor(), download=True)
    if name == "digits":
        return digits(train)
    if name == "mnist":
        return datasets.MNIST(root, train=train, transform=ToTensor(), download=True)
    if name == "cifar10":
        return datasets.CIFAR10(root, train=train, transform=ToTensor(), download=True)
    if name == "svhn":
        return datasets.SVHN(
            root, split="train" if train else "test", transform=ToTensor(), download=True
        )
    raise ValueError(f"`dataset` should be one of {DATASETS}, but got dataset={name!r}.")


class _Digits(TensorDataset):
    """TensorDataset with ``targets``, as torchvision's datasets have."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        super().__init__(images, targets)
        self.targets = targets.tolist()

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return x, int(y)


def digits(train: bool) -> _Digits:
    """scikit-learn's bundled digits (1,797 images of 8x8, 16 grey levels) as (float tensor
    (1, 8, 8) in [0, 1], int) items: the training or the test split, a fixed stratified
    split with :data:`DIGITS_TEST_SHARE` of each class in the test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    rows = np.arange(len(bunch.target))
    train_rows, test_rows = train_test_split(
        rows, test_size=DIGITS_TEST_SHARE, stratify=bunch.target, random_state=0
    )
    chosen = np.sort(train_rows if train else test_rows)
    images = torch.from_numpy(bunch.images[chosen] / 16.0).float().unsqueeze(1)
    return _Digits(images, torch.from_numpy(bunch.target[chosen]).long())


def labels_of(dataset) -> np.ndarray:
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels
    return np.asarray(labels, dtype=np.int64)


def take(labels: np.ndarray, counts, seed: int) -> np.ndarray:
    """Sorted indices of a random subset with ``counts[c]`` items of class ``c``: the draw of
    ``torch_deepsmote.data.imbalanced_subset``, for callers that hold only the labels."""
    labelled = TensorDataset(torch.empty(len(labels), 0), torch.as_tensor(labels))
    return np.asarray(imbalanced_subset(labelled, counts, seed).indices)


def as_tensors(dataset, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item of ``dataset`` read through a DataLoader, stacked."""
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys).long()


def subset(dataset, indices) -> Subset:
    return Subset(dataset, [int(i) for i in indices])
