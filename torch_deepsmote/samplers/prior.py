"""A sampler that chooses the class prior of the batches and how much of it is synthetic.

Class-balanced sampling is one point of a family: draw class ``c`` with probability
``p_c ∝ n_c ** class_power`` (1: the data's own frequencies, 0.5: square-root sampling,
0: balanced; Mahajan et al. 2018, Kang et al., "Decoupling Representation and Classifier
for Long-Tailed Recognition", ICLR 2020), and within each class take a share of the draws
from synthetic items. Used with a loss that knows the prior it produces
(``LogitAdjustedLoss``), synthetic images become an
augmentation that need not change the class distribution; with ``start_epoch`` they (and
the move towards ``class_power``) enter late, as deferred re-sampling does (Cao et al.,
"Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any, Callable, Union

import torch
from torch import Tensor
from torch.utils.data import Sampler

from .._labels import as_labels
from .._seeding import epoch_generator
from .._validation import check_non_negative_int, check_positive_int
from ._common import check_sized, draw_in_turn, resolve_replicas, set_epoch, tell_dataset

__all__ = ["ClassPriorSampler", "class_prior"]

Share = Union[float, str, Callable[[int], float]]


def class_prior(counts: Tensor, class_power: float) -> Tensor:
    """``p_c = n_c ** class_power / sum_k n_k ** class_power`` over classes with ``n_c > 0``.

    Args:
        counts: (C,) class counts (zeros allowed; they get probability 0).
        class_power: 1 keeps the counts' frequencies, 0 gives every present class the same.

    Returns:
        (C,) float64 probabilities summing to 1.

    Examples:
        >>> class_prior(torch.tensor([400, 100, 0]), 0.5).tolist()
        [0.6666666666666666, 0.3333333333333333, 0.0]
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    weights = torch.where(counts > 0, counts.clamp(min=1) ** class_power, 0.0)
    return weights / weights.sum()


def _split(total: int, prior: Tensor) -> Tensor:
    """Integer counts summing to ``total``, as near ``total * prior`` as integers get.

    Largest remainders first, ties to the lower class: a function of its arguments only, so
    every rank and every run computes the same split.
    """
    exact = prior * total
    counts = exact.floor().long()
    remainder = exact - counts
    order = torch.argsort(-remainder, stable=True)
    counts[order[: total - int(counts.sum())]] += 1
    return counts


class ClassPriorSampler(Sampler[int]):
    """Draws an epoch with a chosen class prior, part of it from synthetic items.

    Each epoch draws ``num_samples`` indices in all (split evenly across ranks): class
    ``c`` gets ``num_samples * p_c`` of them (rounded; ``p_c ∝ n_c ** class_power``, ``n_c``
    the real items of class ``c``), ``synthetic_share`` of those are synthetic items of class
    ``c`` and the rest real ones. Within a class, real and synthetic items are each taken in
    a shuffled order without repeats until they run out, then from a fresh shuffle; the
    epoch's draws are then shuffled together. Every rank draws the same epoch from a local
    generator seeded with ``seed + epoch`` and keeps ``draws[rank::num_replicas]``: no
    communication, disjoint and equally long shares.
    [`set_epoch`][torch_deepsmote.samplers.prior.ClassPriorSampler.set_epoch] also draws the
    dataset's fresh synthetic set (``OversampledDataset.set_epoch``).

    Before ``start_epoch`` an epoch is the real items alone at their own frequencies
    (``class_power=1``, no synthetic items): deferred re-sampling.

    Args:
        dataset: An [`OversampledDataset`][torch_deepsmote.dataset.OversampledDataset] (or any
            dataset with ``n_real`` and ``targets``: indices from ``n_real`` on are synthetic).
        class_power: The exponent ``q`` of ``p_c ∝ n_c ** q``: 1 natural, 0.5 square root,
            0 balanced.
        synthetic_share: The share of each class's draws taken from its synthetic items: a
            number in [0, 1], a callable ``f(n_c) -> share``, or ``"rest"``: real items keep
            their natural rate ``n_c / n_real`` and synthetic items make up the rest of
            ``p_c`` (``max(0, 1 - n_c / (n_real p_c))``). A class without synthetic items
            draws only real ones.
        num_samples: Draws per epoch over all ranks; ``None``: ``dataset.n_real``.
        start_epoch: First epoch with ``class_power`` and ``synthetic_share``.
        num_replicas: As in
            [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].
        rank: As in [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].
        seed: As in [`DeepSMOTESampler`][torch_deepsmote.samplers.shuffled.DeepSMOTESampler].

    Attributes:
        class_prior: (n_labels,) float32, the share of this epoch's draws per label
            ``0 .. max label`` (what a logit-adjusted loss should be told).
        synthetic_fraction: (n_labels,) float32, the share of each label's draws that are
            synthetic this epoch.

    Examples:
        >>> class Toy(torch.utils.data.Dataset):
        ...     # 8 real items; 4 synthetic items of class 1
        ...     n_real, targets = 8, [0] * 6 + [1] * 2 + [1] * 4
        ...     def __len__(self):
        ...         return 12
        >>> sampler = ClassPriorSampler(Toy(), class_power=0.0, synthetic_share=0.5)
        >>> sampler.class_prior.tolist(), sampler.synthetic_fraction.tolist()
        ([0.5, 0.5], [0.0, 0.5])
        >>> sorted(Toy.targets[i] for i in sampler)
        [0, 0, 0, 0, 1, 1, 1, 1]
    """

    def __init__(
        self,
        dataset: Any,
        class_power: float = 1.0,
        synthetic_share: Share = 0.0,
        num_samples: int | None = None,
        start_epoch: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        self.dataset = check_sized(dataset)
        if not hasattr(dataset, "n_real") or not hasattr(dataset, "targets"):
            raise TypeError(
                "`dataset` should be an OversampledDataset (with `n_real` and `targets`), but "
                f"got dataset of type {type(dataset).__name__}."
            )
        if (
            not isinstance(class_power, numbers.Real)
            or isinstance(class_power, bool)
            or not (math.isfinite(class_power))
        ):
            raise TypeError(
                "`class_power` should be a finite number (1 natural, 0.5 square root, "
                f"0 balanced), but got class_power={class_power!r}."
            )
        self.class_power = float(class_power)
        self.synthetic_share = _check_share(synthetic_share)
        self.num_samples_total = check_positive_int(
            "num_samples", dataset.n_real if num_samples is None else num_samples
        )
        self.start_epoch = check_non_negative_int("start_epoch", start_epoch)
        self.num_replicas, self.rank = resolve_replicas(num_replicas, rank)
        self.seed = check_non_negative_int("seed", seed)
        self.epoch = 0
        tell_dataset(dataset, None, self.seed)

    # ------------------------------------------------------------------ the epoch's plan
    def _pools(self) -> tuple[list[Tensor], list[Tensor], Tensor]:
        """Per label: real indices, synthetic indices; and the real counts (n_labels,)."""
        targets = as_labels(self.dataset.targets, "dataset.targets", len(self.dataset))
        if bool((targets < 0).any()):
            raise ValueError("`dataset.targets` should be labels 0, 1, ..., but got negatives.")
        n_real, n_labels = int(self.dataset.n_real), int(targets.max()) + 1
        index = torch.arange(len(targets))
        real = [index[:n_real][targets[:n_real] == c] for c in range(n_labels)]
        synthetic = [index[n_real:][targets[n_real:] == c] for c in range(n_labels)]
        return real, synthetic, torch.tensor([len(r) for r in real])

    def _counts(self) -> tuple[Tensor, Tensor]:
        """(real draws, synthetic draws) per label for this epoch, over all ranks."""
        real, synthetic, n = self._pools()
        deferred = self.epoch < self.start_epoch
        prior = class_prior(n, 1.0 if deferred else self.class_power)
        total = self._total_size()
        per_class = _split(total, prior)
        share = torch.zeros(len(n), dtype=torch.float64)
        if not deferred:
            share = _shares(self.synthetic_share, n, prior)
        share[torch.tensor([len(s) == 0 for s in synthetic])] = 0.0
        n_synthetic = (per_class * share).round().long()
        return per_class - n_synthetic, n_synthetic

    def _total_size(self) -> int:
        return math.ceil(self.num_samples_total / self.num_replicas) * self.num_replicas

    @property
    def class_prior(self) -> Tensor:
        real, synthetic = self._counts()
        return ((real + synthetic).double() / self._total_size()).float()

    @property
    def synthetic_fraction(self) -> Tensor:
        real, synthetic = self._counts()
        return (synthetic.double() / (real + synthetic).clamp(min=1)).float()

    # ------------------------------------------------------------------ Sampler
    def __iter__(self) -> Iterator[int]:
        real_pools, synthetic_pools, _ = self._pools()
        n_real, n_synthetic = self._counts()
        generator = epoch_generator(self.seed, self.epoch)
        parts = []
        for c in range(len(real_pools)):
            for pool, k in ((real_pools[c], n_real[c]), (synthetic_pools[c], n_synthetic[c])):
                if k > 0:
                    parts.append(draw_in_turn(pool, (pool[:0], 0), int(k), generator)[0])
        draws = torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)
        draws = draws[torch.randperm(len(draws), generator=generator)]
        return iter(draws[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self._total_size() // self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next iterator, and of the dataset when it has ``set_epoch``.

        From ``start_epoch`` on, ``class_prior`` changes: tell the loss
        (``loss.set_prior(sampler.class_prior)``).
        """
        set_epoch(self, epoch)


def _check_share(share: Any) -> Share:
    if share == "rest" or callable(share):
        return share
    if isinstance(share, numbers.Real) and not isinstance(share, bool) and 0 <= share <= 1:
        return float(share)
    raise ValueError(
        "`synthetic_share` should be a number in [0, 1], a callable of the class count or "
        f"'rest', but got synthetic_share={share!r}."
    )


def _shares(share: Share, counts: Tensor, prior: Tensor) -> Tensor:
    """(n_labels,) float64 share of synthetic draws per label."""
    if share == "rest":
        natural = counts.double() / counts.sum()
        out = torch.where(prior > 0, 1 - natural / prior.clamp(min=1e-300), 0.0)
        return out.clamp(0.0, 1.0)
    if callable(share):
        values = [float(share(int(n))) for n in counts]
        if not all(0 <= v <= 1 for v in values):
            raise ValueError(
                "`synthetic_share` should return shares in [0, 1], but got "
                f"{dict(zip(range(len(values)), values))} for the class counts."
            )
        return torch.tensor(values, dtype=torch.float64)
    return torch.full((len(counts),), float(share), dtype=torch.float64)
