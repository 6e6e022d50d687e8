"""``OversampledDataset``: a map-style dataset of real items followed by DeepSMOTE ones.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

Indices ``[0, n_real)`` route to the wrapped dataset unchanged; indices ``[n_real, len)``
are synthetic images decoded from a SMOTE plan drawn from ``(seed, epoch)``. DataLoader
calls :meth:`OversampledDataset.__getitems__` with a whole batch of indices, so each batch
costs one decoder call, not one per image.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from ._images import ImageFormat, as_image_tensor, as_label_tensor
from ._introspect import find_classes, find_labels, raw_items, transform_owners
from ._items import ItemForm, image_to_tensor, read_dataset, target_to_int
from ._model_cache import fit_or_load, read_state
from ._persistence import model_state
from ._validation import check_bool, check_choice, check_non_negative_int, check_positive_int
from .cache import CacheFile
from .deepsmote import DeepSMOTE
from .latents import decode_interpolated
from .models import Decoder
from .smote import SMOTEPlan, plan_synthetic, resolve_sampling_strategy

__all__ = ["OversampledDataset"]


def _epoch_seed(seed: int, epoch: int) -> int:
    # Mix (seed, epoch) so that (0, 1) and (1, 0) give unrelated plans.
    digest = hashlib.sha256(f"deepsmote-plan:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


class OversampledDataset(Dataset):
    """Real items, then synthetic DeepSMOTE items that balance the classes.

    Args:
        dataset: A map-style dataset of (image, target) items: torchvision datasets (PIL or
            tensor images), ``Subset``, ``ConcatDataset``, ``ImageFolder``, ``TensorDataset``
            or a user's own. Images must share one shape (add a Resize transform otherwise).
        model: A fitted :class:`DeepSMOTE`; ``None`` fits one on ``dataset`` (``fit_params``).
        labels: (N,) class of every item; found from ``.targets`` / ``.labels`` (through
            ``Subset`` and ``ConcatDataset``) or by reading the items once when omitted.
        sampling_strategy: How many images to add per class (imbalanced-learn's forms);
            ``None`` uses the model's.
        cache_dir: Folder for the HDF5 cache. A second run with the same dataset and settings
            loads it and trains nothing; a changed dataset or setting is detected. Changing
            ``k_neighbors``, ``knn`` or ``residual`` trains nothing either: the neighbour
            table or the residuals are rebuilt from the cached model and stored with it.
        on_mismatch: ``'refit'`` (default) rebuilds a stale or damaged cache with a warning;
            ``'raise'`` raises instead.
        transform: Applied to synthetic images (after the wrapped dataset's own transform),
            and to real ones when ``transform_real`` is set.
        target_transform: Likewise for targets.
        transform_real: Also apply ``transform`` / ``target_transform`` to real items.
        seed: Seed of the synthetic draw; epoch ``e`` uses a plan drawn from ``(seed, e)``.
        device: Where the main process decodes; ``None`` is the model's device. DataLoader
            workers always decode on the CPU (a forked worker must not touch CUDA).
        decode_batch_size: Codes per decoder call.
        pool: Decode each epoch's synthetic images once, in the main process, into a
            shared-memory tensor that every DataLoader worker reads (``set_epoch`` refills
            it). Items then cost what real ones do; the dataset's transforms still run per
            item. Memory: one copy of the synthetic set in the images' dtype. ``False``
            decodes per batch, on demand, in whichever process asks.
        progress: Show progress bars while reading and fitting.
        **fit_params: :class:`DeepSMOTE` arguments used when fitting (``max_epochs``,
            ``random_state``, ...).

    How fitting reads the data: while reading, the wrapped datasets' ``transform``,
    ``target_transform`` and ``transforms`` attributes (torchvision's convention) are set
    to ``None`` and restored afterwards, so the autoencoder sees raw images free of random
    augmentation. Synthetic images are made in that raw form (a PIL image of the same mode,
    a tensor or an array of the same dtype and range) and then pass through the wrapped
    dataset's own transform, so real and synthetic items come out alike. A dataset without
    a ``transform`` attribute is read as it is: its items should not be randomly augmented.

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
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        transform_real: bool = False,
        seed: int = 0,
        device: Any = None,
        decode_batch_size: int = 256,
        pool: bool = False,
        progress: bool = True,
        **fit_params: Any,
    ) -> None:
        check_choice("on_mismatch", on_mismatch, ("refit", "raise"))
        self.transform_real = check_bool("transform_real", transform_real)
        self.seed = check_non_negative_int("seed", seed)
        self.decode_batch_size = check_positive_int("decode_batch_size", decode_batch_size)
        self.pool = check_bool("pool", pool)
        if model is not None and (fit_params or cache_dir is not None):
            raise ValueError(
                "`model` should be None when fit options or `cache_dir` are given, but got a "
                "fitted model and "
                + ", ".join(sorted(fit_params) or ["cache_dir"])
                + ". Pass either a fitted model or the options to fit one."
            )
        if model is not None and not hasattr(model, "latents_"):
            raise ValueError(
                "`model` should be a fitted DeepSMOTE, but got an unfitted one. "
                "Call model.fit(...) first, or pass model=None to fit here."
            )
        self.dataset = dataset
        self.transform = transform
        self.target_transform = target_transform
        self.n_real = len(dataset)
        if self.n_real == 0:
            raise ValueError("`dataset` should hold at least one item, but got len(dataset)=0.")

        owners = transform_owners(dataset)
        # Synthetic items get the transform of the first wrapped dataset that has one.
        self._item_transform = getattr(owners[0], "transform", None) if owners else None
        self._item_target_transform = (
            getattr(owners[0], "target_transform", None) if owners else None
        )
        if any(getattr(o, "transform", None) is not self._item_transform for o in owners[1:]):
            warnings.warn(
                "The wrapped datasets have different transforms; synthetic items use "
                "the first one's.",
                UserWarning,
                stacklevel=2,
            )

        with raw_items(dataset):
            raw_image, raw_target = dataset[0]
            self._form = ItemForm.of(raw_image, raw_target)
            found = find_labels(dataset) if labels is None else labels
            if found is None:  # one pass over the (raw) targets
                found = [target_to_int(dataset[i][1]) for i in range(self.n_real)]
            self._labels = as_label_tensor(found, self.n_real, "labels")
            if model is None:
                model = self._fit_or_load(cache_dir, on_mismatch, progress, fit_params)
            elif tuple(image_to_tensor(raw_image).shape) != model.image_shape_:
                raise ValueError(
                    f"`model` should be fitted on images of the dataset's shape "
                    f"{tuple(image_to_tensor(raw_image).shape)}, but was fitted on "
                    f"{model.image_shape_}."
                )
        self.model = model
        self._residual = model.residual
        self._n_new = resolve_sampling_strategy(
            model.sampling_strategy if sampling_strategy is None else sampling_strategy,
            self._labels,
        )
        self._neighbors, self._n_neighbors = model.neighbors_, dict(model.n_neighbors_)
        self._model_labels = model.labels_
        self._device = torch.device(device) if device is not None else model.device
        # The epoch lives in shared memory so persistent DataLoader workers see set_epoch.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._plan_cache: tuple[int, SMOTEPlan] | None = None
        self._synth: dict | None = None
        if self._device.type == "cuda" or model.device.type == "cuda":
            # Forked workers inherit this object but must not touch CUDA: keep a CPU copy.
            self._snapshot = _snapshot(model)
        self.targets = self._labels.tolist() + self._plan().labels.tolist()
        if self.pool:
            # Shared memory, allocated once and refilled in place: forked, spawned and
            # persistent workers all read the pool the main process fills.
            dtype = getattr(torch, model.image_format_.dtype)
            self._pool = torch.empty(self.n_synthetic, *model.image_shape_, dtype=dtype)
            self._pool.share_memory_()
            self._pool_epoch = torch.full((1,), -1, dtype=torch.int64).share_memory_()
            self._fill_pool()

    # ------------------------------------------------------------------ fitting / cache
    def _fit_or_load(self, cache_dir, on_mismatch, progress, fit_params) -> DeepSMOTE:
        model = DeepSMOTE(**{"progress": progress, **fit_params})  # checks options first
        images, _ = read_dataset(self.dataset, progress=model.progress, with_targets=False)
        images, image_format = as_image_tensor(images, "dataset images")
        if cache_dir is None:
            return model._fit(images, self._labels, image_format)
        model, self._cache_path = fit_or_load(
            model, images, self._labels, image_format, cache_dir, on_mismatch
        )
        return model

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
        step = self.decode_batch_size
        for first in range(0, self.n_synthetic, step):
            positions = torch.arange(first, min(first + step, self.n_synthetic))
            self._pool[positions] = self._raw_synthetic(positions)
        self._pool_epoch.fill_(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def _plan(self) -> SMOTEPlan:
        epoch = int(self._epoch[0])
        if self._plan_cache is None or self._plan_cache[0] != epoch:
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            plan = plan_synthetic(
                self._n_new, self._model_labels, self._neighbors, self._n_neighbors, generator
            )
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
        return find_classes(self.dataset) or torch.unique(self._labels).tolist()

    @property
    def class_to_idx(self) -> dict:
        mapping = getattr(self.dataset, "class_to_idx", None)
        return dict(mapping) if mapping else {c: i for i, c in enumerate(self.classes)}

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
            ``{"label", "base", "neighbor", "lam"}``: its class, the dataset indices of the
            base and neighbour images whose codes it interpolates, and the step ``lam``.
        """
        index = self._check_index(index)
        if index < self.n_real:
            return None
        plan, pos = self._plan(), index - self.n_real
        return {
            "label": int(plan.labels[pos]),
            "base": int(plan.base[pos]),
            "neighbor": int(plan.neighbor[pos]),
            "lam": float(plan.lam[pos]),
        }

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        """Items for a batch of indices; all synthetic ones from one decoder call."""
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

    def _real_item(self, index: int) -> tuple[Any, Any]:
        image, target = self.dataset[index]
        if self.transform_real:
            image, target = self._user_transforms(image, target)
        return image, target

    def _user_transforms(self, image: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def _synthetic_items(self, positions: Tensor) -> list[tuple[Any, Any]]:
        plan = self._plan()
        if self.pool and int(self._pool_epoch[0]) == int(self._epoch[0]):
            images = self._pool[positions]
        else:
            images = self._raw_synthetic(positions)
        images = self._form.make_images(images)
        targets = self._form.make_targets(plan.labels[positions])
        transforms = (
            self._item_transform,
            self._item_target_transform,
            self.transform,
            self.target_transform,
        )
        if all(t is None for t in transforms):  # the common tensor case: no per-item work
            return list(zip(images, targets))
        items = []
        for image, target in zip(images, targets):
            if self._item_transform is not None:
                image = self._item_transform(image)
            if self._item_target_transform is not None:
                target = self._item_target_transform(target)
            items.append(self._user_transforms(image, target))
        return items

    def _raw_synthetic(self, positions: Tensor) -> Tensor:
        """(m, C, H, W) synthetic images at ``positions`` of this epoch, in the raw dtype."""
        plan = self._plan()
        synth = self._synthesizer()
        base, neighbor = plan.base[positions], plan.neighbor[positions]
        latents, residuals = synth["latents"], synth["residuals"]
        if "cache" in synth:  # only the rows this batch needs, read from HDF5 in this process
            rows = torch.cat([base, neighbor])
            latents = synth["cache"].rows("latents", rows)
            if synth["residual"]:
                residuals = synth["cache"].rows("residuals", rows)
            base, neighbor = torch.arange(len(base)), torch.arange(len(base), len(rows))
        unit = decode_interpolated(
            synth["decoder"],
            latents,
            base,
            neighbor,
            plan.lam[positions],
            residuals=residuals,
            batch_size=self.decode_batch_size,
            device=synth["device"],
        )
        return synth["format"].from_unit(unit)

    def _synthesizer(self) -> dict:
        """Decoder and codes for this process, built on first use."""
        if self._synth is not None and self._synth["pid"] == os.getpid():
            return self._synth
        in_worker = get_worker_info() is not None
        model = self.__dict__.get("model")
        device = torch.device("cpu") if in_worker else self._device
        if model is not None and not (in_worker and model.device.type == "cuda"):
            if next(model.decoder_.parameters()).device == device:
                synth = {"decoder": model.decoder_, "format": model.image_format_}
            else:  # a copy on the asked device, built the same way as from a snapshot
                synth = _snapshot_synth(model_state(model, arrays=False), device)
            residuals = model.residuals_ if self._residual else None
            synth.update(latents=model.latents_, residuals=residuals)
        elif getattr(self, "_cache_path", None):
            cache = CacheFile(self._cache_path).open()
            state = read_state(cache)
            synth = _snapshot_synth(state, device)
            synth.update(cache=cache, latents=None, residuals=None, residual=self._residual)
        else:
            synth = _snapshot_synth(self._snapshot, device)
            synth.update(latents=self._snapshot["latents"], residuals=self._snapshot["residuals"])
        synth.update(pid=os.getpid(), device=device)
        self._synth = synth
        return synth

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_synth"] = None  # decoders and file handles are per process
        model = state.pop("model", None)
        if model is not None and not getattr(self, "_cache_path", None):
            # Without a cache, a copy carries what it needs to decode, on the CPU. NOTE: the
            # snapshot is kept on self: tensors sent to spawned workers through shared memory
            # must outlive the pickling, or the worker finds their memory gone.
            if "_snapshot" not in self.__dict__:
                self._snapshot = _snapshot(model)
            state["_snapshot"] = self._snapshot
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_real={self.n_real}, n_synthetic={self.n_synthetic}, "
            f"epoch={self.epoch}, dataset={type(self.dataset).__name__})"
        )


def _snapshot(model: DeepSMOTE) -> dict:
    snapshot = model_state(model, arrays=False)
    snapshot["latents"] = model.latents_.cpu()
    snapshot["residuals"] = model.residuals_ if model.residual else None
    return snapshot


def _snapshot_synth(state: dict, device: torch.device) -> dict:
    params = state["params"]
    decoder = Decoder(tuple(state["image_shape"]), params["latent_dim"], params["hidden_channels"])
    decoder.load_state_dict(state["decoder"])
    return {"decoder": decoder.eval().to(device), "format": ImageFormat(**state["image_format"])}
