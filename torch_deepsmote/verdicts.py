"""The verdict on a class's synthetic images, in words, from the numbers of the split test.

[`torch_deepsmote.quality.assess`][torch_deepsmote.quality.assess] holds out half of each class's
real images (seeded, three times over, numbers averaged), makes synthetic images from the other half
alone (the *parents*: the model's own SMOTE rule, its neighbour search run among the parents only),
and compares them with the held-out images, beside the parents themselves compared with
the same held-out images: synthetic images should reach images they were not made from
about as well as real images of the class do. [`verdict`][torch_deepsmote.verdicts.verdict] reads
those numbers, in this order; the first that applies is the verdict:

1. **too few images to judge**: fewer than ``MIN_REAL`` = 20 real images (or than
   ``2 (k + 1)`` for a larger ``k``).
2. **not faithful: not reconstructed**: the autoencoder's RMS reconstruction error of the
   class's real images above ``RECONSTRUCTION_RATIO_MAX`` = 0.8 times their RMS
   distance to the class's mean image (the error of a model that knows only the class
   average; 0.8 in RMS means less than a third of the pixel variance around the mean
   explained). Its synthetic images are guesses, or with ``residual=True`` mostly pixel
   blends of their two parents, however their codes sit.
3. **not faithful: labels not kept**: fewer than ``LABEL_FIDELITY_MIN`` = 70 % of the
   synthetic codes have a code of their own class as their nearest held-out code, with as
   many held-out codes of every other class competing (1 / number of classes by chance).
   The reading quotes the same share for the real parents: when both are low, the
   autoencoder's codes do not keep the class apart, and nothing shows the synthetic images
   are of it.
4. the variety reading ([`variety`][torch_deepsmote.verdicts.variety]) of precision, density and
coverage of the
   synthetic codes against the held-out ones, beside the parents' (``READINGS``):
   "off the data" (precision below ``PRECISION_RATIO_MIN`` = 0.5 times the parents'),
   "right but easy" / "narrow" (coverage below ``COVERAGE_RATIO_MIN`` = 0.7 times the
   parents', with / without density at least the parents'), "right but easy" (density
   above ``DENSITY_RATIO_MAX`` = 1.3 times the parents': crowding where the real
   images are dense), "spread thin" (density below ``DENSITY_RATIO_MIN`` = 0.5 times
   the parents'), else "as varied as real images", and the verdict is "faithful and
   varied". With a ``features`` space the reading there is also taken, and the first one
   that is not "as varied as real images" decides.

Where the thresholds come from (models of this library; "shapes" are the test suite's
images, 8-12 px; "the demo" is ``torch-deepsmote demo``'s model, the paper's width 64
trained 5 epochs on the bundled Fashion-MNIST subset):

- MIN_REAL: a class of 8 images gets precision and coverage of 100 % whatever the model;
  with half held out, 20 images leave 10 per side for balls of k = 5 neighbours. On a
  trained shapes model, over 20 seeds, a class of 20 images was judged "faithful and
  varied" 17 times (3 chance "labels not kept"), a class of 24 images 20 times.
- RECONSTRUCTION_RATIO_MAX: trained models score 0.2-0.65 (shapes) and 0.66-0.71 (the
  demo, six of nine minority classes); failing models score 1.03-3.9 (shapes, 1 epoch),
  1.34-2.37 (the demo's data, width 4 after 2 epochs: RMS error 0.33-0.41) and 0.93-1.01
  (the demo's sandals, sneakers and ankle boots: no better than their mean image).
- LABEL_FIDELITY_MIN: shuffled labels score 0.11-0.25 (the demo's data, width 16, 4
  epochs, which reconstructs: ratio 0.6-0.73; the old measure against all real codes gave
  these classes 0.52-0.96) and 0.23-0.25 (shapes); steps towards other classes
  (``interpolation='enemy'``, ``lam_range=(0, 1)``) 0.46-0.55; trained shapes classes
  0.86-1.0 (5th percentile 0.71 for a class of 20); the demo from 0.96 (trousers) down to
  0.63 (coats) and 0.35 (shirts), the real parents alike (0.63, 0.36).
- PRECISION_RATIO_MIN: extrapolated steps (``lam_range=(2, 4)``) and decoding without
  residuals on shapes reach 0.0-0.2 of the parents' precision; trained models 0.92-1.1
  (5th to 95th percentile over 20 seeds).
- COVERAGE_RATIO_MIN: trained shapes models' 5th percentile over 20 seeds is 0.77-0.95
  of the parents' coverage; extrapolated steps and decoding without residuals 0.5-0.63.
- DENSITY_RATIO_MAX: ``benchmarks/RESULTS.md`` found SMOTE's images "right but easy" at
  1.49 times the density of unseen real images in a classifier's features, and steps
  towards other classes (1.18) as dense as unseen real images; the demo's codes are 1.07
  to 1.30 times as dense as their parents'.
- DENSITY_RATIO_MIN: the earlier rule's "spread thin" (density below 0.5), kept; no
  model measured here reads so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "COVERAGE_RATIO_MIN",
    "DENSITY_RATIO_MAX",
    "DENSITY_RATIO_MIN",
    "LABEL_FIDELITY_MIN",
    "MIN_REAL",
    "PRECISION_RATIO_MIN",
    "READINGS",
    "RECONSTRUCTION_RATIO_MAX",
    "min_real",
    "scores_of",
    "verdict",
    "variety",
]

MIN_REAL = 20
RECONSTRUCTION_RATIO_MAX = 0.8
LABEL_FIDELITY_MIN = 0.7
PRECISION_RATIO_MIN = 0.5
COVERAGE_RATIO_MIN = 0.7
DENSITY_RATIO_MAX = 1.3
DENSITY_RATIO_MIN = 0.5

# The reading of variety numbers: key -> words (the numbers are appended by variety()).
READINGS = {
    "off": "off the data: the synthetic images fall outside the real images' neighbourhoods "
    "far more often than real images do",
    "easy": "right but easy: the synthetic images look real but crowd where the real ones "
    "are dense, so they add less variety than new real images would",
    "narrow": "narrow: the synthetic images look real but reach far fewer of the real "
    "images' neighbourhoods than real images do, without crowding in any",
    "thin": "spread thin: the synthetic images reach the real spread but sit in its sparse "
    "parts, away from where the real images crowd",
    "good": "as varied as real images: the synthetic images reach the real images' "
    "neighbourhoods about as well as real images do, as densely",
}

# With no reference: the numbers of a perfect one (the reading of PRDC against the real
# images themselves, as before the split test).
_IDEAL = {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def _percent(value: float) -> str:
    return f"{100 * value:.0f} %"


def variety_key(
    scores: Mapping[str, float] | None, reference: Mapping[str, float] | None = None
) -> str | None:
    """The key in ``READINGS`` of ``variety``'s reading, or ``None``."""
    if scores is None:
        return None
    reference = _IDEAL if reference is None else reference
    precision, density, coverage = (scores[k] for k in ("precision", "density", "coverage"))
    if precision < PRECISION_RATIO_MIN * reference["precision"]:
        return "off"
    if coverage < COVERAGE_RATIO_MIN * reference["coverage"]:
        return "easy" if density >= reference["density"] else "narrow"
    if density > DENSITY_RATIO_MAX * reference["density"]:
        return "easy"
    return "thin" if density < DENSITY_RATIO_MIN * reference["density"] else "good"


def variety(
    scores: Mapping[str, float] | None, reference: Mapping[str, float] | None = None
) -> str | None:
    """The reading in words of ``prdc``'s numbers.

    Args:
        scores: ``{"precision", "recall", "density", "coverage"}`` of synthetic images
            against real ones they were not made from (the held-out images), or ``None``.
        reference: The same numbers for as many real images against those real ones (the
            synthetic images' parents against the held-out images): what real images of
            the class reach. ``None``: a perfect reference (precision, coverage and density
            1), the reading of the numbers alone.

    Returns:
        One of ``READINGS``' texts followed by the numbers it rests on, or ``None``
        without ``scores``. In order: precision below ``PRECISION_RATIO_MIN`` times the
        reference's reads "off the data"; coverage below ``COVERAGE_RATIO_MIN`` times
        the reference's reads "right but easy" with density at least the reference's,
        else "narrow"; density below ``DENSITY_RATIO_MIN`` times the reference's reads
        "spread thin"; anything else "as varied as real images" (which
        [`verdict`][torch_deepsmote.verdicts.verdict] calls "faithful and varied" once
        reconstruction and labels pass).

    Examples:
        >>> variety({"precision": 1.0, "recall": 0.1, "density": 1.8,
        ...          "coverage": 0.2})[:14]
        'right but easy'
        >>> variety({"precision": 0.9, "recall": 0.6, "density": 1.0,
        ...          "coverage": 0.6},
        ...         {"precision": 0.9, "recall": 0.7, "density": 0.9,
        ...          "coverage": 0.7})[:24]
        'as varied as real images'
    """
    key = variety_key(scores, reference)
    if key is None:
        return None
    numbers = (
        f"precision {_percent(scores['precision'])}, density {scores['density']:.2f}, "
        f"coverage {_percent(scores['coverage'])}"
    )
    if reference is not None:
        numbers += (
            f"; real images: precision {_percent(reference['precision'])}, density "
            f"{reference['density']:.2f}, coverage {_percent(reference['coverage'])}"
        )
    return f"{READINGS[key]} ({numbers})"


def min_real(k: int) -> int:
    """Real images a class needs to be judged: ``MIN_REAL``, or ``2 (k + 1)`` when
    that is more (half held out, and ``prdc`` needs more
    than ``k`` images on each side)."""
    return max(MIN_REAL, 2 * (k + 1))


def verdict(row: Mapping[str, Any], k: int = 5) -> tuple[str, str] | None:
    """The verdict on one class of [`assess`][torch_deepsmote.quality.assess]'s table.

    Args:
        row: A class's row: ``synthetic``, ``real``, ``reconstruction_ratio``,
            ``label_fidelity``, ``parents_label_fidelity``, the split test's
            ``precision``, ``density``, ``coverage`` and their ``parents_`` reference, and
            the ``features_`` ones when they were measured.
        k: The neighbours of the balls of the variety numbers.

    Returns:
        ``(key, words)``: the key is ``"too few"``, ``"not reconstructed"``, ``"labels not
        kept"`` or a key of ``READINGS`` (``"good"`` alone calls the class faithful and
        varied); ``None`` for a class without synthetic images.

    Examples:
        >>> verdict({"synthetic": 30, "real": 8})[0]
        'too few'
    """
    if not row.get("synthetic"):
        return None
    needed = min_real(k)
    if row["real"] < needed:
        return (
            "too few",
            f"too few images to judge: {row['real']} real images, fewer than {needed} (half "
            "of them are held out to judge synthetic images made from the other half)",
        )
    ratio = row.get("reconstruction_ratio")
    if ratio is not None and ratio > RECONSTRUCTION_RATIO_MAX:
        return (
            "not reconstructed",
            "not faithful: the autoencoder does not reconstruct this class (its error is "
            f"{_percent(ratio)} of the real images' spread around the class's mean image, "
            f"above {_percent(RECONSTRUCTION_RATIO_MAX)}), so its synthetic images are the "
            "decoder's guesses (with residuals: mostly blends of their parents' pixels)",
        )
    fidelity = row.get("label_fidelity")
    if fidelity is not None and fidelity < LABEL_FIDELITY_MIN:
        real = row.get("parents_label_fidelity")
        words = (
            f"not faithful: labels not kept ({_percent(1 - fidelity)} of the synthetic codes "
            "land nearest a held-out image of another class, more than "
            f"{_percent(1 - LABEL_FIDELITY_MIN)}"
        )
        if real is not None and real < LABEL_FIDELITY_MIN:
            words += (
                f", as do {_percent(1 - real)} of the real images' codes: the autoencoder's "
                "codes do not keep this class apart, so nothing here shows that the synthetic "
                "images are of it)"
            )
        elif real is not None:
            words += f", against {_percent(1 - real)} of the real images' codes)"
        return "labels not kept", words + ")" * (real is None)
    readings = []
    for prefix, space in (
        ("", "in the autoencoder's codes"),
        ("features_", "in the classifier's features"),
    ):
        scores = scores_of(row, prefix)
        if scores is not None:
            key = variety_key(scores, scores_of(row, prefix + "parents_"))
            readings.append((key, f"{row[prefix + 'variety']}, {space}"))
    if not readings:
        return None
    for key, words in readings:
        if key != "good":
            return key, words
    checks = []
    if ratio is not None:
        checks.append(f"reconstructed (error {_percent(ratio)} of the spread around the mean)")
    if fidelity is not None:
        checks.append(f"labels kept ({_percent(fidelity)} nearest their own class)")
    return "good", "faithful and varied: " + ", ".join(
        checks + ["; ".join(words for _, words in readings)]
    )


def scores_of(row: Mapping[str, Any], prefix: str) -> dict[str, float] | None:
    """``{"precision", "recall", "density", "coverage"}`` of a table row under ``prefix``
    (``""``, ``"parents_"``, ``"features_"``, ``"features_parents_"``), or ``None`` when
    any is missing."""
    names = ("precision", "recall", "density", "coverage")
    if any(row.get(prefix + name) is None for name in names):
        return None
    return {name: row[prefix + name] for name in names}
