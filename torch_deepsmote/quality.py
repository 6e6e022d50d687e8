"""Per-class numbers that tell whether a fitted DeepSMOTE's synthetic images are any good,
and a verdict on them that can fail.

For every class (:func:`assess`), first what the model makes:

- reconstruction error of its real images: the RMS pixel difference between an image and
  ``decode(encode(image))``, and that error over the images' spread around the class's
  mean image (the error of a model that knows only the class average); high means the
  autoencoder has not learnt the class, and its synthetic images are blurred guesses (with
  ``residual=True`` the residuals put the detail back, see
  :class:`~torch_deepsmote.DeepSMOTE`);
- distance from each synthetic image to its nearest real image of the class (RMS pixel
  difference), beside the real images' own distances to their nearest other real image of
  the class. A synthetic image far nearer than real images are to each other is a *near
  copy*: it adds no variety (a class of one image gives nothing but copies of it).

Then the split test, which judges synthetic images against real images they were not made
from. Measured against the codes they were interpolated from, synthetic codes look right
almost whatever the model (precision and coverage near 100 % even for an untrained one),
so :data:`SPLITS` times, each class's real images are split at random: :data:`HOLD_OUT` of
them held out, synthetic images made from the rest alone (the *parents*; the model's own
SMOTE rule, with every neighbour table built among the parents only:
:func:`split_synthesizer`), and the numbers averaged over the splits:

- label fidelity: the share of the synthetic codes whose nearest held-out code (held-out
  images of every class compete) is of their own class, beside the same share for the
  parents' codes. A low value means new images land among another class's;
- precision, recall, density and coverage of the synthetic codes against the class's
  held-out codes (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", ICML 2020; :func:`prdc`), beside the same four for as many of the parents' codes:
  synthetic images should reach the held-out images about as well as real images of the
  class do. The same in a ``features`` space when one is given (a classifier's
  penultimate layer, say): a space the autoencoder did not shape.

:func:`torch_deepsmote.verdicts.verdict` reads these numbers (its docstring states the
rule and its thresholds): "too few images to judge", "not faithful" (not reconstructed, or
labels not kept), or :func:`variety`'s reading ("off the data", "right but easy",
"narrow", "spread thin", "faithful and varied").

NOTE: the autoencoder was trained on every real image, the held-out ones included: its
codes of them are as good as its codes of the parents. The split test shows whether
interpolating among some real images reaches the others as well as those real images do;
it does not show how the synthetic images would compare with images the autoencoder has
never seen (hold images out of the fit itself for that, or pass a ``features`` function
trained elsewhere).

Distances are on the [0, 1] pixel scale (the images' value range mapped to [0, 1]), so
0.1 means a typical pixel differs by a tenth of the range. Neighbours are searched exactly
with ``torch.cdist`` in chunks. Compare ``benchmarks/synthetic_quality.py``, which adds
classifier-based measures.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from ._format import as_images
from ._validation import check_positive_float, check_positive_int
from .deepsmote import DeepSMOTE
from .fitting import neighbor_tables
from .latents import decode_codes
from .smote import SMOTEPlan
from .synthesis import Synthesizer
from .verdicts import scores_of, variety, verdict

__all__ = [
    "HOLD_OUT",
    "Assessment",
    "assess",
    "hold_out",
    "latent_pca",
    "nearest",
    "prdc",
    "split_synthesizer",
    "variety",
]


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


def _median(values: Tensor) -> float | None:
    values = values[torch.isfinite(values)]
    return float(values.median()) if len(values) else None


# ---------------------------------------------------------------------- the split test
# Share of each class's real images held out of the interpolation in the split test, and
# the number of independent splits whose numbers are averaged (fewer chance verdicts in
# small classes: see torch_deepsmote.verdicts).
HOLD_OUT = 0.5
SPLITS = 3


def hold_out(labels: Tensor, generator: torch.Generator) -> Tensor:
    """(N,) bool: the held-out rows, ``floor(n_c * HOLD_OUT)`` of each class ``c`` at random.

    Args:
        labels: (N,) int64 classes.
        generator: A CPU ``torch.Generator``, the only randomness.

    Example:
        >>> held = hold_out(torch.tensor([0] * 5 + [1] * 2 + [2]), torch.Generator().manual_seed(0))
        >>> held.view(-1).long().tolist().count(1), bool(held[7])
        (3, False)
    """
    held = torch.zeros(len(labels), dtype=torch.bool)
    for label in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == label).flatten()
        chosen = torch.randperm(len(rows), generator=generator)[: int(len(rows) * HOLD_OUT)]
        held[rows[chosen]] = True
    return held


def split_synthesizer(model: DeepSMOTE, parents: Tensor) -> Synthesizer:
    """The model's synthesizer restricted to the rows ``parents``: their codes, labels and
    residuals, with every neighbour table (and Borderline-SMOTE's rows in danger) built
    among them alone by the model's own settings (``k_neighbors``, ``knn``,
    ``interpolation``, ...). Its plans index the ``parents`` rows, in their order.

    Args:
        model: A fitted :class:`~torch_deepsmote.DeepSMOTE`.
        parents: (P,) int64 rows of the training images, sorted.
    """
    synthesizer = model.fitted_.synthesizer
    latents, labels = synthesizer.latents[parents], synthesizer.labels[parents]
    residuals = synthesizer.residuals
    with warnings.catch_warnings():
        # Small classes get fewer neighbours: said at fit time, not worth saying again here.
        warnings.simplefilter("ignore", UserWarning)
        tables = neighbor_tables(latents, labels, model.get_params())
    return Synthesizer(
        synthesizer.decoder,
        synthesizer.image_format,
        latents,
        labels,
        residuals=None if residuals is None else residuals[parents],
        device=synthesizer.device,
        **tables,
    )


@dataclass
class _Split:
    """The split test's draw: held-out rows, parents, and the synthetic images of the parents."""

    held: Tensor  # (N,) bool
    parents: Tensor  # (P,) int64 rows, sorted
    plan: SMOTEPlan  # indexes `parents`
    images: Tensor  # (m, C, H, W) in the images' dtype and range
    codes: Tensor  # (m, d) their codes


def _split(
    model: DeepSMOTE, judged: Mapping[int, int], max_per_class: int, seeds: list[int]
) -> _Split:
    """Hold out half of every class and make synthetic images of each class in ``judged``
    (``{class: images it gets}``) from the parents alone (``seeds``: of the split, of the
    plan)."""
    labels = model.labels_
    held = hold_out(labels, torch.Generator().manual_seed(int(seeds[0])))
    parents = torch.nonzero(~held).flatten()
    n_parents = torch.bincount(labels[parents], minlength=int(labels.max()) + 1)
    # As many as the class will get (the label fidelity's sample), at least as many as its
    # parents (the variety numbers compare equal numbers), at most max_per_class.
    n_new = {c: min(max(int(n), int(n_parents[c])), max_per_class) for c, n in judged.items()}
    synthesizer = split_synthesizer(model, parents)
    with warnings.catch_warnings():  # a class without rows in danger: said at fit time
        warnings.simplefilter("ignore", UserWarning)
        plan = synthesizer.plan(n_new, torch.Generator().manual_seed(int(seeds[1])))
    images = synthesizer.images(plan)
    return _Split(held, parents, plan, images, model.encode(images))


def _prdc_pair(
    held: Tensor, synthetic: Tensor, parents: Tensor, k: int, prefix: str
) -> dict[str, float | None]:
    """PRDC of the synthetic rows and of the parents' rows against the held-out rows."""
    out: dict[str, float | None] = {}
    for kind, fake in (("", synthetic), ("parents_", parents)):
        scores = prdc(held, fake, k) if min(len(held), len(fake)) > k else None
        for name in ("precision", "recall", "density", "coverage"):
            out[prefix + kind + name] = None if scores is None else scores[name]
    return out


def _split_scores(
    model: DeepSMOTE,
    images: Tensor,
    split: _Split,
    label: int,
    features: Callable[[Tensor], Tensor] | None,
    k: int,
    max_per_class: int,
    generator: torch.Generator,
) -> dict:
    """One class's split-test numbers: label fidelity against the held-out codes of every
    class, and PRDC against its own held-out images, of its synthetic images beside as many
    of their parents, in code space and (``features``) in that space."""
    labels, latents = model.labels_, model.latents_
    mine = split.plan.labels == label
    held_rows = torch.nonzero(split.held).flatten()
    own_held = held_rows[labels[held_rows] == label]
    own_parents = split.parents[labels[split.parents] == label]
    n = int(mine.sum())
    out: dict[str, Any] = {"held_out": len(own_held), "parents": len(own_parents)}
    out["split_synthetic"] = n
    if n == 0 or len(own_held) == 0:
        return out
    own_held = own_held[torch.randperm(len(own_held), generator=generator)[:max_per_class]]
    # Equal numbers of synthetic images and parents for the variety numbers: coverage grows
    # with the number of points that try to reach the held-out images.
    paired = min(n, len(own_parents))
    own_parents = own_parents[torch.randperm(len(own_parents), generator=generator)[:paired]]
    codes = split.codes[mine]
    # As many held-out codes of every other class as of this one compete (fewer where a
    # class has fewer): the nearest code is then not tilted towards the larger classes.
    reference = [own_held]
    for other in torch.unique(labels[held_rows]).tolist():
        if other != label:
            rows = held_rows[labels[held_rows] == other]
            reference.append(rows[torch.randperm(len(rows), generator=generator)[: len(own_held)]])
    reference = torch.cat(reference)
    held_labels = labels[reference]
    fidelity = held_labels[nearest(codes, latents[reference])[1]] == label
    real_fidelity = held_labels[nearest(latents[own_parents], latents[reference])[1]] == label
    out["other_class_share"] = 1 - float(fidelity.double().mean())
    out["label_fidelity"] = float(fidelity.double().mean())
    out["parents_label_fidelity"] = float(real_fidelity.double().mean())
    out.update(_prdc_pair(latents[own_held], codes[:paired], latents[own_parents], k, ""))
    if features is not None:
        out.update(
            _prdc_pair(
                _features(features, images[own_held]),
                _features(features, split.images[mine][:paired]),
                _features(features, images[own_parents]),
                k,
                "features_",
            )
        )
    return out


def _mean_of(results: list[dict]) -> dict:
    """The mean of each number over the splits' results (``None`` where any split has none;
    counts are the same in every split)."""
    out = {}
    for key in results[0]:
        values = [result.get(key) for result in results]
        out[key] = None if any(v is None for v in values) else sum(values) / len(values)
    for key in ("held_out", "parents", "split_synthetic"):
        out[key] = results[0][key]
    return out


def _reconstruction_ratio(real: Tensor, reconstruction_rms: float) -> float | None:
    """Reconstruction error over the spread of ``real`` (n, P) [0, 1] images around their
    mean image (the error of a model that knows only the class average); ``None`` for a
    class without spread."""
    spread = float((real - real.mean(0)).pow(2).mean(1).sqrt().mean())
    return reconstruction_rms / spread if spread > 0 else None


_SPLIT_KEYS = ("held_out", "parents", "split_synthetic", "other_class_share", "label_fidelity")
_SPLIT_KEYS += ("parents_label_fidelity",)


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
    """Measure a fitted model's synthetic images against real ones, per class, and judge them.

    The descriptive numbers (reconstruction, nearest distances, near copies) are of the
    synthetic images the model makes. The judged ones come from the split test (see the
    module's docstring): half of each class's real images held out, synthetic images made
    from the other half alone, measured against the held-out half beside that half itself.

    Args:
        model: A fitted :class:`~torch_deepsmote.DeepSMOTE`.
        images: (N, C, H, W) or (N, H, W) the images it was fitted on, in the same order.
        n_new: ``{class: synthetic images}`` to measure; ``None``: the model's
            ``sampling_strategy_`` (the images that balancing adds). At most
            ``max_per_class`` per class are drawn and measured, as are at most that many
            real images per class for the reconstruction and real-to-real distances. Only
            classes given synthetic images are judged.
        near_copy: A synthetic image is a near copy when its distance to the nearest real
            image of its class is at most ``near_copy`` times the median distance of real
            images to their nearest other real image of the same class (over all classes;
            0 where no class has two images).
        random_state: Seed of the synthetic draws, of the held-out split and of the real
            images measured.
        features: A function of a batch of images ((B, C, H, W) in their own dtype and
            range, at most 256 per call) to (B, F) features, e.g. a trained classifier's
            penultimate layer: the split test's variety numbers are also computed there
            (``features_*`` keys) and judged. ``None``: the autoencoder's code space only.
        k: Neighbours of the balls of :func:`prdc`.

    Returns:
        An :class:`Assessment` whose ``table`` has, per class: ``label``, ``real`` and
        ``synthetic`` (counts; ``synthetic`` as in ``n_new``), ``measured_real``,
        ``measured_synthetic``, ``reconstruction_rms`` (mean), ``mean_image_rms`` (the real
        images' mean RMS distance to the class's mean image), ``reconstruction_ratio``
        (the first over the second; ``None`` for a class of one image),
        ``real_nearest_rms`` (median over real images, ``None`` for a class of one),
        ``synthetic_nearest_rms`` (median, ``None`` without synthetic images),
        ``synthetic_nearest_rms_mean``, ``near_copies`` (count), ``near_copy_share``;
        then the split test's ``held_out``, ``parents`` and ``split_synthetic`` (counts),
        ``label_fidelity`` (share of the split's synthetic codes whose nearest held-out
        code, of any class, is of their class), ``other_class_share`` (1 - that),
        ``parents_label_fidelity`` (the same for the parents' codes), ``precision``,
        ``recall``, ``density`` and ``coverage`` (:func:`prdc` of the split's synthetic
        codes against the class's held-out codes) and ``parents_precision``, ... (the
        parents' codes against the same), ``variety`` (:func:`variety`'s reading of the
        two), with ``features`` the same as ``features_precision``, ...,
        ``features_parents_precision``, ..., ``features_variety``; and ``verdict`` and
        ``reading`` (:func:`~torch_deepsmote.verdicts.verdict`: a key and its words).
        Numbers that cannot be measured are ``None``; classes without synthetic images
        have no split numbers and no verdict.

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
    n_pixels = tensor[0].numel()
    judged = {c: int(n_new[c]) for c in classes if n_new.get(c, 0) > 0}
    seeds = torch.randint(
        0, 2**62, (SPLITS, 2), generator=torch.Generator().manual_seed(random_state)
    )
    splits = [_split(model, judged, max_per_class, pair) for pair in seeds.tolist()]

    per_class, loo_all = [], []
    for c in classes:
        rows = torch.nonzero(labels == c).flatten()
        measured = rows[torch.randperm(len(rows), generator=generator)[:max_per_class]]
        real = _unit(model, tensor[rows])
        positions = torch.searchsorted(rows, measured)  # of the measured rows within the class
        loo = _rms(nearest(real[positions], real, exclude=positions)[0], n_pixels)
        loo_all.append(loo[torch.isfinite(loo)])
        near = _rms(nearest(_unit(model, synthetic[plan.labels == c]), real)[0], n_pixels)
        recon = float(_reconstruction_rms(model, tensor, measured).mean())
        spread = _reconstruction_ratio(real[positions], recon)
        scores = {}
        if c in judged:
            scores = _mean_of(
                [
                    _split_scores(model, tensor, split, c, features, k, max_per_class, generator)
                    for split in splits
                ]
            )
        per_class.append((c, rows, measured, loo, near, recon, spread, scores))
    pooled = torch.cat(loo_all)
    threshold = near_copy * float(pooled.median()) if len(pooled) else 0.0

    table = []
    prefixes = ("", "features_") if features is not None else ("",)
    for c, rows, measured, loo, near, recon, ratio, scores in per_class:
        copies = int((near <= threshold).sum())
        row = {
            "label": int(c),
            "real": len(rows),
            "synthetic": int(n_new.get(c, 0)),
            "measured_real": len(measured),
            "measured_synthetic": len(near),
            "reconstruction_rms": recon,
            "mean_image_rms": None if ratio is None else recon / ratio,
            "reconstruction_ratio": ratio,
            "real_nearest_rms": _median(loo),
            "synthetic_nearest_rms": _median(near),
            "synthetic_nearest_rms_mean": float(near.mean()) if len(near) else None,
            "near_copies": copies,
            "near_copy_share": copies / len(near) if len(near) else None,
        }
        row.update({key: scores.get(key) for key in _SPLIT_KEYS})
        for prefix in prefixes:
            for kind in ("", "parents_"):
                for name in ("precision", "recall", "density", "coverage"):
                    row[prefix + kind + name] = scores.get(prefix + kind + name)
            row[prefix + "variety"] = variety(
                scores_of(row, prefix), scores_of(row, prefix + "parents_")
            )
        judgement = verdict(row, k)
        row["verdict"], row["reading"] = judgement if judgement else (None, None)
        table.append(row)
    return Assessment(table, threshold, plan, synthetic_codes, model.latents_, labels)
