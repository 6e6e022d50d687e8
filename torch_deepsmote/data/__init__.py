"""Data bundled with the package.

``fashion_mnist_imbalanced.npz``: 2,249 Fashion-MNIST training images (MIT licence,
Zalando SE) with the class counts of the DeepSMOTE paper's imbalanced test set (Table I):
[1000, 500, 250, 187, 125, 87, 50, 25, 15, 10] for classes 0..9. Written by
``benchmarks/make_demo_data.py``.

``fashion_mnist`` is the one reader of the full Fashion-MNIST set (torchvision's
``FashionMNIST``, filled from the IDX files of ``apt-get install dataset-fashion-mnist``
where they exist), and ``imbalanced_subset`` cuts any labelled dataset to given class
counts (the paper's Table I: ``TABLE_I_TRAIN``, ``TABLE_I_TEST``).
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..storage.atomic import atomic_write

__all__ = [
    "FASHION_MNIST_CLASSES",
    "TABLE_I_TEST",
    "TABLE_I_TRAIN",
    "fashion_mnist",
    "imbalanced_subset",
    "load_fashion_mnist_imbalanced",
]

# DeepSMOTE (TNNLS 2022), Table I: Fashion-MNIST / MNIST class counts of the imbalanced
# training set and of the imbalanced test set.
TABLE_I_TRAIN = (4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40)
TABLE_I_TEST = (1000, 500, 250, 187, 125, 87, 50, 25, 15, 10)

# Where Debian's `dataset-fashion-mnist` package puts the four IDX .gz files.
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def load_fashion_mnist_imbalanced() -> tuple[np.ndarray, np.ndarray]:
    """The bundled imbalanced Fashion-MNIST subset.

    Returns:
        images: (2249, 28, 28) uint8.
        labels: (2249,) int64 in 0..9.

    Examples:
        >>> images, labels = load_fashion_mnist_imbalanced()
        >>> images.shape, np.bincount(labels).tolist()
        ((2249, 28, 28), [1000, 500, 250, 187, 125, 87, 50, 25, 15, 10])
    """
    with resources.files(__name__).joinpath("fashion_mnist_imbalanced.npz").open("rb") as f:
        data = np.load(f)
        return data["images"], data["labels"].astype(np.int64)


def default_root() -> Path:
    """Where downloaded datasets go by default: ``datasets`` beside torch's hub folder."""
    import torch

    return Path(torch.hub.get_dir()).parent / "datasets"


def _idx_source(root: Path) -> Path | None:
    """A folder holding the four IDX .gz files: ``root``, its torchvision raw folder or
    Debian's package folder."""
    for folder in (root, root / "FashionMNIST" / "raw", SYSTEM_FASHION_MNIST):
        if all((folder / f"{name}.gz").exists() for name in _IDX_FILES):
            return folder
    return None


def fashion_mnist(
    root: str | os.PathLike | None = None,
    train: bool = True,
    transform: Callable | None = None,
    target_transform: Callable | None = None,
    download: bool = False,
) -> Any:
    """torchvision's ``FashionMNIST``, read from local IDX files where there are any.

    torchvision reads unpacked files in ``root/FashionMNIST/raw``. Where they are missing
    but the four ``.gz`` IDX files are found (in ``root``, in that raw folder, or in
    ``/usr/share/datasets/fashion-mnist`` from ``apt-get install dataset-fashion-mnist``),
    they are unpacked there once (each file written beside its name and renamed, so a killed
    run leaves no half file). Otherwise ``download=True`` uses torchvision's download.

    Args:
        root: Folder of torchvision's layout; ``None``: ``datasets/`` beside torch's hub
            folder (``~/.cache/torch/datasets``).
        train: The training split (60,000 images) or the test split (10,000).
        transform, target_transform: As in torchvision.
        download: Download when no local copy is found.

    Returns:
        A ``torchvision.datasets.FashionMNIST``.

    Raises:
        FileNotFoundError: No local copy and ``download=False``.
    """
    from torchvision.datasets import FashionMNIST

    root = Path(root) if root is not None else default_root()
    raw = root / "FashionMNIST" / "raw"
    if not all((raw / name).exists() for name in _IDX_FILES):
        source = _idx_source(root)
        if source is not None:
            raw.mkdir(parents=True, exist_ok=True)
            for name in _IDX_FILES:
                target = raw / name
                if not target.exists():
                    with atomic_write(target) as temporary, open(temporary, "wb") as dst:
                        with gzip.open(source / f"{name}.gz", "rb") as src:
                            shutil.copyfileobj(src, dst)
        elif not download:
            raise FileNotFoundError(
                f"Fashion-MNIST was not found in {root}, {raw} or {SYSTEM_FASHION_MNIST}. "
                "Install it with `apt-get install dataset-fashion-mnist`, pass `root` to a "
                "folder holding it, or pass download=True."
            )
    return FashionMNIST(
        str(root),
        train=train,
        transform=transform,
        target_transform=target_transform,
        download=download,
    )


def imbalanced_subset(dataset: Any, counts: Sequence[int], seed: int = 0) -> Any:
    """A ``Subset`` of ``dataset`` with ``counts[c]`` items of class ``c``, drawn at random.

    Args:
        dataset: A labelled map-style dataset (``.targets`` / ``.labels``, through
            ``Subset`` and ``ConcatDataset``).
        counts: Items to keep per class, for classes ``0 .. len(counts) - 1``.
        seed: Seed of the draw (numpy's ``default_rng``).

    Returns:
        A ``torch.utils.data.Subset`` whose indices are sorted.

    Raises:
        ValueError: The dataset has no label metadata, or a class has fewer items than asked.

    Examples:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.zeros(10, 1, 2, 2), torch.tensor([0] * 6 + [1] * 4))
        >>> sub = imbalanced_subset(ds, (5, 2), seed=0)
        >>> len(sub), sorted(int(ds[i][1]) for i in sub.indices)
        (7, [0, 0, 0, 0, 0, 1, 1])
    """
    from torch.utils.data import Subset

    from ..adapters import find_labels

    labels = find_labels(dataset)
    if labels is None:
        raise ValueError(
            f"`dataset` should carry its labels (.targets or .labels), but got a "
            f"{type(dataset).__name__} without them."
        )
    labels = labels.numpy()
    rng = np.random.default_rng(seed)
    picks = []
    for label, count in enumerate(counts):
        rows = np.flatnonzero(labels == label)
        if count > len(rows):
            raise ValueError(
                f"`counts` should not ask for more items than a class has, but got "
                f"counts[{label}]={count} for a class of {len(rows)} items."
            )
        picks.append(rng.choice(rows, count, replace=False))
    return Subset(dataset, np.sort(np.concatenate(picks)).tolist())
