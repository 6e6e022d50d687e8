"""SMOTE in latent space: how many samples, which pairs, and the interpolation itself.

DeepSMOTE (Dablain, Krawczyk and Chawla, "DeepSMOTE: Fusing Deep Learning and SMOTE for
Imbalanced Data", IEEE Transactions on Neural Networks and Learning Systems, 2022) applies
SMOTE (Chawla, Bowyer, Hall and Kegelmeyer, "SMOTE: Synthetic Minority Over-sampling
Technique", Journal of Artificial Intelligence Research 16, 2002) to an autoencoder's codes:
pick a base code of the class uniformly, one of its k nearest same-class codes uniformly,
and ``lam ~ U(0, 1)``; the synthetic code is ``z = base + lam * (neighbour - base)``.
Borderline-SMOTE (``torch_deepsmote.borderline``) draws the bases among the class's
codes near the boundary only (``bases=``).

Randomness and arithmetic are kept apart, as in imbalanced-learn: ``plan_synthetic``
draws every random choice from a ``torch.Generator`` into a ``SMOTEPlan``, which can
be stored, tested with exact numbers and replayed; ``interpolate`` is a pure function.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

from ._labels import as_labels
from ._validation import check_choice, check_fraction

__all__ = [
    "SamplingStrategy",
    "SMOTEPlan",
    "resolve_sampling_strategy",
    "plan_synthetic",
    "plan_transfer",
    "interpolate",
]

SamplingStrategy = Union[str, float, Mapping[int, int], Callable[[np.ndarray], Mapping[int, int]]]

_STRATEGY_NAMES = ("auto", "minority", "not minority", "not majority", "all")


def check_sampling_strategy(name: str, value: Any) -> None:
    """Refuse an unknown strategy name early (the rest is checked against the labels by
    ``resolve_sampling_strategy``)."""
    if isinstance(value, str) and value not in _STRATEGY_NAMES:
        raise ValueError(
            f"`{name}` should be one of "
            + ", ".join(repr(s) for s in _STRATEGY_NAMES)
            + f", a float, a dict or a callable, but got {name}={value!r}."
        )


def resolve_sampling_strategy(
    sampling_strategy: SamplingStrategy, labels: torch.Tensor | np.ndarray | Sequence[int]
) -> dict[int, int]:
    """Turn imbalanced-learn's over-sampling ``sampling_strategy`` into new-sample counts.

    Same semantics as ``imblearn.utils.check_sampling_strategy(sampling_strategy, y,
    "over-sampling")``; ties for majority or minority go to the smallest label.

    Args:
        sampling_strategy: One of

            - ``"auto"`` (same as ``"not majority"``), ``"minority"``, ``"not minority"``,
              ``"not majority"``, ``"all"``: the targeted classes are filled up to the
              majority count;
            - a float in (0, 1], two classes only: the wanted ratio
              ``n_minority_after / n_majority``;
            - a dict ``{class: wanted total count}``; classes left out get no new samples;
            - a callable ``f(y: np.ndarray) -> dict``, handled like the dict.
        labels: Class labels, shape (N,), integers (tensor, array or sequence).

    Returns:
        ``{class: number of new samples}`` for every class in ``labels``, Python ints, keys
        sorted, 0 where the class is not over-sampled.

    Raises:
        ValueError: Unknown name, fewer than two classes, a float with more than two classes
            or one that would add no sample, a dict naming an absent class or asking for
            fewer samples than a class has.
        TypeError: ``sampling_strategy`` is of none of these types, or a dict value is not an
            integer.

    Examples:
        >>> resolve_sampling_strategy("auto", [0, 0, 0, 0, 1, 1, 2])
        {0: 0, 1: 2, 2: 3}
        >>> resolve_sampling_strategy({2: 2}, [0, 0, 0, 0, 1, 1, 2])
        {0: 0, 1: 0, 2: 1}
    """
    y = as_labels(labels, "labels").numpy()
    classes, counts = np.unique(y, return_counts=True)
    current = {int(c): int(n) for c, n in zip(classes, counts)}
    if len(current) < 2:
        raise ValueError(
            f"`labels` should contain at least two classes to over-sample, but got labels "
            f"with classes {list(current)}."
        )
    # max()/min() return the first key reaching the extreme: ties go to the smallest label,
    # as in imbalanced-learn (whose class dict is also in np.unique order).
    majority = max(current, key=current.__getitem__)
    minority = min(current, key=current.__getitem__)
    n_majority = current[majority]

    if isinstance(sampling_strategy, str):
        if sampling_strategy == "majority":
            raise ValueError(
                f"`sampling_strategy` should be one of {', '.join(map(repr, _STRATEGY_NAMES))}, "
                f"but got sampling_strategy='majority'. 'majority' targets only the majority "
                "class, which over-sampling cannot add to."
            )
        check_choice("sampling_strategy", sampling_strategy, _STRATEGY_NAMES)
        targeted = {
            "auto": lambda c: c != majority,
            "not majority": lambda c: c != majority,
            "not minority": lambda c: c != minority,
            "minority": lambda c: c == minority,
            "all": lambda c: True,
        }[sampling_strategy]
        n_new = {c: n_majority - n for c, n in current.items() if targeted(c)}
    elif isinstance(sampling_strategy, Mapping):
        n_new = _from_totals(sampling_strategy, current, "sampling_strategy")
    elif callable(sampling_strategy):
        totals = sampling_strategy(y)
        if not isinstance(totals, Mapping):
            raise TypeError(
                "`sampling_strategy` should return a dict {class: total count} when it is a "
                f"callable, but got sampling_strategy={sampling_strategy!r} returning {totals!r}."
            )
        n_new = _from_totals(totals, current, "sampling_strategy(labels)")
    elif isinstance(sampling_strategy, numbers.Real) and not isinstance(sampling_strategy, bool):
        ratio = check_fraction("sampling_strategy", sampling_strategy)
        if len(current) != 2:
            raise ValueError(
                "`sampling_strategy` should be a string, a dict or a callable when there are "
                f"more than two classes (a float ratio needs exactly two), but got "
                f"sampling_strategy={sampling_strategy!r} with classes {list(current)}."
            )
        # Same expression and truncation as imbalanced-learn, so counts match to the sample.
        n_new = {c: int(n_majority * ratio - n) for c, n in current.items() if c != majority}
        if any(n <= 0 for n in n_new.values()):
            n_minority = current[minority]
            raise ValueError(
                "`sampling_strategy` should be a ratio n_minority_after / n_majority that adds "
                f"at least one sample, here at least ({n_minority} + 1) / {n_majority}, but got "
                f"sampling_strategy={sampling_strategy!r}; over-sampling cannot remove samples."
            )
    else:
        raise TypeError(
            f"`sampling_strategy` should be one of {', '.join(map(repr, _STRATEGY_NAMES))}, a "
            "float in (0, 1], a dict {class: total count} or a callable returning such a dict, "
            f"but got sampling_strategy={sampling_strategy!r}."
        )
    return {c: int(n_new.get(c, 0)) for c in sorted(current)}


def _from_totals(totals: Mapping, current: dict[int, int], name: str) -> dict[int, int]:
    """New-sample counts from a ``{class: wanted total}`` mapping."""
    unknown = [c for c in totals if c not in current]
    if unknown:
        raise ValueError(
            f"`{name}` should only name classes present in `labels` ({list(current)}), but got "
            f"{name}={dict(totals)!r} with unknown classes {unknown}."
        )
    n_new = {}
    for label, total in totals.items():
        if not isinstance(total, numbers.Integral) or isinstance(total, bool):
            raise TypeError(
                f"`{name}` should map classes to integer counts, but got {name}={dict(totals)!r}."
            )
        if total < current[label]:
            raise ValueError(
                f"`{name}` should ask for at least as many samples as each class has, since "
                f"over-sampling cannot remove samples, but got {name}={dict(totals)!r}: class "
                f"{label} has {current[label]} samples and {total} were requested."
            )
        n_new[int(label)] = int(total) - current[label]
    return n_new


@dataclass(frozen=True, eq=False)  # NOTE: eq=False, since `==` on tensors is elementwise
class SMOTEPlan:
    """The random choices behind ``m`` synthetic samples, grouped by class in sorted order.

    Sample ``i`` has the code ``z[base] + lam * (z[neighbor] - z[anchor])``: SMOTE's
    interpolation when ``anchor`` is the base (``anchor=None``), a step along another pair's
    difference otherwise (``plan_transfer``).

    Attributes:
        labels: LongTensor (m,), class of each synthetic sample.
        base: LongTensor (m,), global row index of the base code.
        neighbor: LongTensor (m,), global row index of the chosen neighbour code.
        lam: FloatTensor (m,), the steps.
        anchor: LongTensor (m,) of global row indices, or ``None`` (the base).
    """

    labels: torch.Tensor
    base: torch.Tensor
    neighbor: torch.Tensor
    lam: torch.Tensor
    anchor: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: Any) -> SMOTEPlan:
        """The plan of the samples at ``index`` (a slice, or a LongTensor of positions)."""
        anchor = None if self.anchor is None else self.anchor[index]
        return SMOTEPlan(
            self.labels[index], self.base[index], self.neighbor[index], self.lam[index], anchor
        )

    @property
    def anchors(self) -> torch.Tensor:
        """(m,) the anchor rows, the base where there is no other."""
        return self.base if self.anchor is None else self.anchor


def _check_generator(generator: Any) -> None:
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise TypeError(
            f"`generator` should be a CPU torch.Generator, but got generator={generator!r}."
        )


def _draw_lam(count: int, lam_range: tuple[float, float], generator: torch.Generator):
    low, high = lam_range
    lam = torch.rand(count, generator=generator)
    # U(0, 1) is kept as drawn, so the published plans stay the same bit for bit.
    return lam if (low, high) == (0.0, 1.0) else low + (high - low) * lam


def check_row_mask(mask: Any, labels: torch.Tensor, name: str = "bases") -> torch.Tensor | None:
    """``mask`` as a CPU bool tensor of ``labels``' shape (one flag per row), or ``None``.

    Raises:
        ValueError: Another dtype or shape (``name`` is the argument named).
    """
    if mask is None:
        return None
    mask = torch.as_tensor(mask).cpu()
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(labels.shape):
        raise ValueError(
            f"`{name}` should be None or a bool tensor of shape {tuple(labels.shape)} (one flag "
            f"per row of `labels`), but got {name} with dtype {mask.dtype} and shape "
            f"{tuple(mask.shape)}."
        )
    return mask


def _base_rows(rows: torch.Tensor, bases: torch.Tensor | None) -> torch.Tensor:
    """The rows of a class that bases are drawn from: those ``bases`` allows, or all of the
    class's rows where it allows none."""
    if bases is None:
        return rows
    allowed = rows[bases[rows]]
    return allowed if allowed.numel() else rows


def plan_synthetic(
    n_new: Mapping[int, int],
    labels: torch.Tensor,
    neighbors: torch.Tensor,
    n_neighbors: Mapping[int, int],
    generator: torch.Generator,
    lam_range: tuple[float, float] = (0.0, 1.0),
    *,
    bases: torch.Tensor | None = None,
) -> SMOTEPlan:
    """Draw the base, neighbour and step of every synthetic sample.

    For each class ``c`` in sorted order with ``n_new[c] > 0``: ``n_new[c]`` base rows
    uniformly (with replacement) among the rows of class ``c`` (those that ``bases`` allows,
    where it allows any: Borderline-SMOTE's rows in danger), then for each one a neighbour
    column uniformly in ``[0, n_neighbors[c])``, then ``lam ~ U(lam_range)`` (``U(0, 1)`` in
    SMOTE). Every draw comes from ``generator`` in this fixed order, so a seed gives the same
    plan bit for bit. The table may hold same-class neighbours (SMOTE) or the nearest codes
    of other classes (``class_enemies``: steps towards the
    boundary, which keep the base's label while ``lam`` stays below one half).

    Args:
        n_new: ``{class: number of new samples}``, e.g. from
            [`resolve_sampling_strategy`][torch_deepsmote.smote.resolve_sampling_strategy].
        labels: Integer class labels of the codes, shape (N,).
        neighbors: Same-class neighbour table, LongTensor (N, k), global row indices, as from
            ``class_neighbors``.
        n_neighbors: ``{class: number of valid columns of neighbors}``.
        generator: A CPU ``torch.Generator``, the only source of randomness.
        lam_range: ``(low, high)`` of the uniform step; ``high > 1`` or ``low < 0``
            extrapolates beyond the pair.
        bases: BoolTensor (N,), the rows that may be bases (e.g. from
            ``in_danger``); a class with none allowed
            draws from all its rows. ``None``: every row, with the same draws as ever.

    Returns:
        The [`SMOTEPlan`][torch_deepsmote.smote.SMOTEPlan] (CPU tensors) of ``sum(n_new.values())``
        samples.

    Raises:
        TypeError: ``generator`` is not a CPU ``torch.Generator``.
        ValueError: Shapes disagree, a class to over-sample has no rows, ``n_neighbors``
            does not match ``neighbors``, or ``bases`` is not a (N,) bool tensor.

    Examples:
        >>> labels = torch.tensor([0, 0, 0, 1, 1])
        >>> neighbors = torch.tensor([[1], [0], [1], [4], [3]])
        >>> plan = plan_synthetic({0: 0, 1: 3}, labels, neighbors, {0: 1, 1: 1},
        ...                       torch.Generator().manual_seed(0))
        >>> len(plan), plan.labels.tolist()
        (3, [1, 1, 1])
    """
    _check_generator(generator)
    labels = torch.as_tensor(labels).cpu()
    neighbors = torch.as_tensor(neighbors).cpu()
    if labels.ndim != 1 or neighbors.ndim != 2 or neighbors.shape[0] != labels.shape[0]:
        raise ValueError(
            "`neighbors` should have shape (N, k) for `labels` of shape (N,), but got "
            f"neighbors with shape {tuple(neighbors.shape)} and labels with shape "
            f"{tuple(labels.shape)}."
        )
    bases = check_row_mask(bases, labels)
    parts: list[tuple[torch.Tensor, ...]] = []
    for label in sorted(n_new):
        count = int(n_new[label])
        if count < 0:
            raise ValueError(f"`n_new` should hold non-negative counts, but got n_new={n_new!r}.")
        if count == 0:
            continue
        rows = torch.nonzero(labels == label).flatten()
        n_columns = int(n_neighbors.get(label, 0))
        if rows.numel() == 0 or not 1 <= n_columns <= neighbors.shape[1]:
            raise ValueError(
                f"`n_new` should only ask for classes with rows in `labels` and 1 to "
                f"{neighbors.shape[1]} valid neighbour columns, but got n_new={n_new!r} asking "
                f"for class {label}, which has {rows.numel()} rows and n_neighbors={n_columns}."
            )
        # NOTE: this draw order (base, column, lam; class by class) is part of the contract:
        # changing it changes every plan for a given seed.
        pool = _base_rows(rows, bases)
        base = pool[torch.randint(pool.numel(), (count,), generator=generator)]
        column = torch.randint(n_columns, (count,), generator=generator)
        lam = _draw_lam(count, lam_range, generator)
        plan_labels = torch.full((count,), int(label), dtype=torch.long)
        parts.append((plan_labels, base, neighbors[base, column], lam))
    if not parts:
        empty = torch.empty(0, dtype=torch.long)
        return SMOTEPlan(empty, empty.clone(), empty.clone(), torch.empty(0))
    plan_labels, base, neighbor, lam = (torch.cat(column) for column in zip(*parts))
    if bool((neighbor < 0).any()):
        raise ValueError(
            "`n_neighbors` should not exceed the valid (non -1) columns of `neighbors`, but got "
            f"n_neighbors={dict(n_neighbors)!r}."
        )
    return SMOTEPlan(plan_labels, base, neighbor.long(), lam)


def plan_transfer(
    n_new: Mapping[int, int],
    labels: torch.Tensor,
    neighbors: torch.Tensor,
    n_neighbors: Mapping[int, int],
    generator: torch.Generator,
    lam_range: tuple[float, float] = (0.0, 1.0),
    *,
    bases: torch.Tensor | None = None,
) -> SMOTEPlan:
    """Draw steps that lend a minority code the within-class variation of larger classes.

    For each class ``c`` in sorted order with ``n_new[c] > 0``: ``n_new[c]`` base rows
    uniformly among the rows of ``c`` (those ``bases`` allows, as in ``plan_synthetic``);
    for each, a donor class among the classes larger than ``c`` with probability
    proportional to its size (every other class when ``c`` is the largest); an anchor row
    ``b`` uniformly among the donor's rows and one of its same-class neighbours ``a`` (a
    column of ``neighbors``); and ``lam ~ U(lam_range)``. The new code is
    ``z_base + lam (z_a - z_b)``: the base moved along a difference that the donor class
    shows between two of its own, nearby images, so a class of 40 images borrows the
    variety that thousands show (pose, thickness, brightness) and keeps its label. Draw
    order: base, donor, anchor, column, ``lam``, class by class.

    Args:
        n_new, labels, neighbors, n_neighbors, generator, lam_range, bases: As in
            ``plan_synthetic`` (``neighbors`` the same-class table; ``bases`` restricts
            the bases only, not the donors' anchors).

    Returns:
        A ``SMOTEPlan`` whose ``neighbor`` and ``anchor`` rows belong to donor classes.

    Examples:
        >>> labels = torch.tensor([0, 0, 0, 1, 1])
        >>> neighbors = torch.tensor([[1], [0], [1], [4], [3]])
        >>> plan = plan_transfer({0: 0, 1: 2}, labels, neighbors, {0: 1, 1: 1},
        ...                      torch.Generator().manual_seed(0))
        >>> plan.labels.tolist(), labels[plan.anchor].tolist(), labels[plan.neighbor].tolist()
        ([1, 1], [0, 0], [0, 0])
    """
    _check_generator(generator)
    labels = torch.as_tensor(labels).cpu()
    neighbors = torch.as_tensor(neighbors).cpu()
    bases = check_row_mask(bases, labels)
    classes, sizes = torch.unique(labels, return_counts=True)
    rows_of = {int(c): torch.nonzero(labels == c).flatten() for c in classes}
    parts = []
    for label in sorted(n_new):
        count = int(n_new[label])
        if count <= 0:
            continue
        if label not in rows_of:
            raise ValueError(f"`n_new` should only ask for fitted classes, but got class {label}.")
        size = len(rows_of[label])
        mask = sizes > size
        if not mask.any():  # the largest class borrows from all the others
            mask = classes != label
        if not mask.any():  # a single class: its own variation
            mask = classes == label
        donors, donor_sizes = classes[mask], sizes[mask].double()
        pool = _base_rows(rows_of[label], bases)
        base = pool[torch.randint(len(pool), (count,), generator=generator)]
        donor = donors[torch.multinomial(donor_sizes, count, replacement=True, generator=generator)]
        anchor = torch.empty(count, dtype=torch.long)
        neighbor = torch.empty(count, dtype=torch.long)
        for d in torch.unique(donor).tolist():
            picks = torch.nonzero(donor == d).flatten()
            rows = rows_of[d]
            anchor[picks] = rows[torch.randint(len(rows), (len(picks),), generator=generator)]
            column = torch.randint(int(n_neighbors[d]), (len(picks),), generator=generator)
            neighbor[picks] = neighbors[anchor[picks], column]
        lam = _draw_lam(count, lam_range, generator)
        parts.append((torch.full((count,), label, dtype=torch.long), base, neighbor, lam, anchor))
    if not parts:
        empty = torch.empty(0, dtype=torch.long)
        return SMOTEPlan(empty, empty.clone(), empty.clone(), torch.empty(0), empty.clone())
    return SMOTEPlan(*(torch.cat(column) for column in zip(*parts)))


def interpolate(
    latents: torch.Tensor,
    base: torch.Tensor,
    neighbor: torch.Tensor,
    lam: torch.Tensor,
    anchor: torch.Tensor | None = None,
) -> torch.Tensor:
    """The SMOTE step: ``z = latents[base] + lam * (latents[neighbor] - latents[base])``.

    With ``anchor`` the step runs along another pair's difference:
    ``z = latents[base] + lam * (latents[neighbor] - latents[anchor])``. A pure function:
    the same inputs always give the same codes. Rows may be codes (N, d) or anything else
    indexed by image, such as reconstruction residuals (N, C, H, W).

    Args:
        latents: Rows to interpolate, shape (N, ...) with at least 2 dimensions, on any
            device.
        base: Row indices of the base rows, LongTensor (m,).
        neighbor: Row indices of the neighbour rows, LongTensor (m,).
        lam: Steps, shape (m,) (in [0, 1] for SMOTE); cast to ``latents``' dtype.
        anchor: Row indices (m,) where the step's difference starts; ``None``: ``base``.

    Returns:
        Synthetic rows, shape (m, ...), ``latents``' dtype and device.

    Raises:
        ValueError: ``latents`` has fewer than 2 dimensions, or ``base``, ``neighbor``,
            ``lam`` (and ``anchor``) are not 1-D of one length.

    Examples:
        >>> latents = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
        >>> base, neighbor = torch.tensor([0]), torch.tensor([1])
        >>> interpolate(latents, base, neighbor, torch.tensor([0.25]))
        tensor([[0.5000, 1.0000]])
    """
    if latents.ndim < 2:
        raise ValueError(
            "`latents` should have shape (N, d) or (N, ...), but got latents with shape "
            f"{tuple(latents.shape)}."
        )
    given = (base, neighbor, lam) + (() if anchor is None else (anchor,))
    shapes = [tuple(t.shape) for t in given]
    if any(len(s) != 1 for s in shapes) or len(set(shapes)) != 1:
        raise ValueError(
            "`base`, `neighbor`, `lam` (and `anchor`) should be 1-D of one length m, but got "
            f"shapes {shapes}."
        )
    device = latents.device
    start = latents[base.to(device)]
    end = latents[neighbor.to(device)]
    origin = start if anchor is None else latents[anchor.to(device)]
    # Written out rather than torch.lerp, whose formula switches for weights >= 0.5: this
    # keeps results equal, bit for bit, to the textbook expression that tests can check.
    lam = lam.to(device=device, dtype=latents.dtype).view(-1, *[1] * (latents.ndim - 1))
    return start + lam * (end - origin)
