"""The library's seeding rules, in one place: every random draw comes from a local
``torch.Generator`` made here, never from the global RNG.

Four rules, each where torch or the paper's setting asks for it:

- ``make_generator``: a CPU generator of one seed (fresh entropy for ``None``);
- ``epoch_generator``: a sampler's generator of an epoch, seeded with ``seed + epoch``
  as ``torch.utils.data.DistributedSampler`` seeds its own (``DeepSMOTESampler`` is one, so
  every sampler follows its rule);
- ``mixed_seed``: the seed of a synthetic set's draws for ``(seed, epoch)``, hashed so
  that (0, 1) and (1, 0) give unrelated sets, with a ``purpose`` that keeps the draws of
  different things (the plan, the items a partial refresh draws anew) apart;
- ``fan_out``: one seed into several independent ones (a fit's weights, training
  draws and SMOTE draws; one stream per rank).
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["epoch_generator", "fan_out", "make_generator", "mixed_seed"]


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``seed`` (fresh entropy when ``None``).

    Every random choice of the library is drawn from such a local generator, never from
    the global RNG, so that a fixed seed gives the same result whatever else the user's
    program draws.
    """
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A sampler's generator of ``epoch``: seeded with ``seed + epoch``, as
    ``DistributedSampler`` seeds its own.

    Examples:
        >>> a, b = epoch_generator(3, 1), epoch_generator(4, 0)
        >>> torch.equal(torch.randperm(5, generator=a), torch.randperm(5, generator=b))
        True
    """
    return make_generator(seed + epoch)


def mixed_seed(seed: int, epoch: int, purpose: str = "plan") -> int:
    """A 56-bit seed of ``(seed, epoch)`` for the draws of ``purpose``, mixed by sha256 so
    that (0, 1) and (1, 0) give unrelated draws.

    Examples:
        >>> mixed_seed(0, 1) != mixed_seed(1, 0), mixed_seed(0, 1) != mixed_seed(0, 1, "refresh")
        (True, True)
    """
    digest = hashlib.sha256(f"deepsmote-{purpose}:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def fan_out(seed: int | None, n: int) -> list[int]:
    """``n`` independent seeds drawn from one (fresh entropy for ``None``).

    Examples:
        >>> fan_out(0, 3) == fan_out(0, 3), len(set(fan_out(0, 3)))
        (True, 3)
    """
    return torch.randint(0, 2**62, (n,), generator=make_generator(seed)).tolist()
