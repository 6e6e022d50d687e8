"""CMO: minority images pasted onto naturally sampled batches, as a batch transform.

Reference: S. Park, Y. Hong, B. Heo, S. Yun and J. Y. Choi, "The Majority Can Help the
Minority: Context-rich Minority Oversampling for Long-tailed Classification", CVPR 2022.

Two streams feed training. The background stream is the data as it comes (a shuffled
``DataLoader``). The foreground stream draws item ``i`` with weight ``n_{y_i} ** -power``
(``MinoritySampler``; ``power=1``: every class equally often) from
the dataset of your choice: the real images, or an ``OversampledDataset`` (real and
DeepSMOTE images).
``ClassPriorSampler`` over an ``OversampledDataset``, with
``class_power=1 - power``, draws the same class rates with a chosen ``synthetic_share`` of
DeepSMOTE images (1.0: DeepSMOTE images alone wherever a class has them).

With probability ``prob`` per batch, ``CMO`` pastes a box of a foreground batch onto
the background batch with CutMix (Yun et al., ICCV 2019): one box per batch,
``lam ~ Beta(1, 1)``, sides ``sqrt(1 - lam)`` of the image's, a uniform centre, clipped at
the border. The targets are mixed by the area actually pasted:

    loss = lam_a * L(y_background) + (1 - lam_a) * L(y_pasted),  lam_a = 1 - box area / (H W)

The prior: the images of a batch are the background stream's, and so is the class prior
to tell a logit-adjusted loss, ``CMO.class_prior`` of the background's labels
(``LogitAdjustedLoss(CMO.class_prior(train_labels))``), although the mixed targets put
some of their mass (``prob`` times a mean pasted area of about 0.3: 15 % at
``prob=0.5``) on the foreground's prior
(``class_prior``). The paper pairs CMO with Balanced
Softmax on the natural counts in the same way, and ``benchmarks/RESULTS.md`` measured this
pairing as the strongest simple recipe.

The draws (coin, ``lam``, centre) are made in ``CMO.draw`` from a seeded
``torch.Generator``, never the global RNG; ``box`` and ``paste`` are pure.

Examples:
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from torch_deepsmote import MinoritySampler
    >>> from torch_deepsmote.losses import LogitAdjustedLoss
    >>> y = torch.tensor([0] * 12 + [1] * 4)
    >>> train = TensorDataset(torch.rand(16, 1, 8, 8), y)
    >>> natural = DataLoader(train, batch_size=4, shuffle=True, drop_last=True)
    >>> sampler = MinoritySampler(y, power=1.0, seed=0)
    >>> minority = DataLoader(train, batch_size=4, sampler=sampler, drop_last=True)
    >>> cmo = CMO(minority, prob=0.5, seed=0)
    >>> criterion = LogitAdjustedLoss(CMO.class_prior(y))
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    >>> for images, targets in natural:
    ...     batch = cmo(images, targets)
    ...     batch.loss(criterion, model(batch.images)).backward()
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._labels import as_labels
from ._seeding import epoch_generator
from ._validation import check_non_negative_int

__all__ = ["CMO", "CMOBatch", "box", "paste"]


def box(height: int, width: int, lam: float, cy: int, cx: int) -> tuple[int, int, int, int]:
    """The CutMix box for ``lam`` centred at ``(cy, cx)``.

    Its sides are ``int(sqrt(1 - lam) * side)``, clipped at the border, so its area may be
    less than ``1 - lam`` of the image: the loss takes the area pasted.

    Args:
        height, width: The image's size.
        lam: The share of the image meant to stay background, in [0, 1].
        cy, cx: The box's centre (row, column).

    Returns:
        ``(top, bottom, left, right)``, the box ``[top:bottom, left:right]``.

    Examples:
        >>> box(8, 8, 0.75, 4, 4), box(8, 8, 0.75, 0, 7)
        ((2, 6, 2, 6), (0, 2, 5, 8))
    """
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    top, bottom = max(cy - ch // 2, 0), min(cy + ch // 2, height)
    left, right = max(cx - cw // 2, 0), min(cx + cw // 2, width)
    return top, bottom, left, right


def paste(background: Tensor, foreground: Tensor, where: tuple[int, int, int, int]) -> Tensor:
    """Paste the box ``where`` of every foreground image onto its background image.

    Args:
        background: (B, C, H, W) images.
        foreground: (B, C, H, W) images (same device and dtype).
        where: ``(top, bottom, left, right)``, as ``box`` gives.

    Returns:
        (B, C, H, W), a new tensor; the inputs are left as they are.

    Examples:
        >>> paste(torch.zeros(1, 1, 3, 3), torch.ones(1, 1, 3, 3), (0, 2, 1, 3))[0, 0]
        tensor([[0., 1., 1.],
                [0., 1., 1.],
                [0., 0., 0.]])
    """
    top, bottom, left, right = where
    out = background.clone()
    out[..., top:bottom, left:right] = foreground[..., top:bottom, left:right]
    return out


class CMOBatch(NamedTuple):
    """A CMO batch and its mixed targets.

    Attributes:
        images: (B, C, H, W) the background images with the box pasted.
        targets: (B,) int64 the background images' classes.
        pasted: (B,) int64 the pasted images' classes (``targets`` itself when nothing was
            pasted).
        lam: The background's share of each image's area (1.0 when nothing was pasted).
    """

    images: Tensor
    targets: Tensor
    pasted: Tensor
    lam: float

    def loss(self, criterion: Callable[[Tensor, Tensor], Tensor], logits: Tensor) -> Tensor:
        """``lam * criterion(logits, targets) + (1 - lam) * criterion(logits, pasted)``.

        Args:
            criterion: A loss of ``(logits (B, C), targets (B,))``, e.g.
                ``LogitAdjustedLoss``.
            logits: (B, C) the model's output on ``images``.
        """
        value = criterion(logits, self.targets)
        if self.lam < 1.0:
            value = self.lam * value + (1.0 - self.lam) * criterion(logits, self.pasted)
        return value

    def soft_targets(self, num_classes: int) -> Tensor:
        """(B, num_classes) float32 ``lam * onehot(targets) + (1 - lam) * onehot(pasted)``,
        for a loss that takes class probabilities (the same value as ``loss`` for a
        cross-entropy).

        Examples:
            >>> targets, pasted = torch.tensor([0]), torch.tensor([2])
            >>> CMOBatch(torch.zeros(1, 1, 2, 2), targets, pasted, 0.75).soft_targets(3)
            tensor([[0.7500, 0.0000, 0.2500]])
        """
        return (
            self.lam * F.one_hot(self.targets, num_classes).float()
            + (1.0 - self.lam) * F.one_hot(self.pasted, num_classes).float()
        )


def _check_prob(prob: Any) -> float:
    if not isinstance(prob, numbers.Real) or isinstance(prob, bool):
        raise TypeError(f"`prob` should be a number in [0, 1], but got prob={prob!r}.")
    if not 0 <= prob <= 1:
        raise ValueError(f"`prob` should be in [0, 1], but got prob={prob!r}.")
    return float(prob)


class CMO:
    """Paste a minority batch onto each natural batch with probability ``prob``.

    Args:
        minority: An iterable of ``(images, targets)`` minority batches at least as large as
            the natural ones, e.g. ``DataLoader(ds, batch_size=B, sampler=MinoritySampler(ds),
            drop_last=True)``; it is started again whenever it runs out.
        prob: Chance of pasting per batch (0.5 in the paper). A plain attribute: set it to
            0 for the first and last few epochs to follow the paper's CIFAR schedule.
        seed: Seed of the coin, ``lam`` and centre draws.
        augment: Applied to each minority batch before pasting (the natural batch's
            augmentation), or ``None``.

    Raises:
        TypeError: ``minority`` not iterable, ``augment`` not callable, or a number of the
            wrong type.
        ValueError: ``prob`` outside [0, 1] or a negative ``seed``.

    Examples:
        >>> natural = (torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
        >>> minority = [(torch.ones(4, 1, 8, 8), torch.full((4,), 2))]
        >>> batch = CMO(minority, prob=1.0, seed=0)(*natural)
        >>> share_pasted = float(batch.images.mean())  # ones where pasted
        >>> batch.pasted.tolist(), abs(1 - batch.lam - share_pasted) < 1e-6
        ([2, 2, 2, 2], True)
        >>> from torch_deepsmote.losses import LogitAdjustedLoss
        >>> criterion = LogitAdjustedLoss(CMO.class_prior([0, 0, 0, 1, 2]))
        >>> batch.loss(criterion, torch.zeros(4, 3)).shape
        torch.Size([])
    """

    def __init__(
        self,
        minority: Iterable,
        prob: float = 0.5,
        seed: int = 0,
        augment: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if not isinstance(minority, Iterable):
            raise TypeError(
                "`minority` should be an iterable of (images, targets) batches such as a "
                f"DataLoader, but got minority of type {type(minority).__name__}."
            )
        if augment is not None and not callable(augment):
            raise TypeError(f"`augment` should be None or callable, but got augment={augment!r}.")
        self.minority, self.augment = minority, augment
        self.prob = _check_prob(prob)
        self.seed = check_non_negative_int("seed", seed)
        self.epoch = 0
        self._generator: torch.Generator | None = None
        self._batches: Iterator | None = None

    @staticmethod
    def class_prior(labels: Any) -> Tensor:
        """(C,) float64 class frequencies of the background stream's ``labels`` (N,): the
        prior of CMO's batches, to give
        [`LogitAdjustedLoss`][torch_deepsmote.losses.LogitAdjustedLoss].

        A background stream drawn by a sampler with a prior of its own
        ([`ClassPriorSampler`][torch_deepsmote.samplers.prior.ClassPriorSampler]) carries that one
        instead (``sampler.class_prior``).

        Examples:
            >>> CMO.class_prior([0, 0, 0, 1]).tolist()
            [0.75, 0.25]
        """
        counts = torch.bincount(as_labels(labels, "labels")).double()
        return counts / counts.sum()

    def set_epoch(self, epoch: int) -> None:
        """Start the draws of ``epoch`` (seed ``seed + epoch``) and the minority stream
        anew, so that an epoch replays from its number (call the minority sampler's
        ``set_epoch`` first)."""
        self.epoch = check_non_negative_int("epoch", epoch)
        self._generator, self._batches = None, None

    def draw(self, height: int, width: int) -> tuple[int, int, int, int] | None:
        """The box of the next batch, or ``None`` when this batch is left as it is."""
        if self._generator is None:
            self._generator = epoch_generator(self.seed, self.epoch)
        coin, lam = torch.rand(2, generator=self._generator, dtype=torch.float64).tolist()
        if coin >= self.prob:
            return None
        cy = int(torch.randint(height, (1,), generator=self._generator))
        cx = int(torch.randint(width, (1,), generator=self._generator))
        return box(height, width, lam, cy, cx)  # lam ~ U(0, 1) = Beta(1, 1)

    def _next_minority(self) -> tuple[Tensor, Tensor]:
        if self._batches is None:
            self._batches = iter(self.minority)
        try:
            return next(self._batches)
        except StopIteration:
            self._batches = iter(self.minority)
            return next(self._batches)

    def __call__(self, images: Tensor, targets: Tensor) -> CMOBatch:
        """Paste onto one natural batch: (B, C, H, W) images, (B,) targets -> a
        ``CMOBatch`` (the images unchanged and ``lam=1.0`` when the coin says no)."""
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
        foreground = foreground.to(device=images.device, dtype=images.dtype)
        top, bottom, left, right = where
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        return CMOBatch(paste(images, foreground, where), targets, pasted.to(targets), lam)
