"""Epoch checkpoints of a fit, written atomically, so that a killed fit resumes.

After every epoch ``fit_autoencoder`` stores everything the
next epoch depends on: weights (BatchNorm statistics included), the optimiser's and the
loss scaler's states, the random generator's state, the history and the early-stopping
bookkeeping. A fit started again with the same key resumes after the last complete epoch
and, on the CPU, ends with the same weights bit for bit as a fit that was never stopped.

A checkpoint is written through the one atomic write (``atomic``), so a kill at any
moment leaves the previous checkpoint or the new one, never a half-written file. One whose
key differs (other data or settings) or that cannot be read is ignored, with a warning for
the second.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import versions
from .atomic import atomic_write

__all__ = ["CHECKPOINT_NAME", "Checkpoint"]

CHECKPOINT_NAME = "deepsmote-fit.ckpt"


class Checkpoint:
    """One fit's checkpoint file.

    Args:
        folder: Where the file lives (created on the first save).
        key: What the checkpoint belongs to (a fingerprint of the data and of every setting
            that changes the weights): a file with another key is never resumed from.
        progress: Say so (on stderr) when a fit resumes.
    """

    def __init__(self, folder: str | os.PathLike, key: str, progress: bool = True) -> None:
        self.path = Path(folder) / CHECKPOINT_NAME
        self.key = key
        self.progress = progress

    def load(self) -> dict[str, Any] | None:
        """The stored state of this key's fit, or ``None`` when there is none to resume."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # a damaged file is not worth a failed fit: start over
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            warnings.warn(
                f"Ignoring the unreadable fit checkpoint {str(self.path)!r} "
                f"({type(error).__name__}: {reason[:200]}); the fit starts from the first "
                "epoch.",
                UserWarning,
                stacklevel=5,  # the user's fit() call
            )
            return None
        if not isinstance(state, dict) or state.get("version") != versions.CHECKPOINT:
            return None
        if state.get("key") != self.key:
            return None  # another fit's: it is overwritten by this one
        if self.progress:
            tqdm.write(
                f"resuming the fit after epoch {state['epoch']} from {self.path}", file=sys.stderr
            )
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Store ``state`` (tensors and plain values) in place of the previous checkpoint."""
        with atomic_write(self.path) as temporary:  # makes the folder too
            torch.save({**state, "version": versions.CHECKPOINT, "key": self.key}, temporary)

    def stored_key(self) -> str | None:
        """The key of the checkpoint on disk, or ``None`` (no file, or an unreadable one)."""
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:
            return None
        return state.get("key") if isinstance(state, dict) else None

    def remove(self) -> None:
        """Delete the file (the fit's result is stored elsewhere now)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
