"""Issue 12's DeepSMOTE recipes for classify.py, built from the library's own pieces.

A recipe is the user's few lines: ``OversampledDataset`` (fresh synthetic images every
epoch), ``ClassPriorSampler`` (the class prior of the batches and the share of synthetic
images in each class), and a logit-adjusted loss told the sampler's prior. Its name spells
its options, ``dsp`` followed by any of:

- ``q<power>``: ``class_power`` (1 natural rates, 0.5 square root, 0 balanced); default 1.
- ``s<share>`` or ``rest``: ``synthetic_share``; default ``s0.3``.
- ``d<fraction>``: defer the synthetic images (and the prior) to this share of the steps,
  as deferred re-sampling does; default 0.
- ``smote`` / ``enemy`` / ``transfer``: ``interpolation``; default ``smote``.
- ``k<int>``: ``k_neighbors``; ``x<high>``: ``lam_range=(0, high)``.
- ``bl``: ``base_selection='borderline'`` (Borderline-SMOTE's bases: only the codes in
  danger, near the class boundary); ``m<int>``: its ``m_neighbors``; default 10.
- ``ce``: plain cross-entropy instead of the matched logit adjustment.
- ``paper``: ``residual=False`` (the published decoding).
- ``mixup``: input mixup of the recipe's batches (as ``mixup_la``).
- ``cmo``: CMO with DeepSMOTE: the recipe's stream (balanced by default, ``q0``) is the
  minority loader whose CutMix boxes are pasted onto naturally sampled real batches (as
  ``cmo_la``, whose minority loader repeats real images), the loss told the natural prior.

For example ``dsp-q1-s0.3`` (a frequency-preserving augmentation under logit adjustment),
``dsp-q0.5-rest-enemy``, ``dsp-q0-rest-d0.75-ce`` (deferred balancing with synthetic
images, plain cross-entropy) or ``dsp-q0.5-s0.5-bl-m5`` (borderline bases).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch.utils.data import DataLoader

from benchmarks import classify_batches as cb
from torch_deepsmote import ClassPriorSampler

__all__ = ["is_recipe", "parse", "recipe"]

_INTERPOLATIONS = ("smote", "enemy", "transfer")


def is_recipe(method: str) -> bool:
    return method == "dsp" or method.startswith("dsp-")


def parse(method: str) -> dict[str, Any]:
    """The options of a recipe name (see the module docstring).

    Example:
        >>> parse("dsp-q0.5-rest-enemy-k20")["synthetic_share"]
        'rest'
        >>> parse("dsp-bl-m5")["library"]
        {'residual': True, 'base_selection': 'borderline', 'm_neighbors': 5}
    """
    if not is_recipe(method):
        raise ValueError(f"`method` should start with 'dsp', but got method={method!r}.")
    spec: dict[str, Any] = {
        "class_power": 1.0,
        "synthetic_share": 0.3,
        "defer": 0.0,
        "loss": "la",
        "mix": None,
        "library": {"residual": True},
    }
    for token in method.split("-")[1:]:
        if token in _INTERPOLATIONS:
            spec["library"]["interpolation"] = token
        elif token == "rest":
            spec["synthetic_share"] = "rest"
        elif token == "ce":
            spec["loss"] = "ce"
        elif token == "paper":
            spec["library"]["residual"] = False
        elif token == "bl":
            spec["library"]["base_selection"] = "borderline"
        elif token in ("mixup", "cmo"):
            spec["mix"] = token
        elif token[:1] in "qsdkxm" and _is_number(token[1:]):
            value = float(token[1:])
            if token[0] == "q":
                spec["class_power"] = value
            elif token[0] == "s":
                spec["synthetic_share"] = value
            elif token[0] == "d":
                spec["defer"] = value
            elif token[0] == "k":
                spec["library"]["k_neighbors"] = int(value)
            elif token[0] == "m":
                spec["library"]["m_neighbors"] = int(value)
            else:
                spec["library"]["lam_range"] = (0.0, value)
        else:
            raise ValueError(f"unknown option {token!r} in recipe {method!r}")
    if spec["mix"] == "cmo" and not any(t.startswith("q") for t in method.split("-")[1:]):
        spec["class_power"] = 0.0  # CMO's minority loader draws every class equally often
    return spec


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def recipe(method: str, ctx: dict, seed: int) -> cb.Recipe:
    """The :class:`~classify_batches.Recipe` of a ``dsp-...`` method.

    ``ctx`` holds ``batch_size``, ``steps``, ``x``/``y`` (the real training tensors),
    ``n_classes`` and ``oversampled(seed, strategy=None, **library_options)``, the factory of
    the experiment's ``OversampledDataset`` (the autoencoder is trained once and loaded from
    its cache after).
    """
    spec = parse(method)
    start = time.perf_counter()
    dataset = ctx["oversampled"](seed, None, **spec["library"])
    batches_per_epoch = dataset.n_real // ctx["batch_size"]
    start_epoch = math.floor(spec["defer"] * ctx["steps"] / batches_per_epoch)
    sampler = ClassPriorSampler(
        dataset,
        class_power=spec["class_power"],
        synthetic_share=spec["synthetic_share"],
        start_epoch=start_epoch,
        seed=seed,
    )
    loader = DataLoader(dataset, batch_size=ctx["batch_size"], sampler=sampler, drop_last=True)
    # With ``defer`` the prior changes at ``start_epoch``, and the loss must correct for the
    # one its batches have: the training loop reads it through a callable, per batch.
    current: dict = {"prior": None}
    priors = []

    def on_epoch(epoch: int) -> None:
        sampler.set_epoch(epoch)
        if epoch in (0, start_epoch):
            current["prior"] = sampler.class_prior
            priors.append({"epoch": epoch, "class_prior": sampler.class_prior.tolist()})

    on_epoch(0)
    info = {
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
        "start_epoch": start_epoch,
        "batches_per_epoch": batches_per_epoch,
        "n_real": dataset.n_real,
        "n_synthetic_pool": dataset.n_synthetic,
        "synthetic_fraction": sampler.synthetic_fraction.tolist(),
        "class_priors": priors,
        "setup_seconds": time.perf_counter() - start,
    }

    def batches():
        epoch = 0
        while True:
            if epoch:
                on_epoch(epoch)
            yield from loader
            epoch += 1

    prior = None if spec["loss"] == "ce" else (lambda: current["prior"])
    if spec["mix"] == "mixup":
        return cb.Recipe(batches(), prior, info, cb.Mixup(cb.MIXUP_ALPHA, seed))
    if spec["mix"] == "cmo":
        real = torch.utils.data.TensorDataset(ctx["x"], ctx["y"])
        natural = cb.class_counts(ctx["y"].numpy(), ctx["n_classes"])
        mix = cb.CMO(batches(), ctx["steps"], cb.CMO_PROB, seed)
        prior = None if spec["loss"] == "ce" else natural
        return cb.Recipe(cb.shuffled(real, ctx["batch_size"], seed), prior, info, mix)
    return cb.Recipe(batches(), prior, info)
