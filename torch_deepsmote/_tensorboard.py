"""TensorBoard logs of a fit: the loss terms per epoch and real-versus-synthetic image grids.

``EpochLogger`` is the per-epoch callback that ``DeepSMOTE.fit`` hands to
``fit_autoencoder`` when ``log_dir`` is set. It writes through
``torch.utils.tensorboard`` (the ``[tensorboard]`` extra installs TensorBoard).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

from ._format import ImageFormat
from .smote import interpolate

__all__ = ["GRID_EVERY", "EpochLogger", "summary_writer"]

GRID_EVERY = 5  # epochs between image grids (the first epoch has one too)
_PER_CLASS = 8
_MAX_CLASSES = 16
INSTALL_HINT = "pip install 'torch-deepsmote[tensorboard]'"


def summary_writer(log_dir: str | os.PathLike) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir``.

    Raises:
        ImportError: TensorBoard is not installed (the install command named).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            f"`log_dir` needs TensorBoard, which is not installed (got log_dir={str(log_dir)!r}). "
            f"Install it with `{INSTALL_HINT}` (or `pip install tensorboard`)."
        ) from error
    return SummaryWriter(log_dir=os.fspath(log_dir))


class EpochLogger:
    """Log every epoch's loss terms, and a real-versus-synthetic grid every few epochs.

    The grid has one row per class (the first 16 classes): up to 8 real images, then as
    many synthetic ones decoded from SMOTE steps ``z_a + lam (z_b - z_a)`` between random
    pairs of those real images' codes under the epoch's weights. (The neighbour table
    exists only after training; a random pair within a class stands in for it here.)

    Args:
        log_dir: The TensorBoard folder.
        encoder, decoder: The models being trained (read, never changed).
        images: (N, C, H, W) training images in their own dtype.
        labels: (N,) int64 classes.
        image_format: Their format (maps them to the models' [-1, 1]).
        grid_every: Epochs between grids.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        encoder: nn.Module,
        decoder: nn.Module,
        images: Tensor,
        labels: Tensor,
        image_format: ImageFormat,
        grid_every: int = GRID_EVERY,
    ) -> None:
        self.writer = summary_writer(log_dir)
        self.encoder, self.decoder = encoder, decoder
        self.to_unit = image_format.to_unit
        self.grid_every = grid_every
        rows = [torch.nonzero(labels == c).flatten()[:_PER_CLASS] for c in torch.unique(labels)]
        self.real = [images[r] for r in rows[:_MAX_CLASSES]]
        generator = torch.Generator().manual_seed(0)
        # Fixed pairs and steps, so that grids of different epochs differ by the weights only.
        self.pairs = [
            (
                torch.randint(len(r), (len(r),), generator=generator),
                torch.randint(len(r), (len(r),), generator=generator),
                torch.rand(len(r), generator=generator),
            )
            for r in self.real
        ]

    def __call__(self, record: dict) -> None:
        epoch = record["epoch"]
        for name in ("loss", "reconstruction", "penalty"):
            self.writer.add_scalar(f"loss/{name}", record[name], epoch)
        self.writer.add_scalar("seconds_per_epoch", record["seconds"], epoch)
        if epoch % self.grid_every == 0:
            self.writer.add_image("real_vs_synthetic", self.grid(), epoch)
        self.writer.flush()

    @torch.no_grad()
    def grid(self) -> Tensor:
        """(3, H', W') float in [0, 1]: per class a row of real images, then synthetic ones."""
        from torchvision.utils import make_grid

        self.encoder.eval()
        self.decoder.eval()
        device = next(self.decoder.parameters()).device
        rows = []
        for real, (base, neighbor, lam) in zip(self.real, self.pairs):
            unit = self.to_unit(real.to(device))
            codes = self.encoder(unit)
            steps = interpolate(codes, base.to(device), neighbor.to(device), lam.to(device))
            fake = self.decoder(steps)
            rows.append(torch.cat([unit, fake.float()]).cpu())
        width = 2 * max(len(r) for r in self.real)
        padded = [torch.cat([r, r.new_ones((width - len(r), *r.shape[1:]))]) for r in rows]
        return make_grid((torch.cat(padded) + 1) / 2, nrow=width, padding=2, pad_value=1.0)

    def close(self) -> None:
        self.writer.close()
