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
from typing import Callable

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
    amp_dtype = resolve_precision(config.precision, device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    encoder.to(device=device, memory_format=memory_format).train()
    decoder.to(device=device, memory_format=memory_format).train()
    criterion = DeepSMOTELoss(config.penalty_weight, config.penalty_encoder_grad)
    autoencoder = _wrap(_Autoencoder(encoder, decoder, criterion), device, ranks)
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = _adam(params, config.lr)
    if penalty_generator is None:
        penalty_generator = generator
    main = ranks is None or ranks.is_main
    # fp16 needs loss scaling; bf16 has fp32's exponent range and does not.
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=amp_dtype))
        if amp_dtype is not None
        else nullcontext
    )

    # Small image sets (these models' use case) fit on the device whole; uint8 stays small.
    # An image store on disk (H5Images) stays there: each batch reads its rows.
    if isinstance(images, Tensor):
        images = images.to(device)
    class_rows = [r.to(device) for r in _class_rows(labels)]
    n = len(images)
    batch_size = min(config.batch_size, n)

    def batch(rows: Tensor) -> Tensor:
        return to_unit(images[rows].to(device)).contiguous(memory_format=memory_format)

    history: list[dict] = []
    best_loss, plateau_ref, best_state, stale, done = math.inf, math.inf, None, 0, False
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        encoder.load_state_dict(saved["encoder"])
        decoder.load_state_dict(saved["decoder"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        generator.set_state(saved["generator"])
        if ranks is not None:
            penalty_generator.set_state(saved["penalty_generators"][ranks.rank])
        history, best_state = saved["history"], (saved["best_encoder"], saved["best_decoder"])
        best_loss, plateau_ref, stale, done = (saved[k] for k in ("best", "ref", "stale", "done"))
    start_epoch = len(history)
    if ranks is not None and len(set(all_gather_objects(start_epoch))) > 1:
        raise RuntimeError(
            "The ranks found different fit checkpoints to resume from: give them one "
            "`checkpoint_dir` (or `cache_dir`) on a file system they share."
        )
    bar = tqdm(
        range(start_epoch, config.max_epochs if not done else start_epoch),
        desc="DeepSMOTE fit",
        unit="epoch",
        disable=not (progress and main),
        initial=start_epoch,
        total=config.max_epochs,
    )
    for epoch in bar:
        start = time.perf_counter()
        order = _shard(torch.randperm(n, generator=generator), ranks).to(device)
        totals = torch.zeros(3, device=device)
        steps = 0
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            if len(rows) < 2:  # BatchNorm cannot train on a batch of one
                continue
            class_images = None
            if config.penalty_weight > 0 and class_rows:
                pick = int(torch.randint(len(class_rows), (1,), generator=penalty_generator))
                members = class_rows[pick]
                take = torch.randperm(len(members), generator=penalty_generator)[:batch_size]
                class_images = batch(members[take.to(device)])
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                terms = autoencoder(batch(rows), class_images)
            scaler.scale(terms.total).backward()
            scaler.step(optimizer)
            scaler.update()
            # Accumulate on the device; one sync per epoch, not per step.
            totals += torch.stack([t.detach().float() for t in terms])
            steps += 1
        if ranks is not None:
            # Every rank takes the same epoch loss, hence the same plateau decisions. Each
            # rank's last step updated its BatchNorm statistics from its own batch: rank 0's
            # are taken, so that all ranks keep (and checkpoint) the same weights.
            totals = all_reduce_sum(torch.cat([totals, totals.new_tensor([steps])]))
            totals, steps = totals[:3], int(totals[3])
            for buffer in autoencoder.module.buffers():
                torch.distributed.broadcast(buffer, 0)
        loss, reconstruction, penalty = (totals / max(steps, 1)).tolist()
        if not math.isfinite(loss):
            raise RuntimeError(
                f"DeepSMOTE training diverged at epoch {epoch} (loss={loss}). Lower `lr` or "
                "use precision='fp32'."
            )
        history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "reconstruction": reconstruction,
                "penalty": penalty,
                "seconds": time.perf_counter() - start,
            }
        )
        bar.set_postfix(loss=f"{loss:.4f}", rec=f"{reconstruction:.4f}")
        if callback is not None:
            callback(history[-1])
            encoder.train()
            decoder.train()
        if loss < best_loss:  # keep the best weights seen, however small the gain
            best_loss = loss
            best_state = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(decoder.state_dict()))
        if loss < plateau_ref * (1 - config.min_delta):
            plateau_ref, stale = loss, 0
        else:
            stale += 1
        done = bool(config.patience and stale >= config.patience)
        penalty_states = None
        if ranks is not None and checkpoint is not None:
            penalty_states = all_gather_objects(penalty_generator.get_state())
        if checkpoint is not None and main:
            checkpoint.save(
                {
                    "epoch": epoch,
                    "encoder": encoder.state_dict(),
                    "decoder": decoder.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "generator": generator.get_state(),
                    **({"penalty_generators": penalty_states} if penalty_states else {}),
                    "history": history,
                    "best_encoder": best_state[0],
                    "best_decoder": best_state[1],
                    "best": best_loss,
                    "ref": plateau_ref,
                    "stale": stale,
                    "done": done,
                }
            )
        if done:
            break
    bar.close()
    encoder.load_state_dict(best_state[0])
    decoder.load_state_dict(best_state[1])
    encoder.to(memory_format=torch.contiguous_format).eval()
    decoder.to(memory_format=torch.contiguous_format).eval()
    return history
