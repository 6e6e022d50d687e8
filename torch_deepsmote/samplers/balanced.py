"""``ClassBalancedBatchSampler``: batches with (almost) as many items of every class, split
across distributed ranks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

from .._seeding import epoch_generator
from .._validation import check_bool, check_non_negative_int, check_positive_int
from ._common import check_sized, draw_in_turn, resolve_replicas, set_epoch, tell_dataset

__all__ = ["ClassBalancedBatchSampler"]


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
    from a list, so ``drop_last`` only chooses the rounding. Call
    [`set_epoch`][torch_deepsmote.samplers.balanced.ClassBalancedBatchSampler.set_epoch] before each
    epoch's iterator, as for
    [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].

    Args:
        dataset: Object with ``__len__`` and ``targets`` (sequence or 1-D tensor of shape
            ``(len(dataset),)``, the class of every index); ``set_epoch`` is called when
            present. ``targets`` is read when each epoch's iterator is created.
        batch_size: Positive number of indices per batch.
        num_replicas: As in
            [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].
        rank: As in [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].
        seed: As in [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].
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
        self.dataset = check_sized(dataset)
        if not hasattr(dataset, "targets"):
            raise TypeError(
                "`dataset` should have a `targets` attribute (the class of every index), but "
                f"got dataset of type {type(dataset).__name__}."
            )
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_replicas, self.rank = resolve_replicas(num_replicas, rank)
        self.seed = check_non_negative_int("seed", seed)
        self.drop_last = check_bool("drop_last", drop_last)
        self.epoch = 0
        tell_dataset(dataset, None, self.seed)

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
        generator = epoch_generator(self.seed, self.epoch)
        # Per class: its current shuffled order and how much of it is used up.
        states = [(pool[:0], 0) for pool in pools]
        batches = []
        for b in range(n_batches):
            counts = torch.full((n_classes,), self.batch_size // n_classes)
            extra = torch.randperm(n_classes, generator=generator)[: self.batch_size % n_classes]
            counts[extra] += 1
            parts = []
            for c in range(n_classes):
                part, states[c] = draw_in_turn(pools[c], states[c], int(counts[c]), generator)
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
        """As ``DeepSMOTESampler.set_epoch``."""
        set_epoch(self, epoch)
