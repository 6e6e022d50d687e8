"""``OversampledDataset``: a map-style dataset of real items followed by DeepSMOTE ones.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

Indices ``[0, n_real)`` route to the wrapped dataset unchanged; indices ``[n_real, len)``
are synthetic images of a SMOTE plan drawn from ``(seed, epoch)``. DataLoader calls
:meth:`OversampledDataset.__getitems__` with a whole batch of indices; its synthetic items
come from one call of the model's :class:`~torch_deepsmote.synthesis.Synthesizer`, which
decodes them, and go through the wrapped dataset's transforms like real raw items.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence, Sized
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from ._datasets import (
    DatasetImages,
    PairTransform,
    find_class_to_idx,
    find_classes,
    item_transform,
    read_dataset,
    transform_owners,
)
from ._validation import (
    check_bool,
    check_choice,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
)
from .deepsmote import DeepSMOTE
from .smote import SMOTEPlan, resolve_sampling_strategy
from .storage.image_store import new_store, remove_store

__all__ = ["OversampledDataset"]


def _epoch_seed(seed: int, epoch: int) -> int:
    # Mix (seed, epoch) so that (0, 1) and (1, 0) give unrelated plans.
    digest = hashlib.sha256(f"deepsmote-plan:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


class OversampledDataset(Dataset):
    """Real items, then synthetic DeepSMOTE items that balance the classes.

    Args:
        dataset: A map-style dataset of (image, target) items, longer tuples or dicts:
            torchvision datasets (PIL or tensor images), ``Subset``, ``ConcatDataset``,
            ``ImageFolder``, ``TensorDataset``, a Hugging Face ``datasets.Dataset``, a MONAI
            dict dataset, or a user's own. Raw images must share one shape (see
            ``fit_transform``).
        model: A :class:`DeepSMOTE` fitted on this dataset (``model.fit_dataset(dataset)``;
            checked: same images, labels, dtype and value range); ``None`` fits one on
            ``dataset`` (``fit_params``).
        labels: (N,) class of every item; found from ``.targets`` / ``.labels`` (through
            ``Subset`` and ``ConcatDataset``) or by reading the items once when omitted.
        sampling_strategy: How many images to add per class (imbalanced-learn's forms);
            ``None`` uses the model's.
        cache_dir: Folder for the HDF5 cache. A second run with the same dataset and settings
            loads it and trains nothing; a changed dataset or setting is detected. Changing
            ``k_neighbors``, ``knn`` or ``residual`` trains nothing either: the neighbour
            table or the residuals are rebuilt from the cached model and stored with it.
            One process at a time fits a cache: a second one started on the same
            ``cache_dir`` waits for the first (a file lock) and then loads its result.
        on_mismatch: ``'refit'`` (default) rebuilds a stale or damaged cache with a warning;
            ``'raise'`` raises instead.
        on_bad_item: ``'raise'`` (default) stops at the first item that cannot be read or
            does not fit (another shape or dtype, NaN pixels, a label outside ``classes``),
            naming its index; ``'skip'`` leaves such items out of the fit and of the epoch
            (``n_real`` counts the kept ones; ``origin()`` and ``real_indices`` name dataset
            indices) and warns with how many and which.
        lock_timeout: Seconds to wait for another process fitting the same ``cache_dir``;
            ``None`` (default) waits as long as it takes, a number raises ``TimeoutError``
            naming the lock file after that long.
        transform: Applied to synthetic images (after the wrapped dataset's own transform),
            and to real ones when ``transform_real`` is set.
        target_transform: Likewise for targets.
        transform_real: Also apply ``transform`` / ``target_transform`` to real items.
        fit_transform: A deterministic transform applied to every raw image while fitting,
            e.g. ``torchvision.transforms.Resize((64, 64))`` for an image folder of mixed
            sizes (random augmentation is set aside while fitting, so a ``Resize`` in the
            dataset's own transform does not apply then). Synthetic images are made in its
            output form and then go through the dataset's transform like raw images.
        seed: Seed of the synthetic draw; epoch ``e`` uses a plan drawn from ``(seed, e)``.
        device: Where the main process decodes; ``None`` is the model's device. DataLoader
            workers always decode on the CPU (a forked worker must not touch CUDA).
        decode_batch_size: Codes per decoder call.
        pool: Decode each epoch's synthetic images once, in the main process, into a
            shared-memory tensor that every DataLoader worker reads (``set_epoch`` refills
            it). Items then cost what real ones do; the dataset's transforms still run per
            item. Memory: one copy of the synthetic set in the images' dtype. ``False``
            decodes per batch, on demand, in whichever process asks.
        in_memory: ``True`` holds the training images in one (N, C, H, W) tensor while
            fitting (fastest for small data), and the codes and residuals in memory.
            ``False`` writes the images, as they are read, into an HDF5 file in
            ``cache_dir`` (needed then), from which training, encoding and the residuals
            read a batch at a time; the residuals go to a file too and then live in the
            cache, read by rows for each batch, so memory does not grow with N (the files
            are removed once the model is fitted). Same weights, codes and items either
            way. ``'auto'`` (default): ``False`` where a ``cache_dir`` is given and the
            images and their float16 residuals would take more than a quarter of the
            available memory, else ``True``.
        num_workers: DataLoader worker processes that read (and decode) the dataset's items
            in parallel while fitting, in index order; 0 reads them in this process.
        progress: Show progress bars while reading and fitting.
        image_key: Where dict items hold the image (a key; a position for tuple items).
            ``None`` takes the one of ``image``, ``img``, ``pixel_values`` an item has (a
            Hugging Face dataset's one ``Image`` column), or position 0.
        label_key: Likewise for the target: ``label``, ``labels``, ``target`` (the one
            ``ClassLabel`` column), or position 1.
        extra_keys: The other fields of dict and tuple items (a file name, an id).
            ``'fill'`` (default): synthetic items carry them with a marker of the real
            value's type (-1 for integers, 0 if unsigned, NaN for floats, ``False``,
            ``""``, a tensor or array of the same shape and dtype so filled, ``None`` for
            anything else); real items are untouched. ``'drop'``: left out of synthetic items
            and removed from real ones, so both hold the image and the label only.
        **fit_params: :class:`DeepSMOTE` arguments used when fitting (``max_epochs``,
            ``random_state``, ...).

    How fitting reads the data (the same way as :meth:`DeepSMOTE.fit_dataset`): while
    reading, the wrapped datasets' ``transform``, ``target_transform`` and ``transforms``
    attributes (torchvision's convention) are set to ``None`` and restored afterwards, so
    the autoencoder sees raw images free of random augmentation. Synthetic images are made
    in that raw form (a PIL image of the same mode, a tensor or an array of the same dtype
    and range) and then pass through the wrapped dataset's own transforms (its joint
    ``transforms``, or ``transform`` and ``target_transform``), so real and synthetic items
    come out alike. A dataset without a ``transform`` attribute is read as it is: its items
    should not be randomly augmented. A MONAI dataset's ``Compose`` keeps its deterministic
    head while fitting (loading, scaling) and sets aside its random tail, which synthetic
    items then get; a Hugging Face dataset's format (``set_transform``, ``with_transform``,
    ``set_format``) is reset to raw rows while fitting and formats synthetic rows
    (:mod:`torch_deepsmote._transforms`). Synthetic dict items have the real items' keys in
    the same order, with values of the same types.

    Copies: ``pickle`` and ``copy.deepcopy`` give a dataset with its model that serves the
    same items (decoding on the CPU in DataLoader workers; with ``cache_dir``, reading the
    rows each batch needs from the cache file, which must still be the one it was built
    from).

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
        pool: bool = False,
        in_memory: bool | str = "auto",
        num_workers: int = 0,
        progress: bool = True,
        image_key: Any = None,
        label_key: Any = None,
        extra_keys: str = "fill",
        **fit_params: Any,
    ) -> None:
        check_choice("on_mismatch", on_mismatch, ("refit", "raise"))
        if lock_timeout is not None:
            check_positive_float("lock_timeout", lock_timeout, allow_zero=True)
        self.transform_real = check_bool("transform_real", transform_real)
        self.seed = check_non_negative_int("seed", seed)
        self.decode_batch_size = check_positive_int("decode_batch_size", decode_batch_size)
        self.pool = check_bool("pool", pool)
        if not (isinstance(in_memory, bool) or in_memory == "auto"):
            raise ValueError(
                f"`in_memory` should be True, False or 'auto', but got in_memory={in_memory!r}."
            )
        check_non_negative_int("num_workers", num_workers)
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
        self.dataset = dataset
        self.transform = transform
        self.target_transform = target_transform
        self.n_real = len(dataset)
        if self.n_real == 0:
            raise ValueError("`dataset` should hold at least one item, but got len(dataset)=0.")

        owners = transform_owners(dataset)
        if any(
            getattr(o, "transform", None) is not getattr(owners[0], "transform", None)
            for o in owners[1:]
        ):
            warnings.warn(
                "The wrapped datasets have different transforms; synthetic items use "
                "the first one's.",
                UserWarning,
                stacklevel=2,
            )

        store = None
        if in_memory is False or (in_memory == "auto" and cache_dir is not None and model is None):
            os.makedirs(cache_dir, exist_ok=True)
            # Per process: two processes may read the same dataset before one takes the lock.
            store = new_store(cache_dir)
        try:
            read = read_dataset(
                dataset,
                labels,
                fit_transform,
                progress,
                on_bad_item,
                num_workers,
                store,
                in_memory=in_memory,
                image_key=image_key,
                label_key=label_key,
                extra_keys=extra_keys,
            )
            # Position p < n_real serves dataset item real_indices[p] (all unless skipped).
            self.real_indices = read.indices
            self.n_real = len(read.labels)
            if model is None:
                model = DeepSMOTE(**{"progress": progress, **fit_params})  # checks options
                model.fit(
                    read.images,
                    read.labels,
                    image_format=read.image_format,
                    cache_dir=cache_dir,
                    on_mismatch=on_mismatch,
                    lock_timeout=lock_timeout,
                )
            else:
                _check_model(model, read)
        finally:
            if store is not None:
                remove_store(store)
        self.model = model
        synthesizer = model.synthesizer_ if device is None else model.synthesizer_.to(device)
        if synthesizer.image_format != read.image_format:
            # A model fitted on arrays, serving this dataset's items (same dtype and range).
            synthesizer = synthesizer.replace(image_format=read.image_format)
        self.synthesizer = synthesizer
        self._target_format = read.target_format
        self._layout = read.layout
        # Synthetic items get the transforms of the first wrapped dataset that has them.
        self._item_transform = item_transform(owners[0], read.layout) if owners else None
        self._labels = read.labels
        self._n_new = resolve_sampling_strategy(
            model.sampling_strategy if sampling_strategy is None else sampling_strategy,
            self._labels,
        )
        # The epoch lives in shared memory so persistent DataLoader workers see set_epoch.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._plan_cache: tuple[int, SMOTEPlan] | None = None
        self.targets = self._labels.tolist() + self._plan().labels.tolist()
        if self.pool:
            # Shared memory, allocated once and refilled in place: forked, spawned and
            # persistent workers all read the pool the main process fills.
            dtype = read.image_format.torch_dtype
            self._pool = torch.empty(self.n_synthetic, *model.image_shape_, dtype=dtype)
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
        plan, step = self._plan(), self.decode_batch_size
        for first in range(0, self.n_synthetic, step):
            last = min(first + step, self.n_synthetic)
            self._pool[first:last] = self.synthesizer.images(plan[first:last], step)
        self._pool_epoch.fill_(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def _plan(self) -> SMOTEPlan:
        epoch = int(self._epoch[0])
        if self._plan_cache is None or self._plan_cache[0] != epoch:
            self._plan_cache = (epoch, self._plan_for(epoch))
        return self._plan_cache[1]

    def _plan_for(self, epoch: int) -> SMOTEPlan:
        """The synthetic set of ``epoch`` (one plan per ``(seed, epoch)``, on every process)."""
        if self._plan_cache is not None and self._plan_cache[0] == epoch:
            return self._plan_cache[1]
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        return self.synthesizer.plan(self._n_new, generator)

    # ------------------------------------------------------------------ metadata
    def __len__(self) -> int:
        return self.n_real + sum(self._n_new.values())

    @property
    def n_synthetic(self) -> int:
        return len(self) - self.n_real

    @property
    def _label_key(self) -> Any:
        return None if self._layout.kind == "pair" else self._layout.label_key

    @property
    def classes(self) -> list:
        found = find_classes(self.dataset, self._label_key)
        return found or torch.unique(self._labels).tolist()

    @property
    def class_to_idx(self) -> dict:
        return find_class_to_idx(self.dataset, self._labels, self._label_key)

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
        plan, pos = self._plan(), index - self.n_real
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
        for k, i in enumerate(index.tolist()):
            if i < self.n_real:
                out[k] = self._real_item(i)
            else:
                slots.append(k)
        if slots:
            items = self._synthetic_items(index[slots] - self.n_real)
            for k, item in zip(slots, items):
                out[k] = item
        return out

    @property
    def _wrapper_transform(self) -> PairTransform:
        # Built on use, so that a transform set after construction applies too.
        return PairTransform(self.transform, self.target_transform)

    def _real_item(self, index: int) -> Any:
        if self.real_indices is not None:
            index = int(self.real_indices[index])
        item = self._layout.strip(self.dataset[index])
        if self.transform_real:
            item = self._layout.apply(item, self._wrapper_transform, "transform")
        return item

    def _synthetic_items(self, positions: Tensor) -> list[Any]:
        plan = self._plan()[positions]
        images = None
        if self.pool and int(self._pool_epoch[0]) == int(self._epoch[0]):
            images = self.synthesizer.image_format.items(self._pool[positions])
        items = self._raw_synthetic_items(plan, images)
        if self._item_transform is not None:
            items = [self._layout.strip(item) for item in self._item_transform(items)]
        if self.transform is not None or self.target_transform is not None:
            wrapper = self._wrapper_transform
            items = [self._layout.apply(item, wrapper, "transform") for item in items]
        return items

    def _raw_synthetic_items(self, plan: SMOTEPlan, images: list | None = None) -> list[Any]:
        """The plan's items in the dataset's raw form (before its transforms): its images
        decoded unless given, in the raw items' layout."""
        if images is None:
            images = self.synthesizer.items(plan, self.decode_batch_size)
        targets = self._target_format.make(plan.labels)
        return [self._layout.build(image, target) for image, target in zip(images, targets)]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_real={self.n_real}, n_synthetic={self.n_synthetic}, "
            f"epoch={self.epoch}, dataset={type(self.dataset).__name__})"
        )


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
