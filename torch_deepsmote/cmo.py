"""CMO: minority images pasted onto naturally sampled batches, as a batch transform.

Reference: S. Park, Y. Hong, B. Heo, S. Yun and J. Y. Choi, "The Majority Can Help the
Minority: Context-rich Minority Oversampling for Long-tailed Classification", CVPR 2022.

With probability ``prob`` per batch, a batch of a minority stream (drawn with item weights
``n_c ** -power``, :func:`minority_sampler`; real images, DeepSMOTE's, or both) is pasted
with CutMix (Yun et al., ICCV 2019) onto the naturally sampled batch: one box per batch,
``lam ~ U(0, 1)``, the box ``sqrt(1 - lam)`` of each side, a uniform centre, clipped at the
border. The targets are mixed by the area actually pasted:

    loss = lam_a * L(y_background) + (1 - lam_a) * L(y_pasted),  lam_a = 1 - box area / (H W)

The batches keep the background stream's class prior (the pasted labels only enter
through the mixed loss), so a logit-adjusted loss is told that prior:
``LogitAdjustedLoss(CMO.class_prior(train_labels))``, the strongest simple recipe measured
in ``benchmarks/RESULTS.md``. Randomness (coin, ``lam``, centre) is drawn in
:meth:`CMO.draw` from a seeded generator; :func:`box` and :func:`paste` are pure.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import WeightedRandomSampler

from ._format import as_labels
from ._validation import check_non_negative_int, check_positive_float

__all__ = ["CMO", "CMOBatch", "box", "minority_sampler", "paste"]


def box(height: int, width: int, lam: float, cy: int, cx: int) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the CutMix box for ``lam`` centred at ``(cy, cx)``:
    sides ``int(sqrt(1 - lam) * side)``, clipped at the border (so its area may be smaller
    than ``1 - lam`` of the image; the loss takes the area pasted).

    Example:
        >>> box(8, 8, 0.75, 4, 4), box(8, 8, 0.75, 0, 7)
        ((2, 6, 2, 6), (0, 2, 5, 8))
    """
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    top, bottom = max(cy - ch // 2, 0), min(cy + ch // 2, height)
    left, right = max(cx - cw // 2, 0), min(cx + cw // 2, width)
    return top, bottom, left, right


def paste(background: Tensor, foreground: Tensor, where: tuple[int, int, int, int]) -> Tensor:
    """``background`` (B, C, H, W) with the box ``where`` of ``foreground`` (B, C, H, W)
    pasted into every image (a new tensor)."""
    top, bottom, left, right = where
    out = background.clone()
    out[..., top:bottom, left:right] = foreground[..., top:bottom, left:right]
    return out


def minority_sampler(
    labels: Any, power: float = 1.0, num_samples: int | None = None, generator: Any = None
) -> WeightedRandomSampler:
    """A sampler drawing item ``i`` with weight ``n_{y_i} ** -power`` (with replacement):
    ``power=1`` draws every class equally often (CMO's minority stream), 0 naturally.

    Args:
        labels: (N,) class of every item of the stream's dataset.
        power: How strongly small classes are favoured.
        num_samples: Draws per pass; ``None``: N.
        generator: A ``torch.Generator`` for the draws.
    """
    labels = as_labels(labels, "labels")
    check_positive_float("power", power, allow_zero=True)
    counts = torch.bincount(labels).double()
    weights = counts[labels] ** -power
    n = len(labels) if num_samples is None else check_non_negative_int("num_samples", num_samples)
    return WeightedRandomSampler(weights, n, replacement=True, generator=generator)


class CMOBatch(NamedTuple):
    """A CMO batch: ``images`` (B, C, H, W), ``targets`` (B,) of the background,
    ``pasted`` (B,) of the pasted images (``targets`` itself when nothing was pasted) and
    ``lam``, the background's share of each image."""

    images: Tensor
    targets: Tensor
    pasted: Tensor
    lam: float

    def loss(self, criterion: Callable[[Tensor, Tensor], Tensor], logits: Tensor) -> Tensor:
        """``lam * criterion(logits, targets) + (1 - lam) * criterion(logits, pasted)``."""
        value = criterion(logits, self.targets)
        if self.lam < 1.0:
            value = self.lam * value + (1.0 - self.lam) * criterion(logits, self.pasted)
        return value


class CMO:
    """Paste a minority batch onto each natural batch with probability ``prob``.

    Args:
        minority: An iterable of (images, targets) minority batches at least as large as the
            natural ones, e.g. ``DataLoader(ds, batch_size=B, sampler=minority_sampler(
            ds.targets))``; it is re-iterated when it ends.
        prob: Chance of pasting per batch (0.5 in the paper).
        seed: Seed of the coin, ``lam`` and centre draws.
        augment: Applied to each minority batch before pasting (the natural batch's
            augmentation), or ``None``.

    Example:
        >>> natural = [(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))]
        >>> minority = [(torch.ones(4, 1, 8, 8), torch.full((4,), 2))]
        >>> cmo = CMO(minority, prob=1.0, seed=0)
        >>> batch = cmo(*natural[0])
        >>> pasted = float(batch.images[0].mean())  # the share of ones: the box's area
        >>> batch.pasted.tolist(), round(1 - batch.lam, 4) == round(pasted, 4)
        ([2, 2, 2, 2], True)
    """

    def __init__(
        self,
        minority: Iterable,
        prob: float = 0.5,
        seed: int = 0,
        augment: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.minority, self.augment = minority, augment
        if not isinstance(prob, numbers.Real) or isinstance(prob, bool):
            raise TypeError(f"`prob` should be a number in [0, 1], but got prob={prob!r}.")
        if not 0 <= prob <= 1:
            raise ValueError(f"`prob` should be in [0, 1], but got prob={prob!r}.")
        self.prob = float(prob)
        self.seed = check_non_negative_int("seed", seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._batches: Iterator | None = None

    @staticmethod
    def class_prior(labels: Any) -> Tensor:
        """(C,) float64 class frequencies of ``labels``: the prior of CMO's batches (the
        natural stream's), for ``LogitAdjustedLoss``."""
        counts = torch.bincount(as_labels(labels, "labels")).double()
        return counts / counts.sum()

    def draw(self, height: int, width: int) -> tuple[int, int, int, int] | None:
        """The box of the next batch, or ``None`` when this batch is left as it is."""
        coin, lam = torch.rand(2, generator=self.generator, dtype=torch.float64).tolist()
        if coin >= self.prob:
            return None
        cy = int(torch.randint(height, (1,), generator=self.generator))
        cx = int(torch.randint(width, (1,), generator=self.generator))
        return box(height, width, lam, cy, cx)

    def _next_minority(self) -> tuple[Tensor, Tensor]:
        if self._batches is None:
            self._batches = iter(self.minority)
        try:
            return next(self._batches)
        except StopIteration:
            self._batches = iter(self.minority)
            return next(self._batches)

    def __call__(self, images: Tensor, targets: Tensor) -> CMOBatch:
        """One natural batch (B, C, H, W) and (B,) -> a :class:`CMOBatch`."""
        height, width = images.shape[-2:]
        where = self.draw(height, width)
        if where is None:
            return CMOBatch(images, targets, targets, 1.0)
        foreground, pasted = self._next_minority()
        if len(foreground) < len(images):
            raise ValueError(
                f"`minority` should give batches of at least {len(images)} images (the "
                f"natural batch), but gave {len(foreground)}. Give its loader the same "
                "batch_size and drop_last=True."
            )
        foreground, pasted = foreground[: len(images)], pasted[: len(images)]
        if self.augment is not None:
            foreground = self.augment(foreground)
        top, bottom, left, right = where
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        return CMOBatch(paste(images, foreground, where), targets, pasted.to(targets), lam)
