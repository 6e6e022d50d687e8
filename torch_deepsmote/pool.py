"""The synthetic items an ``OversampledDataset`` serves: ``SyntheticPool``.

One object holds the four rules of the synthetic part of a served epoch:

- what to decode: the SMOTE plan of ``(seed, epoch)`` (``SyntheticPool.plan``), the
  same on every process; the seed is the dataset's own, else the calling sampler's, else 0;
- when to refresh: at each epoch a share ``refresh`` of the synthetic set is drawn anew and
  the rest kept (1: a fresh set per epoch, 0: one set throughout). Which items are drawn
  anew, and how, follows from ``(seed, epoch)`` alone, so every rank, worker and rerun
  agrees, whatever epochs it skipped;
- on which device: the synthesizer's, in the process that made the pool; DataLoader
  workers decode on the CPU;
- its memory rule: ``pool='auto'`` keeps the decoded set in shared memory when it takes at
  most a quarter of the available memory (``memory_allows``,
  the rule of ``in_memory='auto'`` too).

A pooled set is decoded in the main process (on the model's device) into shared memory
that forked, spawned and persistent workers read; ``set_epoch`` decodes only the items that
changed: all of them for a fresh set, ``refresh`` of them for a partial refresh, none for a
fixed set.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from ._format import writable
from ._seeding import make_generator, mixed_seed
from ._validation import check_bool_or_auto, check_non_negative_int, check_positive_int
from .reading import memory_allows
from .smote import SMOTEPlan
from .synthesis import Synthesizer

__all__ = ["SyntheticPool", "check_pool_options"]


def check_pool_options(
    seed: Any, pool: Any, refresh: Any, decode_batch_size: Any
) -> tuple[int | None, bool | str, float, int]:
    """The pool's options, checked (so that a dataset refuses them before reading a thing).

    Raises:
        TypeError: An option of the wrong type.
        ValueError: A negative seed, ``pool`` other than True, False or ``'auto'``,
            ``refresh`` outside [0, 1], or ``decode_batch_size < 1``.
    """
    seed = None if seed is None else check_non_negative_int("seed", seed)
    pool = check_bool_or_auto("pool", pool)
    if not isinstance(refresh, numbers.Real) or isinstance(refresh, bool):
        raise TypeError(f"`refresh` should be a number in [0, 1], but got refresh={refresh!r}.")
    if not 0 <= float(refresh) <= 1:
        raise ValueError(f"`refresh` should be a number in [0, 1], but got refresh={refresh!r}.")
    return seed, pool, float(refresh), check_positive_int("decode_batch_size", decode_batch_size)


class SyntheticPool:
    """The synthetic part of a served epoch: its plan, its refresh rule and its images.

    Args:
        synthesizer: Turns plans into images (on its device in this process).
        n_new: ``{class: count}`` of synthetic items, grouped by class in sorted order.
        image_shape: ``(C, H, W)`` of one image.
        seed: Seed of the draws; ``None``: the seed ``set_epoch`` is given, else 0.
        pool: Keep the decoded set in shared memory (True), decode per batch (False), or
            pool when the set takes at most a quarter of the available memory (``'auto'``).
        refresh: The share of the set drawn anew at each epoch, in [0, 1].
        decode_batch_size: Codes per decoder call.

    Examples:
        >>> from torch_deepsmote import DeepSMOTE
        >>> X = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
        >>> y = torch.tensor([0] * 30 + [1] * 10)
        >>> model = DeepSMOTE(latent_dim=4, hidden_channels=4, max_epochs=1,
        ...                   progress=False, random_state=0).fit(X, y)
        >>> pool = SyntheticPool(model.synthesizer_, {1: 20}, (1, 8, 8), refresh=0.25)
        >>> first = pool.plan()
        >>> pool.set_epoch(1)
        >>> int((pool.plan().lam != first.lam).sum())  # a quarter drawn anew
        5
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        n_new: Mapping[int, int],
        image_shape: tuple[int, ...],
        *,
        seed: int | None = None,
        pool: bool | str = "auto",
        refresh: float = 1.0,
        decode_batch_size: int = 256,
    ) -> None:
        options = check_pool_options(seed, pool, refresh, decode_batch_size)
        self.seed, pool, self.refresh, self.decode_batch_size = options
        self.synthesizer = synthesizer
        self.n_new = dict(n_new)
        # The epoch and the sampler's seed live in shared memory so that persistent
        # DataLoader workers see set_epoch (-1: no sampler seed given).
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._sampler_seed = torch.full((1,), -1, dtype=torch.int64).share_memory_()
        self._current: tuple[tuple[int, int], SMOTEPlan] | None = None  # this epoch's plan
        self._walk: tuple[tuple[int, int], SMOTEPlan] | None = None  # the last one built
        dtype = synthesizer.image_format.torch_dtype
        shape = (len(self), *image_shape)
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        self.pooled = pool if isinstance(pool, bool) else memory_allows(nbytes)
        if self.pooled:
            # Shared memory, allocated once and refilled in place: forked, spawned and
            # persistent workers all read the images the main process decodes.
            self._images = torch.empty(shape, dtype=dtype).share_memory_()
            self._held = torch.full((2,), -1, dtype=torch.int64).share_memory_()  # (seed, epoch)
            self._held_plan: SMOTEPlan | None = None  # the plan of the held images
            self.fill()

    def __len__(self) -> int:
        return sum(self.n_new.values())

    # ------------------------------------------------------------------ epochs and seeds
    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    @property
    def draw_seed(self) -> int:
        """The seed of the draws: ``seed``, else the sampler's, else 0."""
        if self.seed is not None:
            return self.seed
        return max(int(self._sampler_seed[0]), 0)

    def set_epoch(self, epoch: int, seed: int | None = None) -> None:
        """Serve the set of ``epoch``; ``seed`` is the calling sampler's (used when the pool
        has no ``seed`` of its own). A pool refills here, in the main process."""
        self._epoch.fill_(check_non_negative_int("epoch", epoch))
        if seed is not None:
            self._sampler_seed.fill_(check_non_negative_int("seed", seed))
        if self.pooled and get_worker_info() is None:
            self.fill()

    # ------------------------------------------------------------------ what to decode
    def plan(self, epoch: int | None = None) -> SMOTEPlan:
        """The synthetic set of ``epoch`` (``None``: the current one), the same on every
        process for ``(draw_seed, epoch)``."""
        current = self.epoch
        epoch = current if epoch is None else check_non_negative_int("epoch", epoch)
        key = (self.draw_seed, epoch)
        if self._current is not None and self._current[0] == key:
            return self._current[1]
        plan = self._build(*key)
        if epoch == current:  # another epoch's plan leaves the current one cached
            self._current = (key, plan)
        return plan

    def refreshed(self, epoch: int, seed: int | None = None) -> Tensor:
        """(k,) sorted positions drawn anew at ``epoch`` (every one at epoch 0)."""
        seed = self.draw_seed if seed is None else seed
        n = len(self)
        if epoch == 0 or self.refresh == 1.0:
            return torch.arange(n)
        k = round(self.refresh * n)
        generator = make_generator(mixed_seed(seed, epoch, "refresh"))
        return torch.randperm(n, generator=generator)[:k].sort().values

    def _draw(self, seed: int, epoch: int) -> SMOTEPlan:
        return self.synthesizer.plan(self.n_new, make_generator(mixed_seed(seed, epoch)))

    def _build(self, seed: int, epoch: int) -> SMOTEPlan:
        """Epoch ``epoch``'s set: epoch 0's draw, its ``refreshed`` rows replaced by the
        draws of each later epoch in turn (from the last set built when it is on the way)."""
        if self.refresh == 1.0:
            return self._draw(seed, epoch)
        if self.refresh == 0.0:
            return self._draw(seed, 0)
        walk = self._walk
        if walk is None or walk[0][0] != seed or walk[0][1] > epoch:
            walk = ((seed, 0), self._draw(seed, 0))
        (_, done), plan = walk
        for step in range(done + 1, epoch + 1):
            rows = self.refreshed(step, seed)
            plan = _replace_rows(plan, rows, self._draw(seed, step)[rows])
        self._walk = ((seed, epoch), plan)
        return plan

    # ------------------------------------------------------------------ images
    def images(self, positions: Tensor) -> Tensor:
        """(m, C, H, W) images of this epoch's set at ``positions`` (m,): from the pool when
        it holds this epoch, else decoded here."""
        if self.pooled and self._holds(self.draw_seed, self.epoch):
            return self._images[positions]
        return self.synthesizer.images(self.plan()[positions], self.decode_batch_size)

    def _holds(self, seed: int, epoch: int) -> bool:
        return int(self._held[0]) == seed and int(self._held[1]) == epoch

    def fill(self) -> None:
        """Decode into the pool the items of this epoch's set it does not hold yet."""
        seed, epoch = self.draw_seed, self.epoch
        if self._holds(seed, epoch):
            return
        plan, held = self.plan(), self._held_plan
        rows = torch.arange(len(self)) if held is None else _changed_rows(held, plan)
        self._held.fill_(-1)  # never read half-filled
        self._held_plan = None
        step = self.decode_batch_size
        for first in range(0, len(rows), step):
            chunk = rows[first : first + step]
            writable(self._images)[chunk] = writable(self.synthesizer.images(plan[chunk], step))
        self._held_plan = plan
        self._held.copy_(torch.tensor([seed, epoch]))

    def __repr__(self) -> str:
        where = "pooled in shared memory" if self.pooled else "decoded per batch"
        seed = self.seed if self.seed is not None else f"the sampler's ({self.draw_seed})"
        return (
            f"{type(self).__name__}({len(self)} images, {where}, refresh={self.refresh}, "
            f"seed={seed}, epoch={self.epoch}, device={self.synthesizer.device}, "
            f"decode_batch_size={self.decode_batch_size})"
        )


def _replace_rows(plan: SMOTEPlan, rows: Tensor, new: SMOTEPlan) -> SMOTEPlan:
    """``plan`` with the samples at ``rows`` (k,) replaced by ``new`` (k samples)."""

    def put(old: Tensor | None, values: Tensor | None) -> Tensor | None:
        if old is None:
            return None
        out = old.clone()
        out[rows] = values
        return out

    return SMOTEPlan(
        put(plan.labels, new.labels),
        put(plan.base, new.base),
        put(plan.neighbor, new.neighbor),
        put(plan.lam, new.lam),
        put(plan.anchor, new.anchor),
    )


def _changed_rows(old: SMOTEPlan, new: SMOTEPlan) -> Tensor:
    """(k,) positions whose sample differs between two plans of one length."""
    same = (old.base == new.base) & (old.neighbor == new.neighbor) & (old.lam == new.lam)
    same &= old.anchors == new.anchors
    return torch.nonzero(~same).flatten()
