"""Where a dataset's items hold their image and label: pairs, longer tuples and dicts.

torchvision datasets return ``(image, target)``; others return longer tuples
(``(image, target, path)``) or dicts: Hugging Face ``datasets`` rows
(``{"image": PIL, "label": int, ...}``) and MONAI's dict items. ``find_layout`` reads
that form off one raw item, and the ``ItemLayout`` it returns is the one owner of it:
it splits every raw item into (image, target) while fitting, and builds synthetic raw items
of the same form, so that they pass through the dataset's transforms and collate like the
real ones.

The other fields of an item (a file name, an id, a mask) have no synthetic counterpart.
With ``extra_keys='fill'`` (the default) a synthetic item carries each of them with a
marker of the real value's type: -1 for an integer (0 if unsigned), NaN for a float,
``False`` for a bool, ``""`` for a string, ``b""`` for bytes, and a tensor or array of the
real one's shape and dtype filled with that marker; ``None`` for any other value. With
``extra_keys='drop'`` they are left out of synthetic items and removed from real ones, so
that both have only the image and the label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["EXTRA_KEYS", "IMAGE_KEYS", "LABEL_KEYS", "ItemLayout", "find_layout"]

IMAGE_KEYS = ("image", "img", "pixel_values")
LABEL_KEYS = ("label", "labels", "target")
EXTRA_KEYS = ("fill", "drop")


@dataclass(frozen=True)
class _Fill:
    """The marker that stands for a real item's extra value in a synthetic item."""

    kind: str  # "python", "tensor", "numpy" or "none"
    value: Any = None  # the Python marker ("python"), else the element marker
    dtype: Any = None
    shape: tuple = ()

    @classmethod
    def of(cls, value: Any) -> _Fill:
        if isinstance(value, Tensor):
            return cls("tensor", _marker(value.dtype), value.dtype, tuple(value.shape))
        if isinstance(value, np.ndarray):
            return cls("numpy", _marker(value.dtype), value.dtype, value.shape)
        if isinstance(value, (bool, np.bool_)):
            return cls("python", type(value)(False))
        if isinstance(value, (int, np.integer)):
            unsigned = isinstance(value, np.unsignedinteger)
            return cls("python", type(value)(0 if unsigned else -1))
        if isinstance(value, (float, np.floating)):
            return cls("python", type(value)(math.nan))
        if isinstance(value, (str, bytes)):
            return cls("python", type(value)())
        return cls("none")

    def make(self) -> Any:
        if self.kind == "tensor":
            return torch.full(self.shape, self.value, dtype=self.dtype)
        if self.kind == "numpy":
            return np.full(self.shape, self.value, dtype=self.dtype)
        return self.value


def _marker(dtype: Any) -> Any:
    """-1 for signed integers, 0 for unsigned ones, NaN for floats, False for bools."""
    if isinstance(dtype, torch.dtype):
        if dtype == torch.bool:
            return False
        if dtype.is_floating_point or dtype.is_complex:
            return math.nan
        return 0 if dtype == torch.uint8 or str(dtype).startswith("torch.uint") else -1
    kind = np.dtype(dtype).kind
    return {"b": False, "u": 0, "f": math.nan, "c": math.nan}.get(kind, -1)


@dataclass(frozen=True)
class ItemLayout:
    """How a dataset's items hold their image and label.

    Attributes:
        kind: ``"pair"`` (``(image, target)``), ``"tuple"`` (a longer tuple or list) or
            ``"dict"`` (any mapping).
        keys: Every key (dict) or position (tuple) of an item, in the item's order.
        image_key: The key or position of the image.
        label_key: The key or position of the target.
        extra_keys: ``"fill"`` or ``"drop"`` (see the module docstring).
        fills: ``(key, marker)`` of every other field (``"fill"`` only).
        sequence: ``"tuple"`` or ``"list"``: the container of tuple items.
    """

    kind: str
    keys: tuple
    image_key: Any
    label_key: Any
    extra_keys: str = "fill"
    fills: tuple = ()
    sequence: str = "tuple"

    @property
    def extras(self) -> tuple:
        """The keys (or positions) other than the image's and the label's."""
        return tuple(k for k in self.keys if k not in (self.image_key, self.label_key))

    def describe(self) -> str:
        if self.kind == "dict":
            return f"a dict with keys {list(self.keys)}"
        return f"a {self.sequence} of length {len(self.keys)}"

    def same_form(self, other: ItemLayout) -> bool:
        """Whether ``other`` (another item's layout) has the same keys in the same places."""
        return (self.kind, self.keys, self.image_key, self.label_key) == (
            other.kind,
            other.keys,
            other.image_key,
            other.label_key,
        )

    # ------------------------------------------------------------------ raw items
    def split(self, item: Any) -> tuple[Any, Any]:
        """A raw item of this layout -> (image, target)."""
        return item[self.image_key], item[self.label_key]

    def build(self, image: Any, target: Any) -> Any:
        """A synthetic raw item of this layout holding ``image`` and ``target``."""
        if self.kind == "pair":
            return image, target
        values = {self.image_key: image, self.label_key: target}
        for key, fill in self.fills:
            values[key] = fill.make()
        if self.kind == "dict":
            return {key: values[key] for key in self.keys if key in values}
        ordered = [values[key] for key in self.keys if key in values]
        return ordered if self.sequence == "list" else tuple(ordered)

    # ------------------------------------------------------------------ served items
    def strip(self, item: Any) -> Any:
        """A real item without the extra fields (``extra_keys='drop'``; else unchanged)."""
        if self.extra_keys != "drop" or self.kind == "pair":
            return item
        extras = set(self.extras)
        if self.kind == "dict":
            return {k: v for k, v in item.items() if k not in extras}
        kept = [v for i, v in enumerate(item) if i not in extras]
        return kept if self.sequence == "list" else tuple(kept)

    def apply(self, item: Any, fn: Callable[[Any, Any], tuple[Any, Any]], name: str) -> Any:
        """``item`` with its image and target replaced by ``fn(image, target)``.

        The positions are this layout's, found on the raw items; an item whose own
        transforms moved them (a Hugging Face transform that returns ``pixel_values``
        instead of ``image``) is named in the error, with the fix.
        """
        if self.kind == "dict":
            if not isinstance(item, Mapping) or not {self.image_key, self.label_key} <= set(item):
                found = list(item) if isinstance(item, Mapping) else type(item).__name__
                raise TypeError(
                    f"`{name}` applies to the image under {self.image_key!r} and the target "
                    f"under {self.label_key!r}, but the dataset's items (after its own "
                    f"transform) are {found}. Apply it in the dataset's own transform instead."
                )
            image, target = fn(item[self.image_key], item[self.label_key])
            out = dict(item)
            out[self.image_key], out[self.label_key] = image, target
            return out
        ik, lk = self.image_key, self.label_key
        if self.extra_keys == "drop":  # positions among the kept fields
            kept = [key for key in self.keys if key in (ik, lk)]
            ik, lk = kept.index(ik), kept.index(lk)
        values = list(item)
        values[ik], values[lk] = fn(values[ik], values[lk])
        return tuple(values) if self.kind == "pair" or self.sequence == "tuple" else values


def find_layout(
    item: Any,
    index: int,
    image_key: Any = None,
    label_key: Any = None,
    extra_keys: str = "fill",
) -> ItemLayout:
    """The layout of raw dataset item ``index``.

    Dict items: the image under ``image_key``, else the one key of ``IMAGE_KEYS`` it
    has; the target under ``label_key``, else the one of ``LABEL_KEYS``. Tuple items:
    the image at position ``image_key`` (default 0), the target at ``label_key``
    (default 1).

    Raises:
        TypeError: An item that is neither a tuple nor a mapping, a dict item without a
            known image or label key, or keys of the wrong type for the item.
        ValueError: A key the item lacks, several candidate keys, or the same key twice.
    """
    if isinstance(item, Mapping):
        keys = tuple(item)
        image = _dict_key(item, index, "image_key", image_key, IMAGE_KEYS, "the image")
        label = _dict_key(item, index, "label_key", label_key, LABEL_KEYS, "the label")
        kind, sequence = "dict", "tuple"
    elif isinstance(item, (tuple, list)) and len(item) >= 2:
        keys = tuple(range(len(item)))
        image = _position(item, index, "image_key", 0 if image_key is None else image_key)
        label = _position(item, index, "label_key", 1 if label_key is None else label_key)
        pair = len(item) == 2 and (image, label) == (0, 1)
        kind, sequence = ("pair" if pair else "tuple"), type(item).__name__
    else:
        shape = f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""
        raise TypeError(
            "dataset items should be (image, target) pairs, longer tuples or dicts, but item "
            f"{index} is {type(item).__name__}{shape}. Wrap the dataset so that its items "
            "hold a target too (labels= gives the labels, not the items' form)."
        )
    if image == label:
        raise ValueError(
            f"`image_key` and `label_key` should differ, but both are {image!r} for dataset "
            f"item {index}."
        )
    if sequence == "list" and kind == "pair":
        sequence = "tuple"  # (image, target) pairs come back as tuples, as before
    layout = ItemLayout(kind, keys, image, label, extra_keys, sequence=sequence)
    if extra_keys == "fill" and kind != "pair":
        fills = tuple((key, _Fill.of(item[key])) for key in layout.extras)
        layout = ItemLayout(kind, keys, image, label, extra_keys, fills, sequence)
    return layout


def _dict_key(item: Mapping, index: int, name: str, given: Any, known: tuple, what: str) -> Any:
    keys = list(item)
    if given is not None:
        if given not in item:
            raise ValueError(
                f"`{name}` should name a key of the dataset's items, but got {name}={given!r} "
                f"and item {index} has keys {keys}."
            )
        return given
    found = [key for key in known if key in item]
    if len(found) == 1:
        return found[0]
    if not found:
        raise TypeError(
            f"dataset item {index} is a dict with keys {keys}, none of which holds {what} "
            f"by a known name ({', '.join(map(repr, known))}). Pass {name}= naming the key "
            f"that holds {what}."
        )
    raise ValueError(
        f"dataset item {index} is a dict with several keys that may hold {what} ({found}). "
        f"Pass {name}= naming the one that does."
    )


def _position(item: Any, index: int, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"`{name}` should be a position (an int) for tuple items, but got {name}={value!r}; "
            f"dataset item {index} is a {type(item).__name__} of length {len(item)}."
        )
    if not -len(item) <= value < len(item):
        raise ValueError(
            f"`{name}` should be a position in dataset item {index}, a {type(item).__name__} "
            f"of length {len(item)}, but got {name}={value}."
        )
    return value % len(item)
