"""``OversampledDataset``: a map-style dataset of real items followed by DeepSMOTE ones.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

Indices ``[0, n_real)`` route to the wrapped dataset unchanged; indices ``[n_real, len)``
are synthetic images of a SMOTE plan drawn from ``(seed, epoch)``. One synthetic image goes
dataset -> synthesizer (:class:`~torch_deepsmote.synthesis.Synthesizer`: the plan's codes,
decoded, in the raw images' dtype and range) -> the dataset's
:class:`~torch_deepsmote.adapters.ItemMaker` (the raw item's form, the dataset's transforms
and the wrapper's). DataLoader calls :meth:`OversampledDataset.__getitems__` with a whole
batch of indices: one synthesizer call per batch.

A pool (``pool=True``, or ``'auto'`` when the set fits) moves decoding off the workers'
CPUs on a GPU machine, and decodes a fixed set (no ``set_epoch``, the paper's setting) once
rather than once per epoch.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import warnings
from collections.abc import Sequence, Sized
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info
from torchvision.datasets.vision import StandardTransform

from ._validation import (
    check_bool,
    check_choice,
    check_folder,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
    writable_folder,
)
from .adapters import DatasetAdapter
from .deepsmote import DeepSMOTE
from .reading import DatasetImages, available_memory, read_dataset
from .smote import SMOTEPlan, resolve_sampling_strategy
from .storage.image_store import new_store, remove_store

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
        model: A :class:`DeepSMOTE` fitted on this dataset (checked); ``None`` fits one.
        labels: (N,) class of every item; ``None``: the metadata, or the targets read once.
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
        seed: Seed of the synthetic draws; epoch ``e`` draws from ``(seed, e)``.
        device: Where the main process decodes; ``None``: the model's device. DataLoader
            workers decode on the CPU.
        decode_batch_size: Codes per decoder call.
        pool: Decode each epoch's synthetic set once, in the main process on the model's
            device, into shared memory the workers read (``set_epoch`` refills it);
            ``False`` decodes per batch (on the CPU in DataLoader workers); ``'auto'`` pools
            when the set takes at most a quarter of the available memory.
        in_memory: ``False`` streams the images through an HDF5 file in ``cache_dir``
            while fitting; ``'auto'`` does so when they would take over a quarter of the
            memory.
        num_workers: DataLoader workers that read the items while fitting (0: here).
        progress: Show progress bars.
        image_key: Where dict (or tuple) items hold the image; ``None`` finds it.
        label_key: Likewise for the target.
        extra_keys: ``'fill'`` (synthetic items carry the other fields with a marker such
            as -1, NaN or ``""``) or ``'drop'`` (both kinds of item lose them).
        **fit_params: :class:`DeepSMOTE` arguments for the fit.

    NOTE: two seeds, on purpose. ``random_state`` (a fit parameter) changes the trained
    weights and is part of the cache key; ``seed`` only chooses the synthetic draws, so a
    new ``seed`` draws new synthetic sets from the cached model without training.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> X = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
        >>> y = torch.tensor([0] * 30 + [1] * 10)
        >>> ds = OversampledDataset(TensorDataset(X, y), latent_dim=4, hidden_channels=4,
        ...                         max_epochs=1, progress=False, random_state=0)
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
        seed: int = 0,
        device: Any = None,
        decode_batch_size: int = 256,
        pool: bool | str = "auto",
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
        self.seed = check_non_negative_int("seed", seed)
        self.decode_batch_size = check_positive_int("decode_batch_size", decode_batch_size)
        if isinstance(pool, str) and pool != "auto":
            raise ValueError(f"`pool` should be True, False or 'auto', but got pool={pool!r}.")
        if not isinstance(pool, str):
            check_bool("pool", pool)
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
        read_options = dict(labels=labels, fit_transform=fit_transform, progress=progress)
        read_options.update(on_bad_item=on_bad_item, num_workers=num_workers)
        if model is None:
            fit_options = dict(cache_dir=cache_dir, on_mismatch=on_mismatch)
            fit_options.update(lock_timeout=lock_timeout, in_memory=in_memory)
            read, model = _read_and_fit(adapter, read_options, fit_options, progress, fit_params)
        else:
            read = read_dataset(dataset, **read_options, adapter=adapter)
            _check_model(model, read)
        self._serve(model, read, adapter, sampling_strategy, device, pool)

    def _serve(
        self,
        model: DeepSMOTE,
        read: DatasetImages,
        adapter: DatasetAdapter,
        sampling_strategy: Any,
        device: Any,
        pool: bool | str,
    ) -> None:
        """Keep what serving needs: the synthesizer, the item maker, labels, counts and
        the pool of decoded images."""
        self.model = model
        # Position p < n_real serves dataset item real_indices[p] (all unless skipped).
        self.real_indices, self.n_real = read.indices, len(read.labels)
        synthesizer = model.synthesizer_ if device is None else model.synthesizer_.to(device)
        if synthesizer.image_format != read.image_format:
            # A model fitted on arrays, serving this dataset's items (same dtype and range).
            synthesizer = synthesizer.replace(image_format=read.image_format)
        self.synthesizer = synthesizer
        self._adapter = adapter
        self._items = adapter.items(read.layout, read.image_format, read.target_format)
        self._labels = read.labels
        strategy = model.sampling_strategy if sampling_strategy is None else sampling_strategy
        self._n_new = resolve_sampling_strategy(strategy, self._labels)
        # The epoch lives in shared memory so persistent DataLoader workers see set_epoch.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._plan_cache: tuple[int, SMOTEPlan] | None = None
        self.targets = self._labels.tolist() + self.plan().labels.tolist()
        dtype = read.image_format.torch_dtype
        shape = (self.n_synthetic, *model.image_shape_)
        self.pool = pool if isinstance(pool, bool) else _pool_fits(shape, dtype)
        if self.pool:
            # Shared memory, allocated once and refilled in place: forked, spawned and
            # persistent workers all read the pool the main process fills.
            self._pool = torch.empty(shape, dtype=dtype)
            self._pool.share_memory_()
            self._pool_epoch = torch.full((1,), -1, dtype=torch.int64).share_memory_()
            self._fill_pool()

    # ------------------------------------------------------------------ epochs and plans
    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh synthetic set for ``epoch`` (the same on every process).

        Without a call the epoch-0 set is used throughout, as in the paper.
        """
        self._epoch.fill_(check_non_negative_int("epoch", epoch))
        if self.pool and get_worker_info() is None:
            self._fill_pool()

    def _fill_pool(self) -> None:
        epoch = int(self._epoch[0])
        if int(self._pool_epoch[0]) == epoch:
            return
        self._pool_epoch.fill_(-1)  # never read half-filled
        plan, step = self.plan(), self.decode_batch_size
        for first in range(0, self.n_synthetic, step):
            last = min(first + step, self.n_synthetic)
            self._pool[first:last] = self.synthesizer.images(plan[first:last], step)
        self._pool_epoch.fill_(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def plan(self, epoch: int | None = None) -> SMOTEPlan:
        """The synthetic set of ``epoch`` (``None``: the current one): base, neighbour and
        step of every synthetic item, the same on every process for ``(seed, epoch)``."""
        epoch = int(self._epoch[0]) if epoch is None else check_non_negative_int("epoch", epoch)
        if self._plan_cache is None or self._plan_cache[0] != epoch:
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            plan = self.synthesizer.plan(self._n_new, generator)
            if epoch != int(self._epoch[0]):
                return plan  # another epoch's: the current one stays cached
            self._plan_cache = (epoch, plan)
        return self._plan_cache[1]

    # ------------------------------------------------------------------ metadata
    def __len__(self) -> int:
        return self.n_real + sum(self._n_new.values())

    @property
    def n_synthetic(self) -> int:
        return len(self) - self.n_real

    @property
    def classes(self) -> list:
        return self._adapter.classes() or torch.unique(self._labels).tolist()

    @property
    def class_to_idx(self) -> dict:
        return self._adapter.class_to_idx(self._labels)

    def _check_index(self, index: int) -> int:
        return int(self._check_indices([index])[0])

    def _check_indices(self, indices: Sequence[int]) -> Tensor:
        """(m,) int64 indices in ``[0, len)``; negative ones count from the end."""
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
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
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        """Items for a batch of indices; all synthetic ones from one synthesizer call."""
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
            plan = self.plan()[index[slots] - self.n_real]
            items = self._items.synthetic(self._images(plan, index[slots]), plan.labels, wrapper)
            for k, item in zip(slots, items):
                out[k] = item
        return out

    def _images(self, plan: SMOTEPlan, index: Tensor) -> Tensor:
        """The plan's images: from the pool when it holds this epoch, else decoded."""
        if self.pool and int(self._pool_epoch[0]) == int(self._epoch[0]):
            return self._pool[index - self.n_real]
        return self.synthesizer.images(plan, self.decode_batch_size)

    def raw_items(self, plan: SMOTEPlan) -> list[Any]:
        """The plan's synthetic items in the dataset's raw form, before any transform
        (what the dataset's ``__getitem__`` reads before transforming)."""
        return self._items.raw(self.synthesizer.images(plan, self.decode_batch_size), plan.labels)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_real={self.n_real}, n_synthetic={self.n_synthetic}, "
            f"epoch={self.epoch}, dataset={type(self.dataset).__name__})"
        )


def _epoch_seed(seed: int, epoch: int) -> int:
    # Mix (seed, epoch) so that (0, 1) and (1, 0) give unrelated plans.
    digest = hashlib.sha256(f"deepsmote-plan:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def _pool_fits(shape: tuple, dtype: torch.dtype, share: float = 0.25) -> bool:
    """Whether a pool of ``shape`` takes at most ``share`` of the available memory (shared
    with the other processes torchrun started on this machine)."""
    local_ranks = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1), 1)
    needed = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    available = available_memory()
    return available is None or needed <= share * available / local_ranks


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
    if not (isinstance(in_memory, bool) or in_memory == "auto"):
        raise ValueError(
            f"`in_memory` should be True, False or 'auto', but got in_memory={in_memory!r}."
        )
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
    adapter: DatasetAdapter, read_options: dict, fit_options: dict, progress: bool, params: dict
) -> tuple[DatasetImages, DeepSMOTE]:
    """Read the dataset (streaming its images through a scratch file in ``cache_dir`` when
    ``in_memory`` asks for it) and fit a model on it: the one fitting call."""
    cache_dir, in_memory = fit_options.pop("cache_dir"), fit_options.pop("in_memory")
    model = DeepSMOTE(**{"progress": progress, **params})  # checks the options first
    store = None
    if in_memory is False or (in_memory == "auto" and cache_dir is not None):
        # Per process: two processes may read the same dataset before one takes the lock.
        # A read-only cache folder (a complete shared cache) gets none: the temp folder.
        scratch = cache_dir if writable_folder(cache_dir) else tempfile.gettempdir()
        os.makedirs(scratch, exist_ok=True)
        store = new_store(scratch)
    try:
        read = read_dataset(
            adapter.dataset, **read_options, store=store, in_memory=in_memory, adapter=adapter
        )
        model.fit(
            read.images,
            read.labels,
            image_format=read.image_format,
            cache_dir=cache_dir,
            **fit_options,
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
