"""Samplers over an over-sampled dataset, single-process or split across distributed ranks.

Both follow ``torch.utils.data.DistributedSampler`` (:class:`DeepSMOTESampler` is one): a
local ``torch.Generator`` seeded from ``seed + epoch`` (never the global RNG), the same plan
on every rank, each rank taking a disjoint, equally long share. Unlike there,
``num_replicas`` and ``rank`` default to 1 and 0 without an initialized process group
(single-process training is the common case), and ``set_epoch`` is forwarded to the
dataset so that it draws fresh synthetic items per epoch.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sized
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

from ._validation import check_bool, check_non_negative_int, check_positive_int, make_generator

__all__ = ["DeepSMOTESampler", "ClassBalancedBatchSampler"]


def _check_sized(dataset: Any) -> Any:
    if not isinstance(dataset, Sized):
        # The dataset's own repr may be an entire table of images; its type is what matters.
        raise TypeError(
            "`dataset` should be a map-style dataset with __len__, but got dataset of type "
            f"{type(dataset).__name__}."
        )
    return dataset


def _resolve_replicas(num_replicas: Any, rank: Any) -> tuple[int, int]:
    """``None`` means the initialized process group's value, else 1 replica and rank 0."""
    distributed = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if distributed else 1
    if rank is None:
        rank = dist.get_rank() if distributed else 0
    num_replicas = check_positive_int("num_replicas", num_replicas)
    rank = check_non_negative_int("rank", rank)
    if rank >= num_replicas:
        raise ValueError(
            f"`rank` should be in [0, num_replicas - 1] = [0, {num_replicas - 1}], but got "
            f"rank={rank}. Pass num_replicas as well, or initialize torch.distributed."
        )
    return num_replicas, rank


def _set_epoch(sampler: Any, epoch: Any) -> None:
    sampler.epoch = check_non_negative_int("epoch", epoch)
    _tell_dataset(sampler.dataset, sampler.epoch, sampler.seed)


def _tell_dataset(dataset: Any, epoch: int | None, seed: int) -> None:
    """Call ``dataset.set_epoch(epoch)`` when it has one, passing the sampler's ``seed``
    where it takes ``seed=`` (an ``OversampledDataset`` without a seed of its own draws its
    synthetic set from it); ``epoch=None`` passes the seed alone, keeping the dataset's epoch."""
    set_epoch = getattr(dataset, "set_epoch", None)
    if not callable(set_epoch):
        return
    takes_seed = _takes_seed(set_epoch)
    if epoch is None:
        if takes_seed:
            set_epoch(int(getattr(dataset, "epoch", 0)), seed=seed)
        return
    # A dataset with synthetic items (OversampledDataset) draws a fresh set per epoch.
    if takes_seed:
        set_epoch(epoch, seed=seed)
    else:
        set_epoch(epoch)


def _takes_seed(method: Any) -> bool:
    try:
        return "seed" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


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
            it too (at construction and at every :meth:`set_epoch`), so this one seed picks
            both the order and the synthetic images of a run.
        drop_last: Drop the tail so the length divides evenly (True), or pad by repeating
            indices from the start (False).

    Raises:
        TypeError: ``dataset`` without ``__len__``, or an argument of the wrong type.
        ValueError: ``num_replicas < 1``, ``rank`` not in ``[0, num_replicas)``, ``seed < 0``.

    Note:
        As with ``DistributedSampler``, call :meth:`set_epoch` before creating each epoch's
        ``DataLoader`` iterator; otherwise every epoch has the same order and, for an
        ``OversampledDataset``, the same synthetic items. ``OversampledDataset`` keeps its
        epoch in shared memory, so persistent workers see the new epoch too; a dataset of
        your own with ``set_epoch`` needs non-persistent workers (the default) for that.

    Example:
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
        num_replicas, rank = _resolve_replicas(num_replicas, rank)
        super().__init__(
            _check_sized(dataset),
            num_replicas=num_replicas,
            rank=rank,
            shuffle=check_bool("shuffle", shuffle),
            seed=check_non_negative_int("seed", seed),
            drop_last=check_bool("drop_last", drop_last),
        )
        _tell_dataset(dataset, None, self.seed)

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
        _set_epoch(self, epoch)


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """Batches holding (almost) as many indices of every class, split across ranks.

    Each batch holds ``batch_size // n_classes`` indices of every class in
    ``dataset.targets``; the remaining ``batch_size % n_classes`` go to as many distinct
    classes picked at random, so per-class counts differ by at most 1. Each class's indices
    are drawn in a shuffled order without replacement until they run out, then from a fresh
    shuffle (an index repeats within one batch only when its class is smaller than its share).

    One epoch draws ``ceil(len(dataset) / batch_size)`` batches (``floor`` with
    ``drop_last``), rounded up (down) to a multiple of ``num_replicas``; rank ``r`` takes
    batches ``r, r + num_replicas, ...``. Every batch is full: batches are drawn, not cut
    from a list, so ``drop_last`` only chooses the rounding. Call :meth:`set_epoch` before
    each epoch's iterator, as for :class:`DeepSMOTESampler`.

    Args:
        dataset: Object with ``__len__`` and ``targets`` (sequence or 1-D tensor of shape
            ``(len(dataset),)``, the class of every index); ``set_epoch`` is called when
            present. ``targets`` is read when each epoch's iterator is created.
        batch_size: Positive number of indices per batch.
        num_replicas: As in :class:`DeepSMOTESampler`.
        rank: As in :class:`DeepSMOTESampler`.
        seed: As in :class:`DeepSMOTESampler`.
        drop_last: Round the number of batches down (True) or up (False), see above.

    Raises:
        TypeError: ``dataset`` without ``__len__`` or ``targets``, or a wrongly typed argument.
        ValueError: A bad value; when iterating, ``targets`` not of shape ``(len(dataset),)``.

    Examples:
        >>> class Toy(torch.utils.data.Dataset):
        ...     targets = [0] * 6 + [1] * 2
        ...     def __len__(self):
        ...         return 8
        >>> sampler = ClassBalancedBatchSampler(Toy(), batch_size=4)
        >>> [sorted(Toy.targets[i] for i in batch) for batch in sampler]
        [[0, 0, 1, 1], [0, 0, 1, 1]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.dataset = _check_sized(dataset)
        if not hasattr(dataset, "targets"):
            raise TypeError(
                "`dataset` should have a `targets` attribute (the class of every index), but "
                f"got dataset of type {type(dataset).__name__}."
            )
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_replicas, self.rank = _resolve_replicas(num_replicas, rank)
        self.seed = check_non_negative_int("seed", seed)
        self.drop_last = check_bool("drop_last", drop_last)
        self.epoch = 0
        _tell_dataset(dataset, None, self.seed)

    def _class_pools(self) -> list[torch.Tensor]:
        targets = torch.as_tensor(self.dataset.targets)
        if targets.ndim != 1 or len(targets) != len(self.dataset):
            raise ValueError(
                f"`dataset.targets` should be 1-D of length len(dataset)={len(self.dataset)}, "
                f"but got targets of shape {tuple(targets.shape)}."
            )
        return [torch.nonzero(targets == c).flatten() for c in torch.unique(targets)]

    def __iter__(self) -> Iterator[list[int]]:
        n_batches = len(self) * self.num_replicas
        if n_batches == 0:
            return iter([])
        pools = self._class_pools()
        n_classes = len(pools)
        generator = make_generator(self.seed + self.epoch)
        # Per class: its current shuffled order and how much of it is used up.
        states = [(pool[:0], 0) for pool in pools]
        batches = []
        for b in range(n_batches):
            counts = torch.full((n_classes,), self.batch_size // n_classes)
            extra = torch.randperm(n_classes, generator=generator)[: self.batch_size % n_classes]
            counts[extra] += 1
            parts = []
            for c in range(n_classes):
                part, states[c] = _draw(pools[c], states[c], int(counts[c]), generator)
                parts.append(part)
            batch = torch.cat(parts)
            # Mix the classes within the batch; all ranks draw it to stay in step.
            batch = batch[torch.randperm(len(batch), generator=generator)]
            if b % self.num_replicas == self.rank:
                batches.append(batch.tolist())
        return iter(batches)

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size // self.num_replicas
        return math.ceil(math.ceil(n / self.batch_size) / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """As :meth:`DeepSMOTESampler.set_epoch`."""
        _set_epoch(self, epoch)


def _draw(
    pool: torch.Tensor, state: tuple[torch.Tensor, int], k: int, generator: torch.Generator
) -> tuple[torch.Tensor, tuple[torch.Tensor, int]]:
    """``k`` items of ``pool`` continuing ``state``'s shuffled order, reshuffling when used up."""
    order, used = state
    taken: list[torch.Tensor] = []
    n_taken = 0
    while n_taken < k:
        if used == len(order):
            order, used = pool[torch.randperm(len(pool), generator=generator)], 0
            if taken:
                # Put this batch's picks last so the new shuffle does not repeat them at once.
                seen = torch.isin(order, torch.cat(taken))
                order = torch.cat([order[~seen], order[seen]])
        step = min(k - n_taken, len(order) - used)
        taken.append(order[used : used + step])
        used, n_taken = used + step, n_taken + step
    return (torch.cat(taken) if taken else pool[:0]), (order, used)
