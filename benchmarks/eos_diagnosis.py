"""Why EOS's head loses to cRT's on a backbone: where its synthetic features sit.

    python -m benchmarks.eos_diagnosis benchmarks/results/ceiling-feature-head/d0-s*-*/ \\
        --out benchmarks/results/ceiling-feature-head

For each saved classifier of the gate (``benchmarks.embedding_gate``): per class, the real
rows, the rows EOS may use as bases (an enemy among their ``k`` nearest neighbours), how
many synthetic features each base carries, the classes of their enemies, and the
balanced-test confusion of the ``crt`` and ``eos`` heads of the gate's first head seed
(the same features, draw and head as the gate's). Writes ``eos_diagnosis.json`` and
``eos_diagnosis.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks import classify_methods as cm
from benchmarks import embedding_gate as gate
from torch_deepsmote.storage.atomic import write_bytes

__all__ = ["enemy_table"]


def enemy_table(feats: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """EOS's bases and their enemies, as :func:`benchmarks.embedding_gate.eos_features`
    finds them (``k`` nearest neighbours in all classes, the row itself left out).

    Args:
        feats: (N, d) features.
        labels: (N,) int labels in ``[0, C)``.
        k: Neighbours per row.

    Returns:
        (C,) int the number of bases of each class, and (C, C) int: row ``c`` counts the
        enemies of class ``c``'s bases by the enemy's class (an enemy listed by two bases
        counts twice).
    """
    from sklearn.neighbors import NearestNeighbors

    n_classes = int(labels.max()) + 1
    _, ind = NearestNeighbors(n_neighbors=k + 1).fit(feats).kneighbors(feats)
    own = ind == np.arange(len(feats))[:, None]
    own[~own.any(1), -1] = True
    ind = ind[~own].reshape(len(feats), k)
    enemy = labels[ind] != labels[:, None]
    is_base = enemy.any(1)
    bases = np.bincount(labels[is_base], minlength=n_classes)
    table = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(table, (np.broadcast_to(labels[:, None], ind.shape)[enemy], labels[ind][enemy]), 1)
    return bases, table


def diagnose(folder: Path, args) -> dict:
    result = json.loads((folder / "results.json").read_text())
    config, (record,) = result["config"], result["records"]
    split = gate.DataSplit(config, args.work)
    exp = split.exp
    model = cm.load_classifier(
        folder / record["model_file"],
        config["classifier"],
        exp.x.shape[1],
        exp.n_classes,
        exp.x.shape[-1],
    )
    body, _ = gate.split_head(model)
    # Clones: inference tensors cannot enter the heads' autograd.
    f_train = gate.features_of(body, exp.x).clone()
    x_test, y_test = split.tests["balanced"]
    f_test = gate.features_of(body, x_test).clone()
    feats, labels = f_train.numpy(), exp.y.numpy()
    counts = np.bincount(labels, minlength=exp.n_classes)
    bases, table = enemy_table(feats, labels, args.k_neighbors)
    seed = 1000 * record["seed"]  # the gate's first head seed
    x_eos, y_eos = gate.eos_features(feats, labels, args.k_neighbors, np.random.default_rng(seed))
    sets = {
        "crt": (f_train, exp.y),
        "eos": (
            torch.cat([f_train, torch.from_numpy(x_eos)]),
            torch.cat([exp.y, torch.from_numpy(y_eos).long()]),
        ),
    }
    confusion = {}
    for name, (f, y) in sets.items():
        head = gate.fit_head(f, y, exp.n_classes, steps=4000, batch_size=128, lr=1e-3, seed=seed)
        with torch.no_grad():
            pred = head(f_test).argmax(1).numpy()
        confusion[name] = np.bincount(
            y_test.numpy() * exp.n_classes + pred, minlength=exp.n_classes**2
        ).reshape(exp.n_classes, exp.n_classes)
    need = counts.max() - counts
    return {
        "folder": folder.name,
        "counts": counts.tolist(),
        "bases": bases.tolist(),
        "synthetic_per_base": [round(n / b, 1) if b else None for n, b in zip(need, bases)],
        "enemies": table.tolist(),
        "confusion": {k: v.tolist() for k, v in confusion.items()},
    }


def markdown(entries: list[dict]) -> str:
    lines = []
    for e in entries:
        n = len(e["counts"])
        lines += [
            f"### {e['folder']}",
            "",
            "| class | real rows | bases | synthetic per base | nearest enemies' classes "
            "| crt recall | eos recall | eos: most lost to |",
            "| ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
        ]
        crt, eos = (np.array(e["confusion"][k]) for k in ("crt", "eos"))
        for c in range(n):
            enemies = np.array(e["enemies"][c])
            top = ", ".join(f"{j}: {enemies[j]}" for j in np.argsort(-enemies)[:3] if enemies[j])
            off = eos[c].copy()
            off[c] = 0
            worst = int(off.argmax())
            lost = f"{worst} ({crt[c, worst]} → {eos[c, worst]})"
            per_base = e["synthetic_per_base"][c]
            lines.append(
                f"| {c} | {e['counts'][c]} | {e['bases'][c]} | "
                f"{'' if per_base is None else per_base} | {top} | "
                f"{100 * crt[c, c] / crt[c].sum():.1f} | {100 * eos[c, c] / eos[c].sum():.1f} "
                f"| {lost} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("backbones", nargs="+", help="folders of classify.py --save-model runs")
    p.add_argument("--out", required=True)
    p.add_argument("--k-neighbors", type=int, default=10)
    p.add_argument("--work", default="/tmp/deepsmote-bench")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    entries = [diagnose(Path(f), args) for f in args.backbones]
    out = Path(args.out)
    write_bytes(out / "eos_diagnosis.json", json.dumps(entries, indent=1).encode())
    text = markdown(entries)
    write_bytes(out / "eos_diagnosis.md", text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
