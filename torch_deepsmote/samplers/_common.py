"""What the samplers share: the dataset check, the ranks, the epoch they pass on, and the
draw of a class's items in shuffled order without repeats.

Every sampler of the package follows ``torch.utils.data.DistributedSampler``: a local
generator of ``seed + epoch`` (``epoch_generator``), the same
draws on every rank, each rank keeping its share; ``num_replicas`` and ``rank`` default to 1
and 0 without an initialized process group.
"""

from __future__ import annotations

import inspect
from collections.abc import Sized
from typing import Any

import torch
import torch.distributed as dist

from .._validation import check_non_negative_int, check_positive_int

__all__ = ["check_sized", "draw_in_turn", "resolve_replicas", "set_epoch", "tell_dataset"]


def check_sized(dataset: Any) -> Any:
    if not isinstance(dataset, Sized):
        # The dataset's own repr may be an entire table of images; its type is what matters.
        raise TypeError(
            "`dataset` should be a map-style dataset with __len__, but got dataset of type "
            f"{type(dataset).__name__}."
        )
    return dataset


def resolve_replicas(num_replicas: Any, rank: Any) -> tuple[int, int]:
    """``None`` means the initialized process group's value, else 1 replica and rank 0."""
    distributed = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if distributed else 1
    if rank is None:
        rank = dist.get_rank() if distributed else 0
    num_replicas = check_positive_int("num_replicas", num_replicas)
    rank = check_non_negative_int("rank", rank)
    if rank >= num_replicas:
        raise ValueError(
            f"`rank` should be in [0, num_replicas - 1] = [0, {num_replicas - 1}], but got "
            f"rank={rank}. Pass num_replicas as well, or initialize torch.distributed."
        )
    return num_replicas, rank


def set_epoch(sampler: Any, epoch: Any) -> None:
    """Set ``sampler.epoch`` and pass it on to the sampler's dataset (``tell_dataset``)."""
    sampler.epoch = check_non_negative_int("epoch", epoch)
    tell_dataset(sampler.dataset, sampler.epoch, sampler.seed)


def tell_dataset(dataset: Any, epoch: int | None, seed: int) -> None:
    """Call ``dataset.set_epoch(epoch)`` when it has one, passing the sampler's ``seed``
    where it takes ``seed=`` (an ``OversampledDataset`` without a seed of its own draws its
    synthetic set from it); ``epoch=None`` passes the seed alone, keeping the dataset's epoch."""
    set_epoch = getattr(dataset, "set_epoch", None)
    if not callable(set_epoch):
        return
    takes_seed = _takes_seed(set_epoch)
    if epoch is None:
        if takes_seed:
            set_epoch(int(getattr(dataset, "epoch", 0)), seed=seed)
        return
    # A dataset with synthetic items (OversampledDataset) draws a fresh set per epoch.
    if takes_seed:
        set_epoch(epoch, seed=seed)
    else:
        set_epoch(epoch)


def _takes_seed(method: Any) -> bool:
    try:
        return "seed" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def draw_in_turn(
    pool: torch.Tensor, state: tuple[torch.Tensor, int], k: int, generator: torch.Generator
) -> tuple[torch.Tensor, tuple[torch.Tensor, int]]:
    """``k`` items of ``pool`` continuing ``state``'s shuffled order, reshuffling when used up."""
    order, used = state
    taken: list[torch.Tensor] = []
    n_taken = 0
    while n_taken < k:
        if used == len(order):
            order, used = pool[torch.randperm(len(pool), generator=generator)], 0
            if taken:
                # Put this batch's picks last so the new shuffle does not repeat them at once.
                seen = torch.isin(order, torch.cat(taken))
                order = torch.cat([order[~seen], order[seen]])
        step = min(k - n_taken, len(order) - used)
        taken.append(order[used : used + step])
        used, n_taken = used + step, n_taken + step
    return (torch.cat(taken) if taken else pool[:0]), (order, used)
