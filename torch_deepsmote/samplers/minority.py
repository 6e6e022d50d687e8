"""``MinoritySampler``: CMO's foreground stream, item ``i`` drawn with weight
``n_{y_i} ** -power``, with replacement, split across distributed ranks.

Reference: S. Park, Y. Hong, B. Heo, S. Yun and J. Y. Choi, "The Majority Can Help the
Minority: Context-rich Minority Oversampling for Long-tailed Classification", CVPR 2022.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from .._labels import as_labels
from .._seeding import epoch_generator
from .._validation import check_non_negative_int, check_positive_float, check_positive_int
from ._common import resolve_replicas, tell_dataset

__all__ = ["MinoritySampler"]


class MinoritySampler(Sampler[int]):
    """Draws item ``i`` with weight ``n_{y_i} ** -power``, with replacement: CMO's stream.

    Class ``c`` is then drawn at the rate ``n_c ** (1 - power) / sum_k n_k ** (1 - power)``
    (``class_prior``): ``power=1`` draws every class equally often (the paper's), 0
    draws the data's own frequencies. ``n_c`` counts the items of ``dataset``, so over a
    balanced ``OversampledDataset`` every class is drawn equally often whatever ``power``.

    Each iterator draws ``num_samples`` indices in all from a local generator and gives
    rank ``r`` the draws ``r, r + num_replicas, ...``; every rank draws the same, with no
    communication. The generator is seeded with ``seed + epoch`` at the first iterator and
    at every [`set_epoch`][torch_deepsmote.samplers.minority.MinoritySampler.set_epoch].

    Note:
        Unlike ``DistributedSampler``, iterators between two ``set_epoch`` calls continue
        one stream instead of repeating the same draws: [`CMO`][torch_deepsmote.cmo.CMO]
        takes a minority batch only on the batches it pastes onto and starts the minority
        loader again whenever it runs out, mid-epoch.

    Args:
        dataset: A dataset with ``targets`` (the (N,) class of every item; e.g. an
            ``OversampledDataset``, whose ``set_epoch`` is then called from
            [`set_epoch`][torch_deepsmote.samplers.minority.MinoritySampler.set_epoch] so that it
            draws fresh synthetic items), or the (N,) labels.
        power: How strongly small classes are favoured, a number >= 0.
        num_samples: Draws per iterator over all ranks; ``None``: N.
        num_replicas, rank: As in
            [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].
        seed: Non-negative seed, the same on every rank.

    Attributes:
        class_prior: (n_labels,) float64, the rate at which each label ``0 .. max label`` is
            drawn (the class prior of the foreground stream).

    Raises:
        TypeError: Labels that are not whole numbers, or an argument of the wrong type.
        ValueError: A bad value, named in the message.

    Examples:
        >>> sampler = MinoritySampler([0, 0, 0, 1], power=1.0, num_samples=8, seed=0)
        >>> sampler.class_prior.tolist(), len(sampler), len(list(sampler))
        ([0.5, 0.5], 8, 8)
    """

    def __init__(
        self,
        dataset: Any,
        power: float = 1.0,
        num_samples: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        self.dataset = dataset
        labels = self._labels()
        if len(labels) == 0 or bool((labels < 0).any()):
            raise ValueError(
                "`dataset` should hold at least one item with labels 0, 1, ..., but got "
                f"{len(labels)} items with labels {sorted(set(labels.tolist()))[:5]}."
            )
        self.power = check_positive_float("power", power, allow_zero=True)
        n = len(labels) if num_samples is None else num_samples
        self.num_samples = check_positive_int("num_samples", n)
        self.num_replicas, self.rank = resolve_replicas(num_replicas, rank)
        self.seed = check_non_negative_int("seed", seed)
        self.epoch = 0
        self._generator: torch.Generator | None = None
        tell_dataset(dataset, None, self.seed)

    def _labels(self) -> Tensor:
        if hasattr(self.dataset, "targets"):
            return as_labels(self.dataset.targets, "dataset.targets")
        if isinstance(self.dataset, Dataset):
            raise TypeError(
                "`dataset` should be a dataset with `targets` (the class of every item) or "
                f"the labels themselves, but got dataset of type {type(self.dataset).__name__}."
            )
        return as_labels(self.dataset, "dataset")

    @staticmethod
    def _weights(labels: Tensor, power: float) -> Tensor:
        """(N,) float64 ``n_{y_i} ** -power`` of (N,) int64 ``labels``."""
        return torch.bincount(labels).double()[labels] ** -power

    @property
    def class_prior(self) -> Tensor:
        labels = self._labels()
        mass = torch.bincount(labels, self._weights(labels, self.power))
        return mass / mass.sum()

    def _total_size(self) -> int:
        return math.ceil(self.num_samples / self.num_replicas) * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        if self._generator is None:
            self._generator = epoch_generator(self.seed, self.epoch)
        labels = self._labels()
        draws = torch.multinomial(
            self._weights(labels, self.power),
            self._total_size(),
            replacement=True,
            generator=self._generator,
        )
        return iter(draws[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self._total_size() // self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Start the draws of ``epoch`` (and the dataset's, when it has ``set_epoch``)."""
        self.epoch = check_non_negative_int("epoch", epoch)
        self._generator = None
        tell_dataset(self.dataset, self.epoch, self.seed)
