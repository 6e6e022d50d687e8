"""How good does the autoencoder get for a given CPU budget? Held-out error per class and epoch.

    python -m benchmarks.ae_budget --hidden 32 --lr 1e-3 --epochs 6
    python -m benchmarks.ae_budget --hidden 32 --lr 2e-4 --epochs 6 --out results/ae_budget.json

Trains the library's Encoder/Decoder with ``fit_autoencoder`` on the Table I subset that
``classify.py`` uses (same data seed) and after every epoch measures the reconstruction error
(mean squared error on the [-1, 1] scale, eval mode) on 100 held-out test images per class.
The minority classes matter most: their synthetic images are decoded by this decoder, and a
decoder that reconstructs them poorly turns a minority class into blurred majority looks.
Each run is appended to ``--out`` (JSON list) with its settings and per-epoch wall time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks import imbalanced_data as data
from torch_deepsmote import Decoder, Encoder, TrainingConfig, fit_autoencoder
from torch_deepsmote.data import imbalanced_subset


def held_out_mse(encoder, decoder, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> list:
    """Per-class mean squared error of ``decode(encode(x))`` on the [-1, 1] scale."""
    encoder.eval()
    decoder.eval()
    with torch.inference_mode():
        unit = x * 2 - 1
        err = ((decoder(encoder(unit)) - unit) ** 2).flatten(1).mean(1)
    return [float(err[y == c].mean()) for c in range(n_classes)]


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--penalty-weight", type=float, default=1.0)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--held-out", type=int, default=100, help="test images per class")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="/tmp/deepsmote-bench")
    p.add_argument("--out", default=str(here / "results" / "ae_budget.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    work = Path(args.work)
    train_full = data.load_split("fashion-mnist", None, True, work)
    test_full = data.load_split("fashion-mnist", None, False, work)
    counts, _ = data.PAPER_COUNTS["fashion-mnist"]
    x, y = data.as_tensors(imbalanced_subset(train_full, counts, args.data_seed))
    n_classes = len(counts)
    held_out = imbalanced_subset(test_full, (args.held_out,) * n_classes, args.data_seed)
    x_test, y_test = data.as_tensors(held_out)

    images = (x * 255).round().to(torch.uint8)  # what OversampledDataset trains on
    torch.manual_seed(args.seed)
    shape = tuple(images.shape[1:])
    encoder = Encoder(shape, hidden=args.hidden)
    decoder = Decoder(shape, hidden=args.hidden)
    config = TrainingConfig(
        batch_size=args.batch_size,
        lr=args.lr,
        max_epochs=args.epochs,
        patience=0,
        penalty_weight=args.penalty_weight,
    )
    epochs: list[dict] = []
    clock = {"train": 0.0}

    def callback(record: dict) -> None:
        clock["train"] += record["seconds"]
        per_class = held_out_mse(encoder, decoder, x_test, y_test, n_classes)
        epochs.append(
            {
                **record,
                "train_seconds": clock["train"],
                "held_out": float(np.mean(per_class)),
                "held_out_minority": float(np.mean(per_class[5:])),
                "held_out_per_class": per_class,
            }
        )
        print(
            f"epoch {record['epoch'] + 1}: {clock['train']:.0f} s, train rec "
            f"{record['reconstruction']:.4f}, held-out {epochs[-1]['held_out']:.4f} "
            f"(classes 5-9: {epochs[-1]['held_out_minority']:.4f})",
            flush=True,
        )

    fit_autoencoder(
        encoder,
        decoder,
        images,
        y,
        lambda b: b.float() / 127.5 - 1,
        config=config,
        generator=torch.Generator().manual_seed(args.seed),
        device=torch.device("cpu"),
        progress=False,
        callback=callback,
    )
    out = Path(args.out)
    runs = json.loads(out.read_text()) if out.exists() else []
    runs.append({"settings": vars(args) | {"train_counts": list(counts)}, "epochs": epochs})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(runs, indent=1))
    print(f"appended to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
