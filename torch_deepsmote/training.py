"""The autoencoder's fit loop: batches, the penalty's class draw, plateau stop, precision.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022. The published recipe: Adam (lr 2e-4) for
encoder and decoder, batches of 100 from the imbalanced set, and for every batch a penalty
batch of up to 100 images of one class drawn uniformly at random (see :mod:`.losses`).
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._validation import (
    check_bool,
    check_choice,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
)
from .distributed import Ranks, all_gather_objects, all_reduce_sum
from .losses import DeepSMOTELoss, LossTerms
from .storage.checkpoint import Checkpoint

__all__ = ["TrainingConfig", "fit_autoencoder", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainingConfig:
    """Options of :func:`fit_autoencoder` (the paper's values by default).

    Attributes:
        batch_size: Images per optimiser step, and the size of the penalty's class batch.
        lr: Adam's learning rate for encoder and decoder.
        max_epochs: Upper bound on passes over the data.
        patience: Stop after this many epochs without a relative improvement of
            ``min_delta`` in the epoch's mean loss; 0 never stops early.
        min_delta: Relative improvement that counts as progress.
        penalty_weight: Weight of the penalty term (0 turns it off).
        penalty_encoder_grad: Whether the encoder learns from the penalty term.
        precision: ``"auto"`` (bf16 autocast on CUDA where supported, else fp16; fp32 on
            CPU), ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA only).
        channels_last: Use the channels-last memory format (faster convolutions on some
            CPUs and with autocast on GPUs).
    """

    batch_size: int = 100
    lr: float = 2e-4
    max_epochs: int = 50
    patience: int = 5
    min_delta: float = 1e-3
    penalty_weight: float = 1.0
    penalty_encoder_grad: bool = False
    precision: str = "auto"
    channels_last: bool = False

    def __post_init__(self) -> None:
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_positive_int("max_epochs", self.max_epochs)
        check_non_negative_int("patience", self.patience)
        check_positive_float("min_delta", self.min_delta, allow_zero=True)
        check_positive_float("penalty_weight", self.penalty_weight, allow_zero=True)
        check_bool("penalty_encoder_grad", self.penalty_encoder_grad)
        check_choice("precision", self.precision, PRECISIONS)
        check_bool("channels_last", self.channels_last)

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; ``None`` means plain fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"`precision` should be 'fp32' or 'bf16' on {device.type}, but got "
            "precision='fp16'. fp16 autocast needs CUDA."
        )
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _class_rows(labels: Tensor) -> list[Tensor]:
    # Classes with a single image are left out of the penalty draw: BatchNorm cannot take
    # a batch of one in training mode (the published code would crash on them).
    rows = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    return [r for r in rows if len(r) >= 2]


def _adam(params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    # NOTE: the fused kernel does the same arithmetic (up to float rounding) in one pass per
    # tensor instead of about ten. On 2 CPU cores shared with another busy process, the
    # for-loop Adam took 0.70-0.95 s per step for the paper's 13M parameters (every small
    # OpenMP region waits for a descheduled thread), fused 0.29-0.38 s.
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # torch < 2.4 on CPU, or odd devices
        return torch.optim.Adam(params, lr=lr)


class _Autoencoder(nn.Module):
    """Encoder, decoder and loss as one module: one forward per step, so that
    ``DistributedDataParallel`` sees every parameter the step uses."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, criterion: DeepSMOTELoss) -> None:
        super().__init__()
        self.encoder, self.decoder, self.criterion = encoder, decoder, criterion

    def forward(self, images: Tensor, class_images: Tensor | None) -> LossTerms:
        return self.criterion(self.encoder, self.decoder, images, class_images)


def _wrap(module: nn.Module, device: torch.device, ranks: Ranks | None) -> nn.Module:
    if ranks is None:
        return module
    from torch.nn.parallel import DistributedDataParallel

    # NOTE: DDP broadcasts rank 0's weights now and its BatchNorm buffers at every forward.
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def _shard(order: Tensor, ranks: Ranks | None) -> Tensor:
    """This rank's rows of one epoch's permutation, by ``DistributedSampler``'s rule: padded
    by repeating its start to a multiple of the world size, then every world_size-th row."""
    if ranks is None:
        return order
    size = -(-len(order) // ranks.world_size)
    padded = torch.cat([order, order[: size * ranks.world_size - len(order)]])
    return padded[ranks.rank :: ranks.world_size]


def fit_autoencoder(
    encoder: nn.Module,
    decoder: nn.Module,
    images: Tensor,
    labels: Tensor,
    to_unit: Callable[[Tensor], Tensor],
    *,
    config: TrainingConfig | None = None,
    generator: torch.Generator,
    device: torch.device,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
    checkpoint: Checkpoint | None = None,
    ranks: Ranks | None = None,
    penalty_generator: torch.Generator | None = None,
) -> list[dict]:
    """Train ``encoder`` and ``decoder`` in place and load the best epoch's weights.

    Args:
        encoder: Maps (B, C, H, W) in [-1, 1] to (B, D).
        decoder: Maps (B, D) to (B, C, H, W) in [-1, 1].
        images: (N, C, H, W) training images in the user's dtype (uint8 stays uint8: a
            quarter of the memory of float32), or an
            :class:`~torch_deepsmote.storage.image_store.H5Images` of them, read batch by batch.
        labels: (N,) int64 class labels.
        to_unit: Maps a batch of ``images`` to float32 in [-1, 1].
        config: Options; the paper's by default.
        generator: CPU generator for every random draw (batch order, penalty class and
            images), so a seed fixes the run.
        device: Where to train.
        progress: Show a tqdm progress bar over epochs.
        callback: Called after every epoch with that epoch's dict (before the plateau
            check), e.g. to evaluate held-out images; its time is not in ``seconds``. It may
            switch the models to eval mode: they are put back in training mode after it.
        checkpoint: Where to store the state after every epoch and resume from (see
            :mod:`torch_deepsmote.storage.checkpoint`); ``None`` keeps nothing. Under ``ranks``,
            rank 0 writes it (with every rank's ``penalty_generator`` state) and every
            rank resumes from it.
        ranks: Fit together with the other ranks of the default process group
            (:mod:`torch_deepsmote.distributed`): ``generator``, the same on every rank,
            draws each epoch's permutation, of which each rank trains on its share
            (``DistributedSampler``'s rule), with ``batch_size`` images per rank and step;
            ``DistributedDataParallel`` averages the gradients. The loss of an epoch is
            the mean over every rank's steps, so all ranks stop together. ``None``: this
            process alone.
        penalty_generator: Draws the penalty's class batches; ``None``: ``generator``.
            Under ``ranks`` it must differ per rank (each rank draws its own class).

    Returns:
        One dict per epoch: ``epoch``, ``loss``, ``reconstruction``, ``penalty``, ``seconds``.
    """
    config = config or TrainingConfig()
    penalty_generator = generator if penalty_generator is None else penalty_generator
    step = _Step(encoder, decoder, config, device, ranks)
    batches = _Batches(images, labels, to_unit, config, device, step.memory_format)
    plateau = _Plateau(config)
    history = _resume(checkpoint, step, plateau, generator, penalty_generator, ranks)
    main = ranks is None or ranks.is_main
    start_epoch = len(history)
    bar = tqdm(
        range(start_epoch, config.max_epochs if not plateau.done else start_epoch),
        desc="DeepSMOTE fit",
        unit="epoch",
        disable=not (progress and main),
        initial=start_epoch,
        total=config.max_epochs,
    )
    for epoch in bar:
        start = time.perf_counter()
        rows = batches.epoch(generator, ranks)
        loss, reconstruction, penalty = step.epoch(batches, rows, penalty_generator)
        if not math.isfinite(loss):
            raise RuntimeError(
                f"DeepSMOTE training diverged at epoch {epoch} (loss={loss}). Lower `lr` or "
                "use precision='fp32'."
            )
        terms = dict(loss=loss, reconstruction=reconstruction, penalty=penalty)
        history.append({"epoch": epoch, **terms, "seconds": time.perf_counter() - start})
        bar.set_postfix(loss=f"{loss:.4f}", rec=f"{reconstruction:.4f}")
        if callback is not None:
            callback(history[-1])
            encoder.train()
            decoder.train()
        plateau.update(loss, encoder, decoder)
        _save(checkpoint, step, plateau, history, generator, penalty_generator, ranks)
        if plateau.done:
            break
    bar.close()
    encoder.load_state_dict(plateau.best_state[0])
    decoder.load_state_dict(plateau.best_state[1])
    encoder.to(memory_format=torch.contiguous_format).eval()
    decoder.to(memory_format=torch.contiguous_format).eval()
    return history


class _Batches:
    """The training images as batches: each epoch's order (this rank's share of it) and
    the penalty's single-class batch.

    Small image sets (these models' use case) go to the device whole; uint8 stays small.
    An image store on disk (``H5Images``) stays there: each batch reads its rows.
    """

    def __init__(
        self,
        images: Any,
        labels: Tensor,
        to_unit: Callable[[Tensor], Tensor],
        config: TrainingConfig,
        device: torch.device,
        memory_format: torch.memory_format,
    ) -> None:
        self.images = images.to(device) if isinstance(images, Tensor) else images
        self.to_unit, self.device, self.memory_format = to_unit, device, memory_format
        self.class_rows = [r.to(device) for r in _class_rows(labels)]
        self.size = min(config.batch_size, len(images))
        self.penalty = config.penalty_weight > 0 and bool(self.class_rows)

    def __call__(self, rows: Tensor) -> Tensor:
        """(B, C, H, W) float32 in [-1, 1] of ``rows``, on the device."""
        batch = self.to_unit(self.images[rows].to(self.device))
        return batch.contiguous(memory_format=self.memory_format)

    def epoch(self, generator: torch.Generator, ranks: Ranks | None) -> list[Tensor]:
        """One epoch's batches of rows (a permutation drawn from ``generator``; this rank's
        share of it), leaving out a last batch of one (BatchNorm cannot train on it)."""
        order = _shard(torch.randperm(len(self.images), generator=generator), ranks)
        order = order.to(self.device)
        batches = [order[i : i + self.size] for i in range(0, len(order), self.size)]
        return [rows for rows in batches if len(rows) >= 2]

    def penalty_batch(self, generator: torch.Generator) -> Tensor | None:
        """Up to ``batch_size`` images of one class drawn uniformly (the paper's penalty
        batch), or ``None`` without a penalty."""
        if not self.penalty:
            return None
        pick = int(torch.randint(len(self.class_rows), (1,), generator=generator))
        members = self.class_rows[pick]
        take = torch.randperm(len(members), generator=generator)[: self.size]
        return self(members[take.to(self.device)])


class _Step:
    """The model, optimiser, loss scaling and autocast of one fit, and its epoch of steps."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        config: TrainingConfig,
        device: torch.device,
        ranks: Ranks | None,
    ) -> None:
        amp_dtype = resolve_precision(config.precision, device)
        channels_last = config.channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        encoder.to(device=device, memory_format=self.memory_format).train()
        decoder.to(device=device, memory_format=self.memory_format).train()
        self.encoder, self.decoder, self.device, self.ranks = encoder, decoder, device, ranks
        criterion = DeepSMOTELoss(config.penalty_weight, config.penalty_encoder_grad)
        self.model = _wrap(_Autoencoder(encoder, decoder, criterion), device, ranks)
        self.optimizer = _adam(list(encoder.parameters()) + list(decoder.parameters()), config.lr)
        # fp16 needs loss scaling; bf16 has fp32's exponent range and does not.
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self.amp_dtype = amp_dtype

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def epoch(
        self, batches: _Batches, rows: list[Tensor], penalty_generator: torch.Generator
    ) -> tuple[float, float, float]:
        """One optimiser step per batch of ``rows``; the epoch's mean loss terms (the mean
        over every rank's steps under ranks)."""
        totals = torch.zeros(3, device=self.device)
        for batch_rows in rows:
            class_images = batches.penalty_batch(penalty_generator)
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                terms = self.model(batches(batch_rows), class_images)
            self.scaler.scale(terms.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            # Accumulate on the device; one sync per epoch, not per step.
            totals += torch.stack([t.detach().float() for t in terms])
        steps = len(rows)
        if self.ranks is not None:
            # Every rank takes the same epoch loss, hence the same plateau decisions. Each
            # rank's last step updated its BatchNorm statistics from its own batch: rank 0's
            # are taken, so that all ranks keep (and checkpoint) the same weights.
            totals = all_reduce_sum(torch.cat([totals, totals.new_tensor([steps])]))
            totals, steps = totals[:3], int(totals[3])
            for buffer in self.model.module.buffers():
                torch.distributed.broadcast(buffer, 0)
        loss, reconstruction, penalty = (totals / max(steps, 1)).tolist()
        return loss, reconstruction, penalty


class _Plateau:
    """The best weights seen, and when the loss stops improving: ``patience`` epochs
    without a relative improvement of ``min_delta`` (0: never stops early)."""

    def __init__(self, config: TrainingConfig) -> None:
        self.config = config
        self.best, self.ref, self.stale, self.done = math.inf, math.inf, 0, False
        self.best_state: tuple[dict, dict] | None = None

    def update(self, loss: float, encoder: nn.Module, decoder: nn.Module) -> None:
        if loss < self.best:  # keep the best weights seen, however small the gain
            self.best = loss
            self.best_state = (
                copy.deepcopy(encoder.state_dict()),
                copy.deepcopy(decoder.state_dict()),
            )
        if loss < self.ref * (1 - self.config.min_delta):
            self.ref, self.stale = loss, 0
        else:
            self.stale += 1
        self.done = bool(self.config.patience and self.stale >= self.config.patience)

    def state(self) -> dict:
        return {
            "best_encoder": self.best_state[0],
            "best_decoder": self.best_state[1],
            "best": self.best,
            "ref": self.ref,
            "stale": self.stale,
            "done": self.done,
        }

    def load(self, saved: dict) -> None:
        self.best_state = (saved["best_encoder"], saved["best_decoder"])
        self.best, self.ref, self.stale, self.done = (
            saved[k] for k in ("best", "ref", "stale", "done")
        )


def _resume(
    checkpoint: Checkpoint | None,
    step: _Step,
    plateau: _Plateau,
    generator: torch.Generator,
    penalty_generator: torch.Generator,
    ranks: Ranks | None,
) -> list[dict]:
    """Load the checkpoint's state (weights, optimiser, generators, plateau) where there
    is one for this fit; returns the history so far."""
    saved = checkpoint.load() if checkpoint is not None else None
    history: list[dict] = []
    if saved is not None:
        step.encoder.load_state_dict(saved["encoder"])
        step.decoder.load_state_dict(saved["decoder"])
        step.optimizer.load_state_dict(saved["optimizer"])
        step.scaler.load_state_dict(saved["scaler"])
        generator.set_state(saved["generator"])
        if ranks is not None:
            penalty_generator.set_state(saved["penalty_generators"][ranks.rank])
        history = saved["history"]
        plateau.load(saved)
    if ranks is not None and len(set(all_gather_objects(len(history)))) > 1:
        raise RuntimeError(
            "The ranks found different fit checkpoints to resume from: give them one "
            "`checkpoint_dir` (or `cache_dir`) on a file system they share."
        )
    return history


def _save(
    checkpoint: Checkpoint | None,
    step: _Step,
    plateau: _Plateau,
    history: list[dict],
    generator: torch.Generator,
    penalty_generator: torch.Generator,
    ranks: Ranks | None,
) -> None:
    """Store the state after an epoch (rank 0 writes it, with every rank's penalty
    generator state)."""
    if checkpoint is None:
        return
    penalty_states = None
    if ranks is not None:
        penalty_states = all_gather_objects(penalty_generator.get_state())
    if ranks is not None and not ranks.is_main:
        return
    checkpoint.save(
        {
            "epoch": history[-1]["epoch"],
            "encoder": step.encoder.state_dict(),
            "decoder": step.decoder.state_dict(),
            "optimizer": step.optimizer.state_dict(),
            "scaler": step.scaler.state_dict(),
            "generator": generator.get_state(),
            **({"penalty_generators": penalty_states} if penalty_states else {}),
            "history": history,
            **plateau.state(),
        }
    )
