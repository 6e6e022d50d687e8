"""The few collective steps a fit takes under ``torch.distributed`` (torchrun, DDP).

The library has no engine of its own: where a process group is initialized (torchrun,
Lightning, Ray Train, or ``torch.distributed.init_process_group`` by hand) and every rank
fits the same data, the ranks fit one model together:

- training: every rank draws the same permutation of the rows each epoch and keeps its
  share (``DistributedSampler``'s rule), draws the penalty's class batches from a generator
  of its own, and ``DistributedDataParallel`` averages the gradients
  (``fit_autoencoder``);
- encoding and residuals: each rank computes a contiguous block of rows, and the blocks
  are gathered (``map_row_blocks``);
- the neighbour table: the classes are split across ranks, each rank searches its own, and
  the tables are joined (``class_neighbors``);
- Borderline-SMOTE's rows in danger (``base_selection='borderline'``): rank 0 searches all
  the codes and the others receive its answer (``in_danger``);
- the cache: rank 0 alone holds the lock, checks, writes and checkpoints; the others wait
  at a barrier and then load what it wrote (``torch_deepsmote.persistence.model_cache``).

Nothing communicates per epoch of a classifier's training: ``OversampledDataset`` and
``DeepSMOTESampler`` draw the same plan from ``seed + epoch`` on every rank.

Collectives run on the CPU with gloo and on the rank's current CUDA device with NCCL
(call ``torch.cuda.set_device(local_rank)`` first, as usual under torchrun).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

from . import borderline as _borderline
from . import knn as _knn

__all__ = [
    "Ranks",
    "current_ranks",
    "map_row_blocks",
    "rows_of",
    "class_neighbors",
    "in_danger",
    "split_classes",
]


class Ranks(NamedTuple):
    """This process's place in the process group that fits together."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_ranks(distributed: Any = "auto") -> Ranks | None:
    """The process group to fit with, or ``None`` to fit in this process alone.

    Args:
        distributed: ``'auto'``: the initialized default process group when it has more
            than one rank; ``True``: that group, and an error without one; ``False``: none.

    Raises:
        RuntimeError: ``distributed=True`` without an initialized process group.
    """
    initialized = dist.is_available() and dist.is_initialized()
    if distributed is True and not initialized:
        raise RuntimeError(
            "`distributed=True` fits across the ranks of the default torch.distributed "
            "process group, but none is initialized. Call "
            "torch.distributed.init_process_group() first (torchrun sets up its environment), "
            "or pass distributed='auto' or False."
        )
    if distributed is False or not initialized:
        return None
    world_size = dist.get_world_size()
    if world_size == 1:
        return None
    return Ranks(dist.get_rank(), world_size)


def _device() -> torch.device:
    """Where this group's collectives take their tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """The element-wise sum of ``tensor`` over all ranks (a new tensor on its device)."""
    out = tensor.to(_device(), copy=True)
    dist.all_reduce(out)
    return out.to(tensor.device)


def agree(error: BaseException | None) -> None:
    """A barrier that fails together: raise on every rank if any rank passes an error.

    A rank that failed alone would leave the others waiting in the next collective until
    the group's timeout; instead each rank says how it fared, and all stop at once.

    Raises:
        RuntimeError: Another rank failed (its rank and error named); this rank's own
            ``error`` is raised as it is.
    """
    failures = all_gather_objects(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    failed = [(r, f) for r, f in enumerate(failures) if f is not None]
    if failed:
        rank, reason = failed[0]
        raise RuntimeError(f"Rank {rank} of the process group failed: {reason}")


def all_gather_objects(obj: Any) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (picklable objects)."""
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def check_same(settings: dict[str, Any]) -> None:
    """Raise on every rank unless all ranks hold equal ``settings``.

    Args:
        settings: ``{name: value}`` of plain values (compared with ``==``).

    Raises:
        RuntimeError: Ranks disagree: the names that differ, and each rank's value.
    """
    values = all_gather_objects(settings)
    differ = [k for k in settings if any(v.get(k) != settings[k] for v in values)]
    if differ:
        shown = "; ".join(
            f"{k}: " + ", ".join(f"rank {r} {str(v.get(k))[:20]}" for r, v in enumerate(values))
            for k in differ
        )
        raise RuntimeError(
            "Every rank should fit the same data and settings, but the ranks differ in "
            f"{', '.join(differ)} ({shown}). Give each rank the same dataset, labels and "
            "options (your classifier's sampler comes after, on the balanced dataset); "
            "to fit in one process only, pass distributed=False there."
        )


def block(n: int, ranks: Ranks) -> slice:
    """Rank's contiguous block of ``range(n)``: ``ceil(n / world_size)`` rows (the last
    rank's may be shorter or empty)."""
    size = -(-n // ranks.world_size)
    return slice(min(n, ranks.rank * size), min(n, (ranks.rank + 1) * size))


class _RowView:
    """Rows ``start:stop`` of an image store, read only when sliced (a tensor's
    ``images[start:stop]`` is a view already)."""

    def __init__(self, images: Any, start: int, stop: int) -> None:
        self.images, self.start, self.stop = images, start, stop
        self.shape = torch.Size((stop - start, *images.shape[1:]))
        self.dtype = images.dtype

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, rows: slice) -> Tensor:
        first, last, step = rows.indices(len(self))
        return self.images[self.start + first : self.start + max(first, last) : step]


def rows_of(images: Any, rows: slice) -> Any:
    """``images[rows]`` without reading a stored set (an H5Images) into memory."""
    if isinstance(images, Tensor):
        return images[rows]
    if (rows.start, rows.stop) == (0, len(images)):
        return images
    return _RowView(images, rows.start, rows.stop)


def map_row_blocks(fn: Callable[[slice], Tensor], n: int, ranks: Ranks | None) -> Tensor:
    """``fn`` over the rows ``0..n-1``, each rank computing its ``block``; the blocks
    joined in row order on every rank.

    Args:
        fn: Maps a slice of rows to a CPU tensor of ``len(rows)`` rows, e.g. the codes of
            those images.
        n: Number of rows.
        ranks: The group, or ``None``: ``fn(slice(0, n))`` in this process.

    Returns:
        (n, ...) CPU tensor, the same on every rank.
    """
    if ranks is None:
        return fn(slice(0, n))
    rows = block(n, ranks)
    # An empty block (more ranks than rows need) computes one row for the shape and dtype.
    part = fn(rows) if rows.stop > rows.start else fn(slice(0, 1))[:0]
    size = -(-n // ranks.world_size)
    # all_gather wants equal shapes: pad the (short or empty) tail block, cut it off after.
    padded = part.new_zeros(size, *part.shape[1:])
    padded[: len(part)] = part
    device = _device()
    parts = [torch.empty_like(padded, device=device) for _ in range(ranks.world_size)]
    dist.all_gather(parts, padded.to(device))
    return torch.cat([p.cpu() for p in parts])[:n]


def split_classes(labels: Tensor, world_size: int) -> list[list[int]]:
    """Classes per rank, so that each rank's search costs about the same.

    An exact search over a class of ``n_c`` codes costs about ``n_c ** 2``: the classes go,
    largest first, to the rank with the least cost so far (the same on every rank).

    Examples:
        >>> split_classes(torch.tensor([0] * 5 + [1] * 3 + [2] * 3), 2)
        [[0], [1, 2]]
    """
    classes, counts = torch.unique(labels, return_counts=True)
    loads = [0] * world_size
    parts: list[list[int]] = [[] for _ in range(world_size)]
    for i in sorted(range(len(classes)), key=lambda i: (-int(counts[i]), int(classes[i]))):
        r = min(range(world_size), key=lambda r: (loads[r], r))
        parts[r].append(int(classes[i]))
        loads[r] += int(counts[i]) ** 2
    return [sorted(p) for p in parts]


def class_neighbors(
    latents: Tensor, labels: Tensor, k_neighbors: int, knn: Any, ranks: Ranks | None
) -> tuple[Tensor, dict[int, int]]:
    """``torch_deepsmote.knn.class_neighbors``, each rank searching its share of the
    classes (``split_classes``); the same table on every rank as in one process.

    Args:
        latents: (N, d) codes, the same on every rank.
        labels: (N,) their classes.
        k_neighbors, knn: As in ``torch_deepsmote.knn.class_neighbors``.
        ranks: The group, or ``None`` to search every class here.

    Returns:
        ``(neighbors, n_neighbors)``: (N, k_neighbors) int64 global row indices and the
        valid columns per class.
    """
    if ranks is None:
        return _knn.class_neighbors(latents, labels, k_neighbors, knn=knn)
    mine = split_classes(labels, ranks.world_size)[ranks.rank]
    table = torch.full((len(labels), k_neighbors), -1, dtype=torch.long)
    n_neighbors: dict[int, int] = {}
    if mine:
        rows = torch.nonzero(torch.isin(labels, torch.tensor(mine))).flatten()
        local, n_neighbors = _knn.class_neighbors(latents[rows], labels[rows], k_neighbors, knn)
        # Local rows -> global rows; -1 (no neighbour) stays -1.
        table[rows] = torch.where(local >= 0, rows[local.clamp(min=0)], local)
    # Every row belongs to one rank's classes and is -1 on all the others: the sum of
    # (table + 1) over ranks, minus 1, is the owner's entry.
    table = all_reduce_sum(table + 1) - 1
    merged: dict[int, int] = {}
    for part in all_gather_objects(n_neighbors):
        merged.update(part)
    return table, dict(sorted(merged.items()))


def in_danger(
    latents: Tensor, labels: Tensor, m_neighbors: int, knn: Any, ranks: Ranks | None
) -> Tensor:
    """``torch_deepsmote.borderline.in_danger``, searched on rank 0 and sent to the
    others, so that every rank plans from the same rows.

    Returns:
        (N,) bool, the same on every rank.
    """
    if ranks is None:
        return _borderline.in_danger(latents, labels, m_neighbors, knn)
    # NOTE: one search over all the codes cannot be split by class like the neighbour
    # table; rank 0 searches and the others wait, rather than all repeating it.
    danger = torch.zeros(len(labels), dtype=torch.uint8)
    if ranks.is_main:
        danger = _borderline.in_danger(latents, labels, m_neighbors, knn).to(torch.uint8)
    return all_reduce_sum(danger).bool()
