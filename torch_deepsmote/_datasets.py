"""A user's map-style dataset: its labels, class names and transforms, and reading it.

Routes through ``Subset`` and ``ConcatDataset`` like they route indices, so a torchvision
dataset wrapped in either still gives its labels without reading a single image.
:func:`read_dataset` is the one way the library reads a dataset's images, for
:meth:`DeepSMOTE.fit_dataset` and :class:`OversampledDataset` alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Subset, TensorDataset
from tqdm.auto import tqdm

from ._format import ImageFormat, TargetFormat, as_labels, check_pixels, image_to_tensor

__all__ = [
    "DatasetImages",
    "PairTransform",
    "find_class_to_idx",
    "find_classes",
    "find_labels",
    "item_transform",
    "raw_items",
    "read_dataset",
    "transform_owners",
]

_TRANSFORM_ATTRS = ("transform", "target_transform", "transforms")


def _as_labels(values: Any) -> Tensor | None:
    """``values`` as labels, or ``None`` where a ``targets`` attribute holds something else
    (boxes, masks, strings)."""
    try:
        return as_labels(values, "targets")
    except (TypeError, ValueError):
        return None


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


def _innermost(dataset: Any) -> Any:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if isinstance(dataset, ConcatDataset):
        return _innermost(dataset.datasets[0])
    return dataset


def find_classes(dataset: Any) -> list | None:
    """The dataset's ``classes`` list (torchvision's convention), routing through wrappers."""
    classes = getattr(_innermost(dataset), "classes", None)
    return list(classes) if classes is not None else None


def find_class_to_idx(dataset: Any, labels: Tensor) -> dict:
    """``{class name: label}`` as torchvision's ``class_to_idx``, routing through wrappers.

    Without one, ``classes[i]`` names label ``i`` (torchvision's convention); without names,
    every label (of ``labels``, (N,) int64) stands for itself.
    """
    mapping = getattr(_innermost(dataset), "class_to_idx", None)
    if mapping:
        return dict(mapping)
    names = find_classes(dataset)
    if names is not None:
        return {name: i for i, name in enumerate(names)}
    return {label: label for label in torch.unique(labels).tolist()}


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


def item_transform(owner: Any) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    """What ``owner.__getitem__`` applies to a raw (image, target), as one callable.

    Torchvision datasets apply either ``transforms`` (a joint transform of image and target,
    as in VOC or COCO) or ``transform`` and ``target_transform`` (as in MNIST or
    ImageFolder, where ``transforms`` is only a ``StandardTransform`` of those two).
    ``None`` when there is nothing to apply.
    """
    joint = getattr(owner, "transforms", None)
    if joint is not None and type(joint).__name__ != "StandardTransform":
        return joint
    transform = getattr(owner, "transform", None)
    target_transform = getattr(owner, "target_transform", None)
    if transform is None and target_transform is None:
        return None
    return PairTransform(transform, target_transform)


class PairTransform:
    """``(transform(image), target_transform(target))``, each when set (picklable)."""

    def __init__(self, transform: Callable | None, target_transform: Callable | None) -> None:
        self.transform, self.target_transform = transform, target_transform

    def __call__(self, image: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class DatasetImages(NamedTuple):
    """Every raw image of a dataset, read once.

    Attributes:
        images: (N, C, H, W) tensor in the items' own dtype.
        labels: (N,) int64.
        image_format: How the raw images look (PIL, numpy or tensor; dtype; value range).
        target_format: How the raw targets look.
    """

    images: Tensor
    labels: Tensor
    image_format: ImageFormat
    target_format: TargetFormat


def read_dataset(
    dataset: Any,
    labels: Any = None,
    fit_transform: Callable | None = None,
    progress: bool = False,
) -> DatasetImages:
    """Read every item of a map-style dataset of (image, target) items, once, in order.

    While reading, the transforms of the wrapped datasets are set aside (:func:`raw_items`),
    so random augmentation stays out; ``fit_transform`` is applied to each raw image
    instead (a deterministic ``Resize`` for images of different sizes, for example).
    Labels come from ``labels``, the dataset's metadata (:func:`find_labels`), or the
    targets read in the same pass.

    Args:
        dataset: A non-empty map-style dataset.
        labels: (N,) class of every item, or ``None``.
        fit_transform: Applied to each raw image before it is read, or ``None``.
        progress: Show a tqdm bar.

    Returns:
        :class:`DatasetImages`.

    Raises:
        ValueError: An empty dataset, images of different shapes or dtypes (both indices
            named), NaN or infinite pixels, or labels of the wrong length.
        TypeError: Items that are not (image, target), or targets that are not classes.
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("`dataset` should hold at least one item, but got len(dataset)=0.")
    with raw_items(dataset):
        found = find_labels(dataset) if labels is None else as_labels(labels, "labels", n)
        targets: list | None = [] if found is None else None
        for i in tqdm(range(n), desc="reading dataset", disable=not progress):
            image, target = _unpack(dataset[i], i)
            if fit_transform is not None:
                image = fit_transform(image)
            tensor = image_to_tensor(image)
            if i == 0:
                first_image, first_target = image, target
                images = torch.empty((n, *tensor.shape), dtype=tensor.dtype)
            elif tensor.shape != images.shape[1:] or tensor.dtype != images.dtype:
                raise ValueError(
                    "dataset images should share one shape and dtype, but item 0 is "
                    f"{tuple(images.shape[1:])} {images.dtype} and item {i} is "
                    f"{tuple(tensor.shape)} {tensor.dtype}. For images of different sizes "
                    "pass fit_transform=torchvision.transforms.Resize((H, W)): it is applied "
                    "to the raw images while fitting, and synthetic images are made at that "
                    "size."
                )
            images[i] = tensor
            if targets is not None:
                targets.append(target)
    found = found if targets is None else as_labels(targets, "dataset targets", n)
    if len(found) != n:
        raise ValueError(
            f"`labels` should have one label per item, but got {len(found)} for {n} items."
        )
    check_pixels(images, "dataset images")
    return DatasetImages(
        images, found, ImageFormat.of_items(first_image, images), TargetFormat.of(first_target)
    )


def _unpack(item: Any, index: int) -> tuple[Any, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise TypeError(
            f"dataset items should be (image, target) pairs, but item {index} is "
            f"{type(item).__name__}."
        )
    return item[0], item[1]
