"""Tables, figures and the RESULTS.md section of classify.py.

    python benchmarks/classify_report.py RESULTS.json [MORE.json ...] \
        --results-md benchmarks/RESULTS.md --notes benchmarks/results/classification_notes.md

rewrites the section from finished runs without training anything.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from results_md import write_section

__all__ = [
    "PAPER",
    "summarise",
    "markdown_section",
    "write_report",
    "plot_real_vs_synthetic",
    "plot_ratio_sweep",
]

SECTION = "## Classification (issue 5)"

# DeepSMOTE (TNNLS 2022), ResNet-18, 5-fold CV: (ACSA, GM, F1) x 100.
PAPER = {
    ("fashion-mnist", "imbalanced"): {
        "smote": (67.94, 74.84, 67.12),
        "BAGAN": (82.50, 90.51, 82.96),
        "GAMO": (83.05, 90.76, 83.00),
        "deepsmote": (84.88, 91.63, 83.79),
    },
    ("fashion-mnist", "balanced"): {"deepsmote": (83.63, 90.61, 83.27)},
    ("mnist", "imbalanced"): {"deepsmote": (96.16, 98.11, 96.44)},
}
METRICS = ("acsa", "gm", "f1")


def summarise(records: list[dict]) -> dict:
    """{(test, method): {metric: (mean, std, n)}} over seeds."""
    out: dict = {}
    for rec in records:
        for test, scores in rec["scores"].items():
            out.setdefault((test, rec["method"]), []).append(scores)
    return {
        key: {
            m: (
                float(np.mean([s[m] for s in v])),
                float(np.std([s[m] for s in v], ddof=1)) if len(v) > 1 else 0.0,
                len(v),
            )
            for m in METRICS
        }
        for key, v in out.items()
    }


def _table(result: dict, test: str) -> list[str]:
    summary = summarise(result["records"])
    methods = [m for m in result["config"]["methods"] if (test, m) in summary]
    paper = PAPER.get((result["config"]["dataset"], test), {})
    best = {m: max(summary[(test, meth)][m][0] for meth in methods) for m in METRICS}
    lines = [
        "| method | ACSA | GM | F1 | paper ACSA / GM / F1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for meth in methods:
        cells = []
        for m in METRICS:
            mean, std, _ = summary[(test, meth)][m]
            cell = f"{mean:.2f} ± {std:.2f}"
            cells.append(f"**{cell}**" if mean == best[m] else cell)
        ref = " / ".join(f"{v:.2f}" for v in paper[meth]) if meth in paper else ""
        lines.append(f"| {meth} | " + " | ".join(cells) + f" | {ref} |")
    for name, values in paper.items():
        if name not in methods:
            lines.append(
                f"| {name} (paper only) | | | | " + " / ".join(f"{v:.2f}" for v in values) + " |"
            )
    return lines


def _sweep_table(result: dict) -> list[str]:
    """Balanced-test ACSA / GM per method and imbalance ratio (the numbers of Fig. 8)."""
    records, cfg = result["sweep"], result["config"]
    ratios = sorted({r["ratio"] for r in records})
    methods = sorted({r["method"] for r in records})
    epochs = cfg.get("sweep_ae_epochs") or cfg["ae_epochs"]
    lines = [
        f"#### imbalance ratio sweep (Fig. 8): balanced test ACSA / GM, "
        f"{cfg['sweep_seeds']} seed(s), autoencoder {epochs} epochs per ratio",
        "",
        "| method | " + " | ".join(f"ratio {q:g}" for q in ratios) + " |",
        "| --- |" + " --- |" * len(ratios),
    ]
    for meth in methods:
        cells = []
        for q in ratios:
            scores = [
                r["scores"]["balanced"] for r in records if r["method"] == meth and r["ratio"] == q
            ]
            acsa, gm = (np.mean([s[m] for s in scores]) for m in ("acsa", "gm"))
            cells.append(f"{acsa:.2f} / {gm:.2f}")
        lines.append(f"| {meth} | " + " | ".join(cells) + " |")
    return lines


def markdown_section(results: list[dict], notes: str = "") -> str:
    """The whole "## Classification (issue 5)" section for one or more runs."""
    lines = [SECTION, ""]
    if notes:
        lines += [notes.strip(), ""]
    for result in results:
        cfg, env, ae = result["config"], result["environment"], result["autoencoder"]
        wall = result["seconds"] + result.get("seconds_before", 0.0)
        ae_seconds = ae.get("train_seconds", ae["seconds"])
        latent = cfg["latent_dim"] or "300/600 (paper)"
        lines += [
            f"### {cfg['dataset']}: {cfg['classifier']}, {len(cfg['seeds'])} seeds, "
            f"{cfg['steps']} steps",
            "",
            f"Command: `{env['command']}`",
            "",
            f"Machine: {env['machine']}; {env['versions']}. Wall time {wall / 60:.1f} min. "
            f"Autoencoder: hidden {cfg['hidden']}, latent {latent}, "
            f"{cfg['ae_epochs']} epochs at lr {cfg.get('ae_lr', 2e-4):g}, "
            f"penalty weight {cfg['penalty_weight']} "
            f"({ae_seconds / 60:.1f} min of training, final reconstruction MSE "
            f"{ae['reconstruction']:.4f}). Train counts {cfg['train_counts']}; "
            f"mean ± sample std over seeds {cfg['seeds']}; one training subset "
            f"(data seed {cfg['data_seed']}), the autoencoder trained once on it.",
            "",
        ]
        for test in ("imbalanced", "balanced"):
            counts = cfg[f"{test}_test_counts"]
            lines += [f"#### {test} test set ({sum(counts)} images: {counts})", ""]
            lines += _table(result, test) + [""]
        if result.get("sweep"):
            lines += _sweep_table(result) + [""]
        for fig in result.get("figures", []):
            lines += [f"![{Path(fig).stem}]({fig})", ""]
    return "\n".join(lines).rstrip() + "\n"


def plot_real_vs_synthetic(balanced, path: Path, n: int = 8, title=None) -> None:
    """Per class: ``n`` real training images, then ``n`` synthetic ones (the paper's Fig. 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = np.asarray(balanced.targets)
    classes = sorted(set(targets.tolist()))
    fig, axes = plt.subplots(len(classes), 2 * n, figsize=(2 * n * 0.6, len(classes) * 0.65))
    for row, c in enumerate(classes):
        real = np.flatnonzero(targets[: balanced.n_real] == c)[:n]
        synth = balanced.n_real + np.flatnonzero(targets[balanced.n_real :] == c)[:n]
        items = balanced.__getitems__([int(i) for i in np.concatenate([real, synth])])
        images = [x for x, _ in items]
        images = images[: len(real)] + [None] * (n - len(real)) + images[len(real) :]
        for col in range(2 * n):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(images) and images[col] is not None:
                img = images[col].permute(1, 2, 0).numpy()
                ax.imshow(
                    img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1
                )
        axes[row, 0].set_title(f"{c}", fontsize=6, loc="left")
    title = title or f"per class: {n} real | {n} DeepSMOTE synthetic"
    fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.1)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ratio_sweep(records: list[dict], path: Path) -> None:
    """ACSA, GM and F1 on the balanced test set against the imbalance ratio (Fig. 8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    methods = sorted({r["method"] for r in records})
    for ax, metric in zip(axes, METRICS):
        for meth in methods:
            ratios = sorted({r["ratio"] for r in records if r["method"] == meth})
            means = [
                np.mean(
                    [
                        r["scores"]["balanced"][metric]
                        for r in records
                        if r["method"] == meth and r["ratio"] == q
                    ]
                )
                for q in ratios
            ]
            ax.plot(ratios, means, marker="o", label=meth)
        ax.set_xscale("log")
        ticks = sorted({r["ratio"] for r in records})
        ax.set_xticks(ticks, [f"{q:g}" for q in ticks])
        ax.minorticks_off()
        ax.set_xlabel("imbalance ratio (largest / smallest class)")
        ax.set_title(metric.upper() + " (balanced test)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(path: Path, results: list[dict], notes: str | os.PathLike | None = None) -> None:
    """Write the section for ``results`` (figure paths made relative to ``path``)."""
    for result in results:
        result["figures"] = [os.path.relpath(f, path.parent) for f in result["figures"]]
    text = Path(notes).read_text() if notes else ""
    write_section(path, markdown_section(results, text))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="results.json files, in table order")
    p.add_argument("--results-md", required=True)
    p.add_argument("--notes", default=None)
    args = p.parse_args(argv)
    results = [json.loads(Path(f).read_text()) for f in args.results]
    write_report(Path(args.results_md), results, args.notes)
    print(f"wrote {args.results_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
