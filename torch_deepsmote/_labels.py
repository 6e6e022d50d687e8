"""The library's one label rule, and the form of a dataset's own targets.

- ``as_labels``: class labels of any form (ints, bools, whole floats; numpy, torch, lists)
  -> a 1-D int64 tensor, used wherever labels enter the library.
- ``TargetFormat``: the form of the items' own targets (ints, strings, tensors), so that
  synthetic items carry a target of the same form.
- ``TargetReader``: the items' targets read once, matched to the labels the model was fitted
  on (one-to-one, or refused naming the item).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["TargetFormat", "TargetReader", "as_labels", "scalar"]


def as_labels(labels: Any, name: str = "y", n: int | None = None) -> Tensor:
    """Class labels of any form -> a 1-D int64 CPU tensor; the library's one label rule.

    Accepted: integers and bools (False -> 0, True -> 1), and floats with whole values,
    as a tensor, a numpy array or a sequence of scalars (Python, numpy or one-element
    tensors). Refused: strings, objects and fractional floats.

    Args:
        labels: The labels.
        name: The argument's name, for error messages.
        n: The number of images they label; ``None`` skips the length check.

    Raises:
        TypeError: Labels that are not whole numbers.
        ValueError: Not 1-D, or not ``n`` of them.

    Examples:
        >>> as_labels([True, False, True]).tolist(), as_labels(np.array([2.0, 7.0])).tolist()
        ([1, 0, 1], [2, 7])
    """
    if isinstance(labels, Tensor):
        tensor = labels.detach().cpu()
    else:
        if isinstance(labels, Sequence) and not isinstance(labels, (str, bytes)):
            labels = [scalar(value) for value in labels]
        array = np.asarray(labels)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"`{name}` should hold integer class labels, but got dtype={array.dtype}. "
                "Encode string labels first, e.g. with sklearn's LabelEncoder."
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex() or (
        tensor.is_floating_point()
        and not bool((torch.isfinite(tensor) & (tensor == tensor.round())).all())
    ):
        raise TypeError(
            f"`{name}` should hold integer class labels, but got dtype={tensor.dtype} with "
            "values that are not whole numbers."
        )
    tensor = tensor.to(torch.int64)
    if tensor.ndim != 1:
        raise ValueError(f"`{name}` should be 1-D, but got shape {tuple(tensor.shape)}.")
    if n is not None and len(tensor) != n:
        raise ValueError(
            f"`{name}` should have one label per image, but got {len(tensor)} labels for "
            f"{n} images."
        )
    return tensor


def scalar(value: Any) -> Any:
    """A one-element tensor or array (a dataset's target, a label row) -> its value; anything
    else as it is."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.item()
    return value


@dataclass(frozen=True)
class TargetFormat:
    """The targets a dataset's items carry, per class, so that synthetic items carry the same.

    A synthetic item of class ``c`` carries the very target the real items of class ``c``
    carry, in their form: a class name (``str``), an int, a bool, a tensor or a numpy value
    of the same dtype. ``TargetReader`` learns it while the items are read.

    Attributes:
        kind: ``"int"`` (a Python int), ``"bool"``, ``"str"`` (class names), ``"tensor"`` or
            ``"numpy"``: the first target's form.
        dtype: The dtype's name of tensor or numpy targets, else ``None``.
        targets: ``((label, target), ...)``: the target the real items of each label carry
            (empty: targets are made from the labels in the form of ``kind``).
    """

    kind: str
    dtype: str | None = None
    targets: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def of(cls, target: Any, targets: tuple = ()) -> TargetFormat:
        """The format of targets like ``target``; ``targets`` as in the class docstring."""
        if isinstance(target, Tensor):
            return cls("tensor", str(target.dtype).removeprefix("torch."), targets)
        if isinstance(target, (np.ndarray, np.generic)) and not _is_name(target):
            return cls("numpy", str(np.asarray(target).dtype), targets)
        if _is_name(target):
            return cls("str", None, targets)
        return cls("bool" if isinstance(target, bool) else "int", None, targets)

    def make(self, labels: Tensor) -> list:
        """(m,) int64 labels -> m targets of this form (each class's own target when known)."""
        if self.targets:
            by_label = dict(self.targets)
            return [_copy(by_label[label]) for label in labels.tolist()]
        if self.kind == "tensor":
            return list(labels.to(getattr(torch, self.dtype)).unbind(0))
        if self.kind == "numpy":
            return list(labels.numpy().astype(self.dtype))
        if self.kind == "bool":
            return [bool(label) for label in labels.tolist()]
        return labels.tolist()

    def names(self) -> dict | None:
        """``{label: class name}`` of string targets, in label order; ``None`` otherwise."""
        if self.kind != "str":
            return None
        return {label: str(name) for label, name in sorted(self.targets, key=lambda t: t[0])}


def _is_name(target: Any) -> bool:
    return isinstance(target, (str, np.str_))


def _copy(target: Any) -> Any:
    # A tensor or array target is the user's object: each item gets its own copy.
    if isinstance(target, Tensor):
        return target.clone()
    if isinstance(target, np.ndarray):
        return target.copy()
    return target


def _show(target: Any) -> str:
    return repr(target.item() if isinstance(target, np.generic) else target)


def _target_key(target: Any) -> Any:
    """A hashable stand-in for a target's value: equal values, equal keys (``tensor(2)``,
    ``np.int64(2)`` and ``2`` name one class)."""
    if isinstance(target, Tensor):
        target = target.detach().cpu().numpy()
    if isinstance(target, np.ndarray):
        if target.size == 1:
            return target.item()
        return ("array", target.shape, target.dtype.str, target.tobytes())
    if isinstance(target, np.generic):
        return target.item()
    try:
        hash(target)
    except TypeError:
        return ("repr", repr(target))
    return target


class TargetReader:
    """The class label of each item of a dataset, read with its target: one rule.

    Labels come from ``given`` (``labels=`` or the dataset's label metadata) or from the
    targets themselves: integers (bools, whole floats, one-element tensors and arrays) are
    their own labels, class names (strings) are numbered in sorted order, as scikit-learn's
    ``LabelEncoder`` numbers them. Given labels must map one-to-one onto the targets: each
    label one target, each target one label, for synthetic items carry the target of their
    class's real items (``TargetFormat``).

    Args:
        given: (N,) int64 labels of every item, or ``None`` (read from the targets).
        source: What gave ``given``, for the error message (e.g. ``"`labels`"``).

    Examples:
        >>> reader = TargetReader(None)
        >>> for i, name in enumerate(["cat", "dog", "cat"]):
        ...     reader.keep(i, name, reader.label(i, name))
        >>> labels, fmt = reader.result()
        >>> labels.tolist(), fmt.make(torch.tensor([1, 0]))
        ([0, 1, 0], ['dog', 'cat'])
    """

    def __init__(self, given: Tensor | None, source: str = "`labels`") -> None:
        self.given, self.source = given, source
        self.names: bool | None = None  # whether the targets are class names
        self.first: Any = None
        self.rows: list = []  # the kept items' labels, or their names (encoded at the end)
        self.of_label: dict[Any, tuple[int, Any, Any]] = {}  # label -> (item, key, target)
        self.of_key: dict[Any, tuple[int, Any]] = {}  # target key -> (item, label)
        self.of_name: dict[str, Any] = {}  # class name -> its first target

    def label(self, i: int, target: Any) -> int | None:
        """The label of item ``i`` (``None`` for a class name: numbered at the end).

        Raises:
            TypeError: A target that is not a class, or of another kind than the first's.
        """
        name = _is_name(target)
        if self.names is None:
            self.names = name
        elif name != self.names:
            raise TypeError(
                f"dataset item {i} has target {target!r} of type {type(target).__name__}, "
                f"but the first item's target is {'a class name' if self.names else 'a number'}: "
                "targets should be all class names (strings) or all integer labels."
            )
        if self.given is not None:
            return int(self.given[i])
        if name:
            return None
        return int(as_labels([target], f"target of dataset item {i}", 1)[0])

    def keep(self, i: int, target: Any, label: int | None) -> None:
        """Record kept item ``i``; refuse a label that disagrees with the targets so far.

        Raises:
            ValueError: ``label`` names another target than an earlier item of that label, or
                ``target`` came with another label before.
        """
        key = _target_key(target)
        if self.first is None:
            self.first = target
        if label is None:  # a class name: numbered in result()
            self.rows.append(key)
            self.of_name.setdefault(key, target)
            return
        seen = self.of_label.setdefault(label, (i, key, target))
        other = self.of_key.setdefault(key, (i, label))
        if seen[1] != key or other[1] != label:
            j, theirs = (seen[0], seen[2]) if seen[1] != key else (other[0], target)
            their_label = label if seen[1] != key else other[1]
            raise ValueError(
                f"{self.source} should map one-to-one onto the items' own targets, but item "
                f"{i} has target {_show(target)} with label {label} while item {j} has target "
                f"{_show(theirs)} with label {their_label}. Synthetic items carry the target their "
                "class's real items carry, so each label must name one target. To serve other "
                "labels, relabel both kinds of item with the wrapped dataset's "
                "target_transform, or pass no labels= (the targets are read; class names are "
                "numbered in sorted order)."
            )
        self.rows.append(label)

    def result(self) -> tuple[Tensor, TargetFormat]:
        """(M,) int64 labels of the kept items, and the targets' ``TargetFormat``."""
        if self.given is None and self.names:
            classes = sorted(set(self.rows))
            number = {name: k for k, name in enumerate(classes)}
            labels = torch.tensor([number[name] for name in self.rows], dtype=torch.int64)
            targets = tuple((number[name], self.of_name[name]) for name in classes)
            return labels, TargetFormat.of(self.first, targets)
        labels = torch.tensor(self.rows, dtype=torch.int64)
        targets = tuple((label, target) for label, (_, _, target) in self.of_label.items())
        return labels, TargetFormat.of(self.first, targets)
