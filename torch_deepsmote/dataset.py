"""``OversampledDataset``: a map-style dataset of real items followed by DeepSMOTE ones.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

Indices ``[0, n_real)`` route to the wrapped dataset unchanged; indices ``[n_real, len)``
are synthetic images of a SMOTE plan drawn from ``(seed, epoch)``. One synthetic image goes
dataset -> synthesizer (``Synthesizer``: the plan's codes,
decoded, in the raw images' dtype and range) -> the dataset's
``ItemMaker`` (the raw item's form, the dataset's transforms
and the wrapper's). DataLoader calls ``OversampledDataset.__getitems__`` with a whole
batch of indices: one synthesizer call per batch.

The synthetic part is a ``SyntheticPool``: what to decode (the
plan of ``(seed, epoch)``), when to refresh it (``refresh``: all of it, a share, or none at
each ``set_epoch``), on which device, and whether the decoded set is kept in shared memory
(``pool``; ``'auto'`` when it fits). A pool moves decoding off the workers' CPUs on a GPU
machine, and decodes a fixed set (no ``set_epoch``, the paper's setting) once rather than
once per epoch; a partial refresh decodes only the share drawn anew.
"""

from __future__ import annotations

import numbers
import os
import tempfile
import warnings
from collections.abc import Sequence, Sized
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.vision import StandardTransform

from ._validation import (
    check_bool,
    check_bool_or_auto,
    check_choice,
    check_folder,
    check_non_negative_int,
    check_positive_float,
    writable_folder,
)
from .adapters import DatasetAdapter
from .deepsmote import DeepSMOTE
from .pool import SyntheticPool, check_pool_options
from .reading import DatasetImages, read_dataset
from .smote import SMOTEPlan, resolve_sampling_strategy
from .storage.image_store import new_store, remove_store
from .synthesis import Synthesizer

__all__ = ["OversampledDataset"]


class OversampledDataset(Dataset):
    """Real items, then synthetic DeepSMOTE items that balance the classes.

    Real items come back exactly as the wrapped dataset returns them. Synthetic items are
    made in the dataset's raw form (a PIL image of the same mode, a tensor or array of the
    same dtype and range; dict and tuple items with the same keys) and pass through the
    dataset's own transforms, so both look alike. While fitting, the dataset's transforms
    are set aside (random augmentation stays out of the autoencoder's data); a MONAI
    ``Compose`` keeps its deterministic head, a Hugging Face format is reset to raw rows.

    Args:
        dataset: A map-style dataset of (image, target) items, longer tuples or dicts
            (torchvision, ``Subset``, ``ConcatDataset``, ``TensorDataset``, Hugging Face,
            MONAI, your own), raw images of one shape (see ``fit_transform``).
        model: A [`DeepSMOTE`][torch_deepsmote.deepsmote.DeepSMOTE] fitted on this dataset
            (checked); ``None`` fits one.
        labels: (N,) class of every item; ``None``: the metadata, or the targets read once
            (class names numbered in sorted order, like ``LabelEncoder``). They must map
            one-to-one onto the items' own targets: a synthetic item carries the target
            its class's real items carry (a name, an int, a tensor or numpy value), so labels
            that merge or split the items' classes are refused, naming the first item that
            disagrees (relabel both kinds of item with the dataset's ``target_transform``).
        sampling_strategy: Images to add per class (imbalanced-learn's forms); ``None``:
            the model's.
        cache_dir: Folder of the HDF5 cache: a second run with the same data and settings
            loads it and trains nothing (one process fits at a time; the others wait).
        on_mismatch: ``'refit'`` rebuilds a stale or damaged cache with a warning;
            ``'raise'`` raises.
        on_bad_item: ``'raise'`` at the first unreadable or odd item, or ``'skip'`` such
            items (``n_real`` counts the kept ones, ``real_indices`` names them).
        lock_timeout: Seconds to wait for another process fitting the same cache.
        transform: Applied to synthetic images after the dataset's own transforms, and to
            real ones with ``transform_real=True``.
        target_transform: Likewise for targets.
        transform_real: Also apply ``transform`` / ``target_transform`` to real items.
        fit_transform: A deterministic transform of every raw image while fitting, e.g.
            ``Resize((64, 64))`` for images of mixed sizes; synthetic images are made in
            its output form.
        seed: Seed of the synthetic draws; epoch ``e`` draws from ``(seed, e)``. ``None``
            (the default): follow the seed of the sampler that calls
            [`set_epoch`][torch_deepsmote.dataset.OversampledDataset.set_epoch]
            ([`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler] and the
            library's other samplers pass theirs), else 0; so one sampler seed per run picks
            both the order and the synthetic set. An integer fixes the draws whatever the
            sampler's seed.
        device: Where the main process decodes; ``None``: the model's device. DataLoader
            workers decode on the CPU.
        decode_batch_size: Codes per decoder call.
        pool: Decode each epoch's synthetic set once, in the main process on the model's
            device, into shared memory the workers read (``set_epoch`` decodes the items
            that changed); ``False`` decodes per batch (on the CPU in DataLoader workers);
            ``'auto'`` pools when the set takes at most a quarter of the available memory
            (the rule of ``in_memory='auto'``). See ``SyntheticPool``.
        refresh: The share of the synthetic set drawn anew at each
            [`set_epoch`][torch_deepsmote.dataset.OversampledDataset.set_epoch], the rest kept: 1
            (the default) a fresh set per epoch, 0 one set throughout, 0.25 a quarter anew (a
            quarter of the decoding, with ``pool``). Which items, and their draws, follow from
            ``(seed, epoch)``: the same on every rank.
        in_memory: ``False`` streams the images through an HDF5 file in ``cache_dir``
            while fitting; ``'auto'`` does so when they would take over a quarter of the
            memory.
        num_workers: DataLoader workers that read the items while fitting (0: here).
        progress: Show progress bars.
        image_key: Where dict (or tuple) items hold the image; ``None`` finds it.
        label_key: Likewise for the target.
        extra_keys: ``'fill'`` (synthetic items carry the other fields with a marker such
            as -1, NaN or ``""``) or ``'drop'`` (both kinds of item lose them).
        **fit_params: [`DeepSMOTE`][torch_deepsmote.deepsmote.DeepSMOTE] arguments for the fit.

    Note:
        Which seed changes what. ``random_state`` (a fit parameter) changes the trained
        weights and is part of the cache key. The draws of the synthetic set (which codes
        are interpolated, and how far) come from ``(seed, epoch)``: the dataset's ``seed``
        when given, else the sampler's, else 0; a new seed draws new synthetic sets from the
        cached model without training. The sampler's ``seed`` also orders the items.

    Examples:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> X = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
        >>> y = torch.tensor([0] * 30 + [1] * 10)
        >>> ds = OversampledDataset(TensorDataset(X, y), latent_dim=4,
        ...                         hidden_channels=4, max_epochs=1,
        ...                         progress=False, random_state=0)
        >>> len(ds), ds.n_real, ds.is_synthetic(45)
        (60, 40, True)
        >>> image, target = ds[45]
        >>> image.shape, image.dtype, target
        (torch.Size([1, 8, 8]), torch.uint8, tensor(1))
    """

    def __init__(
        self,
        dataset: Any,
        model: DeepSMOTE | None = None,
        *,
        labels: Any = None,
        sampling_strategy: Any = None,
        cache_dir: str | os.PathLike | None = None,
        on_mismatch: str = "refit",
        on_bad_item: str = "raise",
        lock_timeout: float | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        transform_real: bool = False,
        fit_transform: Callable | None = None,
        seed: int | None = None,
        device: Any = None,
        decode_batch_size: int = 256,
        pool: bool | str = "auto",
        refresh: float = 1.0,
        in_memory: bool | str = "auto",
        num_workers: int = 0,
        progress: bool = True,
        image_key: Any = None,
        label_key: Any = None,
        extra_keys: str = "fill",
        **fit_params: Any,
    ) -> None:
        _check_args(dataset, model, cache_dir, on_mismatch, lock_timeout, in_memory, fit_params)
        check_non_negative_int("num_workers", num_workers)
        self.transform_real = check_bool("transform_real", transform_real)
        check_pool_options(seed, pool, refresh, decode_batch_size)  # before reading an item
        self.dataset, self.transform, self.target_transform = dataset, transform, target_transform
        # A fit_transform overrides the head of the dataset's Compose (see adapters).
        keep_head = fit_transform is None
        adapter = DatasetAdapter(dataset, image_key, label_key, extra_keys, keep_head)
        if adapter.transforms_differ():
            warnings.warn(
                "The wrapped datasets have different transforms; synthetic items use "
                "the first one's.",
                UserWarning,
                stacklevel=2,
            )
        read_args = (adapter, labels, fit_transform, progress, on_bad_item, num_workers)
        if model is None:
            read, model = _read_and_fit(
                *read_args,
                cache_dir=cache_dir,
                on_mismatch=on_mismatch,
                lock_timeout=lock_timeout,
                in_memory=in_memory,
                fit_params=fit_params,
            )
        else:
            # A declared pixel range is the model's and the read's: items outside it are bad.
            read = read_dataset(*read_args, value_range=model.value_range)
            _check_model(model, read)
        self.model = model
        # Position p < n_real serves dataset item real_indices[p] (all unless skipped).
        self.real_indices, self.n_real = read.indices, len(read.labels)
        self._adapter = adapter
        self._items = adapter.items(read.layout, read.image_format, read.target_format)
        self._labels = read.labels
        self._names = read.target_format.names()  # {label: class name} of string targets
        strategy = model.sampling_strategy if sampling_strategy is None else sampling_strategy
        self.synthetic = SyntheticPool(
            _synthesizer(model, device, read),
            resolve_sampling_strategy(strategy, self._labels),
            model.image_shape_,
            seed=seed,
            pool=pool,
            refresh=refresh,
            decode_batch_size=decode_batch_size,
        )
        self.targets = self._labels.tolist() + self.plan().labels.tolist()

    # ------------------------------------------------------------------ the synthetic set
    @property
    def synthesizer(self) -> Synthesizer:
        """What turns the plans into images (the model's, on ``device``)."""
        return self.synthetic.synthesizer

    @property
    def pool(self) -> bool:
        """Whether the synthetic set is decoded into shared memory (``pool=``)."""
        return self.synthetic.pooled

    @property
    def epoch(self) -> int:
        return self.synthetic.epoch

    @property
    def draw_seed(self) -> int:
        """The seed of the synthetic draws: ``seed``, else the sampler's, else 0."""
        return self.synthetic.draw_seed

    @property
    def seed(self) -> int | None:
        """The dataset's own seed (``None``: it follows the sampler's)."""
        return self.synthetic.seed

    def set_epoch(self, epoch: int, seed: int | None = None) -> None:
        """Draw the synthetic set of ``epoch`` (the same on every process): all of it anew,
        or the share ``refresh`` of it.

        Without a call the epoch-0 set is used throughout, as in the paper.

        Args:
            epoch: Non-negative epoch number, the same on every rank.
            seed: The calling sampler's seed (the library's samplers pass theirs): the
                draws follow it when the dataset was given no ``seed`` of its own.
        """
        self.synthetic.set_epoch(epoch, seed)

    def plan(self, epoch: int | None = None) -> SMOTEPlan:
        """The synthetic set of ``epoch`` (``None``: the current one): base, neighbour and
        step of every synthetic item, the same on every process for ``(draw_seed, epoch)``."""
        return self.synthetic.plan(epoch)

    # ------------------------------------------------------------------ metadata
    def __len__(self) -> int:
        return self.n_real + len(self.synthetic)

    @property
    def n_synthetic(self) -> int:
        return len(self.synthetic)

    @property
    def classes(self) -> list:
        """Class names: the items' own (string targets, in label order), the dataset's
        ``classes``, else the labels themselves."""
        if self._names is not None:
            return list(self._names.values())
        return self._adapter.classes() or torch.unique(self._labels).tolist()

    @property
    def class_to_idx(self) -> dict:
        """``{class name: label}``, as ``classes`` names them."""
        if self._names is not None:
            return {name: label for label, name in self._names.items()}
        return self._adapter.class_to_idx(self._labels)

    def _check_index(self, index: int) -> int:
        return int(self._check_indices([index])[0])

    def _check_indices(self, indices: Sequence[int]) -> Tensor:
        """(m,) int64 indices in ``[0, len)``; negative ones count from the end."""
        index = torch.tensor([_as_index(i, type(self).__name__) for i in indices])
        index = index.to(torch.int64).reshape(-1)
        n = len(self)
        bad = (index < -n) | (index >= n)
        if bad.any():
            raise IndexError(
                f"index {int(index[bad][0])} is out of range for a dataset of length {n}."
            )
        return torch.where(index < 0, index + n, index)

    def is_synthetic(self, index: int) -> bool:
        return self._check_index(index) >= self.n_real

    def origin(self, index: int) -> dict | None:
        """Where a synthetic item comes from; ``None`` for a real item.

        Returns:
            ``{"label", "base", "neighbor", "anchor", "lam"}``: its class, and the dataset
            indices and step of its code ``z_base + lam (z_neighbor - z_anchor)`` (in SMOTE
            the anchor is the base: an interpolation between base and neighbour).
        """
        index = self._check_index(index)
        if index < self.n_real:
            return None
        plan, pos = self.plan(), index - self.n_real
        rows = {
            "base": int(plan.base[pos]),
            "neighbor": int(plan.neighbor[pos]),
            "anchor": int(plan.anchors[pos]),
        }
        if self.real_indices is not None:  # model rows -> dataset indices
            rows = {key: int(self.real_indices[row]) for key, row in rows.items()}
        return {"label": int(plan.labels[pos]), **rows, "lam": float(plan.lam[pos])}

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Item ``index``, indexed like a sequence: an integer (Python, numpy, or a 0-d
        integer tensor), negative ones counted from the end.

        Raises:
            TypeError: Any other index (a float, bool, string, list or slice), its type named.
            IndexError: An index outside ``[-len, len)``.
        """
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        """Items for a batch of integer indices (a DataLoader's batch, as for
        ``__getitem__``); all synthetic ones from one synthesizer call."""
        index = self._check_indices(indices)
        out: list[Any] = [None] * len(index)
        slots = []  # of the synthetic items
        wrapper = StandardTransform(self.transform, self.target_transform)
        for k, i in enumerate(index.tolist()):
            if i < self.n_real:
                real = i if self.real_indices is None else int(self.real_indices[i])
                item = self.dataset[real]
                out[k] = self._items.real(item, wrapper if self.transform_real else None)
            else:
                slots.append(k)
        if slots:
            positions = index[slots] - self.n_real
            images = self.synthetic.images(positions)
            items = self._items.synthetic(images, self.plan().labels[positions], wrapper)
            for k, item in zip(slots, items):
                out[k] = item
        return out

    def raw_items(self, plan: SMOTEPlan) -> list[Any]:
        """The plan's synthetic items in the dataset's raw form, before any transform
        (what the dataset's ``__getitem__`` reads before transforming)."""
        images = self.synthesizer.images(plan, self.synthetic.decode_batch_size)
        return self._items.raw(images, plan.labels)

    def __repr__(self) -> str:
        """The wrapped dataset, its transforms, the wrapper's and the synthetic pool, in
        torchvision's form."""
        lines = [
            type(self).__name__,
            f"    Number of datapoints: {len(self)} ({self.n_real} real, "
            f"{self.n_synthetic} synthetic)",
            f"    Dataset: {_describe(self.dataset)}",
        ]
        owners = self._adapter.owners
        if owners:  # both kinds of item go through them (synthetic ones: the first's)
            own = owners[0].dataset
            transform, target = (
                getattr(own, "transform", None),
                getattr(own, "target_transform", None),
            )
            lines += _transform_lines("Dataset's {}", transform, target)
        which = "all items" if self.transform_real else "synthetic items"
        lines += _transform_lines(f"{{}} ({which})", self.transform, self.target_transform)
        lines.append(f"    Synthetic: {self.synthetic!r}")
        return "\n".join(lines)


def _as_index(index: Any, owner: str) -> int:
    """``index`` as a Python int, indexing like a sequence: Python and numpy integers and
    integer 0-d tensors; a bool, float, string, list or slice is a ``TypeError``."""
    if isinstance(index, (bool, np.bool_)):
        pass
    elif isinstance(index, numbers.Integral):
        return int(index)
    elif (
        isinstance(index, Tensor)
        and index.ndim == 0
        and not (index.is_floating_point() or index.is_complex() or index.dtype == torch.bool)
    ):
        return int(index)
    shown = (
        f" of shape {tuple(index.shape)} and dtype {index.dtype}"
        if isinstance(index, Tensor)
        else ""
    )
    raise TypeError(
        f"{owner} indices should be integers (negative ones count from the end), but got "
        f"{type(index).__name__}{shown}: {index!r}. Index one item at a time, or wrap the "
        "dataset in torch.utils.data.Subset for several."
    )


def _transform_lines(label: str, transform: Any, target_transform: Any) -> list[str]:
    """``label`` with "{}" for "transform" and "target transform", one line each that is set
    (a multi-line repr such as a Compose's indented below)."""
    lines = []
    for name, value in (("transform", transform), ("target transform", target_transform)):
        if value is not None:
            first, *rest = repr(value).splitlines()
            text = label.format(name)
            lines.append(f"    {text[0].upper()}{text[1:]}: {first}")
            lines += [f"    {line}" for line in rest]
    return lines


def _describe(dataset: Any) -> str:
    """A wrapped dataset in one line: its type and length (its repr may be a table)."""
    return f"{type(dataset).__name__} of {len(dataset)} items"


def _synthesizer(model: DeepSMOTE, device: Any, read: DatasetImages) -> Synthesizer:
    """The model's synthesizer on ``device``, making images of the dataset's form."""
    synthesizer = model.synthesizer_ if device is None else model.synthesizer_.to(device)
    if synthesizer.image_format != read.image_format:
        # A model fitted on arrays, serving this dataset's items (same dtype and range).
        synthesizer = synthesizer.replace(image_format=read.image_format)
    return synthesizer


def _check_args(
    dataset: Any,
    model: DeepSMOTE | None,
    cache_dir: Any,
    on_mismatch: str,
    lock_timeout: float | None,
    in_memory: Any,
    fit_params: dict,
) -> None:
    """Refuse what cannot work before reading a single item."""
    check_choice("on_mismatch", on_mismatch, ("refit", "raise"))
    check_folder("cache_dir", cache_dir)
    if lock_timeout is not None:
        check_positive_float("lock_timeout", lock_timeout, allow_zero=True)
    check_bool_or_auto("in_memory", in_memory)
    if in_memory is False and (cache_dir is None or model is not None):
        raise ValueError(
            "`in_memory=False` keeps the images in a file in `cache_dir` while fitting, "
            f"but got cache_dir={cache_dir!r} and "
            f"{'a fitted model' if model is not None else 'no model'}. Pass a cache_dir "
            "and no model, or in_memory=True."
        )
    if model is not None and (fit_params or cache_dir is not None):
        raise ValueError(
            "`model` should be None when fit options or `cache_dir` are given, but got a "
            "fitted model and "
            + ", ".join(sorted(fit_params) or ["cache_dir"])
            + ". Pass either a fitted model or the options to fit one."
        )
    if model is not None and not hasattr(model, "synthesizer_"):
        raise ValueError(
            "`model` should be a fitted DeepSMOTE, but got an unfitted one. "
            "Call model.fit_dataset(dataset) first, or pass model=None to fit here."
        )
    if not isinstance(dataset, Sized):
        raise TypeError(
            "`dataset` should be a map-style dataset with __len__, but got dataset of type "
            f"{type(dataset).__name__}. A Hugging Face IterableDataset (streaming=True) is "
            "not one: load it without streaming."
        )
    if len(dataset) == 0:
        raise ValueError("`dataset` should hold at least one item, but got len(dataset)=0.")


def _read_and_fit(
    adapter: DatasetAdapter,
    labels: Any,
    fit_transform: Callable | None,
    progress: bool,
    on_bad_item: str,
    num_workers: int,
    *,
    cache_dir: str | os.PathLike | None,
    on_mismatch: str,
    lock_timeout: float | None,
    in_memory: bool | str,
    fit_params: dict,
) -> tuple[DatasetImages, DeepSMOTE]:
    """Read the dataset (streaming its images through a scratch file in ``cache_dir`` when
    ``in_memory`` asks for it) and fit a model on it: the one fitting call."""
    model = DeepSMOTE(**{"progress": progress, **fit_params})  # checks the options first
    store = None
    if in_memory is False or (in_memory == "auto" and cache_dir is not None):
        # Per process: two processes may read the same dataset before one takes the lock.
        # A read-only cache folder (a complete shared cache) gets none: the temp folder.
        scratch = cache_dir if writable_folder(cache_dir) else tempfile.gettempdir()
        os.makedirs(scratch, exist_ok=True)
        store = new_store(scratch)
    try:
        read = read_dataset(
            adapter,
            labels,
            fit_transform,
            progress,
            on_bad_item,
            num_workers,
            store,
            in_memory=in_memory,
            value_range=model.value_range,
        )
        model.fit(
            read.images,
            read.labels,
            image_format=read.image_format,
            cache_dir=cache_dir,
            on_mismatch=on_mismatch,
            lock_timeout=lock_timeout,
        )
    finally:
        if store is not None:
            remove_store(store)
    return read, model


def _check_model(model: DeepSMOTE, read: DatasetImages) -> None:
    """Refuse a model fitted on other data: its plans would name rows of another set."""
    shape = tuple(read.images.shape[1:])
    if shape != model.image_shape_:
        raise ValueError(
            f"`model` should be fitted on images of the dataset's shape {shape}, but was "
            f"fitted on {model.image_shape_}."
        )
    if not model.image_format_.same_values(read.image_format):
        fmt = read.image_format
        raise ValueError(
            f"`model` should be fitted on images of the dataset's dtype and value range "
            f"({fmt.dtype} in [{fmt.low}, {fmt.high}]), but was fitted on "
            f"{model.image_format_.dtype} in [{model.image_format_.low}, "
            f"{model.image_format_.high}]. Fit it with model.fit_dataset(dataset)."
        )
    try:
        model.check_fitted_on(read.images, read.labels)
    except ValueError as error:
        raise ValueError(
            f"`model` should be fitted on this dataset, but {error} Its synthetic images and "
            "origin() indices would come from another set. Fit it with "
            "model.fit_dataset(dataset), or pass model=None."
        ) from error
