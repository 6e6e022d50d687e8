"""Per-class numbers that tell whether a fitted DeepSMOTE's synthetic images are any good.

For every class (:func:`assess`):

- reconstruction error of its real images: the RMS pixel difference between an image and
  ``decode(encode(image))``; high means the autoencoder has not learnt the class, and its
  synthetic images are blurred guesses (with ``residual=True`` the residuals put the
  detail back, see :class:`~torch_deepsmote.DeepSMOTE`);
- distance from each synthetic image to its nearest real image of the class (RMS pixel
  difference), beside the real images' own distances to their nearest other real image of
  the class. A synthetic image far nearer than real images are to each other is a *near
  copy*: it adds no variety (a class of one image gives nothing but copies of it);
- label fidelity: the share of synthetic images whose nearest real image in latent space
  (the encoder's code of the synthetic image against the codes of every real image) is of
  their own class. A low value means new images land among another class's.
- precision, recall, density and coverage of the synthetic images against the real ones
  of the class (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", ICML 2020; :func:`prdc`), in the autoencoder's code space and, when a
  ``features`` function is given (a classifier's penultimate layer, say), in its space.
  High density with low coverage is "right but easy": the synthetic images sit where the
  real ones are dense and leave most of their spread uncovered (:func:`variety`).

Distances are on the [0, 1] pixel scale (the images' value range mapped to [0, 1]), so
0.1 means a typical pixel differs by a tenth of the range. Neighbours are searched exactly
with ``torch.cdist`` in chunks. Compare ``benchmarks/synthetic_quality.py``, which adds
classifier-based measures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from ._format import as_images
from ._validation import check_positive_float, check_positive_int
from .deepsmote import DeepSMOTE
from .latents import decode_codes
from .smote import SMOTEPlan

__all__ = ["Assessment", "assess", "latent_pca", "nearest", "prdc", "variety"]


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

    Example:
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

    Example:
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


_READINGS = {
    "off": "off the data: half or more of the synthetic images fall outside every real "
    "image's neighbourhood",
    "easy": "right but easy: the synthetic images crowd where the real ones are dense and "
    "cover little of their spread",
    "narrow": "narrow: the synthetic images look real but reach less than half of the real "
    "images' neighbourhoods, without crowding in any",
    "thin": "spread thin: the synthetic images reach most of the real spread but sit in its "
    "sparse parts, away from where the real images crowd",
    "good": "faithful and varied: real-looking and spread over most of the real images' "
    "neighbourhoods",
}


def variety(scores: Mapping[str, float] | None) -> str | None:
    """The reading of :func:`prdc`'s numbers in words, or ``None`` without them.

    In this order: precision below 0.5 reads "off the data"; coverage below 0.5 reads
    "right but easy" with density 1 or more (the fakes crowd the dense middle), else
    "narrow"; density below 0.5 with coverage 0.5 or more reads "spread thin" (the
    reverse of right but easy: the whole spread reached from its sparse parts); anything
    else "faithful and varied".

    Example:
        >>> variety({"precision": 1.0, "recall": 0.1, "density": 1.8, "coverage": 0.2})[:14]
        'right but easy'
    """
    if scores is None:
        return None
    precision, density, coverage = (scores[k] for k in ("precision", "density", "coverage"))
    if precision < 0.5:
        return _READINGS["off"]
    if coverage < 0.5:
        return _READINGS["easy" if density >= 1 else "narrow"]
    return _READINGS["thin" if density < 0.5 else "good"]


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


@dataclass
class Assessment:
    """What :func:`assess` measured.

    Attributes:
        table: One JSON-ready dict per class (see :func:`assess`).
        near_copy_threshold: RMS pixel distance at or below which a synthetic image counts
            as a near copy.
        plan: The :class:`SMOTEPlan` of the synthetic images measured.
        synthetic_codes: (m, d) the encoder's codes of those images.
        real_codes: (N, d) the codes of the real images; ``real_labels`` (N,) their classes.
    """

    table: list[dict]
    near_copy_threshold: float
    plan: SMOTEPlan = field(repr=False)
    synthetic_codes: Tensor = field(repr=False)
    real_codes: Tensor = field(repr=False)
    real_labels: Tensor = field(repr=False)

    def to_dict(self) -> dict:
        return {"near_copy_threshold": self.near_copy_threshold, "classes": self.table}


def _unit(model: DeepSMOTE, images: Tensor) -> Tensor:
    """(n, C, H, W) images in the model's format -> (n, C*H*W) float32 in [0, 1]."""
    return ((model.image_format_.to_unit(images) + 1) / 2).flatten(1)


def _reconstruction_rms(model: DeepSMOTE, images: Tensor, rows: Tensor) -> Tensor:
    """(len(rows),) RMS of ``x - decode(encode(x))`` on the [0, 1] scale."""
    residuals = model.residuals_
    if residuals is not None:  # kept by the fit: x - decode(encode(x)) on [-1, 1]
        diff = residuals[rows].float().flatten(1) / 2
    else:
        decoded = decode_codes(model.decoder_, model.latents_[rows], device=model.device_)
        diff = _unit(model, images[rows]) - ((decoded + 1) / 2).flatten(1)
    return diff.pow(2).mean(1).sqrt()


def _rms(distances: Tensor, n_pixels: int) -> Tensor:
    return distances / n_pixels**0.5


# Images per call of a user's ``features`` function: bounded memory for a large model.
_FEATURE_BATCH = 256


@torch.no_grad()
def _features(features: Callable[[Tensor], Tensor], images: Tensor) -> Tensor:
    """(n, F) features of (n, C, H, W) ``images``, ``_FEATURE_BATCH`` images per call."""
    parts = []
    for start in range(0, len(images), _FEATURE_BATCH):
        batch = images[start : start + _FEATURE_BATCH]
        out = torch.as_tensor(features(batch))
        if out.ndim == 0 or len(out) != len(batch):
            raise ValueError(
                f"`features` should map a batch of B images to (B, F) features, but gave "
                f"shape {tuple(out.shape)} for {len(batch)} images."
            )
        parts.append(out.detach().flatten(1))
    return torch.cat(parts)


def _variety_scores(
    real_codes: Tensor,
    fake_codes: Tensor,
    real_images: Tensor,
    fake_images: Tensor,
    features: Callable[[Tensor], Tensor] | None,
    k: int,
) -> dict:
    """The class's :func:`prdc` numbers and their reading, in code space and (``features``)
    in the given feature space."""
    measurable = min(len(real_images), len(fake_images)) > k
    out = {}
    for prefix in ("", "features_") if features is not None else ("",):
        scores = None
        if measurable and prefix:
            real, fake = _features(features, real_images), _features(features, fake_images)
            scores = prdc(real, fake, k)
        elif measurable:
            scores = prdc(real_codes, fake_codes, k)
        for name in ("precision", "recall", "density", "coverage"):
            out[prefix + name] = None if scores is None else scores[name]
        out[prefix + "variety"] = variety(scores)
    return out


def _median(values: Tensor) -> float | None:
    values = values[torch.isfinite(values)]
    return float(values.median()) if len(values) else None


def assess(
    model: DeepSMOTE,
    images: Any,
    *,
    n_new: Mapping[int, int] | None = None,
    max_per_class: int = 1000,
    near_copy: float = 0.1,
    random_state: int = 0,
    features: Callable[[Tensor], Tensor] | None = None,
    k: int = 5,
) -> Assessment:
    """Measure a fitted model's synthetic images against its real ones, per class.

    Args:
        model: A fitted :class:`~torch_deepsmote.DeepSMOTE`.
        images: (N, C, H, W) or (N, H, W) the images it was fitted on, in the same order.
        n_new: ``{class: synthetic images}`` to measure; ``None``: the model's
            ``sampling_strategy_`` (the images that balancing adds). At most
            ``max_per_class`` per class are drawn and measured, as are at most that many
            real images per class for the reconstruction and real-to-real distances.
        near_copy: A synthetic image is a near copy when its distance to the nearest real
            image of its class is at most ``near_copy`` times the median distance of real
            images to their nearest other real image of the same class (over all classes;
            0 where no class has two images).
        random_state: Seed of the synthetic draw and of the real images measured.
        features: A function of a batch of images ((B, C, H, W) in their own dtype and
            range, at most 256 per call) to (B, F) features, e.g. a trained classifier's
            penultimate layer: the variety numbers are also computed there (``features_*``
            keys). ``None``: the autoencoder's code space only.
        k: Neighbours of the balls of :func:`prdc`.

    Returns:
        An :class:`Assessment` whose ``table`` has, per class: ``label``, ``real`` and
        ``synthetic`` (counts; ``synthetic`` as in ``n_new``), ``measured_real``,
        ``measured_synthetic``, ``reconstruction_rms`` (mean), ``real_nearest_rms`` (median
        over real images, ``None`` for a class of one), ``synthetic_nearest_rms`` (median,
        ``None`` without synthetic images), ``synthetic_nearest_rms_mean``,
        ``near_copies`` (count), ``near_copy_share``, ``other_class_share`` (nearest real
        code of another class), ``label_fidelity`` (1 - that share), ``precision``,
        ``recall``, ``density`` and ``coverage`` (:func:`prdc` in code space, the measured
        real images against the synthetic ones; ``None`` for a class of ``k`` images or
        fewer), ``variety`` (their reading, :func:`variety`) and, with ``features``, the
        same five as ``features_precision``, ... in that space.

    Raises:
        ValueError: ``images`` are not the images the model was fitted on, or
            ``features`` gave other than one row per image.
        TypeError: ``features`` is not callable.
    """
    check_positive_int("max_per_class", max_per_class)
    check_positive_int("k", k)
    check_positive_float("near_copy", near_copy, allow_zero=True)
    if features is not None and not callable(features):
        raise TypeError(
            "`features` should be None or a function of a batch of images to (B, F) "
            f"features, but got features of type {type(features).__name__}."
        )
    tensor, _ = as_images(images, "images")
    labels = model.labels_
    model.check_fitted_on(tensor, labels)
    generator = torch.Generator().manual_seed(random_state)
    n_new = dict(model.sampling_strategy_ if n_new is None else n_new)
    classes = torch.unique(labels).tolist()
    plan = model.plan({c: min(int(n_new.get(c, 0)), max_per_class) for c in classes}, random_state)
    # (m, C, H, W) in the images' dtype and range, whatever form the model gives back
    # (arrays, tensors or PIL images).
    synthetic = model.synthesizer_.images(plan)
    synthetic_codes = model.encode(synthetic)
    nearest_code = nearest(synthetic_codes, model.latents_)[1]
    flip = labels[nearest_code] != plan.labels
    n_pixels = tensor[0].numel()

    per_class, loo_all = [], []
    for c in classes:
        rows = torch.nonzero(labels == c).flatten()
        measured = rows[torch.randperm(len(rows), generator=generator)[:max_per_class]]
        real = _unit(model, tensor[rows])
        positions = torch.searchsorted(rows, measured)  # of the measured rows within the class
        loo = _rms(nearest(real[positions], real, exclude=positions)[0], n_pixels)
        loo_all.append(loo[torch.isfinite(loo)])
        mine = plan.labels == c
        near = _rms(nearest(_unit(model, synthetic[mine]), real)[0], n_pixels)
        scores = _variety_scores(
            model.latents_[measured],
            synthetic_codes[mine],
            tensor[measured],
            synthetic[mine],
            features,
            k,
        )
        per_class.append((c, rows, measured, loo, near, flip[mine], scores))
    pooled = torch.cat(loo_all)
    threshold = near_copy * float(pooled.median()) if len(pooled) else 0.0

    table = []
    for c, rows, measured, loo, near, flips, scores in per_class:
        copies = int((near <= threshold).sum())
        table.append(
            {
                "label": int(c),
                "real": len(rows),
                "synthetic": int(n_new.get(c, 0)),
                "measured_real": len(measured),
                "measured_synthetic": len(near),
                "reconstruction_rms": float(_reconstruction_rms(model, tensor, measured).mean()),
                "real_nearest_rms": _median(loo),
                "synthetic_nearest_rms": _median(near),
                "synthetic_nearest_rms_mean": float(near.mean()) if len(near) else None,
                "near_copies": copies,
                "near_copy_share": copies / len(near) if len(near) else None,
                "other_class_share": int(flips.sum()) / len(near) if len(near) else None,
                "label_fidelity": 1 - int(flips.sum()) / len(near) if len(near) else None,
                **scores,
            }
        )
    return Assessment(table, threshold, plan, synthetic_codes, model.latents_, labels)
