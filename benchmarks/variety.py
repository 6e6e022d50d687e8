"""Variety of DeepSMOTE's images per interpolation: precision, recall, density, coverage.

The autoencoder of a ``classify`` run (its ``--work`` cache: no training) serves each
``interpolation``; ``torch_deepsmote.quality.assess`` measures, per class, the
synthetic images against the real ones in the autoencoder's code space (Naeem et al.,
ICML 2020) with its split test: half of each class held out of the interpolation, the
synthetic images made from the other half and measured against the held-out half, so the
numbers are those of the split, not of synthetic codes against their own parents. The
minority classes' means are printed beside each other: coverage is the share of held-out
real images' neighbourhoods that some synthetic image reaches.

    python -m benchmarks.variety --work /tmp/pilot/work --interpolations smote,enemy,transfer
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks import classify
from benchmarks import imbalanced_data as data
from torch_deepsmote.quality import assess
from torch_deepsmote.reading import read_dataset

__all__ = ["main"]

KEYS = ("precision", "recall", "density", "coverage")


def measure(args: argparse.Namespace, interpolations: list[str], max_per_class: int) -> dict:
    train_full = data.load_split(args.dataset, args.root, True, args.work)
    test_full = data.load_split(args.dataset, args.root, False, args.work)
    counts = data.scale(data.PAPER_COUNTS[args.dataset][0], args.count_scale)
    exp = classify.Experiment(args, train_full, test_full, counts, f"{args.dataset}-table1")
    out = {}
    for interpolation in interpolations:
        ds = exp.oversampled(0, residual=True, interpolation=interpolation)
        images = read_dataset(ds.dataset).images  # what the model was fitted on, read alike
        table = assess(ds.model, images, max_per_class=max_per_class).table
        minority = [row for row in table if row["synthetic"] > 0 and row["precision"] is not None]
        out[interpolation] = {
            key: float(np.mean([row[key] for row in minority])) for key in KEYS
        } | {"classes": len(minority), "readings": [row["variety"] for row in minority]}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interpolations", default="smote,enemy,transfer")
    parser.add_argument("--max-per-class", type=int, default=500)
    known, rest = parser.parse_known_args(argv)
    args = classify.parse_args(["--preset", "i12-cnn", *rest])
    result = measure(args, known.interpolations.split(","), known.max_per_class)
    print("| interpolation | " + " | ".join(KEYS) + " |")
    print("| --- |" + " --- |" * len(KEYS))
    for name, scores in result.items():
        print(f"| {name} | " + " | ".join(f"{scores[k]:.3f}" for k in KEYS) + " |")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
