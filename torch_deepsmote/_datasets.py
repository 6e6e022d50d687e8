"""A user's map-style dataset: its labels, class names and transforms, and reading it.

Routes through ``Subset`` and ``ConcatDataset`` like they route indices, so a torchvision
dataset wrapped in either still gives its labels without reading a single image.
:func:`read_dataset` is the one way the library reads a dataset's images, for
:meth:`DeepSMOTE.fit_dataset` and :class:`OversampledDataset` alike.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Subset, TensorDataset, get_worker_info
from tqdm.auto import tqdm

from ._format import ImageFormat, TargetFormat, as_labels, check_pixels, image_to_tensor
from ._items import EXTRA_KEYS, ItemLayout, find_layout
from ._transforms import PairTransform, item_transform, raw_items, transform_owners
from ._validation import check_choice, check_non_negative_int

__all__ = [
    "DatasetImages",
    "ItemKeys",
    "PairTransform",
    "find_class_to_idx",
    "find_classes",
    "find_labels",
    "item_transform",
    "raw_items",
    "read_dataset",
    "transform_owners",
]


def _hf(dataset: Any) -> Any:
    """The Hugging Face integration when ``dataset`` is a ``datasets.Dataset``, else None."""
    from .integrations import hf

    return hf if hf.handles(dataset) else None


def _as_labels(values: Any) -> Tensor | None:
    """``values`` as labels, or ``None`` where a ``targets`` attribute holds something else
    (boxes, masks, strings)."""
    try:
        return as_labels(values, "targets")
    except (TypeError, ValueError):
        return None


def find_labels(dataset: Any, label_key: Any = None) -> Tensor | None:
    """Class labels (N,) int64 from the dataset's metadata, or ``None`` when it has none.

    Looks at ``.targets`` (torchvision's MNIST, CIFAR, ImageFolder), ``.labels`` (SVHN),
    a ``TensorDataset``'s second tensor, a Hugging Face dataset's label column (``label_key``
    or found by name; read from Arrow, decoding nothing), and routes through ``Subset`` and
    ``ConcatDataset``.
    """
    if isinstance(dataset, Subset):
        parent = find_labels(dataset.dataset, label_key)
        return None if parent is None else parent[torch.as_tensor(list(dataset.indices)).long()]
    if isinstance(dataset, ConcatDataset):
        parts = [find_labels(part, label_key) for part in dataset.datasets]
        return None if any(p is None for p in parts) else torch.cat(parts)
    hf = _hf(dataset)
    if hf is not None:
        return hf.labels(dataset, label_key)
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


def find_classes(dataset: Any, label_key: Any = None) -> list | None:
    """The dataset's ``classes`` list (torchvision's convention; a Hugging Face dataset's
    ``ClassLabel`` names), routing through wrappers."""
    inner = _innermost(dataset)
    hf = _hf(inner)
    if hf is not None:
        return hf.classes(inner, label_key)
    classes = getattr(inner, "classes", None)
    return list(classes) if classes is not None else None


def find_class_to_idx(dataset: Any, labels: Tensor, label_key: Any = None) -> dict:
    """``{class name: label}`` as torchvision's ``class_to_idx``, routing through wrappers.

    Without one, ``classes[i]`` names label ``i`` (torchvision's convention); without names,
    every label (of ``labels``, (N,) int64) stands for itself.
    """
    mapping = getattr(_innermost(dataset), "class_to_idx", None)
    if mapping:
        return dict(mapping)
    names = find_classes(dataset, label_key)
    if names is not None:
        return {name: i for i, name in enumerate(names)}
    return {label: label for label in torch.unique(labels).tolist()}


class DatasetImages(NamedTuple):
    """Every raw image of a dataset, read once.

    Attributes:
        images: (M, C, H, W) tensor in the items' own dtype, one row per kept item.
        labels: (M,) int64.
        image_format: How the raw images look (PIL, numpy or tensor; dtype; value range).
        target_format: How the raw targets look.
        indices: (M,) int64 dataset index of every row, or ``None`` when every item was
            kept (row ``i`` is item ``i``).
        skipped: ``(index, reason)`` of every item left out (``on_bad_item='skip'``).
        layout: Where the raw items hold their image and label (pairs, tuples, dicts).
    """

    images: Tensor
    labels: Tensor
    image_format: ImageFormat
    target_format: TargetFormat
    indices: Tensor | None = None
    skipped: tuple[tuple[int, str], ...] = ()
    layout: ItemLayout | None = None


class ItemKeys(NamedTuple):
    """Where the user says (or the dataset's kind implies) the image and label are."""

    image_key: Any = None
    label_key: Any = None
    extra_keys: str = "fill"

    @classmethod
    def of(cls, dataset: Any, image_key: Any, label_key: Any, extra_keys: str) -> ItemKeys:
        """The keys given, completed from a Hugging Face dataset's columns and features."""
        check_choice("extra_keys", extra_keys, EXTRA_KEYS)
        hf = _hf(_innermost(dataset))
        if hf is not None:
            image_key, label_key = hf.default_keys(_innermost(dataset), image_key, label_key)
        return cls(image_key, label_key, extra_keys)


ON_BAD_ITEM = ("raise", "skip")
_READ_BATCH = 64  # items per worker task when reading with DataLoader workers


class _BadItem(Exception):
    """An item that cannot join the training set (internal: becomes an error or a skip)."""


def read_dataset(
    dataset: Any,
    labels: Any = None,
    fit_transform: Callable | None = None,
    progress: bool = False,
    on_bad_item: str = "raise",
    num_workers: int = 0,
    store: str | os.PathLike | None = None,
    *,
    in_memory: bool | str = False,
    image_key: Any = None,
    label_key: Any = None,
    extra_keys: str = "fill",
) -> DatasetImages:
    """Read every item of a map-style dataset, once, in order.

    Items are (image, target) pairs, longer tuples or dicts (:func:`find_layout`: the keys
    ``image`` / ``img`` / ``pixel_values`` and ``label`` / ``labels`` / ``target``, or
    ``image_key`` and ``label_key``); every item should have the first good one's form.

    While reading, the transforms of the wrapped datasets are set aside (:func:`raw_items`),
    so random augmentation stays out; ``fit_transform`` is applied to each raw image
    instead (a deterministic ``Resize`` for images of different sizes, for example).
    Labels come from ``labels``, the dataset's metadata (:func:`find_labels`), or the
    targets read in the same pass.

    A bad item is one whose reading (or ``fit_transform``) raises, whose image differs
    from the first good one in shape (a grey image among colour ones, another size) or
    dtype, holds NaN or infinite pixels, whose keys differ from the first good one's, or
    whose label is outside the dataset's ``classes``. ``on_bad_item='raise'`` stops at the
    first with its index and the reason (the original exception chained); ``'skip'`` leaves
    every bad item out, warns with how many and the first few indices, and returns the kept
    rows' ``indices``.

    Args:
        dataset: A non-empty map-style dataset.
        labels: (N,) class of every item, or ``None``.
        fit_transform: Applied to each raw image before it is read, or ``None``.
        progress: Show a tqdm bar.
        on_bad_item: ``'raise'`` or ``'skip'``.
        num_workers: DataLoader worker processes that read (and decode) the items in
            parallel, in order; 0 reads them in this process.
        store: An HDF5 file to write the images into, a few thousand rows at a time, instead
            of one (N, C, H, W) tensor: ``images`` is then an
            :class:`~torch_deepsmote.storage.image_store.H5Images` and memory does not grow with N.
        in_memory: ``'auto'``: use ``store`` only where the images and their residuals
            would not fit in memory (:func:`fits_in_memory`); otherwise ``store`` decides.
        image_key: The key (dict items) or position (tuples) of the image; ``None`` finds it.
        label_key: Likewise for the target.
        extra_keys: ``'fill'`` or ``'drop'``: what synthetic items do with the other fields
            (:mod:`torch_deepsmote._items`).

    Returns:
        :class:`DatasetImages`.

    Raises:
        ValueError: An empty dataset, a bad item (``on_bad_item='raise'``), no good item, or
            labels of the wrong length.
        TypeError: Items that are neither tuples nor dicts, dicts without a known image or
            label key (the error names the argument to pass), or targets that are not classes.
    """
    check_choice("on_bad_item", on_bad_item, ON_BAD_ITEM)
    check_non_negative_int("num_workers", num_workers)
    keys = ItemKeys.of(dataset, image_key, label_key, extra_keys)
    n = len(dataset)
    if n == 0:
        raise ValueError("`dataset` should hold at least one item, but got len(dataset)=0.")
    with raw_items(dataset):
        found = (
            find_labels(dataset, keys.label_key)
            if labels is None
            else as_labels(labels, "labels", n)
        )
        if len(found if found is not None else range(n)) != n:
            raise ValueError(
                f"`labels` should have one label per item, but got {len(found)} for {n} items."
            )
        n_classes = _n_classes(dataset, keys.label_key)
        targets: list = []
        kept: list[int] = []
        skipped: list[tuple[int, str]] = []
        sink = first = None
        with closing(_read_items(dataset, fit_transform, num_workers, keys)) as items:
            for i, item in tqdm(
                enumerate(items), desc="reading dataset", total=n, disable=not progress
            ):
                try:
                    if isinstance(item, _Failed):
                        raise _BadItem(item.reason) from item.cause
                    image, target, tensor, layout = item
                    label = int(found[i]) if found is not None else _item_label(target, i)
                    _check_item(i, tensor, label, first, layout, n_classes)
                except _BadItem as bad:
                    if on_bad_item == "raise":
                        raise ValueError(
                            f"dataset item {i} {bad} Fix or remove it, or pass "
                            "on_bad_item='skip' to leave such items out."
                        ) from bad.__cause__
                    skipped.append((i, str(bad)))
                    continue
                if sink is None:
                    first = (i, image, target, tensor, layout)
                    check_pixels(tensor[None], "dataset images")
                    if store is not None and in_memory == "auto":
                        store = None if fits_in_memory(n, tensor) else store
                    sink = _TensorRows(n, tensor) if store is None else _StoreRows(store, n, tensor)
                sink.append(tensor)
                kept.append(i)
                targets.append(label)
    if sink is None:
        raise ValueError(
            f"`dataset` should hold at least one good item, but all {n} are bad: "
            + _summary(skipped)
        )
    if skipped:
        _report_skipped(skipped, n)
    images, extremes = sink.close()
    m = len(kept)
    index = None if m == n else torch.tensor(kept, dtype=torch.int64)
    labels_out = torch.tensor(targets, dtype=torch.int64)
    return DatasetImages(
        images,
        labels_out,
        ImageFormat.of_items(first[1], extremes),
        TargetFormat.of(first[2]),
        index,
        tuple(skipped),
        first[4],
    )


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux's MemAvailable), or
    ``None`` where it cannot tell."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def fits_in_memory(n: int, row: Tensor, share: float = 0.25) -> bool:
    """Whether ``n`` images like ``row``, plus their float16 residuals, take at most
    ``share`` of the available memory (the rule of ``in_memory='auto'``), shared with the
    other processes torchrun started on this machine (``LOCAL_WORLD_SIZE``)."""
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    share /= max(local_ranks, 1)
    needed = n * row.numel() * (row.element_size() + 2)
    available = available_memory()
    return available is None or needed <= share * available


class _TensorRows:
    """The read images in one (n, C, H, W) tensor (the default: small data)."""

    def __init__(self, n: int, row: Tensor) -> None:
        self.images, self.rows = torch.empty((n, *row.shape), dtype=row.dtype), 0

    def append(self, row: Tensor) -> None:
        self.images[self.rows] = row
        self.rows += 1

    def close(self) -> tuple[Tensor, Tensor]:
        images = self.images
        # Rows past self.rows (skipped items) were never written: leave them out. Every
        # kept row was checked as it was read (finite pixels; dtype with the first).
        images = images if self.rows == len(images) else images[: self.rows].clone()
        return images, images


class _StoreRows:
    """The read images in an HDF5 file; keeps each pixel's running extremes (the value
    range :class:`ImageFormat` needs) instead of the images."""

    def __init__(self, path: str | os.PathLike, n: int, row: Tensor) -> None:
        from .storage.image_store import H5ImagesWriter

        self.writer = H5ImagesWriter(path, n, row)
        self.low, self.high = row.clone(), row.clone()

    def append(self, row: Tensor) -> None:
        self.writer.append(row)
        torch.minimum(self.low, row, out=self.low)
        torch.maximum(self.high, row, out=self.high)

    def close(self) -> tuple[Any, Tensor]:
        # (2, C, H, W) extremes: the same dtype, minimum and maximum as the whole set.
        return self.writer.close(), torch.stack([self.low, self.high])


class _Failed(NamedTuple):
    """An item that raised while read (in this process or a worker): why, and the error."""

    reason: str
    cause: BaseException | None


class _ItemReader:
    """``(image, target, tensor, layout)`` of item ``i``, or :class:`_Failed` (picklable:
    runs in DataLoader workers, where an exception must come back as a value to keep its
    index)."""

    def __init__(self, dataset: Any, fit_transform: Callable | None, keys: ItemKeys) -> None:
        self.dataset, self.fit_transform, self.keys = dataset, fit_transform, keys

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, Any, Tensor, ItemLayout] | _Failed:
        try:
            return _read_item(self.dataset, i, self.fit_transform, self.keys)
        except _BadItem as bad:
            cause = bad.__cause__
            if get_worker_info() is not None:
                try:
                    pickle.dumps(cause)
                except Exception:  # an error that cannot cross to the main process
                    cause = RuntimeError(repr(cause))
            return _Failed(str(bad), cause)


def _read_items(
    dataset: Any, fit_transform: Callable | None, num_workers: int, keys: ItemKeys
) -> Iterator:
    """Every item's :meth:`_ItemReader.__getitem__`, in index order."""
    reader = _ItemReader(dataset, fit_transform, keys)
    if num_workers == 0:
        yield from (reader[i] for i in range(len(reader)))
        return
    loader = DataLoader(reader, batch_size=_READ_BATCH, num_workers=num_workers, collate_fn=list)
    batches = iter(loader)
    try:
        for batch in batches:
            yield from batch
    finally:
        # Shut the workers down when the reading stops (a bad item raised), not whenever the
        # traceback that holds this generator is collected.
        del batches


def _read_item(
    dataset: Any, i: int, fit_transform: Callable | None, keys: ItemKeys
) -> tuple[Any, Any, Tensor, ItemLayout]:
    try:
        item = dataset[i]
    except Exception as error:
        raise _BadItem(f"could not be read: {type(error).__name__}: {error}.") from error
    # An item of an unknown form is the dataset's design, not a bad item: it raises.
    layout = find_layout(item, i, *keys)
    image, target = layout.split(item)
    if fit_transform is not None:
        try:
            image = fit_transform(image)
        except Exception as error:
            raise _BadItem(f"failed in fit_transform: {type(error).__name__}: {error}.") from error
    return image, target, _image_tensor(image, layout, i), layout


def _image_tensor(image: Any, layout: ItemLayout, i: int) -> Tensor:
    try:
        return image_to_tensor(image)
    except TypeError as error:
        where = "" if layout.kind == "pair" else f" under {layout.image_key!r}"
        hint = (
            " A file path: the transform that loads it is set aside while fitting (MONAI: "
            "only its random part is). Load the images in the dataset, or pass "
            "fit_transform= that loads them."
            if isinstance(image, (str, os.PathLike))
            else " Pass image_key= naming the field that holds the image."
        )
        raise TypeError(
            f"dataset item {i} should hold a PIL image, numpy array or tensor{where}, but holds "
            f"{type(image).__name__}.{hint}"
        ) from error


def _n_classes(dataset: Any, label_key: Any = None) -> int | None:
    """How many classes the dataset's ``classes`` lists (the largest over the parts of a
    ``ConcatDataset``), or ``None`` where a part lists none: labels are checked against it."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if isinstance(dataset, ConcatDataset):
        counts = [_n_classes(part, label_key) for part in dataset.datasets]
        return None if None in counts else max(counts)
    classes = find_classes(dataset, label_key)
    return len(classes) if classes is not None and len(classes) > 0 else None


def _item_label(target: Any, i: int) -> int:
    return int(as_labels([target], f"target of dataset item {i}", 1)[0])


def _check_item(
    i: int,
    tensor: Tensor,
    label: int,
    first: tuple | None,
    layout: ItemLayout,
    n_classes: int | None,
) -> None:
    """Raise :class:`_BadItem` unless item ``i`` matches ``first`` (the first good item)
    in its keys and its image's shape and dtype, has finite pixels and a label among
    ``n_classes``."""
    if first is not None and not layout.same_form(first[4]):
        raise _BadItem(
            f"is {layout.describe()} while the first good item is {first[4].describe()}: "
            "dataset items should share one form."
        )
    reference = None if first is None else first[3]
    if reference is not None and (
        tensor.shape != reference.shape or tensor.dtype != reference.dtype
    ):
        raise _BadItem(
            f"is {tuple(tensor.shape)} {tensor.dtype} while the first good item is "
            f"{tuple(reference.shape)} {reference.dtype}: dataset images should share one shape "
            "and dtype. For images of different sizes pass "
            "fit_transform=torchvision.transforms.Resize((H, W)): it is applied to the raw "
            "images while fitting, and synthetic images are made at that size."
        )
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise _BadItem("has NaN or infinite pixel values.")
    if n_classes is not None and not 0 <= label < n_classes:
        raise _BadItem(
            f"has label {label}, outside the dataset's {n_classes} classes [0, {n_classes})."
        )


def _summary(skipped: Sequence[tuple[int, str]], shown: int = 5) -> str:
    lines = [f"item {i} {reason}" for i, reason in skipped[:shown]]
    more = f" (and {len(skipped) - shown} more)" if len(skipped) > shown else ""
    return "; ".join(lines) + more


def _report_skipped(skipped: Sequence[tuple[int, str]], n: int) -> None:
    indices = ", ".join(str(i) for i, _ in skipped[:10])
    more = ", ..." if len(skipped) > 10 else ""
    if 2 * len(skipped) > n:
        raise ValueError(
            f"on_bad_item='skip' would leave out {len(skipped)} of {n} items, more than half: "
            "the first good item is likely the odd one. " + _summary(skipped)
        )
    warnings.warn(
        f"Skipped {len(skipped)} bad dataset item(s) of {n} (indices {indices}{more}); they "
        "are left out of the fit and the epoch. " + _summary(skipped, 3),
        UserWarning,
        stacklevel=4,
    )
