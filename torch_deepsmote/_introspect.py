"""Looking inside a user's dataset: labels, class names, transforms set aside.

Routes through ``Subset`` and ``ConcatDataset`` like they route indices, so a torchvision
dataset wrapped in either still gives its labels without reading a single image.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Subset, TensorDataset

__all__ = ["find_labels", "find_classes", "transform_owners", "raw_items"]

_TRANSFORM_ATTRS = ("transform", "target_transform", "transforms")


def _as_labels(values: Any) -> Tensor | None:
    try:
        tensor = torch.as_tensor(np.asarray(values))
    except (TypeError, ValueError):
        return None
    if tensor.ndim != 1 or tensor.is_floating_point() or tensor.dtype == torch.bool:
        return None
    return tensor.long()


def find_labels(dataset: Any) -> Tensor | None:
    """Class labels (N,) int64 from the dataset's metadata, or ``None`` when it has none.

    Looks at ``.targets`` (torchvision's MNIST, CIFAR, ImageFolder), ``.labels`` (SVHN),
    a ``TensorDataset``'s second tensor, and routes through ``Subset`` and ``ConcatDataset``.
    """
    if isinstance(dataset, Subset):
        parent = find_labels(dataset.dataset)
        return None if parent is None else parent[torch.as_tensor(list(dataset.indices)).long()]
    if isinstance(dataset, ConcatDataset):
        parts = [find_labels(part) for part in dataset.datasets]
        return None if any(p is None for p in parts) else torch.cat(parts)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return _as_labels(dataset.tensors[1])
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is not None:
            labels = _as_labels(values)
            if labels is not None and len(labels) == len(dataset):
                return labels
    return None


def find_classes(dataset: Any) -> list | None:
    """The dataset's ``classes`` list (torchvision's convention), routing through wrappers."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if isinstance(dataset, ConcatDataset):
        return find_classes(dataset.datasets[0])
    classes = getattr(dataset, "classes", None)
    return list(classes) if classes is not None else None


def transform_owners(dataset: Any) -> list[Any]:
    """The innermost datasets that hold a ``transform`` attribute, in index order."""
    if isinstance(dataset, Subset):
        return transform_owners(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [owner for part in dataset.datasets for owner in transform_owners(part)]
    return [dataset] if hasattr(dataset, "transform") else []


@contextlib.contextmanager
def raw_items(dataset: Any) -> Iterator[list[Any]]:
    """Set the dataset's transforms aside while reading, and restore them afterwards.

    Torchvision datasets apply ``transform`` and ``target_transform`` in ``__getitem__``
    (and ``transforms``, their combination, in some). Setting them to ``None`` gives the raw
    items (PIL images, raw targets) free of random augmentation, as torchvision's v2
    dataset wrapper does. Yields the owners (see :func:`transform_owners`).

    NOTE: this mutates the user's dataset for the duration of the block; it is not safe
    while another thread reads the same dataset object.
    """
    owners = transform_owners(dataset)
    saved = [{a: getattr(o, a) for a in _TRANSFORM_ATTRS if hasattr(o, a)} for o in owners]
    try:
        for owner, attrs in zip(owners, saved):
            for name in attrs:
                setattr(owner, name, None)
        yield owners
    finally:
        for owner, attrs in zip(owners, saved):
            for name, value in attrs.items():
                setattr(owner, name, value)
