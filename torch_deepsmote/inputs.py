"""``X`` and ``y`` as scikit-learn callers give them, and ``y_res`` in ``y``'s form.

An imbalanced-learn pipeline passes images as 2-D rows ``(N, C*H*W)``; ``read_rows``
views them as the ``(N, C, H, W)`` images of a declared ``image_shape``, and the format it
returns gives new images back as rows. Class labels come as scikit-learn accepts them
(``type_of_target``): a 1-D array of integers or of strings, a column ``(N, 1)`` (used as
1-D with a warning, as scikit-learn does) or one-hot rows ``(N, n_classes)`` (imbalanced-
learn's one-vs-all form). ``read_targets`` turns them into the library's int64 labels
(strings numbered in sorted order, as scikit-learn's ``LabelEncoder`` numbers them) and
``Targets`` gives new labels back in the same form.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._format import as_images
from ._labels import as_labels, scalar

__all__ = ["Targets", "check_dense", "check_image_array", "join_images", "read_rows"]
__all__ += ["read_targets"]


# ---------------------------------------------------------------------- images
def read_rows(
    X: Any,
    image_shape: tuple[int, int, int],
    name: str = "X",
    value_range: tuple[float, float] | None = None,
    *,
    judge_range: bool = False,
) -> tuple:
    """``(images, format)`` of 2-D rows that each hold one flattened ``image_shape`` image.

    Args:
        X: (N, C*H*W) numpy array, tensor or list of rows, each row an image flattened
            in (C, H, W) order (``images.reshape(N, -1)``).
        image_shape: (C, H, W).
        name: The argument's name, for error messages.
        value_range, judge_range: As in ``torch_deepsmote._format.as_images``.

    Returns:
        The (N, C, H, W) CPU tensor (a view of ``X`` where it can be) and its
        ``ImageFormat``, whose layout ``"flat"`` gives new images back as rows.

    Raises:
        ValueError: ``X`` is not 2-D, or its rows are not ``C*H*W`` long.
    """
    check_dense(X, name)
    if not isinstance(X, (np.ndarray, Tensor)):  # a list of rows, a DataFrame
        X = np.asarray(X)
    size = math.prod(image_shape)
    shape = tuple(getattr(X, "shape", ()))
    if len(shape) != 2 or shape[1] != size:
        raise ValueError(
            f"`{name}` should be 2-D rows of {size} values (one flattened image of "
            f"image_shape={tuple(image_shape)} per row), but got shape {shape}. Pass "
            "image_shape=None for (N, C, H, W) or (N, H, W) images."
        )
    images, found = as_images(
        X.reshape(shape[0], *image_shape), name, value_range, judge_range=judge_range
    )
    return images, replace(found, layout="flat")


def join_images(X: Any, images: Any) -> Any:
    """``X`` followed by new ``images`` of its form (imbalanced-learn's ``X_res``): a
    tensor, an array, or a list whose new items are like its own (arrays, tensors, rows).
    """
    if isinstance(X, Tensor):
        return torch.cat([X.detach().cpu(), images])
    if not isinstance(X, list):
        return np.concatenate([np.asarray(X), images])
    first = X[0] if X else None
    if isinstance(first, Tensor):
        return list(X) + list(torch.as_tensor(images).unbind(0))
    if isinstance(first, np.ndarray):
        return list(X) + list(images)
    return list(X) + np.asarray(images).tolist()


def check_dense(X: Any, name: str = "X") -> None:
    """Refuse a scipy sparse matrix (or array) with the fix: images are dense."""
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"`{name}` should be a dense array of images, but got a {type(X).__name__}: "
            f"sparse input is not supported. Pass {name}.toarray()."
        )


def check_image_array(X: Any, name: str = "X") -> None:
    """Refuse sparse ``X``, and 2-D ``X`` without ``image_shape`` with the fix (the form a
    pipeline passes)."""
    check_dense(X, name)
    if getattr(X, "ndim", None) == 2:
        raise ValueError(
            f"`{name}` should have shape (N, C, H, W) or (N, H, W), but got shape "
            f"{tuple(X.shape)}. For rows of flattened images (N, C*H*W), as a scikit-learn "
            "pipeline passes them, pass image_shape=(C, H, W)."
        )


# ---------------------------------------------------------------------- labels
@dataclass(frozen=True)
class Targets:
    """The form of a ``y``: what its labels are and how they are laid out.

    Attributes:
        classes: The class labels by the library's label (their sorted order) when they
            are strings, else ``None`` (integer labels are their own).
        layout: ``"1d"``, ``"column"`` (N, 1) or ``"onehot"`` (N, n_classes).
        n_columns: The number of one-hot columns (``"onehot"`` only).
    """

    classes: tuple | None = None
    layout: str = "1d"
    n_columns: int = 0

    def like(self, y: Any, labels: Tensor) -> Any:
        """(m,) int64 labels as new entries of ``y``: a tensor, an array of ``y``'s dtype
        (of any other array-like too) or a list, one-hot rows for one-hot ``y`` (a column
        ``y`` gives 1-D labels, as scikit-learn's ravel does)."""
        if self.layout == "onehot":
            values = torch.nn.functional.one_hot(labels, self.n_columns)
        elif self.classes is not None:
            values = np.asarray(self.classes, dtype=object)[labels.numpy()]
        else:
            values = labels
        if isinstance(y, Tensor):
            return torch.as_tensor(values).to(y.dtype)
        values = np.asarray(values)
        if isinstance(y, (list, tuple)):
            return values.tolist()
        return values.astype(np.asarray(y).dtype)

    def join(self, y: Any, labels: Tensor) -> Any:
        """``y`` followed by ``labels`` (m,) in its form: imbalanced-learn's ``y_res``."""
        new = self.like(y, labels)
        if isinstance(y, Tensor):
            y = y.detach().cpu()
            return torch.cat([y.reshape(-1) if self.layout == "column" else y, new])
        if isinstance(y, (list, tuple)):
            old = [_scalar(row) for row in y] if self.layout == "column" else list(y)
            return old + new
        y = np.asarray(y)
        return np.concatenate([y.ravel() if self.layout == "column" else y, new])

    def to_label(self, label: Any) -> int:
        """The library's label of a class label the user knows (a string of string
        labels, else an integer).

        Raises:
            ValueError: A string that names no class.
        """
        if self.classes is None:
            return label
        try:
            return self.classes.index(_plain(label))
        except ValueError:
            raise ValueError(
                f"`label` should be one of the classes {list(self.classes)}, but got "
                f"label={label!r}."
            ) from None

    def to_labels(self, mapping: dict) -> dict:
        """``{user's class: value}`` -> ``{library's label: value}``; names of no class
        pass unchanged (the caller's check names them)."""
        if self.classes is None:
            return dict(mapping)
        known = set(self.classes)
        return {
            (self.classes.index(_plain(k)) if _plain(k) in known else k): v
            for k, v in mapping.items()
        }

    def strategy(self, sampling_strategy: Any) -> Any:
        """A ``sampling_strategy`` that names the user's classes, for the library's labels:
        a dict's keys translated, a callable given the user's labels."""
        if self.classes is not None and isinstance(sampling_strategy, dict):
            return self.to_labels(sampling_strategy)
        if self.classes is not None and callable(sampling_strategy):
            names = np.asarray(self.classes)
            return lambda labels: self.to_labels(sampling_strategy(names[np.asarray(labels)]))
        return sampling_strategy

    def from_labels(self, mapping: dict) -> dict:
        """``{library's label: value}`` -> ``{user's class: value}``."""
        if self.classes is None:
            return dict(mapping)
        return {self.classes[k]: v for k, v in mapping.items()}


def read_targets(y: Any, name: str = "y") -> tuple[Tensor, Targets]:
    """A ``y`` of class labels -> (N,) int64 labels and its ``Targets``.

    Args:
        y: (N,) integers (bools, whole floats) or strings; an (N, 1) column; or
            (N, n_classes) one-hot rows. Numpy, torch or a list.
        name: The argument's name, for error messages.

    Raises:
        ValueError: Continuous values ("Unknown label type", as scikit-learn says), rows
            with several classes (multilabel), another number of dimensions.
        TypeError: Labels that are neither numbers nor strings (objects, mixed types).
    """
    if y is None:
        raise ValueError(
            f"`{name}` should hold the class label of every image: over-sampling requires y "
            "to be passed, but the target y is None."
        )
    if isinstance(y, Tensor):
        y = y.detach().cpu()
        array = (y.float() if y.dtype == torch.bfloat16 else y).numpy()
    else:
        array = _as_array(y)
    if array.dtype == object:  # a pandas object column: numbers or strings inside
        values = [_plain(v) for v in array.ravel().tolist()]
        if values and all(isinstance(v, numbers.Real) for v in values):
            array = np.asarray(values).reshape(array.shape)
    if array.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: `{name}` should hold integer or string class "
            f"labels, but got dtype={array.dtype}."
        )
    layout, n_columns = "1d", 0
    if array.ndim == 2 and array.shape[1] == 1:
        _warn_column(name, array.shape)
        array, layout = array[:, 0], "column"
    elif array.ndim == 2 and _is_numeric(array) and np.isin(array, (0, 1)).all():
        if not (array.sum(axis=1) == 1).all():
            raise ValueError(
                f"`{name}` should hold one class per image, but got multilabel rows of "
                f"shape {array.shape} (rows with several or no 1). Multilabel and "
                "multioutput targets are not supported."
            )
        array, layout, n_columns = array.argmax(axis=1), "onehot", array.shape[1]
    elif array.ndim != 1:
        raise ValueError(
            f"`{name}` should be 1-D class labels, a column (N, 1) or one-hot rows, but got "
            f"shape {array.shape}. Multilabel and multioutput targets are not supported."
        )
    if _is_numeric(array):
        _check_discrete(name, array)
        if not array.flags.writeable:  # a read-only memmap: torch warns on a view of it
            array = array.copy()
        return as_labels(array, name), Targets(None, layout, n_columns)
    values = [_plain(v) for v in array.tolist()]
    if not all(isinstance(v, str) for v in values):
        kinds = sorted({type(v).__name__ for v in values})
        raise TypeError(
            f"`{name}` should hold integer or string class labels, but got values of types "
            f"{', '.join(kinds)}."
        )
    classes, labels = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return torch.from_numpy(labels.astype(np.int64)), Targets(tuple(classes.tolist()), layout)


def _as_array(y: Any) -> np.ndarray:
    if isinstance(y, Sequence) and not isinstance(y, (str, bytes)):
        y = [_scalar(v) for v in y]
    array = np.asarray(y)
    if array.dtype.kind in "US":
        return array.astype(object)
    return array


def _scalar(value: Any) -> Any:
    # A column's rows are one-element lists too, beside the tensors and arrays that
    # ``scalar`` takes.
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return scalar(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf"


def _check_discrete(name: str, array: np.ndarray) -> None:
    if array.dtype.kind == "f":
        fractional = ~np.isfinite(array) | (array != np.round(array))
        if fractional.any():
            example = array[fractional][0].item()
            raise ValueError(
                f"Unknown label type: `{name}` should hold class labels (integers or "
                f"strings), but got continuous values such as {example!r}. DeepSMOTE "
                "over-samples classes; a regression target has none."
            )


def _warn_column(name: str, shape: tuple) -> None:
    message = (
        f"A column-vector `{name}` of shape {shape} was passed when a 1-D array was "
        "expected; it is used as 1-D (y.ravel()), and y_res is 1-D."
    )
    try:  # scikit-learn's own category, so that its filters apply; else a UserWarning
        from sklearn.exceptions import DataConversionWarning as category
    except ImportError:
        category = UserWarning
    warnings.warn(message, category, stacklevel=4)
