"""Pictures of a fitted DeepSMOTE, for notebooks and for ``torch-deepsmote report``.

- [`real_vs_synthetic`][torch_deepsmote.app.plots.real_vs_synthetic]: per class a row of
  real images, then synthetic ones (the paper's Fig. 4), as an image tensor from
  torchvision's ``make_grid``; [`save_grid`][torch_deepsmote.app.plots.save_grid] writes it
  with the class names beside the rows. Needs no matplotlib.
- ``plot_counts``, ``plot_history``, ``plot_latent_space`` (the paper's
  Fig. 2: real and synthetic codes per class on the first two principal axes) and
  ``plot_quality`` return matplotlib figures. matplotlib is an optional extra
  (``pip install 'torch-deepsmote[plots]'``), imported only when one of them is called.

The figures are made with ``matplotlib.figure.Figure``, not pyplot: no global state and no
backend needed to save them; a notebook shows the returned figure.

Examples:
    >>> from torch_deepsmote import DeepSMOTE
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.random((20, 8, 8)) * 255).astype(np.uint8)
    >>> model = DeepSMOTE(latent_dim=4, hidden_channels=4, max_epochs=1,
    ...                   progress=False, random_state=0)
    >>> model = model.fit(X, [0] * 14 + [1] * 6)
    >>> # 2 rows of 4 real + 4 synthetic images
    >>> real_vs_synthetic(model, X, n=4, scale=1).shape
    torch.Size([3, 22, 82])
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._format import as_images
from ..deepsmote import DeepSMOTE
from ..quality import Assessment, latent_pca
from ..storage.atomic import atomic_write

__all__ = [
    "INSTALL_HINT",
    "plot_counts",
    "plot_history",
    "plot_latent_space",
    "plot_quality",
    "real_vs_synthetic",
    "save_grid",
]

INSTALL_HINT = "pip install 'torch-deepsmote[plots]'"
_PADDING = 2
_MIN_CELL = 48  # pixels: small images are enlarged so that a person can see them


def _figure(**kwargs: Any) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"This figure needs matplotlib, which is not installed. Install it with "
            f"`{INSTALL_HINT}` (or `pip install matplotlib`)."
        ) from error
    return Figure(**kwargs)


def _names(names: Mapping[int, str] | None, labels: Sequence[int]) -> list[str]:
    return [str(names.get(label, label)) if names else str(label) for label in labels]


# ---------------------------------------------------------------------- image grids
def real_vs_synthetic(
    model: DeepSMOTE, images: Any, *, n: int = 8, random_state: int = 0, scale: int | None = None
) -> Tensor:
    """Per class of the model, ``n`` real images then ``n`` synthetic ones in a grid.

    Args:
        model: A fitted [`DeepSMOTE`][torch_deepsmote.deepsmote.DeepSMOTE].
        images: (N, C, H, W) or (N, H, W) the images it was fitted on (same order).
        n: Images of each kind per row (a class with fewer real images shows them all).
        random_state: Seed of the real images shown and of the synthetic draw.
        scale: Enlarge every image this many times (nearest neighbour); ``None``: enough
            for cells of about 48 pixels.

    Returns:
        (3, H', W') float32 in [0, 1], one row per class in ``model.classes_`` order.
    """
    from torchvision.utils import make_grid

    tensor, _ = as_images(images, "images")
    model.check_fitted_on(tensor, model.labels_)
    to_unit = model.image_format_.to_unit
    generator = torch.Generator().manual_seed(random_state)
    blank = torch.ones(tensor.shape[1:])  # white where a class has fewer than n images
    cells = []
    for label in model.classes_.tolist():
        rows = torch.nonzero(model.labels_ == label).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)[:n]]
        plan = model.plan({label: n}, random_state)
        real = list(to_unit(tensor[rows]))
        cells += real + [blank] * (n - len(real)) + list(model.synthesizer_.unit_images(plan))
    grid = (torch.stack(cells) + 1) / 2
    factor = scale or max(1, math.ceil(_MIN_CELL / max(tensor.shape[2:])))
    if factor > 1:
        grid = torch.nn.functional.interpolate(grid, scale_factor=factor, mode="nearest")
    return make_grid(grid, nrow=2 * n, padding=_PADDING, pad_value=1.0)


def save_grid(
    grid: Tensor, path: str | os.PathLike, row_names: Sequence[str] | None = None
) -> None:
    """Write a grid from ``real_vs_synthetic`` as PNG, class names left of the rows.

    Args:
        grid: (3, H', W') float in [0, 1].
        path: The PNG file.
        row_names: One name per grid row, or ``None`` for the grid alone.
    """
    from PIL import Image, ImageDraw
    from torchvision.transforms.functional import to_pil_image

    image = to_pil_image(grid.clamp(0, 1))
    if row_names:
        draw = ImageDraw.Draw(image)
        margin = 8 + max(int(draw.textlength(name)) for name in row_names)
        labelled = Image.new("RGB", (image.width + margin, image.height), "white")
        labelled.paste(image, (margin, 0))
        draw = ImageDraw.Draw(labelled)
        row = (image.height - _PADDING) / len(row_names)
        for i, name in enumerate(row_names):
            draw.text((4, int((i + 0.5) * row) - 5), name, fill="black")
        image = labelled
    with atomic_write(path) as temporary:
        image.save(temporary, format="PNG")


# ---------------------------------------------------------------------- figures
def plot_counts(
    before: Mapping[int, int], after: Mapping[int, int], names: Mapping[int, str] | None = None
) -> Any:
    """Bars of the images per class before and after balancing.

    Args:
        before: ``{label: real images}``.
        after: ``{label: real + synthetic images}``.
        names: ``{label: class name}`` for the axis.

    Returns:
        A matplotlib ``Figure``.
    """
    labels = list(before)
    x = np.arange(len(labels))
    figure = _figure(figsize=(max(5.0, 0.6 * len(labels) + 2), 3.5), layout="constrained")
    ax = figure.add_subplot()
    ax.bar(x - 0.2, [before[c] for c in labels], 0.4, label="real")
    ax.bar(x + 0.2, [after[c] for c in labels], 0.4, label="after DeepSMOTE (real + synthetic)")
    ax.set_xticks(x, _names(names, labels), rotation=45 if len(labels) > 6 else 0, ha="right")
    ax.set_ylabel("images")
    ax.set_title("Images per class")
    ax.legend()
    return figure


def plot_history(history: Sequence[Mapping[str, float]]) -> Any:
    """The training loss and its terms per epoch (``model.history_``).

    Returns:
        A matplotlib ``Figure``.
    """
    figure = _figure(figsize=(5.5, 3.5), layout="constrained")
    ax = figure.add_subplot()
    epochs = [record["epoch"] + 1 for record in history]
    for key, label in (
        ("loss", "total"),
        ("reconstruction", "reconstruction MSE"),
        ("penalty", "penalty"),
    ):
        ax.plot(epochs, [record[key] for record in history], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE on the [-1, 1] scale)")
    ax.set_title("Autoencoder training")
    ax.legend()
    return figure


def plot_latent_space(
    assessment: Assessment,
    names: Mapping[int, str] | None = None,
    *,
    max_points: int = 500,
    random_state: int = 0,
) -> Any:
    """Real codes (dots) and synthetic codes (crosses) per class on two principal axes.

    Args:
        assessment: From ``torch_deepsmote.quality.assess`` (the codes it holds).
        names: ``{label: class name}`` for the legend.
        max_points: At most this many points of each kind per class, drawn at random.
        random_state: Seed of that draw.

    Returns:
        A matplotlib ``Figure``; the axes are fitted to the real codes.
    """
    from matplotlib import colormaps

    real, synthetic = latent_pca(assessment.real_codes, assessment.synthetic_codes)
    generator = torch.Generator().manual_seed(random_state)
    labels = torch.unique(assessment.real_labels).tolist()
    colours = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    figure = _figure(figsize=(8.5, 5), layout="constrained")
    ax = figure.add_subplot()
    for i, label in enumerate(labels):
        colour = colours(i % colours.N)
        for points, of, marker, size, kind in (
            (real, assessment.real_labels, "o", 12, "real"),
            (synthetic, assessment.plan.labels, "x", 14, "synthetic"),
        ):
            rows = torch.nonzero(of == label).flatten()
            rows = rows[torch.randperm(len(rows), generator=generator)[:max_points]]
            if len(rows):
                ax.scatter(
                    points[rows, 0],
                    points[rows, 1],
                    s=size,
                    marker=marker,
                    color=colour,
                    alpha=0.7 if kind == "real" else 0.45,
                    linewidths=0.8 if kind == "synthetic" else 0,
                    label=f"{_names(names, [label])[0]} ({kind})",
                )
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    ax.set_title("Latent space: real (o) and synthetic (x) codes")
    ax.legend(
        fontsize=7,
        ncol=2 if len(labels) > 8 else 1,
        markerscale=1.5,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
    )
    return figure


def plot_quality(table: Sequence[Mapping[str, Any]], names: Mapping[int, str] | None = None) -> Any:
    """Three panels per class: reconstruction error, nearest-real distances, label fidelity.

    Args:
        table: ``Assessment.table`` from ``torch_deepsmote.quality.assess``.
        names: ``{label: class name}`` for the axis.

    Returns:
        A matplotlib ``Figure``.
    """
    labels = [row["label"] for row in table]
    x = np.arange(len(labels))
    ticks = _names(names, labels)

    def values(key: str) -> list[float]:
        return [np.nan if row[key] is None else row[key] for row in table]

    figure = _figure(figsize=(max(10.0, 1.2 * len(labels) + 4), 3.8), layout="constrained")
    axes = figure.subplots(1, 3)
    axes[0].bar(x, values("reconstruction_rms"))
    axes[0].set_title("Reconstruction error (real)", fontsize=10)
    axes[0].set_ylabel("RMS pixel difference (0..1)")
    axes[1].bar(x - 0.2, values("real_nearest_rms"), 0.4, label="real to nearest other real")
    axes[1].bar(x + 0.2, values("synthetic_nearest_rms"), 0.4, label="synthetic to nearest real")
    axes[1].set_title("Distance to nearest real (median)", fontsize=10)
    axes[1].legend(fontsize=7)
    axes[2].bar(x - 0.2, values("label_fidelity"), 0.4, label="label fidelity")
    axes[2].bar(x + 0.2, values("near_copy_share"), 0.4, label="near copies")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_title("Share of synthetic images", fontsize=10)
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(x, ticks, rotation=45 if len(labels) > 4 else 0, ha="right")
    return figure
