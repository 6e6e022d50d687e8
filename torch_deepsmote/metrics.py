"""Exact nearest neighbours, precision / recall / density / coverage, and a PCA view of codes.

Distances are exact Euclidean ones (``torch.cdist`` in chunks, bounded memory), on the
inputs' device: these measure the synthetic images (``torch_deepsmote.quality``), where an
approximate search would blur the very differences measured.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import check_positive_int

__all__ = ["latent_pca", "nearest", "prdc"]


@torch.no_grad()
def nearest(
    query: Tensor,
    reference: Tensor,
    *,
    exclude: Tensor | None = None,
    chunk_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    """Euclidean distance to, and index of, each query row's nearest reference row.

    Args:
        query: (m, d) float rows.
        reference: (n, d) float rows.
        exclude: (m,) int64, the reference row each query row must not match (itself, for
            leave-one-out distances), or ``None``. A query with no other row gets ``inf``
            and index -1.
        chunk_size: Query rows per ``torch.cdist`` call (memory ``chunk_size * n``).

    Returns:
        ``(distances (m,) float32, indices (m,) int64)``.

    Examples:
        >>> points = torch.tensor([[0.0], [1.0], [3.5]])
        >>> nearest(torch.tensor([[0.0], [4.0]]), points)
        (tensor([0.0000, 0.5000]), tensor([0, 2]))
        >>> nearest(points, points, exclude=torch.arange(3))
        (tensor([1.0000, 1.0000, 2.5000]), tensor([1, 0, 1]))
    """
    m = len(query)
    distances, indices = torch.full((m,), float("inf")), torch.full((m,), -1)
    if len(reference) == 0:
        return distances, indices
    reference = reference.float()
    for start in range(0, m, chunk_size):
        block = torch.cdist(query[start : start + chunk_size].float(), reference)
        if exclude is not None:
            block[torch.arange(len(block)), exclude[start : start + len(block)]] = float("inf")
        found = block.min(dim=1)
        distances[start : start + len(block)] = found.values
        indices[start : start + len(block)] = found.indices
    indices[torch.isinf(distances)] = -1
    return distances, indices


def _kth_distance(points: Tensor, k: int, chunk_size: int) -> Tensor:
    """(n,) distance of each row of ``points`` (n, d) to its ``k``-th nearest other row."""
    out = points.new_empty(len(points))
    for start in range(0, len(points), chunk_size):
        block = torch.cdist(points[start : start + chunk_size], points)
        # The row itself is the first, at 0: the k-th other row is the (k + 1)-th smallest.
        out[start : start + len(block)] = block.kthvalue(k + 1, dim=1).values
    return out


@torch.no_grad()
def prdc(
    real: Tensor, fake: Tensor, k: int = 5, *, chunk_size: int = 1024
) -> dict[str, float] | None:
    """Precision, recall, density and coverage of ``fake`` (m, d) against ``real`` (n, d).

    With ``B(x, r_x)`` the ball around ``x`` reaching its ``k``-th nearest neighbour of its
    own set (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models",
    ICML 2020; the ``prdc`` package's definitions):

    - precision: share of fake rows inside some real ball (they look real);
    - recall: share of real rows inside some fake ball (the fakes reach them);
    - density: ``1/k`` times the mean number of real balls a fake row is in (about 1 for
      fakes spread like the reals, above 1 when they crowd where the reals are dense);
    - coverage: share of real balls that hold at least one fake row (how much of the
      real spread the fakes reach; unlike recall, robust to fake outliers).

    Distances are exact Euclidean ones in float64, ``torch.cdist`` on ``chunk_size`` rows at
    a time (memory ``chunk_size * max(n, m)``), on the inputs' device.

    Args:
        real: (n, d) real rows (codes or features).
        fake: (m, d) synthetic rows in the same space.
        k: Neighbours that set a ball's radius (5 in the paper).
        chunk_size: Rows per ``torch.cdist`` call.

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` as floats, or ``None`` when
        either set has ``k`` rows or fewer.

    Examples:
        >>> real = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
        >>> prdc(real, real.clone(), k=5)["coverage"], prdc(real, real + 100)["precision"]
        (1.0, 0.0)
    """
    check_positive_int("k", k)
    check_positive_int("chunk_size", chunk_size)
    if min(len(real), len(fake)) <= k:
        return None
    real, fake = real.double().flatten(1), fake.double().flatten(1)
    real_radius = _kth_distance(real, k, chunk_size)
    fake_radius = _kth_distance(fake, k, chunk_size)
    balls_per_fake = torch.zeros(len(fake), dtype=torch.float64, device=fake.device)
    reached = covered = 0
    for start in range(0, len(real), chunk_size):
        between = torch.cdist(real[start : start + chunk_size], fake)  # (chunk, m)
        radius = real_radius[start : start + len(between), None]
        balls_per_fake += (between < radius).sum(0)  # fake j in the ball of real i
        reached += int((between < fake_radius[None, :]).any(1).sum())
        covered += int((between.min(1, keepdim=True).values < radius).sum())
    return {
        "precision": float((balls_per_fake > 0).double().mean()),
        "recall": reached / len(real),
        "density": float(balls_per_fake.mean()) / k,
        "coverage": covered / len(real),
    }


def latent_pca(codes: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Project codes on the first two principal axes of ``codes`` (signs fixed).

    Args:
        codes: (n, d) codes that define the axes (the real images').
        others: Further (m, d) codes to project on the same axes (the synthetic ones').

    Returns:
        (n, 2) and one (m, 2) per ``others``, float32.
    """
    codes = codes.float()
    mean = codes.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(codes - mean, full_matrices=False)
    axes = vh[:2]
    # The sign of a singular vector is arbitrary: make each axis's largest loading positive.
    signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    axes = axes * signs
    if axes.shape[0] < 2:  # one-dimensional codes: a flat second axis
        axes = torch.cat([axes, torch.zeros_like(axes)])
    return tuple((c.float() - mean) @ axes.T for c in (codes, *others))
