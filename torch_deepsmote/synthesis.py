"""The one object that makes DeepSMOTE's synthetic images: ``Synthesizer``.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

A synthetic image follows one path: a ``SMOTEPlan`` row
(class, base, neighbour, ``lam``) -> the code ``z = z_base + lam (z_neighbor - z_base)`` ->
the decoder -> plus the parents' interpolated reconstruction residuals
``(1 - lam) r_base + lam r_neighbor`` when the model keeps them -> the training images'
dtype and value range (``ImageFormat``). The synthesizer
holds everything on that path, and ``DeepSMOTE`` (``sample``,
``fit_resample``) and ``OversampledDataset`` both call it.

Processes. It decodes on ``device`` in the process that made it, and on the CPU inside
DataLoader workers: a forked worker must not touch CUDA, so a CPU copy of a CUDA decoder
is kept from the start. Pickling (spawned workers, ``copy.deepcopy``) sends that CPU copy
and the arrays; with ``Synthesizer.use_cache`` the codes and residuals stay in the
HDF5 cache and each process reads the rows a batch needs, after checking that the file
is still the one the synthesizer was built from.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import get_worker_info

from ._format import ImageFormat
from ._validation import check_non_negative_int
from .latents import decode_codes
from .smote import SMOTEPlan, check_row_mask, interpolate, plan_synthetic, plan_transfer
from .storage.hdf5 import CacheFile

__all__ = ["INTERPOLATIONS", "Synthesizer", "default_lam_range"]

_ARRAYS = ("latents", "residuals")
_REPLACEABLE = (
    "image_format",
    "neighbors",
    "n_neighbors",
    "residuals",
    "interpolation",
    "lam_range",
    "enemies",
    "n_enemies",
    "danger",
)
# How a plan picks the pair it steps along: same-class neighbours (SMOTE, the paper),
# the nearest codes of other classes ("enemy"), or a larger class's neighbour pairs
# ("transfer"); see torch_deepsmote.smote.
INTERPOLATIONS = ("smote", "enemy", "transfer")
_LAM_RANGES = {"smote": (0.0, 1.0), "enemy": (0.0, 0.5), "transfer": (0.0, 1.0)}


def default_lam_range(interpolation: str) -> tuple[float, float]:
    """The step range of an interpolation: U(0, 1), and U(0, 0.5) towards enemies so that
    the base keeps the larger share (Remix's rule for keeping its label)."""
    return _LAM_RANGES[interpolation]


def _checksum(cache: CacheFile, name: str) -> str | None:
    try:
        return cache.checksum(name)
    except ValueError:  # the array is gone: another run wrote the file without it
        return None


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


class Synthesizer:
    """Decoder, codes, labels, neighbour table and residuals: SMOTE plans in, images out.

    Args:
        decoder: The trained decoder, (B, D) -> (B, C, H, W) in [-1, 1].
        image_format: The form of the training images.
        latents: (N, D) float32 codes of the training images.
        labels: (N,) int64 their classes.
        neighbors: (N, k) int64 same-class neighbour rows (-1 pads small classes).
        n_neighbors: ``{class: number of valid neighbour columns}``.
        residuals: (N, C, H, W) float16 ``x - decode(encode(x))`` on the [-1, 1] scale, or
            ``None`` to decode codes alone (the paper).
        device: Where this process decodes; ``None``: the decoder's device.
        interpolation: ``'smote'`` (the paper), ``'enemy'`` (towards the nearest codes of
            other classes: needs ``enemies``) or ``'transfer'`` (along a larger class's
            neighbour differences), see ``torch_deepsmote.smote``.
        lam_range: ``(low, high)`` of the uniform step; ``None``: ``default_lam_range``.
        enemies: (N, k) int64 nearest rows of other classes, and ``n_enemies`` their valid
            columns per class (from ``class_enemies``).
        danger: (N,) bool, the rows in danger (Borderline-SMOTE, from
            ``in_danger``): the only bases of their class; a
            class without any draws from all its rows (with a warning, once per class).
            ``None``: every row is a base.

    Examples:
        >>> from torch_deepsmote.models import Decoder
        >>> from torch_deepsmote._format import ImageFormat
        >>> synth = Synthesizer(Decoder((1, 8, 8), 4, hidden=2),
        ...                     ImageFormat("torch", "uint8", "chw", 0.0, 255.0),
        ...                     latents=torch.randn(6, 4),
        ...                     labels=torch.tensor([0] * 4 + [1] * 2),
        ...                     neighbors=torch.tensor([[1], [0], [1], [2], [5],
        ...                                             [4]]),
        ...                     n_neighbors={0: 1, 1: 1})
        >>> plan = synth.plan({1: 3}, torch.Generator().manual_seed(0))
        >>> synth.images(plan).shape, synth.images(plan).dtype
        (torch.Size([3, 1, 8, 8]), torch.uint8)
    """

    # What an estimator shows of it (DeepSMOTE.decoder_, ...).
    PARTS = ("decoder", "latents", "labels", "neighbors", "n_neighbors", "residuals")
    PARTS += ("image_format",)

    def __init__(
        self,
        decoder: nn.Module,
        image_format: ImageFormat,
        latents: Tensor,
        labels: Tensor,
        neighbors: Tensor,
        n_neighbors: Mapping[int, int],
        residuals: Tensor | None = None,
        *,
        device: Any = None,
        interpolation: str = "smote",
        lam_range: tuple[float, float] | None = None,
        enemies: Tensor | None = None,
        n_enemies: Mapping[int, int] | None = None,
        danger: Tensor | None = None,
    ) -> None:
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` should be one of {', '.join(map(repr, INTERPOLATIONS))}, "
                f"but got interpolation={interpolation!r}."
            )
        if interpolation == "enemy" and (enemies is None or n_enemies is None):
            raise ValueError("`enemies` should be given with interpolation='enemy'.")
        self.interpolation = interpolation
        self.lam_range = tuple(lam_range or default_lam_range(interpolation))
        self.enemies = enemies
        self.n_enemies = (
            None if n_enemies is None else {int(k): int(v) for k, v in n_enemies.items()}
        )
        self.image_format = image_format
        self.labels = labels
        self.danger = check_row_mask(danger, labels, "danger")
        self._warned: set[int] = set()  # classes told of their fallback to all rows
        self.neighbors = neighbors
        self.n_neighbors = {int(k): int(v) for k, v in n_neighbors.items()}
        self.has_residuals = residuals is not None
        self._arrays = {"latents": latents, "residuals": residuals}
        self._cache: tuple[str, dict] | None = None  # (path, {array: checksum}) in HDF5
        self._checked: int | None = None  # pid of the process that checked the cache file
        self._file: CacheFile | None = None  # its handle (each process opens its own)
        self.device = torch.device(device) if device is not None else _device_of(decoder)
        decoder.eval()
        # NOTE: both copies are kept on self, never made in __getstate__: tensors sent to a
        # spawned worker through shared memory must outlive the pickling.
        self._decoders = {"cpu": decoder if _device_of(decoder).type == "cpu" else None}
        if _device_of(decoder) == self.device:
            self._decoders["main"] = decoder
        else:
            self._decoders["main"] = copy.deepcopy(decoder).to(self.device)
        if self._decoders["cpu"] is None:
            self._decoders["cpu"] = copy.deepcopy(decoder).to("cpu")

    # ------------------------------------------------------------------ copies
    def replace(self, **changes: Any) -> Synthesizer:
        """A copy with some of ``image_format``, ``neighbors``, ``n_neighbors``,
        ``residuals``, ``interpolation``, ``lam_range``, ``enemies``, ``n_enemies`` and
        ``danger`` replaced (the rest shared)."""
        unknown = set(changes) - set(_REPLACEABLE)
        if unknown:
            raise TypeError(f"`replace` got unexpected fields {sorted(unknown)}.")
        new = copy.copy(self)
        new._arrays = dict(self._arrays)
        if "residuals" in changes:
            new._arrays["residuals"] = changes.pop("residuals")
            new.has_residuals = new._arrays["residuals"] is not None
            new._cache = None  # the cached file holds the old residuals, if any
        if "danger" in changes:
            new._warned = set()
            changes["danger"] = check_row_mask(changes["danger"], self.labels, "danger")
        for name, value in changes.items():
            setattr(new, name, value)
        if "interpolation" in changes and "lam_range" not in changes:
            new.lam_range = default_lam_range(new.interpolation)
        if new.interpolation == "enemy" and new.enemies is None:
            raise ValueError("`enemies` should be given with interpolation='enemy'.")
        return new

    def to(self, device: Any) -> Synthesizer:
        """A copy that decodes on ``device`` in this process (``self`` if it already does)."""
        device = torch.device(device)
        if device == self.device:
            return self
        new = copy.copy(self)
        new._decoders = dict(self._decoders)
        new.device = device
        new._decoders["main"] = (
            self._decoders["cpu"]
            if device.type == "cpu"
            else copy.deepcopy(self._decoders["cpu"]).to(device)
        )
        return new

    def use_cache(self, cache: CacheFile, in_memory: bool = True) -> None:
        """Read codes and residuals from this HDF5 cache in pickled copies.

        The cache must hold these very arrays (as written by the cache of
        [`OversampledDataset`][torch_deepsmote.dataset.OversampledDataset]); their checksums are
        noted, and a process that later finds other arrays in the file refuses to decode from it.

        Args:
            cache: The file.
            in_memory: Keep this process's arrays (``False``: drop them here too, so that
                every batch reads its rows from the file and memory does not grow with N).
        """
        names = ("latents", "residuals") if self.has_residuals else ("latents",)
        self._cache = (cache.path, {name: cache.checksum(name) for name in names})
        self._file = None
        if not in_memory:
            self._arrays = dict.fromkeys(_ARRAYS)

    # ------------------------------------------------------------------ arrays
    @property
    def decoder(self) -> nn.Module:
        """The decoder this process decodes with (CPU inside DataLoader workers)."""
        in_worker = get_worker_info() is not None
        if in_worker or self.device.type == "cpu":
            return self._decoders["cpu"]
        if self._decoders.get("main") is None:  # unpickled in a main process: move once
            self._decoders["main"] = copy.deepcopy(self._decoders["cpu"]).to(self.device)
        return self._decoders["main"]

    @property
    def in_memory(self) -> bool:
        """Whether this process holds the codes (and residuals) in memory; otherwise the
        rows a batch needs are read from the HDF5 cache."""
        return self._arrays["latents"] is not None

    @property
    def latents(self) -> Tensor:
        """(N, D) float32 codes of the training images."""
        return self._array("latents")

    @property
    def residuals(self) -> Tensor | None:
        """(N, C, H, W) float16 reconstruction residuals, or ``None``."""
        return self._array("residuals") if self.has_residuals else None

    def _array(self, name: str) -> Tensor:
        if self._arrays[name] is None:
            self._arrays[name] = self._cache_file().array(name)
        return self._arrays[name]

    def rows(self, name: str, index: Tensor) -> Tensor:
        """Rows ``index`` (m,) of ``'latents'`` or ``'residuals'``, from memory or the cache."""
        if self._arrays[name] is not None:
            return self._arrays[name][index]
        return self._cache_file().rows(name, index)

    def _cache_file(self) -> CacheFile:
        if self._cache is None:
            raise RuntimeError("This Synthesizer holds its arrays in memory and has no cache.")
        path, checksums = self._cache
        if self._file is None:
            self._file = CacheFile(path)  # opened once per process, on first use
        if self._checked != os.getpid():
            if any(_checksum(self._file, name) != value for name, value in checksums.items()):
                raise RuntimeError(
                    f"Cache file {path!r} was rewritten after this dataset was built (another "
                    "run with the same cache_dir?): its codes no longer match this dataset's "
                    "model and plan. Build the dataset again, or give each run its own "
                    "cache_dir."
                )
            self._checked = os.getpid()
        return self._file

    # ------------------------------------------------------------------ plans and images
    def plan(self, n_new: Mapping[int, int], generator: torch.Generator) -> SMOTEPlan:
        """Draw the rows and steps of ``n_new[c]`` new images of each class ``c``.

        With ``danger``, the bases of a class are its rows in danger; a class without any
        uses all its rows, and says so once.

        Raises:
            ValueError: A class that was not fitted, or a negative count.
        """
        known = set(self.n_neighbors)
        for label, count in n_new.items():
            if label not in known:
                raise ValueError(
                    f"`label` should be one of the fitted classes {sorted(known)}, but got "
                    f"label={label!r}."
                )
            check_non_negative_int(f"n_new[{label}]", count)
        if self.interpolation == "transfer":
            draw = plan_transfer
        else:
            draw = plan_synthetic
        table, columns = self.neighbors, self.n_neighbors
        if self.interpolation == "enemy":
            table, columns = self.enemies, self.n_enemies
        if self.danger is not None:
            self._warn_fallbacks(n_new)
        return draw(
            n_new, self.labels, table, columns, generator, self.lam_range, bases=self.danger
        )

    def _warn_fallbacks(self, n_new: Mapping[int, int]) -> None:
        asked = {int(c) for c, n in n_new.items() if n > 0} - self._warned
        if not asked:
            return
        in_danger = set(torch.unique(self.labels[self.danger]).tolist())
        for label in sorted(asked - in_danger):
            warnings.warn(
                f"Class {label} has no code in danger (at least half, but not all, of its "
                "m_neighbors nearest codes in other classes), so its synthetic codes use all "
                "of its rows as bases, as with base_selection='all'.",
                UserWarning,
                stacklevel=4,
            )
        self._warned |= asked

    def _step(self, name: str, plan: SMOTEPlan) -> Tensor:
        """``rows[base] + lam (rows[neighbor] - rows[anchor])`` of ``'latents'`` or
        ``'residuals'``, reading only the rows the plan names."""
        m = len(plan)
        parts = [plan.base, plan.neighbor] + ([] if plan.anchor is None else [plan.anchor])
        rows = self.rows(name, torch.cat(parts))
        rows = rows.float()  # float16 residuals are stepped in float32
        anchor = None if plan.anchor is None else torch.arange(2 * m, 3 * m)
        return interpolate(rows, torch.arange(m), torch.arange(m, 2 * m), plan.lam, anchor)

    def codes(self, plan: SMOTEPlan) -> Tensor:
        """(m, D) codes of a plan: ``z = z_base + lam * (z_neighbor - z_anchor)`` (the
        anchor is the base in SMOTE)."""
        return self._step("latents", plan)

    def unit_images(self, plan: SMOTEPlan, batch_size: int = 512) -> Tensor:
        """(m, C, H, W) float32 images of a plan in [-1, 1], on the CPU.

        ``decode(z)``, plus the residuals stepped the same way, ``r_base + lam (r_neighbor
        - r_anchor)`` (``(1 - lam) r_base + lam r_neighbor`` in SMOTE), when they are kept:
        the decoder alone returns the blurred average of what it learned; the residuals put
        back the detail of the real images the new one comes from (``lam = 0`` gives back
        the base image itself).
        """
        decoder = self.decoder
        images = decode_codes(
            decoder, self.codes(plan), batch_size=batch_size, device=_device_of(decoder)
        )
        if not self.has_residuals:
            return images
        return (images + self._step("residuals", plan)).clamp_(-1, 1)

    def images(self, plan: SMOTEPlan, batch_size: int = 512) -> Tensor:
        """(m, C, H, W) images of a plan in the training images' dtype and value range."""
        return self.image_format.from_unit(self.unit_images(plan, batch_size))

    def items(self, plan: SMOTEPlan, batch_size: int = 512) -> list:
        """The images of a plan as m items in the training images' form (PIL, array, tensor)."""
        return self.image_format.items(self.images(plan, batch_size))

    def decode(self, codes: Tensor, batch_size: int = 512) -> Tensor:
        """(M, C, H, W) images of codes (M, D) in the training images' dtype and range."""
        decoder = self.decoder
        unit = decode_codes(decoder, codes, batch_size=batch_size, device=_device_of(decoder))
        return self.image_format.from_unit(unit)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        # A copy decodes with the CPU decoder, moved to `device` on first use in a main
        # process; a DataLoader worker keeps it on the CPU.
        state["_decoders"] = {"cpu": self._decoders["cpu"], "main": None}
        state["_checked"] = None
        if self._cache is not None:  # each process reads the rows it needs from the file
            state["_arrays"] = dict.fromkeys(_ARRAYS)
        return state

    def __repr__(self) -> str:
        n, k = self.neighbors.shape
        return (
            f"Synthesizer(n={n}, k_neighbors={k}, residuals={self.has_residuals}, "
            f"device={self.device}, cache={self._cache[0] if self._cache else None!r})"
        )
