"""Tables, figures and the RESULTS.md section of classify.py.

    python -m benchmarks.classify_report RESULTS.json [MORE.json ...] \
        --results-md benchmarks/RESULTS.md --notes benchmarks/results/classification_notes.md

rewrites the section from finished runs without training anything;

    python -m benchmarks.classify_report --protocol RESULTS.json [MORE.json ...]

prints issue 12's tables instead: per method mean ± std, per-seed paired differences
against the best baseline, wall time with the autoencoder, per data seed and pooled
(results of one data seed may be split over several files).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from benchmarks.results_md import write_section

__all__ = [
    "PAPER",
    "summarise",
    "markdown_section",
    "write_report",
    "plot_real_vs_synthetic",
    "plot_ratio_sweep",
    "collect",
    "best_baseline",
    "paired_differences",
    "protocol_tables",
    "per_class_table",
    "convergence_table",
]

SECTION = "## Does it make my classifier better, and when?"

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
    """The whole "## Does it make my classifier better, and when?" section for one or more runs."""
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


# ---------------------------------------------------------------------- issue 12's protocol
# The columns of the protocol tables: (test set, metric).
COLUMNS = (("balanced", "acsa"), ("balanced", "gm"), ("imbalanced", "acsa"), ("imbalanced", "gm"))


def _is_synthetic(method: str) -> bool:
    """Whether ``method`` trains on DeepSMOTE images (a ``deepsmote*`` method or a ``dsp``
    recipe of classify_deepsmote.py): the rows charged with the autoencoder's time."""
    return method.startswith("deepsmote") or method == "dsp" or method.startswith("dsp-")


def _is_baseline(method: str) -> bool:
    """The rows DeepSMOTE has to beat: neither synthetic nor an ``oracle*`` ceiling (which
    reads unseen real images that a user does not have)."""
    return not (_is_synthetic(method) or method.startswith("oracle"))


def _data_seed(result: dict) -> int:
    """The data seed of a results.json: its config's, else its records' (0 if neither)."""
    if "data_seed" in result.get("config", {}):
        return result["config"]["data_seed"]
    return next((r["data_seed"] for r in result["records"] if "data_seed" in r), 0)


def collect(results: list[dict]) -> dict:
    """{(method, data_seed, seed): record} over ``results`` (the first of duplicates kept).

    Each record also gets ``autoencoder_seconds``: the training time of the autoencoder of
    its data seed for DeepSMOTE rows (a user of the recipe pays it once), 0 for the others.
    """
    ae: dict = {}
    for result in results:
        d = _data_seed(result)
        seconds = result.get("autoencoder", {}).get("train_seconds") or 0.0
        ae[d] = max(ae.get(d, 0.0), seconds)
    rows: dict = {}
    for result in results:
        for rec in result["records"]:
            d = rec.get("data_seed", _data_seed(result))
            key = (rec["method"], d, rec["seed"])
            if key not in rows:
                extra = ae.get(d, 0.0) if _is_synthetic(rec["method"]) else 0.0
                rows[key] = {**rec, "data_seed": d, "autoencoder_seconds": extra}
    return rows


def _values(rows: dict, method: str, test: str, metric: str, data_seed=None) -> dict:
    return {
        (d, s): rec["scores"][test][metric]
        for (m, d, s), rec in rows.items()
        if m == method and (data_seed is None or d == data_seed) and test in rec["scores"]
    }


def _methods(rows: dict) -> list[str]:
    return list(dict.fromkeys(m for m, _, _ in rows))


def best_baseline(rows: dict, test: str, metric: str, data_seed=None) -> str | None:
    """The baseline with the highest mean of ``metric`` on ``test``."""
    means = {
        m: np.mean(list(v.values()))
        for m in _methods(rows)
        if _is_baseline(m) and (v := _values(rows, m, test, metric, data_seed))
    }
    return max(means, key=means.get) if means else None


def paired_differences(
    rows: dict, method: str, baseline: str, test: str, metric: str, data_seed=None
) -> dict:
    """{(data_seed, seed): method - baseline} over the runs both have: the same classifier
    seed on the same training subset, so the seed's share of the noise cancels."""
    a = _values(rows, method, test, metric, data_seed)
    b = _values(rows, baseline, test, metric, data_seed)
    return {k: a[k] - b[k] for k in sorted(a.keys() & b.keys())}


def _mean_std(values) -> str:
    values = list(values)
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.2f} ± {std:.2f}"


def _paired_cell(diffs: dict) -> str:
    if not diffs:
        return ""
    d = np.array(list(diffs.values()))
    std = d.std(ddof=1) if len(d) > 1 else 0.0
    return f"{d.mean():+.2f} ± {std:.2f} [{d.min():+.2f}, {d.max():+.2f}] (n={len(d)})"


def _scope_table(rows: dict, data_seed=None) -> list[str]:
    methods = [m for m in _methods(rows) if _values(rows, m, "balanced", "acsa", data_seed)]
    best = {c: best_baseline(rows, *c, data_seed) for c in COLUMNS}
    names = {c: f"{'bal.' if c[0] == 'balanced' else 'imb.'} {c[1].upper()}" for c in COLUMNS}
    lines = [
        "| method | runs | "
        + " | ".join(names[c] for c in COLUMNS)
        + " | "
        + " | ".join(f"Δ {names[c]} vs {best[c]}" for c in COLUMNS)
        + " |",
        "| --- | ---: |" + " ---: |" * len(COLUMNS) + " --- |" * len(COLUMNS),
    ]
    for m in methods:
        cells = [_mean_std(_values(rows, m, *c, data_seed).values()) for c in COLUMNS]
        deltas = [
            "(best)"
            if m == best[c]
            else _paired_cell(paired_differences(rows, m, best[c], *c, data_seed))
            for c in COLUMNS
        ]
        n = len(_values(rows, m, "balanced", "acsa", data_seed))
        lines.append(f"| {m} | {n} | " + " | ".join(cells + deltas) + " |")
    return lines


def _per_seed_table(rows: dict, test: str = "balanced", metric: str = "acsa") -> list[str]:
    runs = sorted({(d, s) for _, d, s in rows})
    lines = [
        "| method | " + " | ".join(f"d{d} s{s}" for d, s in runs) + " |",
        "| --- |" + " ---: |" * len(runs),
    ]
    for m in _methods(rows):
        v = _values(rows, m, test, metric)
        lines.append(f"| {m} | " + " | ".join(f"{v[r]:.2f}" if r in v else "" for r in runs) + " |")
    return lines


def _timing_table(rows: dict) -> list[str]:
    lines = [
        "| method | classifier s per run | autoencoder s (once per data seed) | s for one run |",
        "| --- | ---: | ---: | ---: |",
    ]
    for m in _methods(rows):
        recs = [r for (meth, _, _), r in rows.items() if meth == m]
        run = float(np.mean([r["seconds"] for r in recs]))
        ae = float(np.mean([r["autoencoder_seconds"] for r in recs]))
        lines.append(f"| {m} | {run:.0f} | {ae:.0f} | {run + ae:.0f} |")
    return lines


def _classifier(result: dict) -> tuple:
    cfg = result.get("config", {})
    return cfg.get("classifier"), cfg.get("steps")


def protocol_tables(results: list[dict], per_class: tuple[str, ...] = ()) -> list[str]:
    """Markdown lines of issue 12's tables for ``results`` (any number of files, data seeds).

    Per method: mean ± sample std over runs, and the paired difference (mean ± std [min,
    max] over (data seed, seed) pairs) against the best baseline of each column; every
    data seed pooled, then each alone; balanced-test ACSA per run; wall time; and for each
    ``"METHOD:REFERENCE"`` of ``per_class`` the per-class recall of both and their paired
    difference. Results of different classifiers (or step budgets) get tables of their own:
    their seeds are not pairs.
    """
    groups: dict = {}
    for result in results:
        groups.setdefault(_classifier(result), []).append(result)
    if len(groups) > 1:
        lines = []
        for (clf, steps), group in groups.items():
            lines += [f"### {clf}, {steps} steps", ""] + protocol_tables(group, per_class)
        return lines
    rows = collect(results)
    data_seeds = sorted({d for _, d, _ in rows})
    pooled = ", ".join(map(str, data_seeds))
    title = f"data seeds {pooled} pooled" if len(data_seeds) > 1 else f"data seed {pooled}"
    lines = [f"#### {title}", ""] + _scope_table(rows) + [""]
    if len(data_seeds) > 1:
        for d in data_seeds:
            lines += [f"#### data seed {d}", ""] + _scope_table(rows, d) + [""]
    lines += ["#### balanced-test ACSA per run (d: data seed, s: seed)", ""]
    lines += _per_seed_table(rows) + [""]
    for pair in per_class:
        method, reference = pair.split(":")
        table = per_class_table(rows, method, reference)
        if table:
            lines += [f"#### balanced-test recall per class: {method} against {reference}", ""]
            lines += table + [""]
    headroom = _headroom_table(rows)
    if headroom:
        lines += ["#### headroom ratio: (method - logit_adj) / (oracle_la - logit_adj)", ""]
        lines += headroom + [""]
    lines += ["#### wall time", ""] + _timing_table(rows) + [""]
    return lines


def headroom_ratios(
    rows: dict, real: str = "logit_adj", oracle: str = "oracle_la", metric: str = "acsa"
) -> dict:
    """{method: {(data_seed, seed): ratio}}: ``(method - real) / (oracle - real)`` on the
    balanced test, per run that ``real`` and ``oracle`` also have (same subset and seed),
    for every DeepSMOTE row: the share of the headroom that unseen real images would give
    (``oracle``) which the method's synthetic images capture."""
    a = _values(rows, real, "balanced", metric)
    b = _values(rows, oracle, "balanced", metric)
    ratios = {}
    for method in _methods(rows):
        if not _is_synthetic(method) or method == oracle:
            continue
        mine = _values(rows, method, "balanced", metric)
        runs = sorted(mine.keys() & a.keys() & b.keys())
        ratios[method] = {k: (mine[k] - a[k]) / (b[k] - a[k]) for k in runs if b[k] != a[k]}
    return {m: r for m, r in ratios.items() if r}


def _headroom_table(rows: dict) -> list[str]:
    ratios = headroom_ratios(rows)
    if not ratios:
        return []
    lines = ["| method | runs | headroom ratio (mean ± std, per run) |", "| --- | --- | --- |"]
    for method, runs in ratios.items():
        per_run = ", ".join(f"d{d}s{s} {v:+.2f}" for (d, s), v in runs.items())
        lines.append(f"| {method} | {len(runs)} | {_mean_std(runs.values())} ({per_run}) |")
    return lines


def per_class_table(rows: dict, method: str, reference: str, test: str = "balanced") -> list[str]:
    """Markdown lines: per class, the mean recall of ``method`` and ``reference`` over the
    (data seed, seed) runs both have, and the paired difference (mean ± std, how many of
    the pairs are below zero). Empty when they share no run with per-class recall."""

    def has_recall(key):
        return key in rows and "recall" in rows[key]["scores"].get(test, {})

    # Records of older benchmark commits have no per-class recall: they are left out.
    pairs = sorted(
        (d, s)
        for m, d, s in rows
        if m == method and has_recall((m, d, s)) and has_recall((reference, d, s))
    )
    if not pairs:
        return []

    def recall(m):
        return np.array([rows[(m, d, s)]["scores"][test]["recall"] for d, s in pairs])

    a, b = recall(method), recall(reference)
    diff = a - b
    lines = [
        f"| class | {method} | {reference} | paired Δ (n={len(pairs)}) | pairs below 0 |",
        "| ---: | ---: | ---: | --- | ---: |",
    ]
    for c in range(a.shape[1]):
        std = diff[:, c].std(ddof=1) if len(pairs) > 1 else 0.0
        lines.append(
            f"| {c} | {a[:, c].mean():.1f} | {b[:, c].mean():.1f} | "
            f"{diff[:, c].mean():+.1f} ± {std:.1f} | {int((diff[:, c] < 0).sum())} |"
        )
    return lines


def convergence_table(results: list[dict], tail: int = 5) -> list[str]:
    """Markdown lines: per (classifier, steps, method), the mean training loss of the last
    ``tail`` points of the loss curve, the unaugmented training-set CE and ACSA, test ACSA
    and the seconds per run, averaged over seeds."""
    groups: dict = {}
    for result in results:
        cfg = result["config"]
        for rec in result["records"]:
            groups.setdefault((cfg["classifier"], cfg["steps"], rec["method"]), []).append(rec)
    lines = [
        f"| classifier | steps | method | runs | train loss (last {tail} points) | "
        "train CE (clean) | train ACSA | bal. ACSA | imb. ACSA | s per run |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (clf, steps, m), recs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])
    ):
        loss = np.mean([np.mean(r["loss_curve"][-tail:]) for r in recs])
        ce = np.mean([r["train_fit"]["ce"] for r in recs])
        fit = np.mean([r["train_fit"]["acsa"] for r in recs])
        bal = [r["scores"]["balanced"]["acsa"] for r in recs]
        imb = [r["scores"]["imbalanced"]["acsa"] for r in recs]
        sec = np.mean([r["seconds"] for r in recs])
        lines.append(
            f"| {clf} | {steps} | {m} | {len(recs)} | {loss:.4f} | {ce:.4f} | {fit:.2f} | "
            f"{_mean_std(bal)} | {_mean_std(imb)} | {sec:.0f} |"
        )
    return lines


def write_report(path: Path, results: list[dict], notes: str | os.PathLike | None = None) -> None:
    """Write the section for ``results`` (figure paths made relative to ``path``)."""
    for result in results:
        result["figures"] = [os.path.relpath(f, path.parent) for f in result["figures"]]
    text = Path(notes).read_text() if notes else ""
    write_section(path, markdown_section(results, text))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="results.json files, in table order")
    p.add_argument("--results-md", default=None, help="rewrite the section in this file")
    p.add_argument("--notes", default=None)
    p.add_argument("--protocol", action="store_true", help="print issue 12's tables")
    p.add_argument("--convergence", action="store_true", help="print the convergence table")
    p.add_argument(
        "--per-class",
        action="append",
        default=[],
        metavar="METHOD:REFERENCE",
        help="with --protocol: per-class recall of METHOD against REFERENCE (repeatable)",
    )
    args = p.parse_args(argv)
    results = [json.loads(Path(f).read_text()) for f in args.results]
    if args.protocol or args.convergence:
        if args.convergence:
            lines = convergence_table(results)
        else:
            lines = protocol_tables(results, tuple(args.per_class))
        print("\n".join(lines))
        return 0
    if args.results_md is None:
        p.error("give --results-md, --protocol or --convergence")
    write_report(Path(args.results_md), results, args.notes)
    print(f"wrote {args.results_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
