"""The report on a fitted DeepSMOTE that a person reads: pictures and a JSON of every number.

[`write_report`][torch_deepsmote.app.report.write_report] writes into a folder:

- ``report.json``: class names, counts before and after balancing, the training history,
  the per-class quality table ([`torch_deepsmote.quality.assess`][torch_deepsmote.quality.assess])
  and its near-copy threshold, and which figures were written;
- ``real_vs_synthetic.png``: per class a row of real images, then synthetic ones (the
  paper's Fig. 4; torchvision only);
- with matplotlib (``pip install 'torch-deepsmote[plots]'``): ``counts.png``, ``loss.png``,
  ``latent_space.png`` (the paper's Fig. 2) and ``quality.png``. Without it these are
  skipped, and ``report.json`` says so and how to install it.

``format_table`` prints the quality table for a terminal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..deepsmote import DeepSMOTE
from ..quality import assess
from ..storage.atomic import atomic_write, write_bytes
from . import plots

__all__ = ["FIGURES", "REPORT_NAME", "format_table", "write_report"]

REPORT_NAME = "report.json"
GRID_NAME = "real_vs_synthetic.png"
FIGURES = ("counts.png", "loss.png", "latent_space.png", "quality.png")


def write_report(
    out: str | os.PathLike,
    model: DeepSMOTE,
    images: Any,
    names: Mapping[int, str] | None = None,
    *,
    source: Mapping[str, Any] | None = None,
    n_show: int = 8,
    max_per_class: int = 1000,
    near_copy: float = 0.1,
    random_state: int = 0,
    features: Callable[[Any], Any] | None = None,
    k: int = 5,
) -> dict:
    """Measure ``model`` and write the report files into the folder ``out``.

    Args:
        out: The folder (created when missing; files of the same names are replaced).
        model: A fitted [`DeepSMOTE`][torch_deepsmote.deepsmote.DeepSMOTE].
        images: (N, C, H, W) or (N, H, W) the images it was fitted on, in order.
        names: ``{label: class name}``; ``None``: the labels.
        source: What the images were read from, copied into the JSON.
        n_show: Real and synthetic images per class in the grid.
        max_per_class, near_copy, features, k: As in
            [`assess`][torch_deepsmote.quality.assess]: ``features`` (a classifier's feature
            function) adds precision, recall, density and coverage in its feature space to
            those in the autoencoder's code space.
        random_state: Seed of every draw (images shown, images measured).

    Returns:
        The contents of ``report.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = dict(names) if names else {c: str(c) for c in model.classes_.tolist()}
    assessment = assess(
        model,
        images,
        max_per_class=max_per_class,
        near_copy=near_copy,
        random_state=random_state,
        features=features,
        k=k,
    )
    before = {row["label"]: row["real"] for row in assessment.table}
    after = {row["label"]: row["real"] + row["synthetic"] for row in assessment.table}
    grid = plots.real_vs_synthetic(model, images, n=n_show, random_state=random_state)
    plots.save_grid(grid, out / GRID_NAME, [names[c] for c in model.classes_.tolist()])
    report: dict[str, Any] = {
        "source": dict(source) if source else None,
        "classes": [{"label": c, "name": names[c]} for c in before],
        "counts_before": [before[c] for c in before],
        "counts_after": [after[c] for c in before],
        "total_before": sum(before.values()),
        "total_after": sum(after.values()),
        "history": model.history_,
        "quality": assessment.to_dict(),
        "settings": {
            "n_show": n_show,
            "max_per_class": max_per_class,
            "near_copy": near_copy,
            "random_state": random_state,
            "k": k,
            "features": None
            if features is None
            else getattr(features, "__qualname__", type(features).__name__),
        },
        "figures": [GRID_NAME],
    }
    try:
        figures = {
            "counts.png": plots.plot_counts(before, after, names),
            "loss.png": plots.plot_history(model.history_),
            "latent_space.png": plots.plot_latent_space(
                assessment, names, random_state=random_state
            ),
            "quality.png": plots.plot_quality(assessment.table, names),
        }
    except ImportError as error:
        report["figures_skipped"] = {"files": list(FIGURES), "reason": str(error)}
    else:
        for name, figure in figures.items():
            with atomic_write(out / name) as temporary:
                figure.savefig(temporary, dpi=110)
            report["figures"].append(name)
    write_bytes(out / REPORT_NAME, (json.dumps(report, indent=2) + "\n").encode())
    return report


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if percent else f"{value:.3f}"


def format_table(report: Mapping[str, Any]) -> str:
    """The per-class quality table of a report, as aligned text, then each judged class's
    verdict in words (``torch_deepsmote.verdicts.verdict``) and the variety readings
    it does not already quote (in code space, and in the feature space when the report
    has one)."""
    names = {c["label"]: c["name"] for c in report["classes"]}
    rows = [("class", "real", "+new", "recon", "vs-mean", "real-nn", "synth-nn", "copies")]
    rows[0] += ("fidelity", "prec", "recall", "density", "cover")
    readings = []
    for row in report["quality"]["classes"]:
        name = str(names.get(row["label"], row["label"]))[:20]
        rows.append(
            (
                name,
                str(row["real"]),
                str(row["synthetic"]),
                _cell(row["reconstruction_rms"]),
                _cell(row.get("reconstruction_ratio"), percent=True),
                _cell(row["real_nearest_rms"]),
                _cell(row["synthetic_nearest_rms"]),
                _cell(row["near_copy_share"], percent=True),
                _cell(row["label_fidelity"], percent=True),
                _cell(row.get("precision"), percent=True),
                _cell(row.get("recall"), percent=True),
                _cell(row.get("density")),
                _cell(row.get("coverage"), percent=True),
            )
        )
        reading = row.get("reading")
        if reading:
            readings.append(f"{name}: {reading}.")
        for key, space in (
            ("variety", "autoencoder's codes"),
            ("features_variety", "classifier's features"),
        ):
            if row.get(key) and row[key] not in (reading or ""):
                readings.append(f"  {name}, in the {space}: {row[key]}.")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))
        )
        for r in rows
    ]
    legend = (
        "recon: RMS reconstruction error of real images (0..1 pixel scale); vs-mean: that "
        "error over the real images' spread around the class's mean image; real-nn / "
        "synth-nn: median RMS distance of a real / synthetic image to its nearest (other) "
        f"real image of the class; copies: synthetic images within "
        f"{report['quality']['near_copy_threshold']:.4f} of a real one. The split test: half "
        "of each class's real images held out, synthetic images made from the other half "
        "alone; fidelity: their codes whose nearest held-out code is of their class; prec / "
        "recall / density / cover: precision, recall, density and coverage of their codes "
        "against the held-out codes of the class (Naeem et al., 2020), judged beside the "
        "same numbers of as many real images of the other half."
    )
    return "\n".join(lines + [legend, *readings])
