"""Section 2, time to quality: held-out MSE against training seconds.

The published recipe with a fixed epoch budget (scaled down to fit the run) against the
library's loop with its plateau stop, from the same initial weights on Table I counts.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from torch_deepsmote.data import TABLE_I_TRAIN, imbalanced_subset
from torch_deepsmote.models import Decoder, Encoder
from torch_deepsmote.training import TrainingConfig, fit_autoencoder

from .common import load_fashion_mnist, to_unit
from .published import heldout_mse, published_copy, published_epoch

__all__ = ["render", "run"]


def run(quick, device):
    """Both curves as (seconds so far, held-out MSE) per epoch, and where the library
    reaches the published loop's final level."""
    train_set, test_set = load_fashion_mnist(True), load_fashion_mnist(False)
    scale = 80 if quick else 40
    counts = tuple(max(2, c // scale) for c in TABLE_I_TRAIN)
    idx = imbalanced_subset(train_set, counts, seed=0).indices
    x = train_set.data[idx][:, None]
    y = train_set.targets[idx]
    heldout = to_unit(test_set.data[:500][:, None])
    budget = 2 if quick else 4  # the published recipe's epoch budget, scaled down
    torch.manual_seed(1)
    enc0, dec0 = Encoder((1, 28, 28)), Decoder((1, 28, 28))
    penc, pdec = published_copy(enc0, dec0, (1, 28, 28), 300, device)
    optims = [torch.optim.Adam(m.parameters(), lr=2e-4) for m in (penc, pdec)]
    rng = np.random.default_rng(0)
    published_curve, elapsed = [], 0.0
    for _ in range(budget):
        seconds, _, _ = published_epoch(
            penc, pdec, optims, to_unit(x).numpy(), y.numpy(), 100, device, rng
        )
        elapsed += seconds
        published_curve.append((elapsed, heldout_mse(penc, pdec, heldout, device)))
    level = published_curve[-1][1]
    enc, dec = copy.deepcopy(enc0), copy.deepcopy(dec0)
    library_curve = []
    state = {"elapsed": 0.0}

    def callback(record):
        state["elapsed"] += record["seconds"]
        library_curve.append((state["elapsed"], heldout_mse(enc, dec, heldout, device)))

    cfg = TrainingConfig(max_epochs=3 * budget)  # library defaults: patience 5, min_delta 1e-3
    history = fit_autoencoder(
        enc,
        dec,
        x,
        y,
        to_unit,
        config=cfg,
        generator=torch.Generator().manual_seed(0),
        device=device,
        progress=False,
        callback=callback,
    )
    reached = next((i for i, (_, m) in enumerate(library_curve) if m <= level), None)
    return {
        "images": len(x),
        "scale": scale,
        "counts": counts,
        "budget_epochs": budget,
        "level": level,
        "published_curve": published_curve,
        "library_curve": library_curve,
        "library_epochs_run": len(history),
        "library_max_epochs": cfg.max_epochs,
        "library_epoch_reaching_level": reached,
        "library_seconds_to_level": None if reached is None else library_curve[reached][0],
        "published_seconds_to_level": published_curve[-1][0],
    }


def render(q):
    """The section's markdown lines, from the keys :func:`run` returns."""
    lines = [
        "### 2. Time to quality",
        "",
        f"Table I counts / {q['scale']} ({q['images']} images), paper model, held-out MSE "
        f"on 500 test images after every epoch; published budget {q['budget_epochs']} epochs "
        f"(scaled down from 50-350 to fit the run), level = its final held-out MSE "
        f"{q['level']:.4f}. Library: default plateau stop (patience 5, min_delta 1e-3), "
        f"max_epochs {q['library_max_epochs']}; ran {q['library_epochs_run']} epochs.",
        "",
        "| epoch | published s | published MSE | library s | library MSE |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for i in range(max(len(q["published_curve"]), len(q["library_curve"]))):
        p = q["published_curve"][i] if i < len(q["published_curve"]) else ("", "")
        lib = q["library_curve"][i] if i < len(q["library_curve"]) else ("", "")
        cells = [
            f"{v:.1f}"
            if isinstance(v, float) and j % 2 == 0
            else (f"{v:.4f}" if isinstance(v, float) else "")
            for j, v in enumerate((*p, *lib))
        ]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    reached = q["library_epoch_reaching_level"]
    if reached is None:
        lines.append("\nThe library run did not reach the level.")
    else:
        lines.append(
            f"\nLibrary reaches the level after epoch {reached + 1}, at "
            f"{q['library_seconds_to_level']:.1f} s, against "
            f"{q['published_seconds_to_level']:.1f} s "
            f"for the published loop; it then ran {q['library_epochs_run'] - reached - 1} "
            "more epochs before stopping."
        )
    lines.append("")
    return lines
