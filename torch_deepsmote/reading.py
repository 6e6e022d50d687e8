"""Reading a dataset's raw images once, in order: the one way the library reads a dataset.

``DeepSMOTE.fit_dataset`` and ``OversampledDataset`` read
through ``read_dataset``: every item, with the dataset's transforms set aside (its
``DatasetAdapter`` knows how), bad items raised or skipped,
the images gathered into one tensor or streamed into an HDF5 file.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing
from functools import partial
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, get_worker_info
from tqdm.auto import tqdm

from ._format import ImageFormat, check_pixels, file_pixels, image_to_tensor
from ._items import ItemLayout, find_layout
from ._labels import TargetFormat, TargetReader, as_labels
from ._pixels import (
    check_image_shape,
    check_value_range,
    find_value_range,
    image_extremes,
    range_faults,
)
from ._validation import check_choice, check_non_negative_int
from .adapters import DatasetAdapter
from .storage.image_store import H5ImagesWriter

__all__ = ["DatasetImages", "available_memory", "fits_in_memory", "memory_allows", "read_dataset"]


class DatasetImages(NamedTuple):
    """Every raw image of a dataset, read once.

    Attributes:
        images: (M, C, H, W) tensor in the items' own dtype, one row per kept item.
        labels: (M,) int64 (class names numbered in sorted order).
        image_format: How the raw images look (PIL, numpy or tensor; dtype; value range).
        target_format: How the raw targets look, and the target of every label.
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
    value_range: tuple[float, float] | None = None,
) -> DatasetImages:
    """Read every item of a map-style dataset, once, in order, its transforms set aside.

    Items are (image, target) pairs, longer tuples or dicts (``find_layout``), all of
    the first good item's form; ``fit_transform`` is applied to each raw image (a
    deterministic ``Resize`` for images of different sizes). Labels come from ``labels``,
    the metadata, or the targets read in the same pass. A bad item (it raises, or differs
    from the first good one in form, shape or dtype, holds NaN pixels, has a label
    outside ``classes``, has pixels outside ``value_range`` or, without one, far outside
    the other items' (``range_faults``)) stops the read with
    its index (``on_bad_item='raise'``) or is left out with a warning (``'skip'``;
    ``indices`` then names the kept rows).

    Args:
        dataset: A non-empty map-style dataset, or its ``DatasetAdapter`` (which
            holds the keys then).
        labels: (N,) class of every item, or ``None``.
        fit_transform: Applied to each raw image before it is read, or ``None``.
        progress: Show a tqdm bar.
        on_bad_item: ``'raise'`` or ``'skip'``.
        num_workers: DataLoader worker processes that read the items, in order (0: here).
        store: An HDF5 file to stream the images into instead of one (N, C, H, W) tensor:
            ``images`` is then an ``H5Images`` and memory does not grow with N.
        in_memory: ``'auto'``: use ``store`` only where the images and their residuals
            would not fit in memory (``fits_in_memory``); otherwise ``store`` decides.
        image_key, label_key, extra_keys: Where items hold image and target, and what
            synthetic items do with other fields (see ``DatasetAdapter``).
        value_range: The declared ``(low, high)`` of the pixels, or ``None``: found from
            the images (``find_value_range``).

    Returns:
        ``DatasetImages``.

    Raises:
        ValueError: An empty dataset, a bad item (``'raise'``), no good item, or labels of
            the wrong length.
        TypeError: Items that are neither tuples nor dicts, dicts without a known image or
            label key (the error names the argument to pass), or targets that are not classes.
    """
    check_choice("on_bad_item", on_bad_item, ON_BAD_ITEM)
    check_non_negative_int("num_workers", num_workers)
    declared = check_value_range("value_range", value_range)
    if isinstance(dataset, DatasetAdapter):
        adapter, dataset = dataset, dataset.dataset
    else:
        keep_head = fit_transform is None  # a fit_transform overrides a Compose's head
        adapter = DatasetAdapter(dataset, image_key, label_key, extra_keys, keep_head)
    n = len(dataset)
    if n == 0:
        raise ValueError("`dataset` should hold at least one item, but got len(dataset)=0.")
    for kind in adapter.kinds:
        _check_loader(kind.dataset)
    with adapter.raw_items():
        found = adapter.labels() if labels is None else as_labels(labels, "labels", n)
        if found is not None and len(found) != n:
            raise ValueError(
                f"`labels` should have one label per item, but got {len(found)} for {n} items."
            )
        source = "`labels`" if labels is not None else "the dataset's label metadata"
        targets = TargetReader(found, source)
        rows = _Rows(n, store, in_memory, adapter.n_classes(), targets, declared)
        with closing(_read_items(dataset, fit_transform, num_workers, adapter)) as items:
            for i, item in tqdm(
                enumerate(items), desc="reading dataset", total=n, disable=not progress
            ):
                rows.add(i, item, on_bad_item)
    return rows.result(on_bad_item)


class _Rows:
    """The read so far: the first good item, the kept rows and the skipped items."""

    def __init__(
        self,
        n: int,
        store: Any,
        in_memory: bool | str,
        n_classes: int | None,
        targets: Any,
        declared: tuple[float, float] | None,
    ) -> None:
        self.n, self.store, self.in_memory, self.n_classes = n, store, in_memory, n_classes
        self.declared = declared
        self.sink: Any = None
        self.first: tuple | None = None
        self.kept: list[int] = []
        self.targets: TargetReader = targets
        self.skipped: list[tuple[int, str]] = []

    def add(self, i: int, item: Any, on_bad_item: str) -> None:
        """Check item ``i`` and keep its image, or raise / skip it."""
        try:
            if isinstance(item, _Failed):
                raise _BadItem(item.reason) from item.cause
            image, target, tensor, layout = item
            label = self.targets.label(i, target)
            _check_item(i, tensor, label, self.first, layout, self.n_classes)
        except _BadItem as bad:
            if on_bad_item == "raise":
                raise ValueError(
                    f"dataset item {i} {bad} Fix or remove it, or pass "
                    "on_bad_item='skip' to leave such items out."
                ) from bad.__cause__
            self.skipped.append((i, str(bad)))
            return
        if self.sink is None:
            self.first = (i, image, target, tensor, layout)
            self.sink = self._sink(i, tensor)
        self.sink.append(tensor)
        self.targets.keep(i, target, label)
        self.kept.append(i)

    def _sink(self, i: int, row: Tensor) -> Any:
        check_pixels(row[None], "dataset images")
        check_image_shape(tuple(row.shape), f"dataset item {i}", hint=_FIT_TRANSFORM_HINT)
        store = self.store
        if store is not None and self.in_memory == "auto":
            store = None if fits_in_memory(self.n, row) else store
        # uint8 has a nominal range: no image's extremes matter unless a range is declared.
        measure = row.dtype != torch.uint8 or self.declared is not None
        if store is None:
            return _TensorRows(self.n, row, measure)
        return _StoreRows(store, self.n, row, measure)

    def result(self, on_bad_item: str) -> DatasetImages:
        n, skipped, declared = self.n, self.skipped, self.declared
        if self.sink is None:
            raise ValueError(
                f"`dataset` should hold at least one good item, but all {n} are bad: "
                + _summary(skipped)
            )
        dtype = self.first[3].dtype
        lows, highs = self.sink.extremes()
        keep = None
        faults = range_faults(dtype, lows, highs, declared) if lows is not None else []
        if faults:
            # Only now, with every image read, can an item's range be judged: bad items all
            # the same.
            if on_bad_item == "raise":
                row, reason = faults[0]
                raise ValueError(
                    f"dataset item {self.kept[row]} {reason}. Fix or remove it, or pass "
                    "on_bad_item='skip' to leave such items out."
                )
            keep = torch.ones(len(self.kept), dtype=torch.bool)
            keep[[row for row, _ in faults]] = False
            skipped.extend((self.kept[row], reason + ".") for row, reason in faults)
            skipped.sort()
            self.kept = [i for i, k in zip(self.kept, keep.tolist()) if k]
            lows, highs = lows[keep], highs[keep]
        if skipped:
            _report_skipped(skipped, n)
        value_range = find_value_range(dtype, lows, highs, declared)
        images = self.sink.close(keep)
        _, image, _, _, layout = self.first
        index = None if len(self.kept) == n else torch.tensor(self.kept, dtype=torch.int64)
        labels, target_format = self.targets.result()
        if keep is not None:
            labels = labels[keep]
        return DatasetImages(
            images,
            labels,
            ImageFormat.of_items(image, dtype, value_range),
            target_format,
            index,
            tuple(skipped),
            layout,
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


def memory_allows(needed: int, share: float = 0.25) -> bool:
    """Whether ``needed`` bytes take at most ``share`` of the available memory, shared with
    the other processes torchrun started on this machine (``LOCAL_WORLD_SIZE``): the one
    memory rule of ``in_memory='auto'`` and ``pool='auto'``."""
    local_ranks = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1), 1)
    available = available_memory()
    return available is None or needed <= share * available / local_ranks


def fits_in_memory(n: int, row: Tensor, share: float = 0.25) -> bool:
    """Whether ``n`` images like ``row``, plus their float16 residuals, take at most
    ``share`` of the available memory (the rule of ``in_memory='auto'``,
    ``memory_allows``)."""
    return memory_allows(n * row.numel() * (row.element_size() + 2), share)


class _TensorRows:
    """The read images in one (n, C, H, W) tensor (the default: small data)."""

    def __init__(self, n: int, row: Tensor, measure: bool) -> None:
        self.images, self.rows = torch.empty((n, *row.shape), dtype=row.dtype), 0
        self.measure = measure

    def append(self, row: Tensor) -> None:
        self.images[self.rows] = row
        self.rows += 1

    def extremes(self) -> tuple[Tensor | None, Tensor | None]:
        """(rows,) float64 minimum and maximum of every read image, or ``None``s."""
        if not self.measure:
            return None, None
        return image_extremes(self.images[: self.rows])

    def close(self, keep: Tensor | None = None) -> Tensor:
        """The read images, only the rows of the bool mask ``keep`` where given."""
        images = self.images
        # Rows past self.rows (skipped items) were never written: leave them out. Every
        # kept row was checked as it was read (finite pixels; dtype with the first).
        images = images if self.rows == len(images) else images[: self.rows].clone()
        return images if keep is None else images[keep]


class _StoreRows:
    """The read images in an HDF5 file, and each image's extremes (the value range
    ``ImageFormat`` needs and the outlier check reads) kept as they pass."""

    def __init__(self, path: str | os.PathLike, n: int, row: Tensor, measure: bool) -> None:
        self.writer = H5ImagesWriter(path, n, row)
        self.measure = measure
        self.lows: list[float] = []
        self.highs: list[float] = []

    def append(self, row: Tensor) -> None:
        self.writer.append(row)
        if self.measure:
            low, high = image_extremes(row[None])
            self.lows.append(float(low))
            self.highs.append(float(high))

    def extremes(self) -> tuple[Tensor | None, Tensor | None]:
        if not self.measure:
            return None, None
        as_tensor = partial(torch.tensor, dtype=torch.float64)
        return as_tensor(self.lows), as_tensor(self.highs)

    def close(self, keep: Tensor | None = None) -> Any:
        if keep is not None:
            self.writer.keep(keep.numpy())
        return self.writer.close()


class _Failed(NamedTuple):
    """An item that raised while read (in this process or a worker): why, and the error."""

    reason: str
    cause: BaseException | None


class _ItemReader:
    """``(image, target, tensor, layout)`` of item ``i``, or ``_Failed`` (picklable:
    runs in DataLoader workers, where an exception must come back as a value to keep its
    index)."""

    def __init__(
        self, dataset: Any, fit_transform: Callable | None, adapter: DatasetAdapter
    ) -> None:
        self.dataset, self.fit_transform, self.adapter = dataset, fit_transform, adapter

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, Any, Tensor, ItemLayout] | _Failed:
        try:
            return _read_item(self.dataset, i, self.fit_transform, self.adapter)
        except _BadItem as bad:
            cause = bad.__cause__
            if get_worker_info() is not None:
                try:
                    pickle.dumps(cause)
                except Exception:  # an error that cannot cross to the main process
                    cause = RuntimeError(repr(cause))
            return _Failed(str(bad), cause)


def _read_items(
    dataset: Any, fit_transform: Callable | None, num_workers: int, adapter: DatasetAdapter
) -> Iterator:
    """Every item's ``_ItemReader.__getitem__``, in index order."""
    reader = _ItemReader(dataset, fit_transform, adapter)
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


def _check_loader(dataset: Any) -> None:
    """Refuse torchvision's default loader on image files deeper than 8 bits: it converts
    every image to 8-bit RGB, clipping each value above 255, before the library sees it
    (judged from the first file's header)."""
    from torchvision.datasets.folder import default_loader, pil_loader

    samples = getattr(dataset, "samples", None)
    if getattr(dataset, "loader", None) not in (default_loader, pil_loader) or not samples:
        return
    from PIL import Image, UnidentifiedImageError

    path = samples[0][0]
    try:
        with Image.open(path) as image:
            dtype, grey = file_pixels(image)
    except (OSError, UnidentifiedImageError):
        return  # an unreadable file is the read's bad item, named there
    if dtype != "uint8":
        loader = "PIL.Image.open" if grey else "torchvision.io.decode_image"
        raise ValueError(
            f"`dataset` reads {path!r}, a {dtype} image, through torchvision's default loader, "
            "which converts every image to 8-bit RGB and clips each value above 255. Pass "
            f"loader={loader} to {type(dataset).__name__} to keep the bit depth "
            "(PIL.Image.open for grey 16-bit PNG and TIFF files, torchvision.io.decode_image "
            "for 16-bit colour PNG files)."
        )


def _read_item(
    dataset: Any, i: int, fit_transform: Callable | None, adapter: DatasetAdapter
) -> tuple[Any, Any, Tensor, ItemLayout]:
    try:
        item = dataset[i]
    except Exception as error:
        raise _BadItem(f"could not be read: {type(error).__name__}: {error}.") from error
    # An item of an unknown form is the dataset's design, not a bad item: it raises.
    layout = find_layout(item, i, adapter.image_key, adapter.label_key, adapter.extra_keys)
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


def _check_item(
    i: int,
    tensor: Tensor,
    label: int | None,
    first: tuple | None,
    layout: ItemLayout,
    n_classes: int | None,
) -> None:
    """Raise ``_BadItem`` unless item ``i`` matches ``first`` (the first good item)
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
            f"{tuple(reference.shape)} {reference.dtype}: " + _mismatch_fix(tensor, reference)
        )
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise _BadItem("has NaN or infinite pixel values.")
    if n_classes is not None and label is not None and not 0 <= label < n_classes:
        raise _BadItem(
            f"has label {label}, outside the dataset's {n_classes} classes [0, {n_classes})."
        )


_FIT_TRANSFORM_HINT = (
    " Put that transform at the head of the dataset's Compose (its deterministic head is "
    "applied while fitting), or pass it as fit_transform= (applied to the raw images while "
    "fitting; synthetic images are made in its output form)."
)


def _mismatch_fix(tensor: Tensor, reference: Tensor) -> str:
    """What makes ``tensor`` (C, H, W) like ``reference``: channels, size or dtype."""
    fixes = []
    if tensor.shape[0] != reference.shape[0]:
        fixes.append(
            "dataset images should share one number of channels (grey images among colour "
            "ones, or the reverse; not a size). Start the dataset's Compose with "
            "Grayscale(num_output_channels=3) for colour or Grayscale() for grey (or "
            "convert('RGB') in its loader), or pass fit_transform=torchvision.transforms."
            "Grayscale(num_output_channels=3): it is applied to the raw images while fitting"
        )
    if tensor.shape[1:] != reference.shape[1:]:
        fixes.append(
            "dataset images should share one shape. For images of different sizes start the "
            "dataset's Compose with a Resize((H, W)) (its deterministic head is applied while "
            "fitting), or pass fit_transform=torchvision.transforms.Resize((H, W)): it is "
            "applied to the raw images while fitting, and synthetic images are made at that size"
        )
    if tensor.dtype != reference.dtype:
        fixes.append(
            "dataset images should share one dtype (bit depth). Convert them to one in the "
            "transform; the library never rescales one to fit the other"
        )
    return "; ".join(fixes) + "."


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
