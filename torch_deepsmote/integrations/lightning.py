"""``DeepSMOTEDataModule``: a ``LightningDataModule`` that serves balanced training batches.

The training set is wrapped in an [`OversampledDataset`][torch_deepsmote.dataset.OversampledDataset]
once per process, in [`setup`][torch_deepsmote.integrations.lightning.DeepSMOTEDataModule.setup],
which Lightning calls on every rank: under its process group the ranks fit one model together
(``DeepSMOTE(distributed='auto')``) and rank 0 alone checks and writes ``cache_dir``, which the
others then load (``torch_deepsmote.distributed``); a second run finds the cache and trains nothing.
Fitting is collective, so it cannot live in ``prepare_data``, which Lightning runs on one
rank only. Training batches come through a
[`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler] split across the trainer's
ranks, whose ``set_epoch`` the trainer calls at every epoch: fresh synthetic images per epoch.

Importing this module imports Lightning (``pip install "torch-deepsmote[lightning]"``):
``lightning.pytorch``, else the older ``pytorch_lightning``.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ..dataset import OversampledDataset
from ..samplers import DeepSMOTESampler

try:
    from lightning.pytorch import LightningDataModule
except ImportError:  # pragma: no cover - the older package name
    try:
        from pytorch_lightning import LightningDataModule
    except ImportError as error:
        raise ImportError(
            "torch_deepsmote.integrations.lightning needs Lightning: "
            'pip install "torch-deepsmote[lightning]"'
        ) from error

__all__ = ["DeepSMOTEDataModule"]

SamplerFactory = Callable[..., Sampler]


class DeepSMOTEDataModule(LightningDataModule):
    """Balanced training batches from a user's datasets, for a Lightning ``Trainer``.

    Args:
        train_dataset: The (imbalanced) training set: any dataset ``OversampledDataset``
            takes (torchvision, a Hugging Face ``datasets.Dataset``, MONAI, dict items).
        val_dataset: Served as it is (no synthetic items), or ``None``.
        test_dataset: Likewise.
        batch_size: Items per batch.
        num_workers: DataLoader workers of every loader.
        cache_dir: The ``OversampledDataset`` cache (a folder every rank sees): fitted once,
            then loaded by later runs.
        sampler: ``None`` for a
            [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler] (every item of
            the balanced set once per epoch, shuffled), or a callable ``sampler(dataset,
            num_replicas=, rank=, seed=)`` returning a sampler that splits itself across ranks, e.g.
            ``functools.partial(ClassPriorSampler, synthetic_share=0.3)``. Its ``set_epoch`` is
            called by the trainer.
        seed: The training sampler's seed: the order, and the synthetic draws unless
            ``oversample_params`` gives ``OversampledDataset`` a ``seed`` of its own.
        drop_last: Passed to the training sampler.
        collate_fn: The loaders' ``collate_fn`` (``None``: PyTorch's default).
        pin_memory: The loaders' ``pin_memory``.
        persistent_workers: The loaders' ``persistent_workers`` (the synthetic epoch lives
            in shared memory, so persistent workers see ``set_epoch`` too).
        oversample_params: Keyword arguments of ``OversampledDataset`` (``random_state``,
            ``max_epochs``, ``image_key``, ``transform``, ...).

    Note:
        Under DDP, ``batch_size`` among ``oversample_params`` is the autoencoder's batch per
        rank (``DeepSMOTE``'s rule): pass ``100 // world_size`` for one process's batch.
        ``DeepSMOTESampler`` is a ``DistributedSampler``, so Lightning leaves it in place
        whatever ``use_distributed_sampler`` says. A ``sampler`` that is not one (such as
        ``ClassPriorSampler``) splits itself across ranks and needs
        ``Trainer(use_distributed_sampler=False)``; ``train_dataloader`` refuses the
        default then.

    Examples:
        >>> dm = DeepSMOTEDataModule(train, cache_dir="runs/dm", batch_size=64,  # doctest: +SKIP
        ...                          oversample_params={"random_state": 0})
        >>> Trainer(max_epochs=10).fit(model, datamodule=dm)  # doctest: +SKIP
    """

    def __init__(
        self,
        train_dataset: Any,
        val_dataset: Any = None,
        test_dataset: Any = None,
        *,
        batch_size: int = 64,
        num_workers: int = 0,
        cache_dir: str | os.PathLike | None = None,
        sampler: SamplerFactory | None = None,
        seed: int = 0,
        drop_last: bool = False,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        oversample_params: dict | None = None,
    ) -> None:
        super().__init__()
        if sampler is not None and not callable(sampler):
            raise TypeError(
                "`sampler` should be None or a callable (dataset, num_replicas=, rank=, seed=) "
                f"-> Sampler, but got sampler={sampler!r}."
            )
        if oversample_params is not None and not isinstance(oversample_params, dict):
            raise TypeError(
                "`oversample_params` should be a dict of OversampledDataset arguments, but got "
                f"oversample_params={oversample_params!r}."
            )
        if "cache_dir" in (oversample_params or {}):
            raise ValueError(
                "`oversample_params` should not hold cache_dir; pass "
                "DeepSMOTEDataModule(cache_dir=...) instead."
            )
        self.train_dataset, self.val_dataset, self.test_dataset = (
            train_dataset,
            val_dataset,
            test_dataset,
        )
        self.batch_size, self.num_workers = batch_size, num_workers
        self.cache_dir, self.sampler, self.seed, self.drop_last = (
            cache_dir,
            sampler,
            seed,
            drop_last,
        )
        self.collate_fn, self.pin_memory = collate_fn, pin_memory
        self.persistent_workers = persistent_workers
        self.oversample_params = dict(oversample_params or {})
        self.balanced: OversampledDataset | None = None
        # NOTE: the evaluation hooks exist only for the sets given, as in Lightning's own
        # LightningDataModule.from_datasets: an overridden hook returning nothing makes the
        # Trainer warn about an empty loader; a missing one makes it skip the stage.
        if val_dataset is not None:
            self.val_dataloader = functools.partial(self._eval_loader, val_dataset)
        if test_dataset is not None:
            self.test_dataloader = functools.partial(self._eval_loader, test_dataset)

    # ------------------------------------------------------------------ the balanced set
    def setup(self, stage: str | None = None) -> None:
        """Build the balanced training set on this rank, for ``stage`` ``'fit'`` or ``None``
        (every rank at once: the fit is collective)."""
        if stage not in (None, "fit") or self.balanced is not None:
            return
        replicas, _ = self._replicas()
        alone = self.oversample_params.get("distributed", "auto") is False
        if replicas > 1 and alone and self.cache_dir is None:
            raise ValueError(
                f"`cache_dir` should be set when {replicas} ranks fit with distributed=False, "
                "but got cache_dir=None: each rank would fit a model of its own and serve "
                "other synthetic images. Pass cache_dir= on a path every rank sees, or leave "
                "distributed='auto' to fit one model together."
            )
        params = {"progress": False, **self.oversample_params}
        if self.cache_dir is not None:
            params["cache_dir"] = self.cache_dir
        self.balanced = OversampledDataset(self.train_dataset, **params)

    def _replicas(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.world_size, trainer.global_rank
        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size(), dist.get_rank()
        return 1, 0

    # ------------------------------------------------------------------ loaders
    def _loader(self, dataset: Any, sampler: Sampler | None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self.balanced is None:
            raise RuntimeError(
                "DeepSMOTEDataModule.train_dataloader needs setup('fit') first (a Trainer "
                "calls it)."
            )
        replicas, rank = self._replicas()
        if self.sampler is None:
            sampler = DeepSMOTESampler(
                self.balanced,
                num_replicas=replicas,
                rank=rank,
                seed=self.seed,
                drop_last=self.drop_last,
            )
        else:
            sampler = self.sampler(self.balanced, num_replicas=replicas, rank=rank, seed=self.seed)
            connector = getattr(getattr(self, "trainer", None), "_accelerator_connector", None)
            rewrapped = getattr(connector, "use_distributed_sampler", False)
            if replicas > 1 and rewrapped and not isinstance(sampler, DistributedSampler):
                raise ValueError(
                    f"`sampler` gave a {type(sampler).__name__} that splits itself across "
                    f"{replicas} ranks, but the Trainer would wrap it in a DistributedSampler "
                    "and split it again. Pass Trainer(use_distributed_sampler=False)."
                )
        return self._loader(self.balanced, sampler)

    def _eval_loader(self, dataset: Any) -> DataLoader:
        replicas, rank = self._replicas()
        # Split across ranks as Lightning's own distributed sampler would (in order).
        sampler = (
            DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=False)
            if replicas > 1
            else None
        )
        return self._loader(dataset, sampler)
