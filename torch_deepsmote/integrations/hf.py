"""Hugging Face ``datasets``: a map-style ``datasets.Dataset`` as the wrapped dataset.

- Keys: the image column is ``image_key``, else the one of ``image`` / ``img`` /
  ``pixel_values`` it has, else its one ``Image`` column; the label column is
  ``label_key``, else the one of ``label`` / ``labels`` / ``target``, else its one
  ``ClassLabel`` column.
- Labels are read from the label column's Arrow data: no image is decoded and no
  transform runs. Class names come from its ``ClassLabel`` feature.
- Transforms: a dataset's format (``set_transform`` / ``with_transform``,
  ``set_format("torch")``, ...) is set aside while fitting (rows are read as plain Python,
  images as PIL; arrays, when there is no ``Image`` column, as torch (C, H, W) tensors as
  stored) and restored afterwards. Synthetic rows are built in that raw form and formatted
  by the dataset's own formatter, so they come out as real rows do.
- [`to_hf_dataset`][torch_deepsmote.integrations.hf.to_hf_dataset] exports the balanced set as a
  ``datasets.Dataset``.

This module imports ``datasets`` only where a dataset of it is in hand (``pip install
"torch-deepsmote[hf]"``).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._items import IMAGE_KEYS, LABEL_KEYS, ItemLayout
from .._labels import as_labels
from ..adapters import Kind, register_kind
from ..dataset import OversampledDataset

__all__ = [
    "HFKind",
    "PROVENANCE_COLUMNS",
    "RowFormatter",
    "handles",
    "to_hf_dataset",
]

INSTALL = 'pip install "torch-deepsmote[hf]"'
PROVENANCE_COLUMNS = ("synthetic", "base", "neighbor", "anchor", "lam")


def handles(dataset: Any) -> bool:
    """Whether ``dataset`` is a ``datasets.Dataset`` (without importing ``datasets``)."""
    module = sys.modules.get("datasets.arrow_dataset")
    return module is not None and isinstance(dataset, module.Dataset)


def _feature_type(feature: Any) -> str:
    return type(feature).__name__


def _one(columns: list, known: tuple, features: Any, feature_type: str) -> Any:
    named = [c for c in known if c in columns]
    if named:
        return named[0] if len(named) == 1 else None
    typed = [c for c in columns if _feature_type(features[c]) == feature_type]
    return typed[0] if len(typed) == 1 else None


def _raw_type(dataset: Any) -> str | None:
    """The format the rows are read in while fitting: Python (PIL images) when there is an
    ``Image`` column, else torch, whose arrays keep the (C, H, W) axes they are stored in
    (numpy arrays are (H, W, C) to this library)."""
    images = any(_feature_type(f) == "Image" for f in dataset.features.values())
    return None if images else "torch"


class RowFormatter:
    """Formats raw rows as the dataset's ``__getitem__`` does (picklable when its
    ``set_transform`` function is), one transform call per batch of rows.

    A ``set_transform`` / ``with_transform`` function (or a column selection) on Python
    rows gets the batch of decoded rows directly, as HF's own formatter hands it after
    decoding. Other formats (``torch``, ``numpy``, ...): the rows become a small
    ``datasets.Dataset`` of the same features and format, read back as DataLoader reads
    one (``__getitems__``).

    Args:
        features: The dataset's ``Features``.
        fmt: Its ``format`` dict (type, format_kwargs, columns, output_all_columns).
        python: Whether the raw rows are Python rows (decoded images), not tensors.
    """

    def __init__(self, features: Any, fmt: dict, python: bool = False) -> None:
        self.features, self.fmt, self.python = features, dict(fmt), python

    def __call__(self, rows: list) -> list:
        if not rows:
            return []
        if self.python and self.fmt["type"] in (None, "custom"):
            return self._transform(rows)
        return self._format(rows)

    def _transform(self, rows: list) -> list:
        fmt, names = self.fmt, list(self.features)
        # In the table's order, as HF drops the other columns from the table.
        chosen = [n for n in names if fmt["columns"] is None or n in fmt["columns"]]
        batch = {name: [row.get(name) for row in rows] for name in chosen}
        if fmt["type"] == "custom":
            batch = fmt["format_kwargs"]["transform"](batch)
        if fmt["output_all_columns"]:
            batch.update({n: [row.get(n) for row in rows] for n in names if n not in chosen})
        return [{key: values[i] for key, values in batch.items()} for i in range(len(rows))]

    def _format(self, rows: list) -> list:
        import datasets

        # A column that a row lacks (dropped extra keys) is null, as a missing value is.
        batch = {name: [_plain(row.get(name)) for row in rows] for name in self.features}
        table = datasets.Dataset.from_dict(batch, features=self.features)
        fmt = self.fmt
        table.set_format(
            fmt["type"],
            columns=fmt["columns"],
            output_all_columns=fmt["output_all_columns"],
            **fmt["format_kwargs"],
        )
        if hasattr(table, "__getitems__"):
            return table.__getitems__(list(range(len(rows))))
        return [table[i] for i in range(len(rows))]  # pragma: no cover - datasets < 2.13


def _plain(value: Any) -> Any:
    """A value as ``Features.encode_batch`` takes it (tensors as numpy, 0-d as scalars)."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


@register_kind
class HFKind(Kind):
    """A ``datasets.Dataset``: labels from its Arrow column, names from its ``ClassLabel``,
    its format set aside while fitting and applied to synthetic rows."""

    handles = staticmethod(handles)

    def has_transforms(self) -> bool:
        return True

    def default_keys(self, image_key: Any, label_key: Any) -> tuple[Any, Any]:
        """``(image_key, label_key)``: as given, else found from the column names and features
        (``None`` where that is ambiguous: the items' keys then decide, with an error)."""
        columns, features = self.dataset.column_names, self.dataset.features
        if image_key is None:
            image_key = _one(columns, IMAGE_KEYS, features, "Image")
        if label_key is None:
            label_key = _one(columns, LABEL_KEYS, features, "ClassLabel")
        return image_key, label_key

    def labels(self, label_key: Any = None) -> Tensor | None:
        """(N,) int64 labels from the label column's Arrow data (no decoding, no transform).

        Raises:
            TypeError: A column of strings (with the fix).
            ValueError: Rows without a label (-1, ``ClassLabel``'s "no label").
        """
        _, key = self.default_keys(None, label_key)
        if key is None or key not in self.dataset.column_names:
            return None
        column = self.dataset.with_format("arrow")[key]  # follows select/shuffle/filter indices
        # A copy: Arrow's zero-copy view is read-only, which torch warns about.
        values = np.array(column.to_numpy() if hasattr(column, "to_numpy") else column)
        if values.dtype.kind in "OUS":
            raise TypeError(
                f"`dataset` column {key!r} should hold integer class labels, but holds "
                f"{values.dtype.kind == 'O' and 'objects' or 'strings'}. Encode it first: "
                f"dataset = dataset.class_encode_column({key!r})."
            )
        found = as_labels(values, f"dataset[{key!r}]")
        missing = int((found < 0).sum())
        if missing:
            raise ValueError(
                f"`dataset` column {key!r} should give every row a class, but {missing} rows have "
                f"label -1 (no label). Leave them out first: dataset = dataset.filter(lambda y: "
                f"y >= 0, input_columns={key!r})."
            )
        return found

    def classes(self, label_key: Any = None) -> list | None:
        """The names of the label column's ``ClassLabel`` feature, or ``None``."""
        _, key = self.default_keys(None, label_key)
        feature = self.dataset.features.get(key) if key is not None else None
        return list(feature.names) if _feature_type(feature) == "ClassLabel" else None

    def set_aside(self) -> Any:
        """Reset the format to raw rows; returns the function that restores it."""
        saved = self.dataset.format
        self.dataset.set_format(_raw_type(self.dataset))

        def restore() -> None:
            self.dataset.set_format(
                saved["type"],
                columns=saved["columns"],
                output_all_columns=saved["output_all_columns"],
                **saved["format_kwargs"],
            )

        return restore

    def item_transform(self, layout: ItemLayout) -> RowFormatter | None:
        """The dataset's formatting of raw rows, or ``None`` when raw rows are its items."""
        fmt = self.dataset.format
        plain = fmt["type"] is None and not fmt["format_kwargs"]
        every = fmt["columns"] is None or list(fmt["columns"]) == list(self.dataset.column_names)
        if plain and every and _raw_type(self.dataset) is None:
            return None
        return RowFormatter(self.dataset.features, fmt, python=_raw_type(self.dataset) is None)


# ---------------------------------------------------------------------- export
def to_hf_dataset(dataset: Any, epoch: int | None = None, batch_size: int = 1024) -> Any:
    """The balanced set of an ``OversampledDataset`` over a ``datasets.Dataset``, as a
    ``datasets.Dataset``: every original row (the kept ones, with all their columns, in
    order), then the synthetic rows of one epoch.

    Columns added: ``synthetic`` (bool), and the provenance of every synthetic row:
    ``base``, ``neighbor`` and ``anchor`` (rows among the originals of the export, which come
    first, so ``export[base]`` is the base image) and ``lam``, the step of its code
    ``z_base + lam (z_neighbor - z_anchor)``. Originals have -1 and NaN there. Other columns
    of a synthetic row hold the markers of ``extra_keys='fill'`` (-1, NaN, ``""``, null).
    The export has the plain format: set a transform on it as on the source.

    Args:
        dataset: An [`OversampledDataset`][torch_deepsmote.dataset.OversampledDataset] whose
            ``dataset`` is a ``datasets.Dataset``.
        epoch: Whose synthetic set; ``None`` is the dataset's current epoch.
        batch_size: Synthetic images decoded (and encoded as rows) at a time.

    Returns:
        A ``datasets.Dataset`` of ``len(dataset)`` rows.

    Raises:
        TypeError: ``dataset`` is not an ``OversampledDataset`` over a ``datasets.Dataset``.
        ValueError: The source already has one of the added columns.

    Examples:
        >>> balanced = OversampledDataset(hf_train, cache_dir="runs/hf")  # doctest: +SKIP
        >>> to_hf_dataset(balanced).filter(lambda s: s, input_columns="synthetic")  # doctest: +SKIP
    """
    if not isinstance(dataset, OversampledDataset) or not handles(dataset.dataset):
        raise TypeError(
            "`dataset` should be an OversampledDataset over a datasets.Dataset, but got "
            f"{type(dataset).__name__}"
            + (
                f" over {type(dataset.dataset).__name__}"
                if isinstance(dataset, OversampledDataset)
                else ""
            )
            + ". For other datasets use DeepSMOTE.fit_resample or `torch-deepsmote resample`."
        )
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - a datasets.Dataset is in hand
        raise ImportError(f"to_hf_dataset needs `datasets`: {INSTALL}") from error
    source = dataset.dataset
    taken = [c for c in PROVENANCE_COLUMNS if c in source.column_names]
    if taken:
        raise ValueError(
            f"`dataset` should not have the columns the export adds ({list(PROVENANCE_COLUMNS)}), "
            f"but its source has {taken}. Rename them first: source.rename_column(...)."
        )
    real = source.with_format(None)
    if dataset.real_indices is not None:
        real = real.select(dataset.real_indices.tolist())
    n = len(real)
    added = datasets.Features(
        synthetic=datasets.Value("bool"),
        base=datasets.Value("int64"),
        neighbor=datasets.Value("int64"),
        anchor=datasets.Value("int64"),
        lam=datasets.Value("float64"),
    )
    marks = {"synthetic": [False] * n, **{c: [-1] * n for c in ("base", "neighbor", "anchor")}}
    for name, values in {**marks, "lam": [float("nan")] * n}.items():
        # Arrow's columns side by side: no copy of the images (HF flattens a select() first).
        real = real.add_column(name, values)
    features = datasets.Features({**source.features, **added})
    parts = [real]
    plan = dataset.plan(epoch)
    for first in range(0, len(plan), batch_size):
        chunk = plan[first : first + batch_size]
        rows = dataset.raw_items(chunk)
        columns = {name: [row.get(name) for row in rows] for name in source.column_names}
        columns = {name: [_plain(v) for v in values] for name, values in columns.items()}
        columns.update(
            synthetic=[True] * len(chunk),
            base=chunk.base.tolist(),
            neighbor=chunk.neighbor.tolist(),
            anchor=chunk.anchors.tolist(),
            lam=chunk.lam.to(torch.float64).tolist(),
        )
        parts.append(datasets.Dataset.from_dict(columns, features=features))
    return datasets.concatenate_datasets(parts)
