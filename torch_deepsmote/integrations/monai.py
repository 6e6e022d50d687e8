"""MONAI: a ``monai.data.Dataset`` (or ``CacheDataset``, ...) of dict items as the wrapped
dataset.

A MONAI dataset holds one ``Compose`` of dict transforms applied to the whole item, often
starting with the loading itself (``LoadImaged``). It is split the way MONAI's own
``CacheDataset`` splits it: the head, up to the first random transform (or the first that
is not a MONAI ``Transform``), is deterministic and is applied while fitting; the random
tail is set aside then. Synthetic items are made in the head's output form (a (C, H, W)
tensor of its dtype and range, wrapped as a ``MetaTensor`` when MONAI tracks meta data)
and get the tail, as real ones do.

This module imports ``monai`` only where a dataset of it is in hand
(``pip install "torch-deepsmote[monai]"``).
"""

from __future__ import annotations

import copy
import sys
from typing import Any, Callable

from .._items import ItemLayout
from ..adapters import Kind, register_kind

__all__ = ["MonaiItems", "MonaiKind", "handles", "split_transform"]


def handles(dataset: Any) -> bool:
    """Whether ``dataset`` is a ``monai.data.Dataset`` (without importing ``monai``)."""
    module = sys.modules.get("monai.data.dataset")
    return module is not None and isinstance(dataset, module.Dataset)


def split_transform(transform: Any) -> tuple[Any, Any]:
    """``(head, tail)`` of a MONAI dataset's transform, each a ``Compose`` (the tail
    ``None`` when the whole transform is deterministic)."""
    from monai.transforms import Compose, Transform

    try:
        from monai.transforms.transform import RandomizableTrait as Random
    except ImportError:  # pragma: no cover - MONAI < 1.0
        from monai.transforms import Randomizable as Random

    if transform is None:
        return Compose([]), None
    compose = transform if isinstance(transform, Compose) else Compose(transform)
    parts = list(compose.transforms)
    # MONAI's CacheDataset rule: the first random transform, or the first it cannot judge.
    first = next(
        (i for i, t in enumerate(parts) if isinstance(t, Random) or not isinstance(t, Transform)),
        len(parts),
    )
    head, tail = copy.copy(compose), copy.copy(compose)
    head.transforms, tail.transforms = tuple(parts[:first]), tuple(parts[first:])
    return head, (tail if first < len(parts) else None)


class MonaiItems:
    """Synthetic raw items -> the dataset's items: the image as a ``MetaTensor`` (when MONAI
    tracks meta data, as its transforms would return it), then the transform's random tail.

    Args:
        tail: The ``Compose`` applied after the deterministic head, or ``None``.
        image_key: The key of the image.
    """

    def __init__(self, tail: Any, image_key: Any) -> None:
        self.tail, self.image_key = tail, image_key

    def __call__(self, items: list) -> list:
        from monai.data import MetaTensor, get_track_meta
        from monai.transforms import apply_transform

        out = []
        for item in items:
            image = item[self.image_key]
            if get_track_meta() and not isinstance(image, MetaTensor):
                item = {**item, self.image_key: MetaTensor(image)}
            out.append(item if self.tail is None else apply_transform(self.tail, item))
        return out


@register_kind
class MonaiKind(Kind):
    """A ``monai.data.Dataset``: its transform's deterministic head applied while fitting,
    its random tail set aside then and applied to synthetic items."""

    handles = staticmethod(handles)

    def has_transforms(self) -> bool:
        return True

    def set_aside(self) -> Callable[[], None]:
        """Keep only the transform's deterministic head; returns the function that
        restores it.

        Note:
            The head replaces the transform rather than ``None``: ``monai.data.Dataset``
            calls its transform unconditionally, and ``CacheDataset`` serves its cached head
            output and then runs the transform from its first random part, which the head
            lacks.
        """
        dataset = self.dataset
        saved = dataset.transform
        dataset.transform = split_transform(saved)[0]

        def restore() -> None:
            dataset.transform = saved

        return restore

    def item_transform(self, layout: ItemLayout) -> MonaiItems:
        return MonaiItems(split_transform(self.dataset.transform)[1], layout.image_key)
