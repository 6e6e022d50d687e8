"""Per-class numbers that tell whether a fitted DeepSMOTE's synthetic images are any good,
and a verdict on them that can fail.

For every class ([`assess`][torch_deepsmote.quality.assess]), first what the model makes:

- reconstruction error of its real images: the RMS pixel difference between an image and
  ``decode(encode(image))``, and that error over the images' spread around the class's
  mean image (the error of a model that knows only the class average); high means the
  autoencoder has not learnt the class, and its synthetic images are blurred guesses (with
  ``residual=True`` the residuals put the detail back, see
  [`DeepSMOTE`][torch_deepsmote.deepsmote.DeepSMOTE]);
- distance from each synthetic image to its nearest real image of the class (RMS pixel
  difference), beside the real images' own distances to their nearest other real image of
  the class. A synthetic image far nearer than real images are to each other is a *near
  copy*: it adds no variety (a class of one image gives nothing but copies of it).

Then the split test, which judges synthetic images against real images they were not made
from. Measured against the codes they were interpolated from, synthetic codes look right
almost whatever the model (precision and coverage near 100 % even for an untrained one),
so (``torch_deepsmote.holdout``) each class's real images are split at random:
``HOLD_OUT`` of them held out, synthetic images made from the rest alone (the
*parents*; the model's own SMOTE rule, with every neighbour table built among the parents
only: ``split_synthesizer``), three times over, and the numbers averaged:

- label fidelity: the share of the synthetic codes whose nearest held-out code (held-out
  images of every class compete) is of their own class, beside the same share for the
  parents' codes. A low value means new images land among another class's;
- precision, recall, density and coverage of the synthetic codes against the class's
  held-out codes (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", ICML 2020; ``prdc``), beside the same four for as many of the parents' codes:
  synthetic images should reach the held-out images about as well as real images of the
  class do. The same in a ``features`` space when one is given (a classifier's
  penultimate layer, say): a space the autoencoder did not shape.

[`torch_deepsmote.verdicts.verdict`][torch_deepsmote.verdicts.verdict] reads these numbers (its
docstring states the rule and its thresholds): "too few images to judge", "not faithful" (not
reconstructed, or labels not kept), or [`variety`][torch_deepsmote.verdicts.variety]'s reading ("off
the data", "right but easy", "narrow", "spread thin", "faithful and varied").

Note:
    The autoencoder was trained on every real image, the held-out ones included: its codes
    of them are as good as its codes of the parents. The split test shows whether
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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from ._format import as_images
from ._validation import check_positive_float, check_positive_int
from .deepsmote import DeepSMOTE
from .holdout import HOLD_OUT, draw_splits, hold_out, split_scores, split_synthesizer
from .latents import decode_codes
from .metrics import latent_pca, nearest, prdc
from .smote import SMOTEPlan
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


@dataclass
class Assessment:
    """What ``assess`` measured.

    Attributes:
        table: One JSON-ready dict per class (see ``assess``).
        near_copy_threshold: RMS pixel distance at or below which a synthetic image counts
            as a near copy.
        plan: The ``SMOTEPlan`` of the synthetic images measured.
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


def _median(values: Tensor) -> float | None:
    values = values[torch.isfinite(values)]
    return float(values.median()) if len(values) else None


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
        model: A fitted [`DeepSMOTE`][torch_deepsmote.deepsmote.DeepSMOTE].
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
        k: Neighbours of the balls of ``prdc``.

    Returns:
        An ``Assessment`` whose ``table`` has, per class: ``label``, ``real`` and
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
        ``recall``, ``density`` and ``coverage`` (``prdc`` of the split's synthetic
        codes against the class's held-out codes) and ``parents_precision``, ... (the
        parents' codes against the same), ``variety``
        ([`variety`][torch_deepsmote.verdicts.variety]'s reading of the two), with ``features`` the
        same as ``features_precision``, ..., ``features_parents_precision``, ...,
        ``features_variety``; and ``verdict`` and ``reading``
        ([`verdict`][torch_deepsmote.verdicts.verdict]: a key and its words). Numbers that cannot be
        measured are ``None``; classes without synthetic images have no split numbers and no
        verdict.

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
    splits = draw_splits(model, judged, max_per_class, random_state)

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
            scores = split_scores(model, tensor, splits, c, features, k, max_per_class, generator)
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
