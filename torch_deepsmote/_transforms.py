"""A user's dataset transforms: set aside while fitting, applied to synthetic items.

Three conventions are followed, one per kind of dataset:

- torchvision (and any dataset with such attributes): ``transform`` of the image,
  ``target_transform`` of the target, or a joint ``transforms`` of both. While fitting they
  are set to ``None``; a synthetic item gets them as ``__getitem__`` would apply them.
- MONAI (``monai.data.Dataset`` and its subclasses): one ``Compose`` of dict transforms of
  the whole item. Its deterministic head (loading, channel order, intensity scaling: the
  part MONAI's ``CacheDataset`` caches) is applied while fitting, its random tail is set
  aside; synthetic items are made in the head's output form and get the tail
  (:mod:`torch_deepsmote.integrations.monai`).
- Hugging Face ``datasets.Dataset``: its format (``set_transform`` / ``with_transform``,
  ``set_format("torch")``, ...) applies to whole rows. While fitting it is reset to plain
  Python rows; synthetic rows are formatted by the dataset's own formatter
  (:mod:`torch_deepsmote.integrations.hf`).

NOTE: setting transforms aside mutates the user's dataset for the duration of the read; it
is not safe while another thread reads the same dataset object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Callable

from torch.utils.data import ConcatDataset, Subset

from ._items import ItemLayout

__all__ = ["PairTransform", "item_transform", "raw_items", "transform_owners"]

_TRANSFORM_ATTRS = ("transform", "target_transform", "transforms")
ItemsTransform = Callable[[list], list]


def _integration(owner: Any) -> Any:
    """The integration module that handles ``owner``'s transforms, or ``None``."""
    from .integrations import hf, monai  # light: they import their library only when used

    for module in (hf, monai):
        if module.handles(owner):
            return module
    return None


def transform_owners(dataset: Any) -> list[Any]:
    """The innermost datasets that hold transforms, in index order."""
    if isinstance(dataset, Subset):
        return transform_owners(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [owner for part in dataset.datasets for owner in transform_owners(part)]
    if hasattr(dataset, "transform") or _integration(dataset) is not None:
        return [dataset]
    return []


@contextlib.contextmanager
def raw_items(dataset: Any) -> Iterator[list[Any]]:
    """Set the dataset's transforms aside while reading, and restore them afterwards.

    Torchvision datasets apply ``transform`` and ``target_transform`` in ``__getitem__``
    (and ``transforms``, their combination, in some). Setting them to ``None`` gives the raw
    items (PIL images, raw targets) free of random augmentation, as torchvision's v2
    dataset wrapper does; MONAI and Hugging Face datasets are handled by their own rule
    (module docstring). Yields the owners (see :func:`transform_owners`).
    """
    owners = transform_owners(dataset)
    restores: list[Callable[[], None]] = []
    try:
        for owner in owners:
            module = _integration(owner)
            restores.append(_set_aside(owner) if module is None else module.set_aside(owner))
        yield owners
    finally:
        for restore in reversed(restores):
            restore()


def _set_aside(owner: Any) -> Callable[[], None]:
    saved = {name: getattr(owner, name) for name in _TRANSFORM_ATTRS if hasattr(owner, name)}
    for name in saved:
        setattr(owner, name, None)

    def restore() -> None:
        for name, value in saved.items():
            setattr(owner, name, value)

    return restore


def item_transform(owner: Any, layout: ItemLayout) -> ItemsTransform | None:
    """What ``owner.__getitem__`` applies to raw items of ``layout``, for a list of them.

    Torchvision datasets apply either ``transforms`` (a joint transform of image and target,
    as in VOC or COCO) or ``transform`` and ``target_transform`` (as in MNIST or
    ImageFolder, where ``transforms`` is only a ``StandardTransform`` of those two).
    ``None`` when there is nothing to apply.
    """
    module = _integration(owner)
    if module is not None:
        return module.item_transform(owner, layout)
    joint = getattr(owner, "transforms", None)
    if joint is None or type(joint).__name__ == "StandardTransform":
        transform = getattr(owner, "transform", None)
        target_transform = getattr(owner, "target_transform", None)
        if transform is None and target_transform is None:
            return None
        joint = PairTransform(transform, target_transform)
    return PairItems(joint, layout, "the dataset's transform")


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


class PairItems:
    """Applies an (image, target) transform to the image and target of every item."""

    def __init__(self, pair: Callable[[Any, Any], tuple], layout: ItemLayout, name: str) -> None:
        self.pair, self.layout, self.name = pair, layout, name

    def __call__(self, items: list) -> list:
        return [self.layout.apply(item, self.pair, self.name) for item in items]
