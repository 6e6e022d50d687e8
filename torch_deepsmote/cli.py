"""``torch-deepsmote``: the command line, a thin layer over the library.

torch-deepsmote demo [--epochs N] [--out DIR]     # fit on the bundled data, write a figure
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from torchvision.utils import save_image

    from . import DeepSMOTE
    from .data import FASHION_MNIST_CLASSES, load_fashion_mnist_imbalanced

    images, labels = load_fashion_mnist_imbalanced()
    counts = np.bincount(labels)
    print(f"bundled imbalanced Fashion-MNIST: {len(images)} images, per class {counts.tolist()}")
    model = DeepSMOTE(
        max_epochs=args.epochs,
        hidden_channels=args.hidden,
        random_state=args.seed,
        progress=not args.quiet,
    )
    start = time.perf_counter()
    x_res, y_res = model.fit_resample(images, labels)
    seconds = time.perf_counter() - start
    print(
        f"fit + resample: {seconds:.1f} s on {model.device}, {len(model.history_)} epochs, "
        f"final reconstruction MSE {model.history_[-1]['reconstruction']:.4f} (in [-1, 1] units)"
    )
    print(f"after DeepSMOTE: {len(x_res)} images, per class {np.bincount(y_res).tolist()}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # One row per class: 8 real images, then 8 synthetic ones.
    rows = []
    for label in range(len(counts)):
        real = images[labels == label][:8]
        fake = model.sample(8, label, random_state=args.seed)
        rows.append(np.concatenate([real, fake]))
    grid = torch.from_numpy(np.concatenate(rows)).unsqueeze(1).float() / 255
    figure = out / "real_vs_synthetic.png"
    save_image(grid, figure, nrow=16, padding=2, pad_value=1.0)
    model.save(out / "deepsmote.pt")
    summary = {
        "classes": list(FASHION_MNIST_CLASSES),
        "counts_before": counts.tolist(),
        "counts_after": np.bincount(y_res).tolist(),
        "epochs": len(model.history_),
        "seconds": round(seconds, 2),
        "history": model.history_,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"wrote {figure} (per class: 8 real, then 8 synthetic), {out / 'deepsmote.pt'}, "
        f"{out / 'summary.json'}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torch-deepsmote", description="DeepSMOTE over-sampling for imbalanced images."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit on the bundled imbalanced Fashion-MNIST set")
    demo.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    demo.add_argument("--hidden", type=int, default=64, help="hidden width (paper: 64)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="deepsmote-demo", help="output folder")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
