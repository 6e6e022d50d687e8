"""The split test: synthetic images judged against real images they were not made from.

Each class's real images are split at random: ``HOLD_OUT`` of them held out, synthetic
images made from the rest alone (the *parents*: the model's own SMOTE rule, every neighbour
table built among the parents only, ``split_synthesizer``), then measured against the
held-out images beside the parents themselves, ``SPLITS`` times with the numbers
averaged. ``torch_deepsmote.quality.assess`` runs it and
``torch_deepsmote.verdicts.verdict`` reads it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .deepsmote import DeepSMOTE
from .fitting import neighbor_tables
from .metrics import nearest, prdc
from .smote import SMOTEPlan
from .synthesis import Synthesizer

__all__ = ["HOLD_OUT", "SPLITS", "draw_splits", "hold_out", "split_scores", "split_synthesizer"]

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

    Examples:
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
        model: A fitted ``DeepSMOTE``.
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


def draw_splits(
    model: DeepSMOTE, judged: Mapping[int, int], max_per_class: int, random_state: int
) -> list[_Split]:
    """``SPLITS`` seeded splits, each with the synthetic images of the classes in
    ``judged`` (``{class: images it gets}``) made from its parents alone."""
    seeds = torch.randint(
        0, 2**62, (SPLITS, 2), generator=torch.Generator().manual_seed(random_state)
    )
    return [_split(model, judged, max_per_class, pair) for pair in seeds.tolist()]


def split_scores(
    model: DeepSMOTE,
    images: Tensor,
    splits: list[_Split],
    label: int,
    features: Callable[[Tensor], Tensor] | None,
    k: int,
    max_per_class: int,
    generator: torch.Generator,
) -> dict:
    """Class ``label``'s split-test numbers, averaged over ``splits``: ``held_out``,
    ``parents``, ``split_synthetic`` (counts), ``label_fidelity``, ``other_class_share``,
    ``parents_label_fidelity``, and ``precision``, ``recall``, ``density``, ``coverage``
    with their ``parents_`` and (``features``) ``features_`` forms, as in
    ``torch_deepsmote.quality.assess``.

    Args:
        model: The fitted model.
        images: (N, C, H, W) its training images.
        splits: From ``draw_splits``.
        label: The class.
        features: A function of a batch of images to (B, F) features, or ``None``.
        k: Neighbours of the balls of ``prdc``.
        max_per_class: At most this many held-out images (and parents) measured.
        generator: The draw of the images measured.
    """
    return _mean_of(
        [
            _split_scores(model, images, split, label, features, k, max_per_class, generator)
            for split in splits
        ]
    )


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
