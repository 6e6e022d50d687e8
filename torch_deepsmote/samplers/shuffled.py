"""``DeepSMOTESampler``: the shuffled indices of an over-sampled dataset, split across
distributed ranks.

A ``torch.utils.data.DistributedSampler`` that also runs without a process group
(``num_replicas`` and ``rank`` default to 1 and 0, single-process training being the common
case), follows a dataset whose length changes with its epoch, and passes ``set_epoch`` and
its seed on to the dataset, so that an ``OversampledDataset`` draws a fresh synthetic set
per epoch from this one seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DistributedSampler

from .._validation import check_bool, check_non_negative_int
from ._common import check_sized, resolve_replicas, set_epoch, tell_dataset

__all__ = ["DeepSMOTESampler"]


class DeepSMOTESampler(DistributedSampler):
    """Shuffles a dataset's indices per epoch and gives each rank a disjoint, equal share.

    A ``DistributedSampler`` that also runs without a process group and forwards
    ``set_epoch`` to the dataset. Every rank draws the same permutation of
    ``range(len(dataset))`` from a local generator seeded with ``seed + epoch``, pads it by
    repeating from its start (or, with ``drop_last``, cuts its tail) to a multiple of
    ``num_replicas``, and keeps ``indices[rank::num_replicas]``. The length is read from the
    dataset again at every ``set_epoch`` and iterator, so a dataset whose size changes
    between epochs is followed.

    Args:
        dataset: Any object with ``__len__``; its ``set_epoch(epoch)`` is called when present.
        num_replicas: Number of processes. Default: the world size of the initialized
            ``torch.distributed`` process group, else 1.
        rank: This process's rank in ``[0, num_replicas)``. Default: the process group's
            rank, else 0.
        shuffle: Permute the indices (True) or keep them in order (False).
        seed: Non-negative seed of the order; must be the same on every rank. An
            ``OversampledDataset`` given no ``seed`` of its own draws its synthetic set from
            it too (at construction and at every
            [`set_epoch`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler.set_epoch]), so this
            one seed picks both the order and the synthetic images of a run.
        drop_last: Drop the tail so the length divides evenly (True), or pad by repeating
            indices from the start (False).

    Raises:
        TypeError: ``dataset`` without ``__len__``, or an argument of the wrong type.
        ValueError: ``num_replicas < 1``, ``rank`` not in ``[0, num_replicas)``, ``seed < 0``.

    Note:
        As with ``DistributedSampler``, call
        [`set_epoch`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler.set_epoch] before creating
        each epoch's ``DataLoader`` iterator; otherwise every epoch has the same order and, for an
        ``OversampledDataset``, the same synthetic items. ``OversampledDataset`` keeps its epoch in
        shared memory, so persistent workers see the new epoch too; a dataset of your own with
        ``set_epoch`` needs non-persistent workers (the default) for that.

    Examples:
        >>> sampler = DeepSMOTESampler(range(10), num_replicas=3, rank=2, seed=0)
        >>> sampler.set_epoch(1)
        >>> len(sampler), len(list(sampler))
        (4, 4)
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        num_replicas, rank = resolve_replicas(num_replicas, rank)
        super().__init__(
            check_sized(dataset),
            num_replicas=num_replicas,
            rank=rank,
            shuffle=check_bool("shuffle", shuffle),
            seed=check_non_negative_int("seed", seed),
            drop_last=check_bool("drop_last", drop_last),
        )
        tell_dataset(dataset, None, self.seed)

    def _size(self) -> None:
        # DistributedSampler sizes itself once, in __init__; a dataset may change its length
        # with its epoch, so the same rule is applied again here.
        n = len(self.dataset)
        self.num_samples = (
            n // self.num_replicas if self.drop_last else math.ceil(n / self.num_replicas)
        )
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        self._size()
        return super().__iter__()

    def __len__(self) -> int:
        self._size()
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next iterator, and of the dataset when it has ``set_epoch``.

        Args:
            epoch: Non-negative epoch number, the same on every rank.
        """
        set_epoch(self, epoch)
