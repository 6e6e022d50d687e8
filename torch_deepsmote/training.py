"""The autoencoder's fit loop: batches, the penalty's class draw, plateau stop, precision.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022. The published recipe: Adam (lr 2e-4) for
encoder and decoder, batches of 100 from the imbalanced set, and for every batch a penalty
batch of up to 100 images of one class drawn uniformly at random (see ``losses``).
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
    """Options of ``fit_autoencoder`` (the paper's values by default).

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
        images: (N, C, H, W) training images in the user's dtype (uint8 stays uint8), or an
            ``H5Images`` of them, read batch by batch.
        labels: (N,) int64 class labels.
        to_unit: Maps a batch of ``images`` to float32 in [-1, 1].
        config: Options; the paper's by default.
        generator: CPU generator of every random draw (batch order, penalty batches).
        device: Where to train.
        progress: Show a tqdm progress bar: a tick per batch, the running loss beside it.
        callback: Called with each epoch's dict before the plateau check (untimed); it may
            switch the models to eval mode.
        checkpoint: Where to store the state after every epoch and resume from; ``None``
            keeps nothing. Under ``ranks`` rank 0 writes it and every rank resumes from it.
        ranks: Fit with the other ranks of the process group (DDP; each rank trains on its
            share of every epoch, all stop together); ``None``: this process alone.
        penalty_generator: Draws the penalty's class batches; ``None``: ``generator``.
            Under ``ranks`` it must differ per rank (each rank draws its own class).

    Returns:
        One dict per epoch: ``epoch``, ``loss``, ``reconstruction``, ``penalty``, ``seconds``.
    """
    config = config or TrainingConfig()
    penalty_generator = generator if penalty_generator is None else penalty_generator
    trainer = _Trainer(encoder, decoder, config, device, ranks)
    batches = _ImageBatches(images, to_unit, device, trainer.memory_format)
    size = min(config.batch_size, len(images))
    penalty = _PenaltyDraw(labels, size, device, active=config.penalty_weight > 0)
    plateau = _PlateauStop(config.patience, config.min_delta)
    saver = _FitCheckpoint(checkpoint, generator, penalty_generator, ranks)
    history = saver.resume(trainer, plateau)
    steps = _steps_per_epoch(len(images), size, ranks)
    show = progress and (ranks is None or ranks.is_main)
    with _FitBar(len(history), config.max_epochs, steps, show) as bar:
        # The epochs still to run: none when a resumed fit had stopped.
        for epoch in range(len(history), len(history) if plateau.done else config.max_epochs):
            start = time.perf_counter()
            rows = _epoch_batches(len(images), size, generator, ranks, device)
            bar.start_epoch(epoch)
            terms = trainer.epoch(batches, rows, penalty, penalty_generator, on_step=bar.step)
            history.append(_epoch_record(epoch, terms, time.perf_counter() - start))
            bar.end_epoch(terms)
            if callback is not None:
                callback(history[-1])
                trainer.train()  # the callback may have switched to eval mode
            plateau.update(terms[0], encoder, decoder)
            saver.save(trainer, plateau, history)
            if plateau.done:
                break
    trainer.finish(*plateau.best_state)
    return history


def _epoch_batches(
    num_images: int,
    batch_size: int,
    generator: torch.Generator,
    ranks: Ranks | None = None,
    device: torch.device | str = "cpu",
) -> list[Tensor]:
    """One epoch's batches of row indices: a permutation drawn from ``generator``, this
    rank's share of it (``_shard``), cut into batches of ``batch_size``.

    A last batch of one row is left out: BatchNorm cannot train on it.

    Args:
        num_images: N, the number of training images.
        batch_size: Rows per batch.
        generator: Draws the permutation (one ``randperm(N)`` per call).
        ranks: The process group's ranks, or ``None`` for this process alone.
        device: Where the row indices go.

    Returns:
        A list of (B,) int64 tensors, B <= ``batch_size``.

    Examples:
        >>> torch.randperm(5, generator=torch.Generator().manual_seed(0))
        tensor([4, 0, 1, 3, 2])
        >>> [r.tolist() for r in _epoch_batches(5, 2, torch.Generator().manual_seed(0))]
        [[4, 0], [1, 3]]
    """
    order = _shard(torch.randperm(num_images, generator=generator), ranks).to(device)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [rows for rows in batches if len(rows) >= 2]


def _steps_per_epoch(num_images: int, batch_size: int, ranks: Ranks | None = None) -> int:
    """How many batches ``_epoch_batches`` gives per epoch (without drawing them).

    Examples:
        >>> [_steps_per_epoch(n, 2) for n in (4, 5, 6)]  # 5 rows: a last batch of 1 is left out
        [2, 2, 3]
        >>> _steps_per_epoch(5, 2) == len(_epoch_batches(5, 2, torch.Generator()))
        True
    """
    rows = num_images if ranks is None else -(-num_images // ranks.world_size)
    return rows // batch_size + (rows % batch_size >= 2)


def _shard(order: Tensor, ranks: Ranks | None) -> Tensor:
    """This rank's rows of one epoch's permutation, by ``DistributedSampler``'s rule: padded
    by repeating its start to a multiple of the world size, then every world_size-th row."""
    if ranks is None:
        return order
    size = -(-len(order) // ranks.world_size)
    padded = torch.cat([order, order[: size * ranks.world_size - len(order)]])
    return padded[ranks.rank :: ranks.world_size]


class _ImageBatches:
    """The training images, read as float batches on the device.

    Small image sets (these models' use case) go to the device whole; uint8 stays small.
    An image store on disk (``H5Images``) stays there: each batch reads its rows.
    """

    def __init__(
        self,
        images: Any,
        to_unit: Callable[[Tensor], Tensor],
        device: torch.device,
        memory_format: torch.memory_format,
    ) -> None:
        self.images = images.to(device) if isinstance(images, Tensor) else images
        self.to_unit, self.device, self.memory_format = to_unit, device, memory_format

    def __call__(self, rows: Tensor) -> Tensor:
        """(B, C, H, W) float32 in [-1, 1] of ``rows`` (B,), on the device."""
        batch = self.to_unit(self.images[rows].to(self.device))
        return batch.contiguous(memory_format=self.memory_format)


class _PenaltyDraw:
    """The paper's penalty batch: each step, one class drawn uniformly, then up to
    ``size`` of its images in random order.

    Classes with a single image are left out: BatchNorm cannot take a batch of one in
    training mode (the published code would crash on them).

    Args:
        labels: (N,) int64 class labels.
        size: Rows per penalty batch.
        device: Where the row indices go.
        active: ``False`` turns the draw off (a penalty weight of 0); it is also off when
            no class has two images.

    Examples:
        >>> draw = _PenaltyDraw(torch.tensor([0, 1, 1, 1, 2]), 2, torch.device("cpu"))
        >>> draw.class_rows  # classes 0 and 2 have one image each
        [tensor([1, 2, 3])]
        >>> draw(torch.Generator().manual_seed(0))
        tensor([1, 3])
    """

    def __init__(
        self, labels: Tensor, size: int, device: torch.device, active: bool = True
    ) -> None:
        rows = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
        self.class_rows = [r.to(device) for r in rows if len(r) >= 2]
        self.size, self.device = size, device
        self.enabled = active and bool(self.class_rows)

    def __call__(self, generator: torch.Generator) -> Tensor | None:
        """(B,) rows of one class (two draws from ``generator``), or ``None`` when off."""
        if not self.enabled:
            return None
        pick = int(torch.randint(len(self.class_rows), (1,), generator=generator))
        members = self.class_rows[pick]
        take = torch.randperm(len(members), generator=generator)[: self.size]
        return members[take.to(self.device)]


class _Autoencoder(nn.Module):
    """Encoder, decoder and loss as one module: one forward per step, so that
    ``DistributedDataParallel`` sees every parameter the step uses."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, criterion: DeepSMOTELoss) -> None:
        super().__init__()
        self.encoder, self.decoder, self.criterion = encoder, decoder, criterion

    def forward(self, images: Tensor, class_images: Tensor | None) -> LossTerms:
        return self.criterion(self.encoder, self.decoder, images, class_images)


def _wrap(module: nn.Module, device: torch.device, ranks: Ranks | None) -> nn.Module:
    """``module`` itself, or under ``ranks`` in ``DistributedDataParallel``."""
    if ranks is None:
        return module
    from torch.nn.parallel import DistributedDataParallel

    # NOTE: DDP broadcasts rank 0's weights now and its BatchNorm buffers at every forward.
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def _adam(params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam, fused where this torch and device have the fused kernel."""
    # NOTE: the fused kernel does the same arithmetic (up to float rounding) in one pass per
    # tensor instead of about ten. On 2 CPU cores shared with another busy process, the
    # for-loop Adam took 0.70-0.95 s per step for the paper's 13M parameters (every small
    # OpenMP region waits for a descheduled thread), fused 0.29-0.38 s.
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # torch < 2.4 on CPU, or odd devices
        return torch.optim.Adam(params, lr=lr)


class _Trainer:
    """The model, optimiser, loss scaling and autocast of one fit, and its epoch of steps.

    Args:
        encoder, decoder: The models, moved to ``device`` and put in training mode.
        config: The fit's options (loss weights, lr, precision, memory format).
        device: Where to train.
        ranks: The process group's ranks (DDP), or ``None``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        config: TrainingConfig,
        device: torch.device,
        ranks: Ranks | None,
    ) -> None:
        self.amp_dtype = resolve_precision(config.precision, device)
        channels_last = config.channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        encoder.to(device=device, memory_format=self.memory_format).train()
        decoder.to(device=device, memory_format=self.memory_format).train()
        self.encoder, self.decoder, self.device, self.ranks = encoder, decoder, device, ranks
        criterion = DeepSMOTELoss(config.penalty_weight, config.penalty_encoder_grad)
        self.model = _wrap(_Autoencoder(encoder, decoder, criterion), device, ranks)
        self.optimizer = _adam(list(encoder.parameters()) + list(decoder.parameters()), config.lr)
        # fp16 needs loss scaling; bf16 has fp32's exponent range and does not.
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def epoch(
        self,
        batches: _ImageBatches,
        rows: list[Tensor],
        penalty: _PenaltyDraw,
        penalty_generator: torch.Generator,
        on_step: Callable[[Tensor, int], None] | None = None,
    ) -> tuple[float, float, float]:
        """One optimiser step per batch of ``rows``, each with its penalty draw.

        Args:
            batches: Reads a batch of rows as images on the device.
            rows: The epoch's batches of row indices.
            penalty: Draws the penalty's class batch of every step.
            penalty_generator: The generator of those draws.
            on_step: Called after every step with the running (3,) sums of (loss,
                reconstruction, penalty) on the device and the steps taken; it must not
                change them.

        Returns:
            The epoch's mean (loss, reconstruction, penalty): under ranks, the mean over
            every rank's steps.
        """
        totals = torch.zeros(3, device=self.device)
        for step, batch_rows in enumerate(rows):
            class_rows = penalty(penalty_generator)
            class_images = None if class_rows is None else batches(class_rows)
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                terms = self.model(batches(batch_rows), class_images)
            self.scaler.scale(terms.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            # Accumulate on the device; one sync per epoch, not per step (a progress bar
            # reads the running sums at most twice a second).
            totals += torch.stack([t.detach().float() for t in terms])
            if on_step is not None:
                on_step(totals, step + 1)
        steps = len(rows)
        if self.ranks is not None:
            # Every rank takes the same epoch loss, hence the same plateau decisions. Each
            # rank's last step updated its BatchNorm statistics from its own batch: rank 0's
            # are taken, so that all ranks keep (and checkpoint) the same weights.
            totals = all_reduce_sum(torch.cat([totals, totals.new_tensor([steps])]))
            totals, steps = totals[:3], int(totals[3])
            for buffer in self.model.module.buffers():
                torch.distributed.broadcast(buffer, 0)
        loss, reconstruction, penalty_term = (totals / max(steps, 1)).tolist()
        return loss, reconstruction, penalty_term

    def train(self) -> None:
        """Put the models (back) in training mode."""
        self.encoder.train()
        self.decoder.train()

    def finish(self, encoder_state: dict, decoder_state: dict) -> None:
        """Load the kept weights; back to the default memory format, in eval mode."""
        for module, state in ((self.encoder, encoder_state), (self.decoder, decoder_state)):
            module.load_state_dict(state)
            module.to(memory_format=torch.contiguous_format).eval()


class _FitBar:
    """The fit's tqdm bar: one tick per batch over all epochs, with the epoch and the
    running mean loss of this process's steps beside it.

    Args:
        start: Epochs already done (a resumed fit).
        max_epochs: The most epochs the fit runs.
        steps: Batches per epoch.
        show: Draw the bar (the main rank only); otherwise every call does nothing.
    """

    REFRESH_S = 0.5  # the least time between two reads of the running loss (a device sync)

    def __init__(self, start: int, max_epochs: int, steps: int, show: bool) -> None:
        self.bar = tqdm(
            desc="DeepSMOTE fit",
            unit="batch",
            total=max_epochs * steps,
            initial=start * steps,
            disable=not show,
        )
        self.max_epochs, self.epoch, self.read_at = max_epochs, start, -math.inf

    def __enter__(self) -> _FitBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def step(self, totals: Tensor, steps: int) -> None:
        """One batch done; ``totals`` (3,) are the epoch's running sums of the loss terms."""
        if self.bar.disable:
            return
        now = time.monotonic()
        if now - self.read_at >= self.REFRESH_S:
            self.read_at = now
            loss = float(totals[0]) / steps
            self.bar.set_postfix(
                epoch=f"{self.epoch + 1}/{self.max_epochs}", loss=f"{loss:.4f}", refresh=False
            )
        self.bar.update()  # draws the bar with the postfix just set

    def end_epoch(self, terms: tuple[float, float, float]) -> None:
        """Show the epoch's mean loss and reconstruction error."""
        self.bar.set_postfix(
            epoch=f"{self.epoch + 1}/{self.max_epochs}",
            loss=f"{terms[0]:.4f}",
            rec=f"{terms[1]:.4f}",
        )


def _epoch_record(epoch: int, terms: tuple[float, float, float], seconds: float) -> dict:
    """The history entry of one epoch.

    Raises:
        RuntimeError: The loss is not finite (training diverged).
    """
    loss, reconstruction, penalty = terms
    if not math.isfinite(loss):
        raise RuntimeError(
            f"DeepSMOTE training diverged at epoch {epoch} (loss={loss}). Lower `lr` or "
            "use precision='fp32'."
        )
    return dict(
        epoch=epoch, loss=loss, reconstruction=reconstruction, penalty=penalty, seconds=seconds
    )


class _PlateauStop:
    """The best weights seen, and when the loss stops improving.

    Stops after ``patience`` epochs without a relative improvement of ``min_delta`` over
    the reference loss (0: never stops early). The best weights are those of the lowest
    loss, however small the gain.

    Examples:
        >>> stop = _PlateauStop(patience=2, min_delta=0.1)
        >>> for loss in (1.0, 0.95, 0.92):
        ...     stop.update(loss, nn.Linear(1, 1), nn.Linear(1, 1))
        >>> stop.best, stop.ref, stop.stale, stop.done
        (0.92, 1.0, 2, True)
    """

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best, self.ref, self.stale, self.done = math.inf, math.inf, 0, False
        self.best_state: tuple[dict, dict] | None = None

    def update(self, loss: float, encoder: nn.Module, decoder: nn.Module) -> None:
        """Count one epoch's ``loss``; keep a copy of the weights when it is the best."""
        if loss < self.best:
            self.best = loss
            self.best_state = (
                copy.deepcopy(encoder.state_dict()),
                copy.deepcopy(decoder.state_dict()),
            )
        if loss < self.ref * (1 - self.min_delta):
            self.ref, self.stale = loss, 0
        else:
            self.stale += 1
        self.done = bool(self.patience and self.stale >= self.patience)

    def state(self) -> dict:
        """The bookkeeping, as checkpoint entries."""
        return {
            "best_encoder": self.best_state[0],
            "best_decoder": self.best_state[1],
            "best": self.best,
            "ref": self.ref,
            "stale": self.stale,
            "done": self.done,
        }

    def load(self, saved: dict) -> None:
        """Take the bookkeeping back from a checkpoint's entries."""
        self.best_state = (saved["best_encoder"], saved["best_decoder"])
        self.best, self.ref, self.stale, self.done = (
            saved[k] for k in ("best", "ref", "stale", "done")
        )


class _FitCheckpoint:
    """Resume from and save to a fit's checkpoint (a no-op without one).

    Args:
        checkpoint: The file, or ``None``.
        generator: The batch-order generator, stored and restored.
        penalty_generator: The penalty draw's generator; under ``ranks`` rank 0 stores
            every rank's state and each rank takes back its own.
        ranks: The process group's ranks, or ``None``.
    """

    def __init__(
        self,
        checkpoint: Checkpoint | None,
        generator: torch.Generator,
        penalty_generator: torch.Generator,
        ranks: Ranks | None,
    ) -> None:
        self.checkpoint, self.ranks = checkpoint, ranks
        self.generator, self.penalty_generator = generator, penalty_generator

    def resume(self, trainer: _Trainer, plateau: _PlateauStop) -> list[dict]:
        """Load the stored state (weights, optimiser, generators, plateau) where there is
        one for this fit.

        Returns:
            The history so far (empty for a fresh fit).

        Raises:
            RuntimeError: The ranks found different checkpoints.
        """
        saved = self.checkpoint.load() if self.checkpoint is not None else None
        history: list[dict] = []
        if saved is not None:
            trainer.encoder.load_state_dict(saved["encoder"])
            trainer.decoder.load_state_dict(saved["decoder"])
            trainer.optimizer.load_state_dict(saved["optimizer"])
            trainer.scaler.load_state_dict(saved["scaler"])
            self.generator.set_state(saved["generator"])
            if self.ranks is not None:
                self.penalty_generator.set_state(saved["penalty_generators"][self.ranks.rank])
            history = saved["history"]
            plateau.load(saved)
        if self.ranks is not None and len(set(all_gather_objects(len(history)))) > 1:
            raise RuntimeError(
                "The ranks found different fit checkpoints to resume from: give them one "
                "`checkpoint_dir` (or `cache_dir`) on a file system they share."
            )
        return history

    def save(self, trainer: _Trainer, plateau: _PlateauStop, history: list[dict]) -> None:
        """Store the state after an epoch (rank 0 writes it)."""
        if self.checkpoint is None:
            return
        penalty_states = None
        if self.ranks is not None:
            penalty_states = all_gather_objects(self.penalty_generator.get_state())
            if not self.ranks.is_main:
                return
        self.checkpoint.save(
            {
                "epoch": history[-1]["epoch"],
                "encoder": trainer.encoder.state_dict(),
                "decoder": trainer.decoder.state_dict(),
                "optimizer": trainer.optimizer.state_dict(),
                "scaler": trainer.scaler.state_dict(),
                "generator": self.generator.get_state(),
                **({"penalty_generators": penalty_states} if penalty_states else {}),
                "history": history,
                **plateau.state(),
            }
        )
