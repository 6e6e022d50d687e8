"""What classify.py's training loop does to a batch: augmentation, mixing, deferred sampling.

Every method gets the same augmentation (:class:`CropFlip`, applied by
``classify_methods.train_classifier`` to each batch, synthetic images included). The
long-tail baselines of issue 12 differ from plain training only in what happens to the
augmented batch and which loader feeds it:

- ``mixup_la``: input mixup (Zhang et al., ICLR 2018) with ``lam ~ Beta(1, 1)``, the
  setting of BagofTricks-LT's input-mixup configs and of imbalanced-DL's Mixup-DRW;
  :class:`Mixup`.
- ``cmo_la``: CMO (Park et al., CVPR 2022, naver-ai/cmo): a second loader draws images with
  weights ``1 / n_c`` (so every class equally often), and with probability 0.5 a CutMix box
  of it is pasted onto the naturally sampled batch, the targets mixed by area;
  :class:`CMO`.
- ``drw``: deferred re-balancing by sampling (BagofTricks-LT's DRS; Cao et al.'s DRW
  defers re-weighting the same way): natural batches, then class-balanced ones for the
  last quarter of the steps; :func:`deferred`.

Randomness comes from generators seeded from the run's seed, never the global RNG: two
runs with one seed see the same crops, boxes and lambdas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from torch_deepsmote import cmo

__all__ = [
    "AUGMENTATIONS",
    "CMO",
    "CropFlip",
    "Mixup",
    "Recipe",
    "child_seed",
    "class_balanced_sampler",
    "cutmix_box",
    "deferred",
    "make_augment",
    "prior_weights",
]

AUGMENTATIONS = ("crop-flip", "crop", "none")


MIXUP_ALPHA = 1.0  # BagofTricks-LT's input-mixup configs and imbalanced-DL use alpha = 1
CMO_PROB = 0.5  # naver-ai/cmo's mixup_prob


class Recipe(NamedTuple):
    """What a method hands the training loop (``classify_methods.train_classifier``).

    Attributes:
        batches: endless iterator of (x float (B, C, H, W), y int64 (B,)), one per step.
        prior: class prior (or counts) of the batches for the library's
            ``LogitAdjustedLoss`` (float (n_classes,)), None (plain cross-entropy), or a
            callable giving the prior of the current batch (a prior that changes in training).
        info: numbers worth keeping in the record (sizes, setup time).
        mix: None, or ``mix(x, y, step, augment) -> (x, y2, lam)`` applied after the
            augmentation (:class:`Mixup`, :class:`CMO`).
        tau: the logit adjustment's temperature (``LogitAdjustedLoss(prior, tau)``).
        sam_rho: radius of sharpness-aware minimisation's ascent step (Foret et al., ICLR
            2021); 0 trains with the plain optimiser step.
    """

    batches: Iterator
    prior: torch.Tensor | Callable | None
    info: dict
    mix: Callable | None = None
    tau: float = 1.0
    sam_rho: float = 0.0


def class_counts(labels, n_classes: int) -> torch.Tensor:
    """(n_classes,) float64 class counts: the natural prior that the library's
    ``LogitAdjustedLoss`` normalises."""
    return torch.as_tensor(
        np.bincount(np.asarray(labels), minlength=n_classes), dtype=torch.float64
    )


def endless(loader: DataLoader, on_epoch=None) -> Iterator:
    """The loader's batches for ever (``on_epoch(epoch)`` before each pass).

    Raises:
        ValueError: A pass yields no batch (fewer items than one batch with
            ``drop_last``), which would otherwise loop for ever.
    """
    epoch = 0
    while True:
        if on_epoch is not None:
            on_epoch(epoch)
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError(
                f"the training loader yields no batch: {len(loader.dataset)} items, "
                f"batch_size={loader.batch_size}, drop_last={loader.drop_last}; use a "
                "smaller --batch-size or more training images."
            )
        epoch += 1


def shuffled(data, bs: int, seed: int) -> Iterator:
    """Endless batches of ``data`` in a fresh seeded order each pass (natural rates)."""
    gen = torch.Generator().manual_seed(seed)
    return endless(DataLoader(data, bs, shuffle=True, generator=gen, drop_last=True))


def child_seed(seed: int, stream: int) -> int:
    """An independent seed for the ``stream``-th random stream of a run with ``seed``."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


class CropFlip:
    """Random crop after zero padding and a random horizontal flip, per image of a batch.

    The standard augmentation of the long-tail literature's CIFAR recipes (LDAM-DRW, CMO,
    BagofTricks-LT: pad 4, crop 32, flip), scaled to 28x28 images with a 2-pixel pad. The
    pad is black, as the Fashion-MNIST background. torchvision's ``RandomCrop`` on a batch
    would move every image by the same offset; here each image gets its own.

    Args:
        pad: pixels of zero padding on each side; the crop moves by up to ``pad`` pixels.
        flip: whether to flip half of the images left to right.
        seed: seed of the local generator.

    Example:
        >>> aug = CropFlip(pad=2, flip=True, seed=0)
        >>> aug(torch.rand(4, 1, 28, 28)).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(self, pad: int, flip: bool, seed: int) -> None:
        self.pad, self.flip = pad, flip
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) float -> a new tensor of the same shape."""
        n, c, h, w = x.shape
        p, g = self.pad, self.generator
        if p:
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,), generator=g)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=g)
            rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
            x = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                       rows, cols]  # fmt: skip
        if self.flip:
            flip = torch.rand(n, generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x


def make_augment(kind: str, side: int, seed: int) -> CropFlip | None:
    """The augmentation ``kind`` (one of :data:`AUGMENTATIONS`) for ``side``-pixel images:
    a 2-pixel pad for 28x28 images, 4 (the CIFAR recipe) from 32x32 on, 1 below 16x16 (8x8
    digits); None for 'none'."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"`augment` should be one of {AUGMENTATIONS}, but got augment={kind!r}.")
    if kind == "none":
        return None
    pad = 4 if side >= 32 else 2 if side >= 16 else 1
    return CropFlip(pad=pad, flip=kind == "crop-flip", seed=seed)


def prior_weights(labels, extra, prior, share: float) -> torch.Tensor:
    """Item weights that draw like the library's ``ClassPriorSampler``, with replacement.

    Class ``c``'s items weigh ``prior[c]`` together (torch's ``WeightedRandomSampler``
    divides by the sum, so any scale draws the same classes): ``share`` of it on its
    ``extra`` items (none for a class without any), the rest on its own, uniformly within
    each part. ``prior`` is the library's :func:`~torch_deepsmote.class_prior` of the
    classes' own counts, or ones (every class equally often, the weights of the committed
    balanced runs bit for bit).

    The library's samplers draw without replacement within a class; the committed baselines
    drew with replacement (as the CMO reference code does) and keep doing so, so that their
    seeds still reproduce them.

    Args:
        labels: (N,) int labels ``0 .. C-1``.
        extra: (N,) bool, the items that take ``share`` of their class's draws (synthetic
            or unseen images); all False for a plain class prior.
        prior: (C,) float64, each class's total weight.
        share: the share of a class's draws from its ``extra`` items, in [0, 1].

    Returns:
        (N,) float64 weights.

    Example:
        >>> from torch_deepsmote import class_prior
        >>> labels, extra = torch.tensor([0, 0, 0, 1, 1]), torch.tensor([0, 0, 0, 0, 1]) > 0
        >>> prior_weights(labels, extra, class_prior(torch.tensor([3, 1]), 1.0), 0.5).tolist()
        [0.25, 0.25, 0.25, 0.125, 0.125]
    """
    labels, extra = torch.as_tensor(labels), torch.as_tensor(extra, dtype=torch.bool)
    weights = torch.zeros(len(labels), dtype=torch.float64)
    for c in range(len(prior)):
        own, new = (labels == c) & ~extra, (labels == c) & extra
        s = share if new.any() else 0.0
        if own.any():
            weights[own] = prior[c] * (1 - s) / own.sum()
        if s:
            weights[new] = prior[c] * s / new.sum()
    return weights


def class_balanced_sampler(labels, generator: torch.Generator) -> WeightedRandomSampler:
    """Draws ``len(labels)`` items with replacement, every class equally often
    (:func:`prior_weights` with one weight per class: item weights ``1 / n_c``).

    CMO's minority loader (``weighted_alpha = 1``), the ``weighted`` baseline and the last
    stage of ``drw`` all sample this way.
    """
    labels = torch.as_tensor(np.asarray(labels))
    n_classes = int(labels.max()) + 1
    no_extra = torch.zeros(len(labels), dtype=torch.bool)
    weights = prior_weights(labels, no_extra, torch.ones(n_classes, dtype=torch.float64), 0.0)
    return WeightedRandomSampler(weights, len(labels), generator=generator)


def deferred(first: Iterator, then: Iterator, switch_at: int) -> Iterator:
    """``switch_at`` batches of ``first``, then ``then`` for ever.

    The training loop draws one batch per optimiser step, so the switch happens at step
    ``switch_at``. ``then`` is not touched before (a generator starts lazily).
    """
    for _ in range(switch_at):
        yield next(first)
    yield from then


class Mixup:
    """Input mixup: ``lam * x + (1 - lam) * x[perm]``, one ``lam ~ Beta(alpha, alpha)`` per
    batch, targets ``y`` (weight ``lam``) and ``y[perm]`` (``1 - lam``), applied to every batch.

    Example:
        >>> x, y = torch.rand(8, 1, 4, 4), torch.arange(8)
        >>> xm, y2, lam = Mixup(seed=0)(x, y, step=0)
        >>> xm.shape, sorted(y2.tolist()) == list(range(8)), 0 <= lam <= 1
        (torch.Size([8, 1, 4, 4]), True, True)
    """

    def __init__(self, alpha: float = 1.0, seed: int = 0) -> None:
        self.alpha = alpha
        self.rng = np.random.default_rng(child_seed(seed, 0))
        self.generator = torch.Generator().manual_seed(child_seed(seed, 1))

    def __call__(self, x, y, step: int, augment=None):
        """(mixed x, second targets, weight of the first targets)."""
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.randperm(len(x), generator=self.generator)
        return lam * x + (1 - lam) * x[perm], y[perm], lam


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator):
    """(top, bottom, left, right) of a CutMix box covering about ``1 - lam`` of the image,
    its centre drawn from ``rng`` (the box itself is the library's :func:`torch_deepsmote.
    cmo.box`: sides ``sqrt(1 - lam)`` times the image's, clipped at the border)."""
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return cmo.box(height, width, lam, cy, cx)


class CMO:
    """Context-rich minority oversampling: minority images pasted onto majority contexts.

    The library's :class:`torch_deepsmote.cmo.CMO` does the same with torch generators;
    this one keeps the numpy draws of the committed runs (same box and paste arithmetic,
    the library's :func:`~torch_deepsmote.cmo.box` and :func:`~torch_deepsmote.cmo.paste`),
    so that their seeds still reproduce them.

    With probability ``prob`` per step, a batch from ``minority`` (a class-balanced stream,
    see :func:`class_balanced_sampler`) is augmented like the main batch, and a CutMix box
    of it (``lam ~ U(0, 1)``, one box per batch as in naver-ai/cmo) replaces the same box
    of every image of the naturally sampled batch. The loss weights the background's target
    by ``1 - area / (H * W)`` and the pasted image's by ``area / (H * W)``.

    NOTE: CMO is off for the first and last 3 of 200 epochs in the published CIFAR recipe
    (``start_data_aug = end_data_aug = 3``); ``off`` keeps those shares of the steps.

    Args:
        minority: endless iterator of (x, y) minority batches of the main batch's size.
        steps: the run's optimiser steps (for the off-windows).
        prob: chance of pasting at a step.
        seed: seed of the box and coin draws.
        off: share of the steps at the start and at the end without pasting.
    """

    def __init__(
        self, minority: Iterator, steps: int, prob: float = 0.5, seed: int = 0, off=0.015
    ) -> None:
        self.minority, self.prob = minority, prob
        self.first, self.last = round(off * steps), steps - round(off * steps)
        self.rng = np.random.default_rng(child_seed(seed, 2))

    def __call__(self, x, y, step: int, augment=None):
        """(x with the box pasted, second targets, weight of the first targets); weight 1
        and ``y`` itself when nothing is pasted."""
        if not self.first <= step < self.last or self.rng.random() >= self.prob:
            return x, y, 1.0
        x2, y2 = next(self.minority)
        x2, y2 = x2[: len(x)], y2[: len(y)]
        if augment is not None:
            x2 = augment(x2)
        h, w = x.shape[-2:]
        where = cutmix_box(h, w, float(self.rng.uniform()), self.rng)
        top, bottom, left, right = where
        return cmo.paste(x, x2, where), y2, 1.0 - (bottom - top) * (right - left) / (h * w)
